/**
 * `cairn snapshot export` / `import` (cli/cmd-snapshot.ts, consensus/snapshot-file.ts): the state at
 * a block written with every header and each chunk's range proof, and read back into a new datadir
 * that starts at that block; a file changed anywhere is refused with its reason and changes nothing.
 */
import assert from 'node:assert/strict';
import { copyFileSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { stateDigest } from '../ledger/audit.ts';
import { Writer, bytesEqual } from '../ledger/bytes.ts';
import { ChainDB } from '../ledger/chaindb.ts';
import { CairnError, StoreError } from '../ledger/errors.ts';
import { parseGenesis } from '../ledger/genesis.ts';
import { Chain } from '../consensus/chain.ts';
import { SNAPSHOT_HEAD_BYTES, SnapshotFileError, encodeFileChunk } from '../consensus/snapshot-file.ts';
import { childPositions, keyUnder, positionDepth, positionsAt } from '../ledger/smt-range.ts';
import { HEADER_BYTES } from '../ledger/block.ts';
import { generateDatadir } from '../cli/cmd-generate.ts';
import { exportSnapshot, importSnapshot, importSnapshotInto, snapshotCommand } from '../cli/cmd-snapshot.ts';
import { createOut } from '../cli/output.ts';
import { UsageError } from '../cli/args.ts';
import { LevelKv } from '../ledger/kv-level.ts';
import { layout } from '../ledger/layout.ts';
import type { KeyRange } from '../ledger/kv.ts';
import { tempDir } from './helpers/fixtures.ts';
import { REPO, runCli } from './helpers/cli.ts';
import { mineChild } from './helpers/mining.ts';

const BLOCKS = 300;

describe('snapshot files', function () {
  this.timeout(120_000);
  const dir = tempDir();
  const source = join(dir.path, 'source');
  const file = join(dir.path, 'state.snap');
  let bytes: Uint8Array;
  let params: ReturnType<typeof parseGenesis>;

  before(async () => {
    await generateDatadir({ datadir: source, blocks: BLOCKS, txsPerBlock: 2, accounts: 700 });
    params = parseGenesis(readFileSync(join(source, 'genesis.json'), 'utf8'));
    const made = await exportSnapshot(source, file, { interval: 100, reorgDepth: 50 });
    assert.equal(made.height, 200, 'the height a joining node would pick: a multiple of the interval, the reorg depth below the tip');
    bytes = new Uint8Array(readFileSync(file));
  });
  after(() => dir.remove());

  /** A new datadir of the generated network. */
  function fresh(name: string): string {
    const datadir = join(dir.path, name);
    mkdirSync(datadir);
    copyFileSync(join(source, 'genesis.json'), join(datadir, 'genesis.json'));
    return datadir;
  }

  /** Everything the store holds, to show a refused import changed nothing. */
  async function content(datadir: string): Promise<string> {
    const db = await ChainDB.open(join(datadir, 'chain'), params);
    const keys: string[] = [];
    for await (const [k, v] of db.records({ gte: Uint8Array.of(0), lt: Uint8Array.of(0xff) })) keys.push(Buffer.from(k).toString('hex') + Buffer.from(v).toString('hex'));
    await db.close();
    return keys.join('\n');
  }

  it('round trip: the imported datadir starts at the snapshot block with its state', async () => {
    const datadir = fresh('imported');
    const done = await importSnapshot(datadir, file, params);
    assert.equal(done.height, 200);
    const db = await ChainDB.open(join(datadir, 'chain'), params);
    const chain = await Chain.open(db, { clock: () => Math.floor(Date.now() / 1000) });
    assert.equal(chain.tip.height, 200);
    assert.equal(db.history.stateBase, 200);
    assert.equal(db.history.prunedHeight, 199, 'no history below it, as a pruned node');
    assert.ok(bytesEqual(await db.stateRoot(), chain.tip.header.stateRoot));
    assert.equal((await chain.byHeight.headers(1, 200)).length, 200, 'every header, to serve peers');
    // Nothing below the snapshot block can be undone (no undo data): a fork from its parent is too deep.
    assert.equal(chain.forkFloor, 200);
    const [parent] = await chain.byHeight.headers(199, 1);
    const fork = mineChild(params, { hash: parent!.hash, height: 199, header: parent! }, [], { target: 1n << 255n, stateRoot: new Uint8Array(32) });
    await assert.rejects(chain.processBlock(fork), (err: unknown) => err instanceof CairnError && err.code === 'BLOCK_FORK_TOO_DEEP');
    // The source's state at 200: its copy, account by account.
    const src = await ChainDB.open(join(source, 'chain'), params);
    const theirs: string[] = [];
    for await (const e of src.snapshots.allEntries(200)) theirs.push(Buffer.from(e.address).toString('hex') + e.account.balance + ':' + e.account.nonce);
    await src.close();
    const ours: string[] = [];
    for await (const a of db.accounts()) ours.push(Buffer.from(a.address).toString('hex') + a.account.balance + ':' + a.account.nonce);
    assert.equal(ours.length, theirs.length);
    assert.deepEqual(ours.sort(), theirs.sort());
    assert.ok(ours.length > 700);
    assert.equal(await db.join.state(), undefined, 'no join left behind');
    await db.close();
  });

  it('refuses a file changed anywhere, or cut short, and leaves the datadir as it was', async () => {
    const chunksAt = SNAPSHOT_HEAD_BYTES + 200 * HEADER_BYTES;
    const flips: [string, number][] = [
      ['the genesis hash', 12],
      ['a header', SNAPSHOT_HEAD_BYTES + 50 * HEADER_BYTES + 40],
      ['the pivot header', SNAPSHOT_HEAD_BYTES + 199 * HEADER_BYTES + 100],
      ['the pivot block', chunksAt + 4 + 170],
      ['an account', bytes.length - 600],
      ['a proof', bytes.length - 10],
    ];
    const datadir = fresh('refusing');
    const before = await content(datadir);
    const tampered = join(dir.path, 'tampered.snap');
    for (const [what, at] of flips) {
      const copy = bytes.slice();
      copy[at]! ^= 0x04;
      writeFileSync(tampered, copy);
      await assert.rejects(importSnapshot(datadir, tampered, params), CairnError, what);
      assert.equal(await content(datadir), before, `${what}: nothing changed`);
    }
    writeFileSync(tampered, bytes.subarray(0, bytes.length - 4));
    await assert.rejects(importSnapshot(datadir, tampered, params), /ends in the middle/);
    assert.equal(await content(datadir), before);
    // A chunk left out, or one twice: each chunk holds, but they do not cover every key once.
    const view = new DataView(bytes.buffer, bytes.byteOffset);
    const first = chunksAt + 4 + view.getUint32(chunksAt);
    const firstEnd = first + 4 + view.getUint32(first);
    for (const [what, edited, reason] of [
      ['a chunk left out', Buffer.concat([bytes.subarray(0, first), bytes.subarray(firstEnd)]), /cover/],
      ['a chunk twice', Buffer.concat([bytes.subarray(0, firstEnd), bytes.subarray(first, firstEnd), bytes.subarray(firstEnd)]), /overlaps/],
    ] as const) {
      writeFileSync(tampered, edited);
      await assert.rejects(importSnapshot(datadir, tampered, params), reason, what);
      assert.equal(await content(datadir), before, `${what}: nothing changed`);
    }
  });

  it('a file whose chunks go deeper than 16 (how a crowded position is exported) imports the same state', async () => {
    // From a review: depth 16 was the floor of a split, which ground addresses reach; an export
    // split past it threw, and an import refused it. Here one account's path is split to depth 40.
    const chunksAt = SNAPSHOT_HEAD_BYTES + 200 * HEADER_BYTES;
    const blockEnd = chunksAt + 4 + new DataView(bytes.buffer, bytes.byteOffset).getUint32(chunksAt);
    const src = await ChainDB.open(join(source, 'chain'), params);
    const parts: Uint8Array[] = [bytes.subarray(0, blockEnd)];
    const [someone] = await (async () => { for await (const e of src.snapshots.allEntries(200)) return [e.key]; return []; })();
    let deepest = 0;
    const todo = positionsAt(4);
    while (todo.length > 0) {
      const position = todo.shift()!;
      const chunk = await src.snapshots.chunk(200, position);
      if (chunk === 'split' || (keyUnder(someone!, position) && positionDepth(position) < 40)) {
        todo.unshift(...childPositions(position));
        continue;
      }
      deepest = Math.max(deepest, positionDepth(position));
      const encoded = encodeFileChunk(position, chunk.entries, chunk.proof);
      parts.push(new Writer(4).u32(encoded.length).finish(), encoded);
    }
    await src.close();
    parts.push(new Writer(4).u32(0).finish());
    assert.equal(deepest, 40);
    const deep = join(dir.path, 'deep.snap');
    writeFileSync(deep, Buffer.concat(parts));
    const datadir = fresh('deep');
    assert.equal((await importSnapshot(datadir, deep, params)).height, 200);
    const db = await ChainDB.open(join(datadir, 'chain'), params);
    const imported = await stateDigest(db);
    await db.close();
    const reference = fresh('reference');
    await importSnapshot(reference, file, params);
    const refDb = await ChainDB.open(join(reference, 'chain'), params);
    assert.equal(imported, await stateDigest(refDb));
    await refDb.close();
  });

  it('cairn snapshot import without --genesis: refused with the way out, and the datadir it would have made is not left behind', async () => {
    // From a newcomer's first hour: the refusal ("another network") named no --genesis, and left
    // the new datadir made for the bundled devnet, so the retry with the snapshot's own genesis
    // was refused too, that datadir belonging to "another network".
    const datadir = join(dir.path, 'no-genesis', 'fresh');
    const refused = await snapshotCommand(['import', file, '--datadir', datadir], createOut(false, () => {})).then(() => undefined, (err: unknown) => err);
    assert.ok(refused instanceof SnapshotFileError, String(refused));
    assert.match(refused.message, /^the snapshot is of another network \(genesis [0-9a-f]{16}…\), not "cairn-devnet-1" .*: give that network's genesis file with --genesis FILE$/);
    assert.equal(existsSync(datadir), false);
    // An empty folder given as the datadir stays, empty; and so does one with a file that cannot be read.
    mkdirSync(datadir, { recursive: true });
    await assert.rejects(snapshotCommand(['import', file, '--datadir', datadir], createOut(false, () => {})), SnapshotFileError);
    await assert.rejects(snapshotCommand(['import', join(dir.path, 'no-such.snap'), '--datadir', datadir], createOut(false, () => {})), /cannot read/);
    assert.deepEqual(readdirSync(datadir), []);
    let said = '';
    await snapshotCommand(['import', file, '--datadir', datadir, '--genesis', join(source, 'genesis.json')], createOut(false, (t) => (said += t)));
    assert.match(said, /^imported the state at height 200 /);
  });

  it('a store that fails during the install leaves it marked, and the next open finishes it', async () => {
    // The import used to forget the install's mark on any failure, the install's own included:
    // with the old accounts already cleared, the datadir opened at genesis with its state gone.
    const datadir = fresh('failing-install');
    const kv = await LevelKv.open(join(datadir, 'chain'));
    let failed = false;
    let installing = false; // not genesis's own clearing of a fresh store
    const failing = new Proxy(kv, {
      get(target, prop, receiver) {
        if (prop === 'clear') {
          return async (range: KeyRange) => {
            // The install's second step: the old tree goes after the old accounts.
            if (installing && !failed && bytesEqual(range.gte, layout.range('S').gte)) {
              failed = true;
              throw new StoreError('STORE_WRITE_FAILED', 'no space left on device (simulated)');
            }
            return target.clear(range);
          };
        }
        const value = Reflect.get(target, prop, receiver) as unknown;
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const db = await ChainDB.open(failing, params);
    assert.equal(db.resumedInstall, false);
    installing = true;
    const handle = await open(file, 'r');
    try {
      await assert.rejects(importSnapshotInto(db, handle, params), /stopped part way.*no space left.*next time it is opened/);
    } finally {
      await handle.close();
      await db.close();
    }
    assert.ok(failed, 'the install never reached its second step');
    const reopened = await ChainDB.open(join(datadir, 'chain'), params);
    try {
      const chain = await Chain.open(reopened, { clock: () => Math.floor(Date.now() / 1000) });
      assert.equal(chain.tip.height, 200, 'the install finished at the next open');
      assert.ok(bytesEqual(await reopened.stateRoot(), chain.tip.header.stateRoot));
      assert.equal(await reopened.join.state(), undefined, 'no join left behind');
      assert.equal(reopened.resumedInstall, true, 'the open says it finished an install (the node logs it)');
    } finally {
      await reopened.close();
    }
  });

  it('an import killed part way is started over by the next one', async () => {
    // From a review of kills: an import killed after the pivot block (Ctrl-C in a long one) left
    // its join mark, and every retry was refused as "a snapshot sync in progress: import into a
    // new datadir", the datadir of no use until removed by hand.
    const datadir = fresh('killed-import');
    const args = ['snapshot', 'import', file, '--datadir', datadir, '--genesis', join(source, 'genesis.json')];
    const chunkMark = Buffer.from(layout.joinChunk(positionsAt(4)[0]!).subarray(0, 2)).toString('hex');
    const injector = join(REPO, 'test', 'helpers', 'fault-injector.ts');
    const killed = await runCli(args, { env: { NODE_OPTIONS: `--import=${injector}`, CAIRN_TEST_KILL_AFTER_WRITE: chunkMark } });
    assert.equal(killed.signal, 'SIGKILL', `killed after its first chunk: ${killed.stderr}`);
    const again = await runCli(args);
    assert.equal(again.code, 0, again.stderr);
    const db = await ChainDB.open(join(datadir, 'chain'), params);
    try {
      const chain = await Chain.open(db, { clock: () => Math.floor(Date.now() / 1000) });
      assert.equal(chain.tip.height, 200);
      assert.ok(bytesEqual(await db.stateRoot(), chain.tip.header.stateRoot));
      assert.equal(await db.join.state(), undefined, 'no join left behind');
    } finally {
      await db.close();
    }
  });

  it('an import killed during its install: the next open finishes it, and a retry says so rather than to import again', async () => {
    // A retry was told "import into a new datadir", of a datadir its own open had just completed.
    const datadir = fresh('killed-install');
    await (await ChainDB.open(join(datadir, 'chain'), params)).close(); // genesis's accounts written here, not by the child
    const args = ['snapshot', 'import', file, '--datadir', datadir];
    const injector = join(REPO, 'test', 'helpers', 'fault-injector.ts');
    const accounts = Buffer.from(layout.range('A').gte).toString('hex');
    const killed = await runCli(args, { env: { NODE_OPTIONS: `--import=${injector}`, CAIRN_TEST_KILL_AFTER_WRITE: accounts } });
    assert.equal(killed.signal, 'SIGKILL', `killed as the install wrote the snapshot's accounts: ${killed.stderr}`);
    const again = await runCli(args);
    assert.equal(again.code, 1, again.stderr);
    assert.match(again.stderr, /^cairn: the datadir holds the chain of a snapshot at height 200, whose install a kill cut short and this open finished: start the node on it \(cairn node\)\n$/);
    const db = await ChainDB.open(join(datadir, 'chain'), params);
    try {
      assert.equal((await db.storedTip()).height, 200);
      assert.equal(db.resumedInstall, false, 'finished once');
    } finally {
      await db.close();
    }
  });

  it('a pruned datadir is told which heights it can export, before anything is made', async () => {
    const pruned = join(dir.path, 'pruned');
    cpSync(source, pruned, { recursive: true });
    const db = await ChainDB.open(join(pruned, 'chain'), params);
    await db.history.prune(250);
    await db.close();
    const out = join(dir.path, 'pruned.snap');
    await assert.rejects(exportSnapshot(pruned, out, { interval: 100, reorgDepth: 50 }), (err: Error) => {
      assert.ok(err instanceof UsageError, `${err.name}: ${err.message}`);
      assert.match(err.message, /^block 200 is pruned here .*give --height from 251 to 300/);
      return true;
    });
    assert.deepEqual(readdirSync(dir.path).filter((name) => name.startsWith('pruned.snap')), [], 'no file, and no temporary one');
    assert.equal((await exportSnapshot(pruned, out, { height: 260 })).height, 260);
  });

  it('an export writes a temporary file of its own: another writer of the same FILE, still writing, is neither taken nor mixed in', async () => {
    // From a crash-safety review: every export wrote FILE.partial and renamed it. A second export
    // to the same FILE (from another datadir) opened the first one's file, and whatever either
    // wrote after the other's rename went into FILE.
    const target = join(dir.path, 'shared.snap');
    const other = await open(`${target}.partial`, 'w'); // the temporary file of an export still under way, as versions before this one named it
    try {
      await other.write(Buffer.from('the other export, part way\n'));
      const made = await exportSnapshot(source, target, { interval: 100, reorgDepth: 50 });
      await other.write(Buffer.from('the rest of the other export\n'), 0, undefined, 0);
      assert.ok(bytesEqual(new Uint8Array(readFileSync(target)), bytes), 'FILE is this export, whole');
      assert.equal(made.bytes, bytes.length);
      assert.equal(readFileSync(`${target}.partial`, 'utf8'), 'the rest of the other export\n', "the other's file is its own still");
      assert.deepEqual(readdirSync(dir.path).filter((name) => name.startsWith('shared.snap')).sort(), ['shared.snap', 'shared.snap.partial'], 'no temporary file of this export left');
    } finally {
      await other.close();
    }
  });

  it('an import into a datadir that already holds a chain is refused', async () => {
    await assert.rejects(importSnapshot(source, file, params), /already holds a chain/);
  });

  it('the imported node and the source agree on the state after the same blocks', async () => {
    const datadir = fresh('follows');
    await importSnapshot(datadir, file, params);
    const src = await ChainDB.open(join(source, 'chain'), params);
    const srcChain = await Chain.open(src, { clock: () => Math.floor(Date.now() / 1000) });
    const db = await ChainDB.open(join(datadir, 'chain'), params);
    const chain = await Chain.open(db, { clock: () => Math.floor(Date.now() / 1000) });
    for (let h = 201; h <= BLOCKS; h++) await chain.processBlock((await src.getBlockAtHeight(h))!);
    assert.equal(chain.tip.hashHex, srcChain.tip.hashHex);
    assert.equal(await stateDigest(db), await stateDigest(src));
    await db.close();
    await src.close();
  });
});
