/**
 * ledger/address-index.ts: an address's history newest first and by cursor, with its roles; the
 * index rolled back exactly by a reorganisation (it always equals the index of the main chain
 * computed afresh); the background backfill of a datadir that had no index, resumed after a kill
 * in the middle of a step; and an index turned off and on again rebuilt without stale entries,
 * deleted a batch at a time.
 */
import assert from 'node:assert/strict';
import { Writer, toHex } from '../ledger/bytes.ts';
import { ChainDB } from '../ledger/chaindb.ts';
import { MemoryDisk } from '../ledger/kv-memory.ts';
import { layout } from '../ledger/layout.ts';
import { AddressIndex, ROLE_COINBASE, ROLE_RECEIVED, ROLE_SENT, STORED_COUNT_STEP, addressIndexPuts, addressIndexer } from '../ledger/address-index.ts';
import type { Block } from '../ledger/block.ts';
import { Chain } from '../consensus/chain.ts';
import { FUNDED_KEYS, testKey, testParams, transfer } from './helpers/fixtures.ts';
import { asParent, mineChain, mineChild } from './helpers/mining.ts';

const params = testParams();
const now = () => params.timestamp + 10_000_000;
const [alice, bob] = FUNDED_KEYS as [(typeof FUNDED_KEYS)[0], (typeof FUNDED_KEYS)[0]];
const carol = testKey(30).address;
const minerA = testKey(10).address;
const minerB = testKey(11).address;

async function open(disk: MemoryDisk, indexed: boolean): Promise<{ db: ChainDB; chain: Chain; index?: AddressIndex }> {
  const db = await ChainDB.open(disk.open(), params, indexed ? { indexers: [addressIndexer] } : {});
  const index = indexed ? await AddressIndex.open(db) : (await AddressIndex.turnOff(db), undefined);
  const chain = await Chain.open(db, { clock: now });
  return { db, chain, index };
}

/** Every X record in the store, as hex key → hex value. */
async function stored(db: ChainDB): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for await (const [k, v] of db.records(layout.range('X'))) out.set(toHex(k), toHex(v));
  return out;
}

/** The index the main chain should have, computed from its blocks. */
async function expected(db: ChainDB, chain: Chain): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (let h = 1; h <= chain.tip.height; h++) {
    for (const op of addressIndexPuts((await db.getBlockAtHeight(h))!)) if (op.type === 'put') out.set(toHex(op.key), toHex(op.value));
  }
  return out;
}

/** Counts the address records `db` reads from here on (`count`, which a test may reset). */
function countRecordReads(db: ChainDB): { count: number } {
  const reads = { count: 0 };
  const records = db.records.bind(db);
  db.records = async function* (range) {
    for await (const r of records(range)) {
      reads.count++;
      yield r;
    }
  };
  return reads;
}

describe('address index', () => {
  it('lists an address newest first with its roles, pages by cursor, and counts', async () => {
    const { db, chain, index } = await open(new MemoryDisk(), true);
    const g = asParent(db.genesis);
    const b1 = mineChild(params, g, [transfer(alice, bob.address, 5n, 0n)], { miner: alice.address });
    const b2 = mineChild(params, asParent(b1), [transfer(bob, alice.address, 2n, 0n), transfer(alice, alice.address, 1n, 1n)], { miner: minerA });
    for (const b of [b1, b2]) assert.equal(await chain.processBlock(b), 'connected');
    const history = await index!.history(alice.address, 10);
    assert.deepEqual(
      history.map((e) => [e.height, e.position, e.roles, toHex(e.id)]),
      [
        [2, 2, ROLE_SENT | ROLE_RECEIVED, toHex(b2.txs[1]!.id)],
        [2, 1, ROLE_RECEIVED, toHex(b2.txs[0]!.id)],
        [1, 1, ROLE_SENT, toHex(b1.txs[0]!.id)],
        [1, 0, ROLE_COINBASE, toHex(b1.header.hash)],
      ],
    );
    const page1 = await index!.history(alice.address, 2);
    const page2 = await index!.history(alice.address, 2, page1[1]);
    assert.deepEqual([...page1, ...page2], history, 'two pages of two are the list of four');
    assert.deepEqual(await index!.history(alice.address, 2, page2[1]), []);
    assert.deepEqual(await index!.counts(alice.address), { entries: 4, sent: 2, received: 2, coinbase: 1 });
    assert.deepEqual(await index!.history(carol, 10), []);
    assert.deepEqual(index!.status(), { state: 'ready', next: 1, end: 1, progress: 1 });
    await db.close();
  });

  it('rolls back exactly with a reorganisation, in the units of the blocks themselves', async () => {
    const { db, chain } = await open(new MemoryDisk(), true);
    const g = asParent(db.genesis);
    const a1 = mineChild(params, g, [transfer(alice, carol, 5n, 0n)], { miner: minerA });
    const a2 = mineChild(params, asParent(a1), [transfer(bob, carol, 7n, 0n)], { miner: minerA });
    for (const b of [a1, a2]) await chain.processBlock(b);
    const before = await stored(db);
    assert.deepEqual(before, await expected(db, chain));
    // A heavier branch from genesis where carol is never paid.
    const branch = [mineChild(params, g, [transfer(alice, bob.address, 3n, 0n)], { miner: minerB })];
    branch.push(...mineChain(params, asParent(branch[0]!), 2, { miner: minerB }));
    for (const b of branch) await chain.processBlock(b);
    assert.equal(chain.tip.hashHex, toHex(branch[2]!.header.hash));
    assert.deepEqual(await stored(db), await expected(db, chain), 'the index is the new main chain\'s');
    const { index } = { index: await AddressIndex.open(db) };
    assert.deepEqual(await index.history(carol, 10), [], 'carol\'s payments went with their blocks');
    assert.equal((await index.history(minerA, 10)).length, 0);
    assert.equal((await index.history(minerB, 10)).length, 3);
    await db.close();
  });

  it("counts a busy address's entries once below the settled height, then only what came after; a reorganisation below starts over", async () => {
    // From a review: every request for a miner's address read every entry it ever had.
    const { db, chain, index } = await open(new MemoryDisk(), true);
    const main = mineChain(params, asParent(db.genesis), 30, { miner: minerA });
    for (const b of main) await chain.processBlock(b);
    const reads = countRecordReads(db);
    const count = () => index!.counts(minerA, chain.tip.height - 5);
    assert.deepEqual(await count(), { entries: 30, sent: 0, received: 0, coinbase: 30 });
    assert.equal(reads.count, 30);
    reads.count = 0;
    for (const b of mineChain(params, asParent(main.at(-1)!), 3, { miner: minerA })) await chain.processBlock(b);
    assert.deepEqual(await count(), { entries: 33, sent: 0, received: 0, coinbase: 33 });
    assert.equal(reads.count, 8, 'the 5 unsettled before, and the 3 new');
    // A heavier branch from block 20: the blocks above it go, and with them the remembered count.
    reads.count = 0;
    const branch = mineChain(params, asParent(main[19]!), 20, { miner: minerB });
    for (const b of branch) await chain.processBlock(b);
    assert.equal(chain.tip.hashHex, toHex(branch.at(-1)!.header.hash));
    assert.deepEqual(await count(), { entries: 20, sent: 0, received: 0, coinbase: 20 });
    assert.equal(reads.count, 20, 'counted again from the start');
    await db.close();
  });

  it("requests for a busy address's counts that come together read its entries once, the rest only what is above the memo", async () => {
    // From the long-chain review: after a start (nothing remembered), a burst of requests for a
    // miner's page each read its whole history side by side, 12 s apiece at a million blocks.
    const { db, chain, index } = await open(new MemoryDisk(), true);
    for (const b of mineChain(params, asParent(db.genesis), 30, { miner: minerA })) await chain.processBlock(b);
    const reads = countRecordReads(db);
    const counts = await Promise.all(Array.from({ length: 10 }, () => index!.counts(minerA, chain.tip.height - 5)));
    for (const c of counts) assert.deepEqual(c, { entries: 30, sent: 0, received: 0, coinbase: 30 });
    assert.equal(reads.count, 30 + 9 * 5, 'all 30 once, then the 5 unsettled for each of the other 9');
    await db.close();
  });

  it("keeps a busy address's count in the store, so a restart reads only what came after it; an index made again does not use it", async () => {
    // From the last stop's list: every restart read a miner's whole history again at its first
    // count, 8.5 s at a million blocks.
    const disk = new MemoryDisk();
    const blocks = STORED_COUNT_STEP + 10;
    {
      const { db, chain, index } = await open(disk, true);
      for (const b of mineChain(params, asParent(db.genesis), blocks, { miner: minerA })) await chain.processBlock(b);
      assert.equal((await index!.counts(minerA, chain.tip.height - 5)).entries, blocks);
      await db.close();
    }
    {
      const { db, chain, index } = await open(disk, true);
      const reads = countRecordReads(db);
      assert.deepEqual(await index!.counts(minerA, chain.tip.height - 5), { entries: blocks, sent: 0, received: 0, coinbase: blocks });
      assert.equal(reads.count, 5, 'only the unsettled five, after a restart');
      // A reorganisation below the kept count: it no longer matches the chain, and is not used.
      const branch = mineChain(params, asParent((await db.getBlockAtHeight(blocks - 20))!), 30, { miner: minerB });
      for (const b of branch) await chain.processBlock(b);
      await db.close();
    }
    {
      const { db, chain, index } = await open(disk, true);
      assert.deepEqual(await index!.counts(minerA, chain.tip.height - 5), { entries: blocks - 20, sent: 0, received: 0, coinbase: blocks - 20 });
      await db.close();
    }
    // Turned off and on: the index is made again, and the kept counts go with the old one.
    await (await open(disk, false)).db.close();
    const { db, index } = await open(disk, true);
    let kept = 0;
    for await (const _ of db.records(layout.range('C'))) kept++;
    assert.equal(kept, 0);
    while (!(await index!.backfillStep()));
    // A count kept for another index (one an older node made again, keeping no counts) is not used.
    const tip = await db.getBlockAtHeight(blocks + 10);
    const foreign = new Writer(76).u32(index!.status().end + 1).u32(blocks + 10).u32(0).bytes(tip!.header.hash, 32);
    for (let i = 0; i < 4; i++) foreign.u64(7n);
    db.queueRecords([{ type: 'put', key: layout.addressCount(minerA), value: foreign.finish() }]);
    assert.equal((await index!.counts(minerA)).entries, blocks - 20);
    await db.close();
  });

  it('a reorganisation between checking the remembered count and reading the entries after it leaves nothing wrong remembered', async () => {
    // From a review: the remembered count was checked against the chain before the settled
    // block's hash was first read, so a reorganisation between the two kept one chain's counts
    // under the other's blocks, until a restart.
    const { db, chain, index } = await open(new MemoryDisk(), true);
    const main = mineChain(params, asParent(db.genesis), 30, { miner: minerA });
    for (const b of main) await chain.processBlock(b);
    const count = (settled = chain.tip.height) => index!.counts(minerA, settled);
    assert.deepEqual(await count(), { entries: 30, sent: 0, received: 0, coinbase: 30 }); // remembered up to 30
    // A heavier branch from block 10, imported while the next count runs, once it has checked its
    // memo: minerB's up to 30, then five of minerA's, which that count reads past its memo.
    const theirs = mineChain(params, asParent(main[9]!), 20, { miner: minerB });
    const branch = [...theirs, ...mineChain(params, asParent(theirs.at(-1)!), 5, { miner: minerA })];
    const records = db.records;
    db.records = async function* (range) {
      for (const b of branch) await chain.processBlock(b);
      yield* records.call(db, range);
    };
    await count(35);
    db.records = records;
    assert.equal(chain.tip.hashHex, toHex(branch.at(-1)!.header.hash));
    assert.deepEqual(await count(), { entries: 15, sent: 0, received: 0, coinbase: 15 }, 'blocks 1 to 10 and 31 to 35 are its');
    await db.close();
  });

  it('backfills a datadir that had no index, a step at a time, resuming after a kill', async () => {
    const disk = new MemoryDisk();
    let blocks: Block[] = [];
    {
      const { db, chain } = await open(disk, false);
      const first = mineChild(params, asParent(db.genesis), [transfer(alice, carol, 1n, 0n)], { miner: minerA });
      blocks = [first, ...mineChain(params, asParent(first), 149, { miner: minerB })];
      for (const b of blocks) await chain.processBlock(b);
      await db.close();
    }
    {
      // A step's batch lost to a kill: the index is where it was.
      let hold = true;
      const held: (() => void)[] = [];
      const kv = disk.open((complete) => (hold ? held.push(complete) : complete()));
      hold = false;
      const db = await ChainDB.open(kv, params, { indexers: [addressIndexer] });
      const index = await AddressIndex.open(db);
      assert.deepEqual(index.status(), { state: 'building', next: 1, end: 151, progress: 0 });
      hold = true;
      void index.backfillStep().catch(() => {});
      await new Promise((r) => setImmediate(r));
      assert.ok(held.length > 0, 'the step\'s batch is waiting for the disk');
      kv.crash();
    }
    const { db, chain, index } = await open(disk, true);
    assert.equal(index!.status().next, 1, 'nothing of the lost step was kept');
    // A block connected meanwhile is indexed at once, in its own unit.
    await chain.processBlock(mineChild(params, chain.tip, [transfer(alice, carol, 2n, 1n)], { miner: minerA }));
    assert.equal((await index!.history(carol, 10)).length, 1);
    let steps = 0;
    while (!(await index!.backfillStep())) {
      steps++;
      assert.equal(index!.status().state, 'building');
    }
    assert.equal(steps, 2, '150 blocks in steps of 64');
    assert.deepEqual(index!.status(), { state: 'ready', next: 151, end: 151, progress: 1 });
    assert.deepEqual(await stored(db), await expected(db, chain));
    assert.equal((await index!.history(carol, 10)).length, 2);
    await db.close();
  });

  it('a backfill step of full blocks stops at its budget of records, at a block boundary', async () => {
    // 64 blocks of 5,000 transfers made one step of 640,000 records: over 360 MB of the heap at once.
    const disk = new MemoryDisk();
    {
      const { db, chain } = await open(disk, false);
      for (const b of mineChain(params, asParent(db.genesis), 100, { miner: minerB })) await chain.processBlock(b);
      await db.close();
    }
    const { db, chain, index } = await open(disk, true);
    assert.equal(await index!.backfillStep(10), false);
    assert.equal(index!.status().next, 11, 'ten blocks of one record each');
    assert.equal(await index!.backfillStep(), false);
    assert.equal(index!.status().next, 75, 'at most 64 blocks a step');
    while (!(await index!.backfillStep(7)));
    assert.deepEqual(await stored(db), await expected(db, chain));
    await db.close();
  });

  it('an index turned off and on again is rebuilt, without entries of blocks it missed', async () => {
    const disk = new MemoryDisk();
    const g = (db: ChainDB) => asParent(db.genesis);
    {
      const { db, chain } = await open(disk, true);
      await chain.processBlock(mineChild(params, g(db), [transfer(alice, carol, 5n, 0n)], { miner: minerA }));
      await db.close();
    }
    {
      // Off: a heavier branch replaces the block that paid carol, unseen by the index.
      const { db, chain } = await open(disk, false);
      for (const b of mineChain(params, g(db), 2, { miner: minerB })) await chain.processBlock(b);
      await db.close();
    }
    const { db, chain, index } = await open(disk, true);
    while (!(await index!.backfillStep()));
    assert.deepEqual(await index!.history(carol, 10), []);
    assert.deepEqual(await stored(db), await expected(db, chain));
    await db.close();
  });

  it("an index turned on again deletes a long chain's stale records a batch at a time", async () => {
    const disk = new MemoryDisk();
    {
      const { db } = await open(disk, false);
      await db.close();
    }
    // What an index of a long chain left when it was turned off: 12,000 records (a chain of
    // millions leaves millions, which one batch, made in memory, could not hold).
    const stale = 12_000;
    disk.apply(Array.from({ length: stale }, (_, i) => ({ type: 'put' as const, key: layout.addressEntry(testKey(40 + (i % 5)).address, 1 + i, 0), value: new Uint8Array(33) })));
    let largest = 0;
    const apply = disk.apply.bind(disk);
    disk.apply = (ops) => {
      largest = Math.max(largest, ops.length);
      apply(ops);
    };
    const { db, index } = await open(disk, true);
    assert.deepEqual(await stored(db), new Map(), 'every stale record is gone');
    assert.equal(index!.status().state, 'ready');
    assert.ok(largest <= 10_001, `the largest batch held ${largest} operations`);
    await db.close();
  });
});

describe('address index on a real node', function () {
  this.timeout(60_000);

  it('an existing datadir gets its index built in the background, with progress in the log and the status', async () => {
    const { startNode, mineOn, networkParams, waitFor, stopAll } = await import('./helpers/network.ts');
    const { createNode } = await import('../node/launch.ts');
    const p = networkParams();
    const first = await startNode(p, [], { verifyThreads: 1, addressIndex: false });
    assert.equal(first.node.addressIndex, undefined);
    await first.node.submitTransaction(transfer(alice, carol, 9n, 0n));
    await mineOn(first, 1);
    await mineOn(first, 150);
    await first.node.stop();
    const node = createNode({ ...first.config, addressIndex: true });
    const logs: string[] = [];
    node.on('log', (_level, message, fields) => void logs.push(`${message} ${JSON.stringify(fields ?? {})}`));
    try {
      await node.start();
      await waitFor(() => node.addressIndex?.status().state === 'ready', 30_000, 'the index to be built');
      assert.ok(logs.some((l) => l.startsWith('building the address index') && l.includes('"state":"building"')), logs.join('\n'));
      assert.ok(logs.some((l) => l.startsWith('address index ready')), logs.join('\n'));
      const history = await node.addressIndex!.history(carol, 10);
      assert.deepEqual(history.map((e) => e.height), [1]);
      assert.equal((await node.addressIndex!.history(testKey(60).address, 1000)).length, 151, 'every coinbase of the miner');
    } finally {
      await node.stop();
      await stopAll([first]);
    }
  });

  it('a backfill that fails is told in the log, and the node runs on; the next start finishes it', async () => {
    const { startNode, mineOn, networkParams, waitFor, stopAll } = await import('./helpers/network.ts');
    const { createNode } = await import('../node/launch.ts');
    const first = await startNode(networkParams(), [], { verifyThreads: 1, addressIndex: false });
    await mineOn(first, 3);
    await first.node.stop();
    // The first step fails as a store whose write failed would (its queue refuses every later read).
    const step = AddressIndex.prototype.backfillStep;
    AddressIndex.prototype.backfillStep = () => Promise.reject(new Error('a write to the store failed'));
    const node = createNode({ ...first.config, addressIndex: true });
    const logs: string[] = [];
    node.on('log', (level, message) => void logs.push(`${level} ${message}`));
    try {
      await node.start();
      await waitFor(() => logs.some((l) => l.startsWith("warn the address index's backfill stopped")), 10_000, 'the failure in the log');
      AddressIndex.prototype.backfillStep = step;
      assert.equal(node.addressIndex!.status().state, 'building');
      await mineOn({ ...first, node }, 1);
      assert.equal(node.chain.tip.height, 4, 'the node runs on');
    } finally {
      AddressIndex.prototype.backfillStep = step;
      await node.stop();
    }
    const again = createNode({ ...first.config, addressIndex: true });
    try {
      await again.start();
      await waitFor(() => again.addressIndex?.status().state === 'ready', 30_000, 'the index to be built');
      assert.equal((await again.addressIndex!.history(testKey(60).address, 10)).length, 4);
    } finally {
      await again.stop();
      await stopAll([first]);
    }
  });
});

describe('address index backfill log', () => {
  it('gives its progress in whole percent, as the status and the explorer do, not as a long ratio', async () => {
    const { backfillAddressIndex } = await import('../node/address-backfill.ts');
    const { realEnv } = await import('../node/env.ts');
    // 376 of 3750 blocks: the ratio a newcomer read as progress=0.10026666666666667.
    const steps = [0, 376, 2000, 3750];
    let at = 0;
    const index = {
      status: () => ({ state: steps[at] === 3750 ? 'ready' : 'building', next: 1 + steps[at]!, end: 3751, progress: steps[at]! / 3750 }),
      backfillStep: async () => ++at === steps.length - 1,
    } as unknown as AddressIndex;
    const chain = { withImportsPaused: <T>(work: () => Promise<T>) => work() } as unknown as Chain;
    const logged: Array<[string, unknown]> = [];
    await backfillAddressIndex(index, { chain, env: realEnv, pruner: undefined, stopped: () => false, log: (_level, message, fields) => void logged.push([message, fields?.['progress']]) });
    assert.deepEqual(logged, [
      ['building the address index', '0%'],
      ['building the address index', '10%'],
      ['building the address index', '53%'],
      ['address index ready', '100%'],
    ]);
  });
});
