/**
 * A full node's first peer with a cheap chain (node/sync.ts): what an attacker can build under
 * ASERT with no timestamp ahead of the clock, that it captures a new node met alone for good (the
 * reorg depth), and `cairn node --checkpoint HEIGHT:HASH`, which prevents it.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { bytesEqual, toHex } from '../ledger/bytes.ts';
import { MemoryDisk } from '../ledger/kv-memory.ts';
import { ChainDB } from '../ledger/chaindb.ts';
import type { Block } from '../ledger/block.ts';
import { Chain } from '../consensus/chain.ts';
import { ConsensusError } from '../consensus/errors.ts';
import { nextTarget } from '../consensus/difficulty.ts';
import { MAX_TARGET, blockWork } from '../consensus/pow.ts';
import { checkpointText, type Checkpoint } from '../consensus/header-rules.ts';
import { Sync } from '../node/sync.ts';
import { SnapshotJoin } from '../node/snapshot-sync.ts';
import { LIE, PeerFault } from '../node/header-sync.ts';
import { Gossip } from '../node/gossip.ts';
import { encodeCompactBlock } from '../node/compact.ts';
import { TxSignatureVerifier } from '../node/tx-signatures.ts';
import { InlineVerifier } from '../node/inline-verifier.ts';
import { Mempool } from '../ledger/mempool.ts';
import { PeerManager } from '../node/peers.ts';
import { networkNames } from '../node/protocols.ts';
import { realEnv } from '../node/env.ts';
import type { Serve } from '../node/serving.ts';
import type { GossipValidator, Transport } from '../node/transport.ts';
import { decodeGetBlocks, decodeGetHeaderRange, encodeHeaders, encodeStatus, type Status } from '../node/wire.ts';
import { testKey, testParams } from './helpers/fixtures.ts';
import { asParent, mineChain, mineChild } from './helpers/mining.ts';

const REORG_DEPTH = 20;
// About a thousand hashes a block at genesis; ASERT eases it to one hash ten half-lives ahead of schedule.
const params = testParams({ target: 1n << 246n, asertHalfLife: 60 });

/**
 * The honest network: 120 blocks on schedule from genesis, and the clock at its tip. The cheap
 * chain: the longest an attacker can build by then at the easiest target, no timestamp ahead of
 * that clock: block 2 stamped late enough for ASERT to ease the target all the way, then one block
 * a block time, on schedule from there, up to the clock.
 */
function chains(genesis: Block) {
  const honest = mineChain(params, asParent(genesis), 120, { miner: testKey(1).address });
  const now = honest.at(-1)!.header.timestamp;
  const b1 = mineChild(params, asParent(genesis), [], { timestamp: params.timestamp + 1, miner: testKey(2).address });
  let late = b1.header.timestamp + params.blockTime;
  while (nextTarget(params, { height: 2, timestamp: late }, b1.header.timestamp) < MAX_TARGET) late += 1;
  const cheap = [b1, mineChild(params, asParent(b1), [], { timestamp: late, miner: testKey(2).address })];
  while (cheap.at(-1)!.header.timestamp + params.blockTime <= now) cheap.push(mineChild(params, asParent(cheap.at(-1)!), [], { miner: testKey(2).address }));
  return { honest, cheap, now };
}

const workOf = (genesis: Block, blocks: readonly Block[]) => blocks.reduce((sum, b) => sum + blockWork(b.header.target), blockWork(genesis.header.target));

describe('sync: a first peer with a cheap chain', function () {
  this.timeout(60_000);

  /** A new node on a chain opened with `checkpoint`; peers serve `served` (and what `claims` changes of their statuses). */
  async function setup(checkpoint?: (c: ReturnType<typeof chains>) => Checkpoint, claims: Record<string, Partial<Status>> = {}) {
    const db = await ChainDB.open(new MemoryDisk().open(), params);
    const genesis = db.genesis;
    const c = chains(genesis);
    const chain = await Chain.open(db, { clock: () => c.now, reorgDepth: REORG_DEPTH, window: 4, ...(checkpoint ? { checkpoint: checkpoint(c) } : {}) });
    const served: Record<string, readonly Block[]> = { honest: c.honest, cheap: c.cheap, 'cheap-liar': c.cheap };
    const names = networkNames(genesis.header.hash);
    const statusOf = (peer: string): Status => {
      const blocks = served[peer]!;
      return { genesis: genesis.header.hash, height: blocks.length, tipHash: blocks.at(-1)!.header.hash, totalWork: workOf(genesis, blocks), prunedHeight: 0, ...claims[peer] };
    };
    const asked: string[] = [];
    const transport = Object.assign(new EventEmitter(), {
      peers: () => Object.keys(served),
      async request(peer: string, protocol: string, body: Uint8Array) {
        if (protocol === names.status) return encodeStatus(statusOf(peer));
        asked.push(peer);
        const { from, count } = decodeGetHeaderRange(body);
        return encodeHeaders(served[peer]!.slice(from - 1, from - 1 + count).map((b) => b.header));
      },
      async requestMany(peer: string, _protocol: string, body: Uint8Array) {
        return decodeGetBlocks(body).map((hash) => served[peer]!.find((b) => bytesEqual(b.header.hash, hash))?.bytes).filter((b) => b !== undefined);
      },
    }) as unknown as Transport;
    const peers = new PeerManager(() => c.now);
    const warnings: string[] = [];
    const log = (level: string, message: string) => void (level === 'warn' && warnings.push(message));
    /** A sync of `on` over these peers, and how it meets one of them. */
    const syncing = (on: Chain) => {
      const sync = new Sync({ transport, env: realEnv, names, chain: on, peers, clock: () => c.now, serve: (async () => {}) as unknown as Serve, log });
      const meet = async (peer: string) => {
        sync.statuses.set(peer, { peer, status: statusOf(peer) });
        await sync.requestSync();
      };
      return { sync, meet };
    };
    const { sync, meet } = syncing(chain);
    return { db, chain, sync, peers, meet, syncing, asked, warnings, served, ...c };
  }

  it('an attacker can build, with no timestamp ahead of the clock, a chain longer than the reorg depth for a few hashes a block', async () => {
    const { db, honest, cheap, now } = await setup();
    assert.ok(cheap.every((b) => b.header.timestamp <= now), 'no block ahead of the clock');
    assert.ok(cheap.slice(2).every((b) => b.header.target === MAX_TARGET), 'from block 3, the easiest target: a hash a block');
    // Ten half-lives (600 s, 60 block times) ahead of schedule ease the target 2^10 times: the
    // cheap chain falls short of the honest one's height by about that, whatever the network's age.
    assert.ok(cheap.length >= honest.length - 62, `${cheap.length} cheap blocks against ${honest.length}`);
    assert.ok(cheap.length > 2 * REORG_DEPTH, `${cheap.length} blocks`);
    assert.ok(workOf(db.genesis, cheap) * 30n < workOf(db.genesis, honest), `${workOf(db.genesis, cheap)} against ${workOf(db.genesis, honest)}: a thirtieth of the honest work`);
    await db.close();
  });

  it('without a checkpoint, captures a new node that meets it alone: the heavier honest chain, met later, is never followed', async () => {
    // The property a checkpoint exists for (fork-watch's one-header check only helps when the
    // honest status comes in before the download crosses the reorg depth).
    const { db, chain, sync, peers, meet, cheap, warnings } = await setup();
    await meet('cheap');
    assert.equal(toHex(chain.tip.hash), toHex(cheap.at(-1)!.header.hash), 'the only chain known, taken');
    for (let round = 0; round < 3; round++) await meet('honest');
    assert.equal(toHex(chain.tip.hash), toHex(cheap.at(-1)!.header.hash), 'the honest chain forks at genesis, below the floor');
    assert.equal(sync.peersApart, 1);
    assert.equal(peers.isBanned('cheap'), false);
    assert.match(warnings.join('\n'), /peer honest claims more work than ours .* forks below height \d+, more than the 20 blocks this node reorganises/);
    await db.close();
  });

  const at = (blocks: readonly Block[], height: number): Checkpoint => ({ height, hash: blocks[height - 1]!.header.hash });

  it('a node captured before it was given a checkpoint says, of a peer whose chain passes through it, that its own never can', async () => {
    // From the review: restarted with --checkpoint on the captured datadir (its chain below the
    // checkpoint's height, so the start holds it), the node found the honest peers apart, their
    // header at the checkpoint's height the checkpoint's, and said nothing more than "apart": the
    // miner waited for a chain through it for ever.
    const { db, chain, meet, syncing, cheap, honest, now, warnings } = await setup();
    await meet('cheap');
    assert.equal(chain.tip.height, cheap.length, 'captured');
    await chain.idle();
    const restarted = await Chain.open(db, { clock: () => now, reorgDepth: REORG_DEPTH, window: 4, checkpoint: at(honest, 100) });
    assert.ok(restarted.tip.height < 100, 'below the checkpoint, so the start held it');
    warnings.length = 0;
    await syncing(restarted).meet('honest');
    assert.match(warnings.join('\n'), /passes through the checkpoint 100:[0-9a-f]{64} this node holds.*can never reach it.*empty datadir/);
    await db.close();
  });

  it('with a checkpoint the cheap chain does not pass, it is banned and nothing of it taken; the honest chain, met later, is', async () => {
    const { db, chain, peers, meet, honest } = await setup((c) => at(c.honest, 30));
    await meet('cheap');
    assert.equal(peers.isBanned('cheap'), true, 'its chain holds another block at the checkpoint\'s height');
    assert.equal(chain.tip.height, 0, 'none of its blocks became ours');
    await meet('honest');
    assert.equal(toHex(chain.tip.hash), toHex(honest.at(-1)!.header.hash));
    await db.close();
  });

  it('with a checkpoint above the cheap chain, it is left (no fault: a node still syncing says as much), and one claiming to reach it is banned', async () => {
    const { db, chain, peers, meet, honest, asked } = await setup((c) => at(c.honest, 100), { 'cheap-liar': { height: 100 } });
    await meet('cheap');
    assert.equal(chain.tip.height, 0, 'a chain short of the checkpoint is not ours');
    assert.equal(peers.isBanned('cheap'), false);
    assert.deepEqual(asked, [], 'nor asked for its headers');
    await meet('cheap-liar');
    assert.equal(peers.isBanned('cheap-liar'), true, 'its headers end below the checkpoint its status claimed to pass');
    const reason = peers.records().find((b) => b.id === 'cheap-liar')?.reason ?? '';
    assert.ok(reason.includes(`below the checkpoint ${checkpointText(chain.checkpoint!)} `), `the ban names the checkpoint that made it, for a start holding another to lift: ${reason}`);
    assert.equal(chain.tip.height, 0);
    await meet('honest');
    assert.equal(toHex(chain.tip.hash), toHex(honest.at(-1)!.header.hash));
    await db.close();
  });

  it('past the checkpoint, a peer whose heavier branch forks below it is banned, above the floor or below it; one forking above it is followed', async () => {
    const { db, chain, sync, peers, meet, honest, served } = await setup((c) => at(c.honest, 105));
    await meet('honest');
    assert.equal(chain.tip.height, 120);
    // Branches from the honest chain, blocks half a block time apart (harder targets): more work
    // in as many blocks, and no timestamp ahead of the clock.
    const branch = (from: number, n: number) => mineChain(params, asParent(honest[from - 1]!), n, { spacing: 5, miner: testKey(3).address });
    served['near'] = [...honest.slice(0, 103), ...branch(103, 22)]; // forks at 103, above the floor (100), below the checkpoint
    served['deep'] = [...honest.slice(0, 90), ...branch(90, 40)]; // forks at 90, below the floor
    served['above'] = [...honest.slice(0, 110), ...branch(110, 14)];
    for (const peer of ['near', 'deep', 'above']) assert.ok(workOf(db.genesis, served[peer]!) > chain.tip.totalWork, `${peer} is heavier`);
    await meet('near');
    assert.equal(peers.isBanned('near'), true, 'its header at 105 is not the checkpoint');
    await meet('deep');
    assert.equal(peers.isBanned('deep'), true, 'one header at the checkpoint\'s height tells');
    assert.equal(sync.peersApart, 0);
    assert.equal(chain.tip.height, 120);
    await meet('above');
    assert.equal(toHex(chain.tip.hash), toHex(served['above']!.at(-1)!.header.hash), 'a branch above the checkpoint is followed as ever');
    await db.close();
  });

  it('a block at the checkpoint\'s height that is another is refused by the import, ban-worthy', async () => {
    const { db, chain, cheap } = await setup((c) => at(c.honest, 1));
    await assert.rejects(chain.processBlock(cheap[0]!), (err: unknown) => err instanceof ConsensusError && err.code === 'HEADER_CHECKPOINT' && err.banScore === 100);
    assert.equal(chain.tip.height, 0);
    await db.close();
  });

  it('below the checkpoint, no block is taken from gossip, whole or compact: the forwarder\'s status is asked instead', async () => {
    // Gossiped one by one on a new node's tip, a cheap chain's blocks went deeper than the reorg
    // depth before any sync met the checkpoint's chain.
    const { db, chain, cheap } = await setup((c) => at(c.honest, 30));
    const validators = new Map<string, GossipValidator>();
    const transport = Object.assign(new EventEmitter(), {
      subscribe: (topic: string, validate: GossipValidator) => void validators.set(topic, validate),
      publish: async () => 0,
    }) as unknown as Transport;
    const names = networkNames(db.genesis.header.hash);
    const signatures = new TxSignatureVerifier(new InlineVerifier());
    const mempool = new Mempool(db, params, undefined, (tx) => signatures.checkTx(tx));
    const gossip = new Gossip({ transport, env: realEnv, names, chain, mempool, peers: new PeerManager(() => 0), clock: () => chain.tip.header.timestamp, signatures });
    const asked: string[] = [];
    gossip.on('orphan', (peer) => asked.push(peer));
    gossip.start();
    assert.equal(await validators.get(names.blockTopic)!('cheap', cheap[0]!.bytes), 'ignore');
    assert.equal(await validators.get(names.compactBlockTopic)!('cheap', encodeCompactBlock(cheap[0]!)), 'ignore');
    assert.equal(chain.tip.height, 0);
    assert.deepEqual(asked, ['cheap', 'cheap']);
    await db.close();
  });

  it('a snapshot join takes no pivot from a chain whose headers end below the checkpoint its peer claimed to pass', async () => {
    // The state installed at a pivot can never be left (no fork below it): one on the cheap chain
    // would be a capture for good.
    const { db, chain, cheap, now } = await setup((c) => at(c.honest, 100));
    const claimed: Status = { genesis: db.genesis.header.hash, height: 100, tipHash: cheap.at(-1)!.header.hash, totalWork: workOf(db.genesis, cheap), prunedHeight: 0 };
    const join = new SnapshotJoin({
      request: async (_peer, _protocol, body) => {
        const { from, count } = decodeGetHeaderRange(body);
        return encodeHeaders(cheap.slice(from - 1, from - 1 + count).map((b) => b.header));
      },
      requestMany: async () => [],
      names: networkNames(db.genesis.header.hash),
      chain,
      peers: new PeerManager(() => now),
      clock: () => now,
      env: { monotonic: () => 0 },
      interval: 20,
      candidates: () => [{ peer: 'cheap-liar', status: claimed }],
      onHeaders: () => {},
      log: () => {},
    });
    await assert.rejects(join.run({ peer: 'cheap-liar', status: claimed }), (err: unknown) => err instanceof PeerFault && err.score === LIE && /below the checkpoint/.test(err.message));
    assert.equal(await db.join.state(), undefined, 'no pivot chosen');
    assert.equal(chain.tip.height, 0);
    await db.close();
  });
});
