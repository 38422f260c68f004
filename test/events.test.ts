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
});
