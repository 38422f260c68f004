import assert from 'node:assert/strict';
import { toHex } from '../ledger/bytes.ts';
import { MemoryDisk, MemoryKv } from '../ledger/kv-memory.ts';
import { batchOp, type BatchOp } from '../ledger/kv.ts';
import type { Account } from '../ledger/state.ts';
import { positionId, stateKey } from '../ledger/smt.ts';
import { updateTree } from '../ledger/smt-update.ts';
import { STORED_TREE_DEPTH, TopNodes, TreeStore } from '../ledger/tree-store.ts';
import { LEGACY_STORED_TREE_DEPTH, NodeCache } from '../ledger/tree-memory.ts';
import { INNER_PREFIX } from '../ledger/smt.ts';
import { layout } from '../ledger/layout.ts';
import { StoreError } from '../ledger/errors.ts';
import { seededRandom } from './helpers/fixtures.ts';
import { referenceRoot } from './helpers/smt-reference.ts';
import { useInnerHashBackend } from '../ledger/inner-hashes.ts';
import { INNER_HASH_BACKENDS, backendLabel, useBackendOrSkip } from './helpers/inner-hash-backend.ts';

/** The 32 key bytes a position id stands for (the bits past its depth zero). */
function keyBytes(id: string): Uint8Array {
  const key = new Uint8Array(32);
  for (let i = 1; i < id.length; i++) key[i - 1] = id.charCodeAt(i);
  return key;
}

describe('tree store (the top in memory, the rest by position)', () => {
  it('gives every position above the stored depth a slot of its own, and reads are copies', () => {
    const top = new TopNodes();
    const rng = seededRandom(5);
    const written = new Map<string, Uint8Array>();
    for (let i = 0; i < 3000; i++) {
      const depth = rng.int(STORED_TREE_DEPTH);
      const id = positionId(rng.bytes(32), depth);
      const node = rng.bytes(rng.int(2) === 0 ? 49 : 65);
      top.set(id, node);
      written.set(id, node);
    }
    for (const [id, node] of written) assert.deepEqual(top.get(id), node, `position ${toHex(Buffer.from(id, 'latin1'))}`);
    const [someId, someNode] = [...written][0]!;
    top.get(someId)!.fill(0xff); // a reader writing into its copy
    assert.deepEqual(top.get(someId), someNode, 'the slot is unchanged by what a reader does with its copy');
    for (const [id, node] of [...written].slice(0, 200)) {
      const peeked = top.peek(id)!;
      assert.deepEqual(peeked, node);
      if (node[0] === INNER_PREFIX) continue;
      peeked.fill(0xee); // a leaf may move into a write: peek hands out a copy
      assert.deepEqual(top.get(id), node, 'a leaf peeked at is a copy');
    }
    top.delete(someId);
    assert.equal(top.get(someId), undefined);
    assert.equal(top.peek(someId), undefined);
    assert.throws(() => top.get(positionId(new Uint8Array(32), STORED_TREE_DEPTH)), RangeError);
  });

  it('keeps the two halves under every position of the top apart, at every depth', () => {
    const top = new TopNodes();
    const rng = seededRandom(11);
    const written = new Map<string, Uint8Array>();
    for (let depth = 1; depth < STORED_TREE_DEPTH; depth++) {
      for (let k = 0; k < 20; k++) {
        const key = rng.bytes(32);
        for (const bit of [0, 1]) {
          // Positions that differ only in their last bit: a slot number that lost it would merge them.
          if (bit === 0) key[(depth - 1) >>> 3]! &= ~(0x80 >>> ((depth - 1) & 7));
          else key[(depth - 1) >>> 3]! |= 0x80 >>> ((depth - 1) & 7);
          const id = positionId(key, depth);
          const node = rng.bytes(65);
          node[0] = INNER_PREFIX;
          top.set(id, node);
          written.set(id, node);
        }
      }
    }
    for (const [id, node] of written) assert.deepEqual(top.get(id), node, `depth ${id.charCodeAt(0)}`);
  });

  it('reads a level no node was ever set in as empty (its arrays are made with its first node)', () => {
    const top = new TopNodes();
    const id = positionId(new Uint8Array(32).fill(0xa5), STORED_TREE_DEPTH - 1);
    assert.equal(top.get(id), undefined);
    assert.equal(top.peek(id), undefined);
    assert.equal(top.holdsLeaf(id), false);
    top.delete(id);
    const leaf = new Uint8Array(49).fill(7);
    leaf[0] = 0;
    top.set(id, leaf);
    assert.equal(top.holdsLeaf(id), true);
    assert.deepEqual(top.get(id), leaf);
  });

  it('caches positions below the top in a ring across its chunks: the first set of an id takes the next slot, evicting its holder', () => {
    const size = 10_000; // three chunks of slots, the last one partly used
    const cache = new NodeCache(size);
    const rng = seededRandom(9);
    const model = new Map<string, Uint8Array | null>(); // insertion order = slot order
    for (let i = 0; i < 40_000; i++) {
      const id = positionId(rng.bytes(32), STORED_TREE_DEPTH + rng.int(4));
      const node = rng.int(5) === 0 ? null : rng.bytes(rng.int(2) === 0 ? 49 : 65);
      if (!model.has(id) && model.size === size) model.delete(model.keys().next().value!);
      model.set(id, node); // an id held keeps its slot, as a Map entry keeps its place
      cache.set(id, node);
      if (i % 997 === 0) for (const [k, v] of model) assert.deepEqual(cache.get(k), v, `step ${i}`);
    }
    let held = 0;
    for (const [k, v] of model) {
      assert.deepEqual(cache.get(k), v);
      held++;
    }
    assert.equal(held, size);
  });

  for (const cachedNodes of [1 << 17, 50]) {
    it(`holds the reference tree through random blocks, and rebuilds the same top when reopened (${cachedNodes} nodes cached below the top)`, async () => {
      const rng = seededRandom(9);
      const kv = new MemoryKv(new MemoryDisk());
      let store = new TreeStore(kv, await TreeStore.loadTop(kv), () => undefined, cachedNodes);
      const accounts = new Map<string, Account>();
      const addresses: string[] = [];
      // Enough accounts that many paths pass the stored depth: reads and writes on both sides of it.
      for (let block = 0; block < 30; block++) {
        const changes = new Map<string, Account | undefined>();
        const n = block < 10 ? 600 : 1 + rng.int(40);
        for (let i = 0; i < n; i++) {
          const fresh = addresses.length === 0 || rng.int(2) === 0;
          const address = fresh ? toHex(rng.bytes(20)) : addresses[rng.int(addresses.length)]!;
          if (fresh) addresses.push(address);
          // Now and then an account goes (as when a block that created it is disconnected).
          changes.set(address, !fresh && rng.int(8) === 0 ? undefined : { balance: BigInt(1 + rng.int(1e6)), nonce: BigInt(rng.int(9)) });
        }
        const update = await updateTree(
          store,
          [...changes].map(([a, account]) => ({ key: stateKey(Buffer.from(a, 'hex')), account })),
        );
        const ops: BatchOp[] = [];
        store.apply(update, { latest: (_kind, _slot, key, value) => ops.push(batchOp(key, value)), node: () => {} });
        await kv.write(ops);
        for (const [a, account] of changes) {
          if (account) accounts.set(a, account);
          else accounts.delete(a);
        }
        assert.equal(toHex(update.root), referenceRoot(accounts).toString('hex'), `block ${block}`);
        assert.equal(toHex(await store.root()), toHex(update.root));
        if (block % 10 === 9) {
          store = new TreeStore(kv, await TreeStore.loadTop(kv), () => undefined, cachedNodes);
          assert.equal(toHex(await store.root()), toHex(update.root), `reopened after block ${block}`);
        }
      }
    });
  }

  /** A tree of `count` random accounts written as a store kept it when inner nodes were stored from `storedFrom` down. */
  async function storeWithInnerNodesFrom(storedFrom: number, count: number) {
    const rng = seededRandom(21);
    const accounts = new Map<string, Account>();
    for (let i = 0; i < count; i++) accounts.set(toHex(rng.bytes(20)), { balance: BigInt(1 + i), nonce: 0n });
    const whole = await updateTree({ readNodes: async (ids) => ids.map(() => undefined) }, [...accounts].map(([a, account]) => ({ key: stateKey(Buffer.from(a, 'hex')), account })));
    const kv = new MemoryKv(new MemoryDisk());
    const kept = whole.writes.filter((w) => w.node && (w.node[0] !== INNER_PREFIX || w.id.charCodeAt(0) >= storedFrom));
    await kv.write(kept.map((w) => ({ type: 'put' as const, key: layout.stateNode(w.id), value: w.node! })));
    return { kv, root: toHex(referenceRoot(accounts)), nodes: whole.writes };
  }

  async function innerNodesByDepth(kv: MemoryKv): Promise<Map<number, number>> {
    const counts = new Map<number, number>();
    for await (const [key, value] of kv.iterate(layout.range('S'))) if (value[0] === INNER_PREFIX) counts.set(key[1]!, (counts.get(key[1]!) ?? 0) + 1);
    return counts;
  }

  for (const storedFrom of [LEGACY_STORED_TREE_DEPTH, 16]) {
    it(`opens a store of an earlier layout (inner nodes from depth ${storedFrom}), deleting the inner nodes it no longer keeps, with the same root`, async () => {
      // 20,000 accounts: thousands of inner nodes at depths 14 to 16, and hundreds at depth 18.
      const { kv, root, nodes } = await storeWithInnerNodesFrom(storedFrom, 20_000);
      const before = await innerNodesByDepth(kv);
      assert.ok(storedFrom < STORED_TREE_DEPTH, 'an earlier layout stored inner nodes above the depth kept now');
      assert.ok((before.get(storedFrom) ?? 0) > 0 && (before.get(STORED_TREE_DEPTH) ?? 0) > 0, 'the earlier store has inner nodes on both sides of the new depth');
      const top = await TreeStore.loadTop(kv);
      // The rebuilt top holds every node of the tree above the stored depth, the deepest levels included.
      const topNodes = nodes.filter((w) => w.node && w.id.charCodeAt(0) < STORED_TREE_DEPTH);
      for (const w of topNodes) assert.deepEqual(top.get(w.id), w.node, `depth ${w.id.charCodeAt(0)}`);
      assert.ok(topNodes.some((w) => w.id.charCodeAt(0) === STORED_TREE_DEPTH - 1), 'the check reaches the deepest level of the top');
      const store = new TreeStore(kv, top, () => undefined);
      assert.equal(toHex(await store.root()), root);
      const after = await innerNodesByDepth(kv);
      for (let depth = 0; depth < STORED_TREE_DEPTH; depth++) assert.equal(after.get(depth) ?? 0, 0, `no inner node stored at depth ${depth}`);
      for (const [depth, n] of before) if (depth >= STORED_TREE_DEPTH) assert.equal(after.get(depth), n, `depth ${depth} untouched`);
      // Opened again: nothing left to migrate, the same root.
      assert.equal(toHex(await new TreeStore(kv, await TreeStore.loadTop(kv), () => undefined).root()), root);
      assert.deepEqual(await innerNodesByDepth(kv), after);
    });
  }

  for (const backend of INNER_HASH_BACKENDS) {
    it(`rebuilds every node of the top, a level at a time, from a store of today's layout (${backendLabel(backend)} SHA-256)`, async function () {
      useBackendOrSkip(this, backend);
      try {
        const { kv, root, nodes } = await storeWithInnerNodesFrom(STORED_TREE_DEPTH, 20_000);
        const top = await TreeStore.loadTop(kv);
        const topNodes = nodes.filter((w) => w.id.charCodeAt(0) < STORED_TREE_DEPTH);
        for (const w of topNodes) assert.deepEqual(top.get(w.id), w.node ?? undefined, `depth ${w.id.charCodeAt(0)}`);
        assert.ok(topNodes.some((w) => w.node && w.node[0] !== INNER_PREFIX), 'leaves above the stored depth');
        assert.equal(toHex(await new TreeStore(kv, top, () => undefined).root()), root);
      } finally {
        useInnerHashBackend('native');
      }
    });
  }

  it('refuses a store with a leaf above nodes of its own subtree', async () => {
    const { kv, nodes } = await storeWithInnerNodesFrom(STORED_TREE_DEPTH, 20_000);
    const deep = nodes.find((w) => w.node && w.id.charCodeAt(0) === STORED_TREE_DEPTH)!;
    const leaf = nodes.find((w) => w.node && w.node[0] !== INNER_PREFIX)!;
    // The same leaf stored again at the position right above a stored inner node.
    const above = positionId(keyBytes(deep.id), STORED_TREE_DEPTH - 1);
    await kv.write([{ type: 'put', key: layout.stateNode(above), value: leaf.node! }]);
    await assert.rejects(TreeStore.loadTop(kv), (err: unknown) => err instanceof StoreError && err.code === 'STORE_CORRUPT' && /above nodes of its own subtree/.test(err.message));
  });

  it(`refuses a store with an inner node shallower than any layout kept (depth ${LEGACY_STORED_TREE_DEPTH - 1})`, async () => {
    const { kv } = await storeWithInnerNodesFrom(LEGACY_STORED_TREE_DEPTH - 1, 20_000);
    await assert.rejects(TreeStore.loadTop(kv), (err: unknown) => err instanceof StoreError && err.code === 'STORE_CORRUPT');
  });
});
