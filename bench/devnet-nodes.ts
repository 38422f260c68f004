/**
 * The devnet's nodes: its genesis, its `cairn node` processes and the RPC the bench reaches them
 * by. What a run does with them is in devnet-run.ts; the suite, in devnet.ts.
 */
import { HEADER_BYTES } from '../ledger/block.ts';
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { encodeAddress } from '../ledger/keys.ts';
import { searchNonceWith } from '../consensus/miner.ts';
import { meetsTarget } from '../node/pow-hash.js';
import { RpcClient } from '../cli/rpc-client.ts';
import { RPC_ENDPOINT_FILE, type RpcMethod, type RpcMethods, type StatusResult } from '../node/rpc-types.ts';
import { CAIRN_BIN, exited, track } from '../test/helpers/cluster.ts';
import type { SuiteContext } from './report.ts';
import { SENDER_BALANCE, benchKey, type BenchKey } from './perf-common.ts';
import { MAX_TARGET } from '../consensus/pow.ts';

export const DEVNET_NODES = 3;
export const DEVNET_BLOCK_TIME = 2;
/** Short, so that the target follows the hash rate the mining thread really gets on a busy machine. */
export const DEVNET_HALF_LIFE = 10;
/** Extra flags for the node processes, e.g. CAIRN_BENCH_NODE_FLAGS="--cpu-prof --cpu-prof-dir=/tmp/prof". */
const NODE_FLAGS = (process.env.CAIRN_BENCH_NODE_FLAGS ?? '').split(/\s+/).filter(Boolean);

export interface DevnetNode {
  readonly name: string;
  readonly datadir: string;
  readonly child: ChildProcess;
  client: RpcClient;
  listen: string[];
  /** The node's own memory report (status.memory) with the highest rss seen while sampled. */
  peakMemory?: StatusResult['memory'];
  /** RPC calls retried after a dropped connection (see `call`). */
  retries: number;
  /** The slowest answer to `status` while sampled: how long the node's event loop was busy at most. */
  maxStatusMs: number;
}

/** One VmRSS sample of a node process, and whether the bench's convergence check had begun. */
export interface RssSample {
  readonly mb: number;
  readonly auditing: boolean;
}

/**
 * A node's RSS figures from its samples. `mb` is the largest of all of them: issue #19 asks for
 * every sample from start to end, no window excluded. `beforeAuditMb` leaves out those taken once
 * the convergence check began (its auditState replays the chain from genesis), which is what
 * `rssMb` was until 2026-12-06: kept beside it so that runs before and after compare.
 */
export function rssPeaks(samples: readonly RssSample[]): { mb: number; beforeAuditMb: number } {
  let mb = 0;
  let beforeAuditMb = 0;
  for (const s of samples) {
    mb = Math.max(mb, s.mb);
    if (!s.auditing) beforeAuditMb = Math.max(beforeAuditMb, s.mb);
  }
  return { mb, beforeAuditMb };
}

/**
 * Samples the VmRSS of every node process every 250 ms, each from the moment it is spawned
 * (`watch`) until `stop`: start-up included, as a user's node has one.
 */
export class RssWatch {
  /** Set when the convergence check starts; the samples from then on say so. */
  auditing = false;
  private readonly samples = new Map<number, RssSample[]>();
  private readonly timer: NodeJS.Timeout;

  constructor(intervalMs = 250) {
    this.timer = setInterval(() => this.sample(), intervalMs);
  }

  watch(pid: number | undefined): void {
    if (pid === undefined || this.samples.has(pid)) return;
    this.samples.set(pid, []);
    this.sample();
  }

  sample(): void {
    for (const [pid, list] of this.samples) {
      const mb = rssMbOf(pid);
      if (mb !== undefined) list.push({ mb, auditing: this.auditing });
    }
  }

  peaks(pid: number | undefined): { mb: number; beforeAuditMb: number } {
    return rssPeaks(pid === undefined ? [] : (this.samples.get(pid) ?? []));
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

/** Fields of a process's /proc/PID/status in MB (`VmRSS`, `RssAnon`, `RssFile`: given in kB; NaN where absent, as in a zombie's), undefined once it has ended. */
export function procStatusMb<F extends string>(pid: number, fields: readonly F[]): Record<F, number> | undefined {
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined;
  }
  const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+)\\s+kB`).exec(status)?.[1] ?? NaN);
  return Object.fromEntries(fields.map((f) => [f, kb(f) / 1024])) as Record<F, number>;
}

export function rssMbOf(pid: number): number | undefined {
  const mb = procStatusMb(pid, ['VmRSS'])?.VmRSS;
  return mb === undefined || Number.isNaN(mb) ? undefined : mb;
}

/** Hashes a second with one thread, as a node's hashing thread does (node/pow-hash.js, one header at a time). */
export function hashRate(): number {
  const header = new Uint8Array(HEADER_BYTES);
  const never = meetsTarget(new Uint8Array(32)); // only an all-zero hash would meet it
  searchNonceWith(header, 0n, 20_000, never);
  const start = performance.now();
  let hashes = 0;
  while (performance.now() - start < 500) {
    searchNonceWith(header, BigInt(hashes), 20_000, never);
    hashes += 20_000;
  }
  return (hashes * 1000) / (performance.now() - start);
}

export const DEVNET_CHAIN_ID = 4207;
/** The share of a core the mining thread is reckoned to get: it shares the machine with three nodes, and often with others. */
const DEVNET_MINER_SHARE = 4;
/** The address the devnet's miner pays to. */
export const DEVNET_MINER = benchKey(999_998).address;

/**
 * The genesis target for one block a block time from a mining thread with a quarter of a core,
 * from one thread's hash rate measured here (`rate`); ASERT, with a short half-life, corrects the rest.
 */
export function devnetTarget(): { rate: number; target: bigint } {
  const rate = hashRate();
  const target = (1n << 256n) / BigInt(Math.max(1, Math.round((rate / DEVNET_MINER_SHARE) * DEVNET_BLOCK_TIME)));
  return { rate, target: target > MAX_TARGET ? MAX_TARGET : target };
}

export function devnetGenesis(senders: readonly BenchKey[], target: bigint): string {
  const alloc: Record<string, string> = {};
  for (const key of senders) alloc[encodeAddress(key.address)] = SENDER_BALANCE.toString();
  return JSON.stringify({
    name: 'cairn-bench-devnet',
    chainId: DEVNET_CHAIN_ID,
    timestamp: Math.floor(Date.now() / 1000) - 60,
    target: `0x${target.toString(16)}`,
    blockTime: DEVNET_BLOCK_TIME,
    asertHalfLife: DEVNET_HALF_LIFE,
    reward: '5000000000',
    unit: 'CRN',
    decimals: 8,
    limits: { maxBlockBytes: 16 * 1024 * 1024, maxBlockTxs: 50_000 },
    alloc,
  });
}

export async function startDevnetNode(ctx: SuiteContext, name: string, genesisFile: string, bootstrap: readonly string[], mine: Uint8Array | undefined, rss: RssWatch): Promise<DevnetNode> {
  const datadir = ctx.tempDir(`cairn-bench-devnet-${name}-`).path;
  const args = [...NODE_FLAGS, CAIRN_BIN, 'node', '--datadir', datadir, '--genesis', genesisFile, '--p2p-host', '127.0.0.1', '--p2p-port', '0', '--rpc-port', '0', '--http-port', '0', '--no-mdns', '--log-level', 'info'];
  for (const b of bootstrap) args.push('--bootstrap', b);
  if (mine) args.push('--mine', '--coinbase', encodeAddress(mine), '--threads', '1');
  // As a user would start it: without the bench's own threadpool size (bench/threadpool.ts).
  const { UV_THREADPOOL_SIZE: _benchOnly, ...env } = process.env;
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: datadir, env });
  track(child); // killed if the bench exits without stopping it
  rss.watch(child.pid);
  const log = createWriteStream(join(datadir, 'node.log'));
  child.stdout!.pipe(log);
  child.stderr!.pipe(log);
  const deadline = performance.now() + 60_000;
  for (;;) {
    if (exited(child)) throw new Error(`${name} exited (${child.exitCode ?? child.signalCode}); see ${join(datadir, 'node.log')}`);
    try {
      const client = await RpcClient.fromDatadir(datadir);
      const status = await client.call('status', {});
      return { name, datadir, child, client, listen: status.listen, retries: 0, maxStatusMs: 0 };
    } catch {
      if (performance.now() > deadline) throw new Error(`${name} did not answer RPC within 60 s (${join(datadir, RPC_ENDPOINT_FILE)})`);
      await sleep(200);
    }
  }
}

/**
 * The devnet's DEVNET_NODES nodes, each bootstrapped off the one before (a line), the first mining,
 * pushed onto `nodes` as each answers (so that whoever stops them finds every one started).
 */
export async function startDevnet(ctx: SuiteContext, genesisFile: string, rss: RssWatch, nodes: DevnetNode[]): Promise<void> {
  for (let i = 0; i < DEVNET_NODES; i++) {
    const bootstrap = i === 0 ? [] : nodes[i - 1]!.listen.filter((a) => a.includes('/127.0.0.1/'));
    nodes.push(await startDevnetNode(ctx, `node-${i}`, genesisFile, bootstrap, i === 0 ? DEVNET_MINER : undefined, rss));
  }
}

/**
 * An RPC call that survives one kind of transient failure: a node whose event loop was blocked
 * for longer than its HTTP keep-alive timeout (5 s) closes the client's idle connection as it
 * wakes, racing the next request on it, which then fails without reaching the node. Such a call
 * is retried (a resubmitted transaction is at worst refused as a duplicate) while the process lives.
 */
export async function call<M extends RpcMethod>(n: DevnetNode, method: M, params: RpcMethods[M]['params'], tries = 3): Promise<RpcMethods[M]['result']> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await n.client.call(method, params);
    } catch (err) {
      if (attempt >= tries || exited(n.child) || (err as { code?: string }).code !== 'NODE_NOT_RUNNING') throw err;
      n.retries++;
      await sleep(100);
    }
  }
}

/** A node's status answer, stamped with when it arrived (performance.now()). */
export interface StatusAnswer {
  readonly at: number;
  readonly status: StatusResult;
}

/**
 * Asks each of `count` nodes for its status in a loop of its own, with `pause()` between a node's
 * answer and its next question, while `polling()` holds; `answers[i]` are node i's, in order.
 * `done` rejects with the first failed question. A node whose event loop stalls delays only its
 * own answers: asked together, one node's stall of seconds held every node's next sample, and the
 * miner's heights were stamped with the slowest node's arrival.
 */
export function pollStatuses(
  count: number,
  ask: (i: number) => Promise<StatusResult>,
  pause: () => Promise<unknown>,
  polling: () => boolean,
): { answers: StatusAnswer[][]; done: Promise<void> } {
  const answers: StatusAnswer[][] = Array.from({ length: count }, () => []);
  const loop = async (i: number) => {
    while (polling()) {
      const status = await ask(i);
      answers[i]!.push({ at: performance.now(), status });
      await pause();
    }
  };
  return { answers, done: Promise.all(answers.map((_, i) => loop(i))).then(() => undefined) };
}

/** Heads equal, and each node's state digest at that head equal: the devnet agrees. */
export async function converged(nodes: readonly DevnetNode[]): Promise<{ height: number; head: string } | undefined> {
  const statuses = await Promise.all(nodes.map((n) => call(n, 'status', {})));
  if (!statuses.every((s) => s.head === statuses[0]!.head)) return undefined;
  const audits = await Promise.all(nodes.map((n) => call(n, 'auditState', {})));
  if (!audits.every((a) => a.head === audits[0]!.head && a.digest === audits[0]!.digest)) return undefined;
  return { height: audits[0]!.height, head: audits[0]!.head };
}
