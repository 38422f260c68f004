import { StoreError } from './errors.ts';
import { hashInnerBodies } from './inner-hashes.ts';
import type { BatchOp, KvStore } from './kv.ts';
import { HEADER_BYTES, decodeHeader } from './block.ts';
import { bytesEqual } from './bytes.ts';
import { layout } from './layout.ts';
import { EMPTY_HASH, INNER_PREFIX } from './smt.ts';
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

/**
 * The top at a clean close, for the next open (`M "top"`): the inner nodes at the depth just above
 * the stored ones, and the root they hash up to. At a million accounts the open's rebuild spent
 * half its time scanning the ~256,000 nodes stored at STORED_TREE_DEPTH; the depth above holds
 * their hashes, so with it the rebuild reads one value and the few leaves above the stored depth.
 * Deleted as it is read: a store that a kill stops after the open has none, and is rebuilt in full.
 */
const CHECKPOINT_VERSION = 1;
const CHECKPOINT_DEPTH = STORED_TREE_DEPTH - 1;

/** `M "top"`: 01 ‖ root (32) ‖ n u32 ‖ the n slots (u32 BE, ascending) ‖ their n bodies (64 bytes each). */
export function encodeTopCheckpoint(top: TopNodes, root: Uint8Array): Uint8Array {
  const { slots, bodies } = top.innerNodesAt(CHECKPOINT_DEPTH);
  const out = new Uint8Array(1 + 32 + 4 + 4 * slots.length + bodies.length);
  const view = new DataView(out.buffer);
  out[0] = CHECKPOINT_VERSION;
  out.set(root, 1);
  view.setUint32(33, slots.length);
  slots.forEach((slot, k) => view.setUint32(37 + 4 * k, slot));
  out.set(bodies, 37 + 4 * slots.length);
  return out;
}

interface Checkpoint {
  readonly root: Uint8Array;
  readonly slots: number[];
  readonly bodies: Uint8Array;
}

/** The checkpoint's parts, or undefined for bytes that are not one (then the top is rebuilt in full). */
function decodeTopCheckpoint(bytes: Uint8Array): Checkpoint | undefined {
  if (bytes.length < 37 || bytes[0] !== CHECKPOINT_VERSION) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const n = view.getUint32(33);
  if (bytes.length !== 37 + 68 * n) return undefined;
  const slots: number[] = [];
  for (let k = 0; k < n; k++) {
    const slot = view.getUint32(37 + 4 * k);
    if (slot >= 1 << CHECKPOINT_DEPTH || (k > 0 && slot <= slots[k - 1]!)) return undefined;
    slots.push(slot);
  }
  return { root: bytes.subarray(1, 33), slots, bodies: bytes.subarray(37 + 4 * n) };
}

/**
 * Rebuilds the top from the store: from `M "top"` if it is there and hashes up to `tipRoot` (by
 * default the state root of the stored tip), else from every node stored at STORED_TREE_DEPTH.
 * The checkpoint is only ever a shortcut: one that does not lead to that root is set aside.
 */
export async function rebuildTop(kv: KvStore, tipRoot?: Uint8Array): Promise<{ top: TopNodes; from: 'checkpoint' | 'scan' }> {
  const stored = await kv.get(layout.topCheckpoint);
  if (stored !== undefined) {
    await kv.write([{ type: 'del', key: layout.topCheckpoint }]);
    const checkpoint = decodeTopCheckpoint(stored);
    tipRoot ??= await storedTipRoot(kv);
    if (checkpoint && tipRoot && bytesEqual(checkpoint.root, tipRoot)) {
      const built = await buildTop(kv, checkpoint).catch((err: unknown) => {
        if (err instanceof StoreError) return undefined; // its nodes clash with the stored leaves
        throw err;
      });
      if (built && bytesEqual(built.root, tipRoot)) return { top: built.top, from: 'checkpoint' };
    }
  }
  return { top: (await buildTop(kv, undefined)).top, from: 'scan' };
}

/**
 * The state root of the block `M "tip"` names, if it reads as one (the open's own checks say what
 * is wrong if not): from its header, the encoding's first bytes, not a decode of the whole block.
 */
async function storedTipRoot(kv: KvStore): Promise<Uint8Array | undefined> {
  const hash = await kv.get(layout.tip);
  const bytes = hash && (await kv.get(layout.block(hash)));
  if (!bytes) return undefined;
  try {
    return decodeHeader(bytes.subarray(0, HEADER_BYTES)).stateRoot;
  } catch {
    return undefined;
  }
}

/**
 * The top from the leaves stored above STORED_TREE_DEPTH and either the nodes stored at it or a
 * checkpoint of the depth above it; with the root it hashes up to.
 */
async function buildTop(kv: KvStore, checkpoint: Checkpoint | undefined): Promise<{ top: TopNodes; root: Uint8Array }> {
  const top = new TopNodes();
  // Leaves above the stored depth, per depth, in slot order (the store's order).
  const leafSlots: number[][] = Array.from({ length: STORED_TREE_DEPTH }, () => []);
  const leafBytes: Uint8Array[][] = Array.from({ length: STORED_TREE_DEPTH }, () => []);
  const stored: { slots: number[]; nodes: Uint8Array[] } = { slots: [], nodes: [] };
  const superseded: BatchOp[] = [];
  const scanned = checkpoint ? STORED_TREE_DEPTH : STORED_TREE_DEPTH + 1;
  for await (const [key, value] of kv.iterate({ gte: Uint8Array.of(0x53, 0), lt: Uint8Array.of(0x53, scanned) })) {
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
  let level: Level;
  let depth: number;
  if (checkpoint) {
    for (let k = 0; k < checkpoint.slots.length; k++) top.setInner(CHECKPOINT_DEPTH, checkpoint.slots[k]!, checkpoint.bodies, 64 * k);
    const hashes = new Uint8Array(32 * checkpoint.slots.length);
    hashInnerBodies(checkpoint.bodies, hashes);
    level = merged({ slots: checkpoint.slots, hashes }, hashedLevel(leafSlots[CHECKPOINT_DEPTH]!, leafBytes[CHECKPOINT_DEPTH]!));
    depth = CHECKPOINT_DEPTH - 1;
  } else {
    level = hashedLevel(stored.slots, stored.nodes);
    depth = STORED_TREE_DEPTH - 1;
  }
  for (; depth >= 0; depth--) {
    const parents = parentsOf(level, depth, top);
    level = merged(parents, hashedLevel(leafSlots[depth]!, leafBytes[depth]!));
  }
  if (superseded.length > 0) await kv.write(superseded);
  return { top, root: level.slots.length === 0 ? EMPTY_HASH : level.hashes.slice(0, 32) };
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
