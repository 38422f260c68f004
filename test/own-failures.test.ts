/**
 * A failure on our side (a bug's TypeError, a store that fails) while serving, validating gossip
 * or syncing costs no peer, and so was told to nobody: the stream was reset, the message ignored,
 * the peer dropped from the round, and the node quietly stopped keeping up. Each is logged, with
 * its stack, and still charged to nobody; what a peer did wrong is charged as before. An RPC
 * method's bug answered the client its message, and left the node's log without its stack.
 * Then, where a throw of ours was plausible: a peer's requests at the edges, on every protocol.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { EventEmitter } from 'node:events';
import { chainPeerTransport } from './helpers/chain-peer.ts';
import { toHex } from '../ledger/bytes.ts';
import { DecodeError } from '../ledger/errors.ts';
import { MemoryDisk } from '../ledger/kv-memory.ts';
import { ChainDB } from '../ledger/chaindb.ts';
import { Mempool } from '../ledger/mempool.ts';
import type { Block } from '../ledger/block.ts';
import { Chain } from '../consensus/chain.ts';
import { blockWork } from '../consensus/pow.ts';
import { Gossip } from '../node/gossip.ts';
import { NetworkGuard } from '../node/guard.ts';
import { PeerManager } from '../node/peers.ts';
import { networkNames } from '../node/protocols.ts';
import { realEnv } from '../node/env.ts';
import { Sync } from '../node/sync.ts';
import { TxSignatureVerifier } from '../node/tx-signatures.ts';
import { InlineVerifier } from '../node/inline-verifier.ts';
import type { Serve } from '../node/serving.ts';
import type { GossipValidator, Responder, Transport } from '../node/transport.ts';
import { encodeStatus, type Status } from '../node/wire.ts';
import { RPC_ENDPOINT_FILE, RPC_ERRORS, type RpcEndpointFile } from '../node/rpc-types.ts';
import { mineOn, networkParams, startNode, stopAll, waitFor } from './helpers/network.ts';
import { answer, ask, specHost } from './helpers/spec-peer.ts';
import { encodeGetBlocks, encodeGetHeaderRange, encodeGetHeaders, encodeTxBatch } from '../node/wire.ts';
import { encodeCompactBlock, encodeGetBlockTxs } from '../node/compact.ts';
import { encodeGetProofs, MAX_PROOF_ADDRESSES } from '../node/light/wire.ts';
import { encodeGetSnapshotChunk } from '../node/snapshot-wire.ts';
import { positionId } from '../ledger/smt.ts';
import { transfer } from './helpers/fixtures.ts';
import { testKey, testParams } from './helpers/fixtures.ts';
import { asParent, mineChain } from './helpers/mining.ts';

interface Logged {
  readonly level: string;
  readonly message: string;
  readonly fields?: Record<string, unknown>;
}

/** A chain at genesis, a peer's 5 blocks on it, and what each part logs. */
async function setup() {
  const params = testParams();
  const now = params.timestamp + 1_000_000;
  const db = await ChainDB.open(new MemoryDisk().open(), params);
  const chain = await Chain.open(db, { clock: () => now });
  const blocks = mineChain(params, asParent(db.genesis), 5, { miner: testKey(1).address });
  const names = networkNames(db.genesis.header.hash);
  const peers = new PeerManager(() => now);
  const logged: Logged[] = [];
  const log = (level: string, message: string, fields?: Record<string, unknown>) => void logged.push({ level, message, fields });
  return { params, now, db, chain, blocks, names, peers, logged, log };
}

/** Makes every import fail as a bug would, before it touches anything. */
function importsThrowTypeError(chain: Chain): void {
  const fail = async () => {
    throw new TypeError("Cannot read properties of undefined (reading 'height')");
  };
  chain.processBlock = fail;
  chain.processSaneBlock = fail;
}

describe('failures on our side are logged, and charged to no peer', function () {
  this.timeout(30_000);

  it('sync: an import that throws a TypeError is a warning with its stack; the peer that served the chain is not penalised', async () => {
    const { db, chain, blocks, names, peers, logged, log, now } = await setup();
    const status: Status = { genesis: db.genesis.header.hash, height: blocks.length, tipHash: blocks.at(-1)!.header.hash, totalWork: blocks.reduce((sum, b) => sum + blockWork(b.header.target), chain.tip.totalWork), prunedHeight: 0 };
    const transport = chainPeerTransport('honest', names, status, blocks);
    const sync = new Sync({ transport, env: realEnv, names, chain, peers, clock: () => now, serve: (async () => {}) as unknown as Serve, log });
    importsThrowTypeError(chain);
    sync.statuses.set('honest', { peer: 'honest', status });
    await sync.requestSync();
    await sync.idle();
    const warning = logged.find((l) => l.level === 'warn' && /failed on our side/.test(l.message));
    assert.ok(warning, `a warning, logged: ${JSON.stringify(logged)}`);
    assert.match(warning.message, /^sync from honest failed on our side, not the peer's: Cannot read properties of undefined/);
    assert.equal(warning.fields?.['peer'], 'honest');
    assert.match(String(warning.fields?.['error']), /^TypeError: Cannot read properties[^]*\n\s+at /, 'with its stack');
    assert.equal(peers.score('honest'), 0, 'no penalty');
    assert.equal(chain.tip.height, 0);
    await db.close();
  });

  it('serving: a responder that throws a TypeError is a warning with its stack; garbage from the asker is not logged as ours', async () => {
    const { peers, logged, log } = await setup();
    const responders = new Map<string, Responder>();
    const transport = Object.assign(new EventEmitter(), {
      async handle(protocol: string, respond: Responder) {
        responders.set(protocol, respond);
      },
    }) as unknown as Transport;
    const guard = new NetworkGuard({ env: realEnv, peers, log });
    guard.attach(transport);
    const options = { timeoutMs: 1000, maxBytes: 100, onBadRequest: (peer: string, err: unknown) => peers.badRequest(peer, err) };
    await guard.handle('status', 'bug', async () => {
      throw new TypeError("Cannot read properties of undefined (reading 'tip')");
    }, options);
    await guard.handle('headers', 'garbage', async () => {
      throw new DecodeError('DECODE_TRUNCATED', 'getHeaders: truncated');
    }, options);
    await assert.rejects(responders.get('bug')!(new Uint8Array(0), 'asker'), TypeError);
    const warnings = logged.filter((l) => l.level === 'warn');
    assert.equal(warnings.length, 1, JSON.stringify(logged));
    assert.equal(warnings[0]!.message, "answering status failed on our side, not the peer's: Cannot read properties of undefined (reading 'tip')");
    assert.equal(warnings[0]!.fields?.['peer'], 'asker');
    assert.match(String(warnings[0]!.fields?.['error']), /^TypeError: [^]*\n\s+at /);
    await assert.rejects(responders.get('garbage')!(new Uint8Array(0), 'asker'), DecodeError);
    assert.equal(logged.filter((l) => l.level === 'warn').length, 1, 'the asker\'s garbage is its own business, charged by the transport');
  });

  it('gossip: a block whose import throws a TypeError is ignored, a warning with its stack; the forwarder is not penalised', async () => {
    const { params, db, chain, blocks, names, peers, logged, log, now } = await setup();
    const validators = new Map<string, GossipValidator>();
    const transport = Object.assign(new EventEmitter(), {
      subscribe(topic: string, validate: GossipValidator) {
        validators.set(topic, validate);
      },
    }) as unknown as Transport;
    const signatures = new TxSignatureVerifier(new InlineVerifier());
    const mempool = new Mempool(db, params, undefined, (tx) => signatures.checkTx(tx));
    const gossip = new Gossip({ transport, env: realEnv, names, chain, mempool, peers, clock: () => now, signatures, log });
    gossip.start();
    importsThrowTypeError(chain);
    const block: Block = blocks[0]!;
    assert.equal(await validators.get(names.blockTopic)!('forwarder', block.bytes), 'ignore');
    const warnings = logged.filter((l) => l.level === 'warn');
    assert.equal(warnings.length, 1, JSON.stringify(logged));
    assert.match(warnings[0]!.message, /^gossip from forwarder failed on our side, not the peer's: Cannot read properties of undefined/);
    assert.match(String(warnings[0]!.fields?.['error']), /^TypeError: [^]*\n\s+at /);
    assert.equal(peers.score('forwarder'), 0);
    // What the peer did wrong is still its own: garbage is rejected, charged, and not logged as ours.
    assert.equal(await validators.get(names.blockTopic)!('liar', new Uint8Array([0, 1, 2])), 'reject');
    assert.ok(peers.isBanned('liar'));
    assert.equal(logged.filter((l) => l.level === 'warn').length, 1);
    assert.equal(toHex(chain.tip.hash), toHex(db.genesis.header.hash));
    await db.close();
  });

  it('gossip: a compact block forwarded before its import (BIP 152), whose import then throws a TypeError, is a warning with its stack; not its miner\'s fault', async () => {
    const { params, db, chain, blocks, names, peers, logged, log, now } = await setup();
    const validators = new Map<string, GossipValidator>();
    const transport = Object.assign(new EventEmitter(), {
      subscribe(topic: string, validate: GossipValidator) {
        validators.set(topic, validate);
      },
      publish: async () => 0,
    }) as unknown as Transport;
    const signatures = new TxSignatureVerifier(new InlineVerifier());
    const mempool = new Mempool(db, params, undefined, (tx) => signatures.checkTx(tx));
    const gossip = new Gossip({ transport, env: realEnv, names, chain, mempool, peers, clock: () => now, signatures, log });
    const failed: unknown[] = [];
    gossip.on('failed', (_peer, err) => failed.push(err));
    gossip.start();
    importsThrowTypeError(chain);
    // On our tip, rebuilt from nothing (no transactions): forwarded at once, imported behind the verdict.
    assert.equal(await validators.get(names.compactBlockTopic)!('forwarder', encodeCompactBlock(blocks[0]!)), 'accept');
    await waitFor(() => logged.some((l) => l.level === 'warn'), 10_000, 'the failed import to be told');
    const warnings = logged.filter((l) => l.level === 'warn');
    assert.equal(warnings.length, 1, JSON.stringify(logged));
    assert.match(warnings[0]!.message, /^gossip from forwarder failed on our side, not the peer's: Cannot read properties of undefined/);
    assert.match(String(warnings[0]!.fields?.['error']), /^TypeError: [^]*\n\s+at /);
    assert.deepEqual(failed, [], 'no block failed its import: our code did');
    assert.equal(peers.score('forwarder'), 0);
    await db.close();
  });

  it('rpc: a method that throws a TypeError answers its message (INTERNAL_ERROR) and the node logs it with its stack; a refusal is not logged', async () => {
    const t = await startNode(networkParams(), [], { verifyThreads: 1, rpc: { port: 0 } });
    try {
      const logged: Logged[] = [];
      t.node.on('log', (level, message, fields) => logged.push({ level, message, fields }));
      const endpoint = JSON.parse(readFileSync(join(t.config.datadir, RPC_ENDPOINT_FILE), 'utf8')) as RpcEndpointFile;
      const call = async (method: string, params: Record<string, unknown>) => {
        const response = await fetch(endpoint.url, {
          method: 'POST',
          headers: { authorization: `Bearer ${endpoint.token}`, 'content-type': 'application/json' },
          body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
          signal: AbortSignal.timeout(20_000),
        });
        return (await response.json()) as { error?: { code: number; message: string } };
      };
      t.node.mempool.entries = () => {
        throw new TypeError("Cannot read properties of undefined (reading 'tx')");
      };
      assert.deepEqual((await call('getMempool', {})).error, { code: RPC_ERRORS.INTERNAL_ERROR, message: "Cannot read properties of undefined (reading 'tx')" });
      assert.equal((await call('getTransaction', { id: '00'.repeat(32) })).error?.code, RPC_ERRORS.NOT_FOUND);
      const warnings = logged.filter((l) => l.level === 'warn');
      assert.equal(warnings.length, 1, JSON.stringify(logged));
      assert.equal(warnings[0]!.message, "rpc: getMempool failed on our side: Cannot read properties of undefined (reading 'tx')");
      assert.match(String(warnings[0]!.fields?.['error']), /^TypeError: [^]*\n\s+at /);
    } finally {
      await stopAll([t]);
    }
  });
});

describe("a peer's requests at the edges of what is well formed, on every protocol", function () {
  this.timeout(60_000);

  it('are answered (or answered busy): none fails on our side, none costs the asker', async () => {
    // Where a throw of ours is plausible: past the tip, before genesis, unknown blocks, the most a
    // request may carry. A failure of ours is logged (see above), so this is what would show one.
    const t = await startNode(networkParams(), [], { verifyThreads: 1 });
    const host = await specHost();
    try {
      const logged: Logged[] = [];
      t.node.on('log', (level, message, fields) => logged.push({ level, message, fields }));
      const blocks = await mineOn(t, 3);
      // A peer of the network: the node asks its status on connection (one that has none is foreign, and banned).
      await answer(host, t.node.names.status, () => encodeStatus(t.node.sync.ourStatus()));
      const tip = blocks.at(-1)!;
      const genesis = t.node.db.genesis;
      const unknown = new Uint8Array(32).fill(7);
      const address = testKey(1).address;
      const ns = (name: keyof typeof t.node.names) => t.node.names[name];
      const requests: [string, Uint8Array, boolean][] = [
        [ns('status'), new Uint8Array(0), false],
        [ns('headers'), encodeGetHeaders({ locator: [unknown], max: 2000 }), false],
        [ns('headers'), encodeGetHeaders({ locator: Array.from({ length: 64 }, (_, i) => new Uint8Array(32).fill(i)), max: 1 }), false],
        [ns('headers'), encodeGetHeaders({ locator: [tip.header.hash, genesis.header.hash], max: 2000 }), false],
        [ns('headerRange'), encodeGetHeaderRange(0, 2000), false],
        [ns('headerRange'), encodeGetHeaderRange(tip.header.height, 2000), false],
        [ns('headerRange'), encodeGetHeaderRange(tip.header.height + 1, 1), false],
        [ns('headerRange'), encodeGetHeaderRange(0xffff_ffff, 2000), false],
        [ns('blocks'), encodeGetBlocks([unknown]), true],
        [ns('blocks'), encodeGetBlocks([genesis.header.hash, tip.header.hash, unknown]), true],
        [ns('blocks'), encodeGetBlocks(Array.from({ length: 64 }, () => unknown)), true],
        [ns('blockTxs'), encodeGetBlockTxs(unknown, [0]), false],
        [ns('blockTxs'), encodeGetBlockTxs(tip.header.hash, [0, 1, 99_999]), false],
        [ns('blockTxs'), encodeGetBlockTxs(genesis.header.hash, [0]), false],
        [ns('txPush'), encodeTxBatch([transfer(testKey(50), address, 1n, 0n)]), false],
        [ns('proofs'), encodeGetProofs(unknown, [address]), false],
        [ns('proofs'), encodeGetProofs(genesis.header.hash, [address]), false],
        [ns('proofs'), encodeGetProofs(tip.header.hash, Array.from({ length: MAX_PROOF_ADDRESSES }, (_, i) => new Uint8Array(20).fill(i))), false],
        [ns('snapshot'), encodeGetSnapshotChunk({ height: 0, hash: genesis.header.hash, position: positionId(new Uint8Array(32), 0) }), false],
        [ns('snapshot'), encodeGetSnapshotChunk({ height: 0xffff_ffff, hash: unknown, position: positionId(new Uint8Array(32).fill(0xff), 16) }), false],
      ];
      for (const [protocol, request, many] of requests) {
        const frames = await ask(host, t.addr, protocol, request, { many });
        assert.ok(frames.length > 0 || many, `${protocol}: an answer`);
      }
      assert.deepEqual(logged.filter((l) => /on our side/.test(l.message)), []);
      assert.equal(t.node.peers.score(host.peerId.toString()), 0, JSON.stringify(logged.filter((l) => /penalised/.test(l.message))));
    } finally {
      await host.stop();
      await stopAll([t]);
    }
  });
});
