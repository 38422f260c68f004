/**
 * The mempool against a naive reference (helpers/mempool-reference.ts: the stated rules, written
 * the slow, obvious way) over random workloads of a few senders: transactions at their next nonce,
 * past a gap filled later, beyond the gap limit, below the state's nonce, replacements paying the
 * bump or not, fees below the minimum, duplicates, amounts near and past what a sender has left;
 * blocks that take some of the pool's and some it never saw (double spends of its nonces among
 * them); reorganisations that take blocks back (their transactions returned) and may connect a
 * branch with some of them; expiry; a snapshot's state adopted; the mempool file restored; all on
 * a pool small enough to fill, so that full pools evict and gapped shares bind. After every step:
 * the same verdict for every submission, the same entries (with when each came) and counters, the
 * same answers from every index the pool offers, nothing that the main chain holds, every entry valid on the
 * tip's state in its sender's nonce order, the limits held, and a block template that applies on
 * the tip and takes, at each place, the best fee the pool allows there.
 *
 * Seeded as the other fuzz tests: CAIRN_FUZZ_SEED, CAIRN_FUZZ_SCALE (helpers/fuzz.ts).
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Mempool } from '../ledger/mempool.ts';
import { MemoryAccounts } from '../ledger/audit.ts';
import { CairnError, TxRuleError } from '../ledger/errors.ts';
import { toHex } from '../ledger/bytes.ts';
import { DEFAULT_MEMPOOL_POLICY, type MempoolPolicy } from '../ledger/mempool-rules.ts';
import { TX_BYTES, type Transaction } from '../ledger/transaction.ts';
import type { Account } from '../ledger/state.ts';
import type { Block } from '../ledger/block.ts';
import { childBlock, placeholderTransfer, testKey, testParams } from './helpers/fixtures.ts';
import { FUZZ_SEED, fuzzRuns } from './helpers/fuzz.ts';
import { ReferencePool, type ReferenceEntry, type Verdict } from './helpers/mempool-reference.ts';

const PARAMS = testParams();
const SENDERS = [60, 61, 62, 63, 64].map(testKey);
const SINK = testKey(50).address;
const PAYEES = [...SENDERS.map((k) => k.address), SINK];

type OpKind = 'add' | 'batch' | 'block' | 'reorg' | 'expire' | 'restore' | 'snapshot';
interface Op {
  readonly kind: OpKind;
  /** The op's choices, read in turn (modulo what each chooses among). */
  readonly r: readonly number[];
}

const arbOp: fc.Arbitrary<Op> = fc.record({
  kind: fc.constantFrom<OpKind>('add', 'add', 'add', 'batch', 'batch', 'block', 'block', 'block', 'reorg', 'reorg', 'expire', 'restore', 'snapshot'),
  r: fc.array(fc.nat({ max: 1_000_000 }), { minLength: 24, maxLength: 24 }),
});

const arbPolicy: fc.Arbitrary<MempoolPolicy> = fc.record({
  txs: fc.integer({ min: 3, max: 14 }),
  gapped: fc.integer({ min: 1, max: 4 }),
  maxNonceGap: fc.integer({ min: 2, max: 6 }),
}).map(({ txs, gapped, maxNonceGap }) => ({ ...DEFAULT_MEMPOOL_POLICY, maxBytes: txs * TX_BYTES, maxGappedBytes: gapped * TX_BYTES, maxNonceGap, maxAge: 60, minFee: 2n, replaceBumpPercent: 10n }));

/** The choices of one op, read in turn. */
function chooser(r: readonly number[]) {
  let i = 0;
  return (n: number): number => (n <= 1 ? 0 : r[i++ % r.length]! % n);
}

interface World {
  readonly pool: Mempool;
  readonly ref: ReferencePool;
  readonly state: MemoryAccounts;
  readonly chain: { block: Block; before: Map<string, Account> }[];
  /** Every transaction made so far: what a duplicate resubmits. */
  readonly made: Transaction[];
  now: number;
}

/** How often each verdict came, over the whole run: the workloads reach what they are for. */
const seen = new Map<string, number>();
const reached = { evicted: 0, expired: 0, takenBack: 0, displaced: 0 };

function verdictOf(outcome: unknown): Verdict {
  const verdict = outcome instanceof CairnError ? outcome.code : 'admitted';
  seen.set(verdict, (seen.get(verdict) ?? 0) + 1);
  if (outcome instanceof CairnError) return outcome.code;
  if (outcome instanceof Error) throw outcome; // not a refusal: a crash
  return 'admitted';
}

/** A transaction from a sender the op picks: at a nonce, fee and amount chosen among those that test each rule. */
function makeTx(w: World, pick: (n: number) => number): Transaction {
  if (w.made.length > 0 && pick(8) === 0) return w.made[pick(w.made.length)]!; // a duplicate, pending or mined
  const k = SENDERS[pick(SENDERS.length)]!;
  const key = toHex(k.address);
  const { balance, nonce: stateNonce } = w.ref.account(key);
  const mine = w.ref.of(key);
  const replacing = mine.length > 0 && pick(4) === 0 ? mine[pick(mine.length)]! : undefined;
  const gap = w.ref.policy.maxNonceGap;
  const nonces = [w.ref.nextNonce(key), w.ref.nextNonce(key), stateNonce + BigInt(pick(gap + 3)), stateNonce > 0n ? stateNonce - 1n : stateNonce];
  const nonce = replacing ? replacing.tx.nonce : nonces[pick(nonces.length)]!;
  const fee = replacing ? replacing.tx.fee + BigInt(pick(5)) : BigInt(pick(40));
  const left = balance - mine.reduce((sum, e) => sum + e.tx.amount + e.tx.fee, 0n) + (replacing ? replacing.tx.amount + replacing.tx.fee : 0n);
  const near = left - fee + BigInt(pick(5)) - 2n;
  const amount = pick(4) === 0 && near > 0n ? near : BigInt(1 + pick(80));
  const tx = placeholderTransfer(PARAMS, k, PAYEES[pick(PAYEES.length)]!, nonce, amount, fee);
  w.made.push(tx);
  return tx;
}

/** Connects a block of those of `txs` that apply in order, paying a miner the op picks; both pools are told by the caller. */
function connect(w: World, txs: readonly Transaction[], pick: (n: number) => number): Block {
  const before = new Map(w.state.map);
  const get = (key: string) => w.state.map.get(key) ?? { balance: 0n, nonce: 0n };
  const applied: Transaction[] = [];
  for (const tx of txs) {
    const sender = get(tx.fromKey);
    if (tx.nonce !== sender.nonce || tx.amount + tx.fee > sender.balance || applied.includes(tx)) continue;
    w.state.map.set(tx.fromKey, { balance: sender.balance - tx.amount - tx.fee, nonce: sender.nonce + 1n });
    const to = get(tx.toKey);
    w.state.map.set(tx.toKey, { ...to, balance: to.balance + tx.amount });
    applied.push(tx);
  }
  const miner = PAYEES[pick(PAYEES.length)]!;
  const block = childBlock({ hash: new Uint8Array(32), height: w.chain.length }, applied, { miner });
  const paid = get(toHex(miner));
  w.state.map.set(toHex(miner), { ...paid, balance: paid.balance + block.coinbase.amount });
  w.chain.push({ block, before });
  return block;
}

/** Transactions the pool never saw, at some senders' state nonces: a double spend where the pool holds that nonce. */
function foreign(w: World, pick: (n: number) => number): Transaction[] {
  return SENDERS.filter(() => pick(3) === 0).map((k) => {
    const { nonce, balance } = w.ref.account(toHex(k.address));
    const tx = placeholderTransfer(PARAMS, k, SINK, nonce, BigInt(1 + pick(Number(balance / 2n) + 1)), BigInt(1 + pick(30)));
    w.made.push(tx);
    return tx;
  });
}

async function step(w: World, op: Op): Promise<void> {
  const pick = chooser(op.r);
  w.now += pick(6);
  if (op.kind === 'add') {
    const tx = makeTx(w, pick);
    const real = await w.pool.add(tx, w.now).then((e) => e, (err: unknown) => err);
    assert.equal(verdictOf(real), w.ref.admit(tx, w.now), `admission of ${tx.idHex} nonce ${tx.nonce} fee ${tx.fee}`);
  } else if (op.kind === 'batch') {
    const txs = Array.from({ length: 1 + pick(5) }, () => makeTx(w, pick));
    const real = (await w.pool.addMany(txs, w.now)).map(verdictOf);
    assert.deepEqual(real, txs.map((tx) => w.ref.admit(tx, w.now)), 'a batch');
  } else if (op.kind === 'block') {
    const blocks: Block[] = [];
    for (let n = 1 + pick(2); n > 0; n--) {
      const selected = await w.pool.selectForBlock(1 + pick(8), 1_000_000);
      const taken = pick(3) === 0 ? selected : selected.filter(() => pick(3) > 0);
      blocks.push(connect(w, pick(2) === 0 ? [...foreign(w, pick), ...taken] : [...taken, ...foreign(w, pick)], pick));
    }
    await w.pool.update(blocks, [], w.now);
    w.ref.update(blocks, [], w.now);
  } else if (op.kind === 'reorg' && w.chain.length > 0) {
    const back = w.chain.splice(w.chain.length - 1 - pick(Math.min(3, w.chain.length)));
    w.state.map.clear();
    for (const [key, a] of back[0]!.before) w.state.map.set(key, a);
    const takenBack = back.flatMap((b) => b.block.txs);
    const connected: Block[] = [];
    for (let n = pick(3); n > 0; n--) {
      const again = takenBack.filter(() => pick(2) === 0);
      connected.push(connect(w, [...foreign(w, pick), ...again, ...(await w.pool.selectForBlock(pick(4), 1_000_000))], pick));
    }
    const disconnected = back.map((b) => b.block);
    await w.pool.update(connected, disconnected, w.now);
    w.ref.update(connected, disconnected, w.now);
    reached.takenBack += takenBack.filter((tx) => w.pool.has(tx.id)).length;
  } else if (op.kind === 'expire') {
    if (pick(2) === 0) w.now += w.ref.policy.maxAge;
    assert.equal(await w.pool.expire(w.now), w.ref.expire(w.now), 'expired');
  } else if (op.kind === 'restore') {
    const kept: ReferenceEntry[] = Array.from({ length: 1 + pick(4) }, () => ({ tx: makeTx(w, pick), addedAt: w.now - pick(w.ref.policy.maxAge * 2) }));
    const real = (await w.pool.restore(kept, w.now)).map(verdictOf);
    assert.deepEqual(real, w.ref.restore(kept, w.now), 'restored');
  } else if (op.kind === 'snapshot') {
    for (const k of SENDERS) if (pick(2) === 0) w.state.set(k.address, { balance: BigInt(pick(3_000)), nonce: BigInt(pick(6)) });
    w.chain.length = 0;
    await w.pool.recheckAll();
    w.ref.recheckAll();
  }
}

/** The pool against the reference, and both against the state and chain. */
async function compare(w: World, pick: (n: number) => number): Promise<void> {
  const { pool, ref } = w;
  const entries = [...pool.entries()];
  const show = (es: readonly { tx: Transaction; addedAt: number }[]) => es.map((e) => `${e.tx.idHex.slice(0, 8)} ${e.tx.fromKey.slice(0, 6)}#${e.tx.nonce} fee ${e.tx.fee} at ${e.addedAt}`).sort();
  assert.deepEqual(show(entries), show(ref.entries), 'entries');
  assert.deepEqual({ evicted: pool.dropped.evicted, expired: pool.dropped.expired }, { evicted: ref.evicted, expired: ref.expired }, 'dropped');
  assert.equal(pool.size, ref.entries.length, 'size');
  assert.equal(pool.bytes, ref.entries.length * TX_BYTES, 'bytes');
  assert.equal(pool.fees, ref.entries.reduce((sum, e) => sum + e.tx.fee, 0n), 'fees');
  assert.deepEqual([...pool.feesHighestFirst()], ref.entries.map((e) => e.tx.fee).sort((a, b) => (a > b ? -1 : a < b ? 1 : 0)), 'fees sorted');
  assert.equal(pool.gappedBytes, ref.gapped().length * TX_BYTES, 'gapped bytes');
  const runs = ref.runs();
  const ids = (es: Iterable<{ tx: Transaction }>) => [...es].map((e) => e.tx.idHex).sort();
  assert.deepEqual(ids(pool.executableHeads()), ids(runs.map((run) => run[0]!)), 'executable heads');
  assert.deepEqual([...pool.executableHeads()].map((h) => ids(pool.runFrom(h))).sort(), runs.map((run) => ids(run)).sort(), 'runs');
  for (const e of ref.entries) {
    assert.equal(pool.get(e.tx.id)?.tx, e.tx, 'by id');
    assert.equal(pool.byShortId(e.tx.idHex.slice(0, 16)), e.tx, 'by short id');
  }
  for (const address of PAYEES) {
    const key = toHex(address);
    assert.deepEqual(ids(pool.involving(address)), ids(ref.entries.filter((e) => e.tx.fromKey === key || e.tx.toKey === key)), 'involving');
    assert.deepEqual(ids(pool.sentFrom(address)), ids(ref.of(key)), 'sent from');
    assert.equal(await pool.nextNonce(address), ref.nextNonce(key), 'next nonce');
  }
  // Nothing the main chain holds; each sender's entries from its state nonce, within its balance.
  const mined = new Set(w.chain.flatMap((b) => b.block.txs.map((tx) => tx.idHex)));
  for (const e of entries) assert.ok(!mined.has(e.idHex), `${e.idHex} is pending and in the main chain`);
  for (const key of new Set(entries.map((e) => e.tx.fromKey))) {
    const account = ref.account(key);
    const mine = ref.of(key);
    assert.ok(mine[0]!.tx.nonce >= account.nonce, 'a nonce below the state\'s');
    assert.ok(mine.reduce((sum, e) => sum + e.tx.amount + e.tx.fee, 0n) <= account.balance, 'more than the sender has');
  }
  assert.ok(pool.bytes <= ref.policy.maxBytes && pool.gappedBytes <= ref.policy.maxGappedBytes, 'limits');
  // A template: it applies on the tip, and at each place takes a head of the highest fee left.
  const maxTxs = 1 + pick(ref.entries.length + 1);
  const template = await pool.selectForBlock(maxTxs, 1_000_000);
  assert.equal(template.length, Math.min(maxTxs, runs.reduce((n, run) => n + run.length, 0)), 'template size');
  const queues = runs.map((run) => [...run]);
  const accounts = new Map<string, Account>();
  for (const tx of template) {
    const best = queues.reduce((max, q) => (q.length > 0 && q[0]!.tx.fee > max ? q[0]!.tx.fee : max), -1n);
    const queue = queues.find((q) => q[0]?.tx === tx);
    assert.ok(queue, `template takes ${tx.idHex}, not a head`);
    assert.equal(tx.fee, best, 'template takes a head below the best fee');
    queue.shift();
    const sender = accounts.get(tx.fromKey) ?? ref.account(tx.fromKey);
    assert.ok(tx.nonce === sender.nonce && tx.amount + tx.fee <= sender.balance, 'template does not apply');
    accounts.set(tx.fromKey, { nonce: sender.nonce + 1n, balance: sender.balance - tx.amount - tx.fee });
  }
}

describe('the mempool against a naive reference', function () {
  this.timeout(fuzzRuns(60_000)); // a few seconds at scale 1

  it('agrees with it after every step of random workloads', async () => {
    await fc.assert(
      fc.asyncProperty(arbPolicy, fc.array(fc.nat({ max: 4_000 }), { minLength: SENDERS.length, maxLength: SENDERS.length }), fc.array(arbOp, { minLength: 20, maxLength: 100, size: 'max' }), async (policy, balances, ops) => {
        const state = new MemoryAccounts();
        SENDERS.forEach((k, i) => state.set(k.address, { balance: BigInt(balances[i]!), nonce: BigInt(i % 3) }));
        // Some signatures fail (checked on a later turn, as a pool's thread answers): nothing may be evicted for them.
        const forged = (tx: Transaction) => tx.idHex.startsWith('0');
        const checkSignature = (tx: Transaction) => {
          const verdict = () => {
            if (forged(tx)) throw new TxRuleError('TX_BAD_SIGNATURE', 'signature does not verify', 100);
          };
          return tx.idHex.endsWith('0') ? Promise.resolve().then(verdict) : verdict();
        };
        const pool = new Mempool(state, PARAMS, policy, checkSignature);
        const w: World = { pool, ref: new ReferencePool(pool.policy, state, forged), state, chain: [], made: [], now: 1_000 };
        for (const [i, op] of ops.entries()) {
          try {
            await step(w, op);
            await compare(w, chooser(op.r.toReversed()));
          } catch (err) {
            throw new Error(`step ${i} (${op.kind}): ${(err as Error).message}`, { cause: err });
          }
        }
        reached.evicted += w.ref.evicted;
        reached.expired += w.ref.expired;
        reached.displaced += w.ref.displaced;
      }),
      { seed: FUZZ_SEED, numRuns: fuzzRuns(60) },
    );
    const codes = ['admitted', 'MEMPOOL_DUPLICATE', 'MEMPOOL_FEE_TOO_LOW', 'MEMPOOL_NONCE_TOO_LOW', 'MEMPOOL_NONCE_GAP', 'MEMPOOL_REPLACEMENT_UNDERPRICED', 'MEMPOOL_INSUFFICIENT_BALANCE', 'MEMPOOL_FULL', 'MEMPOOL_EXPIRED', 'TX_BAD_SIGNATURE'];
    for (const code of codes) assert.ok((seen.get(code) ?? 0) > 0, `no ${code}: ${JSON.stringify([...seen])}`);
    for (const [what, n] of Object.entries(reached)) assert.ok(n > 0, `${what}: ${JSON.stringify(reached)}`);
  });
});
