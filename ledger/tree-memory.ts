import { INNER_NODE_BYTES, INNER_PREFIX, newNode } from './smt.ts';

/**
 * The state tree's nodes held in memory for ChainDB's tree (ledger/tree-store.ts): all of its top,
 * and a bounded cache below it. Both keep nodes in flat arrays, a slot of an inner node's size
 * each, so that neither makes an object per node for the collector to trace. Reads return copies,
 * because a slot is rewritten by a later update than the one that read it; only a tree update's
 * own reads of the top (TopNodes.peek) see inner nodes in place, as it is done with them before
 * the next update.
 */

/**
 * Tree levels kept whole in memory: shallower inner nodes are never stored but rebuilt on open
 * (docs/PROTOCOL.md). 18 levels are 17 MB when full (a level's arrays are made with its first
 * node; a tree of ~100k accounts has all of them). Each level moved into memory spares an import
 * one stored write and read per changed account where paths pass it: ~15% of a 100k-account
 * import from 14 to 16, and 16 to 18 took its CPU from 16.1 to 13.2 s (17 levels: 13.9;
 * BENCHMARKS.md).
 */
export const STORED_TREE_DEPTH = 18;

/**
 * The shallowest depth at which stores written before STORED_TREE_DEPTH grew (it was 14, then 16)
 * hold inner nodes. Opening such a store deletes those it no longer keeps (TreeStore.loadTop).
 */
export const LEGACY_STORED_TREE_DEPTH = 14;

/**
 * The top: every position shallower than STORED_TREE_DEPTH has a slot in its level's flat array,
 * at the position's bits read as a number. A level's arrays are made when a node is first set in
 * it: a tree of a few accounts (a test's, a simulated node's) keeps a few small levels, and the
 * whole top of a large one is 17 MB.
 */
export class TopNodes {
  /** Per depth: 2^depth slots of an inner node's size, or undefined while the level is empty. */
  private readonly levels: (Uint8Array | undefined)[] = new Array(STORED_TREE_DEPTH).fill(undefined);
  /** Per depth: each slot's node length, 0 where the position is empty. */
  private readonly lengths: (Uint8Array | undefined)[] = new Array(STORED_TREE_DEPTH).fill(undefined);
  /** Each open pin's copies of the levels changed since it was taken. */
  private readonly pins = new Set<PinnedLevels>();

  static of(nodes: ReadonlyMap<string, Uint8Array>): TopNodes {
    const top = new TopNodes();
    for (const [id, node] of nodes) top.set(id, node);
    return top;
  }

  get(id: string): Uint8Array | undefined {
    const depth = depthOf(id);
    return this.getAt(depth, slotOf(id, depth));
  }

  private getAt(depth: number, slot: number): Uint8Array | undefined {
    const lengths = this.lengths[depth];
    return lengths === undefined ? undefined : copyOut(this.levels[depth]!, slot, lengths[slot]!);
  }

  /**
   * The top as it is now, however it changes after, until released: what a state proof below the
   * tip reads while blocks import (ledger/pinned-state.ts). A level is copied for it when it first
   * changes after (a few milliseconds of the import that changes it; the whole top is 17 MB), not
   * before: a pin no block outlives costs nothing.
   */
  pin(): TopPin {
    const pinned: PinnedLevels = { levels: [], lengths: [], copied: new Array<boolean>(STORED_TREE_DEPTH).fill(false) };
    this.pins.add(pinned);
    return {
      get: (id) => {
        const depth = depthOf(id);
        const slot = slotOf(id, depth);
        if (!pinned.copied[depth]) return this.getAt(depth, slot);
        const lengths = pinned.lengths[depth];
        return lengths === undefined ? undefined : copyOut(pinned.levels[depth]!, slot, lengths[slot]!);
      },
      release: () => void this.pins.delete(pinned),
    };
  }

  /** Copies the level about to change for the pins that still read it in place. */
  private keepForPins(depth: number): void {
    for (const pinned of this.pins) {
      if (pinned.copied[depth]) continue;
      pinned.copied[depth] = true;
      pinned.levels[depth] = this.levels[depth]?.slice();
      pinned.lengths[depth] = this.lengths[depth]?.slice();
    }
  }

  /**
   * The node at `id`, an inner node as a view of the top's own bytes (valid until the top next
   * changes), a leaf as a copy: an update may move a leaf into a write the commit queue holds.
   */
  peek(id: string): Uint8Array | undefined {
    const depth = depthOf(id);
    const lengths = this.lengths[depth];
    if (lengths === undefined) return undefined;
    const slot = slotOf(id, depth);
    const length = lengths[slot]!;
    const bytes = this.levels[depth]!;
    const at = slot * INNER_NODE_BYTES;
    if (length === 0 || bytes[at] !== INNER_PREFIX) return copyOut(bytes, slot, length);
    return bytes.subarray(at, at + length);
  }

  /** Whether the position holds a leaf (leaves are the only nodes of the top the store keeps). */
  holdsLeaf(id: string): boolean {
    const depth = depthOf(id);
    const lengths = this.lengths[depth];
    if (lengths === undefined) return false;
    const slot = slotOf(id, depth);
    return lengths[slot]! > 0 && this.levels[depth]![slot * INNER_NODE_BYTES] !== INNER_PREFIX;
  }

  set(id: string, node: Uint8Array): void {
    const depth = depthOf(id);
    this.setAt(depth, slotOf(id, depth), node);
  }

  /** `set` by the position's depth and slot (its bits as a number): the top's rebuild on open. */
  setAt(depth: number, slot: number, node: Uint8Array): void {
    if (this.pins.size > 0) this.keepForPins(depth);
    this.levelAt(depth).set(node, slot * INNER_NODE_BYTES);
    this.lengths[depth]![slot] = node.length;
  }

  /** An inner node whose two child hashes are `halves[at, at + 64)`, with no node made first. */
  setInner(depth: number, slot: number, halves: Uint8Array, at: number): void {
    if (this.pins.size > 0) this.keepForPins(depth);
    const bytes = this.levelAt(depth);
    bytes[slot * INNER_NODE_BYTES] = INNER_PREFIX;
    bytes.set(halves.subarray(at, at + 64), slot * INNER_NODE_BYTES + 1);
    this.lengths[depth]![slot] = INNER_NODE_BYTES;
  }

  /** The inner nodes at `depth`, in slot order: their slots, and their bodies (two child hashes, 64 bytes each) side by side. */
  innerNodesAt(depth: number): { slots: number[]; bodies: Uint8Array } {
    const lengths = this.lengths[depth];
    const slots: number[] = [];
    if (lengths === undefined) return { slots, bodies: new Uint8Array(0) };
    const bytes = this.levels[depth]!;
    for (let slot = 0; slot < lengths.length; slot++) {
      if (lengths[slot] !== 0 && bytes[slot * INNER_NODE_BYTES] === INNER_PREFIX) slots.push(slot);
    }
    const bodies = new Uint8Array(64 * slots.length);
    slots.forEach((slot, k) => bodies.set(bytes.subarray(slot * INNER_NODE_BYTES + 1, slot * INNER_NODE_BYTES + 65), 64 * k));
    return { slots, bodies };
  }

  /** The level's slots, made with its first node. */
  private levelAt(depth: number): Uint8Array {
    if (depth >= STORED_TREE_DEPTH) throw new RangeError(`position at depth ${depth} is not in the top`);
    if (this.lengths[depth] === undefined) {
      this.lengths[depth] = new Uint8Array(1 << depth);
      this.levels[depth] = new Uint8Array((1 << depth) * INNER_NODE_BYTES);
    }
    return this.levels[depth]!;
  }

  delete(id: string): void {
    const depth = depthOf(id);
    const lengths = this.lengths[depth];
    if (lengths === undefined) return;
    const slot = slotOf(id, depth);
    if (this.pins.size > 0) this.keepForPins(depth);
    lengths[slot] = 0;
  }
}

/** The top as it was when pinned (TopNodes.pin): a node is a copy, read it at leisure. */
export interface TopPin {
  get(id: string): Uint8Array | undefined;
  /** Ends the pin: the top keeps nothing more for it. */
  release(): void;
}

/** A pin's levels (TopNodes.pin), each copied when it first changed after the pin: as `TopNodes` holds them, by depth. */
interface PinnedLevels {
  readonly levels: (Uint8Array | undefined)[];
  readonly lengths: (Uint8Array | undefined)[];
  readonly copied: boolean[];
}

function depthOf(id: string): number {
  const depth = id.charCodeAt(0);
  if (depth >= STORED_TREE_DEPTH) throw new RangeError(`position at depth ${depth} is not in the top`);
  return depth;
}

/** The position's bits, most significant first: fewer than 24 of them, in at most three bytes. */
function slotOf(id: string, depth: number): number {
  if (depth === 0) return 0;
  return ((id.charCodeAt(1) << 16) | (id.length > 2 ? id.charCodeAt(2) << 8 : 0) | (id.length > 3 ? id.charCodeAt(3) : 0)) >>> (24 - depth);
}

/**
 * Positions below the top as the store and the commit queue leave them: a node, or known empty.
 * A ring of slots, the oldest entry giving way to the newest. Every tree write goes through
 * TreeStore.apply, which updates its entries, so an entry is never stale. Without it, each block's
 * reads below the top were a LevelDB round trip or two that the import sat idle for.
 */
export class NodeCache {
  /** The slots' bytes in chunks of CHUNK_SLOTS, each made when the ring first reaches it. */
  private readonly chunks: Uint8Array[] = [];
  /** Each slot's node length; 0: the position is empty. */
  private readonly lengths: Uint8Array;
  private readonly ids: (string | undefined)[];
  private readonly slots = new Map<string, number>();
  private hand = 0;

  constructor(size: number) {
    this.lengths = new Uint8Array(size);
    this.ids = new Array(size);
  }

  /** The node at `id` (a copy), `null` where the position is known empty, `undefined` if not cached. */
  get(id: string): Uint8Array | null | undefined {
    const slot = this.slots.get(id);
    if (slot === undefined) return undefined;
    return copyOut(this.chunks[slot >>> CHUNK_BITS]!, slot & (CHUNK_SLOTS - 1), this.lengths[slot]!) ?? null;
  }

  /** Records the node at `id`; `null` or `undefined`: the position is empty. */
  set(id: string, node: Uint8Array | null | undefined): void {
    let slot = this.slots.get(id);
    if (slot === undefined) {
      slot = this.hand;
      this.hand = (this.hand + 1) % this.lengths.length;
      const evicted = this.ids[slot];
      if (evicted !== undefined) this.slots.delete(evicted);
      this.ids[slot] = id;
      this.slots.set(id, slot);
    }
    if (node) (this.chunks[slot >>> CHUNK_BITS] ??= new Uint8Array(CHUNK_SLOTS * INNER_NODE_BYTES)).set(node, (slot & (CHUNK_SLOTS - 1)) * INNER_NODE_BYTES);
    this.lengths[slot] = node ? node.length : 0;
  }
}

/** NodeCache's slots come in chunks of 2^CHUNK_BITS (266 KB): a small tree never makes most of them. */
const CHUNK_BITS = 12;
const CHUNK_SLOTS = 1 << CHUNK_BITS;

/** A copy of the node in `slot` of `bytes`, byte by byte (no view made for it). */
function copyOut(bytes: Uint8Array, slot: number, length: number): Uint8Array | undefined {
  if (length === 0) return undefined;
  const node = newNode(length);
  const at = slot * INNER_NODE_BYTES;
  for (let i = 0; i < length; i++) node[i] = bytes[at + i]!;
  return node;
}
