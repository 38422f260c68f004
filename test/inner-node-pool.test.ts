import assert from 'node:assert/strict';
import { InnerNodePool } from '../ledger/inner-node-pool.ts';
import { INNER_PREFIX, stateKey, type TreeNodeReader, type TreeUpdate, type TreeWrite } from '../ledger/smt.ts';
import { updateTree } from '../ledger/smt-update.ts';
import { referenceRoot } from './helpers/smt-reference.ts';
import type { Account } from '../ledger/state.ts';
import { ChainDB } from '../ledger/chaindb.ts';
import { MemoryDisk } from '../ledger/kv-memory.ts';
import { auditChainDB } from '../ledger/audit.ts';
import { toHex } from '../ledger/bytes.ts';
import { FUNDED_KEYS, childBlock, placeholderTransfer, seededRandom, testParams, uncheckedSignatures } from './helpers/fixtures.ts';
import { TipHarness } from './helpers/tip.ts';

/** Positions in a Map; `copying` keeps copies of the nodes it applies, as ChainDB's tree does, and releases the update. */
class Nodes implements TreeNodeReader {
  readonly nodes = new Map<string, Uint8Array>();
  private readonly copying: boolean;
  constructor(copying: boolean) {
    this.copying = copying;
  }

  async readNodes(ids: readonly string[]): Promise<(Uint8Array | undefined)[]> {
    return ids.map((id) => this.nodes.get(id));
  }

  apply(update: TreeUpdate): void {
    for (const w of update.writes) {
      if (w.node) this.nodes.set(w.id, this.copying ? w.node.slice() : w.node);
      else this.nodes.delete(w.id);
    }
    if (this.copying) update.release?.();
  }
}

const innerNodesOf = (writes: readonly TreeWrite[]) => writes.flatMap((w) => (w.node && w.node[0] === INNER_PREFIX ? [w.node] : []));

describe('InnerNodePool (the inner nodes a tree update makes, reused once released)', () => {
  it('hands out the same arrays, zeroed, after a release; a late release of an older claim frees nothing', () => {
    const pool = new InnerNodePool();
    const release1 = pool.claim();
    const first = [pool.take(), pool.take()];
    first[0]!.fill(7);
    assert.equal(pool.available, false);
    assert.throws(() => pool.claim(), /claimed while held/);
    release1();
    assert.equal(pool.available, true);
    const release2 = pool.claim();
    const second = [pool.take(), pool.take(), pool.take()];
    assert.equal(second[0], first[0], 'the first node again');
    assert.equal(second[1], first[1]);
    assert.ok(second[0]!.every((b) => b === 0), 'zeroed');
    assert.equal(second[0]!.length, 65);
    release1(); // the first claim's, again: must not free the second
    assert.equal(pool.available, false);
    release2();
    assert.equal(pool.available, true);
  });

  it("never rewrites the nodes of an update nobody released, and reuses a released update's", async () => {
    const rng = seededRandom(4);
    const keeper = new Nodes(false);
    const accounts = new Map<string, Account>();
    const block = () => {
      const changes = new Map<string, Account>();
      for (let i = 0; i < 200; i++) changes.set(rng.int(3) === 0 && accounts.size > 0 ? [...accounts.keys()][rng.int(accounts.size)]! : Buffer.from(rng.bytes(20)).toString('hex'), { balance: BigInt(1 + rng.int(1e6)), nonce: 0n });
      for (const [a, v] of changes) accounts.set(a, v);
      return [...changes].map(([a, account]) => ({ key: stateKey(Buffer.from(a, 'hex')), account }));
    };
    // Kept by reference and never released: later updates must make nodes of their own.
    const held = await updateTree(keeper, block());
    keeper.apply(held);
    const heldBytes = innerNodesOf(held.writes).map((n) => Buffer.from(n).toString('hex'));
    for (let i = 0; i < 3; i++) keeper.apply(await updateTree(keeper, block()));
    assert.deepEqual(innerNodesOf(held.writes).map((n) => Buffer.from(n).toString('hex')), heldBytes, 'the held update kept its nodes');
    assert.deepEqual(new Uint8Array((await updateTree(keeper, [])).root), new Uint8Array(referenceRoot(accounts)), 'and the tree kept by reference is whole');

    // Copied and released: the next update takes the same arrays.
    const copier = new Nodes(true);
    for (const [k, v] of keeper.nodes) copier.nodes.set(k, v.slice());
    const released = await updateTree(copier, block());
    const releasedNodes = new Set(innerNodesOf(released.writes));
    copier.apply(released);
    const next = await updateTree(copier, block());
    assert.ok(innerNodesOf(next.writes).some((n) => releasedNodes.has(n)), 'a released update’s nodes are reused');
    copier.apply(next);
    assert.deepEqual(new Uint8Array((await updateTree(copier, [])).root), new Uint8Array(referenceRoot(accounts)));
  });
});

describe('ChainDB with released inner nodes poisoned (nothing reads an update after releasing it)', () => {
  before(() => (InnerNodePool.poisonOnRelease = true));
  after(() => (InnerNodePool.poisonOnRelease = false));

  it('connects, disconnects and connects again, and reopens, with a tree that passes the audit', async function () {
    this.timeout(30_000);
    const disk = new MemoryDisk();
    const params = testParams();
    let db = await ChainDB.open(disk.open(), params);
    const h = await TipHarness.open(db);
    const rng = seededRandom(79);
    const [a] = FUNDED_KEYS;
    let nonce = 0;
    const payment = (to: Uint8Array) => placeholderTransfer(params, a!, to, BigInt(nonce++));
    // Enough accounts (~3,000) that some paths pass the stored depth: nodes below the top are kept too.
    for (let b = 0; b < 6; b++) await h.connectBlock(childBlock(h.tip, Array.from({ length: 500 }, () => payment(rng.bytes(20)))), uncheckedSignatures);
    await h.disconnectTip();
    await h.disconnectTip();
    nonce -= 1000;
    for (let b = 0; b < 3; b++) await h.connectBlock(childBlock(h.tip, Array.from({ length: 300 }, () => payment(rng.bytes(20)))), uncheckedSignatures);
    assert.deepEqual(new Uint8Array(await db.stateRoot()), new Uint8Array((await db.getBlock(h.tip.hash))!.header.stateRoot));
    await auditChainDB(db);
    const root = toHex(await db.stateRoot());
    await db.close();
    db = await ChainDB.open(disk.open(), params);
    assert.equal(toHex(await db.stateRoot()), root, 'the same tree from the store');
    await auditChainDB(db);
    await db.close();
  });
});
