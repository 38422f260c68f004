import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { setPriority } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { withCompileCache } from './compile-cache.ts';

export const REPO = fileURLToPath(new URL('../../', import.meta.url));
export const CAIRN_MAIN = join(REPO, 'cli', 'main.ts');
export const CAIRN_BIN = join(REPO, 'cli', 'cairn.mjs');

/** The documented public devnet key (README): funded by the bundled genesis, spendable by anyone. */
export const DEVNET_PRIVATE_KEY = '8010557e47b9eac54915c85a544ff38a80598f1ee6010fde2ef745789f9008c6';
export const DEVNET_ADDRESS = 'cairn12rqpp3a5l5vef8weqsvd42g9rzmqx4la30zrhz';

/** Every process these helpers started and that has not exited yet, for `killAll` in hooks. */
const live = new Set<ChildProcess>();

export interface CliResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface RunOptions {
  readonly env?: Record<string, string>;
  readonly input?: string;
  /**
   * `input` through an OS pipe, as `cat FILE | cairn …` gives it: the stdin Node gives a child is
   * a socket, which Linux does not open again by /dev/stdin.
   */
  readonly inputThroughPipe?: boolean;
  /** The process is killed (and the promise rejects) when it has not exited by then. */
  readonly timeoutMs?: number;
  readonly script?: string;
  /** The folder the command runs in (default: the checkout). */
  readonly cwd?: string;
  /**
   * Where stdout goes instead of being collected: `'gone'`, a pipe whose reader has gone (`| head
   * -1` once head has quit: every write fails with EPIPE), or an open file descriptor (/dev/full).
   */
  readonly stdoutTo?: 'gone' | number;
}

/**
 * The environment a child sees: ours without the variables the CLI reads, so that a developer's
 * CAIRN_PASSWORD cannot change what a test proves.
 */
function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env['CAIRN_PASSWORD'];
  delete env['CAIRN_RPC_TOKEN'];
  return withCompileCache({ ...env, ...extra });
}

/** Runs `cairn ARGS` as a real process under this Node (24, the project's) and collects its output. */
export function runCli(args: readonly string[], options: RunOptions = {}): Promise<CliResult> {
  const argv = [options.script ?? CAIRN_MAIN, ...args];
  const [command, commandArgs] = options.inputThroughPipe ? ['sh', ['-c', 'cat | "$0" "$@"', process.execPath, ...argv]] : [process.execPath, argv];
  const child = spawn(command, commandArgs, {
    cwd: options.cwd ?? REPO,
    env: childEnv(options.env),
    stdio: [options.input === undefined ? 'ignore' : 'pipe', typeof options.stdoutTo === 'number' ? options.stdoutTo : 'pipe', 'pipe'],
  });
  live.add(child);
  let stdout = '';
  let stderr = '';
  if (options.stdoutTo === 'gone') child.stdout!.destroy();
  else child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  if (options.input !== undefined) child.stdin!.end(options.input);
  const timeoutMs = options.timeoutMs ?? 30_000;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`cairn ${args.join(' ')} did not exit within ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      live.delete(child);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      live.delete(child);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** Runs a command that must succeed with --json output, and returns that output parsed. */
export async function cliJson<T = Record<string, unknown>>(args: readonly string[], options: RunOptions = {}): Promise<T> {
  const r = await runCli([...args, '--json'], options);
  if (r.code !== 0) throw new Error(`cairn ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

/** A long-running `cairn` child (a node) whose output is kept for diagnostics. */
export interface CliChild {
  readonly child: ChildProcess;
  readonly pid: number;
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit status once the process has exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * `nice`: a niceness for the child (0 to 19). Set right after spawn, before the child has loaded
 * its modules, so the threads it starts later (a miner's worker) inherit it.
 */
export function spawnCli(args: readonly string[], options: { nice?: number } = {}): CliChild {
  const child = spawn(process.execPath, [CAIRN_MAIN, ...args], { cwd: REPO, env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  if (options.nice !== undefined && child.pid !== undefined) {
    try {
      setPriority(child.pid, options.nice);
    } catch {
      // Only slower where the platform refuses.
    }
  }
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('close', (code, signal) => {
      live.delete(child);
      resolve({ code, signal });
    });
  });
  if (child.pid === undefined) throw new Error('could not spawn cairn');
  return { child, pid: child.pid, stdout: () => stdout, stderr: () => stderr, exited };
}

/**
 * The arguments for `script` (util-linux) to run `argv` on a terminal of its own. The command is
 * exec'd: `script` hands it to $SHELL -c, or to /bin/sh where SHELL is unset (as in CI), and dash
 * there stays as the command's parent, in its foreground group. The terminal's Ctrl-C then killed
 * that shell too, and `script -e` reported its death (130), not the command's clean exit.
 */
export function scriptArgs(argv: readonly string[]): string[] {
  const quoted = argv.map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(' ');
  return ['-qfec', `exec ${quoted}`, '/dev/null'];
}

/**
 * Sends SIGTERM and waits up to `graceMs` for the exit, then SIGKILLs by pid and waits again.
 * Returns the exit status and whether the grace period sufficed.
 */
export async function stopChild(c: CliChild, graceMs = 10_000): Promise<{ code: number | null; signal: NodeJS.Signals | null; graceful: boolean }> {
  if (c.child.exitCode !== null || c.child.signalCode !== null) return { ...(await c.exited), graceful: true };
  signal(c.pid, 'SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const inTime = await Promise.race([c.exited.then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), graceMs)))]);
  clearTimeout(timer);
  if (!inTime) signal(c.pid, 'SIGKILL');
  return { ...(await c.exited), graceful: inTime };
}

/** SIGKILLs, by pid, every process these helpers started that is still running, but `keep`. */
export async function killAll(keep: readonly (CliChild | undefined)[] = []): Promise<void> {
  const children = [...live].filter((c) => !keep.some((k) => k?.child === c));
  for (const c of children) if (c.pid !== undefined && c.exitCode === null && c.signalCode === null) signal(c.pid, 'SIGKILL');
  await Promise.all(children.map((c) => (c.exitCode === null && c.signalCode === null ? new Promise((r) => c.once('close', r)) : undefined)));
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // Already gone.
  }
}

export function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Polls `probe` until it returns a value other than undefined, or throws once `timeoutMs` has
 * passed, naming `what` and the last failure.
 */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number, intervalMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await delay(intervalMs);
  }
}

/**
 * A test network: the bundled devnet genesis (so its public key stays funded) with a name of its
 * own, a target one core meets in a fraction of a second (about 2^18 hashes), one-second blocks,
 * and a timestamp a minute ago. Returns the file written.
 */
export function writeTestGenesis(dir: string, name = 'cairn-cli-test'): string {
  const bundled = JSON.parse(readFileSync(join(REPO, 'genesis.json'), 'utf8')) as Record<string, unknown>;
  const genesis = {
    ...bundled,
    name,
    // A chain id of its own: the devnet's is warned of on another network (cli/datadir.ts).
    chainId: 4243,
    target: '0x00003fffffffffffffffffffffffffffffffffffffffffffffffffffffffffff',
    blockTime: 1,
    asertHalfLife: 10,
    timestamp: Math.floor(Date.now() / 1000) - 60,
  };
  const file = join(dir, 'genesis.json');
  writeFileSync(file, JSON.stringify(genesis, null, 2) + '\n');
  return file;
}

/** A TCP port that was free a moment ago and on which nothing listens now. */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (typeof address !== 'object' || address === null) throw new Error('no port');
  return address.port;
}

/** A server holding a port on 127.0.0.1, as another program would. */
export async function holdPort(): Promise<{ port: number; server: Server }> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (typeof address !== 'object' || address === null) throw new Error('no port');
  return { port: address.port, server };
}
