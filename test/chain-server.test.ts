/**
 * The serving half of sync (node/chain-server.ts, answerHeaderRange in node/header-sync.ts):
 * what a node tells the peers that ask for its headers, which they hold against its status.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { toHex } from '../ledger/bytes.ts';
import { MemoryDisk } from '../ledger/kv-memory.ts';
import { kvOver } from './helpers/kv.ts';
import { layout } from '../ledger/layout.ts';
import { ChainDB } from '../ledger/chaindb.ts';
import { Chain } from '../consensus/chain.ts';
import { Sync } from '../node/sync.ts';
import { PeerManager } from '../node/peers.ts';
import { networkNames } from '../node/protocols.ts';
import { realEnv } from '../node/env.ts';
import type { Serve } from '../node/serving.ts';
import type { Responder, Transport } from '../node/transport.ts';
import { serveChain } from '../node/chain-server.ts';
import { answerHeaderRange } from '../node/header-sync.ts';
import { decodeGetBlocks, decodeHeaders, encodeGetHeaders, encodeStatus, type Status } from '../node/wire.ts';
import { afterTurns, testKey, testParams } from './helpers/fixtures.ts';
import { asParent, mineChain } from './helpers/mining.ts';

describe('a node mid-way through a reorganisation, serving headers', function () {
  this.timeout(60_000);
  // From a review: a node answered header requests from its main chain as it stood, and mid-way
  // through a reorganisation that ends at the fork point (or part-way up the new branch), below
  // the work its status had just claimed. The asker took the short answer for the whole chain
  // and banned an honest node as a liar (a light client too: the same check).

  /** A node on 10 blocks whose reorganisation to a heavier branch forking at 8 is held where it reads the branch's first block. */
  async function reorganisingServer() {
    const params = testParams();
    const now = params.timestamp + 1_000_000;
    const inner = new MemoryDisk().open();
    let heldKey: string | undefined;
    let release: (() => void) | undefined;
    const kv = kvOver(inner, {
      async get(key) {
        if (toHex(key) === heldKey) {
          heldKey = undefined;
          await new Promise<void>((resolve) => (release = resolve));
        }
        return inner.get(key);
      },
    });
    const db = await ChainDB.open(kv, params);
    const chain = await Chain.open(db, { clock: () => now });
    const genesis = db.genesis;
    const main = mineChain(params, asParent(genesis), 10, { miner: testKey(1).address });
    const branch = mineChain(params, asParent(main[7]!), 3, { miner: testKey(2).address }); // heights 9 to 11: more work
    for (const b of main) assert.equal(await chain.processBlock(b), 'connected');
    for (const b of branch.slice(0, 2)) assert.equal(await chain.processBlock(b), 'side-branch');
    const status: Status = { genesis: genesis.header.hash, height: chain.tip.height, tipHash: chain.tip.hash, totalWork: chain.tip.totalWork, prunedHeight: 0 };
    heldKey = toHex(layout.block(branch[0]!.header.hash));
    const reorganised = chain.processBlock(branch[2]!);
    for (let turn = 0; release === undefined; turn++) {
      assert.ok(turn < 1000, 'the reorganisation reached the held read');
      await afterTurns(1);
    }
    assert.equal(chain.tip.height, 8, 'mid-way: the main chain ends at the fork point');
    return { params, now, db, chain, branch, status, reorganised, release: release! };
  }

  /** Waits until `asked()` says the request was made. */
  async function untilAsked(asked: () => boolean): Promise<void> {
    for (let turn = 0; !asked(); turn++) {
      assert.ok(turn < 1000, 'the request was made');
      await afterTurns(1);
    }
  }

  it('a syncing node does not ban it: header ranges are answered between its imports', async () => {
    const server = await reorganisingServer();
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
    const server = await reorganisingServer();
    const names = networkNames(server.db.genesis.header.hash);
    let respond: Responder | undefined;
    const serve = (async (name: string, _protocol: string, r: Responder) => void (name === 'headers' && (respond = r))) as unknown as Serve;
    await serveChain({ serve, names, chain: server.chain, peers: new PeerManager(() => server.now), status: () => server.status, announcedTip: () => undefined });
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
