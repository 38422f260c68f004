import { layout } from './layout.ts';
import { batchOp, type BatchOp, type KvStore } from './kv.ts';
import { EMPTY_HASH, INNER_PREFIX, bitAt, eachWrite, newNode, nodeHash, positionId, positionIdOfBytes, zeroAt, type TreeNodeReader, type TreeUpdate } from './smt.ts';
import { NodeCache, STORED_TREE_DEPTH, TopNodes, type TopPin } from './tree-memory.ts';
import { encodeTopCheckpoint, rebuildTop } from './top-rebuild.ts';

/*
 * The top of the state tree lives in memory only: inner nodes shallower than STORED_TREE_DEPTH are
 * never stored, but rebuilt when the store opens from the nodes at that depth and the leaves above
 * it (docs/PROTOCOL.md, "Keys and values"). Every block rewrites the top of the tree, so this
 * spares most of its writes and reads.
 */
export { STORED_TREE_DEPTH, TopNodes };

/**
 * Positions below the top kept in memory (ledger/tree-memory.ts NodeCache): about 8.5 MB. Enough
 * for every stored node of a tree of some tens of thousands of accounts, and for the upper stored
 * levels of a larger one, which every block's paths cross.
 */
const CACHED_NODES = 1 << 17;

/** Levels read together below the top: the paths of a million accounts end two to four below it. */
const READ_AHEAD = 4;

/** Reads a prefetch makes at most, each READ_AHEAD levels deeper on the paths not yet ended. */
const PREFETCH_ROUNDS = 3;

/** Tree nodes read from the store below the top: when needed (a block connecting, a proof), and ahead of a block by prefetches. */
export interface TreeReads {
  nodes: number;
  prefetched: number;
}

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
  private readonly cache: NodeCache;
  /** For each prefetch reading the store, the positions written since it started (TreeStore.prefetch). */
  private readonly writtenDuringReads = new Set<Set<string>>();
  /** The positions prefetches are reading, each with its prefetch's end. */
  private readonly prefetching = new Map<string, Promise<void>>();
  private readonly reads: TreeReads;

  constructor(kv: KvStore, top: TopNodes, queued: (id: string) => Uint8Array | null | undefined, cachedNodes = CACHED_NODES, reads: TreeReads = { nodes: 0, prefetched: 0 }) {
    this.cache = new NodeCache(cachedNodes);
    this.reads = reads;
    this.kv = kv;
    this.top = top;
    this.queued = queued;
  }

  /**
   * Rebuilds the top of the tree from the store: the leaves above STORED_TREE_DEPTH as stored, and
   * every inner node above it from the nodes below, a level at a time. A store written when fewer
   * levels were kept in memory also holds inner nodes from LEGACY_STORED_TREE_DEPTH down: the
   * rebuild does not need them, and they are deleted in one batch (the store's one migration;
   * until it commits, nothing reads them, and the next open repeats it). With `M "top"` from a
   * clean close that hashes up to `tipRoot` (by default the stored tip's state root), the nodes at
   * that depth are not read at all.
   */
  static loadTop(kv: KvStore, tipRoot?: Uint8Array): Promise<{ top: TopNodes; from: 'checkpoint' | 'scan' }> {
    return rebuildTop(kv, tipRoot);
  }

  /** What the next open rebuilds the top from (`M "top"`, ledger/top-rebuild.ts): written at a clean close. */
  async topCheckpoint(): Promise<Uint8Array> {
    return encodeTopCheckpoint(this.top, await this.root());
  }

  /**
   * The top from memory; below it queued writes first, then the cache, then the store, all misses
   * in one read. A position under a leaf or an empty half is empty, which the ids asked for with it
   * often show: those are not asked of the store (a path read ahead past its end).
   */
  async readNodes(ids: readonly string[]): Promise<(Uint8Array | undefined)[]> {
    const out: (Uint8Array | undefined)[] = new Array(ids.length);
    let missing: number[] | undefined;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      if (id.charCodeAt(0) < STORED_TREE_DEPTH) {
        out[i] = this.top.get(id);
        continue;
      }
      const known = this.queuedOrCached(id);
      if (known === undefined) (missing ??= []).push(i);
      else out[i] = known ?? undefined;
    }
    if (missing === undefined) return out;
    const asked = new Map<string, number>();
    ids.forEach((id, i) => asked.set(id, i));
    const unresolved = new Set(missing);
    missing.sort((a, b) => ids[a]!.charCodeAt(0) - ids[b]!.charCodeAt(0));
    let fromStore: number[] = [];
    for (const i of missing) {
      if (this.knownEmpty(ids[i]!, asked, out, unresolved)) {
        out[i] = undefined;
        unresolved.delete(i);
      } else {
        fromStore.push(i);
      }
    }
    if (fromStore.length === 0) return out;
    fromStore = await this.afterPrefetches(ids, fromStore, out);
    if (fromStore.length === 0) return out;
    // A read is awaited by its update under the import lock, but one a failed import left running
    // (a block refused for a signature while its tree read was out) may end after the next block
    // wrote its positions, and that write committed: what the store answered it is then older
    // than what the cache holds. As a prefetch's, such a position is not cached over.
    const written = new Set<string>();
    this.writtenDuringReads.add(written);
    let values: (Uint8Array | undefined)[];
    try {
      values = await this.kv.getMany(fromStore.map((i) => layout.stateNode(ids[i]!)));
    } finally {
      this.writtenDuringReads.delete(written);
    }
    this.reads.nodes += fromStore.length;
    fromStore.forEach((i, k) => {
      out[i] = values[k];
      // Not over a write queued meanwhile: the queue answers for the position until it commits.
      if (this.queued(ids[i]!) === undefined && !written.has(ids[i]!)) this.cache.set(ids[i]!, values[k]);
    });
    return out;
  }

  /**
   * Reads into the cache the stored nodes on `keys`' paths that neither the queue nor the cache
   * holds, READ_AHEAD levels from where what is known ends, and as many again for the paths that
   * go deeper, up to `rounds` reads: for a block next in line, while the one before it connects,
   * so its reads overlap that work instead of following it; readNodes waits for them. Unlike
   * readNodes it may run beside a tree update and its commit: a position written after the read
   * started holds something newer than the store answered, so it is not cached over. Nothing is
   * read for a path known to end in the top or in the cache.
   */
  prefetch(keys: Iterable<Uint8Array>, rounds = PREFETCH_ROUNDS): Promise<void> {
    const ids: string[] = [];
    const asked = new Set<string>();
    const open: Uint8Array[] = [];
    for (const key of keys) {
      const from = this.firstUnknown(key);
      if (from === undefined) continue;
      open.push(key);
      for (let depth = from; depth < from + READ_AHEAD && depth <= 8 * key.length; depth++) {
        const id = positionId(key, depth);
        if (asked.has(id) || this.prefetching.has(id)) continue;
        asked.add(id);
        ids.push(id);
      }
    }
    if (ids.length === 0) return Promise.resolve();
    // Nothing queued is asked for: not the first unknown position of a path, and not one below it,
    // since a write rewrites every node above it. The read holds what was committed before it.
    const written = new Set<string>();
    this.writtenDuringReads.add(written);
    const done = this.kv.getMany(ids.map((id) => layout.stateNode(id))).then(
      (values) => {
        this.writtenDuringReads.delete(written);
        this.reads.prefetched += ids.length;
        ids.forEach((id, i) => {
          if (!written.has(id)) this.cache.set(id, values[i]);
        });
        // Paths that go deeper than this read: on, while the block before is still connecting.
        if (rounds > 1) void this.prefetch(open, rounds - 1);
      },
      // The import reads what a failed prefetch did not, and meets the store's error itself.
      () => {
        this.writtenDuringReads.delete(written);
      },
    ).finally(() => {
      for (const id of ids) if (this.prefetching.get(id) === done) this.prefetching.delete(id);
    });
    for (const id of ids) this.prefetching.set(id, done);
    return done;
  }

  /**
   * The positions of `pending` (indexes into `ids`) still unknown once the prefetches reading any
   * of them are done; what those left in the cache goes into `out`. A read of its own would ask
   * the store for the same nodes a second time, and finish no sooner.
   */
  private async afterPrefetches(ids: readonly string[], pending: number[], out: (Uint8Array | undefined)[]): Promise<number[]> {
    let reading: Set<Promise<void>> | undefined;
    for (const i of pending) {
      const done = this.prefetching.get(ids[i]!);
      if (done) (reading ??= new Set()).add(done);
    }
    if (!reading) return pending;
    await Promise.all(reading);
    return pending.filter((i) => {
      const known = this.queuedOrCached(ids[i]!);
      if (known === undefined) return true;
      out[i] = known ?? undefined;
      return false;
    });
  }

  /**
   * The depth of the first position on `key`'s path below the top that only the store knows, or
   * undefined when the path ends (a leaf, an empty position) in the top or in what is cached.
   */
  private firstUnknown(key: Uint8Array): number | undefined {
    let node = this.top.peek(positionId(key, STORED_TREE_DEPTH - 1));
    for (let depth = STORED_TREE_DEPTH; ; depth++) {
      if (node === undefined || node[0] !== INNER_PREFIX || zeroAt(node, bitAt(key, depth - 1) === 0 ? 1 : 33)) return undefined;
      if (depth > 8 * key.length) return undefined;
      const known = this.queuedOrCached(positionId(key, depth));
      if (known === undefined) return depth;
      node = known ?? undefined;
    }
  }

  /** The top as it is now, however later updates change it (TopNodes.pin). */
  pinTop(): TopPin {
    return this.top.pin();
  }

  /** The top, and below it what the queue or the cache holds; `false` for a position only the store knows. */
  readNow(id: string): Uint8Array | undefined | false {
    if (id.charCodeAt(0) < STORED_TREE_DEPTH) return this.top.peek(id);
    const known = this.queuedOrCached(id);
    return known === undefined ? false : (known ?? undefined);
  }

  /** A position below the top as the queue will leave it: a node, `null` for empty, `undefined` if unknown here. */
  private queuedOrCached(id: string): Uint8Array | null | undefined {
    const queued = this.queued(id);
    return queued !== undefined ? queued : this.cache.get(id);
  }

  /**
   * Whether position `id` is empty by what its parent holds: nothing, a leaf, or an inner node
   * whose half on `id`'s side is empty. The parent is looked up among the ids of this read (those
   * resolved so far), then where readNodes looks.
   */
  private knownEmpty(id: string, asked: Map<string, number>, out: (Uint8Array | undefined)[], unresolved: Set<number>): boolean {
    const depth = id.charCodeAt(0);
    if (depth === 0) return false;
    const parentId = parentOf(id);
    let parent: Uint8Array | null | undefined;
    const i = asked.get(parentId);
    if (i !== undefined) {
      if (unresolved.has(i)) return false;
      parent = out[i] ?? null;
    } else if (depth - 1 < STORED_TREE_DEPTH) {
      parent = this.top.get(parentId) ?? null;
    } else {
      parent = this.queuedOrCached(parentId);
      if (parent === undefined) return false;
    }
    if (parent === null || parent[0] !== INNER_PREFIX) return true;
    const bit = (id.charCodeAt(1 + ((depth - 1) >>> 3)) >>> (7 - ((depth - 1) & 7))) & 1;
    return zeroAt(parent, bit === 0 ? 1 : 33);
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

  /**
   * The store operations of a tree update, each a latest-value write with its position as its
   * slot, and its writes below the top for the commit queue to answer reads of until they are
   * committed, into `sink` as they are made; the top and the cache are updated as they go (the
   * update is queued). What is kept of the update's inner nodes is copied, and the update released:
   * the next may reuse them.
   */
  apply(update: TreeUpdate, sink: TreeWriteSink): void {
    TreeStore.eachOp(
      update,
      this.top,
      (slot, key, value) => sink.latest('node', slot, key, value),
      (id, node) => {
        const kept = node && node[0] === INNER_PREFIX ? copyNode(node) : node;
        this.cache.set(id, kept);
        for (const written of this.writtenDuringReads) written.add(id);
        sink.node(id, kept);
        return kept;
      },
    );
    update.release?.();
  }

  /** The writes of a tree update as store operations, with `top` updated in place (see eachOp). */
  static ops(update: TreeUpdate, top: TopNodes): BatchOp[] {
    const ops: BatchOp[] = [];
    TreeStore.eachOp(update, top, (_slot, key, value) => ops.push(batchOp(key, value)));
    return ops;
  }

  /**
   * The writes of a tree update as store operations, into `emit`, with `top` updated in place:
   * above STORED_TREE_DEPTH only leaves are stored, so an inner node there is no write at all, save
   * the removal of a leaf it replaces. Each is the latest value of its position (`slot`: the id). A
   * write below the top is written as `keep` returns it (the node it keeps, perhaps a copy).
   */
  private static eachOp(
    update: TreeUpdate,
    top: TopNodes,
    emit: (slot: string, key: Uint8Array, value: Uint8Array | undefined) => void,
    keep: (id: string, node: Uint8Array | null) => Uint8Array | null = (_id, node) => node,
  ): void {
    eachWrite(update, (id, written) => {
      const stored = id.charCodeAt(0) >= STORED_TREE_DEPTH;
      const node = stored ? keep(id, written) : written;
      // A key is made only for the writes that become operations: most of an update's writes are
      // inner nodes of the top, which are none.
      if (node && (stored || node[0] !== INNER_PREFIX)) emit(id, layout.stateNode(id), node);
      else if (stored || top.holdsLeaf(id)) emit(id, layout.stateNode(id), undefined);
      if (stored) return;
      if (node) top.set(id, node);
      else top.delete(id);
    });
  }
}

/** Whether the store keeps the node at position `id`: every node from STORED_TREE_DEPTH down, and leaves above it (the rest is rebuilt on open). */
export function storesNode(id: string, node: Uint8Array): boolean {
  return id.charCodeAt(0) >= STORED_TREE_DEPTH || node[0] !== INNER_PREFIX;
}

/** Where TreeStore.apply puts an update's writes: a unit of the commit queue (CommitQueue.unit). */
export interface TreeWriteSink {
  latest(kind: 'node', slot: string, key: Uint8Array, value: Uint8Array | undefined): void;
  node(id: string, node: Uint8Array | null): void;
}

/** A node's own copy, on a slab (smt.ts `newNode`). */
function copyNode(node: Uint8Array): Uint8Array {
  const copy = newNode(node.length);
  copy.set(node);
  return copy;
}

/** The id of the position right above `id` (depth one less, the last bit of its path cleared). */
function parentOf(id: string): string {
  const depth = id.charCodeAt(0) - 1;
  const whole = depth >>> 3;
  const rest = depth & 7;
  let parent = String.fromCharCode(depth) + id.slice(1, 1 + whole);
  if (rest !== 0) parent += String.fromCharCode(id.charCodeAt(1 + whole) & (0xff << (8 - rest)) & 0xff);
  return parent;
}
