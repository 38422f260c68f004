/**
 * Header sync by height ranges (node/header-sync.ts): the fork point found by comparing heights,
 * every header checked and its hash written to the store's scratch list, and blame only for what
 * a peer provably did.
 */
import assert from 'node:assert/strict';
import { toHex } from '../ledger/bytes.ts';
import { CairnError } from '../ledger/errors.ts';
import { MemoryDisk } from '../ledger/kv-memory.ts';
import { ChainDB } from '../ledger/chaindb.ts';
import type { Block, BlockHeader } from '../ledger/block.ts';
import { Chain } from '../consensus/chain.ts';
import { fetchHeaderChain, PeerFault, type ChainApart, type HeaderChain } from '../node/header-sync.ts';
import { networkNames } from '../node/protocols.ts';
import type { Transport } from '../node/transport.ts';
import { decodeGetHeaderRange, decodeStatus, encodeGetHeaderRange, encodeHeaders, encodeStatus, type Status } from '../node/wire.ts';
import { testKey, testParams } from './helpers/fixtures.ts';
import { asParent, mineChain, mineChild } from './helpers/mining.ts';

const params = testParams();
const now = params.timestamp + 100_000_000;

describe('header sync by height ranges', function () {
  this.timeout(60_000);
  let db: ChainDB;
  let chain: Chain;
  let ours: Block[];

  beforeEach(async () => {
    db = await ChainDB.open(new MemoryDisk().open(), params);
    chain = await Chain.open(db, { clock: () => now, reorgDepth: 20, window: 4 });
    ours = mineChain(params, asParent(db.genesis), 40, { miner: testKey(1).address });
    for (const b of ours) await chain.processBlock(b);
  });
  afterEach(() => db.close());

  /** A peer whose main chain is `headers` (heights 1 on), answering ranges as the protocol says, or as `answer` lies. */
  function peer(headers: readonly BlockHeader[], answer?: (start: number, count: number) => BlockHeader[]) {
    const asked: number[] = [];
    const transport = {
      async request(_peer: string, _protocol: string, body: Uint8Array) {
        const { from, count } = decodeGetHeaderRange(body);
        asked.push(from);
        return encodeHeaders(answer ? answer(from, count) : headers.slice(from - 1, from - 1 + count));
      },
    } as unknown as Transport;
    const status = (): Status => ({ genesis: db.genesis.header.hash, height: headers.length, tipHash: headers.at(-1)!.hash, totalWork: 1n << 200n, prunedHeight: 0 });
    const o = { request: transport.request.bind(transport), names: networkNames(db.genesis.header.hash), chain, clock: () => now, onProgress: () => {} };
    return { asked, fetch: async () => taken(await fetchHeaderChain(o, 'peer', status())) };
  }

  /** A chain to take, or undefined; a fork below the floor fails the test (asked for with `apartOf`). */
  function taken(found: HeaderChain | ChainApart | undefined): HeaderChain | undefined {
    assert.ok(!found || !('apartBelow' in found), 'a chain apart from ours');
    return found;
  }

  it('finds the fork point by height and checks a long chain range by range, keeping only the hashes', async () => {
    const theirs = [...ours.slice(0, 30), ...mineChain(params, asParent(ours[29]!), 4_500, { miner: testKey(2).address })].map((b) => b.header);
    const p = peer(theirs);
    const found = (await p.fetch())!;
    assert.equal(found.fork.height, 30);
    assert.equal(found.complete, true);
    assert.equal(found.check.tipHeight, 4_530);
    const stored = await db.history.pending(31, 4_500);
    assert.deepEqual(stored.map(toHex), theirs.slice(30).map((h) => toHex(h.hash)));
    assert.ok(p.asked.length >= 3 && p.asked[0] === 40 - 16 + 1, `ranges asked from ${p.asked.join(', ')}`);
  });

  it('leaves alone a peer whose chain forks below the fork floor, and one whose chain moved while we fetched it', async () => {
    const deep = mineChain(params, asParent(ours[9]!), 60, { miner: testKey(3).address }).map((b) => b.header);
    const apart = peer([...ours.slice(0, 10).map((b) => b.header), ...deep]);
    await assert.rejects(apart.fetch(), /a chain apart from ours/);
    assert.equal(apart.asked.at(-1), 21, 'it forks at 10, below the floor of 20: said so from the range at the floor');

    const first = mineChain(params, asParent(ours.at(-1)!), 2_500, { miner: testKey(4).address }).map((b) => b.header);
    const fork = first[1_000]!;
    const moved = mineChain(params, { hash: fork.hash, height: fork.height, header: fork }, 3_000, { miner: testKey(5).address }).map((b) => b.header);
    const before = [...ours.map((b) => b.header), ...first];
    const after = [...before.slice(0, 41 + 1_000), ...moved];
    let served = 0;
    const p = peer(before, (start, count) => (served++ === 0 ? before : after).slice(start - 1, start - 1 + count));
    const found = (await p.fetch())!;
    assert.equal(found.complete, false, 'its next range did not follow what we had checked');
    assert.ok(found.check.tipHeight > 40, 'what was checked stands');
  });

  it('blames a peer for headers at other heights than asked, and for headers that break a rule', async () => {
    const theirs = [...ours.map((b) => b.header), ...mineChain(params, asParent(ours.at(-1)!), 30, { miner: testKey(6).address }).map((b) => b.header)];
    const shifted = peer(theirs, (start, count) => theirs.slice(start, start + count));
    await assert.rejects(shifted.fetch(), (err: unknown) => err instanceof PeerFault && err.score === 100);

    const bad = mineChild(params, asParent(ours.at(-1)!), [], { badPow: true, miner: testKey(7).address }).header;
    await assert.rejects(peer([...ours.map((b) => b.header), bad]).fetch(), (err: unknown) => err instanceof CairnError && err.code === 'HEADER_BAD_POW');
  });

  it('a reorganisation between finding the fork and checking from it: nobody is blamed', async () => {
    // From a review: the check started from whatever block was at the fork height by then, and an
    // honest peer's first header no longer followed it: HEADER_BAD_HEIGHT, ban score 100.
    const theirs = [...ours, ...mineChain(params, asParent(ours.at(-1)!), 30, { miner: testKey(8).address })].map((b) => b.header);
    const heavier = mineChain(params, asParent(ours[34]!), 8, { miner: testKey(9).address }); // forks at 35, under the peer's fork (40)
    let first = true;
    const p = peer(theirs, (start, count) => {
      if (first) {
        first = false;
        for (const b of heavier) void chain.processBlock(b); // gossip, meanwhile
      }
      return theirs.slice(start - 1, start - 1 + count);
    });
    assert.equal(await p.fetch(), undefined, 'the chain it built on moved: this round gives up, blaming nobody');
    await chain.idle();
    assert.equal(chain.tip.height, 43);
  });

  it('judges each batch of headers by the clock as it arrives: a long sync takes the blocks mined while it ran', async () => {
    // From a review: the clock was read once, at the start; a sync longer than the drift allowed
    // refused the newest headers (HEADER_TIME_TOO_NEW) that import would take, and started over.
    let clock = now;
    const more = mineChain(params, asParent(ours.at(-1)!), 4_000, { miner: testKey(10).address });
    for (let i = 0; i < 5; i++) more.push(mineChild(params, asParent(more.at(-1)!), [], { timestamp: Math.max(more.at(-1)!.header.timestamp + 1, now + 300 + i), miner: testKey(10).address }));
    const theirs = [...ours, ...more].map((b) => b.header);
    const request = async (_peer: string, _protocol: string, body: Uint8Array) => {
      const { from, count } = decodeGetHeaderRange(body);
      clock += 100; // each answer takes a while: the whole sync, 300 s and more
      return encodeHeaders(theirs.slice(from - 1, from - 1 + count));
    };
    const o = { request, names: networkNames(db.genesis.header.hash), chain, clock: () => clock, onProgress: () => {} };
    const found = taken(await fetchHeaderChain(o, 'peer', { genesis: db.genesis.header.hash, height: theirs.length, tipHash: theirs.at(-1)!.hash, totalWork: 1n << 200n, prunedHeight: 0 }));
    assert.equal(found?.check.tipHeight, theirs.length);
  });

  it('keeps the headers before one ahead of our clock: a clock behind by more than the drift still follows the chain, late', async () => {
    // From the clock review: the whole round was thrown away at the first header ahead of our
    // clock. The newest blocks of a live chain always are, for a node whose clock is behind by
    // more than the drift allowed; it took none of the chain, however old, and stayed stuck.
    const more = mineChain(params, asParent(ours.at(-1)!), 2_500, { miner: testKey(11).address });
    for (let i = 0; i < 3; i++) more.push(mineChild(params, asParent(more.at(-1)!), [], { timestamp: now + 100_000 + i, miner: testKey(11).address }));
    const theirs = [...ours, ...more].map((b) => b.header);
    assert.ok(theirs.at(-4)!.timestamp <= now, 'the rest are in our past');
    const found = await peer(theirs).fetch();
    assert.ok(found, 'a chain to take');
    assert.equal(found.check.tipHeight, theirs.length - 3, 'every header up to the first ahead of our clock');
    assert.equal(found.complete, false, 'short of its claim, and no lie for that');
    assert.equal(found.aheadOfClock?.height, theirs.length - 2, 'the header that ended it, for the warning');
    const short = [...ours, more[0]!, more[1]!, mineChild(params, asParent(more[1]!), [], { timestamp: now + 100_000, miner: testKey(11).address })].map((b) => b.header);
    const first = await peer(short).fetch();
    assert.equal(first?.check.tipHeight, 42, 'in the first range too');
    assert.equal(first?.complete, false);
  });

  it('goes back to the fork floor once: a peer answering ours, then headers that do not link, cannot keep it looking', async () => {
    // From a review: every range that did not link sent the search back to the floor, so a peer
    // alternating the two kept a sync round (and every other peer's turn) going for ever.
    const deepDb = await ChainDB.open(new MemoryDisk().open(), params);
    const deep = await Chain.open(deepDb, { clock: () => now, reorgDepth: 2_050, window: 4 });
    const long = mineChain(params, asParent(deepDb.genesis), 2_060, { miner: testKey(11).address });
    for (const b of long) await deep.processBlock(b);
    const other = mineChain(params, asParent(long[100]!), 2_000, { miner: testKey(12).address }).map((b) => b.header);
    const asked: number[] = [];
    const request = async (_peer: string, _protocol: string, body: Uint8Array) => {
      const { from, count } = decodeGetHeaderRange(body);
      asked.push(from);
      if (asked.length > 50) throw new Error('still looking after 50 requests');
      if (from === deep.forkFloor + 1) return encodeHeaders(long.slice(from - 1, from - 1 + count).map((b) => b.header));
      return encodeHeaders(other.slice(from - 102, from - 102 + count));
    };
    const o = { request, names: networkNames(deepDb.genesis.header.hash), chain: deep, clock: () => now, onProgress: () => {} };
    try {
      assert.equal(await fetchHeaderChain(o, 'peer', { genesis: deepDb.genesis.header.hash, height: 2_100, tipHash: other.at(-1)!.hash, totalWork: 1n << 200n, prunedHeight: 0 }), undefined);
      assert.ok(asked.length <= 4, `ranges asked from ${asked.join(', ')}`);
    } finally {
      await deepDb.close();
    }
  });

  it('decodes the range request and the status strictly', () => {
    assert.throws(() => decodeGetHeaderRange(encodeGetHeaderRange(5, 0)), /header count 0/);
    assert.throws(() => decodeGetHeaderRange(encodeGetHeaderRange(5, 2_001)), /header count 2001/);
    const status = { genesis: db.genesis.header.hash, height: 10, tipHash: new Uint8Array(32), totalWork: 5n };
    assert.equal(decodeStatus(encodeStatus({ ...status, prunedHeight: 10 })).prunedHeight, 10);
    assert.throws(() => decodeStatus(encodeStatus({ ...status, prunedHeight: 11 })), /pruned height 11 above the tip/);
  });
});
