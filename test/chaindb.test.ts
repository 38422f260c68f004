import assert from 'node:assert/strict';
import { ChainDB } from '../ledger/chaindb.ts';
import { auditChainDB } from '../ledger/audit.ts';
import { StoreError, TxRuleError, BlockRuleError } from '../ledger/errors.ts';
import { TipHarness } from './helpers/tip.ts';
import { FUNDED_KEYS, childBlock, placeholderTransfer, seededRandom, tempDir, testKey, testParams, transfer, uncheckedSignatures } from './helpers/fixtures.ts';
import { LevelKv } from '../ledger/kv-level.ts';
import { STORED_TREE_DEPTH } from '../ledger/tree-store.ts';
import { STORE_LAYOUT, layout } from '../ledger/layout.ts';
import { toHex } from '../ledger/bytes.ts';
import { INNER_PREFIX, bitAt, positionId, stateKey } from '../ledger/smt.ts';
import { MemoryDisk } from '../ledger/kv-memory.ts';
import { connectBlock } from '../consensus/connect.ts';
import type { SaneBlock } from '../consensus/sanity.ts';
import { stateAfter } from './helpers/states.ts';
import { encodeUndo } from '../ledger/state.ts';
import { genesisHashHex, genesisStateRoot } from '../ledger/genesis.ts';

describe('ChainDB', () => {
  let dir: ReturnType<typeof tempDir>;
  beforeEach(() => (dir = tempDir()));
  afterEach(() => dir.remove());

  it('initialises genesis state and reopens at the same tip', async () => {
    const params = testParams();
    let db = await ChainDB.open(dir.path, params);
    let h = await TipHarness.open(db);
    assert.equal(h.tip.height, 0);
    assert.equal((await db.getAccount(FUNDED_KEYS[0]!.address))?.balance, 1_000_000n);
    const [a, b] = FUNDED_KEYS as [typeof FUNDED_KEYS[0], typeof FUNDED_KEYS[0]];
    const block = childBlock(h.tip, [transfer(a, b.address, 100n, 0n), transfer(a, b.address, 5n, 1n, 2n)]);
    await h.connectBlock(block);
    await db.close();
    db = await ChainDB.open(dir.path, params);
    h = await TipHarness.open(db);
    assert.equal(h.tip.height, 1);
    assert.deepEqual(await db.getAccount(a.address), { balance: 1_000_000n - 108n, nonce: 2n });
    assert.deepEqual(await db.getAccount(b.address), { balance: 1_000_105n, nonce: 0n });
    assert.deepEqual(await db.getAccount(testKey(99).address), { balance: 53n, nonce: 0n });
    const report = await auditChainDB(db, { checkSignatures: true });
    assert.equal(report.supply, 4_000_050n);
    await db.close();
  });

  it('leaves the tree\'s top at a clean close for the next open, which reads it once; an open after a kill rebuilds it', async () => {
    const params = testParams();
    const disk = new MemoryDisk();
    let db = await ChainDB.open(disk.open(), params);
    assert.equal(db.topFrom, 'scan', 'a new store');
    const h = await TipHarness.open(db);
    const [a, b] = FUNDED_KEYS as [typeof FUNDED_KEYS[0], typeof FUNDED_KEYS[0]];
    const block = childBlock(h.tip, [transfer(a, b.address, 100n, 0n)]);
    await h.connectBlock(block);
    await db.close();
    db = await ChainDB.open(disk.open(), params);
    assert.equal(db.topFrom, 'checkpoint');
    assert.equal(toHex(await db.stateRoot()), toHex(block.header.stateRoot));
    // Killed: no close, so no checkpoint for the next open.
    await db.flushed();
    db = await ChainDB.open(disk.open(), params);
    assert.equal(db.topFrom, 'scan');
    assert.equal(toHex(await db.stateRoot()), toHex(block.header.stateRoot));
    await db.close();
  });

  it('refuses a datadir that belongs to another genesis, and changes nothing', async () => {
    const db = await ChainDB.open(dir.path, testParams());
    await db.close();
    await assert.rejects(ChainDB.open(dir.path, testParams({ chainId: 8 })), (err: unknown) => {
      assert.ok(err instanceof StoreError);
      assert.equal(err.code, 'STORE_GENESIS_MISMATCH');
      assert.match(err.message, /holds the network "cairn-test"/);
      return true;
    });
    const again = await ChainDB.open(dir.path, testParams());
    assert.equal((await again.storedTip()).height, 0);
    await again.close();
  });

  it('marks a store with its layout; refuses one of a newer layout before reading or writing anything, and marks an unmarked one', async () => {
    const params = testParams();
    const disk = new MemoryDisk();
    const layoutOf = () => disk.entries.get(toHex(layout.layoutVersion))?.value;
    const contents = () => [...disk.entries.entries()].map(([k, e]) => `${k} ${toHex(e.value)}`).sort().join('\n');
    let db = await ChainDB.open(disk.open(), params);
    assert.deepEqual(layoutOf(), Uint8Array.of(0, 0, 0, STORE_LAYOUT), 'a new store is marked');
    const h = await TipHarness.open(db);
    await h.connectBlock(childBlock(h.tip, [transfer(FUNDED_KEYS[0]!, testKey(9).address, 100n, 0n)]));
    await db.close();

    // Written by a later version: its open would have read and rewritten it (the top checkpoint
    // deleted, migrations, a genesis written again) as if it were of this layout.
    disk.apply([{ type: 'put', key: layout.layoutVersion, value: Uint8Array.of(0, 0, 0, STORE_LAYOUT + 1) }]);
    const before = contents();
    await assert.rejects(ChainDB.open(disk.open(), params), (err: unknown) => {
      assert.ok(err instanceof StoreError, String(err));
      assert.equal(err.code, 'STORE_TOO_NEW');
      assert.match(err.message, new RegExp(`store layout ${STORE_LAYOUT + 1}; this version reads layout ${STORE_LAYOUT}\\)`));
      return true;
    });
    assert.equal(contents(), before, 'nothing in it changed');
    disk.apply([{ type: 'put', key: layout.layoutVersion, value: Uint8Array.of(0, 0, 0) }]);
    await assert.rejects(ChainDB.open(disk.open(), params), (err: unknown) => err instanceof StoreError && err.code === 'STORE_CORRUPT');

    // Written before stores were marked: opened as before, and marked.
    disk.apply([{ type: 'del', key: layout.layoutVersion }]);
    db = await ChainDB.open(disk.open(), params);
    assert.equal((await db.storedTip()).height, 1);
    assert.deepEqual(layoutOf(), Uint8Array.of(0, 0, 0, STORE_LAYOUT));
    await db.close();
  });

  it('writes nothing when a block fails, and disconnects back to byte-identical state', async () => {
    const db = await ChainDB.open(dir.path, testParams());
    const h = await TipHarness.open(db);
    const [a, b] = FUNDED_KEYS as [typeof FUNDED_KEYS[0], typeof FUNDED_KEYS[0]];
    const bad = childBlock(h.tip, [transfer(a, b.address, 1n, 0n), transfer(a, b.address, 1n, 5n)]);
    await assert.rejects(h.connectBlock(bad), (e: unknown) => e instanceof TxRuleError && e.code === 'TX_BAD_NONCE');
    assert.equal(h.tip.height, 0);
    assert.equal(await db.hasBlock(bad.header.hash), false);
    const before = await auditChainDB(db);
    await h.connectBlock(childBlock(h.tip, [transfer(a, b.address, 1n, 0n)]));
    await assert.rejects(h.connectBlock(childBlock({ hash: new Uint8Array(32), height: 1 }, [])), BlockRuleError);
    await h.disconnectTip();
    const after = await auditChainDB(db);
    assert.equal(after.digest, before.digest);
    await db.close();
  });

  it('refuses to disconnect with undo data that does not bring the state back to the parent\'s root, as corrupt, and changes nothing', async () => {
    const params = testParams();
    let db = await ChainDB.open(dir.path, params);
    let h = await TipHarness.open(db);
    const [a, b] = FUNDED_KEYS as [typeof FUNDED_KEYS[0], typeof FUNDED_KEYS[0]];
    const block = childBlock(h.tip, [transfer(a, b.address, 10n, 0n)]);
    await h.connectBlock(block);
    // The sender put back one unit richer than it was: well formed, and wrong.
    const undo = (await db.getUndo(block.header.hash))!.map((u) => (toHex(u.address) === toHex(a.address) ? { ...u, previous: { ...u.previous!, balance: u.previous!.balance + 1n } } : u));
    await db.close();
    const kv = await LevelKv.open(dir.path);
    await kv.write([{ type: 'put', key: layout.undo(block.header.hash), value: encodeUndo(undo) }]);
    await kv.close();
    db = await ChainDB.open(dir.path, params);
    h = await TipHarness.open(db);
    const before = await auditChainDB(db);
    await assert.rejects(h.disconnectTip(), (err: unknown) => err instanceof StoreError && err.code === 'STORE_CORRUPT');
    assert.deepEqual(await db.storedTip(), { hash: block.header.hash, height: 1 });
    assert.equal((await auditChainDB(db)).digest, before.digest);
    await db.close();
  });
});

describe('ChainDB genesis', () => {
  it('writes a genesis of many accounts in batches, its mark last; killed part way, the next open writes it whole', async function () {
    this.timeout(30_000);
    const rng = seededRandom(79);
    const alloc = Array.from({ length: 12_000 }, () => ({ address: rng.bytes(20), balance: 1n + BigInt(rng.int(1000)) }));
    alloc.sort((a, b) => Buffer.compare(a.address, b.address));
    const params = testParams({ name: 'cairn-many-accounts', alloc });
    const whole = new MemoryDisk();
    await (await ChainDB.open(whole.open(), params)).close();
    assert.ok(whole.batches >= 3, `${whole.batches} batches`);

    // Killed after two of its batches: accounts and nodes stored, no mark.
    const disk = new MemoryDisk();
    let completed = 0;
    const kv = disk.open((complete) => {
      if (completed++ < 2) complete();
      else kv.crash();
    });
    void ChainDB.open(kv, params).catch(() => {}); // never settles: the kill drops its write
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(disk.batches, 2);
    assert.ok(disk.entries.size > 0);
    assert.equal(disk.entries.get(toHex(layout.genesis)), undefined, 'no genesis mark');

    const db = await ChainDB.open(disk.open(), params);
    assert.equal(toHex(await db.stateRoot()), toHex(db.genesis.header.stateRoot));
    await auditChainDB(db);
    await db.close();
    const entries = (d: MemoryDisk) => [...d.entries].map(([k, e]) => `${k}=${toHex(e.value)}`).sort();
    assert.deepEqual(entries(disk), entries(whole), 'the same store as one written without a kill');

    // Killed part way again, then opened with another genesis (the user fixed genesis.json): none
    // of the first one's accounts or nodes stay. From a review: they did, and the tree they left
    // made every later open fail STORE_CORRUPT.
    const again = new MemoryDisk();
    completed = 0;
    const cut = again.open((complete) => {
      if (completed++ < 2) complete();
      else cut.crash();
    });
    void ChainDB.open(cut, params).catch(() => {});
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(again.batches, 2);
    const other = testParams();
    const fresh = new MemoryDisk();
    await (await ChainDB.open(fresh.open(), other)).close();
    const reopened = await ChainDB.open(again.open(), other);
    await auditChainDB(reopened);
    await reopened.close();
    assert.deepEqual(entries(again), entries(fresh), 'the same store as the other genesis written afresh');
  });
});

describe('ChainDB genesis on reopen', () => {
  // A reopen takes the genesis state root from the stored header rather than recomputing it; the
  // header's Merkle root commits to the allocations, so any change to them is still refused.
  let dir: ReturnType<typeof tempDir>;
  beforeEach(() => (dir = tempDir()));
  afterEach(() => dir.remove());

  const alloc = FUNDED_KEYS.map((k) => ({ address: k.address, balance: 1_000_000n }));

  it('reopens with the genesis block it wrote, header for header', async () => {
    const params = testParams({ alloc });
    const first = await ChainDB.open(dir.path, params);
    const written = toHex(first.genesis.bytes);
    await first.close();
    const again = await ChainDB.open(dir.path, params);
    assert.equal(toHex(again.genesis.bytes), written);
    assert.equal(toHex(again.genesis.header.stateRoot), toHex(genesisStateRoot(params)));
    await again.close();
  });

  it('refuses the same network with one allocation changed by one unit, naming both genesis hashes', async () => {
    const params = testParams({ alloc });
    await (await ChainDB.open(dir.path, params)).close();
    const changed = testParams({ alloc: alloc.map((a, i) => (i === 2 ? { ...a, balance: a.balance + 1n } : a)) });
    await assert.rejects(ChainDB.open(dir.path, changed), (err: unknown) => {
      assert.ok(err instanceof StoreError);
      assert.equal(err.code, 'STORE_GENESIS_MISMATCH');
      assert.ok(err.message.includes(genesisHashHex(changed)) && err.message.includes(genesisHashHex(params)), err.message);
      return true;
    });
  });

  it('refuses a store whose genesis block is damaged, as corrupt', async () => {
    const params = testParams({ alloc });
    const db = await ChainDB.open(dir.path, params);
    const key = layout.block(db.genesis.header.hash);
    const bytes = db.genesis.bytes;
    await db.close();
    const kv = await LevelKv.open(dir.path);
    await kv.write([{ type: 'put', key, value: bytes.subarray(0, bytes.length - 3) }]);
    await kv.close();
    await assert.rejects(ChainDB.open(dir.path, params), (err: unknown) => err instanceof StoreError && err.code === 'STORE_CORRUPT');
    // A stored state root other than the one written with it no longer hashes to the store's mark.
    const kv2 = await LevelKv.open(dir.path);
    const forged = bytes.slice();
    const rootAt = toHex(forged).indexOf(toHex(db.genesis.header.stateRoot)) / 2;
    assert.ok(rootAt > 0);
    forged[rootAt] = forged[rootAt]! ^ 1;
    await kv2.write([{ type: 'put', key, value: forged }]);
    await kv2.close();
    await assert.rejects(ChainDB.open(dir.path, params), (err: unknown) => err instanceof StoreError && err.code === 'STORE_CORRUPT');
    // Without it at all (nothing deletes block 0).
    const kv3 = await LevelKv.open(dir.path);
    await kv3.write([{ type: 'del', key }]);
    await kv3.close();
    await assert.rejects(ChainDB.open(dir.path, params), (err: unknown) => err instanceof StoreError && err.code === 'STORE_CORRUPT' && /genesis block it does not hold/.test(err.message));
  });
});

describe('ChainDB account cache', () => {
  it('never serves a value older than the last commit, even to a read that straddled it', async () => {
    const dir = tempDir();
    const db = await ChainDB.open(dir.path, testParams());
    const h = await TipHarness.open(db);
    try {
      const [a, b] = FUNDED_KEYS as [typeof FUNDED_KEYS[0], typeof FUNDED_KEYS[0]];
      for (let i = 0; i < 5; i++) {
        const reads = [db.getAccount(b.address), db.getAccount(a.address)];
        const commit = h.connectBlock(childBlock(h.tip, [transfer(a, b.address, 10n, BigInt(i))]));
        const more = [db.getAccount(b.address)];
        await Promise.all([...reads, commit, ...more]);
        assert.deepEqual(await db.getAccount(b.address), { balance: 1_000_000n + 10n * BigInt(i + 1), nonce: 0n });
        assert.deepEqual(await db.getAccount(a.address), { balance: 1_000_000n - 11n * BigInt(i + 1), nonce: BigInt(i + 1) });
      }
      for (let i = 0; i < 5; i++) await h.disconnectTip();
      assert.deepEqual(await db.getAccount(b.address), { balance: 1_000_000n, nonce: 0n });
      assert.equal(await db.getAccount(testKey(99).address), undefined, 'the miner account is gone again');
    } finally {
      await db.close();
      dir.remove();
    }
  });
});

describe('ChainDB state tree storage', () => {
  let dir: ReturnType<typeof tempDir>;
  beforeEach(() => (dir = tempDir()));
  afterEach(() => dir.remove());

  it('keeps the top of the state tree in memory: only leaves are stored above its depth, and reopening rebuilds it', async function () {
    this.timeout(30_000);
    // Enough accounts that paths reach below STORED_TREE_DEPTH (2^18 slots: some of 4,000 keys share one).
    const params = testParams();
    let db = await ChainDB.open(dir.path, params);
    let h = await TipHarness.open(db);
    const rng = seededRandom(77);
    const [a] = FUNDED_KEYS;
    // Unsigned (a placeholder signature): signatures are not what this is about, and 4,000 would take seconds.
    const payment = (nonce: number) => placeholderTransfer(params, a!, rng.bytes(20), BigInt(nonce));
    for (let b = 0; b < 8; b++) await h.connectBlock(childBlock(h.tip, Array.from({ length: 500 }, (_, i) => payment(b * 500 + i))), uncheckedSignatures);
    const root = toHex(await db.stateRoot());
    await db.close();
    const kv = await LevelKv.open(dir.path);
    let shallowInner = 0;
    let deep = 0;
    for await (const [key, value] of kv.iterate(layout.range('S'))) {
      if (key[1]! < STORED_TREE_DEPTH && value[0] === INNER_PREFIX) shallowInner++;
      if (key[1]! >= STORED_TREE_DEPTH) deep++;
    }
    assert.equal(shallowInner, 0, 'no inner node above the stored depth');
    assert.ok(deep > 0, 'some paths reach the stored depth');
    await kv.close();
    db = await ChainDB.open(dir.path, params);
    assert.equal(toHex(await db.stateRoot()), root, 'the top rebuilt from the store');
    await auditChainDB(db);
    // Disconnecting everything brings the tree back to genesis's, top and store alike.
    h = await TipHarness.open(db);
    while (h.tip.height > 0) await h.disconnectTip();
    assert.equal(toHex(await db.stateRoot()), toHex(db.genesis.header.stateRoot));
    await auditChainDB(db);
    await db.close();
  });

  it('answers and writes the nodes below the top a held flush carries, whatever the updates after it make', async function () {
    this.timeout(30_000);
    // Flushes complete only when the test says: block 1's nodes stay queued while block 2's update
    // runs, and that update takes the inner node arrays block 1's was made in (ledger/inner-node-pool.ts).
    const held: (() => void)[] = [];
    let holding = false;
    const disk = new MemoryDisk();
    const params = testParams();
    const db = await ChainDB.open(disk.open((complete) => (holding ? held.push(complete) : complete())), params);
    const genesis = await TipHarness.open(db);
    const rng = seededRandom(78);
    // Pairs of addresses whose tree keys share their first 19 bits: each pair's leaves sit below
    // STORED_TREE_DEPTH, under inner nodes that are stored there.
    const byPrefix = new Map<number, Uint8Array>();
    const pairs: [Uint8Array, Uint8Array][] = [];
    while (pairs.length < 8) {
      const address = rng.bytes(20);
      const key = stateKey(address);
      const prefix = ((key[0]! << 16) | (key[1]! << 8) | key[2]!) >>> 5;
      const other = byPrefix.get(prefix);
      if (other) {
        pairs.push([other, address]);
        byPrefix.delete(prefix);
      } else {
        byPrefix.set(prefix, address);
      }
    }
    const [a] = FUNDED_KEYS;
    let nonce = 0;
    const payment = (to: Uint8Array) => placeholderTransfer(params, a!, to, BigInt(nonce++));
    const fresh = () => Array.from({ length: 300 }, () => payment(rng.bytes(20)));
    holding = true;
    const block1 = childBlock(genesis.tip, [...pairs.flat().map(payment), ...fresh()]);
    await connectBlock(db, params, genesis.tip, block1 as SaneBlock, { signatures: uncheckedSignatures });
    const tip1 = { hash: block1.header.hash, height: 1 };
    const block2 = childBlock(tip1, fresh());
    await connectBlock(db, params, tip1, block2 as SaneBlock, { signatures: uncheckedSignatures });
    assert.ok(held.length > 0, 'the first flush is still in flight');

    const expected = stateAfter({ hash: block2.header.hash, height: 2 })!;
    const ids: string[] = [];
    for (const [k1, k2] of pairs.map(([x, y]) => [stateKey(x), stateKey(y)])) {
      let split = 0;
      while (bitAt(k1!, split) === bitAt(k2!, split)) split++;
      for (let d = STORED_TREE_DEPTH; d <= split; d++) ids.push(positionId(k1!, d));
      ids.push(positionId(k1!, split + 1), positionId(k2!, split + 1));
    }
    const want = ids.map((id) => expected.nodeAt(id));
    assert.ok(want.filter((n) => n && n[0] === INNER_PREFIX).length >= 8, 'inner nodes below the top');
    const show = (nodes: (Uint8Array | undefined)[]) => nodes.map((n) => (n ? toHex(n) : '-'));
    assert.deepEqual(show(await db.readNodes(ids)), show(want), 'answered from the commit queue before the flush');

    holding = false;
    while (held.length > 0) held.shift()!();
    await db.flushed();
    for (let i = 0; i < ids.length; i++) {
      const stored = disk.entries.get(toHex(layout.stateNode(ids[i]!)))?.value;
      assert.equal(stored && toHex(stored), want[i] && toHex(want[i]!), `the store's node at depth ${ids[i]!.charCodeAt(0)}`);
    }
    await db.close();
    const reopened = await ChainDB.open(disk.open(), params);
    assert.equal(toHex(await reopened.stateRoot()), toHex(block2.header.stateRoot));
    await reopened.close();
  });

  it('refuses to open a store whose state tree does not hash to its tip\'s state root', async () => {
    const params = testParams();
    const db = await ChainDB.open(dir.path, params);
    await db.close();
    const kv = await LevelKv.open(dir.path);
    const leaves: Uint8Array[] = [];
    for await (const [key] of kv.iterate(layout.range('S'))) leaves.push(key);
    await kv.write([{ type: 'del', key: leaves[0]! }]);
    await kv.close();
    await assert.rejects(ChainDB.open(dir.path, params), (err: unknown) => err instanceof StoreError && err.code === 'STORE_CORRUPT');
  });
});
