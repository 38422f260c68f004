/**
 * The mempool: what it refuses (each refusal with its own class and code, and leaving the pool as
 * it was), how it orders and selects by fee without ever breaking a sender's nonce order, how it
 * makes room under its byte cap, how it ages entries out, how it follows the tip across connected
 * and disconnected blocks of a real ChainDB, and that concurrent submissions are serialised.
 */
import { TipHarness } from './helpers/tip.ts';
import assert from 'node:assert/strict';
import { Mempool } from '../ledger/mempool.ts';
import { MempoolFullError, MempoolRejection } from '../ledger/mempool-rules.ts';
import { MemoryAccounts } from '../ledger/audit.ts';
import { ChainDB } from '../ledger/chaindb.ts';
import { MAX_AMOUNT } from '../ledger/amount.ts';
import { concatBytes, toHex } from '../ledger/bytes.ts';
import { CairnError, TxRuleError } from '../ledger/errors.ts';
import type { Account, AccountSource } from '../ledger/state.ts';
import {
  TX_BYTES,
  decodeTransaction,
  encodeUnsignedTransaction,
  type Transaction,
} from '../ledger/transaction.ts';
import { FUNDED_KEYS, childBlock, seededRandom, tempDir, testKey, testParams, transfer, type TestKey } from './helpers/fixtures.ts';
import type { Block } from '../ledger/block.ts';

const RULES = { chainId: 7 };
const NOW = 1_000;
const SINK = testKey(50).address;
const [A, B, C, D, E] = [10, 11, 12, 13, 14].map(testKey) as [TestKey, TestKey, TestKey, TestKey, TestKey];

/** A payment to SINK; `amount` tells apart transactions that share sender, nonce and fee. */
function pay(from: TestKey, nonce: number, fee: number | bigint, amount: bigint = 1n, chainId = 7): Transaction {
  return transfer(from, SINK, amount, BigInt(nonce), BigInt(fee), chainId);
}

/** `tx` with another fee but the original signature: decodes fine, does not verify. */
function forgeFee(tx: Transaction, fee: bigint): Transaction {
  const { chainId, from, to, amount, nonce } = tx;
  return decodeTransaction(concatBytes(encodeUnsignedTransaction({ chainId, from, to, amount, fee, nonce }), tx.publicKey, tx.signature));
}

function accounts(entries: ReadonlyArray<readonly [TestKey, Partial<Account>]>): MemoryAccounts {
  const state = new MemoryAccounts();
  for (const [key, a] of entries) state.set(key.address, { balance: a.balance ?? 1_000_000n, nonce: a.nonce ?? 0n });
  return state;
}

function poolIds(pool: Mempool): string[] {
  return [...pool.entries()].map((e) => e.idHex).sort();
}

function idsOf(txs: readonly Transaction[]): string[] {
  return txs.map((tx) => toHex(tx.id));
}

async function admit(pool: Mempool, txs: readonly Transaction[], now = NOW): Promise<void> {
  for (const tx of txs) await pool.add(tx, now);
}

/**
 * Submits, expects a refusal of exactly `cls` (not a subclass) with `code`, and checks that the
 * pool holds exactly what it held before: a refusal may never evict or count anything.
 */
async function refused(
  pool: Mempool,
  submit: () => Promise<unknown>,
  cls: new (...args: never[]) => CairnError,
  code: string,
): Promise<void> {
  const before = { size: pool.size, bytes: pool.bytes, ids: poolIds(pool) };
  await assert.rejects(submit(), (err: unknown) => {
    assert.ok(err instanceof CairnError, `not a CairnError: ${String(err)}`);
    assert.equal(Object.getPrototypeOf(err), cls.prototype, `${err.name} ${err.code}: ${err.message}`);
    assert.equal(err.code, code, err.message);
    return true;
  });
  assert.equal(pool.size, before.size, 'size changed by a refusal');
  assert.equal(pool.bytes, before.bytes, 'bytes changed by a refusal');
  assert.deepEqual(poolIds(pool), before.ids, 'contents changed by a refusal');
}

const everything = { txs: 1_000, bytes: 1_000_000 };

describe('Mempool', () => {
  describe('admission', () => {
    it('holds a nonce gap back from blocks until the missing nonce arrives, within maxNonceGap', async () => {
      const pool = new Mempool(accounts([[A, {}]]), RULES, { maxNonceGap: 3 });
      const [a0, a1, a3] = [pay(A, 0, 5), pay(A, 1, 5), pay(A, 3, 5)];

      await pool.add(a1, NOW);
      assert.equal(pool.size, 1);
      assert.equal(pool.bytes, TX_BYTES);
      assert.deepEqual(await pool.selectForBlock(everything.txs, everything.bytes), []);
      assert.equal(await pool.nextNonce(A.address), 0n);

      await pool.add(a0, NOW);
      assert.deepEqual(idsOf(await pool.selectForBlock(everything.txs, everything.bytes)), idsOf([a0, a1]));
      assert.equal(await pool.nextNonce(A.address), 2n);

      // state nonce 0 + maxNonceGap 3: nonce 3 may wait, nonce 4 may not.
      await pool.add(a3, NOW);
      await refused(pool, () => pool.add(pay(A, 4, 5), NOW), MempoolRejection, 'MEMPOOL_NONCE_GAP');
      assert.deepEqual(idsOf(await pool.selectForBlock(everything.txs, everything.bytes)), idsOf([a0, a1]));
      assert.equal(await pool.nextNonce(A.address), 2n, 'nonce 2 is still missing');
      assert.equal(pool.size, 3);
      assert.equal(pool.bytes, 3 * TX_BYTES);
    });

    it('refuses used nonces, duplicates, low fees, other chains, bad signatures and overspending', async () => {
      const pool = new Mempool(
        accounts([
          [A, { nonce: 5n }],
          [B, { balance: 1_000n }],
        ]),
        RULES,
        { minFee: 2n },
      );
      const a5 = pay(A, 5, 2);
      await pool.add(a5, NOW);

      await refused(pool, () => pool.add(pay(A, 4, 2), NOW), MempoolRejection, 'MEMPOOL_NONCE_TOO_LOW');
      await refused(pool, () => pool.add(a5, NOW + 1), MempoolRejection, 'MEMPOOL_DUPLICATE');
      await refused(pool, () => pool.add(pay(A, 6, 1), NOW), MempoolRejection, 'MEMPOOL_FEE_TOO_LOW');
      await refused(pool, () => pool.add(pay(A, 6, 2, 1n, 8), NOW), TxRuleError, 'TX_WRONG_CHAIN');
      await refused(pool, () => pool.add(forgeFee(pay(A, 6, 2), 50n), NOW), TxRuleError, 'TX_BAD_SIGNATURE');
      await refused(pool, () => pool.add(pay(A, 6, 2, MAX_AMOUNT - 1n), NOW), TxRuleError, 'TX_AMOUNT_OVER_LIMIT');

      // B holds 1000: what B has pending counts against it, to the last unit.
      await pool.add(pay(B, 0, 2, 600n), NOW);
      await refused(pool, () => pool.add(pay(B, 1, 2, 397n), NOW), MempoolRejection, 'MEMPOOL_INSUFFICIENT_BALANCE');
      // The message adds it up for the submitter: what this one costs, what is already pending, what there is.
      await assert.rejects(pool.add(pay(B, 1, 2, 397n), NOW), { message: 'insufficient funds: need 1001 (397 + fee 2, plus 602 pending from this sender), have 1000 (base units)' });
      await pool.add(pay(B, 1, 2, 396n), NOW);
      await refused(pool, () => pool.add(pay(C, 0, 2), NOW), MempoolRejection, 'MEMPOOL_INSUFFICIENT_BALANCE');
      await assert.rejects(pool.add(pay(C, 0, 2), NOW), { message: /^insufficient funds: need \d+ \(\d+ \+ fee 2\), have 0 \(base units\)$/ });
      assert.equal(pool.size, 3);
      assert.equal(pool.bytes, 3 * TX_BYTES);
    });

    it('reports the next nonce as the state nonce plus the consecutive pending ones', async () => {
      const pool = new Mempool(accounts([[A, { nonce: 5n }]]), RULES);
      assert.equal(await pool.nextNonce(A.address), 5n);
      assert.equal(await pool.nextNonce(B.address), 0n, 'an address without an account starts at 0');
      await admit(pool, [pay(A, 5, 1), pay(A, 6, 1), pay(A, 8, 1)]);
      assert.equal(await pool.nextNonce(A.address), 7n, 'nonce 8 waits behind the missing 7');
    });
  });

  describe('selection for a block', () => {
    it('takes the highest-fee head across senders, never a later nonce before an earlier one', async () => {
      const pool = new Mempool(accounts([[A, {}], [B, {}], [C, {}]]), RULES);
      const a0 = pay(A, 0, 1);
      const a1 = pay(A, 1, 100);
      const b0 = pay(B, 0, 50);
      const b1 = pay(B, 1, 2);
      const c0 = pay(C, 0, 10);
      await admit(pool, [a1, b1, c0, a0, b0]);
      // Heads A0(1) B0(50) C0(10) → B0; A0(1) B1(2) C0(10) → C0; A0(1) B1(2) → B1; then A0, A1:
      // A1's fee of 100 cannot lift it over A0, on which it depends.
      const order = [b0, c0, b1, a0, a1];
      assert.deepEqual(idsOf(await pool.selectForBlock(everything.txs, everything.bytes)), idsOf(order));
      assert.deepEqual(idsOf(await pool.selectForBlock(2, everything.bytes)), idsOf(order.slice(0, 2)));
      assert.deepEqual(await pool.selectForBlock(0, everything.bytes), []);
      assert.deepEqual(idsOf(await pool.selectForBlock(everything.txs, 3 * TX_BYTES)), idsOf(order.slice(0, 3)));
      assert.deepEqual(idsOf(await pool.selectForBlock(everything.txs, 3 * TX_BYTES - 1)), idsOf(order.slice(0, 2)));
      assert.deepEqual(await pool.selectForBlock(everything.txs, TX_BYTES - 1), []);
      assert.equal(pool.size, 5, 'selecting removes nothing');
    });

    it("reads its senders' accounts in one round trip, not one each", async () => {
      const state = accounts([[A, { nonce: 1n }], [B, {}], [C, {}]]);
      const reads = { one: 0, many: [] as number[] };
      const source: AccountSource = {
        getAccount: (address) => (reads.one++, state.getAccount(address)),
        getAccounts: (addresses) => (reads.many.push(addresses.length), Promise.all(addresses.map((a) => state.getAccount(a)))),
      };
      const pool = new Mempool(source, RULES);
      const txs = [pay(A, 1, 5), pay(A, 2, 4), pay(B, 0, 3), pay(C, 0, 2)];
      await admit(pool, txs);
      reads.one = 0;
      reads.many = [];
      assert.deepEqual(idsOf(await pool.selectForBlock(everything.txs, everything.bytes)), idsOf(txs));
      assert.deepEqual(reads, { one: 0, many: [3] });
    });

    it('matches a brute-force greedy selection on seeded random pools', async () => {
      const random = seededRandom(20240611);
      const senders = [0, 1, 2, 3, 4, 5].map((i) => testKey(30 + i));
      for (let round = 0; round < 3; round++) {
        const stateNonces = senders.map(() => BigInt(random.int(3)));
        const pool = new Mempool(accounts(senders.map((k, i) => [k, { nonce: stateNonces[i]! }] as const)), RULES);
        const planned: { key: TestKey; nonce: number }[] = [];
        senders.forEach((key, i) => {
          const first = Number(stateNonces[i]!);
          const count = random.int(5);
          const gap = random.int(4) === 0 ? first + random.int(3) : -1; // sometimes a missing nonce
          for (let n = first; n < first + count; n++) if (n !== gap) planned.push({ key, nonce: n });
        });
        // Distinct fees, so the expected order is unique.
        const fees = planned.map((_, i) => BigInt(i + 1));
        for (let i = fees.length - 1; i > 0; i--) {
          const j = random.int(i + 1);
          [fees[i], fees[j]] = [fees[j]!, fees[i]!];
        }
        const txs = planned.map((p, i) => pay(p.key, p.nonce, fees[i]!));
        const shuffled = [...txs];
        for (let i = shuffled.length - 1; i > 0; i--) {
          const j = random.int(i + 1);
          [shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!];
        }
        await admit(pool, shuffled);

        const queues = senders.map((key, i) => {
          const run: Transaction[] = [];
          for (let n = stateNonces[i]!; ; n++) {
            const tx = txs.find((t) => toHex(t.from) === toHex(key.address) && t.nonce === n);
            if (!tx) break;
            run.push(tx);
          }
          return run;
        });
        const expected: Transaction[] = [];
        for (;;) {
          let best: Transaction[] | undefined;
          for (const q of queues) if (q.length > 0 && (!best || q[0]!.fee > best[0]!.fee)) best = q;
          if (!best) break;
          expected.push(best.shift()!);
        }
        assert.deepEqual(idsOf(await pool.selectForBlock(everything.txs, everything.bytes)), idsOf(expected), `round ${round}`);
        assert.deepEqual(idsOf(await pool.selectForBlock(4, everything.bytes)), idsOf(expected.slice(0, 4)), `round ${round}`);
      }
    });
  });

  describe('replace-by-fee', () => {
    it('replaces a pending nonce only for max(1, 10%) more fee', async () => {
      const pool = new Mempool(accounts([[A, { balance: 1_000n }], [B, {}]]), RULES);
      const old = pay(A, 0, 100, 800n);
      await pool.add(old, NOW);
      // 100 + 10% = 110; the replaced transaction's 900 does not count against A's 1000.
      await refused(pool, () => pool.add(pay(A, 0, 109, 800n), NOW), MempoolRejection, 'MEMPOOL_REPLACEMENT_UNDERPRICED');
      const replacement = pay(A, 0, 110, 800n);
      await pool.add(replacement, NOW);
      assert.equal(pool.has(old.id), false);
      assert.equal(pool.has(replacement.id), true);
      assert.equal(pool.size, 1);
      assert.equal(pool.bytes, TX_BYTES);
      assert.deepEqual(idsOf(await pool.selectForBlock(everything.txs, everything.bytes)), idsOf([replacement]));

      // Below 10 the bump rounds to 0, and the floor of 1 applies.
      const cheap = pay(B, 0, 5);
      await pool.add(cheap, NOW);
      await refused(pool, () => pool.add(pay(B, 0, 5, 2n), NOW), MempoolRejection, 'MEMPOOL_REPLACEMENT_UNDERPRICED');
      await pool.add(pay(B, 0, 6, 2n), NOW);
      assert.equal(pool.has(cheap.id), false);
      assert.equal(pool.size, 2);
      assert.equal(pool.bytes, 2 * TX_BYTES);
    });

    it('replaces in a full pool without evicting anyone else', async () => {
      const pool = new Mempool(accounts([[A, {}], [B, {}]]), RULES, { maxBytes: 2 * TX_BYTES });
      const b0 = pay(B, 0, 5);
      await admit(pool, [pay(A, 0, 100), b0]);
      const replacement = pay(A, 0, 110, 2n);
      await pool.add(replacement, NOW);
      assert.equal(pool.has(replacement.id), true);
      assert.equal(pool.has(b0.id), true, 'a replacement needs no room, so nothing may be evicted for it');
      assert.equal(pool.size, 2);
      assert.equal(pool.bytes, 2 * TX_BYTES);
    });
  });

  describe('byte cap', () => {
    it('evicts the cheapest sender tail for a better fee, and refuses what would be cheapest', async () => {
      const pool = new Mempool(accounts([[A, {}], [B, {}], [C, {}], [D, {}], [E, {}]]), RULES, { maxBytes: 3 * TX_BYTES });
      const a0 = pay(A, 0, 1);
      const a1 = pay(A, 1, 50);
      const b0 = pay(B, 0, 20);
      await admit(pool, [a0, a1, b0]);
      assert.equal(pool.bytes, 3 * TX_BYTES);

      // A0 pays least, but A1 depends on it: only tails (A1 at 50, B0 at 20) can go, and 20 does not beat 20.
      await refused(pool, () => pool.add(pay(C, 0, 20), NOW), MempoolFullError, 'MEMPOOL_FULL');
      await refused(pool, () => pool.add(pay(C, 0, 2), NOW), MempoolFullError, 'MEMPOOL_FULL');

      const c0 = pay(C, 0, 21);
      await pool.add(c0, NOW);
      assert.deepEqual(poolIds(pool), idsOf([a0, a1, c0]).sort(), 'B0 evicted, never A0 while A1 stays');
      assert.equal(pool.bytes, 3 * TX_BYTES);

      const d0 = pay(D, 0, 60);
      await pool.add(d0, NOW);
      assert.deepEqual(poolIds(pool), idsOf([a0, a1, d0]).sort(), 'C0 (21) was the cheapest tail');

      const e0 = pay(E, 0, 70);
      await pool.add(e0, NOW);
      assert.deepEqual(poolIds(pool), idsOf([a0, d0, e0]).sort(), 'A1 (50) goes before A0 (1)');
      assert.equal(pool.size, 3);
      assert.equal(pool.bytes, 3 * TX_BYTES);
      assert.deepEqual(idsOf(await pool.selectForBlock(everything.txs, everything.bytes)), idsOf([e0, d0, a0]));
    });

    it('evicts nothing for a transaction whose signature then fails', async () => {
      const pool = new Mempool(accounts([[A, {}], [B, {}]]), RULES, { maxBytes: TX_BYTES });
      await pool.add(pay(A, 0, 1), NOW);
      await refused(pool, () => pool.add(forgeFee(pay(B, 0, 1), 1_000n), NOW), TxRuleError, 'TX_BAD_SIGNATURE');
    });
  });

  describe('transactions behind a missing nonce', () => {
    // Found by a review: they were ranked with the rest by fee, so senders that sent nonces 1 to 64
    // and never 0 filled the pool at no cost and pushed out every transaction a block could take.
    it('hold at most their share of the pool, make no room, and count again once the gap is filled', async () => {
      const pool = new Mempool(accounts([[A, {}], [B, {}], [C, {}]]), RULES, { maxBytes: 4 * TX_BYTES, maxGappedBytes: 2 * TX_BYTES });
      const [a1, a2] = [pay(A, 1, 90), pay(A, 2, 90)];
      await admit(pool, [a1, a2]);
      assert.equal(pool.gappedBytes, 2 * TX_BYTES);
      await refused(pool, () => pool.add(pay(B, 1, 90), NOW), MempoolFullError, 'MEMPOOL_FULL');
      // Executable transactions take the rest of the pool, and the gapped ones never push them out.
      const [b0, c0] = [pay(B, 0, 1), pay(C, 0, 1)];
      await admit(pool, [b0, c0]);
      await refused(pool, () => pool.add(pay(B, 2, 500), NOW), MempoolFullError, 'MEMPOOL_FULL');
      assert.deepEqual(idsOf(await pool.selectForBlock(everything.txs, everything.bytes)), idsOf([b0, c0]));
      // Filling A's gap makes A's run executable and its share free again (A0 evicts the cheapest tail).
      const a0 = pay(A, 0, 90);
      await pool.add(a0, NOW);
      assert.equal(pool.gappedBytes, 0);
      assert.deepEqual(idsOf(await pool.selectForBlock(everything.txs, everything.bytes)).slice(0, 3), idsOf([a0, a1, a2]));
    });

    it('are counted again when a block moves the sender past the gap', async () => {
      const state = accounts([[A, {}]]);
      const pool = new Mempool(state, RULES, { maxGappedBytes: 2 * TX_BYTES });
      const a1 = pay(A, 1, 5);
      await pool.add(a1, NOW);
      assert.equal(pool.gappedBytes, TX_BYTES);
      const a0 = pay(A, 0, 5); // mined elsewhere, never in this pool
      state.set(A.address, { balance: 1_000_000n - a0.amount - a0.fee, nonce: 1n });
      await pool.update([childBlock({ hash: new Uint8Array(32), height: 1 }, [a0])], [], NOW);
      assert.equal(pool.gappedBytes, 0);
      assert.deepEqual(idsOf(await pool.selectForBlock(everything.txs, everything.bytes)), idsOf([a1]));
    });
  });

  it('expiring a transaction drops its sender\'s later nonces with it, which could no longer be mined', async () => {
    const pool = new Mempool(accounts([[A, {}], [B, {}]]), RULES, { maxAge: 100 });
    const [a0, a1, b0] = [pay(A, 0, 1), pay(A, 1, 1), pay(B, 0, 1)];
    await pool.add(a0, 1_000);
    await pool.add(a1, 1_050);
    await pool.add(b0, 1_050);
    assert.equal(await pool.expire(1_101), 2);
    assert.deepEqual(poolIds(pool), idsOf([b0]));
  });

  it('takes back every transaction of a disconnected block, however far past the nonce gap a new one may open', async () => {
    const pool = new Mempool(accounts([[A, {}]]), RULES, { maxNonceGap: 3 });
    const run = Array.from({ length: 8 }, (_, i) => pay(A, i, 2));
    await pool.update([], [childBlock({ hash: new Uint8Array(32), height: 1 }, run)], NOW);
    assert.equal(pool.size, 8);
    assert.deepEqual(idsOf(await pool.selectForBlock(everything.txs, everything.bytes)), idsOf(run));
  });

  it('expires entries older than maxAge, and only those', async () => {
    const pool = new Mempool(accounts([[A, {}], [B, {}]]), RULES, { maxAge: 100 });
    const old = pay(A, 0, 1);
    const young = pay(B, 0, 1);
    await pool.add(old, 1_000);
    await pool.add(young, 1_050);
    assert.equal(await pool.expire(1_100), 0, 'exactly maxAge old is not older than maxAge');
    assert.equal(pool.size, 2);
    assert.equal(await pool.expire(1_101), 1);
    assert.deepEqual(poolIds(pool), idsOf([young]));
    assert.equal(pool.bytes, TX_BYTES);
    assert.equal(await pool.expire(1_150), 0);
    assert.equal(await pool.expire(1_151), 1);
    assert.equal(pool.size, 0);
    assert.equal(pool.bytes, 0);
  });

  it("after a block that took a sender's first nonce, keeps the rest without walking them; a sender short of funds is walked and trimmed", async () => {
    // A busy pool's senders have tens of nonces each, and re-sorting and re-summing all of them for
    // every sender a block touched was ~15 ms of a 2,000-transaction block's import.
    const state = accounts([
      [A, { balance: 1_000n }],
      [B, { balance: 1_000n }],
    ]);
    const pool = new Mempool(state, RULES);
    const fromA = [0, 1, 2, 3].map((n) => pay(A, n, 1, 100n));
    const fromB = [0, 1, 2].map((n) => pay(B, n, 1, 100n));
    await admit(pool, [...fromA, ...fromB]);
    const amountReads = new Map<Transaction, number>();
    for (const tx of [...fromA, ...fromB]) {
      const amount = tx.amount;
      Object.defineProperty(tx, 'amount', { get: () => (amountReads.set(tx, (amountReads.get(tx) ?? 0) + 1), amount) });
    }
    // The block took nonce 0 of each; B's balance now covers only one more of its two.
    state.set(A.address, { balance: 1_000n - 101n, nonce: 1n });
    state.set(B.address, { balance: 150n, nonce: 1n });
    const block = { txs: [fromA[0]!, fromB[0]!], coinbase: { to: SINK, amount: 0n } } as unknown as Block;
    amountReads.clear();
    await pool.update([block], [], NOW);
    assert.deepEqual(poolIds(pool), idsOf([...fromA.slice(1), fromB[1]!]).sort());
    assert.deepEqual(fromA.slice(1).map((tx) => amountReads.get(tx) ?? 0), [0, 0, 0], "A's remaining nonces are not walked");
    assert.ok((amountReads.get(fromB[1]!) ?? 0) > 0, 'B, short of funds, is walked');
    assert.equal(await pool.nextNonce(A.address), 4n);
    assert.equal(pool.gappedBytes, 0);
  });

  it('judges a sender against exactly what it has pending, through replacements, expiry and blocks', async () => {
    // The pool keeps each sender's pending total as it goes; here it is recomputed from the pool's
    // entries after every step and probed from both sides: one base unit more than the sender can
    // still afford is refused for the balance, exactly that much gets past the balance to the
    // signature check, which the probe fails on purpose so that the pool stays as it was.
    const senders = [A, B, C];
    const state = accounts(senders.map((k) => [k, { balance: 100_000n }] as const));
    const probesStop = new Set<string>();
    const pool = new Mempool(state, RULES, { maxAge: 50, maxNonceGap: 6 }, (tx) => {
      if (probesStop.has(tx.idHex)) throw new MempoolRejection('MEMPOOL_DUPLICATE', 'the probe stops here');
    });
    const random = seededRandom(19);
    let now = NOW;
    const pendingTotal = (k: TestKey) =>
      [...pool.entries()].filter((e) => toHex(e.tx.from) === toHex(k.address)).reduce((sum, e) => sum + e.tx.amount + e.tx.fee, 0n);
    const refusalCode = async (tx: Transaction) => {
      try {
        await pool.add(tx, now);
        return 'admitted';
      } catch (err) {
        assert.ok(err instanceof CairnError, String(err));
        return err.code;
      }
    };
    const seen = { probes: 0, replaced: 0, expired: 0, mined: 0 };
    for (let step = 0; step < 300; step++) {
      now += random.int(8);
      const k = senders[random.int(senders.length)]!;
      const account = (await state.getAccount(k.address))!;
      const choice = random.int(10);
      if (choice < 4) {
        // A payment at a nonce that may be new, pending (a replacement) or out of reach.
        const nonce = Number(account.nonce) + random.int(8);
        const pendingAlready = [...pool.entries()].some((e) => toHex(e.tx.from) === toHex(k.address) && e.tx.nonce === BigInt(nonce));
        const code = await refusalCode(pay(k, nonce, 1 + random.int(40), BigInt(1 + random.int(2_500))));
        if (pendingAlready && code === 'admitted') seen.replaced++;
      } else if (choice < 6) {
        seen.expired += await pool.expire(now);
      } else {
        // A block mines the sender's lowest pending nonce, if it has one.
        const lowest = [...pool.entries()].find((e) => toHex(e.tx.from) === toHex(k.address) && e.tx.nonce === account.nonce);
        if (lowest) {
          state.set(k.address, { balance: account.balance - lowest.tx.amount - lowest.tx.fee, nonce: account.nonce + 1n });
          await pool.update([childBlock({ hash: new Uint8Array(32), height: step }, [lowest.tx])], [], now);
          seen.mined++;
        }
      }
      for (const s of senders) {
        const { balance } = (await state.getAccount(s.address))!;
        const nonce = await pool.nextNonce(s.address);
        const room = balance - pendingTotal(s) - 1n; // what a fee of 1 leaves for the amount
        if (room < 1n || nonce > (await state.getAccount(s.address))!.nonce + 6n) continue;
        assert.equal(await refusalCode(pay(s, Number(nonce), 1, room + 1n)), 'MEMPOOL_INSUFFICIENT_BALANCE', `step ${step}`);
        seen.probes++;
        const exact = pay(s, Number(nonce), 1, room);
        probesStop.add(exact.idHex);
        const before = poolIds(pool);
        await assert.rejects(pool.add(exact, now), /the probe stops here/, `step ${step}`);
        assert.deepEqual(poolIds(pool), before);
      }
    }
    // The walk must have gone through every kind of removal, and probed often.
    assert.ok(seen.probes > 500 && seen.replaced > 5 && seen.expired > 5 && seen.mined > 10, JSON.stringify(seen));
  });

  describe('following the tip of a ChainDB', () => {
    let dir: ReturnType<typeof tempDir>;
    let db: ChainDB;
    const [K0, K1, K2, K3] = FUNDED_KEYS as [TestKey, TestKey, TestKey, TestKey];
    beforeEach(async () => {
      dir = tempDir();
      db = await ChainDB.open(dir.path, testParams());
    });
    afterEach(async () => {
      await db.close();
      dir.remove();
    });

    it('drops what a block confirmed or invalidated, and takes back a disconnected block', async () => {
      const params = testParams();
      const pool = new Mempool(db, params);
      const k0n0 = transfer(K0, K3.address, 100n, 0n, 5n);
      const k0n1 = transfer(K0, K3.address, 100n, 1n, 5n);
      const k1n0 = transfer(K1, K3.address, 600_000n, 0n, 5n);
      const k1n1 = transfer(K1, K3.address, 300_000n, 1n, 5n);
      const k2n0 = transfer(K2, K3.address, 7n, 0n, 5n);
      await admit(pool, [k0n0, k0n1, k1n0, k1n1, k2n0]);
      // K1's nonce 0 is mined in another version that leaves 99_995: too little for k1n1's 300_005.
      const competing = transfer(K1, K3.address, 900_000n, 0n, 5n);
      const h = await TipHarness.open(db);
      const block = childBlock(h.tip, [k0n0, competing]);
      await h.connectBlock(block);
      await pool.update([block], [], NOW + 10);

      assert.deepEqual(poolIds(pool), idsOf([k0n1, k2n0]).sort());
      assert.equal(pool.bytes, 2 * TX_BYTES);
      assert.equal(await pool.nextNonce(K0.address), 2n);
      assert.equal(await pool.nextNonce(K1.address), 1n);
      assert.deepEqual(idsOf(await pool.selectForBlock(everything.txs, everything.bytes)), idsOf([k0n1, k2n0]));

      const removed = await h.disconnectTip();
      assert.equal(toHex(removed.header.hash), toHex(block.header.hash));
      await pool.update([], [removed], NOW + 20);
      assert.deepEqual(poolIds(pool), idsOf([k0n0, k0n1, competing, k2n0]).sort());
      assert.equal(pool.bytes, 4 * TX_BYTES);
      assert.equal(pool.get(competing.id)?.addedAt, NOW + 20);
      assert.equal(await pool.nextNonce(K0.address), 2n);
      assert.equal(await pool.nextNonce(K1.address), 1n);
      // All fees are 5, so only each sender's order is certain.
      const selected = await pool.selectForBlock(everything.txs, everything.bytes);
      assert.equal(selected.length, 4);
      const k0 = selected.filter((tx) => toHex(tx.from) === toHex(K0.address));
      assert.deepEqual(idsOf(k0), idsOf([k0n0, k0n1]));
    });

    it('keeps a later nonce its sender can still pay after a competing version of an earlier one is mined', async () => {
      const pool = new Mempool(db, testParams());
      const first = transfer(K2, K3.address, 500_000n, 0n, 5n);
      const second = transfer(K2, K3.address, 10_000n, 1n, 5n);
      await admit(pool, [first, second]);
      const competing = transfer(K2, K3.address, 800_000n, 0n, 5n);
      const h = await TipHarness.open(db);
      const block = childBlock(h.tip, [competing]);
      await h.connectBlock(block);
      await pool.update([block], [], NOW + 10);
      // K2 now holds 199_995 at nonce 1: `second` (10_005) is exactly what it can send next.
      assert.equal(pool.has(first.id), false);
      assert.equal(pool.has(second.id), true, 'the dropped nonce 0 must not count against the balance');
      assert.deepEqual(idsOf(await pool.selectForBlock(everything.txs, everything.bytes)), idsOf([second]));
    });
  });

  describe('concurrency', () => {
    /** Answers the n-th read after `delays[n]` turns of the event loop: later reads may finish first. */
    function staggered(source: AccountSource, delays: number[]): AccountSource {
      let call = 0;
      return {
        async getAccount(address) {
          for (let i = delays[call++] ?? 0; i > 0; i--) await new Promise((resolve) => setImmediate(resolve));
          return source.getAccount(address);
        },
      };
    }

    it('admits exactly one of two submissions of one sender and nonce, the first submitted', async () => {
      const pool = new Mempool(staggered(accounts([[A, {}]]), [5, 0]), RULES);
      const first = pay(A, 0, 10, 1n);
      const second = pay(A, 0, 10, 2n);
      const results = await Promise.allSettled([pool.add(first, NOW), pool.add(second, NOW)]);
      assert.equal(results[0]?.status, 'fulfilled');
      assert.equal(results[1]?.status, 'rejected');
      const err = (results[1] as PromiseRejectedResult).reason;
      assert.ok(err instanceof MempoolRejection);
      assert.equal(err.code, 'MEMPOOL_REPLACEMENT_UNDERPRICED');
      assert.deepEqual(poolIds(pool), idsOf([first]));
      assert.equal(pool.bytes, TX_BYTES);
    });

    it('admits a batch as one add after another would, in one turn of the queue', async () => {
      // Duplicates, replacements, gaps, overspending, forged signatures and a full pool, mixed.
      const random = seededRandom(23);
      const batch: Transaction[] = [];
      for (let i = 0; i < 120; i++) {
        const k = [A, B, C][random.int(3)]!;
        const tx = pay(k, random.int(6), 1 + random.int(30), BigInt(1 + random.int(400_000)));
        batch.push(random.int(10) === 0 ? forgeFee(tx, tx.fee + 1n) : tx);
        if (random.int(8) === 0) batch.push(batch[random.int(batch.length)]!);
      }
      const fresh = () => new Mempool(accounts([[A, {}], [B, {}], [C, {}]]), RULES, { maxBytes: 10 * TX_BYTES, maxNonceGap: 3 });
      const one = fresh();
      const expected: string[] = [];
      for (const tx of batch) expected.push(await one.add(tx, NOW).then((e) => e.idHex, (err: CairnError) => err.code));
      const many = fresh();
      // An add handed in just after the batch waits for all of it: had it gone first, its fee of
      // 10,000 for A's nonce 0 would have made every version of that nonce in the batch underpriced.
      const late = pay(A, 0, 10_000, 1n);
      const [outcomes, after] = await Promise.all([many.addMany(batch, NOW), many.add(late, NOW)]);
      assert.deepEqual(outcomes.map((o) => (o instanceof Error ? (o as CairnError).code : o.idHex)), expected);
      await one.add(late, NOW);
      assert.equal(after.idHex, late.idHex);
      assert.deepEqual(poolIds(many), poolIds(one));
      assert.equal(many.bytes, one.bytes);
      const codes = new Set(expected.filter((e) => e.length < 64));
      for (const code of ['MEMPOOL_DUPLICATE', 'MEMPOOL_NONCE_GAP', 'MEMPOOL_INSUFFICIENT_BALANCE', 'MEMPOOL_REPLACEMENT_UNDERPRICED', 'MEMPOOL_FULL', 'TX_BAD_SIGNATURE']) assert.ok(codes.has(code), `${code} among ${[...codes]}`);
      assert.ok(expected.some((e) => e.length === 64), 'some admitted');

      // Stopping at the first forgery: the outcomes end with it, and nothing after it is tried.
      const stopped = fresh();
      const forgery = expected.indexOf('TX_BAD_SIGNATURE');
      const upTo = await stopped.addMany(batch, NOW, (refusal) => (refusal as CairnError).code === 'TX_BAD_SIGNATURE');
      assert.deepEqual(upTo.map((o) => (o instanceof Error ? (o as CairnError).code : o.idHex)), expected.slice(0, forgery + 1));
      const first = fresh();
      for (const tx of batch.slice(0, forgery)) await first.add(tx, NOW).catch(() => {});
      assert.deepEqual(poolIds(stopped), poolIds(first));
    });

    it("reads a batch's senders' accounts in one round trip, and each on its own only if that fails", async () => {
      // An await and a read per transaction: an RPC batch of 2,000 from 500 senders was 2,000.
      const batch = [A, B, C].flatMap((k) => [0, 1, 2].map((nonce) => pay(k, nonce, 5)));
      const calls = { getAccount: 0, getAccounts: 0, batched: 0 };
      const source = accounts([[A, {}], [B, {}], [C, {}]]);
      let failing = false;
      const state: Required<AccountSource> = {
        getAccount: (address) => (calls.getAccount++, source.getAccount(address)),
        getAccounts: async (addresses) => {
          calls.getAccounts++;
          calls.batched += addresses.length;
          if (failing) throw new Error('the store is closed');
          return Promise.all(addresses.map((a) => source.getAccount(a)));
        },
      };
      const pool = new Mempool(state, RULES);
      assert.ok((await pool.addMany(batch, NOW)).every((o) => !(o instanceof Error)));
      assert.deepEqual(calls, { getAccount: 0, getAccounts: 1, batched: 3 });
      failing = true;
      const [late] = await pool.addMany([pay(A, 3, 5)], NOW);
      assert.ok(!(late instanceof Error));
      assert.deepEqual(calls, { getAccount: 1, getAccounts: 2, batched: 4 });
      assert.equal(pool.size, batch.length + 1);
    });

    it('admits a transaction submitted twice at once only once', async () => {
      const pool = new Mempool(staggered(accounts([[A, {}]]), [5, 0]), RULES);
      const tx = pay(A, 0, 10);
      const results = await Promise.allSettled([pool.add(tx, NOW), pool.add(tx, NOW)]);
      assert.deepEqual(
        results.map((r) => r.status),
        ['fulfilled', 'rejected'],
      );
      const err = (results[1] as PromiseRejectedResult).reason;
      assert.ok(err instanceof MempoolRejection);
      assert.equal(err.code, 'MEMPOOL_DUPLICATE');
      assert.equal(pool.size, 1);
      assert.equal(pool.bytes, TX_BYTES);
    });
  });
});
