import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { encodeAddress } from '../ledger/keys.ts';
import { RPC_ENDPOINT_FILE, type RpcEndpointFile } from '../node/rpc-types.ts';
import { CairnError } from '../ledger/errors.ts';
import { count, parse, str, UsageError } from './args.ts';
import { initDatadir } from './datadir.ts';
import { RpcClient } from './rpc-client.ts';
import { cairnCommand } from './self.ts';
import { runningPid } from './start-errors.ts';
import type { Out } from './output.ts';

// The entry this process was started from (the `cairn` launcher, cli/main.ts, or its build in
// dist/), so that a devnet's nodes run the same code as the command that started them.
const ENTRY = process.argv[1]!;

/** A devnet that could not start all its nodes: exit status 1, the others stopped. */
export class DevnetError extends CairnError {
  constructor(message: string) {
    super('DEVNET', message);
  }
}

interface Member {
  readonly name: string;
  readonly datadir: string;
  readonly log: string;
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Where this node's own output starts in its log (a log is appended to, across runs). */
  readonly logStart: number;
}

export async function devnetCommand(argv: string[], out: Out): Promise<void> {
  const { values } = parse(argv, { nodes: { type: 'string' }, datadir: { type: 'string' }, genesis: { type: 'string' }, coinbase: { type: 'string' }, json: { type: 'boolean' } });
  if (values.help) return out.help(HELP);
  const n = count(values, 'nodes', 1, 32) ?? 3;
  const root = resolve(str(values, 'datadir') ?? 'devnet');
  const genesisArgs = str(values, 'genesis') ? ['--genesis', str(values, 'genesis')!] : [];
  const members: Member[] = [];
  let stopping = false;
  // Each node runs in a process group of its own (detached), so that a Ctrl-C at the terminal
  // reaches this process alone and each node is told to stop exactly once, here. In the
  // terminal's group, a node had the terminal's SIGINT and then this SIGTERM: a second signal,
  // which a node takes for an impatient user's and exits at once, mid-shutdown.
  let stopped: Promise<unknown> | undefined;
  // Once only, whoever asks (a signal, a node that failed to start): a second SIGTERM would force.
  const stopAll = () => {
    stopping = true;
    stopped ??= Promise.all(members.map((m) => (signal(m.child, 'SIGTERM'), m.exited)));
    return stopped;
  };
  let signals = 0;
  const onSignal = () => {
    // A second Ctrl-C from the user is passed on as a second signal: the nodes then exit at once,
    // as a node run by itself does.
    if (++signals > 1) {
      for (const m of members) signal(m.child, 'SIGTERM');
      return;
    }
    // Nodes take seconds to stop cleanly: said, or the terminal sat silent after the Ctrl-C.
    const nodes = members.length === 1 ? 'the node' : `the ${members.length} nodes`;
    process.stderr.write(`cairn: stopping ${nodes} (Ctrl-C again stops them at once)\n`);
    void stopAll().then(() => {
      process.stderr.write(`cairn: stopped ${nodes}\n`);
      process.exit(0);
    });
  };
  // SIGHUP too: the terminal's hang-up no longer reaches the nodes' own groups.
  for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(s, onSignal);

  // Another devnet on this directory: said before any node starts. Each node refused on its own
  // named one node of it ("cairn stop --datadir DIR/node-0"), and stopping that one let ours start
  // node-0 and fail on node-1.
  for (let i = 0; i < n; i++) {
    const pid = runningPid(join(root, `node-${i}`));
    if (pid !== undefined) throw new DevnetError(`${root} is in use by another devnet (its node-${i} runs as pid ${pid}): stop it first (Ctrl-C where it runs), or give this one another --datadir`);
  }
  let bootstrap: string[] = [];
  const rows: { name: string; datadir: string; rpc: string; explorer: string; p2p: string; mining: boolean }[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const name = `node-${i}`;
      const datadir = join(root, name);
      const { params } = await initDatadir(datadir, str(values, 'genesis'));
      const mining = i === 0;
      // The miner pays the first funded address of the genesis: on the bundled devnet that is the
      // documented public development key, so mined coins can be spent right away.
      const coinbase = str(values, 'coinbase') ?? (params.alloc[0] ? encodeAddress(params.alloc[0].address) : undefined);
      if (mining && !coinbase) throw new UsageError('this genesis funds nobody: pass --coinbase ADDRESS for the mining node');
      const args = [ENTRY, 'node', '--datadir', datadir, ...genesisArgs, '--p2p-host', '127.0.0.1', '--p2p-port', '0', '--rpc-port', '0', '--http-port', '0', '--no-mdns', '--log-level', 'info'];
      for (const b of bootstrap) args.push('--bootstrap', b);
      if (mining) args.push('--mine', '--coinbase', coinbase!);
      if (stopping) throw new DevnetError('stopped while the nodes were starting'); // stopAll would not know of this one
      const m = startMember(name, datadir, args);
      members.push(m);
      const status = await waitForNode(m, () => stopping);
      if (i === 0) bootstrap = status.listen.filter((a) => a.includes('/127.0.0.1/'));
      rows.push({ name, datadir, rpc: status.rpc, explorer: status.explorer, p2p: status.listen[0] ?? '', mining });
    }
  } catch (err) {
    // Nodes already started would outlive us, each in its own group.
    await stopAll();
    throw err;
  }
  const cairn = cairnCommand();
  out.result(rows, rows.map((r) => `${r.name}${r.mining ? ' (mining)' : ''}\n  datadir  ${r.datadir}\n  rpc      ${r.rpc}\n  explorer ${r.explorer}\n  p2p      ${r.p2p}\n  try      ${cairn} status --datadir ${r.datadir}`).join('\n') + `\n\nlogs in each datadir's node.log; Ctrl-C stops all ${n} nodes`);
  // Until a signal; a node stopped on its own (cairn stop, a crash) is told of, and once none is
  // left there is nothing to wait for.
  const ends = await Promise.all(members.map(async (m) => {
    const end = await m.exited;
    if (!stopping) process.stderr.write(`cairn: ${m.name} exited (${exitText(end)}); see ${m.log}\n`);
    return end;
  }));
  if (!stopping && ends.some((e) => e.code !== 0)) throw new DevnetError(`every node of the devnet has exited, not all cleanly; see their node.log`);
}

/** `cairn node` for one member, its output appended to DATADIR/node.log by the node itself. */
function startMember(name: string, datadir: string, args: string[]): Member {
  const log = join(datadir, 'node.log');
  const fd = openSync(log, 'a');
  let logStart = 0;
  try {
    logStart = statSync(log).size;
    // The log's descriptor, not a pipe through us: a node must not depend on this process to write.
    const child = spawn(process.execPath, args, { stdio: ['ignore', fd, fd], detached: true });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => {
      child.once('exit', (code, sig) => r({ code, signal: sig }));
      child.once('error', () => r({ code: child.exitCode ?? 1, signal: null })); // it could not be started
    });
    return { name, datadir, log, child, exited, logStart };
  } finally {
    closeSync(fd);
  }
}

function signal(child: ChildProcess, sig: NodeJS.Signals): void {
  if (child.exitCode !== null || child.signalCode !== null) return;
  try {
    child.kill(sig);
  } catch {
    // gone already
  }
}

function exitText(e: { code: number | null; signal: NodeJS.Signals | null }): string {
  return e.signal ? `signal ${e.signal}` : `status ${e.code}`;
}

/**
 * Waits until this member's node answers on the endpoint it wrote (rpc.json must name its pid,
 * since another node, another devnet's on the same directory, may have written one there) and
 * has said where its explorer is: on a free port (--http-port 0), which only its log tells.
 */
async function waitForNode(m: Member, stopping: () => boolean): Promise<{ listen: string[]; rpc: string; explorer: string }> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (stopping()) throw new DevnetError('stopped while the nodes were starting');
    if (m.child.exitCode !== null || m.child.signalCode !== null) {
      const why = lastWords(m.log, m.logStart);
      throw new DevnetError(`${m.name} (${m.datadir}) exited before it was ready (${exitText({ code: m.child.exitCode, signal: m.child.signalCode })})${why ? `: ${why}` : ''}; see ${m.log}`);
    }
    try {
      const endpoint = JSON.parse(await readFile(join(m.datadir, RPC_ENDPOINT_FILE), 'utf8')) as RpcEndpointFile;
      const explorer = endpoint.pid === m.child.pid ? explorerUrl(m) : undefined;
      if (explorer !== undefined) {
        const client = new RpcClient(endpoint.url, endpoint.token);
        const status = await client.call('status', {});
        return { listen: status.listen, rpc: client.url, explorer };
      }
    } catch {
      // not written yet, or not answering yet
    }
    if (Date.now() > deadline) throw new DevnetError(`${m.name} (${m.datadir}) did not start within 30 s; see ${m.log}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The explorer's URL this member's node logged on this run, if it has yet. */
function explorerUrl(m: Member): string | undefined {
  for (const line of logLines(m.log, m.logStart)) {
    if (!line.startsWith('{')) continue;
    try {
      const record = JSON.parse(line) as { pid?: unknown; msg?: unknown; url?: unknown };
      if (record.pid === m.child.pid && record.msg === 'explorer and REST API' && typeof record.url === 'string') return record.url;
    } catch {
      // a line still being written
    }
  }
  return undefined;
}

/** A log's lines from `from` on (where this run's output began), trimmed, none empty. */
function logLines(log: string, from: number): string[] {
  try {
    return readFileSync(log).subarray(from).toString('utf8').split('\n').map((l) => l.trim()).filter(Boolean);
  } catch {
    return [];
  }
}

/**
 * What a node that exited said last: its one-line error ("cairn: …", on stderr) if it wrote one,
 * else its last log record's message. Read from where its own output began: lines of another
 * node on the same directory may be interleaved.
 */
function lastWords(log: string, from: number): string | undefined {
  const lines = logLines(log, from);
  const error = lines.findLast((l) => l.startsWith('cairn: '));
  if (error) return error.slice('cairn: '.length);
  const last = lines.at(-1);
  if (last === undefined) return undefined;
  try {
    return String((JSON.parse(last) as { msg?: unknown }).msg ?? last);
  } catch {
    return last;
  }
}

const HELP = `Usage: cairn devnet [--nodes N] [--datadir DIR] [--genesis FILE] [--coinbase ADDRESS] [--json]

Starts N local nodes (default 3) under DIR (default ./devnet), wired together on 127.0.0.1,
the first one mining to the genesis's funded key (on the bundled devnet, the public development
key); prints how to reach each, and its explorer (--json: as JSON, once all answer); Ctrl-C stops them all (cleanly; a second Ctrl-C at once). Another
devnet running on DIR is refused before any node starts; a node that cannot start is named with
its reason, and the others are stopped.

Examples:
  cairn devnet --nodes 3
  cairn devnet --nodes 5 --datadir /tmp/dn`;
