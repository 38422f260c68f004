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
 * (docs/PROTOCOL.md). 18 levels are 17 MB of address space, resident as the tree fills them (all
 * of it from about 100k accounts). Each level moved into memory spares an import one stored write
 * and read per changed account where paths pass it: ~15% of a 100k-account import from 14 to 16,
 * and 16 to 18 took its CPU from 16.1 to 13.2 s (17 levels: 13.9; BENCHMARKS.md).
 */
export const STORED_TREE_DEPTH = 18;

/**
 * The shallowest depth at which stores written before STORED_TREE_DEPTH grew (it was 14, then 16)
 * hold inner nodes. Opening such a store deletes those it no longer keeps (TreeStore.loadTop).
 */
export const LEGACY_STORED_TREE_DEPTH = 14;

/**
 * The top: every position shallower than STORED_TREE_DEPTH has a slot, at 2^depth − 1 plus the
 * position's bits read as a number. 17 MB however many accounts there are (touched as they come).
 */
export class TopNodes {
  private readonly bytes = new Uint8Array(((1 << STORED_TREE_DEPTH) - 1) * INNER_NODE_BYTES);
  /** Each slot's node length; 0 where the position is empty. */
  private readonly lengths = new Uint8Array((1 << STORED_TREE_DEPTH) - 1);

  static of(nodes: ReadonlyMap<string, Uint8Array>): TopNodes {
    const top = new TopNodes();
    for (const [id, node] of nodes) top.set(id, node);
    return top;
  }

  private slot(id: string): number {
    const depth = id.charCodeAt(0);
    if (depth >= STORED_TREE_DEPTH) throw new RangeError(`position at depth ${depth} is not in the top`);
    // The position's bits, most significant first: fewer than 24 of them, in at most three bytes.
    const bits = depth === 0 ? 0 : ((id.charCodeAt(1) << 16) | (id.length > 2 ? id.charCodeAt(2) << 8 : 0) | (id.length > 3 ? id.charCodeAt(3) : 0)) >>> (24 - depth);
    return (1 << depth) - 1 + bits;
  }

  get(id: string): Uint8Array | undefined {
    const slot = this.slot(id);
    return copyOut(this.bytes, slot, this.lengths[slot]!);
  }

  /**
   * The node at `id`, an inner node as a view of the top's own bytes (valid until the top next
   * changes), a leaf as a copy: an update may move a leaf into a write the commit queue holds.
   */
  peek(id: string): Uint8Array | undefined {
    const slot = this.slot(id);
    const length = this.lengths[slot]!;
    const at = slot * INNER_NODE_BYTES;
    if (length === 0 || this.bytes[at] !== INNER_PREFIX) return copyOut(this.bytes, slot, length);
    return this.bytes.subarray(at, at + length);
  }

  /** Whether the position holds a leaf (leaves are the only nodes of the top the store keeps). */
  holdsLeaf(id: string): boolean {
    const slot = this.slot(id);
    return this.lengths[slot]! > 0 && this.bytes[slot * INNER_NODE_BYTES] !== INNER_PREFIX;
  }

  set(id: string, node: Uint8Array): void {
    const slot = this.slot(id);
    this.bytes.set(node, slot * INNER_NODE_BYTES);
    this.lengths[slot] = node.length;
  }

  delete(id: string): void {
    this.lengths[this.slot(id)] = 0;
  }
}

/**
 * Positions below the top as the store and the commit queue leave them: a node, or known empty.
 * A ring of slots, the oldest entry giving way to the newest. Every tree write goes through
 * TreeStore.ops, which updates its entries, so an entry is never stale. Without it, each block's
 * reads below the top were a LevelDB round trip or two that the import sat idle for.
 */
export class NodeCache {
  private readonly bytes: Uint8Array;
  /** Each slot's node length; 0: the position is empty. */
  private readonly lengths: Uint8Array;
  private readonly ids: (string | undefined)[];
  private readonly slots = new Map<string, number>();
  private hand = 0;

  constructor(size: number) {
    this.bytes = new Uint8Array(size * INNER_NODE_BYTES);
    this.lengths = new Uint8Array(size);
    this.ids = new Array(size);
  }

  /** The node at `id` (a copy), `null` where the position is known empty, `undefined` if not cached. */
  get(id: string): Uint8Array | null | undefined {
    const slot = this.slots.get(id);
    if (slot === undefined) return undefined;
    return copyOut(this.bytes, slot, this.lengths[slot]!) ?? null;
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
    if (node) this.bytes.set(node, slot * INNER_NODE_BYTES);
    this.lengths[slot] = node ? node.length : 0;
  }
}

function copyOut(bytes: Uint8Array, slot: number, length: number): Uint8Array | undefined {
  if (length === 0) return undefined;
  const node = newNode(length);
  node.set(bytes.subarray(slot * INNER_NODE_BYTES, slot * INNER_NODE_BYTES + length));
  return node;
}
