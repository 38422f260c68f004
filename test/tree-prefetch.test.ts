/**
 * TreeStore.prefetch: the stored paths of the next block's accounts read into the cache while the
 * block before it connects and commits. What it reads must save the next block its store reads,
 * and must never stand in the cache for something newer; nor may a read a refused block left
 * running, and connectBlock leaves none running.
 */
import assert from 'node:assert/strict';
import { toHex } from '../ledger/bytes.ts';
import { MemoryDisk, MemoryKv } from '../ledger/kv-memory.ts';
import { batchOp, type BatchOp } from '../ledger/kv.ts';
import type { Account } from '../ledger/state.ts';
import { stateKey } from '../ledger/smt.ts';
import { prepareTreeUpdate, updateTree } from '../ledger/smt-update.ts';
import type { SignatureChecker } from '../ledger/state.ts';
import { TipHarness } from './helpers/tip.ts';
import { TreeStore } from '../ledger/tree-store.ts';
import { ChainDB } from '../ledger/chaindb.ts';
import { FUNDED_KEYS, afterTurns, childBlock, testParams, transfer, type TestKey } from './helpers/fixtures.ts';
import { deepPairs, randomAddresses } from './helpers/deep-paths.ts';
import { referenceRoot } from './helpers/smt-reference.ts';

/**
 * A store in memory whose reads answer as of the call, as a LevelDB read does from the snapshot it
 * takes, and whose next `held` reads resolve only when released, first held first released.
 */
class HeldReadKv extends MemoryKv {
  reads = 0;
  held = 0;
  private readonly waiting: (() => void)[] = [];

  override async getMany(keys: readonly Uint8Array[]): Promise<(Uint8Array | undefined)[]> {
    this.reads++;
    const values = await super.getMany(keys);
    if (this.held === 0) return values;
    this.held--;
    return new Promise((resolve) => this.waiting.push(() => resolve(values)));
  }

  /** Resolves the first held read, once it has been made. */
  async release(): Promise<void> {
    for (let turn = 0; this.waiting.length === 0; turn++) {
      if (turn === 100) throw new Error('no read was held');
      await afterTurns(1);
    }
    this.waiting.shift()!();
  }
}


describe('tree store prefetch (the next block read while this one connects)', () => {
  const accounts = new Map<string, Account>();
  let pair: [string, string];

  before(() => {
    // Random accounts, two of them alone below the top, ending within the levels one prefetch reads.
    randomAddresses(41, 6000).forEach((a, i) => accounts.set(a, { balance: BigInt(1 + i), nonce: 0n }));
    pair = deepPairs([...accounts.keys()])[0]!;
    assert.ok(pair, 'two accounts whose paths end below the top');
  });

  /** A store holding `accounts`, opened afresh (nothing cached), with a commit queue of its own. */
  async function openStore() {
    const kv = new HeldReadKv(new MemoryDisk());
    const queued = new Map<string, Uint8Array | null>();
    const state = new Map<string, Account>();
    const open = async () => new TreeStore(kv, (await TreeStore.loadTop(kv)).top, (id) => queued.get(id));
    /** Updates the tree with `changes` and queues its writes; `commit` writes them to the store and empties the queue. */
    const updater = (store: TreeStore) => async (changes: ReadonlyMap<string, Account>) => {
      const tree = await updateTree(store, [...changes].map(([a, account]) => ({ key: stateKey(Buffer.from(a, 'hex')), account })));
      const ops: BatchOp[] = [];
      const ids: string[] = [];
      store.apply(tree, {
        latest: (_kind, _slot, key, value) => ops.push(batchOp(key, value)),
        node: (id, node) => {
          queued.set(id, node);
          ids.push(id);
        },
      });
      for (const [a, account] of changes) state.set(a, account);
      return {
        root: toHex(tree.root),
        commit: async () => {
          await kv.write(ops);
          for (const id of ids) queued.delete(id);
        },
      };
    };
    await (await updater(await open())(accounts)).commit();
    const store = await open();
    kv.reads = 0;
    return { kv, store, update: updater(store), expected: () => referenceRoot(state).toString('hex') };
  }

  const keysOf = (addresses: readonly string[]) => addresses.map((a) => stateKey(Buffer.from(a, 'hex')));
  const bump = (addresses: readonly string[], by: bigint) => new Map(addresses.map((a) => [a, { balance: accounts.get(a)!.balance + by, nonce: by }]));

  it('reads the stored paths of the next block in one round trip, and that block then reads nothing more', async () => {
    const { kv, store, update, expected } = await openStore();
    await store.prefetch(keysOf(pair));
    assert.equal(kv.reads, 1, 'one read for both paths');
    kv.reads = 0;
    const block = await update(bump(pair, 5n));
    assert.equal(kv.reads, 0, 'the update found every node on its paths in memory');
    assert.equal(block.root, expected());
  });

  it('reads nothing for paths that end in the top', async () => {
    const { kv, store } = await openStore();
    const shallow = [...accounts.keys()].filter((a) => !pair.includes(a)).slice(0, 50);
    await store.prefetch(keysOf(shallow));
    assert.equal(kv.reads, 0);
  });

  it('holds a block whose positions a prefetch is reading until it is done, rather than reading them again', async () => {
    const { kv, store, update, expected } = await openStore();
    kv.held = 1;
    const prefetching = store.prefetch(keysOf(pair));
    const block = update(bump(pair, 3n));
    await afterTurns(3);
    assert.equal(kv.reads, 1, 'the block waits for the prefetch');
    await kv.release();
    await prefetching;
    assert.equal((await block).root, expected());
    assert.equal(kv.reads, 1, 'and reads nothing of its own');
  });

  it('never caches over what a block wrote and committed while the prefetch read', async () => {
    // Another import's read is out when the prefetch starts (an import holds the chain's lock,
    // prefetches do not), so the prefetch asks for the same positions; the block then writes
    // them and commits before the prefetch's answer, as of before the block, arrives.
    const { kv, store, update, expected } = await openStore();
    kv.held = 2;
    const first = update(bump(pair.slice(0, 1), 7n));
    await afterTurns(3);
    const prefetching = store.prefetch(keysOf(pair));
    await kv.release();
    const connected = await first;
    await connected.commit();
    assert.equal(connected.root, expected());
    await kv.release();
    await prefetching;
    // Only the other account: the nodes the first block wrote are read, not all made anew.
    const second = await update(bump(pair.slice(1), 9n));
    assert.equal(second.root, expected(), 'the second block sees the first one\'s writes, not what the prefetch read');
  });

  it('a read an abandoned update left running never caches over what the next block wrote and committed', async () => {
    // From a review: a block refused (a bad signature) while its prepared tree read was out left
    // that read running past the import lock; it answered, as of before, after the next block had
    // written and committed the same positions, and was cached over them.
    const { kv, store, update, expected } = await openStore();
    kv.held = 1;
    prepareTreeUpdate(store, keysOf(pair.slice(0, 1))); // abandoned: nobody awaits it
    await afterTurns(3);
    const next = await update(bump(pair.slice(1), 7n)); // writes the path both accounts share
    await next.commit();
    await kv.release();
    await afterTurns(3);
    const after = await update(bump(pair.slice(0, 1), 9n));
    assert.equal(after.root, expected(), 'the cache held what the next block wrote, not what the abandoned read found');
  });

  it('connectBlock refuses a block only once its tree reads have ended: none outlives the import lock', async () => {
    const [a, b] = pair.map((h) => Buffer.from(h, 'hex'));
    const [k0, k1, k2] = FUNDED_KEYS as [TestKey, TestKey, TestKey];
    const disk = new MemoryDisk();
    const held: ((asOfCall: boolean) => void)[] = [];
    let holding = false;
    const open = () => ChainDB.open(disk.open(undefined, (answer) => (holding ? held.push(answer) : answer(true))), testParams());
    let db = await open();
    let tip = await TipHarness.open(db);
    await tip.connectBlock(childBlock(tip.tip, [transfer(k0, a!, 10n, 0n), transfer(k1, b!, 10n, 0n)]));
    await db.close();
    db = await open(); // nothing cached below the top
    tip = await TipHarness.open(db);
    const refusing: SignatureChecker = { checkBlockSignatures: async () => { throw new Error('bad signature'); } };
    holding = true;
    let refused = false;
    const bad = tip.connectBlock(childBlock(tip.tip, [transfer(k0, a!, 1n, 1n)]), refusing).catch(() => void (refused = true));
    await afterTurns(5);
    assert.ok(held.length > 0, 'its tree read is out');
    assert.equal(refused, false, 'not refused while its tree read is out');
    holding = false;
    for (const answer of held.splice(0)) answer(true);
    await bad;
    assert.equal(refused, true);
    await tip.connectBlock(childBlock(tip.tip, [transfer(k1, b!, 1n, 1n)]));
    await db.flushed();
    await tip.connectBlock(childBlock(tip.tip, [transfer(k2, a!, 3n, 0n)]));
    await db.close();
  });

  it('never fails its caller, even on a closed store', async () => {
    const alloc = pair.map((a) => ({ address: Buffer.from(a, 'hex'), balance: 1000n })).sort((x, y) => Buffer.compare(x.address, y.address));
    const kv = new HeldReadKv(new MemoryDisk());
    const db = await ChainDB.open(kv, testParams({ alloc }));
    await db.close();
    kv.reads = 0;
    // A node runs with Node's default, which ends the process on a rejection nobody handles.
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      db.prefetchState(keysOf(pair));
      await afterTurns(3);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
    assert.equal(kv.reads, 1, 'it did try the closed store');
    assert.deepEqual(unhandled, []);
  });
});
