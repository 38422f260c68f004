/**
 * How a syncing node's import rate moves with the chain's length and with the number of accounts:
 * blocks imported by a fresh node on a LevelDB store (`Chain.processBlock` one at a time, or a
 * batch through the sync's `importBlocks`), timed in windows as the chain or the state grows.
 */
import { cpSync } from 'node:fs';
import { ChainDB } from '../ledger/chaindb.ts';
import { sha256 } from '../ledger/hash.ts';
import type { ChainParams } from '../ledger/genesis.ts';
import type { Block } from '../ledger/block.ts';
import type { Transaction } from '../ledger/transaction.ts';
import { Chain } from '../consensus/chain.ts';
import { checkBlockSanity } from '../consensus/sanity.ts';
import { importBlocks } from '../node/import-blocks.ts';
import { realEnv } from '../node/env.ts';
import { placeholderTransfer, seededRandom, testKey, testParams, uncheckedSignatures, type TestKey } from '../test/helpers/fixtures.ts';
import { blockOnTip, connect, emptyBlocks, farClock } from './scaling-blocks.ts';
import { profiled } from './perf-common.ts';
import type { SuiteContext } from './report.ts';

/** One point of a curve: the runs at one size, and what was seen there. */
export interface CurvePoint {
  readonly x: number;
  readonly runs: readonly number[];
  readonly note: string;
}

const mb = (bytes: number) => `${Math.round(bytes / 2 ** 20)} MB`;

async function openChain(ctx: SuiteContext, params: ChainParams, prefix: string): Promise<{ chain: Chain; close(): Promise<void> }> {
  const dir = ctx.tempDir(prefix);
  const db = await ChainDB.open(dir.path, params);
  const chain = await Chain.open(db, { clock: farClock(params), signatures: uncheckedSignatures });
  return {
    chain,
    async close() {
      await db.close();
      dir.remove();
    },
  };
}

/**
 * One fresh node imports coinbase-only blocks from genesis up to the longest length. At each
 * length L the figure is the import rate of the `windows` windows of `window` blocks that end at L
 * (blocks are made in memory just before each window, untimed); every block outside a window is
 * imported too, untimed. One import, not one per run: a million blocks take minutes.
 */
export async function syncByChainLength(ctx: SuiteContext, lengths: readonly number[], window: number, windows: number): Promise<CurvePoint[]> {
  const params = testParams({ name: 'cairn-bench-length' });
  const next = emptyBlocks(params, testKey(77).address);
  const { chain, close } = await openChain(ctx, params, 'cairn-bench-length-');
  const points: CurvePoint[] = [];
  try {
    let height = 0;
    let importMs = 0;
    const started = performance.now();
    const importBatch = async (count: number, profile?: string): Promise<number> => {
      const blocks: Block[] = [];
      for (let i = 0; i < count; i++) blocks.push(next());
      // Timed inside: starting and stopping a profile is not the import's cost.
      const work = async () => {
        const t = performance.now();
        for (const block of blocks) await connect(chain, block);
        return performance.now() - t;
      };
      const ms = await (profile ? profiled(profile, work) : work());
      importMs += ms;
      height += count;
      return ms;
    };
    for (const length of lengths) {
      const firstWindow = length - windows * window;
      while (height < firstWindow) {
        await importBatch(Math.min(10_000, firstWindow - height));
        if (height % 100_000 === 0) ctx.log(`scaling: chain at ${height.toLocaleString('en')} blocks, ${((performance.now() - started) / 1000).toFixed(0)} s`);
      }
      const runs: number[] = [];
      for (let w = 0; w < windows; w++) runs.push((window * 1000) / (await importBatch(window, `scaling-length-${length}-${w}`)));
      const heap = process.memoryUsage();
      const note =
        `${windows} windows of ${window.toLocaleString('en')} blocks ending at height ${length.toLocaleString('en')}; ` +
        `from genesis: ${Math.round((height * 1000) / importMs).toLocaleString('en')} blocks/s on average; heap ${mb(heap.heapUsed)}, RSS ${mb(heap.rss)}`;
      ctx.log(`scaling: syncing at ${length.toLocaleString('en')} blocks: ${runs.map((r) => Math.round(r)).join(', ')} blocks/s; ${note}`);
      points.push({ x: length, runs, note });
    }
  } finally {
    await close();
  }
  return points;
}

const SENDERS = 500;
const WINDOW_BLOCK_TXS = 100;
const WINDOW_BLOCKS = 20;

/**
 * A chain whose genesis allocates `size` accounts (500 of them senders with known keys, the rest
 * random addresses): a source node S and a fresh node T (a copy of S's store at genesis). S builds
 * windows of 20 blocks of 100 transfers (from 100 of the 500 senders to accounts drawn at random
 * from all of them), untimed, and T imports each window as a batch the sync downloaded (its
 * sanity checked untimed, then importBlocks), timed: a run is one window, after one untimed.
 * Placeholder signatures, skipped (scaling-blocks.ts says why).
 */
export async function syncByAccounts(ctx: SuiteContext, sizes: readonly number[], windows: number): Promise<CurvePoint[]> {
  const senders: TestKey[] = Array.from({ length: SENDERS }, (_, i) => testKey(20_000 + i));
  const miner = testKey(78).address;
  const points: CurvePoint[] = [];
  for (const size of sizes) {
    const started = performance.now();
    const rng = seededRandom(size);
    const addresses = new Uint8Array(size * 20);
    senders.forEach((k, i) => addresses.set(k.address, 20 * i));
    const counter = new Uint8Array(8);
    for (let i = SENDERS; i < size; i++) {
      new DataView(counter.buffer).setFloat64(0, i);
      addresses.set(sha256(counter).subarray(0, 20), 20 * i);
    }
    const alloc = Array.from({ length: size }, (_, i) => ({ address: addresses.subarray(20 * i, 20 * i + 20), balance: 10n ** 15n }));
    alloc.sort((a, b) => Buffer.compare(a.address, b.address));
    const params = testParams({ name: 'cairn-bench-accounts', maxBlockTxs: WINDOW_BLOCK_TXS, alloc });
    const sourceDir = ctx.tempDir('cairn-bench-accounts-s-');
    const targetDir = ctx.tempDir('cairn-bench-accounts-t-');
    await (await ChainDB.open(sourceDir.path, params)).close();
    cpSync(sourceDir.path, targetDir.path, { recursive: true });
    const source = await ChainDB.open(sourceDir.path, params);
    const target = await ChainDB.open(targetDir.path, params);
    try {
      const options = { clock: farClock(params), signatures: uncheckedSignatures };
      const [s, t] = [await Chain.open(source, options), await Chain.open(target, options)];
      ctx.log(`scaling: a genesis of ${size.toLocaleString('en')} accounts stored in ${((performance.now() - started) / 1000).toFixed(0)} s`);
      const nonces = senders.map(() => 0n);
      let next = 0;
      const existing = () => {
        const i = rng.int(size);
        return addresses.slice(20 * i, 20 * i + 20);
      };
      const runs: number[] = [];
      for (let w = 0; w <= windows; w++) {
        const blocks: Block[] = [];
        for (let b = 0; b < WINDOW_BLOCKS; b++) {
          const txs: Transaction[] = Array.from({ length: WINDOW_BLOCK_TXS }, () => {
            const k = next++ % SENDERS;
            return placeholderTransfer(params, senders[k]!, existing(), nonces[k]!++);
          });
          const block = await blockOnTip(s, txs, miner);
          await connect(s, block);
          blocks.push(block);
        }
        // As a syncing node imports a downloaded batch: sanity checked on arrival, then importBlocks
        // (a turn between blocks, the next block's paths read while one connects).
        const sane = blocks.map((block) => checkBlockSanity(block, params));
        const ms = await profiled(`scaling-accounts-${size}-${w}`, async () => {
          const t0 = performance.now();
          await importBlocks(t, sane, realEnv);
          return performance.now() - t0;
        });
        if (w > 0) runs.push((WINDOW_BLOCKS * WINDOW_BLOCK_TXS * 1000) / ms); // window 0 warms up
      }
      const note = `${windows} windows of ${WINDOW_BLOCKS} blocks × ${WINDOW_BLOCK_TXS} transfers to accounts drawn at random, after one untimed; RSS ${mb(process.memoryUsage().rss)}`;
      ctx.log(`scaling: syncing with ${size.toLocaleString('en')} accounts: ${runs.map((r) => Math.round(r)).join(', ')} tx/s; ${note}`);
      points.push({ x: size, runs, note });
    } finally {
      await source.close();
      await target.close();
      sourceDir.remove();
      targetDir.remove();
    }
  }
  return points;
}
