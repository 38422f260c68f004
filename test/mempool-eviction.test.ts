/**
 * Which transactions a full mempool evicts: the index of senders' tails (ledger/sender-tails.ts)
 * against the linear search it replaced, kept here as the reference, over seeded random workloads
 * (ties, replacements, blocks connected, blocks disconnected and re-offered, expiry); and the tie
 * order spelled out: equal fees go in the order the senders entered the pool, a sender that
 * emptied entering again at the back.
 */
import assert from 'node:assert/strict';
import { Mempool, type MempoolEntry } from '../ledger/mempool.ts';
import { MempoolFullError, chooseVictims, type MempoolPolicy } from '../ledger/mempool-rules.ts';
import type { PendingSet } from '../ledger/pending-set.ts';
import { MemoryAccounts } from '../ledger/audit.ts';
import { concatBytes, toHex } from '../ledger/bytes.ts';
import type { Block } from '../ledger/block.ts';
import type { Account } from '../ledger/state.ts';
import { TX_BYTES, decodeTransaction, encodeUnsignedTransaction, type Transaction } from '../ledger/transaction.ts';
import { childBlock, seededRandom, testKey, type TestKey } from './helpers/fixtures.ts';

const RULES = { chainId: 7 };
const SINK = testKey(50).address;
/** r = 1, s = 1: decodes, would not verify; these pools check no signature. */
const PLACEHOLDER_SIGNATURE = Uint8Array.from({ length: 64 }, (_, i) => (i === 31 || i === 63 ? 1 : 0));
const noSignatureCheck = () => {};

function pay(from: TestKey, nonce: bigint, fee: bigint, amount = 1n): Transaction {
  const unsigned = encodeUnsignedTransaction({ chainId: RULES.chainId, from: from.address, to: SINK, amount, fee, nonce });
  return decodeTransaction(concatBytes(unsigned, from.publicKey, PLACEHOLDER_SIGNATURE));
}

/** What the pool keeps private, read (and its policy's cap set) by these tests only. */
interface PoolInsides {
  readonly bySender: Map<string, Map<bigint, MempoolEntry>>;
  readonly totalBytes: number;
  policy: MempoolPolicy;
  readonly tails: { readonly size: number };
  chooseVictims(tx: Transaction, gapped?: boolean): MempoolEntry[];
}
function insides(pool: Mempool): PoolInsides {
  const p = pool as unknown as { bySender: PoolInsides['bySender']; policy: MempoolPolicy; pending: PendingSet };
  return {
    bySender: p.bySender,
    get totalBytes() {
      return pool.bytes;
    },
    get policy() {
      return p.policy;
    },
    set policy(policy) {
      p.policy = policy;
    },
    tails: p.pending.tails,
    chooseVictims: (tx, gapped = false) => [...chooseVictims(p.pending, p.policy, tx, gapped)],
  };
}

/**
 * The victim choice before the tail index, but for its inputs and the newcomer's own sender: for
 * each victim, every sender's highest nonce not yet chosen (of the newcomer's sender, above the
 * newcomer's nonce), by a walk over all of them; the strictly cheapest wins, so among equal fees
 * the first in the sender map's order.
 */
function linearVictims(pool: PoolInsides, tx: Transaction): MempoolEntry[] {
  const senderKey = tx.fromKey;
  const victims: MempoolEntry[] = [];
  let freed = 0;
  const excluded = new Set<MempoolEntry>();
  while (pool.totalBytes - freed + TX_BYTES > pool.policy.maxBytes) {
    let victim: MempoolEntry | undefined;
    for (const [key, pending] of pool.bySender) {
      let tail: MempoolEntry | undefined;
      for (const e of pending.values()) if (!excluded.has(e) && (!tail || e.tx.nonce > tail.tx.nonce)) tail = e;
      if (key === senderKey && tail && tail.tx.nonce <= tx.nonce) continue;
      if (tail && (!victim || tail.tx.fee < victim.tx.fee)) victim = tail;
    }
    if (!victim || victim.tx.fee >= tx.fee) throw new MempoolFullError('full');
    victims.push(victim);
    excluded.add(victim);
    freed += victim.tx.bytes.length;
  }
  return victims;
}

function outcome(choose: () => MempoolEntry[]): MempoolEntry[] | 'full' {
  try {
    return choose();
  } catch (err) {
    if (err instanceof MempoolFullError) return 'full';
    throw err;
  }
}

function ids(choice: MempoolEntry[] | 'full'): string[] | 'full' {
  return choice === 'full' ? choice : choice.map((e) => e.idHex);
}

/** A parent hash for a block only the mempool will read: distinct, so the blocks are. */
function parentHash(...parts: number[]): Uint8Array {
  const hash = new Uint8Array(32);
  hash.set(parts);
  return hash;
}

function poolIds(pool: Mempool): string[] {
  return [...pool.entries()].map((e) => e.idHex).sort();
}

describe('Mempool eviction', () => {
  it('evicts equal fees in the order the senders entered, a sender that emptied and came back last', async () => {
    const [A, B, C, D, E, F] = [10, 11, 12, 13, 14, 15].map(testKey) as [TestKey, TestKey, TestKey, TestKey, TestKey, TestKey];
    const state = new MemoryAccounts();
    for (const k of [A, B, C, D, E, F]) state.set(k.address, { balance: 1_000_000n, nonce: 0n });
    const pool = new Mempool(state, RULES, { maxBytes: 3 * TX_BYTES, maxAge: 100 }, noSignatureCheck);
    await pool.add(pay(A, 0n, 5n), 0);
    const [b0, c0] = [pay(B, 0n, 5n), pay(C, 0n, 5n)];
    await pool.add(b0, 50);
    await pool.add(c0, 50);
    assert.equal(await pool.expire(101), 1, 'A leaves the pool');
    const a0 = pay(A, 0n, 5n, 2n);
    await pool.add(a0, 101); // A enters again, after B and C
    await pool.add(pay(D, 0n, 6n), 101);
    assert.equal(pool.has(b0.id), false, 'B entered first of the three at fee 5');
    await pool.add(pay(E, 0n, 6n), 101);
    assert.equal(pool.has(c0.id), false);
    assert.equal(pool.has(a0.id), true, 'A came back after C');
    await pool.add(pay(F, 0n, 7n), 101);
    assert.equal(pool.has(a0.id), false);
    // cairn_mempool_dropped_total: a full pool that sheds transactions is what an operator alerts on.
    assert.deepEqual(pool.dropped, { evicted: 3, expired: 1 }, 'B, C and A evicted; A expired before');
  });

  it("lets the newcomer's own later nonces compete with every other sender's tails, never those it needs", async () => {
    // S waits at nonce 3 (fee 2) for nonces 1 and 2; T pays 9, or 20. S's nonce 1 at fee 10 needs room.
    const [S, T] = [20, 21].map(testKey) as [TestKey, TestKey];
    const full = async (tFee: bigint) => {
      const state = new MemoryAccounts();
      for (const k of [S, T]) state.set(k.address, { balance: 1_000_000n, nonce: 0n });
      const pool = new Mempool(state, RULES, { maxBytes: 3 * TX_BYTES, maxGappedBytes: TX_BYTES }, noSignatureCheck);
      const txs = { s0: pay(S, 0n, 50n), s3: pay(S, 3n, 2n), t0: pay(T, 0n, tFee), s1: pay(S, 1n, 10n) };
      for (const tx of [txs.s0, txs.s3, txs.t0]) await pool.add(tx, 0);
      return { pool, txs };
    };
    // The cheapest nothing depends on is S's own nonce 3: it goes, not T's fee 9.
    const a = await full(9n);
    await a.pool.add(a.txs.s1, 0);
    assert.deepEqual(poolIds(a.pool), [a.txs.s0, a.txs.s1, a.txs.t0].map((tx) => tx.idHex).sort(), 'S\'s nonce 3 evicted, T\'s fee 9 kept');
    // T's fee 20 beats the newcomer, but S's fee 2 does not: the newcomer is not the cheapest.
    const b = await full(20n);
    await b.pool.add(b.txs.s1, 0);
    assert.deepEqual(poolIds(b.pool), [b.txs.s0, b.txs.s1, b.txs.t0].map((tx) => tx.idHex).sort(), 'admitted for S\'s nonce 3');
    // Nonce 0, which the newcomer needs, is never its victim: with T's fee 20 and only S's nonce 0 cheaper, it is refused.
    const c = await full(20n);
    await c.pool.add(c.txs.s1, 0); // takes nonce 3's room
    await assert.rejects(c.pool.add(pay(S, 2n, 11n), 0), MempoolFullError, 'S\'s nonces 0 and 1 are the newcomer\'s own chain');
  });

  it('chooses what the linear search chose, over random workloads with ties, replacements and reorgs', async () => {
    const seen = { admitted: 0, evicting: 0, refusedFull: 0, multiple: 0, sameSenderTwice: 0, readmitted: 0, expired: 0 };
    for (let seed = 1; seed <= 12; seed++) {
      const random = seededRandom(7_000 + seed);
      const senders = Array.from({ length: 7 }, (_, i) => testKey(70 + i));
      const stranger = testKey(90);
      const state = new MemoryAccounts();
      for (const k of [...senders, stranger]) state.set(k.address, { balance: 10_000n, nonce: 0n });
      const cap = (3 + random.int(6)) * TX_BYTES;
      // Transactions behind a missing nonce get the whole pool as their share here: that they
      // never make room is checked below, their share by test/mempool.test.ts.
      const pool = new Mempool(state, RULES, { maxBytes: cap, maxNonceGap: 4, maxAge: 40, maxGappedBytes: cap }, noSignatureCheck);
      const inside = insides(pool);
      const chain: { block: Block; accounts: Map<string, Account> }[] = [];
      let now = 0;
      let amount = 1n; // every transaction a distinct id

      /** Compares the chooser with the reference for `tx` at the pool's cap and, as if it were over it, lower caps. */
      const compare = (tx: Transaction, context: string) => {
        const policy = inside.policy;
        try {
          for (const over of [0, 1, 2, 3]) {
            inside.policy = { ...policy, maxBytes: over === 0 ? policy.maxBytes : inside.totalBytes - over * TX_BYTES };
            const expected = outcome(() => linearVictims(inside, tx));
            const chosen = outcome(() => inside.chooseVictims(tx));
            assert.deepEqual(ids(chosen), ids(expected), `seed ${seed}, ${context}, ${over} over the cap`);
            if (expected !== 'full' && expected.length > 1) {
              seen.multiple++;
              if (new Set(expected.map((e) => e.tx.fromKey)).size < expected.length) seen.sameSenderTwice++;
            }
          }
        } finally {
          inside.policy = policy;
        }
      };
      // Only a probe's sender, nonce and fee matter to the choice.
      const probes = [...senders, stranger].flatMap((k) => [0n, 2n].flatMap((nonce) => [1n, 3n, 5n, 9n].map((fee) => pay(k, nonce, fee, 0n))));
      const checkAll = (context: string) => {
        assert.equal(inside.tails.size, inside.bySender.size, `seed ${seed}, ${context}: one heap slot per sender`);
        for (const address of [SINK, stranger.address, ...senders.map((k) => k.address)]) {
          const key = toHex(address);
          const expected = [...pool.entries()].filter((e) => e.tx.fromKey === key || e.tx.toKey === key);
          assert.deepEqual([...pool.involving(address)].map((e) => e.idHex).sort(), expected.map((e) => e.idHex).sort(), `seed ${seed}, ${context}: what involves an address`);
          const sent = expected.filter((e) => e.tx.fromKey === key);
          assert.deepEqual(pool.sentFrom(address).map((e) => e.idHex).sort(), sent.map((e) => e.idHex).sort(), `seed ${seed}, ${context}: what an address sent`);
        }
        for (const probe of probes) compare(probe, context);
      };

      for (let step = 0; step < 120; step++) {
        const roll = random.int(100);
        if (roll < 60) {
          const key = senders[random.int(senders.length)]!;
          const account = (await state.getAccount(key.address))!;
          const nonce = account.nonce + BigInt(random.int(6));
          const replacing = inside.bySender.get(toHex(key.address))?.get(nonce);
          const fee = replacing ? replacing.tx.fee + BigInt(random.int(3)) : BigInt(1 + random.int(4));
          const tx = pay(key, nonce, fee, amount++);
          const before = poolIds(pool);
          const pending = inside.bySender.get(toHex(key.address));
          let next = account.nonce;
          while (pending?.has(next)) next++;
          // One behind a missing nonce makes no room: refused as full whenever room is needed.
          const waits = !replacing && nonce > next;
          const expected = waits && inside.totalBytes + TX_BYTES > cap ? 'full' : outcome(() => linearVictims(inside, tx));
          compare(tx, `step ${step}`);
          const admitted = await pool.add(tx, now).then(
            () => true,
            (err: unknown) => {
              assert.ok(err instanceof Error);
              if (err instanceof MempoolFullError) {
                assert.equal(expected, 'full', `seed ${seed}, step ${step}: refused as full`);
                seen.refusedFull++;
              }
              return false;
            },
          );
          if (!admitted) {
            assert.deepEqual(poolIds(pool), before, `seed ${seed}, step ${step}: a refusal changes nothing`);
          } else if (!replacing) {
            assert.notEqual(expected, 'full');
            const gone = new Set(ids(expected));
            assert.deepEqual(poolIds(pool), [...before.filter((id) => !gone.has(id)), tx.idHex].sort(), `seed ${seed}, step ${step}: evicted what the reference chose`);
            seen.admitted++;
            if (gone.size > 0) seen.evicting++;
          }
        } else if (roll < 78) {
          // A block: a run of each chosen sender's pending nonces from its state nonce, or a competing version of it.
          const txs: Transaction[] = [];
          const accounts = new Map([...state.map].map(([k, a]) => [k, { ...a }]));
          for (const key of senders) {
            if (random.int(3) !== 0) continue;
            const account = (await state.getAccount(key.address))!;
            let nonce = account.nonce;
            let balance = account.balance;
            const pending = inside.bySender.get(toHex(key.address));
            for (let e = pending?.get(nonce); e && random.int(3) !== 0 && balance >= e.tx.amount + e.tx.fee; e = pending?.get(nonce)) {
              txs.push(e.tx);
              balance -= e.tx.amount + e.tx.fee;
              nonce++;
            }
            if (random.int(4) === 0) {
              const competing = pay(key, nonce, 1n, BigInt(random.int(2)) * 9_000n + amount++);
              if (balance >= competing.amount + competing.fee) {
                txs.push(competing);
                balance -= competing.amount + competing.fee;
                nonce++;
              }
            }
            state.set(key.address, { balance, nonce });
          }
          const block = childBlock({ hash: parentHash(seed, step, 0), height: chain.length + 1 }, txs);
          chain.push({ block, accounts });
          await pool.update([block], [], now);
          checkAll(`block at step ${step}`);
        } else if (roll < 92 && chain.length > 0) {
          // The tip disconnected, sometimes for an empty block: its transactions offered again.
          const { block, accounts } = chain.pop()!;
          for (const [k, a] of accounts) state.map.set(k, a);
          const sizeBefore = pool.size;
          const replacement = random.int(2) === 0 ? [childBlock({ hash: parentHash(seed, step, 1), height: chain.length + 1 }, [])] : [];
          for (const b of replacement) chain.push({ block: b, accounts: new Map([...state.map].map(([k, a]) => [k, { ...a }])) });
          await pool.update(replacement, [block], now);
          if (pool.size > sizeBefore) seen.readmitted++;
          checkAll(`reorg at step ${step}`);
        } else {
          now += 1 + random.int(30);
          seen.expired += await pool.expire(now);
          checkAll(`expiry at step ${step}`);
        }
      }
    }
    // The workloads reached every case they are meant to.
    for (const [what, count] of Object.entries(seen)) assert.ok(count > 0, `no ${what} in the workloads: ${JSON.stringify(seen)}`);
  });
});
