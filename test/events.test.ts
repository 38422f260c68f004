/**
 * node/http/events.ts on its own: numbered events from the chain's tip changes and the mempool's
 * admissions; a history bounded by count and by the addresses it holds (what is "too old"); resume
 * and resync answers; addresses listed by their hex.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { toHex } from '../ledger/bytes.ts';
import { encodeAddress } from '../ledger/keys.ts';
import type { Block } from '../ledger/block.ts';
import { EventFeed } from '../node/http/events.ts';
import type { NodeView } from '../node/view.ts';
import { FUNDED_KEYS, childBlock, testKey, transfer } from './helpers/fixtures.ts';

function fakeNode() {
  const chain = new EventEmitter();
  const mempool = new EventEmitter();
  return { node: { chain, mempool } as unknown as Pick<NodeView, 'chain' | 'mempool'>, chain, mempool };
}

const tipOf = (connected: Block[]) => ({ fork: { height: 0, hashHex: '00'.repeat(32) }, disconnected: [], connected });

describe('event feed', () => {
  const [alice] = FUNDED_KEYS as [(typeof FUNDED_KEYS)[0]];
  const genesis = { hash: new Uint8Array(32), height: 0 };

  it('numbers block and tx events; resumes after an id; a bare seq means this run', () => {
    const { node, chain, mempool } = fakeNode();
    const feed = new EventFeed(node, { runId: 'r1' });
    const tx = transfer(alice, testKey(5).address, 3n, 0n);
    const b1 = childBlock(genesis, [tx]);
    chain.emit('tip', tipOf([b1]));
    mempool.emit('added', { tx });
    assert.equal(feed.latest, 2);
    const all = feed.resume('r1:0');
    assert.ok('events' in all);
    assert.deepEqual(all.events.map((e) => [e.seq, e.type]), [[1, 'block'], [2, 'tx']]);
    assert.deepEqual(all.events[1]!.data(), { txid: tx.idHex, from: encodeAddress(tx.from), to: encodeAddress(tx.to), amount: '3', fee: '1', size: tx.bytes.length });
    assert.ok(all.events[0]!.addresses.has(toHex(tx.to)) && all.events[0]!.addresses.has(toHex(b1.coinbase.to)), 'addresses by hex');
    const fromOne = feed.resume('1');
    assert.ok('events' in fromOne);
    assert.deepEqual(fromOne.events.map((e) => e.seq), [2]);
    assert.deepEqual(feed.resume('r0:1'), { resync: 'restarted', oldest: 1, latest: 2 });
    assert.deepEqual(feed.resume('r1:9'), { resync: 'unknown-id', oldest: 1, latest: 2 });
    assert.deepEqual(feed.resume('junk'), { resync: 'unknown-id', oldest: 1, latest: 2 });
    assert.deepEqual(feed.recentTxs().map((t) => t.txid), [tx.idHex]);
  });

  it('keeps at most `capacity` events, and at most `maxAddresses` addresses across them: older ids resync', () => {
    const { node, chain } = fakeNode();
    const feed = new EventFeed(node, { runId: 'r', capacity: 3, maxAddresses: 5 });
    const blocks = Array.from({ length: 5 }, (_, i) => childBlock({ hash: new Uint8Array(32).fill(i), height: i }, [], { miner: testKey(20 + i).address }));
    for (const b of blocks) chain.emit('tip', tipOf([b]));
    assert.deepEqual([feed.oldest, feed.latest], [3, 5], 'three kept');
    assert.deepEqual(feed.resume('r:1'), { resync: 'too-old', oldest: 3, latest: 5 });
    assert.ok('events' in feed.resume('r:2'), 'seq 2 seen: 3 onwards are all kept');
    // A block paying six addresses at once: the cap drops all older events (never the newest).
    const wide = childBlock({ hash: new Uint8Array(32).fill(9), height: 9 }, [0, 1, 2].map((n) => transfer(FUNDED_KEYS[n]!, testKey(40 + n).address, 1n, 0n)));
    chain.emit('tip', tipOf([wide]));
    assert.deepEqual([feed.oldest, feed.latest], [6, 6]);
  });

  it('over many times its capacity, keeps exactly the newest events the bounds allow, each resumable', () => {
    const { node, chain, mempool } = fakeNode();
    const feed = new EventFeed(node, { runId: 'r', capacity: 7, maxAddresses: 12 });
    const sizes: number[] = []; // addresses of every event so far, by seq - 1
    for (let i = 0; i < 200; i++) {
      if (i % 5 === 4) {
        // A block of 0–2 transfers: 1, 3 or 5 addresses (its miner, each transfer's two).
        const txs = Array.from({ length: i % 3 }, (_, n) => transfer(FUNDED_KEYS[n]!, testKey(100 + i + n).address, 1n, 0n));
        const block = childBlock({ hash: new Uint8Array(32).fill(i & 0xff), height: i }, txs, { miner: testKey(300 + i).address });
        chain.emit('tip', tipOf([block]));
        sizes.push(1 + 2 * txs.length);
      } else {
        mempool.emit('added', { tx: transfer(FUNDED_KEYS[i % 3]!, testKey(500 + i).address, 1n, 0n) });
        sizes.push(2);
      }
      // The rule: the longest run of newest events within both bounds, never fewer than one.
      let kept = 1;
      let addresses = sizes.at(-1)!;
      while (kept < sizes.length && kept < 7 && addresses + sizes[sizes.length - 1 - kept]! <= 12) addresses += sizes[sizes.length - 1 - kept++]!;
      const latest = sizes.length;
      assert.deepEqual([feed.oldest, feed.latest], [latest - kept + 1, latest], `after event ${latest}`);
      for (const seen of [latest - kept, latest - 1, latest]) {
        const resumed = feed.resume(`r:${seen}`);
        assert.ok('events' in resumed, `resume after ${seen}`);
        assert.deepEqual(resumed.events.map((e) => e.seq), Array.from({ length: latest - seen }, (_, k) => seen + 1 + k));
      }
      if (latest - kept >= 1) assert.deepEqual(feed.resume(`r:${latest - kept - 1}`), { resync: 'too-old', oldest: latest - kept + 1, latest });
    }
  });
});
