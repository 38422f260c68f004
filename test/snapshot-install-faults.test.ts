/**
 * A snapshot's install (ledger/snapshot-join.ts) cut short at each of its writes, as a kill or a
 * failing disk leaves it: the store reopens at genesis, or at the snapshot block with its state,
 * its tree's root the block's state root, its indexes of the block and nothing staged left, and
 * the next block connects on it: never between. Driven through `cairn snapshot import`'s code,
 * which stages and installs what a join does.
 */
import assert from 'node:assert/strict';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { stateDigest } from '../ledger/audit.ts';
import { bytesEqual, toHex } from '../ledger/bytes.ts';
import { ChainDB } from '../ledger/chaindb.ts';
import { parseGenesis } from '../ledger/genesis.ts';
import { MemoryDisk } from '../ledger/kv-memory.ts';
import { batchOp, type KvStore } from '../ledger/kv.ts';
import { layout } from '../ledger/layout.ts';
import { AddressIndex, addressIndexPuts, addressIndexer } from '../ledger/address-index.ts';
import type { Block } from '../ledger/block.ts';
import { Chain } from '../consensus/chain.ts';
import { generateDatadir } from '../cli/cmd-generate.ts';
import { exportSnapshot, importSnapshotInto } from '../cli/cmd-snapshot.ts';
import { tempDir } from './helpers/fixtures.ts';
import { kvOver } from './helpers/kv.ts';

const clock = () => Math.floor(Date.now() / 1000);

/**
 * A store whose `failAt`-th write or clear (counted once armed) fails, and every one after it, as a
 * process killed there writes nothing more; a clear that fails has deleted part of its range first
 * (LevelDB's is not atomic).
 */
function dyingStore(inner: KvStore, failAt: number) {
  const state = { armed: false, writes: 0, died: false };
  const dies = () => state.armed && (state.died ||= ++state.writes === failAt);
  const kv = kvOver(inner, {
    write: async (ops) => {
      if (dies()) throw new Error(`killed at write ${state.writes}`);
      await inner.write(ops);
    },
    clear: async (range) => {
      if (!dies()) return inner.clear(range);
      const keys: Uint8Array[] = [];
      for await (const key of inner.keys(range)) keys.push(key);
      await inner.write(keys.slice(0, Math.ceil(keys.length / 2)).map((key) => batchOp(key, undefined)));
      throw new Error(`killed at write ${state.writes}, a clear half done`);
    },
  });
  return { kv, state };
}

describe("a snapshot's install cut short at each of its writes", function () {
  this.timeout(300_000);
  const dir = tempDir();
  const file = join(dir.path, 'state.snap');
  let params: ReturnType<typeof parseGenesis>;
  const PIVOT = 100;
  /** The block after the snapshot's, from the source chain: the first a node connects on top. */
  let next: Block;

  before(async () => {
    const source = join(dir.path, 'source');
    await generateDatadir({ datadir: source, blocks: 140, txsPerBlock: 2, accounts: 300 });
    params = parseGenesis(readFileSync(join(source, 'genesis.json'), 'utf8'));
    assert.equal((await exportSnapshot(source, file, { interval: 100, reorgDepth: 30 })).height, PIVOT);
    const db = await ChainDB.open(join(source, 'chain'), params);
    next = (await db.getBlockAtHeight(PIVOT + 1))!;
    await db.close();
  });
  after(() => dir.remove());

  /** A store at genesis where a node ran with the address index, which is complete there. */
  async function atGenesis(): Promise<MemoryDisk> {
    const disk = new MemoryDisk();
    const db = await ChainDB.open(disk.open(), params, { indexers: [addressIndexer] });
    await AddressIndex.open(db);
    await db.close();
    return disk;
  }

  async function importInto(db: ChainDB): Promise<void> {
    const handle = await open(file);
    try {
      await importSnapshotInto(db, handle, params);
    } finally {
      await handle.close();
    }
  }

  /** What a store holds under a prefix. */
  async function keysUnder(db: ChainDB, prefix: 'W' | 'X' | 'T'): Promise<string[]> {
    const out: string[] = [];
    for await (const [key, value] of db.records(layout.range(prefix))) out.push(`${toHex(key)} ${toHex(value)}`);
    return out;
  }

  /** The node's open of the store, with the address index: checked whole, at genesis or at the snapshot block. */
  async function reopened(disk: MemoryDisk, reference: { digest: string; pivot: Block }): Promise<'genesis' | 'pivot'> {
    const db = await ChainDB.open(disk.open(), params, { indexers: [addressIndexer] }); // checks the tree's root against the tip's
    try {
      const index = await AddressIndex.open(db);
      const chain = await Chain.open(db, { clock });
      assert.ok(bytesEqual(await db.stateRoot(), chain.tip.header.stateRoot));
      if (chain.tip.height === 0) {
        // What a join staged before its install may stay, to go on from (a join's fetching phase).
        assert.notEqual((await db.join.state())?.phase, 'installing');
        assert.ok(bytesEqual(await db.stateRoot(), db.genesis.header.stateRoot));
        assert.deepEqual(await keysUnder(db, 'X'), []);
        return 'genesis';
      }
      assert.equal(chain.tip.height, PIVOT);
      assert.ok(bytesEqual(chain.tip.hash, reference.pivot.header.hash));
      assert.equal(await stateDigest(db), reference.digest);
      assert.deepEqual(await keysUnder(db, 'W'), [], 'nothing staged is left');
      while (!(await index.backfillStep()));
      const lines = addressIndexPuts(reference.pivot).map((op) => `${toHex(op.key)} ${op.type === 'put' ? toHex(op.value) : ''}`);
      assert.deepEqual(await keysUnder(db, 'X'), lines.sort(), "the address index holds the snapshot block's lines");
      for (const [i, tx] of reference.pivot.txs.entries()) assert.deepEqual(await db.getTxLocation(tx.id), { blockHash: reference.pivot.header.hash, index: i });
      // The state taken is one the next block's state root holds for.
      assert.equal(await chain.processBlock(next), 'connected');
      return 'pivot';
    } finally {
      await db.close();
    }
  }

  it('reopens at genesis or at the snapshot block, whole, whatever write it stopped at', async () => {
    // The reference: an install that nothing stopped.
    const clean = await atGenesis();
    const db = await ChainDB.open(clean.open(), params, { indexers: [addressIndexer] });
    await importInto(db);
    const reference = { digest: await stateDigest(db), pivot: (await db.getBlockAtHeight(PIVOT))! };
    await db.close();
    assert.ok(reference.pivot.txs.length > 0, 'the snapshot block has transactions to index');

    const outcomes: string[] = [];
    for (let failAt = 1; ; failAt++) {
      // Imported by a node's store (the address index in its units) or by `cairn snapshot import` (none).
      const indexed = failAt % 2 === 1;
      const disk = await atGenesis();
      const { kv, state } = dyingStore(disk.open(), failAt);
      const dying = await ChainDB.open(kv, params, { indexers: indexed ? [addressIndexer] : [] });
      state.armed = true;
      const stopped = await importInto(dying).then(
        () => undefined,
        (err: Error) => err,
      );
      if (!state.died) {
        assert.equal(stopped, undefined);
        assert.equal(await reopened(disk, reference), 'pivot');
        break;
      }
      assert.ok(stopped, `write ${failAt} failed, the import said nothing`);
      // Killed there: the next open finishes or forgets the install, and an import again completes.
      const at = await reopened(disk, reference);
      outcomes.push(`${failAt}:${at}`);
      if (at === 'genesis') {
        const again = await ChainDB.open(disk.open(), params, { indexers: [addressIndexer] });
        await importInto(again);
        await again.close();
        assert.equal(await reopened(disk, reference), 'pivot', `imported again after write ${failAt}`);
      }
    }
    // Imported whole by a store opened without the index, as `cairn snapshot import` opens it.
    const imported = await atGenesis();
    const plain = await ChainDB.open(imported.open(), params);
    await importInto(plain);
    await plain.close();
    assert.equal(await reopened(imported, reference), 'pivot');
    // Both ends were reached: stops before the install's mark, and stops within the install.
    assert.ok(outcomes.some((o) => o.endsWith('genesis')) && outcomes.some((o) => o.endsWith('pivot')), outcomes.join(' '));
  });
});
