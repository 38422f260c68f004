import { StoreError } from './errors.ts';
import { hashInnerBodies } from './inner-hashes.ts';
import type { BatchOp, KvStore } from './kv.ts';
import { INNER_PREFIX } from './smt.ts';
import { sha256JsInto } from './sha256.ts';
import { LEGACY_STORED_TREE_DEPTH, STORED_TREE_DEPTH, TopNodes } from './tree-memory.ts';

/**
 * The rebuild of the tree's top when a store opens (TreeStore.loadTop): every inner node shallower
 * than STORED_TREE_DEPTH from the nodes stored at that depth and the leaves stored above it.
 *
 * A level at a time, by slot (a position's bits as a number, as TopNodes keeps them): the store
 * yields a depth's nodes in path order, and the parents of nodes in slot order come out in slot
 * order, so each level is two sorted lists merged, and its inner nodes hashed in one native call
 * (ledger/inner-hashes.ts). Built over Maps of position ids, a node at a time in JavaScript, this
 * took 1.5 s at 200,000 accounts, as long again as checking the genesis, on every open.
 */

/** A level's nodes in slot order: each one's slot and, 32 bytes each, its hash. */
interface Level {
  readonly slots: number[];
  readonly hashes: Uint8Array;
}

export async function rebuildTop(kv: KvStore): Promise<TopNodes> {
  const top = new TopNodes();
  // Leaves above the stored depth, per depth, in slot order (the store's order).
  const leafSlots: number[][] = Array.from({ length: STORED_TREE_DEPTH }, () => []);
  const leafBytes: Uint8Array[][] = Array.from({ length: STORED_TREE_DEPTH }, () => []);
  const stored: { slots: number[]; nodes: Uint8Array[] } = { slots: [], nodes: [] };
  const superseded: BatchOp[] = [];
  const range = { gte: Uint8Array.of(0x53, 0), lt: Uint8Array.of(0x53, STORED_TREE_DEPTH + 1) };
  for await (const [key, value] of kv.iterate(range)) {
    const depth = key[1]!;
    const slot = slotOfKey(key, depth);
    if (depth === STORED_TREE_DEPTH) {
      stored.slots.push(slot);
      stored.nodes.push(value);
    } else if (value[0] !== INNER_PREFIX) {
      top.setAt(depth, slot, value);
      leafSlots[depth]!.push(slot);
      leafBytes[depth]!.push(value);
    } else if (depth >= LEGACY_STORED_TREE_DEPTH) {
      superseded.push({ type: 'del', key: key.slice() });
    } else {
      throw new StoreError('STORE_CORRUPT', `an inner state tree node is stored above depth ${LEGACY_STORED_TREE_DEPTH}`);
    }
  }
  let level = hashedLevel(stored.slots, stored.nodes);
  for (let depth = STORED_TREE_DEPTH - 1; depth >= 0; depth--) {
    const parents = parentsOf(level, depth, top);
    level = merged(parents, hashedLevel(leafSlots[depth]!, leafBytes[depth]!));
  }
  if (superseded.length > 0) await kv.write(superseded);
  return top;
}

/** The level's inner nodes (`slots`, in slot order, from the level below), written into `top` at `depth`, with their hashes. */
function parentsOf(children: Level, depth: number, top: TopNodes): Level {
  const slots: number[] = [];
  for (const child of children.slots) {
    const parent = child >>> 1;
    if (slots.length === 0 || slots[slots.length - 1] !== parent) slots.push(parent);
  }
  // Each parent's two child hashes side by side: the bytes its hash is taken of. A half with no
  // child stays zero, the empty subtree's hash (ledger/smt.ts EMPTY_HASH).
  const bodies = new Uint8Array(64 * slots.length);
  for (let i = 0, k = -1, last = -1; i < children.slots.length; i++) {
    const child = children.slots[i]!;
    if (child >>> 1 !== last) {
      last = child >>> 1;
      k++;
    }
    bodies.set(children.hashes.subarray(32 * i, 32 * i + 32), 64 * k + 32 * (child & 1));
  }
  for (let k = 0; k < slots.length; k++) top.setInner(depth, slots[k]!, bodies, 64 * k);
  const hashes = new Uint8Array(32 * slots.length);
  hashInnerBodies(bodies, hashes);
  return { slots, hashes };
}

/** Nodes read from the store, in slot order, with their hashes: inner nodes' in one native call. */
function hashedLevel(slots: number[], nodes: readonly Uint8Array[]): Level {
  const hashes = new Uint8Array(32 * nodes.length);
  const inner: number[] = [];
  for (let i = 0; i < nodes.length; i++) {
    if (nodes[i]![0] === INNER_PREFIX) inner.push(i);
    else sha256JsInto(nodes[i]!, hashes, 32 * i);
  }
  if (inner.length > 0) {
    const bodies = new Uint8Array(64 * inner.length);
    inner.forEach((i, k) => bodies.set(nodes[i]!.subarray(1, 65), 64 * k));
    const out = new Uint8Array(32 * inner.length);
    hashInnerBodies(bodies, out);
    inner.forEach((i, k) => hashes.set(out.subarray(32 * k, 32 * k + 32), 32 * i));
  }
  return { slots, hashes };
}

/** Two levels' nodes in one slot order; a position in both is a leaf stored over its own subtree. */
function merged(a: Level, b: Level): Level {
  if (b.slots.length === 0) return a;
  if (a.slots.length === 0) return b;
  const slots: number[] = [];
  const hashes = new Uint8Array(a.hashes.length + b.hashes.length);
  let i = 0;
  let j = 0;
  while (i < a.slots.length || j < b.slots.length) {
    const fromA = j === b.slots.length || (i < a.slots.length && a.slots[i]! < b.slots[j]!);
    if (!fromA && i < a.slots.length && a.slots[i] === b.slots[j]) {
      throw new StoreError('STORE_CORRUPT', 'a state tree leaf is stored above nodes of its own subtree');
    }
    const [from, at] = fromA ? [a, i++] : [b, j++];
    hashes.set(from.hashes.subarray(32 * at, 32 * at + 32), 32 * slots.length);
    slots.push(from.slots[at]!);
  }
  return { slots, hashes };
}

/** A stored node's slot from its key (layout.stateNode: a prefix byte, the depth, the path's bytes). */
function slotOfKey(key: Uint8Array, depth: number): number {
  if (depth === 0) return 0;
  return (((key[2] ?? 0) << 16) | ((key[3] ?? 0) << 8) | (key[4] ?? 0)) >>> (24 - depth);
}
