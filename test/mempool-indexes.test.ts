/**
 * The mempool's own indexes (ledger/pending-set.ts, ledger/sender-tails.ts) against the entries
 * they index, recomputed from scratch after every operation of random workloads on a pool small
 * enough to fill: admissions one by one and in batches (random senders and nonces, gaps,
 * replacements paying enough or not, amounts near what the sender has left, forged signatures),
 * blocks of the pool's own selection and of transactions it never saw, admissions queued between
 * a block's state change and the pool's update (as a node's come), reorganisations that take
 * blocks back (admissions queued before their update too), expiry, a snapshot's state adopted,
 * transactions restored from the mempool file, and a peer's batch weighed for a signature check.
 * Every index must say what the entries say; the gapped set must be exactly the entries above
 * each sender's first missing nonce from its state nonce, and within its share of the pool
 * (which a reorganisation's hole or a state gone back breaks unless the pool evicts); the
 * eviction order what sorting the senders' tails gives; and the block the pool selects must
 * apply to the state.
 *
 * Seeded: CAIRN_FUZZ_SEED picks the first seed, CAIRN_FUZZ_SCALE multiplies the seeds run.
 */
import assert from 'node:assert/strict';
import { Mempool } from '../ledger/mempool.ts';
import { MemoryAccounts } from '../ledger/audit.ts';
import { TxRuleError } from '../ledger/errors.ts';
import { PendingSet, firstMissing, shortIdOfHex, type MempoolEntry } from '../ledger/pending-set.ts';
import { TX_BYTES, type Transaction } from '../ledger/transaction.ts';
import type { Account } from '../ledger/state.ts';
import type { Block } from '../ledger/block.ts';
import { toHex } from '../ledger/bytes.ts';
import { afterTurns, childBlock, placeholderTransfer, seededRandom, testKey, testParams, type TestKey } from './helpers/fixtures.ts';

const PARAMS = testParams();
const SENDERS = [40, 41, 42, 43, 44, 45, 46].map(testKey);
/** Paid, never paying: a recipient of its own in the address index. */
const SINK = testKey(50).address;
const FIRST_SEED = Number(process.env.CAIRN_FUZZ_SEED ?? 1);
const SCALE = Number(process.env.CAIRN_FUZZ_SCALE ?? 1);

/** What the checker reads of a PendingSet (`private` is TypeScript's word only). */
interface PendingInternals {
  readonly byId: Map<string, MempoolEntry>;
  readonly byShortId: Map<string, MempoolEntry>;
  readonly bySender: Map<string, Map<bigint, MempoolEntry>>;
  readonly committed: Map<string, bigint>;
  readonly tails: { readonly heap: readonly TailSlot[]; readonly slots: Map<string, TailSlot>; cheapestFirst(sender: string, nonce: bigint): Generator<MempoolEntry> };
  readonly byAddress: Map<string, Set<MempoolEntry>>;
  readonly gapped: Set<MempoolEntry>;
  readonly runs: Map<string, { from: bigint; end: bigint }>;
  readonly totalBytes: number;
  readonly totalFees: bigint;
  readonly gappedTotal: number;
}

interface TailSlot {
  readonly sender: string;
  readonly order: number;
  readonly pending: ReadonlyMap<bigint, MempoolEntry>;
  readonly tail: MempoolEntry;
  readonly index: number;
}

const NO_ACCOUNT: Account = { balance: 0n, nonce: 0n };
const account = (state: MemoryAccounts, address: Uint8Array) => state.map.get(toHex(address)) ?? NO_ACCOUNT;
const ids = (entries: Iterable<MempoolEntry>) => [...entries].map((e) => e.idHex).sort();

/**
 * Every index of `pool`'s pending set against the entries (its `byId`, itself checked against
 * the other indexes' union), and what the pool derives from them against `state`.
 */
async function checkIndexes(pool: Mempool, state: MemoryAccounts, evictFor: string, where: string): Promise<void> {
  const set = (pool as unknown as { pending: PendingSet }).pending as unknown as PendingInternals;
  const entries = [...set.byId.values()];
  for (const [id, e] of set.byId) assert.equal(e.idHex, id, where);
  // By sender and nonce: one entry a nonce, no sender without one.
  const bySender = new Map<string, Map<bigint, MempoolEntry>>();
  for (const e of entries) {
    const pending = bySender.get(e.tx.fromKey) ?? new Map<bigint, MempoolEntry>();
    assert.ok(!pending.has(e.tx.nonce), `${where}: two entries of one sender and nonce`);
    bySender.set(e.tx.fromKey, pending.set(e.tx.nonce, e));
  }
  const flat = (m: Map<string, Map<bigint, MempoolEntry>>) => [...m].flatMap(([key, p]) => [...p].map(([n, e]) => `${key} ${n} ${e.idHex}`)).sort();
  assert.deepEqual(flat(set.bySender), flat(bySender), `${where}: bySender`);
  assert.deepEqual([...set.bySender.values()].filter((p) => p.size === 0).length, 0, `${where}: an empty sender kept`);
  // By short id: every entry's, each to an entry of its own (no two ids here share their first 8 bytes).
  assert.deepEqual([...set.byShortId.keys()].sort(), [...new Set(entries.map((e) => shortIdOfHex(e.idHex)))].sort(), `${where}: byShortId`);
  for (const [short, e] of set.byShortId) assert.ok(set.byId.get(e.idHex) === e && shortIdOfHex(e.idHex) === short, `${where}: byShortId ${short}`);
  // Each sender's amounts plus fees; by address, either side.
  const committed = new Map<string, bigint>();
  for (const e of entries) committed.set(e.tx.fromKey, (committed.get(e.tx.fromKey) ?? 0n) + e.tx.amount + e.tx.fee);
  assert.deepEqual(new Map([...set.committed].sort()), new Map([...committed].sort()), `${where}: committed`);
  const byAddress = new Map<string, MempoolEntry[]>();
  for (const e of entries) for (const key of new Set([e.tx.fromKey, e.tx.toKey])) byAddress.set(key, [...(byAddress.get(key) ?? []), e]);
  assert.deepEqual(new Map([...set.byAddress].map(([k, s]) => [k, ids(s)] as const).sort()), new Map([...byAddress].map(([k, s]) => [k, ids(s)] as const).sort()), `${where}: byAddress`);
  // Totals, and the fees sorted.
  assert.equal(set.totalBytes, entries.reduce((sum, e) => sum + e.tx.bytes.length, 0), `${where}: bytes`);
  assert.equal(set.totalFees, entries.reduce((sum, e) => sum + e.tx.fee, 0n), `${where}: fees`);
  assert.deepEqual([...pool.feesHighestFirst()], entries.map((e) => e.tx.fee).sort((a, b) => (a > b ? -1 : a < b ? 1 : 0)), `${where}: fees sorted`);
  // What waits for a missing nonce: exactly what is above each sender's first missing one from its state nonce.
  const nonces = new Map<string, Account>();
  for (const key of bySender.keys()) nonces.set(key, state.map.get(key) ?? NO_ACCOUNT);
  const gapped = entries.filter((e) => e.tx.nonce > firstMissing(bySender.get(e.tx.fromKey), nonces.get(e.tx.fromKey)!.nonce));
  assert.deepEqual(ids(set.gapped), ids(gapped), `${where}: gapped`);
  assert.equal(set.gappedTotal, gapped.reduce((sum, e) => sum + e.tx.bytes.length, 0), `${where}: gapped bytes`);
  // Each sender's run: its nonces [from, end) pending, `end` not.
  for (const [key, run] of set.runs) {
    const pending = bySender.get(key);
    assert.ok(pending, `${where}: a run of a sender with nothing pending`);
    assert.equal(firstMissing(pending, run.from), run.end, `${where}: the run of ${key} from ${run.from}`);
  }
  // The pool follows its state: nothing below a sender's nonce, nothing its balance does not cover.
  for (const [key, pending] of bySender) {
    const account = nonces.get(key)!;
    for (const nonce of pending.keys()) assert.ok(nonce >= account.nonce, `${where}: ${key} nonce ${nonce} below ${account.nonce}`);
    assert.ok(committed.get(key)! <= account.balance, `${where}: ${key} commits more than it has`);
  }
  assert.ok(set.totalBytes <= pool.policy.maxBytes, `${where}: over the pool's size`);
  // Whatever turned entries gapped (a reorganisation's hole, a state that went back), they keep to their share.
  assert.ok(set.gappedTotal <= pool.policy.maxGappedBytes, `${where}: ${set.gappedTotal} bytes gapped, over the share of ${pool.policy.maxGappedBytes}`);
  checkTails(set, bySender, evictFor, firstMissing(bySender.get(evictFor), (state.map.get(evictFor) ?? NO_ACCOUNT).nonce), where);
  // What a block could take: each sender's run from its state nonce, and the selection of it all applies.
  const runs = [...bySender].flatMap(([key, pending]) => {
    const run: MempoolEntry[] = [];
    for (let n = nonces.get(key)!.nonce, e = pending.get(n); e; e = pending.get(++n)) run.push(e);
    return run;
  });
  assert.deepEqual(ids(pool.executableHeads()), ids(runs.filter((e) => e.tx.nonce === nonces.get(e.tx.fromKey)!.nonce)), `${where}: heads`);
  assert.deepEqual(ids([...pool.executableHeads()].flatMap((head) => pool.runFrom(head))), ids(runs), `${where}: runs`);
  for (const k of SENDERS) assert.equal(await pool.nextNonce(k.address), firstMissing(bySender.get(toHex(k.address)), account(state, k.address).nonce), `${where}: next nonce`);
  const selected = await pool.selectForBlock(1_000, 1_000_000);
  assert.deepEqual(ids(selected.map((tx) => ({ idHex: tx.idHex }) as MempoolEntry)), ids(runs), `${where}: selection`);
  applyTo(new MemoryAccounts(), state, selected, where);
}

/** The tails' heap against each sender's highest nonce, and the eviction order against a sort. */
function checkTails(set: PendingInternals, bySender: ReadonlyMap<string, ReadonlyMap<bigint, MempoolEntry>>, evictFor: string, evictForNonce: bigint, where: string): void {
  const { heap, slots } = set.tails;
  assert.deepEqual([...slots.keys()].sort(), [...bySender.keys()].sort(), `${where}: a tail slot per sender`);
  assert.equal(heap.length, slots.size, `${where}: the heap's size`);
  const ranks = (a: TailSlot, b: TailSlot) => a.tail.tx.fee < b.tail.tx.fee || (a.tail.tx.fee === b.tail.tx.fee && a.order < b.order);
  heap.forEach((slot, i) => {
    assert.equal(slot.index, i, `${where}: a slot's index`);
    assert.equal(slots.get(slot.sender), slot, where);
    assert.equal(slot.pending, set.bySender.get(slot.sender), `${where}: a slot reads its sender's own map`);
    assert.equal(slot.tail.tx.nonce, [...slot.pending.keys()].reduce((a, b) => (a > b ? a : b)), `${where}: ${slot.sender}'s tail`);
    if (i > 0) assert.ok(!ranks(slot, heap[(i - 1) >> 1]!), `${where}: the heap's order at ${i}`);
  });
  // Senders in the order they entered the pool: the sender map's.
  const orders = [...set.bySender.keys()].map((key) => slots.get(key)!.order);
  assert.deepEqual(orders, [...orders].sort((a, b) => a - b), `${where}: senders' order`);
  // Whom a full pool evicts for `evictFor` at `evictForNonce`, cheapest first: every sender's nonces from the top (of its
  // own, those above that nonce), by fee then order.
  const queues = [...set.bySender].map(([key, p]) => ({ order: slots.get(key)!.order, left: [...p.values()].filter((e) => key !== evictFor || e.tx.nonce > evictForNonce).sort((a, b) => (a.tx.nonce < b.tx.nonce ? -1 : 1)) }));
  const expected: string[] = [];
  for (;;) {
    let best: (typeof queues)[0] | undefined;
    for (const q of queues) {
      const tail = q.left.at(-1);
      if (tail && (!best || tail.tx.fee < best.left.at(-1)!.tx.fee || (tail.tx.fee === best.left.at(-1)!.tx.fee && q.order < best.order))) best = q;
    }
    if (!best) break;
    expected.push(best.left.pop()!.idHex);
  }
  assert.deepEqual([...set.tails.cheapestFirst(evictFor, evictForNonce)].map((e) => e.idHex), expected, `${where}: eviction order`);
}

/** `txs` applied to `state` as a block would (into `into`, a copy of what they touch), each asserted valid. */
function applyTo(into: MemoryAccounts, state: MemoryAccounts, txs: readonly Transaction[], where: string): MemoryAccounts {
  const get = (key: string) => into.map.get(key) ?? state.map.get(key) ?? { balance: 0n, nonce: 0n };
  for (const tx of txs) {
    const sender = get(tx.fromKey);
    assert.equal(tx.nonce, sender.nonce, `${where}: ${tx.idHex} applies at its sender's nonce`);
    assert.ok(tx.amount + tx.fee <= sender.balance, `${where}: ${tx.idHex} is covered`);
    into.map.set(tx.fromKey, { balance: sender.balance - tx.amount - tx.fee, nonce: sender.nonce + 1n });
    const recipient = get(tx.toKey);
    into.map.set(tx.toKey, { ...recipient, balance: recipient.balance + tx.amount });
  }
  return into;
}

describe('the mempool\'s indexes over random operations', function () {
  this.timeout(60_000 * SCALE);

  it('agree after every operation with indexes recomputed from the entries', async () => {
    const seen = { admitted: 0, replaced: 0, evicted: 0, expired: 0, gapped: 0, overShare: 0, queuedBeforeUpdate: 0, queuedBeforeReorganisation: 0, reorganised: 0, forged: 0 };
    for (let seed = FIRST_SEED; seed < FIRST_SEED + 25 * SCALE; seed++) {
      const random = seededRandom(seed);
      const forged = new Set<string>();
      const accounts = new MemoryAccounts();
      for (const k of SENDERS) accounts.set(k.address, { balance: BigInt(500 + random.int(5_000)), nonce: BigInt(random.int(3)) });
      const policy = { maxBytes: (4 + random.int(12)) * TX_BYTES, maxGappedBytes: (1 + random.int(4)) * TX_BYTES, maxNonceGap: 3 + random.int(6), maxAge: 30 + random.int(60) };
      // Some signatures are checked later (a pool's thread), so admissions interleave.
      const checkSignature = (tx: Transaction) => {
        const verdict = () => {
          if (forged.has(tx.idHex)) throw new TxRuleError('TX_BAD_SIGNATURE', 'signature does not verify', 100);
        };
        if (random.int(3) > 0) return verdict();
        return new Promise<void>((resolve) => setImmediate(resolve)).then(verdict);
      };
      const pool = new Mempool(accounts, PARAMS, policy, checkSignature);
      pool.on('added', () => seen.admitted++);
      const chain: { block: Block; before: Map<string, Account> }[] = [];
      let now = 1_000;
      /** A transaction from a random sender: at its next nonces or past a gap, a replacement or not, its amount near what it has left. */
      const randomTx = (): Transaction => {
        const k = SENDERS[random.int(SENDERS.length)]!;
        const { balance, nonce: stateNonce } = account(accounts, k.address);
        const mine = pool.sentFrom(k.address);
        const replacing = mine.length > 0 && random.int(4) === 0 ? mine[random.int(mine.length)]! : undefined;
        const next = firstMissing(new Map(mine.map((e) => [e.tx.nonce, e])), stateNonce);
        const nonce = replacing ? replacing.tx.nonce : random.int(2) === 0 ? next : stateNonce + BigInt(random.int(policy.maxNonceGap + 3)) - (random.int(8) === 0 ? 1n : 0n);
        const fee = replacing ? replacing.tx.fee + BigInt(random.int(4)) : BigInt(1 + random.int(30));
        const left = balance - mine.reduce((sum, e) => sum + e.tx.amount + e.tx.fee, 0n) + (replacing ? replacing.tx.amount + replacing.tx.fee : 0n);
        const near = left - fee + BigInt(random.int(7)) - 3n;
        const amount = random.int(4) === 0 && near > 0n ? near : BigInt(1 + random.int(60));
        const to = random.int(3) === 0 ? SENDERS[random.int(SENDERS.length)]!.address : SINK;
        const tx = placeholderTransfer(PARAMS, k, to, nonce < 0n ? 0n : nonce, amount, fee);
        if (replacing) seen.replaced++;
        if (random.int(15) === 0) forged.add(tx.idHex), seen.forged++;
        return tx;
      };
      const admissions = () => (random.int(2) === 0 ? pool.add(randomTx(), now).catch(() => {}) : pool.addMany(Array.from({ length: 1 + random.int(4) }, randomTx), now));
      /** A block on the state: `txs` (those that apply, in order) paying a random sender or the sink. */
      const connect = (txs: readonly Transaction[]) => {
        const before = new Map(accounts.map);
        const applies: Transaction[] = [];
        for (const tx of txs) {
          const sender = account(accounts, tx.from);
          if (tx.nonce !== sender.nonce || tx.amount + tx.fee > sender.balance) continue;
          applyTo(accounts, accounts, [tx], 'a block of ours');
          applies.push(tx);
        }
        const miner = random.int(2) === 0 ? SENDERS[random.int(SENDERS.length)]!.address : SINK;
        const block = childBlock({ hash: new Uint8Array(32), height: chain.length }, applies, { miner });
        const paid = account(accounts, miner);
        accounts.set(miner, { ...paid, balance: paid.balance + 50n + applies.reduce((sum, tx) => sum + tx.fee, 0n) });
        chain.push({ block, before });
        return block;
      };
      /** Transactions the pool never saw, at some senders' next nonces. */
      const foreign = () =>
        SENDERS.filter(() => random.int(3) === 0).flatMap((k: TestKey) => {
          const { nonce, balance } = account(accounts, k.address);
          return [placeholderTransfer(PARAMS, k, SINK, nonce, BigInt(random.int(Number(balance / 2n) + 1)), BigInt(1 + random.int(20)))];
        });

      for (let step = 0; step < 120; step++) {
        now += random.int(5);
        const where = `seed ${seed} (CAIRN_FUZZ_SEED=${seed} replays it), step ${step}`;
        const op = random.int(24);
        const evictedBefore = pool.dropped.evicted;
        if (op < 9) {
          await admissions();
        } else if (op < 14) {
          // Blocks (one, or a few at once as a catch-up's): the pool's selection (all of it or some),
          // or some of it and some it never saw; admissions may come between the state's change
          // and the pool's update, as a node's do.
          // Or even while a batch is being admitted, its senders' accounts read before the block.
          const during = random.int(4) === 0 ? [admissions(), admissions()] : [];
          if (during.length > 0) await afterTurns(1 + random.int(3));
          const blocks: Block[] = [];
          for (let n = random.int(4) === 0 ? 2 + random.int(2) : 1; n > 0; n--) {
            const selected = (await pool.selectForBlock(1 + random.int(6), 1_000_000)).filter((tx) => !blocks.some((b) => b.txs.includes(tx)));
            blocks.push(connect(random.int(2) === 0 ? selected : [...foreign(), ...selected.filter(() => random.int(2) === 0)]));
          }
          const queued = [...during, ...(random.int(3) === 0 ? [admissions(), admissions()] : [])];
          seen.queuedBeforeUpdate += queued.length;
          await Promise.all([pool.update(blocks, [], now), ...queued]);
        } else if (op < 16 && chain.length > 0) {
          // A reorganisation: the last blocks back, the state as it was before them, and maybe a
          // block of the other branch, with some of what they held, some of the pool's and some new.
          const back = chain.splice(chain.length - 1 - random.int(Math.min(3, chain.length)));
          accounts.map.clear();
          for (const [key, a] of back[0]!.before) accounts.map.set(key, a);
          const takenBack = back.flatMap((b) => b.block.txs).filter(() => random.int(2) === 0);
          const connected = random.int(2) === 0 ? [connect([...takenBack, ...foreign(), ...(await pool.selectForBlock(3, 1_000_000))])] : [];
          // Admissions may come between the state's going back and the pool's update, judged against the state gone back.
          const queued = random.int(3) === 0 ? [admissions(), admissions()] : [];
          seen.queuedBeforeReorganisation += queued.length;
          await Promise.all([...queued, pool.update(connected, back.map((b) => b.block), now)]);
          seen.reorganised++;
        } else if (op < 18) {
          now += random.int(3) === 0 ? policy.maxAge : 0;
          seen.expired += await pool.expire(now);
        } else if (op < 19) {
          await pool.recheckAll();
        } else if (op < 20) {
          // A snapshot's state adopted (the chain went elsewhere without blocks to follow): every sender judged again.
          for (const k of SENDERS) if (random.int(2) === 0) accounts.set(k.address, { balance: BigInt(random.int(6_000)), nonce: BigInt(random.int(8)) });
          chain.length = 0;
          await pool.recheckAll();
          seen.overShare += pool.dropped.evicted - evictedBefore; // a recheck evicts only what waits beyond the gapped share
        } else if (op < 22) {
          // Transactions kept from an earlier run (the mempool file), each with when it came, some long ago.
          await pool.restore(Array.from({ length: 1 + random.int(4) }, () => ({ tx: randomTx(), addedAt: now - random.int(policy.maxAge * 2) })), now);
        } else {
          // A peer's batch judged worth a signature check: the pool changes not.
          const before = [...pool.entries()];
          await pool.worthVerifying(Array.from({ length: 1 + random.int(4) }, randomTx));
          assert.deepEqual([...pool.entries()], before, where);
        }
        seen.evicted += pool.dropped.evicted - evictedBefore;
        seen.gapped += pool.gappedBytes > 0 ? 1 : 0;
        const senders = [...pool.entries()].map((e) => e.tx.fromKey);
        await checkIndexes(pool, accounts, senders[random.int(senders.length + 1)] ?? '', where);
      }
    }
    // The runs reached what they are for.
    for (const [what, n] of Object.entries(seen)) assert.ok(n > 0, `${what}: ${JSON.stringify(seen)}`);
  });
});
