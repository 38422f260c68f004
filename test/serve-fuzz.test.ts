/**
 * What a node serves its peers, fuzzed at the responders: requests that decode (the wire fuzz,
 * test/wire-fuzz.test.ts, covers those that do not) but name anything: hashes of blocks main,
 * side or unknown, heights past the tip and at the u32 limit, counts at and past the caps,
 * positions of blocks with transactions and without, accounts that exist and that do not. Each is
 * answered with a message that decodes, or busy, or refused with a typed error: never a TypeError
 * or RangeError, which the transport takes for no offence and the asker gets no answer by.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { toHex } from '../ledger/bytes.ts';
import { CairnError } from '../ledger/errors.ts';
import { MemoryDisk } from '../ledger/kv-memory.ts';
import { ChainDB } from '../ledger/chaindb.ts';
import { decodeBlock, type Block } from '../ledger/block.ts';
import { Chain } from '../consensus/chain.ts';
import { PeerManager } from '../node/peers.ts';
import { networkNames } from '../node/protocols.ts';
import { realEnv } from '../node/env.ts';
import type { Serve } from '../node/serving.ts';
import { isBusy, type Responder } from '../node/transport.ts';
import { serveChain } from '../node/chain-server.ts';
import { encodeGetBlockTxs, serveBlockTxs } from '../node/compact.ts';
import { serveSnapshots } from '../node/snapshots.ts';
import { encodeGetSnapshotChunk, decodeSnapshotChunk } from '../node/snapshot-wire.ts';
import { serveLightClients } from '../node/light/serve.ts';
import { decodeProofs, encodeGetProofs } from '../node/light/wire.ts';
import { positionsAt } from '../ledger/smt-range.ts';
import { decodeHeaders, decodeStatus, decodeTxBatch, encodeGetBlocks, encodeGetHeaderRange, encodeGetHeaders, type Status } from '../node/wire.ts';
import { FUNDED_KEYS, testKey, testParams, transfer } from './helpers/fixtures.ts';
import { FUZZ_SEED as SEED, fuzzRuns as runs } from './helpers/fuzz.ts';
import { asParent, mineChain, mineChild } from './helpers/mining.ts';


describe('a node serving its peers, fuzzed at its responders', function () {
  this.timeout(120_000);

  it('every request that decodes is answered with what decodes, busy, or a typed refusal', async () => {
    const params = testParams();
    const db = await ChainDB.open(new MemoryDisk().open(), params);
    // A window of 4: most of the chain is below it, as on a long chain.
    const chain = await Chain.open(db, { clock: () => Date.now(), window: 4 });
    const [alice, bob] = FUNDED_KEYS as [(typeof FUNDED_KEYS)[0], (typeof FUNDED_KEYS)[0]];
    const main: Block[] = [...mineChain(params, asParent(db.genesis), 3, { miner: testKey(1).address })];
    for (let i = 0; i < 4; i++) {
      main.push(mineChild(params, asParent(main.at(-1)!), [transfer(alice, bob.address, 10n, BigInt(i), 1n), transfer(bob, testKey(7).address, 3n, BigInt(i), 1n)], { miner: testKey(1).address }));
    }
    main.push(...mineChain(params, asParent(main.at(-1)!), 6, { miner: testKey(1).address }));
    const side = mineChain(params, asParent(main[8]!), 2, { miner: testKey(2).address });
    for (const b of main) assert.equal(await chain.processBlock(b), 'connected');
    for (const b of side) assert.equal(await chain.processBlock(b), 'side-branch');

    const names = networkNames(db.genesis.header.hash);
    const responders = new Map<string, Responder>();
    const serve = (async (name: string, _protocol: string, r: Responder) => void responders.set(name, r)) as unknown as Serve;
    const status = (): Status => ({ genesis: db.genesis.header.hash, height: chain.tip.height, tipHash: chain.tip.hash, totalWork: chain.tip.totalWork, prunedHeight: 0 });
    const peers = new PeerManager(() => Date.now());
    await serveChain({ serve, names, chain, peers, status, announced: () => undefined });
    await serveBlockTxs(serve, names, async (hash) => (await db.getBlocksBytes([hash]))[0], () => {});
    await serveSnapshots(chain, serve, names, () => {});
    await serveLightClients(chain, serve, names, realEnv, () => {});
    assert.deepEqual([...responders.keys()].sort(), ['blockTxs', 'blocks', 'headerRange', 'headers', 'proofs', 'snapshot', 'status']);

    const hashes = [db.genesis.header.hash, ...main.map((b) => b.header.hash), ...side.map((b) => b.header.hash)];
    const arbHash = fc.oneof(fc.constantFrom(...hashes), fc.uint8Array({ minLength: 32, maxLength: 32 }));
    const arbHeight = fc.oneof(fc.integer({ min: 0, max: 16 }), fc.constantFrom(2 ** 31, 2 ** 32 - 2000, 2 ** 32 - 1), fc.integer({ min: 0, max: 2 ** 32 - 1 }));
    const arbAddress = fc.oneof(fc.constantFrom(alice.address, bob.address, testKey(7).address, testKey(1).address), fc.uint8Array({ minLength: 20, maxLength: 20 }));
    const arbIndexes = fc.uniqueArray(fc.oneof(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 2 ** 32 - 1 })), { maxLength: 8 }).map((xs) => xs.sort((a, b) => a - b));
    type Ask = { name: string; body: Uint8Array; check: (answer: Uint8Array | Uint8Array[]) => void };
    const one = (a: Uint8Array | Uint8Array[]) => (assert.ok(!Array.isArray(a), 'one frame'), a as Uint8Array);
    const arbAsk: fc.Arbitrary<Ask> = fc.oneof(
      fc.constant({ name: 'status', body: new Uint8Array(0), check: (a: Uint8Array | Uint8Array[]) => void decodeStatus(one(a)) }),
      fc.tuple(fc.array(arbHash, { maxLength: 64 }), fc.integer({ min: 1, max: 2000 })).map(([locator, max]) => ({ name: 'headers', body: encodeGetHeaders({ locator, max }), check: (a: Uint8Array | Uint8Array[]) => assert.ok(decodeHeaders(one(a)).length <= max) })),
      fc.tuple(arbHeight, fc.integer({ min: 1, max: 2000 })).map(([from, count]) => ({ name: 'headerRange', body: encodeGetHeaderRange(from, count), check: (a: Uint8Array | Uint8Array[]) => assert.ok(decodeHeaders(one(a)).length <= count) })),
      fc.array(arbHash, { maxLength: 64 }).map((asked) => ({
        name: 'blocks',
        body: encodeGetBlocks(asked),
        check: (a: Uint8Array | Uint8Array[]) => {
          const frames = Array.isArray(a) ? a : [a];
          assert.ok(frames.length <= asked.length);
          frames.forEach((f, i) => assert.equal(toHex(decodeBlock(f).header.hash), toHex(asked[i]!)));
        },
      })),
      fc.tuple(arbHash, arbIndexes).map(([hash, indexes]) => ({ name: 'blockTxs', body: encodeGetBlockTxs(hash, indexes), check: (a: Uint8Array | Uint8Array[]) => assert.ok(decodeTxBatch(one(a)).length <= indexes.length) })),
      fc.tuple(arbHeight, arbHash, fc.integer({ min: 0, max: 8 }), fc.nat()).map(([height, hash, depth, i]) => {
        const positions = positionsAt(depth);
        return { name: 'snapshot', body: encodeGetSnapshotChunk({ height, hash, position: positions[i % positions.length]! }), check: (a: Uint8Array | Uint8Array[]) => void decodeSnapshotChunk(one(a)) };
      }),
      fc.tuple(arbHash, fc.array(arbAddress, { minLength: 1, maxLength: 64 })).map(([hash, addresses]) => ({ name: 'proofs', body: encodeGetProofs(hash, addresses), check: (a: Uint8Array | Uint8Array[]) => void decodeProofs(one(a), addresses.length) })),
    );
    const outcomes = new Map<string, number>();
    for (const ask of fc.sample(arbAsk, { seed: SEED, numRuns: runs(600) })) {
      let answer: Awaited<ReturnType<Responder>>;
      try {
        answer = await responders.get(ask.name)!(ask.body, 'asker');
      } catch (err) {
        assert.ok(err instanceof CairnError, `${ask.name} ${toHex(ask.body)}: ${String(err)}`);
        outcomes.set(`${ask.name} refused`, (outcomes.get(`${ask.name} refused`) ?? 0) + 1);
        continue;
      }
      if (isBusy(answer)) continue;
      ask.check(answer);
      outcomes.set(ask.name, (outcomes.get(ask.name) ?? 0) + 1);
    }
    if (process.env.CAIRN_FUZZ_SCALE) console.log(`      ${JSON.stringify([...outcomes].sort())}`);
    for (const name of responders.keys()) assert.ok(outcomes.get(name), `${name} answered: ${JSON.stringify([...outcomes])}`);
    await db.close();
  });
});
