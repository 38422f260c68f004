/**
 * Compact blocks (node/compact.ts): what a receiver asks of the peer that forwarded one, and how it
 * finds the block's transactions in its mempool.
 */
import assert from 'node:assert/strict';
import { GET_BLOCK_TXS_MAX_BYTES, MAX_REQUESTED, decodeGetBlockTxs, encodeGetBlockTxs, fetchBlockTxs, matchMempool, shortId, type CompactBlock } from '../node/compact.ts';
import { MemoryAccounts } from '../ledger/audit.ts';
import type { Block } from '../ledger/block.ts';
import { DecodeError } from '../ledger/errors.ts';
import { Mempool } from '../ledger/mempool.ts';
import type { Transaction } from '../ledger/transaction.ts';
import { FUNDED_KEYS, testKey, transfer, type TestKey } from './helpers/fixtures.ts';
import type { Transport } from '../node/transport.ts';
import type { NetworkNames } from '../node/protocols.ts';
import { encodeTxBatch } from '../node/wire.ts';

describe('fetchBlockTxs', () => {
  /** A compact block of `n` transactions, and a transport that records what it is asked. */
  function setup(n: number) {
    const asked: Uint8Array[] = [];
    const transport = {
      request: async (_peer: string, _protocol: string, body: Uint8Array) => {
        asked.push(body);
        return encodeTxBatch([]);
      },
    } as unknown as Transport;
    const compact = { header: { hash: new Uint8Array(32) }, coinbase: { to: new Uint8Array(20), amount: 0n }, shortIds: new Array<string>(n).fill('00'.repeat(8)) } as unknown as CompactBlock;
    return { asked, transport, compact, names: { blockTxs: '/blocktxs' } as NetworkNames };
  }

  it(`asks for no more than ${MAX_REQUESTED.toLocaleString('en')} transactions, which is all a request may carry; beyond, the block is synced whole`, async () => {
    // From a review of PROTOCOL.md (getBlockTxs: count ≤ 100,000): a receiver lacking more of a
    // big block (allowed from maxBlockBytes of 16.6 MB, and asked for whole after a short-id
    // collision) sent them all in one request, which the answerer refuses: DECODE_OVER_LIMIT (a ban
    // score of 100) up to 100,005 indexes, bad framing (25) beyond, for an honest node.
    assert.throws(() => decodeGetBlockTxs(encodeGetBlockTxs(new Uint8Array(32), Array.from({ length: MAX_REQUESTED + 1 }, (_, i) => i))), DecodeError);
    const { asked, transport, compact, names } = setup(MAX_REQUESTED + 1);
    const all = Array.from({ length: MAX_REQUESTED + 1 }, (_, i) => i);
    assert.equal(await fetchBlockTxs(transport, names, 'peer', compact, all), undefined);
    assert.equal(asked.length, 0, 'no request the answerer must refuse');
    assert.equal(await fetchBlockTxs(transport, names, 'peer', compact, all.slice(0, MAX_REQUESTED)), undefined);
    assert.equal(asked.length, 1, 'as many as a request carries are asked for');
    assert.ok(asked[0]!.length <= GET_BLOCK_TXS_MAX_BYTES);
    assert.equal(decodeGetBlockTxs(asked[0]!).indexes.length, MAX_REQUESTED);
  });
});

describe('matchMempool', () => {
  const [alice, bob] = FUNDED_KEYS as [TestKey, TestKey];
  const sink = testKey(50).address;

  it("finds a compact block's transactions by their short ids, without walking the pool; one replaced or confirmed is found no more", async () => {
    // A walk over the pool (200,000 transactions when full) took ~50 ms before a hop could forward.
    const state = new MemoryAccounts();
    for (const k of [alice, bob]) state.set(k.address, { balance: 1_000_000n, nonce: 0n });
    const pool = new Mempool(state, { chainId: 7 });
    const txs = [transfer(alice, sink, 5n, 0n), transfer(alice, sink, 6n, 1n), transfer(bob, sink, 7n, 0n)];
    for (const tx of txs) await pool.add(tx, 1_000);
    pool.entries = () => {
      throw new Error('the pool was walked');
    };
    const absent = transfer(bob, sink, 8n, 1n);
    const compact = (of: readonly Transaction[]) => ({ shortIds: of.map((tx) => shortId(tx.id)) }) as unknown as CompactBlock;
    const { txs: found, missing } = matchMempool(compact([txs[2]!, absent, txs[0]!]), pool);
    assert.deepEqual(found, [txs[2], undefined, txs[0]]);
    assert.deepEqual(missing, [1]);

    const replacement = transfer(alice, sink, 6n, 1n, 100n);
    await pool.add(replacement, 1_000);
    await pool.update([{ txs: [txs[0]!], coinbase: { to: sink, amount: 0n } } as unknown as Block], [], 1_000);
    assert.deepEqual(matchMempool(compact([txs[0]!, txs[1]!, replacement, txs[2]!]), pool).missing, [0, 1], 'the confirmed and the replaced are gone; the replacement and the rest are found');
  });
});
