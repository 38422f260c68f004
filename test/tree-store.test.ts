import assert from 'node:assert/strict';
import { toHex } from '../ledger/bytes.ts';
import { MemoryDisk, MemoryKv } from '../ledger/kv-memory.ts';
import { batchOp, type BatchOp } from '../ledger/kv.ts';
import type { Account } from '../ledger/state.ts';
import { positionId, stateKey, type TreeWrite } from '../ledger/smt.ts';
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

  it('a pin of the top reads it as it was, through sets, inner nodes set in place and deletions after, until released', () => {
    const top = new TopNodes();
    const rng = seededRandom(9);
    const before = new Map<string, Uint8Array | undefined>();
    const byDepth: string[][] = [];
    for (let depth = 1; depth < STORED_TREE_DEPTH; depth++) {
      byDepth[depth] = [];
      for (let k = 0; k < 8; k++) {
        const id = positionId(rng.bytes(32), depth);
        const node = rng.bytes(65);
        node[0] = INNER_PREFIX;
        top.set(id, node);
        before.set(id, node);
        byDepth[depth]!.push(id);
      }
    }
    for (let depth = 1; depth < STORED_TREE_DEPTH; depth++) before.set(positionId(new Uint8Array(32), depth), top.get(positionId(new Uint8Array(32), depth))); // slot 0, set in place below
    const pin = top.pin();
    // Each level's first change after the pin by one of the three ways the top changes.
    for (let depth = 1; depth < STORED_TREE_DEPTH; depth++) {
      const [id] = byDepth[depth]!;
      if (depth % 3 === 0) top.set(id!, rng.bytes(49));
      else if (depth % 3 === 1) top.delete(id!);
      else top.setInner(depth, 0, rng.bytes(64), 0);
      for (const other of byDepth[depth]!.slice(1)) top.set(other, rng.bytes(49));
    }
    for (const [id, node] of before) assert.deepEqual(pin.get(id), node, `position ${toHex(Buffer.from(id, 'latin1'))}`);
    pin.get(byDepth[5]![1]!)!.fill(0); // a reader writing into its copy
    assert.deepEqual(pin.get(byDepth[5]![1]!), before.get(byDepth[5]![1]!));
    pin.release();
    assert.notDeepEqual(top.get(byDepth[5]![1]!), before.get(byDepth[5]![1]!));
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
      let store = new TreeStore(kv, (await TreeStore.loadTop(kv)).top, () => undefined, cachedNodes);
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
          store = new TreeStore(kv, (await TreeStore.loadTop(kv)).top, () => undefined, cachedNodes);
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
      const top = (await TreeStore.loadTop(kv)).top;
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
      assert.equal(toHex(await new TreeStore(kv, (await TreeStore.loadTop(kv)).top, () => undefined).root()), root);
      assert.deepEqual(await innerNodesByDepth(kv), after);
    });
  }

  for (const backend of INNER_HASH_BACKENDS) {
    it(`rebuilds every node of the top, a level at a time, from a store of today's layout (${backendLabel(backend)} SHA-256)`, async function () {
      useBackendOrSkip(this, backend);
      try {
        const { kv, root, nodes } = await storeWithInnerNodesFrom(STORED_TREE_DEPTH, 20_000);
        const top = (await TreeStore.loadTop(kv)).top;
        const topNodes = nodes.filter((w) => w.id.charCodeAt(0) < STORED_TREE_DEPTH);
        for (const w of topNodes) assert.deepEqual(top.get(w.id), w.node ?? undefined, `depth ${w.id.charCodeAt(0)}`);
        assert.ok(topNodes.some((w) => w.node && w.node[0] !== INNER_PREFIX), 'leaves above the stored depth');
        assert.equal(toHex(await new TreeStore(kv, top, () => undefined).root()), root);
      } finally {
        useInnerHashBackend('native');
      }
    });
  }

  describe('the checkpoint of the top a clean close leaves (M "top")', () => {
    /** A store of 20,000 accounts with the checkpoint of its top written, as ChainDB.close writes it. */
    async function checkpointed() {
      const built = await storeWithInnerNodesFrom(STORED_TREE_DEPTH, 20_000);
      const { top } = await TreeStore.loadTop(built.kv);
      const checkpoint = await new TreeStore(built.kv, top, () => undefined).topCheckpoint();
      await built.kv.write([{ type: 'put', key: layout.topCheckpoint, value: checkpoint }]);
      return { ...built, checkpoint, tipRoot: Uint8Array.from(Buffer.from(built.root, 'hex')) };
    }

    it('rebuilds the whole top from it without reading the nodes stored at depth 18, and deletes it', async () => {
      const { kv, root, nodes, tipRoot } = await checkpointed();
      // Gone from the store: a top that is right now came from the checkpoint.
      const deep = nodes.filter((w) => w.node && w.id.charCodeAt(0) === STORED_TREE_DEPTH);
      assert.ok(deep.length > 100, `${deep.length} nodes at the stored depth`);
      await kv.write(deep.map((w) => ({ type: 'del' as const, key: layout.stateNode(w.id) })));
      const { top, from } = await TreeStore.loadTop(kv, tipRoot);
      assert.equal(from, 'checkpoint');
      const topNodes = nodes.filter((w) => w.id.charCodeAt(0) < STORED_TREE_DEPTH);
      assert.ok(topNodes.some((w) => w.node && w.node[0] === INNER_PREFIX && w.id.charCodeAt(0) === STORED_TREE_DEPTH - 1), 'inner nodes at the checkpoint\'s depth');
      for (const w of topNodes) assert.deepEqual(top.get(w.id), w.node ?? undefined, `depth ${w.id.charCodeAt(0)}`);
      assert.equal(toHex(await new TreeStore(kv, top, () => undefined).root()), root);
      assert.equal(await kv.get(layout.topCheckpoint), undefined, 'read once: a kill after this open finds none');
    });

    const spoilt: [string, (c: Uint8Array, nodes: readonly TreeWrite[]) => Uint8Array][] = [
      ['made for another state root', (c) => c.map((b, i) => (i === 1 ? b ^ 1 : b))],
      ['with a byte of a node changed', (c) => c.map((b, i) => (i === c.length - 1 ? b ^ 1 : b))],
      ['cut short', (c) => c.subarray(0, c.length - 1)],
      ['of another version', (c) => c.map((b, i) => (i === 0 ? 2 : b))],
      [
        'with a node under a stored leaf',
        (c, nodes) => {
          // An inner node at depth 17 where the subtree of a leaf stored higher up lies.
          const leaf = nodes.find((w) => w.node && w.node[0] !== INNER_PREFIX && w.id.charCodeAt(0) < STORED_TREE_DEPTH - 1)!;
          const slot = parseInt(toHex(keyBytes(leaf.id).subarray(0, 3)), 16) >>> (24 - (STORED_TREE_DEPTH - 1));
          const view = new DataView(c.buffer, c.byteOffset, c.length);
          const n = view.getUint32(33);
          const slots = Array.from({ length: n }, (_, k) => view.getUint32(37 + 4 * k));
          const at = slots.findIndex((s) => s > slot);
          const k = at === -1 ? n : at;
          const out = new Uint8Array(c.length + 68);
          const outView = new DataView(out.buffer);
          out.set(c.subarray(0, 37));
          outView.setUint32(33, n + 1);
          [...slots.slice(0, k), slot, ...slots.slice(k)].forEach((s, i) => outView.setUint32(37 + 4 * i, s));
          const bodies = c.subarray(37 + 4 * n);
          out.set(bodies.subarray(0, 64 * k), 37 + 4 * (n + 1));
          out.fill(7, 37 + 4 * (n + 1) + 64 * k, 37 + 4 * (n + 1) + 64 * (k + 1));
          out.set(bodies.subarray(64 * k), 37 + 4 * (n + 1) + 64 * (k + 1));
          return out;
        },
      ],
    ];
    for (const [what, spoil] of spoilt) {
      it(`sets aside one ${what}, and rebuilds from the stored nodes`, async () => {
        const { kv, root, nodes, checkpoint, tipRoot } = await checkpointed();
        await kv.write([{ type: 'put', key: layout.topCheckpoint, value: spoil(checkpoint, nodes) }]);
        const { top, from } = await TreeStore.loadTop(kv, tipRoot);
        assert.equal(from, 'scan');
        assert.equal(toHex(await new TreeStore(kv, top, () => undefined).root()), root);
        assert.equal(await kv.get(layout.topCheckpoint), undefined);
      });
    }
  });

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
