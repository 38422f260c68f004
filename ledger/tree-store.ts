import { StoreError } from './errors.ts';
import { layout } from './layout.ts';
import type { BatchOp, KvStore } from './kv.ts';
import type { NodeWrite } from './commit-queue.ts';
import { EMPTY_HASH, INNER_NODE_BYTES, INNER_PREFIX, innerNode, newNode, nodeHash, positionId, positionIdOfBytes, type TreeNodeReader, type TreeUpdate } from './smt.ts';

/**
 * The top of the state tree lives in memory only: inner nodes shallower than this are never
 * stored, but rebuilt when the store opens from the nodes at this depth and the leaves above it
 * (docs/PROTOCOL.md, "Keys and values"). Every block rewrites the top of the tree, so this spares
 * most of its writes and reads; it is at most 2^14 − 1 inner nodes, about 3 MB.
 */
export const STORED_TREE_DEPTH = 14;

/** Levels read together below the top: the paths of a million accounts end about six below it. */
const READ_AHEAD = 4;

/**
 * The state tree's nodes for ChainDB, by position (ledger/smt.ts): the top in memory, kept as the
 * queued writes leave it; below it, what the commit queue holds for the store (`queued`), then the
 * store. It turns a tree update into store operations; ChainDB writes them in the block's unit.
 */
export class TreeStore implements TreeNodeReader {
  private readonly kv: KvStore;
  /** Every node shallower than STORED_TREE_DEPTH (absent: the position is empty). */
  private readonly top: TopNodes;
  private readonly queued: (id: string) => Uint8Array | null | undefined;

  constructor(kv: KvStore, top: TopNodes, queued: (id: string) => Uint8Array | null | undefined) {
    this.kv = kv;
    this.top = top;
    this.queued = queued;
  }

  /**
   * Rebuilds the top of the tree from the store: the leaves above STORED_TREE_DEPTH as stored, and
   * every inner node above it from the nodes below, a level at a time.
   */
  static async loadTop(kv: KvStore): Promise<TopNodes> {
    const top = new Map<string, Uint8Array>();
    let level = new Map<string, Uint8Array>();
    const range = { gte: Uint8Array.of(0x53, 0), lt: Uint8Array.of(0x53, STORED_TREE_DEPTH + 1) };
    for await (const [key, value] of kv.iterate(range)) {
      const id = positionIdOfBytes(key.subarray(1));
      if (id.charCodeAt(0) === STORED_TREE_DEPTH) level.set(id, value);
      else if (value[0] === INNER_PREFIX) throw new StoreError('STORE_CORRUPT', `an inner state tree node is stored above depth ${STORED_TREE_DEPTH}`);
      else top.set(id, value);
    }
    for (let depth = STORED_TREE_DEPTH - 1; depth >= 0; depth--) {
      const halves = new Map<string, [Uint8Array, Uint8Array]>();
      for (const [id, node] of level) {
        const key = keyOfPosition(id);
        const parent = positionId(key, depth);
        const pair = halves.get(parent) ?? [EMPTY_HASH, EMPTY_HASH];
        pair[(key[depth >>> 3]! >>> (7 - (depth & 7))) & 1] = nodeHash(node);
        halves.set(parent, pair);
      }
      const next = new Map<string, Uint8Array>();
      for (const [id, node] of top) if (id.charCodeAt(0) === depth) next.set(id, node);
      for (const [id, [left, right]] of halves) {
        if (next.has(id)) throw new StoreError('STORE_CORRUPT', 'a state tree leaf is stored above nodes of its own subtree');
        const inner = innerNode(left, right);
        top.set(id, inner);
        next.set(id, inner);
      }
      level = next;
    }
    return TopNodes.of(top);
  }

  /** The top from memory; below it queued writes first, then the store, all misses in one read. */
  async readNodes(ids: readonly string[]): Promise<(Uint8Array | undefined)[]> {
    const out: (Uint8Array | undefined)[] = new Array(ids.length);
    const missing: number[] = [];
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      if (id.charCodeAt(0) < STORED_TREE_DEPTH) {
        out[i] = this.top.get(id);
        continue;
      }
      const queued = this.queued(id);
      if (queued === undefined) missing.push(i);
      else out[i] = queued ?? undefined;
    }
    if (missing.length === 0) return out;
    const values = await this.kv.getMany(missing.map((i) => layout.stateNode(ids[i]!)));
    missing.forEach((i, k) => (out[i] = values[k]));
    return out;
  }

  /** Below the top, a path is read READ_AHEAD levels at a time: most take one round trip to the store. */
  readAhead(depth: number): number {
    return depth >= STORED_TREE_DEPTH ? READ_AHEAD : 0;
  }

  /** The root as the queued writes leave it: the tip's state root. */
  async root(): Promise<Uint8Array> {
    const [root] = await this.readNodes([String.fromCharCode(0)]);
    return root ? new Uint8Array(nodeHash(root)) : EMPTY_HASH;
  }

  /** Every node the store holds, in store order (call once the queue is flushed). */
  async *stored(): AsyncGenerator<{ id: string; node: Uint8Array }> {
    for await (const [key, value] of this.kv.iterate(layout.range('S'))) yield { id: positionIdOfBytes(key.subarray(1)), node: value };
  }

  /** The store operations of a tree update, the top updated as they are made (the update is queued). */
  ops(update: TreeUpdate): BatchOp[] {
    return TreeStore.ops(update, this.top);
  }

  /**
   * The writes of a tree update as store operations, with `top` updated in place: above
   * STORED_TREE_DEPTH only leaves are stored, so an inner node there is no write at all, save the
   * removal of a leaf it replaces.
   */
  static ops(update: TreeUpdate, top: TopNodes): BatchOp[] {
    const ops: BatchOp[] = [];
    for (const w of update.writes) {
      if (w.id.charCodeAt(0) >= STORED_TREE_DEPTH) {
        const key = layout.stateNode(w.id);
        ops.push(w.node ? { type: 'put', key, value: w.node } : { type: 'del', key });
        continue;
      }
      if (w.node && w.node[0] !== INNER_PREFIX) ops.push({ type: 'put', key: layout.stateNode(w.id), value: w.node });
      else if (top.holdsLeaf(w.id)) ops.push({ type: 'del', key: layout.stateNode(w.id) });
      if (w.node) top.set(w.id, w.node);
      else top.delete(w.id);
    }
    return ops;
  }

  /** The writes below the top, for the commit queue to answer reads of until they are committed. */
  static stored(update: TreeUpdate): NodeWrite[] {
    return update.writes.filter((w) => w.id.charCodeAt(0) >= STORED_TREE_DEPTH);
  }
}

/** The key bytes a position id stands for, padded to 32 (the bits past its depth are zero). */
function keyOfPosition(id: string): Uint8Array {
  const key = new Uint8Array(32);
  for (let i = 1; i < id.length; i++) key[i - 1] = id.charCodeAt(i);
  return key;
}

/**
 * The top of the tree in one flat array: every position shallower than STORED_TREE_DEPTH has a
 * slot of an inner node's size, at 2^depth − 1 plus the position's bits read as a number. About
 * 1 MB however many accounts there are, and no object per node for the collector to trace.
 * Reads return copies: a slot is rewritten by the update after the one that read it.
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
    // The position's bits, most significant first: at most STORED_TREE_DEPTH of them, in two bytes.
    const bits = depth === 0 ? 0 : (((id.charCodeAt(1) << 8) | (id.length > 2 ? id.charCodeAt(2) : 0)) >>> (16 - depth));
    return (1 << depth) - 1 + bits;
  }

  get(id: string): Uint8Array | undefined {
    const slot = this.slot(id);
    const length = this.lengths[slot]!;
    if (length === 0) return undefined;
    const node = newNode(length);
    node.set(this.bytes.subarray(slot * INNER_NODE_BYTES, slot * INNER_NODE_BYTES + length));
    return node;
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
