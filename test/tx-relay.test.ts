/**
 * TxRelay.push (node/tx-relay.ts): a batch pushed to a peer that answers busy is sent again after
 * its retry-after, a few times at most, and never after one longer than any asker waits.
 */
import assert from 'node:assert/strict';
import { TxRelay } from '../node/tx-relay.ts';
import { MAX_RETRY_AFTER_MS, busyError, type Transport } from '../node/transport.ts';
import type { Env } from '../node/env.ts';
import type { NetworkNames } from '../node/protocols.ts';
import { FUNDED_KEYS, testKey, transfer } from './helpers/fixtures.ts';

describe('TxRelay.push', () => {
  /** A relay whose transport answers busy with `retryAfterMs` the first `busyTimes` times; the waits it makes, recorded. */
  function relay(retryAfterMs: number, busyTimes: number) {
    let asked = 0;
    const waits: number[] = [];
    const transport = {
      request: async () => {
        if (asked++ < busyTimes) throw busyError('peer', 'txPush', retryAfterMs);
        return new Uint8Array(0);
      },
    } as unknown as Transport;
    const env = {
      setTimeout: (run: () => void, ms: number) => {
        waits.push(ms);
        queueMicrotask(run);
      },
    } as unknown as Env;
    const r = new TxRelay({ transport, env, names: { txPush: '/push' } as NetworkNames } as unknown as TxRelay['o']);
    return { r, waits, asked: () => asked };
  }
  const txs = [transfer(FUNDED_KEYS[0]!, testKey(40).address, 1n, 0n)];

  it('sends again after an honest retry-after', async () => {
    const { r, waits, asked } = relay(300, 2);
    await r.push('peer', txs);
    assert.deepEqual(waits, [300, 300]);
    assert.equal(asked(), 3);
  });

  it(`gives that peer up at a retry-after over ${MAX_RETRY_AFTER_MS / 1000} s, without waiting`, async () => {
    // From a review: it slept whatever the peer asked, holding the relay's flush for days.
    const { r, waits, asked } = relay(3_000_000_000, 5);
    await r.push('peer', txs);
    assert.deepEqual(waits, []);
    assert.equal(asked(), 1);
  });
});
