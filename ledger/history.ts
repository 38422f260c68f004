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
 * What re-executing the history below a snapshot's state from genesis found (node/history-check.ts):
 * every block valid and the state at the base the snapshot's, or the first block found to break a rule.
 */
export interface HistoryVerdict {
  readonly valid: boolean;
  /** The base (valid), or the height of the block that broke a rule. */
  readonly height: number;
  readonly reason: string;
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
  private base = 0;
  private verdict: HistoryVerdict | undefined;
  /** The scratch chunk last written: a sync writes each chunk in several steps, in order. */
  private lastPending: { chunk: number; value: Uint8Array } | undefined;

  constructor(kv: KvStore, flushed: () => Promise<void>) {
    this.kv = kv;
    this.flushed = flushed;
  }

  /** Reads the pruning mark; ChainDB calls it once on open. */
  async load(): Promise<void> {
    const bytes = await this.kv.get(layout.pruned);
    this.pruned = bytes ? new Reader(bytes).u32('pruned height') : 0;
    const base = await this.kv.get(layout.stateBase);
    this.base = base ? new Reader(base).u32('state base height') : 0;
    const verdict = await this.kv.get(layout.historyVerdict);
    if (verdict) {
      const r = new Reader(verdict);
      this.verdict = { valid: r.u8('history verdict') === 1, height: r.u32('history verdict height'), reason: new TextDecoder().decode(r.bytes(r.remaining, 'history verdict reason')) };
    }
  }

  /** The verdict on the history below the state base, once the check has reached one. */
  get historyVerdict(): HistoryVerdict | undefined {
    return this.verdict;
  }

  async recordHistoryVerdict(verdict: HistoryVerdict): Promise<void> {
    const reason = new TextEncoder().encode(verdict.reason);
    const value = new Writer(5 + reason.length).u8(verdict.valid ? 1 : 0).u32(verdict.height).bytes(reason).finish();
    await this.flushed();
    await this.kv.write([{ type: 'put', key: layout.historyVerdict, value }]);
    this.verdict = verdict;
  }

  /**
   * The main-chain block whose state this store began from (a snapshot sync's pivot), 0 for
   * genesis: there is no undo data below it, so no fork may go below it.
   */
  get stateBase(): number {
    return this.base;
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

  /**
   * The lowest height in [from, to) that holds more than one index record (a side branch's block
   * beside the main chain's), from the keys alone: what opening a store needs to know of the
   * heights below the window it loads.
   */
  async lowestSideHeight(from: number, to: number): Promise<number | undefined> {
    if (to <= from) return undefined;
    await this.flushed();
    let last = -1;
    for await (const key of this.kv.keys(layout.heights('I', from, to))) {
      const height = heightOfKey(key);
      if (height === last) return height;
      last = height;
    }
    return undefined;
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

  /**
   * The main chain's headers, as stored, for heights [from, from + count): what a node serving a
   * syncing peer sends. Views into what LevelDB returned, nothing copied or decoded.
   */
  async mainHeaderBytes(from: number, count: number): Promise<Uint8Array[]> {
    await this.flushed();
    // One range scan of the index records, not two: at each height the main block is the record
    // whose header names the last main block as its parent. Side branches this deep are rare;
    // where two records at a height both do (a fork right there), the H entry decides.
    const first = await this.kv.get(layout.height(from));
    if (!first) return [];
    const out: Uint8Array[] = [];
    let last: Uint8Array = first;
    let height = from;
    let candidates: [Uint8Array, Uint8Array][] = [];
    const settle = async (): Promise<boolean> => {
      let pick = candidates.length === 1 ? candidates[0] : undefined;
      if (candidates.length > 1) {
        const main = await this.kv.get(layout.height(height));
        pick = main && candidates.find(([hash]) => bytesEqual(hash, main));
      }
      candidates = [];
      if (!pick) return false;
      out.push(pick[1].subarray(0, HEADER_BYTES));
      last = pick[0];
      height++;
      return true;
    };
    for await (const [key, record] of this.kv.iterate(layout.heights('I', from, from + count))) {
      const at = heightOfKey(key);
      if (at !== height && !(await settle())) return out;
      if (at !== height) return out; // a height with no record: the main chain ends
      const hash = key.subarray(5);
      const links = at === from ? bytesEqual(hash, last) : bytesEqual(record.subarray(PREV_HASH_OFFSET, PREV_HASH_OFFSET + HASH_BYTES), last);
      if (links) candidates.push([hash, record]);
    }
    if (candidates.length > 0) await settle();
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

  /**
   * Writes the hashes of a header chain being synced, heights from `from` on (scratch), in
   * chunks of PENDING_CHUNK heights a key: a put per response rather than one per header. What a
   * chunk held beyond the new hashes (an earlier sync's) is cut off.
   */
  async putPending(from: number, hashes: readonly Uint8Array[]): Promise<void> {
    const ops: BatchOp[] = [];
    for (let i = 0; i < hashes.length; ) {
      const height = from + i;
      const chunk = Math.floor(height / PENDING_CHUNK);
      const offset = height - chunk * PENDING_CHUNK;
      const n = Math.min(hashes.length - i, PENDING_CHUNK - offset);
      const value = new Uint8Array((offset + n) * HASH_BYTES);
      if (offset > 0) {
        const before = this.lastPending?.chunk === chunk ? this.lastPending.value : await this.kv.get(layout.pending(chunk));
        if (before) value.set(before.subarray(0, Math.min(before.length, offset * HASH_BYTES)));
      }
      for (let k = 0; k < n; k++) value.set(hashes[i + k]!, (offset + k) * HASH_BYTES);
      ops.push({ type: 'put', key: layout.pending(chunk), value });
      this.lastPending = { chunk, value };
      i += n;
    }
    await this.kv.write(ops);
  }

  /** The synced header chain's hashes for heights [from, from + count); fewer where the list ends. */
  async pending(from: number, count: number): Promise<Uint8Array[]> {
    const first = Math.floor(from / PENDING_CHUNK);
    const last = Math.floor((from + count - 1) / PENDING_CHUNK);
    const chunks = await this.kv.getMany(Array.from({ length: last - first + 1 }, (_, i) => layout.pending(first + i)));
    const out: Uint8Array[] = [];
    for (let height = from; height < from + count; height++) {
      const chunk = chunks[Math.floor(height / PENDING_CHUNK) - first];
      const at = (height % PENDING_CHUNK) * HASH_BYTES;
      if (!chunk || chunk.length < at + HASH_BYTES) break;
      out.push(chunk.slice(at, at + HASH_BYTES));
    }
    return out;
  }

  async clearPending(): Promise<void> {
    this.lastPending = undefined;
    await this.kv.clear(layout.range('P'));
  }

  /**
   * Deletes the bodies, undo data and transaction index of main-chain blocks above the pruning
   * mark, up to `to` or fewer (about `budget` deletions: a block of thousands of transactions is
   * a deletion each), and the bodies of side-branch blocks at those heights, with the new mark,
   * as ONE batch: a kill leaves either all of it or none. Headers (H, I) and the state stay. The
   * caller keeps `to` deeper than any reorganisation it follows. Returns the new mark.
   */
  async prune(to: number, budget = 20_000): Promise<number> {
    const from = this.pruned + 1;
    if (to < from) return this.pruned;
    const main = await this.mainHashes(from, to + 1);
    if (main.length < to + 1 - from) throw new RangeError(`cannot prune to ${to}: the main chain ends at ${from + main.length - 1}`);
    const ops: BatchOp[] = [];
    let end = from - 1;
    for (let i = 0; i < main.length && ops.length < budget; i += PRUNE_READ) {
      const group = main.slice(i, i + PRUNE_READ);
      const bodies = await this.kv.getMany(group.map((h) => layout.block(h)));
      group.forEach((hash, j) => {
        ops.push({ type: 'del', key: layout.block(hash) }, { type: 'del', key: layout.undo(hash) });
        const body = bodies[j];
        if (body) for (const tx of decodeBlock(body).txs) ops.push({ type: 'del', key: layout.tx(tx.id) });
      });
      end = from + i + group.length - 1;
    }
    for (const r of await this.records(from, end + 1)) {
      if (!bytesEqual(r.hash, main[r.height - from]!)) ops.push({ type: 'del', key: layout.block(r.hash) });
    }
    ops.push({ type: 'put', key: layout.pruned, value: new Writer(4).u32(end).finish() });
    await this.kv.write(ops);
    this.pruned = end;
    return end;
  }
}

/** Where a header (and so an index record, which begins with it) names its parent: after version and height. */
const PREV_HASH_OFFSET = 8;

/** Bodies read at once while pruning: a few megabytes at most. */
const PRUNE_READ = 64;

/** Heights of a sync's header chain kept under one scratch key: 64 KiB of hashes. */
const PENDING_CHUNK = 2048;
