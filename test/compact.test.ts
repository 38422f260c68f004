/**
 * Compact blocks (node/compact.ts): what a receiver asks of the peer that forwarded one.
 */
import assert from 'node:assert/strict';
import { GET_BLOCK_TXS_MAX_BYTES, MAX_REQUESTED, decodeGetBlockTxs, encodeGetBlockTxs, fetchBlockTxs, type CompactBlock } from '../node/compact.ts';
import { DecodeError } from '../ledger/errors.ts';
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
