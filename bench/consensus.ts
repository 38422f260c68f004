import { cpus } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { ChainDB } from '../ledger/chaindb.ts';
import { genesisBlock, type ChainParams } from '../ledger/genesis.ts';
import { inlineSignatureChecker, type SignatureChecker } from '../ledger/state.ts';
import type { Block } from '../ledger/block.ts';
import type { Transaction } from '../ledger/transaction.ts';
import { Chain, type Clock, type ReorgEvent } from '../consensus/chain.ts';
import { searchNonceWith } from '../consensus/miner.ts';
import { meetsTarget } from '../node/pow-hash.js';
import { FUNDED_KEYS, seededRandom, testKey, testParams, transfer } from '../test/helpers/fixtures.ts';
import { asParent, mineChild } from '../test/helpers/mining.ts';
import { measureRate, median, metric, type Metric, type Suite, type SuiteContext } from './report.ts';
import {
  lagWindow,
  mainThreadSummary,
  minerHashWindow,
  startMining,
  targetFor,
  waitForHashes,
  WORKER_REPORT_HASHES,
  type LagWindow,
} from './mining-windows.ts';

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
