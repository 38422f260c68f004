/**
 * How the mempool's admission and a block's connect cost grow with the work: admission against the
 * number of transactions already pending (and when the pool is full, so that each admission
 * evicts), and `Chain.processBlock` of one block against the transactions it holds.
 */
import { toHex } from '../ledger/bytes.ts';
import { ChainDB } from '../ledger/chaindb.ts';
import { Mempool } from '../ledger/mempool.ts';
import type { Account, AccountSource } from '../ledger/state.ts';
import { TX_BYTES, type Transaction } from '../ledger/transaction.ts';
import { Chain } from '../consensus/chain.ts';
import { placeholderTransfer, seededRandom, testKey, testParams, uncheckedSignatures, type TestKey } from '../test/helpers/fixtures.ts';
import { blockOnTip, connect, farClock } from './scaling-blocks.ts';
import type { CurvePoint } from './scaling-sync.ts';
import { profiled } from './perf-common.ts';
import type { SuiteContext } from './report.ts';

/** Pending transactions per sender in the pool: well inside the policy's nonce gap of 64. */
const PER_SENDER = 16;
const ADMIT_BATCH = 8_000;
const EVICT_BATCH = 500;

function keys(count: number, base: number): TestKey[] {
  return Array.from({ length: count }, (_, i) => testKey(base + i));
}

/**
 * Admission against pool size, and the same when the pool is full. The pool reads accounts from
 * memory and checks no signature (its transactions carry placeholders): a signature costs the same
 * at any pool size (the `rpc` suite times admission with them), so this is the pool's own cost.
 * Each run fills a fresh pool to the size (untimed, fee 1), then times `ADMIT_BATCH` admissions
 * from senders not yet in it; in the full pool's runs, `EVICT_BATCH` of fee 2, each evicting one.
 */
export async function mempoolBySize(ctx: SuiteContext, sizes: readonly number[], runs: number): Promise<{ admit: CurvePoint[]; evict: CurvePoint[] }> {
  const params = testParams({ name: 'cairn-bench-mempool' });
  const largest = sizes.at(-1)!;
  const started = performance.now();
  const fillers = keys(Math.ceil(largest / PER_SENDER), 40_000);
  const newcomers = keys(Math.ceil(ADMIT_BATCH / PER_SENDER), 140_000);
  ctx.log(`scaling: ${fillers.length + newcomers.length} mempool sender keys in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  const accounts = new Map<string, Account>([...fillers, ...newcomers].map((k) => [toHex(k.address), { balance: 10n ** 12n, nonce: 0n }]));
  const state: AccountSource = { getAccount: async (address) => accounts.get(toHex(address)) };
  const txsOf = (senders: readonly TestKey[], count: number, fee: bigint): Transaction[] =>
    Array.from({ length: count }, (_, i) => placeholderTransfer(params, senders[Math.floor(i / PER_SENDER)]!, senders[0]!.address, BigInt(i % PER_SENDER), 1n, fee));
  const allFill = txsOf(fillers, largest, 1n);
  const admitTxs = txsOf(newcomers, ADMIT_BATCH, 1n);
  const evictTxs = txsOf(newcomers, EVICT_BATCH, 2n);
  const timed = async (pool: Mempool, txs: readonly Transaction[], profile: string) => {
    const ms = await profiled(profile, async () => {
      const t = performance.now();
      for (const tx of txs) await pool.add(tx, 0);
      return performance.now() - t;
    });
    return (txs.length * 1000) / ms;
  };
  const admit: CurvePoint[] = [];
  const evict: CurvePoint[] = [];
  for (const size of sizes) {
    const fill = allFill.slice(0, size);
    const admitRuns: number[] = [];
    const evictRuns: number[] = [];
    for (let r = 0; r <= runs; r++) {
      const open = new Mempool(state, params, { maxBytes: 1 << 30 }, () => {});
      for (const tx of fill) await open.add(tx, 0);
      const rate = await timed(open, admitTxs, `scaling-mempool-${size}-${r}`);
      const full = new Mempool(state, params, { maxBytes: size * TX_BYTES }, () => {});
      for (const tx of fill) await full.add(tx, 0);
      const evictRate = await timed(full, evictTxs, `scaling-mempool-full-${size}-${r}`);
      if (full.size !== size) throw new Error(`the full pool holds ${full.size}, not ${size}`);
      if (r === 0) continue; // warm-up
      admitRuns.push(rate);
      evictRuns.push(evictRate);
    }
    ctx.log(`scaling: mempool of ${size.toLocaleString('en')}: admit ${admitRuns.map(Math.round).join(', ')}/s; full, evicting: ${evictRuns.map(Math.round).join(', ')}/s`);
    admit.push({ x: size, runs: admitRuns, note: `${ADMIT_BATCH.toLocaleString('en')} admissions into a pool holding ${size.toLocaleString('en')} (${PER_SENDER} per sender), signatures not checked` });
    evict.push({ x: size, runs: evictRuns, note: `${EVICT_BATCH} admissions at fee 2 into a full pool of ${size.toLocaleString('en')} at fee 1, each evicting one` });
  }
  return { admit, evict };
}

/**
 * `Chain.processBlock` of one block of N transfers (placeholder signatures, skipped) into a fresh
 * LevelDB store that holds one 100-transfer block already (untimed, to warm the path): from 1,000
 * senders, up to 5 each, to each other or to new addresses. The figure is milliseconds per block.
 */
export async function connectBySize(ctx: SuiteContext, sizes: readonly number[], runs: number): Promise<CurvePoint[]> {
  const senders = keys(1_000, 30_000);
  const params = testParams({
    name: 'cairn-bench-connect',
    maxBlockTxs: sizes.at(-1)!,
    maxBlockBytes: 1024 * 1024,
    alloc: senders.map((k) => ({ address: k.address, balance: 10n ** 12n })).sort((a, b) => Buffer.compare(a.address, b.address)),
  });
  const miner = testKey(79).address;
  const points: CurvePoint[] = [];
  for (const size of sizes) {
    const ms: number[] = [];
    for (let r = 0; r <= runs; r++) {
      const rng = seededRandom(size * 31 + r);
      const dir = ctx.tempDir('cairn-bench-connect-');
      const db = await ChainDB.open(dir.path, params);
      try {
        const chain = await Chain.open(db, { clock: farClock(params), signatures: uncheckedSignatures });
        const nonces = senders.map(() => 0n);
        const txs = (count: number) =>
          Array.from({ length: count }, (_, i) => {
            const s = i % senders.length;
            const to = rng.int(2) === 0 ? senders[rng.int(senders.length)]!.address : rng.bytes(20);
            return placeholderTransfer(params, senders[s]!, to, nonces[s]!++);
          });
        await connect(chain, await blockOnTip(chain, txs(100), miner));
        const block = await blockOnTip(chain, txs(size), miner);
        const took = await profiled(`scaling-connect-${size}-${r}`, async () => {
          const t = performance.now();
          await connect(chain, block);
          return performance.now() - t;
        });
        if (r > 0) ms.push(took); // run 0 warms up
      } finally {
        await db.close();
        dir.remove();
      }
    }
    ctx.log(`scaling: connect a block of ${size.toLocaleString('en')}: ${ms.map((m) => m.toFixed(1)).join(', ')} ms`);
    points.push({ x: size, runs: ms, note: `fresh store per run; µs per transfer: ${ms.map((m) => ((m * 1000) / size).toFixed(0)).join(', ')}` });
  }
  return points;
}
