/**
 * The mempool following the tip: the senders a block touched are judged again against their
 * accounts read in one round trip, each sender against its own account as the state has it when
 * the update's turn of the queue comes, with the verdicts one read after another had.
 */
import assert from 'node:assert/strict';
import { Mempool } from '../ledger/mempool.ts';
import { MemoryAccounts } from '../ledger/audit.ts';
import type { Transaction } from '../ledger/transaction.ts';
import type { Account, AccountSource } from '../ledger/state.ts';
import type { Block } from '../ledger/block.ts';
import { childBlock, placeholderTransfer, testKey, testParams, type TestKey } from './helpers/fixtures.ts';

const PARAMS = testParams();
const NOW = 1_000;
const SENDERS = [30, 31, 32, 33, 34].map(testKey);
const OUTSIDER = testKey(35);
const SINK = testKey(50).address;
/** Each pending transaction costs its sender this much: amount 10, fee 2. */
const COST = 12n;

/** Unsigned (placeholderTransfer): the pools here check no signatures. */
function pay(from: TestKey, nonce: number, amount = 10n, to = SINK): Transaction {
  return placeholderTransfer(PARAMS, from, to, BigInt(nonce), amount, 2n);
}

function blockOf(txs: readonly Transaction[]): Block {
  return childBlock({ hash: new Uint8Array(32), height: 1 }, txs);
}

/** A source that counts its calls and can be made to fail its batch reads. */
function counted(source: MemoryAccounts) {
  const calls = { getAccount: 0, getAccounts: 0, batched: 0 };
  const control = { failBatches: false };
  const state: Required<AccountSource> = {
    getAccount: (address) => (calls.getAccount++, source.getAccount(address)),
    getAccounts: async (addresses) => {
      calls.getAccounts++;
      calls.batched += addresses.length;
      if (control.failBatches) throw new Error('the store is closed');
      return Promise.all(addresses.map((a) => source.getAccount(a)));
    },
  };
  return { state, calls, control };
}

/** Each sender's pending nonces, in SENDERS' order. */
function pendingNonces(pool: Mempool): number[][] {
  return SENDERS.map((k) => pool.sentFrom(k.address).map((e) => Number(e.tx.nonce)).sort((a, b) => a - b));
}

/**
 * Five senders with nonces 0-5 pending, and a block that moved each to its own nonce and balance
 * by transactions the pool never saw (another version of each nonce, and a payment in to the
 * first): what each keeps is a pair of its own, so an account handed to the wrong sender, or one
 * from before the block, leaves another pool.
 */
function scene() {
  const accounts = new MemoryAccounts();
  for (const k of [...SENDERS, OUTSIDER]) accounts.set(k.address, { balance: 1_000_000n, nonce: 0n });
  const pending = SENDERS.flatMap((k) => [0, 1, 2, 3, 4, 5].map((nonce) => pay(k, nonce)));
  const block = blockOf([pay(OUTSIDER, 0, 5n, SENDERS[0]!.address), ...SENDERS.flatMap((k, i) => Array.from({ length: i }, (_, nonce) => pay(k, nonce, 11n)))]);
  // Sender i at nonce i, paying for `affords[i]` more of its pending ones.
  const affords = [3, 1, 4, 0, 2];
  const after: Account[] = SENDERS.map((_, i) => ({ balance: COST * BigInt(affords[i]!) + 5n, nonce: BigInt(i) }));
  const kept = SENDERS.map((_, i) => Array.from({ length: affords[i]! }, (_, n) => i + n));
  const connect = () => SENDERS.forEach((k, i) => accounts.set(k.address, after[i]!));
  return { accounts, pending, block, connect, kept };
}

describe('Mempool following the tip', () => {
  it('judges the senders a block touched from one read of their accounts, each against its own', async () => {
    const { accounts, pending, block, connect, kept } = scene();
    const { state, calls } = counted(accounts);
    const pool = new Mempool(state, PARAMS, {}, () => {});
    await pool.addMany(pending, NOW);
    assert.equal(pool.size, pending.length);
    calls.getAccounts = calls.batched = 0;
    connect();
    await pool.update([block], [], NOW);
    assert.deepEqual(pendingNonces(pool), kept);
    // One read for every sender with something pending, not an await and a read each (the
    // outsider's account, with nothing pending, is not read).
    assert.deepEqual(calls, { getAccount: 0, getAccounts: 1, batched: SENDERS.length });
    for (const [i, k] of SENDERS.entries()) assert.equal(await pool.nextNonce(k.address), BigInt(i + kept[i]!.length));
  });

  it("reads the accounts when the update's turn comes, not when its block arrived", async () => {
    // A busy pool takes a block's update after what is queued before it: by then the state may be
    // a later block's, and that block's own update looks at what it touched.
    const { accounts, pending, block, connect, kept } = scene();
    let release = () => {};
    const held = new Promise<void>((resolve) => (release = resolve));
    const holder = pay(OUTSIDER, 0);
    const pool = new Mempool(accounts, PARAMS, {}, (tx) => (tx.idHex === holder.idHex ? held : undefined));
    await pool.addMany(pending, NOW);
    const holding = pool.add(holder, NOW); // its signature check holds the queue
    const updating = pool.update([block], [], NOW);
    connect(); // the block's state arrives only while the update waits for its turn
    release();
    await holding;
    await updating;
    assert.deepEqual(pendingNonces(pool), kept);
  });

  it('reads each sender on its own if the one read fails, with the same verdicts', async () => {
    const { accounts, pending, block, connect, kept } = scene();
    const { state, calls, control } = counted(accounts);
    const pool = new Mempool(state, PARAMS, {}, () => {});
    await pool.addMany(pending, NOW);
    calls.getAccounts = calls.batched = 0;
    connect();
    control.failBatches = true;
    await pool.update([block], [], NOW);
    assert.deepEqual(pendingNonces(pool), kept);
    assert.deepEqual(calls, { getAccount: SENDERS.length, getAccounts: 1, batched: SENDERS.length });
  });

  it("admits a sender's next nonce between a block's state and the pool's update, its mined ones not counted twice", async () => {
    // S pays 60 of its 100 at nonce 0; a block takes it, and S's next, 30, comes before the pool follows.
    const [S] = SENDERS as [TestKey];
    const accounts = new MemoryAccounts();
    accounts.set(S.address, { balance: 100n, nonce: 0n });
    const pool = new Mempool(accounts, PARAMS, {}, () => {});
    const s0 = placeholderTransfer(PARAMS, S, SINK, 0n, 58n, 2n);
    await pool.add(s0, NOW);
    accounts.set(S.address, { balance: 40n, nonce: 1n });
    const [s1, s2] = [1n, 2n].map((nonce) => placeholderTransfer(PARAMS, S, SINK, nonce, 13n, 2n)) as [Transaction, Transaction];
    const one = pool.add(s1, NOW);
    const batch = pool.addMany([s2], NOW);
    const following = pool.update([blockOf([s0])], [], NOW);
    assert.equal((await one).idHex, s1.idHex, 'nonce 1: 15 of the 40 left');
    assert.deepEqual((await batch).map((e) => (e instanceof Error ? e.message : e.idHex)), [s2.idHex], 'nonce 2 in a batch: 30 of the 40');
    await following;
    assert.deepEqual(pool.sentFrom(S.address).map((e) => e.tx.nonce).sort(), [1n, 2n]);
    // Still within what S has: one more of 15 is refused.
    await assert.rejects(pool.add(placeholderTransfer(PARAMS, S, SINK, 3n, 13n, 2n), NOW), /insufficient funds/);
  });

  it('judges every sender again from one read when the state is replaced under the pool', async () => {
    const { accounts, pending, connect, kept } = scene();
    const { state, calls } = counted(accounts);
    const pool = new Mempool(state, PARAMS, {}, () => {});
    await pool.addMany(pending, NOW);
    calls.getAccounts = calls.batched = 0;
    connect(); // as a snapshot's state adopted would
    await pool.recheckAll();
    assert.deepEqual(pendingNonces(pool), kept);
    assert.deepEqual(calls, { getAccount: 0, getAccounts: 1, batched: SENDERS.length });
  });
});
