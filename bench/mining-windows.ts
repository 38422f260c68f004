/**
 * The consensus suite's instruments for a mining node: the node itself (store, chain, mempool and
 * a started Miner), its hash rate over a window, and the event-loop lag it causes over a window.
 */
import { realEnv } from '../node/env.ts';
import { readFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { ChainDB } from '../ledger/chaindb.ts';
import type { ChainParams } from '../ledger/genesis.ts';
import { Mempool } from '../ledger/mempool.ts';
import type { Block } from '../ledger/block.ts';
import type { Transaction } from '../ledger/transaction.ts';
import { Chain, type Clock } from '../consensus/chain.ts';
import { MAX_TARGET } from '../consensus/pow.ts';
import { Miner } from '../node/miner.ts';
import { VerifyPool } from '../node/verify-pool.ts';
import { testKey } from '../test/helpers/fixtures.ts';
import { median, type SuiteContext } from './report.ts';

const LAG_RESOLUTION_MS = 10;

/** The target at which `hashesPerSecond` finds a block every `seconds` on average. */
export function targetFor(hashesPerSecond: number, seconds: number): bigint {
  const target = (1n << 256n) / BigInt(Math.max(1, Math.round(hashesPerSecond * seconds))) - 1n;
  return target > MAX_TARGET ? MAX_TARGET : target;
}

export interface MiningNode {
  readonly chain: Chain;
  readonly miner: Miner;
  readonly mined: Block[];
  stop(): Promise<void>;
}

/** A store, chain, mempool (holding `pending`) and a started Miner, wired as a node wires them. */
export async function startMining(ctx: SuiteContext, params: ChainParams, clock: Clock, threads: number, pending: readonly Transaction[]): Promise<MiningNode> {
  const dir = ctx.tempDir('cairn-bench-mining-');
  const db = await ChainDB.open(dir.path, params);
  const chain = await Chain.open(db, { clock });
  const mempool = new Mempool(db, params);
  for (const tx of pending) await mempool.add(tx, clock());
  chain.on('tip', (e) => void mempool.update(e.connected, e.disconnected, clock()));
  const pool = new VerifyPool(threads);
  const miner = new Miner({ chain, mempool, coinbase: testKey(60).address, clock, threads, pool, env: realEnv });
  const mined: Block[] = [];
  const errors: Error[] = [];
  miner.on('mined', (block) => mined.push(block));
  miner.on('error', (err) => errors.push(err));
  miner.start();
  return {
    chain,
    miner,
    mined,
    async stop() {
      try {
        await miner.stop();
        // Let an import, a template rebuild and a mempool update already under way finish before
        // the store closes: each of them queues, and genesis is a no-op through the chain's queue.
        await chain.processBlock(db.genesis);
        await miner.refresh();
        await mempool.update([], [], clock());
      } finally {
        await db.close();
        await pool.close();
        dir.remove();
      }
      if (errors.length > 0) throw errors[0]!;
    },
  };
}

/** How often a hashing thread reports (node/pool-worker.js: 200 slices of 1,000). */
export const WORKER_REPORT_HASHES = 200_000;

/**
 * `miner.hashes` moves in steps: each worker adds its count every 200,000 hashes. The rate is
 * taken from the first step in the window to the last, so that only whole reports are counted.
 */
export async function minerHashWindow(miner: Miner, ms: number): Promise<number> {
  let first: { t: number; hashes: number } | undefined;
  let last: { t: number; hashes: number } | undefined;
  let previous = miner.hashes;
  const end = performance.now() + ms;
  while (performance.now() < end) {
    await sleep(2);
    const hashes = miner.hashes;
    if (hashes === previous) continue;
    previous = hashes;
    last = { t: performance.now(), hashes };
    first ??= last;
  }
  if (!first || !last || first === last) throw new Error(`the miner reported hashes fewer than twice in ${ms} ms`);
  return ((last.hashes - first.hashes) * 1000) / (last.t - first.t);
}

export async function waitForHashes(miner: Miner, hashes: number, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (miner.hashes < hashes) {
    if (performance.now() > deadline) throw new Error(`the miner reported ${miner.hashes} hashes in ${timeoutMs} ms`);
    await sleep(10);
  }
}

/** The histogram holds whole timer intervals, so the lag is what exceeds the resolution. */
function lagMs(nanoseconds: number): number {
  return Math.max(0, nanoseconds / 1e6 - LAG_RESOLUTION_MS);
}

export interface LagWindow {
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
  /** Share of the window the main thread was busy (performance.eventLoopUtilization). */
  readonly utilization: number;
  /** Linux: the main thread's time on a CPU, and runnable but waiting for one, in the window. */
  readonly sched: { readonly runMs: number; readonly waitMs: number } | undefined;
}

/**
 * The main thread's CPU time and run-queue wait in ns, from Linux's schedstat (undefined
 * elsewhere). Lag with little CPU time and much waiting is the scheduler's, not our code's.
 */
function mainThreadSchedstat(): [run: number, wait: number] | undefined {
  try {
    const [run, wait] = readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ').map(Number);
    return Number.isFinite(run) && Number.isFinite(wait) ? [run!, wait!] : undefined;
  } catch {
    return undefined;
  }
}

export async function lagWindow(ms: number): Promise<LagWindow> {
  const histogram = monitorEventLoopDelay({ resolution: LAG_RESOLUTION_MS });
  const elu = performance.eventLoopUtilization();
  const sched = mainThreadSchedstat();
  histogram.enable();
  await sleep(ms);
  histogram.disable();
  const schedEnd = mainThreadSchedstat();
  return {
    p50: lagMs(histogram.percentile(50)),
    p99: lagMs(histogram.percentile(99)),
    max: lagMs(histogram.max),
    utilization: performance.eventLoopUtilization(elu).utilization,
    sched: sched && schedEnd && { runMs: (schedEnd[0] - sched[0]) / 1e6, waitMs: (schedEnd[1] - sched[1]) / 1e6 },
  };
}

/** Where the main thread's time went in the windows (medians): busy share and, on Linux, CPU time vs waiting for a CPU. */
export function mainThreadSummary(windows: readonly LagWindow[]): string {
  const busy = `main thread busy ${(100 * median(windows.map((w) => w.utilization))).toFixed(1)}%`;
  const sched = windows.flatMap((w) => (w.sched ? [w.sched] : []));
  if (sched.length !== windows.length) return busy;
  return `${busy}, ${median(sched.map((s) => s.runMs)).toFixed(0)} ms on a CPU and ${median(sched.map((s) => s.waitMs)).toFixed(0)} ms waiting for one per window`;
}
