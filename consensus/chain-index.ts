import { bytesEqual, toHex } from '../ledger/bytes.ts';
import { decodeHeader, HEADER_BYTES } from '../ledger/block.ts';
import type { ChainDB } from '../ledger/chaindb.ts';
import { StoreError } from '../ledger/errors.ts';
import type { StoredIndexRecord } from '../ledger/history.ts';
import { BlockIndexEntry, HAVE_DATA, decodeIndexRecord } from './block-index.ts';

/**
 * The deepest reorganisation a node follows, in blocks below its tip: about 14 hours of the
 * devnet's 5-second blocks. A block whose parent is deeper is refused (BLOCK_FORK_TOO_DEEP),
 * the undo data a reorganisation needs is kept at least this deep (pruning may not go nearer
 * the tip), and the block index holds entries in memory this deep and no deeper.
 */
export const DEFAULT_REORG_DEPTH = 10_000;

/** Blocks below a fork point whose timestamps its children's median time past needs. */
const MEDIAN_SPAN = 10;

/**
 * The block index in memory: main-chain entries for a window of recent heights (the reorg depth
 * plus the span of median time past, and some slack so that it is trimmed in steps), and the
 * side branches off that window. The lowest main entry's parent link is cut. Everything older
 * stays in the store, reached by height (ChainDB.history), so memory does not grow with the chain
 * and opening a store reads the window, not the chain.
 */
export class ChainIndex {
  readonly reorgDepth: number;
  private readonly slack: number;
  private readonly byHash = new Map<string, BlockIndexEntry>();
  /** main[i] is the main-chain entry at height base + i; the last is the tip. */
  private main: BlockIndexEntry[] = [];
  private base = 0;
  /** Timestamp of the main chain's block 1, the anchor of entries whose parent is not in memory. */
  private anchor: number | undefined;
  /** The next arrival number (BlockIndexEntry.seq). */
  nextSeq = 1;

  private constructor(reorgDepth: number) {
    if (!Number.isSafeInteger(reorgDepth) || reorgDepth < 1) throw new RangeError(`reorg depth ${reorgDepth}`);
    this.reorgDepth = reorgDepth;
    this.slack = Math.max(16, Math.floor(reorgDepth / 10));
  }

  /** Loads the window below the stored tip and the side branches off it: a range scan, not the chain. */
  static async load(db: ChainDB, reorgDepth: number): Promise<ChainIndex> {
    const index = new ChainIndex(reorgDepth);
    const tip = await db.storedTip();
    const from = index.desiredBottom(tip.height);
    index.base = from;
    if (from > 1) index.anchor = await mainAnchor(db);
    await index.loadRange(db, from, tip.height + 1, 2 ** 32);
    if (index.tip.height !== tip.height || !bytesEqual(index.tip.hash, tip.hash)) {
      throw new StoreError('STORE_CORRUPT', `the index records below the tip ${toHex(tip.hash)} are incomplete`);
    }
    return index;
  }

  /**
   * Adds the main-chain entries of heights [from, to) from the store beneath (or, on first load,
   * as) the window, and the side records below `sidesTo` whose parent is loaded. The window's
   * lowest entry is linked to the new one below it.
   */
  private async loadRange(db: ChainDB, from: number, to: number, sidesTo = to): Promise<void> {
    const hashes = await db.history.mainHashes(from, to);
    const records = await db.history.records(from, sidesTo);
    const loaded: BlockIndexEntry[] = [];
    const below = this.main[0] && this.main[0].height === to ? this.main[0] : undefined;
    if (from === 0) {
      const genesis = new BlockIndexEntry(db.genesis.header, undefined, HAVE_DATA, 0);
      this.byHash.set(genesis.hashHex, genesis);
      loaded.push(genesis);
    }
    for (const r of records) {
      const isMain = bytesEqual(r.hash, hashes[r.height - from] ?? new Uint8Array(0));
      const record = decodeRecord(r);
      const parent = this.byHash.get(toHex(record.header.prevHash));
      if (!parent && !(isMain && r.height === from)) continue; // a branch that forks below the window
      const entry = BlockIndexEntry.fromRecord(record, parent, this.anchor);
      this.byHash.set(entry.hashHex, entry);
      if (isMain) loaded.push(entry);
      if (record.seq >= this.nextSeq) this.nextSeq = record.seq + 1;
    }
    if (loaded.length !== to - from) throw new StoreError('STORE_CORRUPT', `main-chain index records missing between heights ${from} and ${to}`);
    if (below) {
      // Extending downward: the new entries go beneath the window.
      below.attach(loaded.at(-1)!);
      this.main = [...loaded, ...this.main];
      this.base = from;
    } else {
      for (const e of loaded) this.pushMain(e);
    }
  }

  /** The lowest height the window should hold for a tip at `tipHeight`. */
  private desiredBottom(tipHeight: number): number {
    return Math.max(0, tipHeight - this.reorgDepth - MEDIAN_SPAN);
  }

  /** The lowest height a fork point may have: a block whose parent is lower is refused. */
  get forkFloor(): number {
    return Math.max(0, this.tip.height - this.reorgDepth);
  }

  /** The lowest main-chain height in memory. */
  get bottom(): number {
    return this.base;
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
    this.main.pop();
  }

  /**
   * Fits the window to the tip after it moved: trims the heights that fell below it (with the
   * side branches that fork there), in steps of `slack`, or loads from the store what a tip that
   * moved down needs beneath it. Returns the entries let go, for the caller's other sets.
   */
  async fit(db: ChainDB): Promise<BlockIndexEntry[]> {
    const want = this.desiredBottom(this.tip.height);
    if (want < this.base) {
      if (this.base > 1 && this.anchor === undefined) this.anchor = await mainAnchor(db);
      await this.loadRange(db, want, this.base);
      return [];
    }
    if (want - this.base < this.slack) return [];
    const dropped: BlockIndexEntry[] = [];
    for (const e of this.byHash.values()) {
      if (this.isMain(e)) continue;
      let fork: BlockIndexEntry | undefined = e;
      while (fork && !this.isMain(fork)) fork = fork.parent;
      if (!fork || fork.height < want) dropped.push(e);
    }
    for (const e of this.main.slice(0, want - this.base)) dropped.push(e);
    for (const e of dropped) this.byHash.delete(e.hashHex);
    if (this.base <= 1 && want > 1) this.anchor = this.mainAt(1)?.header.timestamp ?? this.anchor;
    this.main = this.main.slice(want - this.base);
    this.base = want;
    this.main[0]!.detach();
    return dropped;
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
  return r && decodeHeader(r.record.subarray(0, HEADER_BYTES)).timestamp;
}
