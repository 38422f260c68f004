/**
 * The serving half of sync (node/chain-server.ts, answerHeaderRange in node/header-sync.ts):
 * what a node tells the peers that ask for its headers, which they hold against its status.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { toHex } from '../ledger/bytes.ts';
import { MemoryDisk } from '../ledger/kv-memory.ts';
import { ChainDB } from '../ledger/chaindb.ts';
import { Chain } from '../consensus/chain.ts';
import { Sync } from '../node/sync.ts';
import { PeerManager } from '../node/peers.ts';
import { networkNames } from '../node/protocols.ts';
import { realEnv } from '../node/env.ts';
import { Serving, type Serve } from '../node/serving.ts';
import { NetworkStats, PeerRecords } from '../node/peer-records.ts';
import type { Env } from '../node/env.ts';
import { isBusy, type Responder, type Transport } from '../node/transport.ts';
import { serveChain } from '../node/chain-server.ts';
import { answerHeaderRange } from '../node/header-sync.ts';
import { decodeGetBlocks, decodeHeaders, encodeGetBlocks, encodeGetHeaders, encodeStatus } from '../node/wire.ts';
import { testKey, testParams } from './helpers/fixtures.ts';
import { asParent, mineChain } from './helpers/mining.ts';
import type { Block } from '../ledger/block.ts';
import type { BlockIndexEntry } from '../consensus/block-index.ts';
import { heldReorganisation, untilAsked } from './helpers/reorg.ts';

describe('a node mid-way through a reorganisation, serving headers', function () {
  this.timeout(60_000);
  // From a review: a node answered header requests from its main chain as it stood, and mid-way
  // through a reorganisation that ends at the fork point (or part-way up the new branch), below
  // the work its status had just claimed. The asker took the short answer for the whole chain
  // and banned an honest node as a liar (a light client too: the same check).

  it('a syncing node does not ban it: header ranges are answered between its imports', async () => {
    const server = await heldReorganisation();
    const { params, now } = server;
    const db = await ChainDB.open(new MemoryDisk().open(), params);
    const chain = await Chain.open(db, { clock: () => now });
    const names = networkNames(db.genesis.header.hash);
    let ranges = 0;
    const transport = Object.assign(new EventEmitter(), {
      peers: () => ['server'],
      async request(_peer: string, protocol: string, body: Uint8Array) {
        if (protocol === names.status) return encodeStatus(server.status);
        ranges++;
        return answerHeaderRange(server.chain, body);
      },
      async requestMany(_peer: string, _protocol: string, body: Uint8Array) {
        return (await server.db.getBlocksBytes(decodeGetBlocks(body))).filter((b) => b !== undefined);
      },
    }) as unknown as Transport;
    const peers = new PeerManager(() => now);
    const sync = new Sync({ transport, env: realEnv, names, chain, peers, clock: () => now, serve: (async () => {}) as unknown as Serve });
    sync.statuses.set('server', { peer: 'server', status: server.status });
    const syncing = sync.requestSync();
    await untilAsked(() => ranges > 0);
    server.release();
    assert.equal(await server.reorganised, 'connected');
    await syncing;
    await sync.idle();
    assert.equal(peers.isBanned('server'), false, 'an honest node that reorganised is no liar');
    assert.equal(toHex(chain.tip.hash), toHex(server.branch[2]!.header.hash), 'the client follows it to its new tip');
    await db.close();
    await server.db.close();
  });

  it('headers after a locator (a light client following a branch) are answered between its imports too', async () => {
    const server = await heldReorganisation();
    const names = networkNames(server.db.genesis.header.hash);
    let respond: Responder | undefined;
    const serve = (async (name: string, _protocol: string, r: Responder) => void (name === 'headers' && (respond = r))) as unknown as Serve;
    await serveChain({ serve, names, chain: server.chain, peers: new PeerManager(() => server.now), status: () => server.status, announced: () => undefined });
    let asked = false;
    const answering = (async () => {
      asked = true;
      return respond!(encodeGetHeaders({ locator: [server.db.genesis.header.hash], max: 100 }), 'light');
    })();
    await untilAsked(() => asked);
    server.release();
    assert.equal(await server.reorganised, 'connected');
    const headers = decodeHeaders((await answering) as Uint8Array);
    assert.equal(headers.length, 11, 'the whole chain, not one cut at the fork point');
    assert.equal(toHex(headers.at(-1)!.hash), toHex(server.branch[2]!.header.hash));
    await server.db.close();
  });
});

type Announced = { tip: BlockIndexEntry; prunedHeight: number } | undefined;

/** A node's blocks responder on `chain`: `ask` serves the blocks asked, every one, and gives what the answer told the budgets of each. */
async function blocksServer(chain: Chain, announced: () => Announced) {
  const { db } = chain;
  let respond: Responder | undefined;
  const serve = (async (name: string, _protocol: string, r: Responder) => void (name === 'blocks' && (respond = r))) as unknown as Serve;
  let told: { height: number | undefined; theirs: boolean }[] = [];
  await serveChain({
    serve,
    names: networkNames(db.genesis.header.hash),
    chain,
    peers: new PeerManager(() => Date.now()),
    status: () => ({ genesis: db.genesis.header.hash, height: chain.tip.height, tipHash: chain.tip.hash, totalWork: chain.tip.totalWork, prunedHeight: 0 }),
    announced,
    admitBlocks: (_peer, asked) => ((told = asked.map(({ height, theirs }) => ({ height, theirs }))), asked.length),
  });
  return async (blocks: readonly Block[]) => {
    const answer = await respond!(encodeGetBlocks(blocks.map((b) => b.header.hash)), 'asker');
    assert.ok(Array.isArray(answer) && answer.length === blocks.length, 'every block served');
    return told;
  };
}

/** A chain of `length` blocks with a window of 4 (and the median span): most of it below the window. */
async function chainBelowWindow(length: number, options: { reorgDepth?: number } = {}) {
  const params = testParams();
  const db = await ChainDB.open(new MemoryDisk().open(), params);
  const chain = await Chain.open(db, { clock: () => Date.now(), window: 4, ...options });
  const blocks = mineChain(params, asParent(db.genesis), length, { miner: testKey(1).address });
  for (const b of blocks) assert.equal(await chain.processBlock(b), 'connected');
  return { params, db, chain, blocks };
}

describe('the blocks a peer already has, as a blocks answer tells its budgets', function () {
  this.timeout(60_000);
  // A snapshot-synced node checking its history asks for the bodies below its snapshot, which are
  // ancestors of the tip it announced: counted as re-downloads, they were trickled at 128 KiB/s and
  // its connection cut off past 4,096 of them (node/serving.ts), so no long history was checked.
  // And blocks below the in-memory window were placed nowhere (no height, never the asker's): the
  // chain's old history could be taken again and again, never counted as re-downloads.

  for (const window of [undefined, 4]) {
    it(`ancestors of its announced tip above the height its status says it pruned, not those at or below it (${window ? 'most blocks below the window' : 'every block in memory'})`, async () => {
      const params = testParams();
      const db = await ChainDB.open(new MemoryDisk().open(), params);
      const chain = await Chain.open(db, { clock: () => Date.now(), window });
      const blocks = mineChain(params, asParent(db.genesis), 60, { miner: testKey(1).address });
      for (const b of blocks) assert.equal(await chain.processBlock(b), 'connected');
      assert.equal(chain.windowBottom > 30, window !== undefined, `the window's bottom at ${chain.windowBottom}`);
      let announced: Announced;
      const serveBlocks = await blocksServer(chain, () => announced);
      const heights = blocks.map((b) => b.header.height);
      const ask = async () => {
        const placed = await serveBlocks(blocks);
        assert.deepEqual(placed.map((b) => b.height), heights, 'each on the main chain at its height');
        return placed.map((b) => b.theirs);
      };
      announced = { tip: chain.getEntry(blocks[59]!.header.hash)!, prunedHeight: 50 };
      assert.deepEqual(await ask(), heights.map((h) => h > 50), 'bodies 1 to 50 it said it lacks');
      announced = { tip: chain.getEntry(blocks[57]!.header.hash)!, prunedHeight: 0 };
      assert.deepEqual(await ask(), heights.map((h) => h <= 58), 'an unpruned peer at 58 has 1 to 58');
      announced = undefined;
      assert.deepEqual(await ask(), heights.map(() => false), 'a peer whose tip we do not know has none we can tell');
      await db.close();
    });
  }
});

/**
 * Blocks 1 to 100, then their branch of 16 (connected, then let go) and ours of 20 from block 100,
 * with a reorg depth of 16: the window's bottom ends between the fork and their tip, so their
 * branch is stored but in no index, below the window and in its heights.
 */
async function branchLetGo() {
  const { params, db, chain, blocks: trunk } = await chainBelowWindow(100, { reorgDepth: 16 });
  const theirs = mineChain(params, asParent(trunk[99]!), 16, { miner: testKey(2).address });
  const ours = mineChain(params, asParent(trunk[99]!), 20, { miner: testKey(3).address });
  for (const b of theirs) assert.equal(await chain.processBlock(b), 'connected');
  // Their tip, as a status looked up before our chain moved on (an entry the index has since let go).
  const tip = chain.getEntry(theirs[15]!.header.hash)!;
  for (const b of ours) await chain.processBlock(b);
  assert.equal(toHex(chain.tip.hash), toHex(ours[19]!.header.hash));
  assert.equal(chain.getEntry(theirs[0]!.header.hash), undefined, 'their branch let go');
  const bottom = chain.windowBottom;
  assert.ok(bottom > 100 && bottom <= tip.height, `the window's bottom (${bottom}) between the fork at 100 and their tip at ${tip.height}`);
  return { params, db, chain, trunk, theirs, ours, tip, bottom };
}

describe('a tip on a branch that leaves our main chain below the window', function () {
  this.timeout(60_000);
  // Blocks below the window are placed by height alone: ancestors of the announced tip only if
  // that tip's chain reaches the window's bottom through ours. A branch that forks below it has
  // none of our blocks between the fork and the bottom, and where the fork is the window no longer
  // tells: counted as its own, those were trickled as re-downloads of blocks it never had.

  it('has none of the blocks below the window', async () => {
    const { db, chain, trunk, ours, tip, bottom } = await branchLetGo();
    const serveBlocks = await blocksServer(chain, () => ({ tip, prunedHeight: 0 }));
    const below = [...trunk, ...ours].filter((b) => b.header.height < bottom).slice(-64); // the most one request asks
    const placed = await serveBlocks(below);
    assert.deepEqual(placed.map((b) => b.height), below.map((b) => b.header.height), 'each at its height');
    assert.deepEqual(placed.map((b) => b.theirs), placed.map(() => false), 'none of them counted as its own');
    await db.close();
  });
});

describe("a side branch's blocks, as a blocks answer tells its budgets", function () {
  this.timeout(60_000);
  // The budgets know a block served before on a connection by its height. A side branch's block
  // had none: asked again and again, it was never a repeat, and only the byte budget held a peer
  // taking it, at its group's whole share for as long as it stayed connected. Its height is the
  // one its header gives, checked against its parent's before it was stored: the asker names only
  // the hash, and a height marked served is one of its own connection's.

  it('each at its height: in the index, let go in the window\'s heights, and below them', async () => {
    const { params, db, chain, theirs, ours } = await branchLetGo();
    const beside = mineChain(params, asParent(ours[17]!), 1, { miner: testKey(4).address })[0]!;
    assert.equal(await chain.processBlock(beside), 'side-branch');
    const serveBlocks = await blocksServer(chain, () => undefined);
    const side = [...theirs, beside];
    const placed = await serveBlocks(side);
    assert.deepEqual(placed.map((b) => b.height), side.map((b) => b.header.height));
    assert.deepEqual(placed.map((b) => b.theirs), side.map(() => false), 'a peer whose tip we do not know has none we can tell');
    await db.close();
  });

  it('one asked again and again is a re-download past the allowance, as a main-chain block is', async () => {
    const { db, chain, theirs } = await branchLetGo();
    const peers = new PeerManager(() => 0);
    const records = new PeerRecords();
    records.connected('asker', { direction: 'inbound', remoteAddr: '/ip4/10.0.0.1/tcp/1/p2p/asker' }, 0);
    // A trickle that one re-download empties, and a clock that never refills it.
    const limits = { repeatAllowance: 0, redundantBurstBytes: 1, redundantBytesPerSec: 1 };
    const serving = new Serving({ env: { now: () => 0, monotonic: () => 0 } as unknown as Env, peers, records, stats: new NetworkStats(), limits });
    let respond: Responder | undefined;
    await serveChain({
      serve: (async (name: string, _protocol: string, r: Responder) => void (name === 'blocks' && (respond = serving.guard('blocks', r)))) as unknown as Serve,
      names: networkNames(db.genesis.header.hash),
      chain,
      peers,
      status: () => ({}) as never,
      announced: () => undefined,
      admitBlocks: (peer, blocks, height) => serving.serveBlocks(peer, blocks, height),
    });
    const allowance = Math.floor(chain.tip.height / 8); // repeats forgiven: answers lost and asked again
    const request = encodeGetBlocks([theirs[0]!.header.hash]);
    let served = 0;
    while (served < 3 * allowance && !isBusy(await respond!(request, 'asker'))) served++;
    assert.equal(served, 1 + allowance + 1, 'once, its repeats forgiven, one on the trickle; then busy');
    await db.close();
  });
});

describe('what placing a blocks answer below the window reads of the store', function () {
  this.timeout(60_000);

  it('one range of main-chain hashes for consecutive heights, one hash a block for heights far apart, none for blocks the asker cannot have', async () => {
    const { db, chain, blocks } = await chainBelowWindow(120);
    let announced: Announced = { tip: chain.tip, prunedHeight: 0 };
    const serveBlocks = await blocksServer(chain, () => announced);
    const reads: number[] = []; // hashes read, a read each
    const mainHashes = db.history.mainHashes.bind(db.history);
    db.history.mainHashes = (from, to) => (reads.push(to - from), mainHashes(from, to));
    const hashAt = db.getHashAtHeight.bind(db);
    db.getHashAtHeight = (height) => (reads.push(1), hashAt(height));
    const consecutive = blocks.slice(10, 74);
    assert.ok(consecutive.at(-1)!.header.height < chain.windowBottom);
    const placed = await serveBlocks(consecutive);
    assert.deepEqual(placed.map((b) => b.theirs), consecutive.map(() => true));
    // A syncing peer's batch: a read a block was 64 reads where one does.
    assert.deepEqual(reads.splice(0), [64], 'one read of the 64 hashes');
    // A hostile asker's: one range across them would read the whole chain's hashes for two blocks.
    const apart = [blocks[0]!, blocks[79]!];
    assert.ok(apart[1]!.header.height < chain.windowBottom);
    await serveBlocks(apart);
    assert.deepEqual(reads.splice(0), [1, 1], 'a hash for each');
    // Main-chain or not, a block is at its height: the store is read only for blocks the asker may have.
    announced = { tip: chain.tip, prunedHeight: 80 };
    await serveBlocks(consecutive);
    announced = undefined;
    await serveBlocks(consecutive);
    assert.deepEqual(reads, [], 'none for a peer that said it lacks them, nor for one whose tip we do not know');
    await db.close();
  });
});
