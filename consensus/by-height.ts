import { bytesEqual } from '../ledger/bytes.ts';
import { decodeHeader, type BlockHeader } from '../ledger/block.ts';
import type { ChainDB } from '../ledger/chaindb.ts';
import type { BlockIndexEntry } from './block-index.ts';

/** What this needs of the chain: its window in memory. Chain has this shape. */
interface Window {
  readonly tip: BlockIndexEntry;
  readonly windowBottom: number;
  mainAt(height: number): BlockIndexEntry | undefined;
  getEntry(hash: Uint8Array): BlockIndexEntry | undefined;
  isMain(entry: BlockIndexEntry): boolean;
}

/**
 * The main chain by height, for peers, RPC and sync: heights in the block index's window are
 * answered from memory, older ones from the store (ChainDB.history), a range at a time. Nothing
 * here walks the chain, so a node with ten million blocks answers as fast as one with a hundred.
 * Reads only: a height the import queue is moving (the tip reorganising) may read either chain.
 */
export class ChainByHeight {
  private readonly chain: Window;
  private readonly db: ChainDB;

  constructor(chain: Window, db: ChainDB) {
    this.chain = chain;
    this.db = db;
  }

  /** The main chain's block hash at `height`. */
  async hashAt(height: number): Promise<Uint8Array | undefined> {
    return this.chain.mainAt(height)?.hash ?? (height < this.chain.windowBottom ? this.db.getHashAtHeight(height) : undefined);
  }

  /** The main chain's hashes for heights [from, from + count) (fewer past the tip). */
  async hashes(from: number, count: number): Promise<Uint8Array[]> {
    return this.mainRange(from, from + count, (lo, hi) => this.db.history.mainHashes(lo, hi), (e) => e.hash);
  }

  /** Whether the block with this hash and height is on the main chain. */
  async isMain(hash: Uint8Array, height: number): Promise<boolean> {
    const main = await this.hashAt(height);
    return main !== undefined && bytesEqual(main, hash);
  }

  /**
   * The header of the main-chain block with this hash: from the window, or below it through its
   * stored body (so not once it is pruned: a hash alone does not say the height otherwise).
   */
  async mainHeader(hash: Uint8Array): Promise<BlockHeader | undefined> {
    const e = this.chain.getEntry(hash);
    if (e) return this.chain.isMain(e) ? e.header : undefined;
    const height = await this.db.history.mainHeightOf(hash);
    return height === undefined ? undefined : (await this.headers(height, 1))[0];
  }

  /** Up to `count` main-chain headers from height `from` on. */
  async headers(from: number, count: number): Promise<BlockHeader[]> {
    return (await this.headerBytes(from, count)).map(decodeHeader);
  }

  /**
   * The same, as the headers' encodings: from the store's records as they are below the window
   * (one range scan, nothing decoded or hashed), what a node serving a syncing peer sends.
   */
  async headerBytes(from: number, count: number): Promise<Uint8Array[]> {
    const tip = this.chain.tip.height;
    if (!Number.isSafeInteger(from) || from < 0 || from > tip || count <= 0) return [];
    const end = Math.min(tip + 1, from + count);
    const bottom = this.chain.windowBottom;
    const out: Uint8Array[] = [];
    if (from === 0 && bottom > 0) {
      // The genesis block has no index record in the store: its header is the network's own.
      out.push(this.db.genesis.header.bytes);
      if (end === 1) return out;
      from = 1;
    }
    out.push(...(await this.mainRange(from, end, (lo, hi) => this.db.history.mainHeaderBytes(lo, hi - lo), (e) => e.header.bytes)));
    return out;
  }

  /**
   * Heights [from, end) of the main chain: below the window from the store (`fromStore`, a range
   * at a time), in it from memory. The window moves up with the tip, so a height in it when a read
   * of the store began may have left it by the read's end: it is then read from the store in turn.
   * Cutting the answer short there told a syncing peer that our chain ended below the work our
   * status claimed, and it banned us as a liar (a node mining while it served, test/e2e/crash.test.ts).
   */
  private async mainRange<T>(from: number, end: number, fromStore: (from: number, to: number) => Promise<T[]>, fromWindow: (e: BlockIndexEntry) => T): Promise<T[]> {
    const out: T[] = [];
    for (let h = from; h < end; ) {
      const bottom = this.chain.windowBottom;
      if (h < bottom) {
        const upto = Math.min(end, bottom);
        const stored = await fromStore(h, upto);
        out.push(...stored);
        if (stored.length < upto - h) return out; // the store ends short of the window (it cannot): stop there
        h = upto;
        continue;
      }
      const e = this.chain.mainAt(h);
      if (!e) break; // past the tip, or the tip moved down meanwhile
      out.push(fromWindow(e));
      h++;
    }
    return out;
  }

  /**
   * Main-chain headers after the first locator hash that is on our main chain (genesis when none
   * is), at most `max`: what a peer asks for with a locator to find its fork point and catch up.
   * A hash below the window is found through its stored body, so not once it is pruned.
   */
  async headersAfter(locator: readonly Uint8Array[], max: number): Promise<BlockHeader[]> {
    let start = 0;
    for (const hash of locator) {
      const e = this.chain.getEntry(hash);
      if (e && this.chain.isMain(e)) {
        start = e.height;
        break;
      }
      const old = e ? undefined : await this.db.history.mainHeightOf(hash);
      if (old !== undefined) {
        start = old;
        break;
      }
    }
    return this.headers(start + 1, max);
  }

  /**
   * Main-chain hashes from the tip back to genesis, dense first then exponentially sparse: the
   * recent ones from the window, the older (one per doubling) by height from the store.
   */
  async locator(): Promise<Uint8Array[]> {
    const heights: number[] = [];
    let step = 1;
    for (let height = this.chain.tip.height; height > 0; height -= step) {
      heights.push(height);
      if (heights.length >= 10) step *= 2;
    }
    heights.push(0);
    const out: Uint8Array[] = [];
    for (const height of heights) {
      const hash = await this.hashAt(height);
      if (hash) out.push(hash);
    }
    return out;
  }
}
