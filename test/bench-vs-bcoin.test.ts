/**
 * `--vs-bcoin`'s sync ratio divides Cairn's rate by bcoin's: both must be timed over the same
 * window. bcoin's harness (../shared/anchors/bcoin-bench/scripts/sync-node.js) times from the
 * connect of its last setup block to the last transaction block, its node's start, handshake and
 * setup blocks left out.
 */
import assert from 'node:assert/strict';
import { rateAfterFirstBlock } from '../bench/vs-bcoin.ts';

describe('bench: vs-bcoin sync window', () => {
  it("leaves Cairn's start-up and first batch out, as bcoin's harness leaves its own out", () => {
    // 200 blocks of 500: the first connects 2 s after the start (start-up, dial, handshake,
    // headers, the first batch), then one every 100 ms: 199 intervals, 5,000 tx/s.
    const run = { firstBlockMs: 2_000, ms: 2_000 + 199 * 100 };
    assert.equal(rateAfterFirstBlock(run, 200 * 500, 500), 5_000);
  });

  it('a window of no length is an error, not an infinite rate', () => {
    assert.throws(() => rateAfterFirstBlock({ firstBlockMs: 500, ms: 500 }, 500, 500), RangeError);
  });
});
