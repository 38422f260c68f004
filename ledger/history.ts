import { Reader, Writer, bytesEqual, plainBytes } from './bytes.ts';
import { decodeBlock, HASH_BYTES, HEADER_BYTES } from './block.ts';
import { heightOfKey, layout } from './layout.ts';
import type { BatchOp, KvStore } from './kv.ts';

/** One stored block index record with where it is kept. */
export interface StoredIndexRecord {
  readonly height: number;
  readonly hash: Uint8Array;
  readonly record: Uint8Array;
}

/**
 * The chain's history by height: the reads a node needs of blocks far below its tip, each a
 * range scan or a lookup by height, never a walk or a scan of the whole chain; the scratch list
 * of the header chain a sync is fetching; and pruning. It only saves and loads, like ChainDB,
 * which owns it; reads wait for the commit queue, so they see every block connected so far.
 */
export class ChainHistory {
  private readonly kv: KvStore;
  private readonly flushed: () => Promise<void>;
  private pruned = 0;

  constructor(kv: KvStore, flushed: () => Promise<void>) {
    this.kv = kv;
    this.flushed = flushed;
  }

  /** Reads the pruning mark; ChainDB calls it once on open. */
  async load(): Promise<void> {
    const bytes = await this.kv.get(layout.pruned);
    this.pruned = bytes ? new Reader(bytes).u32('pruned height') : 0;
  }

  /** Main-chain blocks 1 up to this height have no body (nor undo data, nor transaction index) here. */
  get prunedHeight(): number {
    return this.pruned;
  }

  /** Main-chain hashes for heights [from, to), in order (fewer past the tip). */
  async mainHashes(from: number, to: number): Promise<Uint8Array[]> {
    await this.flushed();
    const out: Uint8Array[] = [];
    for await (const [, value] of this.kv.iterate(layout.heights('H', from, to))) out.push(plainBytes(value));
    return out;
  }

  /** Every index record for heights [from, to), main chain and side branches, by height. */
  async records(from: number, to = 2 ** 32): Promise<StoredIndexRecord[]> {
    await this.flushed();
    const out: StoredIndexRecord[] = [];
    for await (const [key, record] of this.kv.iterate(layout.heights('I', from, to))) {
      out.push({ height: heightOfKey(key), hash: plainBytes(key.subarray(5)), record: plainBytes(record) });
    }
    return out;
  }

  /** The main chain's index records for heights [from, from + count), two range scans. */
  async mainRecords(from: number, count: number): Promise<StoredIndexRecord[]> {
    const hashes = await this.mainHashes(from, from + count);
    if (hashes.length === 0) return [];
    const out: StoredIndexRecord[] = [];
    for (const r of await this.records(from, from + hashes.length)) {
      if (bytesEqual(r.hash, hashes[r.height - from]!)) out.push(r);
    }
    return out;
  }

  /** One block's index record, by the height and hash it claims. */
  async record(height: number, hash: Uint8Array): Promise<Uint8Array | undefined> {
    if (!Number.isSafeInteger(height) || height < 0 || height > 0xffffffff) return undefined;
    await this.flushed();
    const bytes = await this.kv.get(layout.index(height, hash));
    return bytes && plainBytes(bytes);
  }

  /**
   * The height of a main-chain block known only by its hash: from its stored body, so not for a
   * pruned block. For a peer's locator far behind our tip, which is rare; recent ones are in memory.
   */
  async mainHeightOf(hash: Uint8Array): Promise<number | undefined> {
    await this.flushed();
    const bytes = await this.kv.get(layout.block(hash));
    if (!bytes || bytes.length < HEADER_BYTES) return undefined;
    const height = new Reader(bytes.subarray(4, 8)).u32();
    const main = await this.kv.get(layout.height(height));
    return main && bytesEqual(main, hash) ? height : undefined;
  }

  /** Writes the hashes of a header chain being synced, heights from `from` on (scratch). */
  async putPending(from: number, hashes: readonly Uint8Array[]): Promise<void> {
    await this.kv.write(hashes.map((hash, i): BatchOp => ({ type: 'put', key: layout.pending(from + i), value: hash })));
  }

  /** The synced header chain's hashes for heights [from, from + count). */
  async pending(from: number, count: number): Promise<Uint8Array[]> {
    const out: Uint8Array[] = [];
    let expect = from;
    for await (const [key, value] of this.kv.iterate(layout.heights('P', from, from + count))) {
      if (heightOfKey(key) !== expect++ || value.length !== HASH_BYTES) break; // a hole: what follows is stale
      out.push(plainBytes(value));
    }
    return out;
  }

  async clearPending(): Promise<void> {
    await this.kv.clear(layout.range('P'));
  }

  /**
   * Deletes the bodies, undo data and transaction index of main-chain blocks above the pruning
   * mark up to `to`, and the bodies of side-branch blocks at those heights, with the new mark, as
   * ONE batch: a kill leaves either all of it or none. Headers (H, I) and the state stay. The
   * caller keeps `to` deeper than any reorganisation it follows and chunks the work.
   */
  async prune(to: number): Promise<number> {
    const from = this.pruned + 1;
    if (to < from) return 0;
    const main = await this.mainHashes(from, to + 1);
    if (main.length < to + 1 - from) throw new RangeError(`cannot prune to ${to}: the main chain ends at ${from + main.length - 1}`);
    const ops: BatchOp[] = [];
    const bodies = await this.kv.getMany(main.map((h) => layout.block(h)));
    main.forEach((hash, i) => {
      ops.push({ type: 'del', key: layout.block(hash) }, { type: 'del', key: layout.undo(hash) });
      const body = bodies[i];
      if (body) for (const tx of decodeBlock(body).txs) ops.push({ type: 'del', key: layout.tx(tx.id) });
    });
    for (const r of await this.records(from, to + 1)) {
      if (!bytesEqual(r.hash, main[r.height - from]!)) ops.push({ type: 'del', key: layout.block(r.hash) });
    }
    ops.push({ type: 'put', key: layout.pruned, value: new Writer(4).u32(to).finish() });
    await this.kv.write(ops);
    this.pruned = to;
    return main.length;
  }
}
