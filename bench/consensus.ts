import { realEnv } from '../node/env.ts';
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { ChainDB } from '../ledger/chaindb.ts';
import { genesisBlock, type ChainParams } from '../ledger/genesis.ts';
import { Mempool } from '../ledger/mempool.ts';
import { inlineSignatureChecker, type SignatureChecker } from '../ledger/state.ts';
import type { Block } from '../ledger/block.ts';
import type { Transaction } from '../ledger/transaction.ts';
import { Chain, type Clock, type ReorgEvent } from '../consensus/chain.ts';
import { MAX_TARGET } from '../consensus/pow.ts';
import { searchNonceWith } from '../consensus/miner.ts';
import { meetsTarget } from '../node/pow-hash.js';
import { Miner } from '../node/miner.ts';
import { VerifyPool } from '../node/verify-pool.ts';
import { FUNDED_KEYS, seededRandom, testKey, testParams, transfer } from '../test/helpers/fixtures.ts';
import { asParent, mineChild } from '../test/helpers/mining.ts';
import { measureRate, median, metric, type Metric, type Suite, type SuiteContext } from './report.ts';

/** The chain connected from genesis for the connect rates; its first REORG_DEPTH blocks are the reorg's main chain. */
const CONNECT_BLOCKS = 200;
/** Signed transfers per pre-mined block: a few, so the figures include signature checks without being only that. */
const TXS_PER_BLOCK = 3;
const REORG_DEPTH = 100;
/** Hashes per `searchNonce` call in the single-thread rate: about 10 ms, like a worker's slices. */
const HASH_BATCH = 10_000;
/** One miner hash-rate window, and one event-loop-lag window. */
const MINER_WINDOW_MS = 2000;
const LAG_WINDOW_MS = 2000;
const LAG_RESOLUTION_MS = 10;
/** What the issue asks of the event loop while mining. */
const LAG_GOAL_MS = 50;
/** Blocks are found about this often in the lag windows, so that imports and template rebuilds land in them. */
const LAG_BLOCK_SECONDS = 1;
const LAG_BLOCK_TXS = 4;
/** Pending transfers per funded key for the lag session: more than the windows' blocks can take. */
const LAG_POOL_TXS_PER_KEY = 40;


/**
 * `TXS_PER_BLOCK` signed transfers per block from the funded keys in turn, each paying another
 * funded key or a new address (so accounts are created too). Seeds differ between branches, so
 * a competing branch spends the same nonces on different payments.
 */
function buildChain(params: ChainParams, length: number, seed: number, miner: Uint8Array): Block[] {
  const random = seededRandom(seed);
  const nonces = FUNDED_KEYS.map(() => 0n);
  const blocks: Block[] = [];
  let parent = asParent(genesisBlock(params));
  for (let b = 0; b < length; b++) {
    const txs: Transaction[] = [];
    for (let j = 0; j < TXS_PER_BLOCK; j++) {
      const s = (b * TXS_PER_BLOCK + j) % FUNDED_KEYS.length;
      const to = random.int(2) === 0 ? FUNDED_KEYS[random.int(FUNDED_KEYS.length)]!.address : random.bytes(20);
      const nonce = nonces[s]!;
      nonces[s] = nonce + 1n;
      txs.push(transfer(FUNDED_KEYS[s]!, to, 1n + BigInt(random.int(1000)), nonce, 1n + BigInt(random.int(10)), params.chainId));
    }
    const block = mineChild(params, parent, txs, { miner });
    blocks.push(block);
    parent = asParent(block);
  }
  return blocks;
}

/** Signature checks that setup can switch off, so that only the timed part pays for them. */
function switchableSignatures(): SignatureChecker & { enabled: boolean } {
  return {
    enabled: true,
    async checkBlockSignatures(txs) {
      if (this.enabled) await inlineSignatureChecker.checkBlockSignatures(txs);
    },
  };
}

async function withChain<T>(ctx: SuiteContext, params: ChainParams, options: { clock: Clock; signatures?: SignatureChecker }, work: (chain: Chain) => Promise<T>): Promise<T> {
  const dir = ctx.tempDir('cairn-bench-consensus-');
  const db = await ChainDB.open(dir.path, params);
  try {
    return await work(await Chain.open(db, options));
  } finally {
    await db.close();
    dir.remove();
  }
}

async function expectOutcome(chain: Chain, block: Block, expected: string): Promise<void> {
  const outcome = await chain.processBlock(block);
  if (outcome !== expected) throw new Error(`block ${block.header.height} was ${outcome}, expected ${expected}`);
}

/** `processBlock` of every block into a fresh store: the import path a syncing node takes. */
async function connectRun(ctx: SuiteContext, params: ChainParams, clock: Clock, blocks: readonly Block[]): Promise<{ blocks: number; txs: number; ms: number }> {
  return withChain(ctx, params, { clock }, async (chain) => {
    const start = performance.now();
    for (const block of blocks) await expectOutcome(chain, block, 'connected');
    const ms = performance.now() - start;
    return { blocks: blocks.length, txs: blocks.reduce((n, b) => n + b.txs.length, 0), ms };
  });
}

/**
 * `main` connected and all but the last block of `branch` stored as a side branch, signatures
 * skipped for that setup; then the milliseconds `processBlock` takes for the block that makes
 * `branch` heavier, which disconnects all of `main` and connects all of `branch`, signatures checked.
 */
async function reorgRun(ctx: SuiteContext, params: ChainParams, clock: Clock, main: readonly Block[], branch: readonly Block[]): Promise<number> {
  const signatures = switchableSignatures();
  return withChain(ctx, params, { clock, signatures }, async (chain) => {
    signatures.enabled = false;
    for (const block of main) await expectOutcome(chain, block, 'connected');
    for (const block of branch.slice(0, -1)) await expectOutcome(chain, block, 'side-branch');
    signatures.enabled = true;
    let reorg: ReorgEvent | undefined;
    chain.on('tip', (event) => (reorg = event));
    const start = performance.now();
    await expectOutcome(chain, branch.at(-1)!, 'connected');
    const ms = performance.now() - start;
    if (reorg?.disconnected.length !== main.length || reorg.connected.length !== branch.length) {
      throw new Error(`the reorg took off ${reorg?.disconnected.length} and put on ${reorg?.connected.length} blocks`);
    }
    return ms;
  });
}

/** The target at which `hashesPerSecond` finds a block every `seconds` on average. */
function targetFor(hashesPerSecond: number, seconds: number): bigint {
  const target = (1n << 256n) / BigInt(Math.max(1, Math.round(hashesPerSecond * seconds))) - 1n;
  return target > MAX_TARGET ? MAX_TARGET : target;
}

interface MiningNode {
  readonly chain: Chain;
  readonly miner: Miner;
  readonly mined: Block[];
  stop(): Promise<void>;
}

/** A store, chain, mempool (holding `pending`) and a started Miner, wired as a node wires them. */
async function startMining(ctx: SuiteContext, params: ChainParams, clock: Clock, threads: number, pending: readonly Transaction[]): Promise<MiningNode> {
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
const WORKER_REPORT_HASHES = 200_000;

/**
 * `miner.hashes` moves in steps: each worker adds its count every 200,000 hashes. The rate is
 * taken from the first step in the window to the last, so that only whole reports are counted.
 */
async function minerHashWindow(miner: Miner, ms: number): Promise<number> {
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

async function waitForHashes(miner: Miner, hashes: number, timeoutMs: number): Promise<void> {
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

interface LagWindow {
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

async function lagWindow(ms: number): Promise<LagWindow> {
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
function mainThreadSummary(windows: readonly LagWindow[]): string {
  const busy = `main thread busy ${(100 * median(windows.map((w) => w.utilization))).toFixed(1)}%`;
  const sched = windows.flatMap((w) => (w.sched ? [w.sched] : []));
  if (sched.length !== windows.length) return busy;
  return `${busy}, ${median(sched.map((s) => s.runMs)).toFixed(0)} ms on a CPU and ${median(sched.map((s) => s.waitMs)).toFixed(0)} ms waiting for one per window`;
}

const ms1 = (value: number): string => value.toFixed(1);

export const consensusSuite: Suite = {
  name: 'consensus',
  description: 'chain import and reorg through Chain.processBlock, hash rate, event-loop lag while mining',
  async run(ctx) {
    const metrics: Metric[] = [];
    const params = testParams({ name: 'cairn-bench-consensus' });
    // Far enough ahead that no pre-mined timestamp is "too new", and fixed, so runs are alike.
    const clock: Clock = () => params.timestamp + params.blockTime * (CONNECT_BLOCKS + 10);

    const setupStart = performance.now();
    const main = buildChain(params, CONNECT_BLOCKS, 11, testKey(99).address);
    const branch = buildChain(params, REORG_DEPTH + 1, 12, testKey(98).address);
    ctx.log(
      `consensus: pre-mined ${main.length} + ${branch.length} blocks with ${(main.length + branch.length) * TXS_PER_BLOCK} signed transfers in ` +
        `${((performance.now() - setupStart) / 1000).toFixed(1)} s (not timed)`,
    );

    ctx.log('consensus: chainConnectBlocksPerSec, chainConnectTxPerSec');
    await connectRun(ctx, params, clock, main.slice(0, 10)); // warm-up: JIT, LevelDB's first open
    const connects = [];
    for (let r = 0; r < ctx.runs; r++) connects.push(await connectRun(ctx, params, clock, main));
    const connectNote = `${CONNECT_BLOCKS} blocks of ${TXS_PER_BLOCK} signed transfers, fresh store per run`;
    metrics.push(
      metric({
        key: 'chainConnectBlocksPerSec',
        label: 'chain import via Chain.processBlock, signatures checked',
        unit: 'block/s',
        runs: connects.map((c) => (c.blocks * 1000) / c.ms),
        note: connectNote,
      }),
      metric({
        key: 'chainConnectTxPerSec',
        label: 'chain import via Chain.processBlock, signatures checked',
        unit: 'tx/s',
        runs: connects.map((c) => (c.txs * 1000) / c.ms),
        note: `${connectNote}; coinbases not counted`,
      }),
    );

    ctx.log('consensus: reorg100Ms');
    const reorgMain = main.slice(0, REORG_DEPTH);
    const reorgs: number[] = [];
    for (let r = 0; r < ctx.runs; r++) reorgs.push(await reorgRun(ctx, params, clock, reorgMain, branch));
    metrics.push(
      metric({
        key: 'reorg100Ms',
        label: `reorg: disconnect ${REORG_DEPTH}, connect ${REORG_DEPTH + 1} blocks`,
        unit: 'ms',
        runs: reorgs,
        note: `blocks of ${TXS_PER_BLOCK} signed transfers, the branch spending the same nonces differently; ${(REORG_DEPTH + 1) * TXS_PER_BLOCK} signatures checked`,
      }),
    );

    ctx.log('consensus: hashRatePerThread');
    const header = genesisBlock(params).header.bytes;
    const meets = meetsTarget(new Uint8Array(32)); // only an all-zero hash meets it; judged as the mining thread does
    let nonce = 0n;
    const hashRuns = await measureRate(
      () => {
        if (searchNonceWith(header, nonce, HASH_BATCH, meets) !== undefined) throw new Error('an all-zero hash');
        nonce += BigInt(HASH_BATCH);
        return HASH_BATCH;
      },
      { runs: ctx.runs, minMs: 500 },
    );
    metrics.push(
      metric({
        key: 'hashRatePerThread',
        label: "searchNonceWith, 1 thread, node:crypto hash('sha256', …, 'hex')",
        unit: 'hash/s',
        runs: hashRuns,
        note: 'the main thread, nothing else running in the process',
      }),
    );

    const threads = cpus().length;
    ctx.log(`consensus: minerHashRate (${threads} workers)`);
    // About 4 billion hashes a block: none is expected in the windows, so every worker hashes throughout.
    const rareParams = testParams({ name: 'cairn-bench-rare-blocks', target: (1n << 224n) - 1n });
    const rareClock: Clock = () => rareParams.timestamp + 100;
    const rare = await startMining(ctx, rareParams, rareClock, threads, []);
    const minerRuns: number[] = [];
    const quietLag: LagWindow[] = [];
    try {
      await waitForHashes(rare.miner, 2 * threads * WORKER_REPORT_HASHES, 30_000); // warm-up: workers load their modules and reach speed
      for (let r = 0; r < ctx.runs; r++) {
        const [rate, lag] = await Promise.all([minerHashWindow(rare.miner, MINER_WINDOW_MS), lagWindow(MINER_WINDOW_MS)]);
        minerRuns.push(rate);
        quietLag.push(lag);
      }
    } finally {
      await rare.stop();
    }
    const rareFound = rare.mined.length;
    metrics.push(
      metric({
        key: 'minerHashRate',
        label: `Miner (node/miner.ts), ${threads} worker threads, total`,
        unit: 'hash/s',
        runs: minerRuns,
        note: `${MINER_WINDOW_MS / 1000} s windows counting miner.hashes; ${rareFound} blocks found (target 2^224)`,
      }),
      metric({
        key: 'minerHashRatePerWorker',
        label: `Miner, per worker (${threads} workers)`,
        unit: 'hash/s',
        runs: minerRuns.map((rate) => rate / threads),
        note: `vs hashRatePerThread: ${((100 * median(minerRuns)) / threads / median(hashRuns)).toFixed(0)}%`,
      }),
    );

    ctx.log(`consensus: miningEventLoopLag (${threads} workers, a block about every ${LAG_BLOCK_SECONDS} s)`);
    const nowSeconds = Math.floor(Date.now() / 1000);
    const lagParams = testParams({
      name: 'cairn-bench-frequent-blocks',
      timestamp: nowSeconds,
      blockTime: LAG_BLOCK_SECONDS,
      target: targetFor(median(minerRuns), LAG_BLOCK_SECONDS),
      maxBlockTxs: LAG_BLOCK_TXS,
    });
    const pending = FUNDED_KEYS.flatMap((key, k) =>
      Array.from({ length: LAG_POOL_TXS_PER_KEY }, (_, n) => transfer(key, FUNDED_KEYS[(k + 1) % FUNDED_KEYS.length]!.address, 1n, BigInt(n), 1n, lagParams.chainId)),
    );
    // Real time: the chain's timestamps and its difficulty schedule follow the wall clock, as on a network.
    const wallClock: Clock = () => Math.floor(Date.now() / 1000);
    const busy = await startMining(ctx, lagParams, wallClock, threads, pending);
    const lagRuns: LagWindow[] = [];
    const blocksPerWindow: number[] = [];
    try {
      await sleep(500); // workers start; the first template is out
      for (let r = 0; r < ctx.runs; r++) {
        const before = busy.mined.length;
        lagRuns.push(await lagWindow(LAG_WINDOW_MS));
        blocksPerWindow.push(busy.mined.length - before);
      }
    } finally {
      await busy.stop();
    }
    const minedTxs = busy.mined.reduce((n, b) => n + b.txs.length, 0);
    for (const block of busy.mined) {
      if (!busy.chain.getEntry(block.header.hash)) throw new Error(`mined block ${block.header.height} was not imported`);
    }
    const lagP99 = median(lagRuns.map((l) => l.p99));
    const windows = `${ctx.runs} × ${LAG_WINDOW_MS / 1000} s windows; ${blocksPerWindow.join('/')} blocks mined + imported per window, ${minedTxs} txs in all`;
    const quiet = `without block finds (the hash-rate windows): p99 ${ms1(median(quietLag.map((l) => l.p99)))} ms, max ${ms1(Math.max(...quietLag.map((l) => l.max)))} ms, ${mainThreadSummary(quietLag)}`;
    metrics.push(
      metric({ key: 'miningEventLoopLagP50Ms', label: 'event-loop lag while mining, p50', unit: 'ms', runs: lagRuns.map((l) => l.p50), note: windows }),
      metric({
        key: 'miningEventLoopLagP99Ms',
        label: 'event-loop lag while mining, p99',
        unit: 'ms',
        runs: lagRuns.map((l) => l.p99),
        note: `${lagP99 < LAG_GOAL_MS ? 'within' : 'OVER'} the issue's ${LAG_GOAL_MS} ms; ${mainThreadSummary(lagRuns)}`,
      }),
      metric({ key: 'miningEventLoopLagMaxMs', label: 'event-loop lag while mining, max', unit: 'ms', runs: lagRuns.map((l) => l.max), note: quiet }),
    );
    return metrics;
  },
};
