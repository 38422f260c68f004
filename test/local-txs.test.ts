/**
 * node/local-txs.ts: our users' transactions that a block passes over though it had room for them
 * (a count under the block's room, or a transaction paying less), once they have been out long
 * enough, are the ones pushed again; each at most once a while; forgotten once they leave the
 * mempool. (Found by the simulator, seed 4: a gossip message lost on a link that stayed up.) With
 * each go its sender's earlier nonces that the pool holds, from wherever they came (seed 4 with the
 * lawful adversaries: a user's nonce 0 sent through a node that crashed, the rest through ours).
 */
import assert from 'node:assert/strict';
import { LocalTxs, PASSED_OVER_AFTER_MS } from '../node/local-txs.ts';
import type { Mempool } from '../ledger/mempool.ts';
import type { Block } from '../ledger/block.ts';
import type { Transaction } from '../ledger/transaction.ts';
import { FUNDED_KEYS, testKey, transfer } from './helpers/fixtures.ts';

const [alice, bob] = FUNDED_KEYS as [(typeof FUNDED_KEYS)[0], (typeof FUNDED_KEYS)[0]];
const to = testKey(80).address;

describe('our users\' transactions a block passed over', () => {
  let now = 0;
  let pending: Set<string>;
  /** What the pool holds but this node's users did not submit (a peer relayed it). */
  let relayed: Transaction[];
  const mempool = {
    has: (id: Uint8Array) => pending.has(Buffer.from(id).toString('hex')),
    sentFrom: (address: Uint8Array) => relayed.filter((tx) => Buffer.from(tx.from).equals(address)).map((tx) => ({ tx })),
  } as unknown as Mempool;
  const blockOf = (txs: Transaction[]) => ({ txs }) as unknown as Block;
  const ids = (txs: Transaction[]) => txs.map((t) => t.idHex);

  beforeEach(() => {
    now = 1_000_000;
    pending = new Set();
    relayed = [];
  });

  function track(local: LocalTxs, ...txs: Transaction[]): void {
    for (const tx of txs) {
      pending.add(tx.idHex);
      relayed.push(tx);
      local.add(tx);
    }
  }

  it('pushes again, in nonce order, what a block with room passed over, once it has been out long enough, and not again at once', () => {
    const local = new LocalTxs({ mempool, now: () => now, blockRoom: 3 });
    const second = transfer(alice, to, 1n, 1n, 5n);
    const first = transfer(alice, to, 1n, 0n, 5n);
    track(local, second, first);
    const block = blockOf([transfer(bob, to, 1n, 0n, 9n)]); // one of three: room to spare
    assert.deepEqual(local.passedOver(block), [], 'just sent: it may have reached the miner after its template');
    now += PASSED_OVER_AFTER_MS;
    assert.deepEqual(ids(local.passedOver(block)), ids([first, second]));
    assert.deepEqual(local.passedOver(block), [], 'sent again just now');
    now += PASSED_OVER_AFTER_MS;
    assert.deepEqual(ids(local.passedOver(block)), ids([first, second]));
  });

  it('a full block that paid as much or more took what it could: nothing is pushed; one that took a lower fee passed ours over', () => {
    const local = new LocalTxs({ mempool, now: () => now, blockRoom: 2 });
    const ours = transfer(alice, to, 1n, 0n, 5n);
    track(local, ours);
    now += PASSED_OVER_AFTER_MS;
    assert.deepEqual(local.passedOver(blockOf([transfer(bob, to, 1n, 0n, 5n), transfer(bob, to, 1n, 1n, 7n)])), []);
    assert.deepEqual(ids(local.passedOver(blockOf([transfer(bob, to, 1n, 0n, 4n), transfer(bob, to, 1n, 1n, 7n)]))), ids([ours]));
  });

  it('forgets what left the mempool (mined, replaced, expired)', () => {
    const local = new LocalTxs({ mempool, now: () => now, blockRoom: 10 });
    const mined = transfer(alice, to, 1n, 0n, 5n);
    const waiting = transfer(bob, to, 1n, 0n, 5n);
    track(local, mined, waiting);
    pending.delete(mined.idHex);
    now += PASSED_OVER_AFTER_MS;
    assert.deepEqual(ids(local.passedOver(blockOf([]))), ids([waiting]));
    assert.equal(local.size, 1);
  });

  it("pushes with ours its sender's earlier nonces that the pool holds from elsewhere: without them no peer can take ours", () => {
    const local = new LocalTxs({ mempool, now: () => now, blockRoom: 10 });
    // The user's nonce 0 went through another node, which crashed; a peer relayed it here.
    const first = transfer(alice, to, 1n, 0n, 5n);
    relayed.push(first, transfer(bob, to, 1n, 0n, 5n), transfer(alice, to, 1n, 3n, 5n));
    const second = transfer(alice, to, 1n, 1n, 5n);
    const third = transfer(alice, to, 1n, 2n, 5n);
    track(local, third, second);
    now += PASSED_OVER_AFTER_MS;
    assert.deepEqual(ids(local.passedOver(blockOf([]))), ids([first, second, third]), "each once, in nonce order; neither another sender's nor a later nonce");
  });

  it("a sender whose nonces do not all fit in a push has its earliest sent, and ours go once they fit; each sender's pool is read once", () => {
    // From the review: one of ours behind more earlier nonces than a push carries was passed by for
    // good (it had gone alone before the earlier nonces came with it), and each of ours read its
    // sender's whole pool again: thousands from one key, squared, on every new tip.
    let reads = 0;
    const counting = { has: mempool.has, sentFrom: (address: Uint8Array) => (reads++, mempool.sentFrom(address)) } as unknown as Mempool;
    const local = new LocalTxs({ mempool: counting, now: () => now, blockRoom: 10, maxPush: 3 });
    const earlier = [0n, 1n, 2n].map((n) => transfer(alice, to, 1n, n, 5n));
    relayed.push(...earlier);
    const ours = [3n, 4n].map((n) => transfer(alice, to, 1n, n, 5n));
    track(local, ...ours);
    now += PASSED_OVER_AFTER_MS;
    assert.deepEqual(ids(local.passedOver(blockOf([]))), ids(earlier), 'the earliest, which a peer needs first');
    assert.equal(reads, 1, "alice's pool read once for both of ours");
    for (const tx of earlier) pending.delete(tx.idHex);
    relayed.splice(0, 3); // mined
    assert.deepEqual(ids(local.passedOver(blockOf([]))), ids(ours), 'not marked sent while left out: due at the next block');
  });

  it('follows at most 10,000, forgetting the one added longest ago: one added again counts from then, one mined is gone', () => {
    const local = new LocalTxs({ mempool, now: () => now, blockRoom: 10 });
    // Only ids matter here: the block passes nothing over (no time went by).
    const fake = (i: number) => {
      const idHex = i.toString(16).padStart(64, '0');
      return { idHex, id: Buffer.from(idHex, 'hex') } as unknown as Transaction;
    };
    const add = (from: number, to: number) => {
      for (let i = from; i <= to; i++) {
        pending.add(fake(i).idHex);
        local.add(fake(i));
      }
    };
    const follows = (i: number) => local.has(fake(i).idHex);
    add(0, 9_999);
    local.add(fake(0)); // submitted again: now the latest
    pending.delete(fake(1).idHex);
    pending.delete(fake(2).idHex);
    assert.deepEqual(local.passedOver(blockOf([])), []);
    assert.equal(local.size, 9_998, 'the mined ones forgotten');
    add(10_000, 10_002);
    assert.equal(local.size, 10_000);
    assert.deepEqual([0, 3, 4, 10_002].map(follows), [true, false, true, true], 'the oldest followed went: 3, not 0 (added again), 1 or 2 (mined)');
    add(10_003, 19_998);
    assert.deepEqual([0, 9_999, 10_000, 19_998].map(follows), [true, false, true, true]);
    add(19_999, 30_000);
    assert.equal(local.size, 10_000);
    assert.deepEqual([0, 20_000, 20_001, 30_000].map(follows), [false, false, true, true]);
  });
});
