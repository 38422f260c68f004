import { bytesEqual, toHex } from '../ledger/bytes.ts';
import type { ChainDB } from '../ledger/chaindb.ts';
import { StoreError } from '../ledger/errors.ts';
import type { StoredIndexRecord } from '../ledger/history.ts';
import { BlockIndexEntry, HAVE_DATA, decodeIndexRecord } from './block-index.ts';

/**
 * The deepest reorganisation a node follows, in blocks below its tip: about 14 hours of the
 * devnet's 5-second blocks. A block whose parent is deeper is refused (BLOCK_FORK_TOO_DEEP),
 * and the undo data a reorganisation needs is kept at least this deep (pruning may not go
 * nearer the tip).
 */
export const DEFAULT_REORG_DEPTH = 10_000;

/**
 * Main-chain blocks below the tip kept in memory when nothing needs more: what fee estimates and
 * hash rates read, and the usual forks. Deeper forks, down to the reorg depth, load their part
 * of the chain from the store when a block of theirs arrives.
 */
export const DEFAULT_WINDOW = 1_000;

/** Blocks below a fork point whose timestamps its children's median time past needs. */
export const MEDIAN_SPAN = 10;

/**
 * The block index in memory: main-chain entries for a window of recent heights, and the side
 * branches off it. The lowest main entry's parent link is cut, so nothing older stays
 * reachable; everything older is in the store, reached by height (ChainDB.history). The window
 * is `window` blocks and the median span below the tip, trimmed in steps; it reaches deeper
 * (`ensure`, from the store) when a block builds on a block below it, never below the fork
 * floor (the reorg depth), and stays that deep while a side branch forks there. So memory does
 * not grow with the chain, and opening a store reads a thousand records, not the chain.
 *
 * Only the import queue changes it (Chain holds the lock around every async method here).
 */
export class ChainIndex {
  readonly reorgDepth: number;
  private readonly window: number;
  private readonly slack: number;
  private readonly byHash = new Map<string, BlockIndexEntry>();
  /** main[i] is the main-chain entry at height base + i; the last is the tip. */
  private main: BlockIndexEntry[] = [];
  private base = 0;
  /** Timestamp of the main chain's block 1, the anchor of entries whose parent is not in memory. */
  private anchor: number | undefined;
  /** The next arrival number (BlockIndexEntry.seq). */
  nextSeq = 1;
  /** The block the stored state began from (a snapshot sync's pivot): nothing below it can be undone. */
  private stateBase = 0;
  /** The height up to which the store has pruned bodies and undo data (it rises as the node runs). */
  private prunedHeight: () => number = () => 0;

  private constructor(reorgDepth: number, window: number) {
    if (!Number.isSafeInteger(reorgDepth) || reorgDepth < 1) throw new RangeError(`reorg depth ${reorgDepth}`);
    if (!Number.isSafeInteger(window) || window < 1) throw new RangeError(`window ${window}`);
    this.reorgDepth = reorgDepth;
    this.window = window;
    this.slack = Math.max(16, Math.floor(window / 10));
  }

  /**
   * Loads the window below the stored tip and the side branches off it, reaching deeper for a
   * stored branch that forks within the reorg depth: the window's records, and the keys alone of
   * the heights below it down to the reorg depth (a height with two records has a side branch).
   * Range scans of a few thousand keys, not the chain.
   */
  static async load(db: ChainDB, reorgDepth: number, window: number): Promise<ChainIndex> {
    const index = new ChainIndex(reorgDepth, window);
    index.stateBase = db.history.stateBase;
    index.prunedHeight = () => db.history.prunedHeight;
    const tip = await db.storedTip();
    const lowest = Math.max(0, tip.height - reorgDepth - MEDIAN_SPAN);
    let from = index.desiredBottom(tip.height);
    const side = await db.history.lowestSideHeight(lowest, from);
    if (side !== undefined) from = Math.max(lowest, side - 1 - MEDIAN_SPAN);
    index.base = from;
    await index.build(db, from, tip.height + 1, await db.history.mainHashes(from, tip.height + 1), await db.history.records(from));
    if (index.tip.height !== tip.height || !bytesEqual(index.tip.hash, tip.hash)) {
      throw new StoreError('STORE_CORRUPT', `the index records below the tip ${toHex(tip.hash)} are incomplete`);
    }
    return index;
  }

  /**
   * Adds the main-chain entries of heights [from, to) from the store beneath (or, on first load,
   * as) the window, and the side records whose parent is loaded. The window's lowest entry is
   * linked to the new one below it.
   */
  private async loadRange(db: ChainDB, from: number, to: number): Promise<void> {
    await this.build(db, from, to, await db.history.mainHashes(from, to), await db.history.records(from, to));
  }

  /** loadRange's work on what it read: `hashes` of the main chain from `from`, and the records. */
  private async build(db: ChainDB, from: number, to: number, hashes: readonly Uint8Array[], records: readonly StoredIndexRecord[]): Promise<void> {
    if (from > 1) this.anchor ??= await mainAnchor(db);
    const loaded: BlockIndexEntry[] = [];
    const above = this.main[0] && this.main[0].height === to ? this.main[0] : undefined;
    if (from === 0) {
      const genesis = new BlockIndexEntry(db.genesis.header, undefined, HAVE_DATA, 0);
      this.byHash.set(genesis.hashHex, genesis);
      loaded.push(genesis);
    }
    for (const r of records) {
      const isMain = bytesEqual(r.hash, hashes[r.height - from] ?? new Uint8Array(0));
      if (this.byHash.has(toHex(r.hash))) continue;
      const record = decodeRecord(r);
      const parent = this.byHash.get(toHex(record.header.prevHash));
      if (!parent && !(isMain && r.height === from)) continue; // a branch that forks below the window
      const entry = BlockIndexEntry.fromRecord(record, parent, this.anchor);
      this.byHash.set(entry.hashHex, entry);
      if (isMain) loaded.push(entry);
      if (record.seq >= this.nextSeq) this.nextSeq = record.seq + 1;
    }
    if (loaded.length !== to - from) throw new StoreError('STORE_CORRUPT', `main-chain index records missing between heights ${from} and ${to}`);
    if (above) {
      above.attach(loaded.at(-1)!);
      this.main = [...loaded, ...this.main];
    } else {
      for (const e of loaded) this.pushMain(e);
    }
    this.base = from;
  }

  /** The lowest height the window holds when nothing needs it deeper, for a tip at `tipHeight`. */
  private desiredBottom(tipHeight: number): number {
    return Math.max(0, tipHeight - this.window - MEDIAN_SPAN);
  }

  /**
   * The lowest height a fork point may have: a block whose parent is lower is refused. Never
   * below a snapshot sync's pivot, which has no undo data, nor below what was pruned: pruning
   * keeps the reorg depth below the tip, but a reorganisation to a branch with more work and
   * fewer blocks lowers the tip, and a fork below the pruned blocks would then have to undo
   * blocks whose undo data is gone (the store left with a tip it cannot reopen). Nor at a pruned
   * height: a reorganisation commits its fork point as the tip on its way to the branch, and a
   * kill there left a tip whose body was gone, a store that no open could read.
   */
  get forkFloor(): number {
    const pruned = this.prunedHeight();
    return Math.max(0, this.tip.height - this.reorgDepth, this.stateBase, pruned > 0 ? pruned + 1 : 0);
  }

  /** The lowest main-chain height in memory. */
  get bottom(): number {
    return this.base;
  }

  /** Loads the main chain from the store down to `height` (and what branches off there), if it is not in memory. */
  async ensure(db: ChainDB, height: number): Promise<void> {
    const from = Math.max(0, height);
    if (from < this.base) await this.loadRange(db, from, this.base);
  }

  get tip(): BlockIndexEntry {
    return this.main.at(-1)!;
  }

  get(hash: Uint8Array | string): BlockIndexEntry | undefined {
    return this.byHash.get(typeof hash === 'string' ? hash : toHex(hash));
  }

  add(entry: BlockIndexEntry): void {
    this.byHash.set(entry.hashHex, entry);
  }

  values(): IterableIterator<BlockIndexEntry> {
    return this.byHash.values();
  }

  get size(): number {
    return this.byHash.size;
  }

  mainAt(height: number): BlockIndexEntry | undefined {
    return height >= this.base ? this.main[height - this.base] : undefined;
  }

  isMain(entry: BlockIndexEntry): boolean {
    return this.mainAt(entry.height) === entry;
  }

  /** The tip moves up to `entry`, a child of the tip. */
  pushMain(entry: BlockIndexEntry): void {
    if (this.main.length > 0 && entry.parent !== this.tip) throw new Error(`entry ${entry.hashHex} is not a child of the tip`);
    this.main.push(entry);
  }

  /** The tip moves down to its parent. */
  popMain(): void {
    if (this.main.length <= 1) throw new Error('the window cannot lose its last entry');
    const gone = this.main.pop()!;
    // Block 1 anchors ASERT for the chain above it: once it leaves the main chain, the anchor kept
    // for entries loaded later from the store is another chain's (read again when next needed).
    if (gone.height === 1) this.anchor = undefined;
  }

  /**
   * Fits the window to the tip after it moved. Side branches that fork below the fork floor are
   * let go (they can never be followed); the others keep the window deep enough for their fork
   * point's median time past. Then the window is trimmed, in steps of `slack`, or loaded deeper
   * when the tip moved down. Returns the entries let go, for the caller's other sets.
   */
  async fit(db: ChainDB): Promise<BlockIndexEntry[]> {
    const floor = this.forkFloor;
    let want = this.desiredBottom(this.tip.height);
    const dropped: BlockIndexEntry[] = [];
    // Every main entry is in byHash, so a side branch exists only when it holds more: without one
    // (nearly always) the walk over a thousand entries each block is skipped.
    const sideEntries = this.byHash.size > this.main.length ? this.byHash.values() : [];
    const forks = new Map<BlockIndexEntry, BlockIndexEntry | undefined>();
    for (const e of sideEntries) {
      if (this.isMain(e)) continue;
      const fork = this.forkOf(e, forks);
      if (!fork || fork.height < floor) dropped.push(e);
      else want = Math.min(want, fork.height - MEDIAN_SPAN);
    }
    for (const e of dropped) this.byHash.delete(e.hashHex);
    want = Math.max(0, want);
    if (want < this.base) {
      await this.ensure(db, want);
    } else if (want - this.base >= this.slack) {
      for (const e of this.main.slice(0, want - this.base)) {
        this.byHash.delete(e.hashHex);
        dropped.push(e);
      }
      if (this.base <= 1 && want > 1) this.anchor ??= this.mainAt(1)!.header.timestamp;
      this.main = this.main.slice(want - this.base);
      this.base = want;
      this.main[0]!.detach();
    }
    return dropped;
  }

  /**
   * The main-chain entry a side entry's branch leaves from (undefined: below what memory holds),
   * noted in `known` for every entry on the way, so that the next entry of the branch stops where
   * this one's walk went. Walking each entry of a branch down alone cost the square of its length
   * every block: a branch of 3,000 (two halves of a network mining apart for a few hours, then
   * met) held up each block of the main chain 39 ms, for as long as the branch stayed above the
   * fork floor.
   */
  private forkOf(entry: BlockIndexEntry, known: Map<BlockIndexEntry, BlockIndexEntry | undefined>): BlockIndexEntry | undefined {
    const walked: BlockIndexEntry[] = [];
    let e: BlockIndexEntry | undefined = entry;
    while (e && !this.isMain(e) && !known.has(e)) {
      walked.push(e);
      e = e.parent;
    }
    const fork = e && !this.isMain(e) ? known.get(e) : e;
    for (const w of walked) known.set(w, fork);
    return fork;
  }
}

function decodeRecord(r: StoredIndexRecord) {
  const record = decodeIndexRecord(r.record);
  if (record.header.height !== r.height || !bytesEqual(record.header.hash, r.hash)) {
    throw new StoreError('STORE_CORRUPT', `the index record under ${r.height}/${toHex(r.hash)} is another block's`);
  }
  return record;
}

/** Block 1's timestamp, read from its stored index record. */
async function mainAnchor(db: ChainDB): Promise<number | undefined> {
  const [r] = await db.history.mainRecords(1, 1);
  return r && decodeIndexRecord(r.record).header.timestamp;
}
