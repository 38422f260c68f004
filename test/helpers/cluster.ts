/**
 * Real `cairn node` processes on 127.0.0.1 for the end-to-end suite (test/e2e/): each node is a
 * child process driven only through its CLI and JSON-RPC, on free ports, with its log beside
 * its datadir. Every process this module starts — nodes and CLI runs — is tracked by pid
 * and stopped by pid (SIGTERM, then SIGKILL after a deadline), by `Cluster.destroy()` in an after
 * hook and, as a last resort, when the test process exits.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RpcClient } from '../../cli/rpc-client.ts';
import { fromHex, toHex } from '../../ledger/bytes.ts';
import { genesisHashHex, parseGenesis, type ChainParams } from '../../ledger/genesis.ts';
import { addressOf, encodeAddress, publicKeyOf } from '../../ledger/keys.ts';
import { signTransaction } from '../../ledger/transaction.ts';
import { RPC_ENDPOINT_FILE, type RpcEndpointFile, type RpcMethod, type RpcMethods, type StatusResult } from '../../node/rpc-types.ts';
import { withCompileCache } from './compile-cache.ts';
import { tempDir, type TestKey } from './fixtures.ts';

export const REPO = fileURLToPath(new URL('../../', import.meta.url));
export const CAIRN_MAIN = join(REPO, 'cli', 'main.ts');
/** The `cairn` launcher, as a user runs it: the build in dist/ when that is up to date (cli/cairn.mjs). */
export const CAIRN_BIN = join(REPO, 'cli', 'cairn.mjs');
const BUNDLED_GENESIS = join(REPO, 'genesis.json');

/** The public devnet key of README.md ("deliberately public"): funded by every e2e genesis. */
export const DEVNET_PRIVATE_KEY = fromHex('8010557e47b9eac54915c85a544ff38a80598f1ee6010fde2ef745789f9008c6');
export const DEVNET_KEY: TestKey = {
  privateKey: DEVNET_PRIVATE_KEY,
  publicKey: publicKeyOf(DEVNET_PRIVATE_KEY),
  address: addressOf(publicKeyOf(DEVNET_PRIVATE_KEY)),
};
export const DEVNET_ADDRESS = 'cairn12rqpp3a5l5vef8weqsvd42g9rzmqx4la30zrhz';

/**
 * About one hash in 1024 meets it: a block costs a millisecond, so mining speed is set by the
 * timestamp rules (about 6 blocks per second of clock, after a burst of up to a minute ahead)
 * and a mining node leaves the CPU to the others.
 */
export const E2E_TARGET = '0x003fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff';

// ---------------------------------------------------------------------------------------------
// Every child process, by pid, until it has exited.

const live = new Map<number, ChildProcess>();

/** Kills `child` by pid when this process exits, if no one has stopped it before. */
export function track(child: ChildProcess): void {
  if (child.pid === undefined) return;
  const pid = child.pid;
  live.set(pid, child);
  child.once('exit', () => live.delete(pid));
}

/** test/helpers/fault-injector.ts, loaded into a child through NODE_OPTIONS. */
const FAULT_INJECTOR = join(REPO, 'test', 'helpers', 'fault-injector.ts');

/** What loads the fault injector into a child, with `faults` (its CAIRN_TEST_* settings). */
export function faultEnv(faults: Record<string, string>): Record<string, string> {
  return { NODE_OPTIONS: `--import=${FAULT_INJECTOR}`, ...faults };
}

/** `node ARGS` with the fault injector and `faults`: the child (tracked), all it wrote so far, and its exit. */
export function spawnWithFaults(args: readonly string[], faults: Record<string, string>) {
  const child = spawn(process.execPath, args, { env: withCompileCache({ ...process.env, ...faultEnv(faults) }), stdio: ['ignore', 'pipe', 'pipe'] });
  track(child);
  let log = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (log += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (log += d));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('close', (code, signal) => resolve({ code, signal })));
  return { child, log: () => log, exit };
}

process.once('exit', () => {
  // Only if an after hook could not run: never leave a node behind the test process.
  for (const pid of live.keys()) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

export function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/** Sends `signal` to `child` by pid and waits for it to exit; SIGKILL once `graceMs` has passed. */
export async function stopProcess(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', graceMs = 10_000): Promise<{ code: number | null; signal: NodeJS.Signals | null; forced: boolean }> {
  const done = new Promise<void>((resolve) => (exited(child) ? resolve() : child.once('exit', () => resolve())));
  let forced = false;
  if (!exited(child) && child.pid !== undefined) {
    try {
      process.kill(child.pid, signal);
    } catch {
      // exited between the check and the kill
    }
    const timer = setTimeout(() => {
      if (exited(child) || child.pid === undefined) return;
      forced = true;
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        // gone
      }
    }, graceMs);
    await done;
    clearTimeout(timer);
  }
  return { code: child.exitCode, signal: child.signalCode, forced };
}

// ---------------------------------------------------------------------------------------------
// Waiting.

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Polls `probe` until it returns a value other than undefined/false/null, or throws after
 * `timeoutMs` naming what it waited for and the last thing it saw. A probe that throws counts as
 * "not yet" (a node that is starting refuses connections). Returns the value and the wait.
 */
export async function waitFor<T>(
  what: string,
  timeoutMs: number,
  probe: () => Promise<T | undefined | false | null> | T | undefined | false | null,
  intervalMs = 100,
): Promise<{ value: T; ms: number }> {
  const start = Date.now();
  let last = '';
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false && value !== null) return { value, ms: Date.now() - start };
      last = '';
    } catch (err) {
      last = ` (last error: ${(err as Error).message})`;
    }
    if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last}`);
    await sleep(intervalMs);
  }
}

// ---------------------------------------------------------------------------------------------
// The CLI.

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
}

/** Runs `cairn ARGS…` to completion (SIGKILL after `timeoutMs`) and returns its output. */
export async function cairn(args: readonly string[], timeoutMs = 30_000): Promise<CliResult> {
  const start = Date.now();
  const child = spawn(process.execPath, [CAIRN_MAIN, ...args], { env: withCompileCache(), stdio: ['ignore', 'pipe', 'pipe'] });
  track(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const timer = setTimeout(() => void stopProcess(child, 'SIGKILL'), timeoutMs);
  await closed;
  clearTimeout(timer);
  if (child.signalCode === 'SIGKILL' && Date.now() - start >= timeoutMs) {
    throw new Error(`cairn ${args.join(' ')} did not finish within ${timeoutMs} ms; stderr: ${stderr.trim()}`);
  }
  return { code: child.exitCode, stdout, stderr, ms: Date.now() - start };
}

/** Runs `cairn ARGS… --json`, requires exit status 0 and returns the parsed answer. */
export async function cairnJson<T = unknown>(args: readonly string[], timeoutMs = 30_000): Promise<T> {
  const r = await cairn([...args, '--json'], timeoutMs);
  if (r.code !== 0) throw new Error(`cairn ${args.join(' ')} exited ${r.code}: ${r.stderr.trim()}`);
  return JSON.parse(r.stdout) as T;
}

// ---------------------------------------------------------------------------------------------
// Nodes.

export interface StartOptions {
  /** Mine to this address (default: no mining). */
  readonly coinbase?: string;
  readonly bootstrap?: readonly string[];
  /** Reuse a P2P port (so peers that know the old address find the node again); default: free. */
  readonly p2pPort?: number;
  readonly extraArgs?: readonly string[];
  /** mDNS on (default off: nodes of one test find each other only as the test says). */
  readonly mdns?: boolean;
  /** Extra environment variables for the process. */
  readonly env?: Readonly<Record<string, string>>;
  readonly startTimeoutMs?: number;
}

/** One `cairn node` process on a datadir; `restart` runs a new process on the same datadir. */
export class NodeProc {
  readonly name: string;
  readonly datadir: string;
  readonly genesisFile: string;
  /** Beside the datadir, not in it: the node creates its datadir itself, as a user's would. */
  readonly logFile: string;
  child!: ChildProcess;
  rpc!: RpcClient;
  /** The addresses it listens on, with /p2p/<id>, as `status` reports them. */
  listen: string[] = [];
  peerId = '';
  p2pPort = 0;
  starts = 0;
  /** Milliseconds from spawn to RPC answering, for the last start. */
  startMs = 0;
  options: StartOptions = {};
  /** Resolves once the current process's output is all in the log file. */
  private logWritten: Promise<void> = Promise.resolve();

  constructor(name: string, datadir: string, genesisFile: string, logFile: string) {
    this.name = name;
    this.datadir = datadir;
    this.genesisFile = genesisFile;
    this.logFile = logFile;
  }

  get pid(): number {
    return this.child.pid!;
  }

  get alive(): boolean {
    return this.child !== undefined && !exited(this.child);
  }

  /** The first listen address: what another node passes as --bootstrap. */
  get addr(): string {
    return this.listen[0]!;
  }

  async start(options: StartOptions = {}): Promise<this> {
    if (this.child && !exited(this.child)) throw new Error(`${this.name} is still running (pid ${this.pid})`);
    this.options = options;
    const args = [CAIRN_MAIN, 'node', '--datadir', this.datadir, '--genesis', this.genesisFile, '--p2p-host', '127.0.0.1', '--p2p-port', String(options.p2pPort ?? 0), '--rpc-port', '0', '--http-port', '0', '--log-level', 'info'];
    if (!options.mdns) args.push('--no-mdns');
    for (const b of options.bootstrap ?? []) args.push('--bootstrap', b);
    if (options.coinbase) args.push('--mine', '--coinbase', options.coinbase, '--threads', '1');
    args.push(...(options.extraArgs ?? []));
    const log = createWriteStream(this.logFile, { flags: 'a' });
    log.write(`--- start #${++this.starts} at ${new Date().toISOString()}: ${args.slice(1).join(' ')}\n`);
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: withCompileCache({ ...process.env, ...options.env }) });
    track(child);
    child.stdout!.pipe(log, { end: false });
    child.stderr!.pipe(log, { end: false });
    this.logWritten = new Promise((resolve) => log.once('close', () => resolve()));
    child.once('close', () => log.end());
    this.child = child;
    const started = Date.now();
    // rpc.json may be left over from a killed process: only the one naming this pid counts.
    await waitFor(`${this.name} (pid ${child.pid}) to serve RPC`, options.startTimeoutMs ?? 30_000, async () => {
      if (exited(child)) throw new Error(`${this.name} exited with ${child.exitCode ?? child.signalCode}; log:\n${this.logTail(15)}`);
      const file = join(this.datadir, RPC_ENDPOINT_FILE);
      if (!existsSync(file)) return undefined;
      const endpoint = JSON.parse(readFileSync(file, 'utf8')) as RpcEndpointFile;
      if (endpoint.pid !== child.pid) return undefined;
      const rpc = new RpcClient(endpoint.url, endpoint.token);
      const status = await rpc.call('status', {});
      this.rpc = rpc;
      this.listen = status.listen.filter((a) => a.includes('/ip4/127.0.0.1/'));
      this.peerId = status.peerId;
      return true;
    }, 50).catch(async (err: Error) => {
      await stopProcess(child, 'SIGKILL');
      throw new Error(`${err.message}\n${this.name} log:\n${this.logTail(20)}`);
    });
    this.p2pPort = Number(this.addr.split('/')[4]);
    this.startMs = Date.now() - started;
    return this;
  }

  call<M extends RpcMethod>(method: M, params: RpcMethods[M]['params']): Promise<RpcMethods[M]['result']> {
    return this.rpc.call(method, params);
  }

  status(): Promise<StatusResult> {
    return this.call('status', {});
  }

  /**
   * Stops the process by pid (SIGTERM: a clean stop) and waits for it, and for its last words to
   * reach the log file; SIGKILL if it hangs.
   */
  async stop(signal: NodeJS.Signals = 'SIGTERM', graceMs = 15_000) {
    const result = await stopProcess(this.child, signal, graceMs);
    await this.logWritten;
    return result;
  }

  /** A new process on the same datadir, on the same P2P port unless told otherwise. */
  async restart(options: StartOptions = this.options): Promise<this> {
    if (this.alive) await this.stop();
    return this.start({ p2pPort: this.p2pPort, ...options });
  }

  logTail(lines: number): string {
    if (!existsSync(this.logFile)) return '(no log)';
    return readFileSync(this.logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  }

  /** The node's log lines (JSON, one per line) whose message matches. */
  logLines(match: RegExp): string[] {
    if (!existsSync(this.logFile)) return [];
    return readFileSync(this.logFile, 'utf8').split('\n').filter((l) => match.test(l));
  }
}

export interface ClusterOptions {
  /** The network's name: every e2e network has its own genesis. */
  readonly name: string;
  /** Extra funded accounts besides the devnet key, in base units. */
  readonly alloc?: readonly { readonly address: Uint8Array; readonly balance: bigint }[];
  /** The genesis target (default E2E_TARGET). */
  readonly target?: string;
  /** How long ago the genesis is dated (default an hour): room for a pre-built chain one second per block. */
  readonly ageSeconds?: number;
}

/**
 * A temporary root holding a test genesis and the datadirs of its nodes. The genesis is the
 * bundled devnet's, renamed, dated an hour ago, with one-second blocks, an easy target and a
 * half-life so long that difficulty stays at the genesis target however fast the tests mine.
 */
export class Cluster {
  readonly root: { path: string; remove: () => void };
  readonly genesisFile: string;
  readonly params: ChainParams;
  readonly genesisHash: string;
  readonly nodes: NodeProc[] = [];

  constructor(o: ClusterOptions) {
    this.root = tempDir(`cairn-e2e-${o.name}-`);
    const devnet = JSON.parse(readFileSync(BUNDLED_GENESIS, 'utf8')) as Record<string, unknown>;
    const alloc = { ...(devnet.alloc as Record<string, string>) };
    for (const a of o.alloc ?? []) alloc[encodeAddress(a.address)] = a.balance.toString();
    const genesis = {
      ...devnet,
      name: `cairn-e2e-${o.name}`,
      // A chain id of its own: the devnet's would be warned of (cli/datadir.ts sharedChainIdWarning).
      chainId: 4242,
      timestamp: Math.floor(Date.now() / 1000) - (o.ageSeconds ?? 3600),
      target: o.target ?? E2E_TARGET,
      blockTime: 1,
      asertHalfLife: 1_000_000,
      alloc,
    };
    this.genesisFile = join(this.root.path, 'genesis.json');
    writeFileSync(this.genesisFile, JSON.stringify(genesis, null, 2) + '\n');
    this.params = parseGenesis(readFileSync(this.genesisFile, 'utf8'));
    this.genesisHash = genesisHashHex(this.params);
  }

  /** Protocol ids and topics carry the first 16 hex digits of the genesis hash. */
  get ns(): string {
    return this.genesisHash.slice(0, 16);
  }

  /** The supply every state must hold: the allocations plus one reward per block. */
  supplyAt(height: number): bigint {
    return this.params.alloc.reduce((s, a) => s + a.balance, 0n) + this.params.reward * BigInt(height);
  }

  node(name: string): NodeProc {
    const n = new NodeProc(name, join(this.root.path, name), this.genesisFile, join(this.root.path, `${name}.log`));
    this.nodes.push(n);
    return n;
  }

  async startNode(name: string, options: StartOptions = {}): Promise<NodeProc> {
    return this.node(name).start(options);
  }

  /**
   * The tails of every node's log, after the warnings and penalties from anywhere in it (a ban
   * long before the end explains a failure at the end): printed when a scenario fails.
   */
  logs(lines = 25): string {
    return this.nodes
      .map((n) => {
        const notable = n.logLines(/"level":(4|5|6)0|"msg":"penalised peer"/).slice(-30);
        return `--- ${n.name} (${n.logFile})\n${notable.length > 0 ? `warnings and penalties (last ${notable.length}):\n${notable.join('\n')}\ntail:\n` : ''}${n.logTail(lines)}`;
      })
      .join('\n');
  }

  /** Stops every node by pid (SIGTERM, SIGKILL after 10 s) and removes the files. */
  async destroy(): Promise<void> {
    await Promise.all(this.nodes.filter((n) => n.child).map((n) => stopProcess(n.child, 'SIGTERM', 10_000)));
    if (!process.env['CAIRN_E2E_KEEP']) this.root.remove();
  }
}

/** Status of every node, in parallel. */
export function statuses(nodes: readonly NodeProc[]): Promise<StatusResult[]> {
  return Promise.all(nodes.map((n) => n.status()));
}

/** The common head once all `nodes` report the same one (undefined otherwise): for waitFor. */
export async function commonHead(nodes: readonly NodeProc[]): Promise<StatusResult | undefined> {
  const all = await statuses(nodes);
  return all.every((s) => s.head === all[0]!.head) ? all[0] : undefined;
}

/** Seconds as text with one decimal, for the printed measurements. */
export function secs(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

/** A line of measurements, indented under mocha's test title. */
export function report(line: string): void {
  console.log(`      ${line}`);
}

/**
 * The clusters a describe block makes: destroyed after each test, their nodes' log tails printed
 * first when the test failed.
 */
export function clusters(): (o: ClusterOptions) => Cluster {
  const made: Cluster[] = [];
  afterEach(async function () {
    if (this.currentTest?.state === 'failed') for (const c of made) console.log(c.logs());
    await Promise.all(made.splice(0).map((c) => c.destroy()));
  });
  return (o) => {
    const c = new Cluster(o);
    made.push(c);
    return c;
  };
}

/** A transfer signed here, as a wallet would: its id and the hex `sendRawTransaction` takes. */
export function signedTransfer(params: ChainParams, from: TestKey, to: Uint8Array, amount: bigint, nonce: bigint, fee = 1n): { id: string; hex: string } {
  const tx = signTransaction({ chainId: params.chainId, to, amount, fee, nonce }, from.privateKey);
  return { id: toHex(tx.id), hex: toHex(tx.bytes) };
}

/** A keystore holding the devnet key (imported with the CLI), for `cairn send`. */
export async function devnetKeystore(cluster: Cluster): Promise<{ keystore: string; passwordFile: string }> {
  const keystore = join(cluster.root.path, 'keystore');
  const passwordFile = join(cluster.root.path, 'password');
  const keyFile = join(cluster.root.path, 'devkey.hex');
  writeFileSync(passwordFile, 'e2e test password\n', { mode: 0o600 });
  writeFileSync(keyFile, toHex(DEVNET_PRIVATE_KEY) + '\n', { mode: 0o600 });
  const imported = await cairnJson<{ address: string }>(['keys', 'import', '--keystore', keystore, '--password-file', passwordFile, keyFile]);
  if (imported.address !== DEVNET_ADDRESS) throw new Error(`imported ${imported.address}, expected ${DEVNET_ADDRESS}`);
  return { keystore, passwordFile };
}
