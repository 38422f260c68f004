/**
 * The mempool taking back what a reorganisation disconnected: its senders' accounts read in one
 * round trip, and admitted from memory with exactly the outcomes one admission after another had
 * (same pool, same order, same refusals, same events); and each sender's share waiting for a
 * missing nonce kept from its run, not walked again at every admission, yet always what its nonces say.
 */
import assert from 'node:assert/strict';
import { Mempool } from '../ledger/mempool.ts';
import { MemoryAccounts } from '../ledger/audit.ts';
import { TxRuleError } from '../ledger/errors.ts';
import { firstMissing, type MempoolEntry, type PendingSet } from '../ledger/pending-set.ts';
import { TX_BYTES, type Transaction } from '../ledger/transaction.ts';
import type { Account, AccountSource } from '../ledger/state.ts';
import type { Block } from '../ledger/block.ts';
import { toHex } from '../ledger/bytes.ts';
import { childBlock, placeholderTransfer, seededRandom, testKey, testParams, type TestKey } from './helpers/fixtures.ts';

const PARAMS = testParams();
const NOW = 1_000;
const SENDERS = [20, 21, 22, 23, 24].map(testKey);
const SINK = testKey(50).address;
const everything = { txs: 1_000_000, bytes: 1_000_000_000 };

/** Unsigned (placeholderTransfer): the pools here check signatures against `forged` alone. */
function pay(from: TestKey, nonce: bigint, fee: bigint, amount: bigint, to = SINK): Transaction {
  return placeholderTransfer(PARAMS, from, to, nonce, amount, fee);
}

/** `nonce` moved back `by`, not below 0. */
function back(nonce: bigint, by: number): bigint {
  return nonce > BigInt(by) ? nonce - BigInt(by) : 0n;
}

function blockOf(txs: readonly Transaction[], height = 1): Block {
  return childBlock({ hash: new Uint8Array(32), height }, txs);
}

/** A source that counts its calls: `getAccount` one each, `getAccounts` one a batch. */
function counted(source: MemoryAccounts) {
  const calls = { getAccount: 0, getAccounts: 0, batched: 0 };
  const state: Required<AccountSource> = {
    getAccount: (address) => (calls.getAccount++, source.getAccount(address)),
    getAccounts: async (addresses) => ((calls.getAccounts++, (calls.batched += addresses.length)), Promise.all(addresses.map((a) => source.getAccount(a)))),
  };
  return { state, calls };
}

/** The bytes of `pool` waiting for a missing nonce, from its entries' nonces and `state`'s. */
async function gappedFromScratch(pool: Mempool, state: AccountSource): Promise<number> {
  let gapped = 0;
  for (const k of SENDERS) {
    const byNonce = new Map(pool.sentFrom(k.address).map((e) => [e.tx.nonce, e]));
    const executableBelow = firstMissing(byNonce, (await state.getAccount(k.address))?.nonce ?? 0n);
    for (const nonce of byNonce.keys()) if (nonce > executableBelow) gapped += TX_BYTES;
  }
  return gapped;
}

/** What can be seen of a pool from outside, in its own orders. */
async function seen(pool: Mempool, added: readonly string[]) {
  return {
    added,
    entries: [...pool.entries()].map((e) => `${e.idHex} ${e.addedAt}`),
    heads: [...pool.executableHeads()].map((head) => pool.runFrom(head).map((e) => e.idHex)),
    bytes: pool.bytes,
    gappedBytes: pool.gappedBytes,
    fees: pool.fees,
    evicted: pool.dropped.evicted,
    selected: (await pool.selectForBlock(everything.txs, everything.bytes)).map((tx) => tx.idHex),
    nextNonces: await Promise.all(SENDERS.map((k) => pool.nextNonce(k.address))),
  };
}

describe('Mempool take-back', () => {
  it("reads the accounts of a disconnected block's senders in one round trip, not one per transaction", async () => {
    // Each admission read its sender's account from the store on its own: 4,000 taken back were
    // 4,000 reads, each a turn of a busy node's event loop, which nextNonce waited for.
    const accounts = new MemoryAccounts();
    for (const k of SENDERS) accounts.set(k.address, { balance: 1_000_000n, nonce: 0n });
    const { state, calls } = counted(accounts);
    const pool = new Mempool(state, PARAMS, {}, () => {});
    const run = SENDERS.flatMap((k) => [0n, 1n, 2n, 3n, 4n, 5n].map((nonce) => pay(k, nonce, 2n, 10n)));
    await pool.update([], [blockOf(run)], NOW);
    assert.equal(pool.size, run.length);
    assert.deepEqual(calls, { getAccount: 0, getAccounts: 1, batched: SENDERS.length });
  });

  it('admits what one admission after another would, over random reorganisations', async () => {
    // The reference is the pool's own admission of a taken-back transaction, one after another,
    // each reading its sender's account: duplicates,
    // replacements under- and over-priced, overspending, gaps, a full pool and its share of
    // gapped transactions, and forged signatures, against states a reorganisation moved back.
    const codes = new Set<string>();
    const seeds = { gapped: 0, evicting: 0, overShare: 0 };
    for (let seed = 1; seed <= 60; seed++) {
      const random = seededRandom(seed);
      const forged = new Set<string>();
      const accounts = new MemoryAccounts();
      const state = SENDERS.map((k) => {
        const account = { balance: BigInt(2_000 + random.int(20_000)), nonce: BigInt(random.int(4)) };
        accounts.set(k.address, account);
        return account;
      });
      const randomTx = (nonceFrom: (i: number) => bigint) => {
        const i = random.int(SENDERS.length);
        const tx = pay(SENDERS[i]!, nonceFrom(i) + BigInt(random.int(7)), BigInt(1 + random.int(30)), BigInt(1 + random.int(3_000)), random.int(3) === 0 ? SENDERS[random.int(SENDERS.length)]!.address : SINK);
        if (random.int(12) === 0) forged.add(tx.idHex);
        return tx;
      };
      const policy = { maxBytes: (6 + random.int(14)) * TX_BYTES, maxGappedBytes: (1 + random.int(6)) * TX_BYTES, maxNonceGap: 1_000 };
      const checkSignature = (tx: Transaction) => {
        if (forged.has(tx.idHex)) throw new TxRuleError('TX_BAD_SIGNATURE', 'signature does not verify', 100);
      };
      const before = Array.from({ length: 10 + random.int(30) }, () => randomTx((i) => state[i]!.nonce));
      // The reorganisation: some senders go back to an earlier nonce and another balance, and the
      // disconnected block holds a run of each from there; among them, transactions already
      // pending, repeated, or at any nonce.
      const rolledBack = new Map<TestKey, Account>();
      for (const [i, k] of SENDERS.entries()) {
        if (random.int(3) > 0) rolledBack.set(k, { balance: BigInt(random.int(60_000)), nonce: back(state[i]!.nonce, random.int(3)) });
      }
      const block: Transaction[] = [];
      for (const [k, account] of rolledBack) {
        for (let n = 0, length = 1 + random.int(6); n < length; n++) block.push(pay(k, account.nonce + BigInt(n), BigInt(1 + random.int(30)), BigInt(1 + random.int(3_000))));
      }
      for (let noise = random.int(12); noise > 0; noise--) {
        const r = random.int(3);
        const tx = r === 0 && before.length > 0 ? before[random.int(before.length)]! : r === 1 && block.length > 0 ? block[random.int(block.length)]! : randomTx((i) => back(state[i]!.nonce, random.int(3)));
        block.splice(random.int(block.length + 1), 0, tx);
      }
      const pools = [0, 1].map(() => {
        const pool = new Mempool(accounts, PARAMS, policy, checkSignature);
        const added: string[] = [];
        pool.on('added', (e: MempoolEntry) => added.push(e.idHex));
        return { pool, added };
      });
      for (const { pool } of pools) await pool.addMany(before, NOW);
      for (const [k, account] of rolledBack) accounts.set(k.address, account);
      const [takingBack, oneByOne] = pools as [(typeof pools)[0], (typeof pools)[0]];
      takingBack.added.length = oneByOne.added.length = 0;
      await takingBack.pool.update([], [blockOf(block)], NOW + 5);
      // What update does before its take-back (a look at the senders whose accounts changed: what
      // recheckAll does but for its last step), then one by one, then that step: what waits for a
      // missing nonce beyond its share evicted, once the run is back, not before.
      const pending = (oneByOne.pool as unknown as { pending: PendingSet }).pending;
      for (const k of SENDERS) pending.keepWithin(toHex(k.address), (await accounts.getAccount(k.address))!);
      // Each as a taken-back transaction (readmitted: its sender's later nonces that no longer fit give way to it), its account read alone.
      const readmit = (oneByOne.pool as unknown as { admit(tx: Transaction, now: number, readmit: boolean): Promise<MempoolEntry> }).admit.bind(oneByOne.pool);
      for (const tx of block) codes.add(await readmit(tx, NOW + 5, true).then(() => 'admitted', (err: TxRuleError) => err.code));
      const evictedBefore = oneByOne.pool.dropped.evicted;
      await oneByOne.pool.recheckAll();
      seeds.overShare += oneByOne.pool.dropped.evicted > evictedBefore ? 1 : 0;
      const outcome = await seen(takingBack.pool, takingBack.added);
      assert.deepEqual(outcome, await seen(oneByOne.pool, oneByOne.added), `seed ${seed}`);
      assert.equal(outcome.gappedBytes, await gappedFromScratch(takingBack.pool, accounts), `seed ${seed}`);
      seeds.gapped += outcome.gappedBytes > 0 ? 1 : 0;
      seeds.evicting += outcome.evicted > 0 ? 1 : 0;
    }
    for (const code of ['admitted', 'MEMPOOL_DUPLICATE', 'MEMPOOL_NONCE_TOO_LOW', 'MEMPOOL_INSUFFICIENT_BALANCE', 'MEMPOOL_REPLACEMENT_UNDERPRICED', 'MEMPOOL_FULL', 'TX_BAD_SIGNATURE']) {
      assert.ok(codes.has(code), `${code} among ${[...codes]}`);
    }
    assert.ok(seeds.gapped > 10 && seeds.evicting > 10 && seeds.overShare > 2, JSON.stringify(seeds));
  });

  it("takes back a sender's earlier nonces before its later ones that the state no longer funds", async () => {
    // S (100) paid 30 at nonce 0 in a block that also paid it 50 as its miner; then, with 120, 100
    // at nonce 1. The block is taken away: S has 100 again, enough for nonce 0 or nonce 1, not both.
    const [S] = SENDERS as [TestKey];
    const accounts = new MemoryAccounts();
    accounts.set(S.address, { balance: 120n, nonce: 1n });
    const pool = new Mempool(accounts, PARAMS, {}, () => {});
    const s0 = pay(S, 0n, 2n, 28n);
    const s1 = pay(S, 1n, 2n, 98n);
    await pool.add(s1, NOW);
    const block = childBlock({ hash: new Uint8Array(32), height: 1 }, [s0], { miner: S.address });
    accounts.set(S.address, { balance: 100n, nonce: 0n });
    await pool.update([], [block], NOW);
    // Nonce 1 alone waits for a nonce 0 the pool refused: nothing a block could take. Nonce 0, mined once, is what comes first.
    assert.deepEqual(pool.sentFrom(S.address).map((e) => e.idHex), [s0.idHex], 'nonce 0 back, nonce 1 dropped');
    assert.equal(pool.gappedBytes, 0);
  });

  it("classifies a sender's run taken back once per transaction, not walking its nonces at each", async () => {
    // Every admission walked all of its sender's pending nonces again to mark those behind a
    // missing one: taking back 4,000 of one sender was ~8 million steps, ~0.9 s.
    const sender = SENDERS[0]!;
    const accounts = new MemoryAccounts();
    accounts.set(sender.address, { balance: 1_000_000n, nonce: 0n });
    const run = Array.from({ length: 200 }, (_, n) => pay(sender, BigInt(n), 1n, 1n));
    const reads = new Map<Transaction, number>();
    for (const tx of run) {
      const nonce = tx.nonce;
      Object.defineProperty(tx, 'nonce', { get: () => (reads.set(tx, (reads.get(tx) ?? 0) + 1), nonce) });
    }
    const pool = new Mempool(accounts, PARAMS, {}, () => {});
    await pool.update([], [blockOf(run)], NOW);
    assert.equal(pool.size, run.length);
    assert.equal(pool.gappedBytes, 0);
    const most = Math.max(...reads.values());
    assert.ok(most <= 20, `a nonce read ${most} times`);
  });
});
