/**
 * The mempool's share of transactions waiting for a missing nonce (MempoolPolicy.maxGappedBytes),
 * kept where admission does not judge: a reorganisation that leaves a hole where a taken-back
 * transaction was refused, and a state that went back (a snapshot's) under a sender's executable
 * run. Beyond the share, the cheapest go first, each with its sender's later nonces.
 */
import assert from 'node:assert/strict';
import { Mempool } from '../ledger/mempool.ts';
import { MempoolFullError } from '../ledger/mempool-rules.ts';
import { MemoryAccounts } from '../ledger/audit.ts';
import { TX_BYTES, type Transaction } from '../ledger/transaction.ts';
import { childBlock, placeholderTransfer, testKey, testParams, type TestKey } from './helpers/fixtures.ts';

const PARAMS = testParams();
const NOW = 1_000;
const [A, B] = [60, 61].map(testKey) as [TestKey, TestKey];
const SINK = testKey(50).address;
const BALANCE = 1_000_000n;

/** Unsigned (placeholderTransfer): the pools here check no signatures. */
function pay(from: TestKey, nonce: number, fee: number): Transaction {
  return placeholderTransfer(PARAMS, from, SINK, BigInt(nonce), 1n, BigInt(fee));
}

/** Each sender's pending nonces, ascending. */
function pendingNonces(pool: Mempool, ...senders: TestKey[]): number[][] {
  return senders.map((k) => pool.sentFrom(k.address).map((e) => Number(e.tx.nonce)).sort((a, b) => a - b));
}

describe('the mempool\'s share of transactions behind a missing nonce', () => {
  it('after a reorganisation whose taken-back transactions are refused, evicts the cheapest gapped, each with its sender\'s later nonces', async () => {
    // A miner's block may hold what our pool refuses (a fee below its minimum): taken back, it
    // leaves a hole, and every nonce of its sender the pool took after the block waits behind it.
    const state = new MemoryAccounts();
    const pool = new Mempool(state, PARAMS, { maxGappedBytes: 3 * TX_BYTES }, () => {});
    const block = childBlock({ hash: new Uint8Array(32), height: 1 }, [pay(A, 0, 0), pay(B, 0, 0)]);
    for (const k of [A, B]) state.set(k.address, { balance: BALANCE - 1n, nonce: 1n });
    await pool.update([block], [], NOW);
    for (const tx of [pay(A, 1, 9), pay(A, 2, 2), pay(A, 3, 9), pay(A, 4, 9), pay(B, 1, 5), pay(B, 2, 5)]) await pool.add(tx, NOW);
    assert.equal(pool.gappedBytes, 0);

    for (const k of [A, B]) state.set(k.address, { balance: BALANCE, nonce: 0n });
    await pool.update([], [block], NOW);
    // Six behind the hole, three over the share: A's nonce 2 is the cheapest, and its 3 and 4 go
    // with it (they would wait behind it), though they pay more than B's.
    assert.deepEqual(pendingNonces(pool, A, B), [[1], [1, 2]]);
    assert.equal(pool.gappedBytes, 3 * TX_BYTES);
    assert.equal(pool.dropped.evicted, 3);
    // The share is full, not over: a new gapped transaction is refused as before.
    await assert.rejects(pool.add(pay(A, 3, 50), NOW), (err: unknown) => err instanceof MempoolFullError && err.waitsForEarlierNonce);
  });

  it('after a state that went back (a snapshot adopted), evicts from each sender\'s top down to the share', async () => {
    const state = new MemoryAccounts();
    state.set(A.address, { balance: BALANCE, nonce: 5n });
    const pool = new Mempool(state, PARAMS, { maxGappedBytes: 2 * TX_BYTES }, () => {});
    // Fees falling with the nonce: each cheapest is the sender's last, and goes alone.
    for (const [i, fee] of [5, 4, 3, 2, 1].entries()) await pool.add(pay(A, 5 + i, fee), NOW);
    assert.equal(pool.gappedBytes, 0);

    state.set(A.address, { balance: BALANCE, nonce: 0n });
    await pool.recheckAll();
    assert.deepEqual(pendingNonces(pool, A), [[5, 6]]);
    assert.equal(pool.gappedBytes, 2 * TX_BYTES);
    assert.equal(pool.dropped.evicted, 3);
  });

  it('evicts nothing when a reorganisation takes every nonce back', async () => {
    const state = new MemoryAccounts();
    const pool = new Mempool(state, PARAMS, { maxGappedBytes: TX_BYTES }, () => {});
    const block = childBlock({ hash: new Uint8Array(32), height: 1 }, [pay(A, 0, 3)]);
    state.set(A.address, { balance: BALANCE - 4n, nonce: 1n });
    await pool.update([block], [], NOW);
    for (const n of [1, 2, 3]) await pool.add(pay(A, n, 1), NOW);
    state.set(A.address, { balance: BALANCE, nonce: 0n });
    await pool.update([], [block], NOW);
    assert.deepEqual(pendingNonces(pool, A), [[0, 1, 2, 3]]);
    assert.equal(pool.gappedBytes, 0);
    assert.equal(pool.dropped.evicted, 0);
  });
});
