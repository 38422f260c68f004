/**
 * Pruning (node/pruner.ts, ChainHistory.prune): bodies, undo data and the transaction index of
 * blocks deeper than `keep` go, in the background; headers and state stay; the deepest
 * reorganisation the node follows still finds everything it needs; a kill -9 at any moment
 * leaves a node that reopens and finishes.
 */
import { keptSnapshotHeights, DEFAULT_SNAPSHOT_INTERVAL } from '../node/snapshots.ts';
import { DEFAULT_REORG_DEPTH } from '../consensus/chain-index.ts';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { ChainDB } from '../ledger/chaindb.ts';
import { auditChainDB, stateDigest } from '../ledger/audit.ts';
import { toHex } from '../ledger/bytes.ts';
import { CairnError } from '../ledger/errors.ts';
import { MemoryDisk } from '../ledger/kv-memory.ts';
import type { Block } from '../ledger/block.ts';
import { parseGenesis } from '../ledger/genesis.ts';
import { Chain } from '../consensus/chain.ts';
import { realEnv } from '../node/env.ts';
import { Pruner } from '../node/pruner.ts';
import { rpcHandlers } from '../node/rpc-methods.ts';
import { RpcError } from '../node/rpc-params.ts';
import { RPC_ERRORS } from '../node/rpc-types.ts';
import { answerRest, RestError } from '../node/http/rest.ts';
import type { EventFeed } from '../node/http/events.ts';
import type { NodeView } from '../node/view.ts';
import { AddressIndex, addressIndexer } from '../ledger/address-index.ts';
import { encodeAddress } from '../ledger/keys.ts';
import { RpcClient } from '../cli/rpc-client.ts';
import { generateDatadir } from '../cli/cmd-generate.ts';
import { decodeGetBlocks } from '../node/wire.ts';
import { Checker } from '../sim/invariants.ts';
import type { SimTransport } from '../sim/network.ts';
import { Random } from '../sim/random.ts';
import { scenario, simParams } from '../sim/scenario.ts';
import { World } from '../sim/world.ts';
import { CAIRN_BIN, exited, stopProcess, track, waitFor } from './helpers/cluster.ts';
import { FUNDED_KEYS, tempDir, testKey, testParams, transfer } from './helpers/fixtures.ts';
import { asParent, mineChain, mineChild } from './helpers/mining.ts';

const params = testParams();
const DEPTH = 8;

describe('pruning', function () {
  this.timeout(120_000);

  /** A REST answer, or the error's status, code and message. */
  async function restAnswer(view: NodeView, path: string) {
    try {
      return { status: 200, answer: await answerRest(view, undefined as unknown as EventFeed, 'GET', path, new URLSearchParams(), undefined) };
    } catch (err) {
      if (err instanceof RestError) return { status: err.status, code: err.code, message: err.message };
      throw err;
    }
  }

  async function openChain(disk: MemoryDisk) {
    const db = await ChainDB.open(disk.open(), params);
    const chain = await Chain.open(db, { clock: () => params.timestamp + 10_000_000, reorgDepth: DEPTH, window: 4 });
    return { db, chain };
  }

  it('keeps what the deepest reorganisation it follows needs, and nothing deeper', async () => {
    const disk = new MemoryDisk();
    const { db, chain } = await openChain(disk);
    const twin = await openChain(new MemoryDisk()); // follows the same blocks, never pruned
    assert.throws(() => new Pruner(chain, realEnv, DEPTH - 1), RangeError, 'keeping less than the reorg depth is refused');
    const pruner = new Pruner(chain, realEnv, DEPTH);
    pruner.start();
    const blocks: Block[] = [];
    let parent = asParent(db.genesis);
    for (let h = 1; h <= 60; h++) {
      const txs = h % 5 === 0 ? [transfer(FUNDED_KEYS[0]!, testKey(80 + h).address, 1n, BigInt(h / 5 - 1))] : [];
      const b = mineChild(params, parent, txs, { miner: testKey(70).address });
      blocks.push(b);
      parent = asParent(b);
      assert.equal(await chain.processBlock(b), 'connected');
      assert.equal(await twin.chain.processBlock(b), 'connected');
    }
    await pruner.idle();
    // More than DEPTH below the tip: the block DEPTH below it is the deepest fork point, kept whole.
    assert.equal(db.history.prunedHeight, 60 - DEPTH - 1);
    for (const b of blocks) {
      const { height, hash } = b.header;
      const pruned = height < 60 - DEPTH;
      assert.equal((await db.getBlock(hash)) === undefined, pruned, `body of ${height}`);
      assert.equal((await db.getUndo(hash)) === undefined, pruned, `undo data of ${height}`);
      for (const tx of b.txs) assert.equal((await db.getTxLocation(tx.id)) === undefined, pruned, `transaction index of ${height}`);
    }
    assert.deepEqual((await chain.byHeight.headers(1, 60)).map((h) => toHex(h.hash)), blocks.map((b) => toHex(b.header.hash)), 'every header stays');
    const report = await auditChainDB(db);
    assert.equal(report.replayed, false);
    assert.equal(report.digest, await stateDigest(twin.db));

    // The deepest reorganisation it follows: a branch off the fork floor, DEPTH blocks undone.
    const floor = chain.forkFloor;
    const branch = mineChain(params, asParent(blocks[floor - 1]!), DEPTH + 1, { miner: testKey(71).address });
    const undone: number[] = [];
    chain.on('tip', (e) => undone.push(e.disconnected.length));
    for (const b of branch) {
      await chain.processBlock(b);
      await twin.chain.processBlock(b);
    }
    assert.deepEqual(undone, [DEPTH]);
    assert.equal(toHex(chain.tip.hash), toHex(branch.at(-1)!.header.hash));
    await pruner.idle();
    assert.equal(await stateDigest(db), await stateDigest(twin.db), 'the same state as a node that pruned nothing');
    // One deeper is refused, as on any node.
    const deeper = mineChild(params, asParent(blocks[chain.forkFloor - 2]!), [], { miner: testKey(72).address });
    await assert.rejects(chain.processBlock(deeper), (err: unknown) => err instanceof CairnError && err.code === 'BLOCK_FORK_TOO_DEEP');
    await auditChainDB(db);
    await pruner.stop();
    await db.close();
    await twin.db.close();
  });

  it('after a reorganisation that lowers the tip, refuses a fork below what it pruned, and the store stays whole', async () => {
    // Found by a review: the fork floor followed the tip, and pruning the highest tip less the
    // reorg depth. Under ASERT a branch can carry more work in fewer blocks: after a reorganisation
    // to one, a fork that looked permitted had to undo pruned blocks, failed half-way, and left a
    // tip pointer to a pruned block that no open could read.
    const disk = new MemoryDisk();
    const { db, chain } = await openChain(disk);
    const pruner = new Pruner(chain, realEnv, DEPTH);
    pruner.start();
    const main = mineChain(params, asParent(db.genesis), 28, { miner: testKey(70).address });
    for (const b of main) assert.equal(await chain.processBlock(b), 'connected');
    // Four slow blocks: far behind schedule, their targets ease to the easiest, little work each.
    let parent = asParent(main.at(-1)!);
    for (let i = 0; i < 4; i++) {
      const b = mineChild(params, parent, [], { miner: testKey(70).address, spacing: 6_000 });
      assert.equal(await chain.processBlock(b), 'connected');
      parent = asParent(b);
    }
    await pruner.idle();
    assert.equal(chain.tip.height, 32);
    const pruned = db.history.prunedHeight;
    assert.equal(pruned, 32 - DEPTH - 1);
    // Three blocks on schedule off 28 outweigh them: the tip goes down to 31.
    const side = mineChain(params, asParent(main.at(-1)!), 3, { miner: testKey(71).address });
    for (const b of side) await chain.processBlock(b);
    assert.equal(toHex(chain.tip.hash), toHex(side.at(-1)!.header.hash));
    assert.ok(chain.tip.height - DEPTH <= pruned, 'the reorg depth alone would now reach a pruned block');
    // Nor at the pruned height itself: the fork point becomes the tip on the way to the branch, and
    // a kill there would leave a tip whose body is gone (test/prune-reorg-crash.test.ts).
    assert.equal(chain.forkFloor, pruned + 1);
    const below = mineChild(params, asParent(main[pruned - 1]!), [], { miner: testKey(72).address });
    await assert.rejects(chain.processBlock(below), (err: unknown) => err instanceof CairnError && err.code === 'BLOCK_FORK_TOO_DEEP');
    // A branch off the floor itself undoes only what is kept, and wins.
    const branch = mineChain(params, asParent(main[pruned]!), DEPTH + 2, { miner: testKey(72).address });
    for (const b of branch) await chain.processBlock(b);
    assert.equal(toHex(chain.tip.hash), toHex(branch.at(-1)!.header.hash));
    await pruner.stop();
    await db.close();
    const reopened = await ChainDB.open(disk.open(), params);
    assert.equal(toHex((await reopened.storedTip()).hash), toHex(branch.at(-1)!.header.hash));
    await auditChainDB(reopened);
    await reopened.close();
  });

  it('never prunes from a tip a reorganisation passes through: a longer branch that fails part way leaves the old chain whole', async () => {
    // Found by a review: the pruner read the tip between chunks, outside the import lock. A
    // reorganisation connects its branch a block at a time; a branch longer than the chain lifted
    // the tip above it mid-way, the pruner deleted what the old chain needed, and when a later
    // block of the branch failed and fork choice went back, the store no longer opened.
    const disk = new MemoryDisk();
    // I/O that completes on a later turn, as LevelDB's does: the pruner can run between a branch's blocks.
    const io = () => disk.open((complete) => setImmediate(complete), (answer) => setImmediate(() => answer(false)));
    const db = await ChainDB.open(io(), params);
    const chain = await Chain.open(db, { clock: () => params.timestamp + 100_000_000, reorgDepth: DEPTH, window: 4 });
    const pruner = new Pruner(chain, realEnv, DEPTH);
    const old = mineChain(params, asParent(db.genesis), 20, { miner: testKey(73).address });
    for (const b of old) await chain.processBlock(b);
    const fork = 20 - DEPTH; // at the floor
    // One block on schedule, one far behind it (the easiest target: little work), then more: a
    // branch longer than the old chain, whose work only its last block would tip, which breaks a rule.
    const branch = [mineChild(params, asParent(old[fork - 1]!), [], { miner: testKey(74).address })];
    branch.push(mineChild(params, asParent(branch[0]!), [], { timestamp: branch[0]!.header.timestamp + 50_000, miner: testKey(74).address }));
    // The old chain's DEPTH blocks above the fork weigh 2 each; the branch's 2, 2, then 1 each.
    while (branch.length < 2 * DEPTH - 2) branch.push(mineChild(params, asParent(branch.at(-1)!), [], { miner: testKey(74).address }));
    branch.push(mineChild(params, asParent(branch.at(-1)!), [], { miner: testKey(74).address, stateRoot: new Uint8Array(32) }));
    const outcomes: string[] = [];
    for (const [i, b] of branch.entries()) {
      if (i === branch.length - 1) pruner.start(); // a pruner catching up while the deciding block imports
      outcomes.push(await chain.processBlock(b).catch((err: CairnError) => err.code));
    }
    // The scenario happened: the branch was stored block by block, and only its last one, which
    // tipped the work and made fork choice connect the branch, failed.
    assert.deepEqual(outcomes, [...branch.slice(1).map(() => 'side-branch'), 'BLOCK_BAD_STATE_ROOT']);
    await pruner.idle();
    await pruner.stop();
    assert.ok(branch.at(-1)!.header.height > 20 + DEPTH / 2, 'the branch, connected, would have let the pruner past the fork');
    assert.equal(toHex(chain.tip.hash), toHex(old.at(-1)!.header.hash), 'back on the old chain');
    for (const b of old.slice(fork)) {
      assert.ok(await db.getBlock(b.header.hash), `old block ${b.header.height}'s body`);
      assert.ok(await db.getUndo(b.header.hash), `old block ${b.header.height}'s undo data`);
    }
    await db.close();
    const reopened = await ChainDB.open(io(), params);
    assert.equal(toHex((await reopened.storedTip()).hash), toHex(old.at(-1)!.header.hash));
    await auditChainDB(reopened);
    await reopened.close();
  });

  it('answers "pruned" for what it deleted: bodies by height, proofs whose undo data is gone, and address history from the index alone', async () => {
    const disk = new MemoryDisk();
    const db = await ChainDB.open(disk.open(), params, { indexers: [addressIndexer] });
    const addressIndex = await AddressIndex.open(db);
    const chain = await Chain.open(db, { clock: () => params.timestamp + 10_000_000, reorgDepth: DEPTH, window: 4 });
    const pruner = new Pruner(chain, realEnv, DEPTH);
    pruner.start();
    const carol = testKey(90).address;
    const blocks: Block[] = [];
    let parent = asParent(db.genesis);
    for (let h = 1; h <= 40; h++) {
      const txs = h % 5 === 0 ? [transfer(FUNDED_KEYS[0]!, carol, 1n, BigInt(h / 5 - 1))] : [];
      const b = mineChild(params, parent, txs, { miner: testKey(70).address });
      blocks.push(b);
      parent = asParent(b);
      assert.equal(await chain.processBlock(b), 'connected');
    }
    await pruner.idle();
    const mark = db.history.prunedHeight;
    assert.equal(mark, 40 - DEPTH - 1);
    const view = { params, chain, db, addressIndex, mempool: { get: () => undefined, has: () => false, involving: () => new Set(), settled: async () => {} } } as unknown as NodeView;
    const rpcFails = (call: Promise<unknown>, code: number, pattern: RegExp) =>
      assert.rejects(call, (err: unknown) => err instanceof RpcError && err.rpcCode === code && pattern.test(err.message));

    // RPC: a body by height below the mark is pruned (not "no such block"); above it, served.
    await rpcFails(rpcHandlers.getBlock(view, { height: 5 }), RPC_ERRORS.PRUNED, new RegExp(`block 5 is pruned: this node keeps bodies only above height ${mark} `));
    assert.equal((await rpcHandlers.getBlock(view, { height: 35 })).hash, toHex(blocks[34]!.header.hash));
    await rpcFails(rpcHandlers.getBlock(view, { hash: toHex(blocks[4]!.header.hash) }), RPC_ERRORS.NOT_FOUND, /this node prunes/);
    await rpcFails(rpcHandlers.getTransaction(view, { id: toHex(blocks[4]!.txs[0]!.id) }), RPC_ERRORS.NOT_FOUND, /no longer indexed here/);
    // Headers stay, far below the window.
    assert.equal((await rpcHandlers.getHeaders(view, { from: 0, count: 41 })).headers.length, 41);
    // A proof needs the undo data of every block above it: within what is kept, answered...
    const atMark = await rpcHandlers.getProof(view, { address: encodeAddress(carol), block: mark });
    assert.equal(atMark.account?.balance, String(mark / 5 | 0));
    // ...below it (still well within RPC_PROOF_DEPTH), refused as pruned, not as a corrupt store.
    await rpcFails(rpcHandlers.getProof(view, { address: encodeAddress(carol), block: mark - 1 }), RPC_ERRORS.PRUNED, new RegExp(`undo data above block ${mark - 1}`));

    // REST: the same, with 410 PRUNED; the address index outlives the bodies.
    const rest = (path: string) => restAnswer(view, path);
    assert.deepEqual(await rest('/block-height/5'), { status: 200, answer: { text: toHex(blocks[4]!.header.hash) } });
    const page = await rest('/blocks/5');
    assert.equal(page.status, 410);
    assert.equal(page.code, 'PRUNED');
    assert.equal(((await rest('/blocks/40')).answer as { json: unknown[] }).json.length, 40 - mark, 'a page of blocks ends where the bodies do');
    const lines = ((await rest(`/address/${encodeAddress(carol)}/txs`)).answer as { json: { txid: string; pruned?: boolean; amount: string | null; status: { block_height: number } }[] }).json;
    assert.deepEqual(
      lines.map((l) => [l.status.block_height, l.txid, l.pruned === true, l.amount]),
      [40, 35, 30, 25, 20, 15, 10, 5].map((h) => [h, blocks[h - 1]!.txs[0]!.idHex, h <= mark, h <= mark ? null : '1']),
    );
    // Esplora's paging after the last txid seen: after a kept line, the lines below it; after a
    // pruned one the transaction index no longer knows, 410, not an empty page that ends the history.
    const after35 = (await rest(`/address/${encodeAddress(carol)}/txs/chain/${blocks[34]!.txs[0]!.idHex}`)).answer as { json: { status: { block_height: number } }[] };
    assert.deepEqual(after35.json.map((l) => l.status.block_height), [30, 25, 20, 15, 10, 5]);
    const afterPruned = await rest(`/address/${encodeAddress(carol)}/txs/chain/${blocks[24]!.txs[0]!.idHex}`);
    assert.deepEqual([afterPruned.status, afterPruned.code], [410, 'PRUNED'], JSON.stringify(afterPruned));
    await pruner.stop();
    await db.close();
  });

  it('by hash too, while the block index holds the header: REST 410 and RPC -32003 as by height, and the block\'s status from its header', async () => {
    // A window deeper than what is kept (a short --reorg-depth and --prune-keep, the default window):
    // a pruned block's header is in memory. Below the window a hash alone does not say the height,
    // and a pruned block cannot be told from an unknown one (the test above).
    const db = await ChainDB.open(new MemoryDisk().open(), params);
    const chain = await Chain.open(db, { clock: () => params.timestamp + 10_000_000, reorgDepth: DEPTH, window: 64 });
    const pruner = new Pruner(chain, realEnv, DEPTH);
    pruner.start();
    const blocks = mineChain(params, asParent(db.genesis), 40, { miner: testKey(70).address });
    for (const b of blocks) assert.equal(await chain.processBlock(b), 'connected');
    await pruner.idle();
    assert.equal(db.history.prunedHeight, 40 - DEPTH - 1);
    assert.ok(chain.getEntry(blocks[4]!.header.hash), 'block 5 is in the window');
    const view = { params, chain, db, mempool: { get: () => undefined, settled: async () => {} } } as unknown as NodeView;
    const hash5 = toHex(blocks[4]!.header.hash);

    const byHeight = await restAnswer(view, '/blocks/5');
    assert.equal(byHeight.code, 'PRUNED');
    for (const path of [`/block/${hash5}`, `/block/${hash5}/txs`, `/block/${hash5}/raw`]) {
      assert.deepEqual(await restAnswer(view, path), byHeight, path);
    }
    // A coinbase is asked for by its block's hash (its address line's txid): pruned with the body.
    for (const path of [`/tx/${hash5}`, `/tx/${hash5}/status`]) {
      const coinbase = await restAnswer(view, path);
      assert.deepEqual([coinbase.status, coinbase.code], [410, 'PRUNED'], path);
      assert.match(coinbase.message!, /^the coinbase of block 5 is pruned/);
    }
    assert.deepEqual(await restAnswer(view, `/block/${hash5}/status`), { status: 200, answer: { json: { in_best_chain: true, height: 5, next_best: toHex(blocks[5]!.header.hash) } } });
    assert.equal((await restAnswer(view, `/block/${'ab'.repeat(32)}`)).code, 'NOT_FOUND');

    const rpcMessage = (call: Promise<unknown>) => call.then(() => assert.fail('answered'), (err: RpcError) => [err.rpcCode, err.message]);
    const rpcByHeight = await rpcMessage(rpcHandlers.getBlock(view, { height: 5 }));
    assert.equal(rpcByHeight[0], RPC_ERRORS.PRUNED);
    assert.deepEqual(await rpcMessage(rpcHandlers.getBlock(view, { hash: hash5 })), rpcByHeight);
    assert.deepEqual(await rpcMessage(rpcHandlers.getRawBlock(view, { hash: hash5 })), rpcByHeight);
    assert.equal((await rpcMessage(rpcHandlers.getBlock(view, { hash: 'ab'.repeat(32) })))[0], RPC_ERRORS.NOT_FOUND);
    await pruner.stop();
    await db.close();
  });

  it('a pruned node says so in its status, and a node joining later takes those bodies from another', async () => {
    const base = scenario('pruned-peer', { calm: true, nodes: 3, minutes: 3 });
    const o = {
      ...base,
      params: simParams(new Random('pruned-peer'), 120),
      history: 120,
      reorgDepth: 16,
      window: 4,
      nodes: [
        { ...base.nodes[0]!, hashShare: 1 },
        { ...base.nodes[1]!, hashShare: 0, pruneKeep: 16 },
        { ...base.nodes[2]!, hashShare: 0, joinAtMs: 90_000 },
      ],
    };
    const world = new World(o);
    const checker = new Checker(world);
    let askedForPruned = 0;
    world.observe({
      onStarted(sim, node) {
        if (sim.id !== 'n1') return;
        // n1 answers as every node does, and counts requests for bodies it no longer has.
        (node.transport as SimTransport).override(node.names.blocks, async (req) => {
          const stored = await node.db.getBlocksBytes(decodeGetBlocks(req));
          const missing = stored.indexOf(undefined);
          if (missing >= 0) askedForPruned++;
          return (missing < 0 ? stored : stored.slice(0, missing)) as Uint8Array[];
        });
      },
    });
    checker.schedule(10_000);
    await world.run();
    await checker.final();
    const [n0, n1, n2] = world.nodes.map((n) => n.node!);
    for (const sim of world.nodes) sim.crash();
    assert.deepEqual(Object.fromEntries(checker.violations), {});
    assert.ok(n1!.db.history.prunedHeight >= 100, `n1 pruned to ${n1!.db.history.prunedHeight}`);
    assert.equal(n1!.sync.ourStatus().prunedHeight, n1!.db.history.prunedHeight, 'its status says so');
    assert.equal(n2!.chain.tip.hashHex, n0!.chain.tip.hashHex, 'the late joiner caught up');
    assert.equal(askedForPruned, 0, 'and never asked n1 for what n1 said it had pruned');
  });

  it('a kill -9 while pruning leaves a node that reopens and finishes', async () => {
    const dir = tempDir();
    const children: ReturnType<typeof spawn>[] = [];
    try {
      const datadir = join(dir.path, 'pruned');
      const blocks = 25_000;
      const keep = 10_000;
      // A node serving snapshots (as `cairn node` does) keeps the body of the lowest it serves.
      const lowestKept = keptSnapshotHeights(blocks, DEFAULT_SNAPSHOT_INTERVAL, DEFAULT_REORG_DEPTH)[0]!;
      const finalMark = Math.min(blocks - keep, lowestKept - 1);
      await generateDatadir({ datadir, blocks, txsPerBlock: 0 });
      const genesis = parseGenesis(readFileSync(join(datadir, 'genesis.json'), 'utf8'));
      const args = [CAIRN_BIN, 'node', '--datadir', datadir, '--prune-keep', String(keep), '--p2p-host', '127.0.0.1', '--p2p-port', '0', '--rpc-port', '0', '--http-port', '0', '--no-mdns', '--log-level', 'debug'];
      let seen = 0;
      for (let kill = 0; kill < 3; kill++) {
        const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'ignore'] });
        children.push(child);
        track(child);
        // Killed as soon as it reports a chunk: the next one is being read or written.
        const pruned = await new Promise<number>((resolve, reject) => {
          createInterface({ input: child.stdout! }).on('line', (line) => {
            const m = /"height":(\d+).*"msg":"pruned"|"msg":"pruned".*"height":(\d+)/.exec(line);
            if (m) resolve(Number(m[1] ?? m[2]));
          });
          child.once('exit', (code) => reject(new Error(`the node exited (${code}) before pruning`)));
        });
        process.kill(child.pid!, 'SIGKILL');
        await new Promise((r) => (exited(child) ? r(undefined) : child.once('exit', r)));
        assert.ok(pruned > seen && pruned < finalMark, `pruned to ${pruned} after ${seen}`);
        seen = pruned;
        // Whatever the kill interrupted: the mark says exactly what is gone.
        const db = await ChainDB.open(join(datadir, 'chain'), genesis);
        const mark = db.history.prunedHeight;
        assert.ok(mark >= pruned, `mark ${mark} after the node said ${pruned}`);
        for (const height of [1, mark, mark + 1, finalMark + 1, blocks]) {
          if (height < 1) continue;
          const hash = (await db.getHashAtHeight(height))!;
          assert.equal((await db.getBlock(hash)) === undefined, height <= mark, `body of ${height} with the mark at ${mark}`);
          assert.equal((await db.getUndo(hash)) === undefined, height <= mark, `undo data of ${height} with the mark at ${mark}`);
        }
        await db.close();
      }
      // And once more, left alone: it reopens at its tip and finishes.
      const child = spawn(process.execPath, args, { stdio: 'ignore' });
      children.push(child);
      track(child);
      await waitFor('the node to finish pruning', 60_000, async () => {
        const status = await (await RpcClient.fromDatadir(datadir)).call('status', {});
        return status.height === blocks && status.prunedHeight === finalMark;
      });
      await stopProcess(child);
      const db = await ChainDB.open(join(datadir, 'chain'), genesis);
      const report = await auditChainDB(db);
      assert.equal(report.height, blocks);
      await db.close();
    } finally {
      for (const c of children) await stopProcess(c, 'SIGKILL');
      dir.remove();
    }
  });
});
