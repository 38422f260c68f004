/**
 * The address index: for every address, the main-chain transactions that sent from it or paid
 * it, and the blocks whose coinbase paid it, newest first and pageable (what an explorer's address
 * page shows). Its records (`X`, ledger/layout.ts) are a pure function of a main-chain block, so
 * `addressIndexer` adds them to the block's own connect unit and deletes the same keys in its
 * disconnect unit: the index rolls back exactly with a reorganisation, and a kill leaves it
 * matching the chain.
 *
 * A datadir that had no index gets one in the background (`AddressIndex.backfillStep`): blocks
 * connected from then on are indexed as they connect, older ones by the backfill, a few at a
 * time between imports, its progress (`M addrindex`) written in the same batch as what it
 * indexed, so a kill resumes where it stopped.
 */
import { BoundedMap } from './bounded.ts';
import { Reader, Writer, bytesEqual, toHex } from './bytes.ts';
import { StoreError } from './errors.ts';
import { layout } from './layout.ts';
import { SerialQueue } from './serial.ts';
import type { Block } from './block.ts';
import type { BatchOp, ChainDB } from './chaindb.ts';
import type { BlockIndexer } from './chaindb-types.ts';
import { ADDRESS_BYTES } from './keys.ts';

export const ROLE_SENT = 1;
export const ROLE_RECEIVED = 2;
export const ROLE_COINBASE = 4;

/** One line of an address's history. */
export interface AddressEntry {
  readonly height: number;
  /** 0: the block's coinbase; i + 1: the block's transaction i. */
  readonly position: number;
  /** ROLE_* bits: a transfer to oneself is both sent and received. */
  readonly roles: number;
  /** The transaction id, or for a coinbase the block hash. */
  readonly id: Uint8Array;
}

export interface AddressCounts {
  /** Entries in all: transactions plus coinbases. */
  readonly entries: number;
  readonly sent: number;
  readonly received: number;
  readonly coinbase: number;
}

/** An index's progress (AddressIndexStatus.progress) as people read it, in whole percent: "10%". */
export function percentDone(progress: number): string {
  return `${Math.floor(progress * 100)}%`;
}

export interface AddressIndexStatus {
  readonly state: 'building' | 'ready';
  /** Heights still to backfill are [next, end). */
  readonly next: number;
  readonly end: number;
  /** Share of the backfill done, 0 to 1. */
  readonly progress: number;
}

/** A position in one address's history: entries strictly older than it come next. */
export interface AddressCursor {
  readonly height: number;
  readonly position: number;
}

/** Each index record of one block: address → roles, per position. */
function eachEntry(block: Block, visit: (address: Uint8Array, position: number, roles: number, id: Uint8Array) => void): void {
  // Genesis pays nobody (its allocations are state, not a payment).
  if (block.header.height > 0) visit(block.coinbase.to, 0, ROLE_COINBASE, block.header.hash);
  const txs = block.txs;
  for (let i = 0; i < txs.length; i++) {
    const tx = txs[i]!;
    if (tx.fromKey === tx.toKey) {
      visit(tx.from, i + 1, ROLE_SENT | ROLE_RECEIVED, tx.id);
    } else {
      visit(tx.from, i + 1, ROLE_SENT, tx.id);
      visit(tx.to, i + 1, ROLE_RECEIVED, tx.id);
    }
  }
}

/** Each record that indexes `block` at its height, as its key and value. */
function eachPut(block: Block, put: (key: Uint8Array, value: Uint8Array) => void): void {
  const height = block.header.height;
  eachEntry(block, (address, position, roles, id) => put(layout.addressEntry(address, height, position), new Writer(33).u8(roles).bytes(id, 32).finish()));
}

/** The puts that index `block` at its height. */
export function addressIndexPuts(block: Block): BatchOp[] {
  const ops: BatchOp[] = [];
  eachPut(block, (key, value) => ops.push({ type: 'put', key, value }));
  return ops;
}

/**
 * The hook ChainDB calls for every connect and disconnect unit while the index is on: its records
 * go straight into the unit, one by one (a block's thousand, made as an array first, were alive
 * all at once when its allocation filled the young generation).
 */
export const addressIndexer: BlockIndexer = {
  connect: (block, write) => eachPut(block, write),
  disconnect: (block, write) => {
    const height = block.header.height;
    eachEntry(block, (address, position) => write(layout.addressEntry(address, height, position), undefined));
  },
};

function encodeState(next: number, end: number): Uint8Array {
  return new Writer(8).u32(next).u32(end).finish();
}

/** Stale records deleted in one batch when an index is turned on again. */
const CLEAR_BATCH = 10_000;

/** Most blocks one backfill step indexes: a step runs between imports, holding them up. */
const BACKFILL_BLOCKS = 64;
/**
 * Records past which a step takes no further block (a block's are never split): 64 full blocks
 * of 5,000 transfers came to 640,000 records, over 360 MB of the heap held at once.
 */
const BACKFILL_RECORDS = 20_000;

/**
 * Reads of the address index, and its backfill. `open` is called after ChainDB.open with the
 * indexer and before the chain imports anything; `turnOff` when the node runs without the index.
 */
export class AddressIndex {
  private readonly db: ChainDB;
  /** counts() of busy addresses so far, up to an entry's block (its hash: still on the main chain?). */
  private readonly countMemo = new BoundedMap<string, CountMemo>(COUNT_MEMO_SIZE);
  /** Addresses whose counts() run now, with the calls waiting on each (one at a time an address). */
  private readonly counting = new Map<string, { queue: SerialQueue; waiting: number }>();
  private next: number;
  private readonly end: number;

  private constructor(db: ChainDB, next: number, end: number) {
    this.db = db;
    this.next = next;
    this.end = end;
  }

  /**
   * Resumes the index, or starts one: every main-chain block up to the stored tip is then left for
   * the backfill (above the pruning mark: a pruned store's older bodies are gone, so an index
   * started there covers only the blocks kept; the pruner waits behind a backfill under way). A store whose index was turned off and on again loses its old records first:
   * blocks connected meanwhile were not indexed, and those disconnected not unindexed.
   */
  static async open(db: ChainDB): Promise<AddressIndex> {
    const stored = await db.getRecord(layout.addressIndexState);
    if (stored) {
      const r = new Reader(stored);
      const next = r.u32();
      const end = r.u32();
      if (next > end) throw new StoreError('STORE_CORRUPT', `address index state ${next} > ${end}`);
      return new AddressIndex(db, next, end);
    }
    // An index of a long chain has millions of records: they go a batch at a time (the iterator
    // reads a snapshot of the store). A kill in between leaves no state, so the next open goes on.
    // The counts kept of the old index's busy addresses go with it.
    let stale: BatchOp[] = [];
    for (const prefix of ['X', 'C'] as const) {
      for await (const [key] of db.records(layout.range(prefix))) {
        stale.push({ type: 'del', key });
        if (stale.length < CLEAR_BATCH) continue;
        db.queueRecords(stale);
        stale = [];
        await db.flushed();
      }
    }
    const tip = await db.storedTip();
    // A pruned store has no bodies to index below its mark: the index starts above it.
    const start = Math.min(tip.height + 1, db.history.prunedHeight + 1);
    db.queueRecords([...stale, { type: 'put', key: layout.addressIndexState, value: encodeState(start, tip.height + 1) }]);
    await db.flushed();
    return new AddressIndex(db, start, tip.height + 1);
  }

  /** Forgets that the index is complete, so turning it on again rebuilds it (see open). */
  static async turnOff(db: ChainDB): Promise<void> {
    if (!(await db.getRecord(layout.addressIndexState))) return;
    db.queueRecords([{ type: 'del', key: layout.addressIndexState }]);
    await db.flushed();
  }

  status(): AddressIndexStatus {
    const total = this.end - 1;
    const done = this.next - 1;
    return { state: this.next >= this.end ? 'ready' : 'building', next: this.next, end: this.end, progress: total <= 0 ? 1 : done / total };
  }

  /**
   * Indexes the next few main-chain blocks below where live indexing began (whole blocks, none
   * more once `maxRecords` records are gathered), with the progress in the same batch. The caller
   * runs it between imports (Chain.withImportsPaused), so the blocks it reads are the main chain's
   * when its batch is queued. Returns whether the backfill is done.
   */
  async backfillStep(maxRecords = BACKFILL_RECORDS): Promise<boolean> {
    if (this.next >= this.end) return true;
    const last = Math.min(this.end, this.next + BACKFILL_BLOCKS);
    const ops: BatchOp[] = [];
    let upTo = this.next;
    while (upTo < last && ops.length < maxRecords) {
      // A reorganisation may have left the main chain shorter than it was: nothing to index there.
      const block = await this.db.getBlockAtHeight(upTo++);
      if (block) eachPut(block, (key, value) => ops.push({ type: 'put', key, value }));
    }
    ops.push({ type: 'put', key: layout.addressIndexState, value: encodeState(upTo, this.end) });
    this.db.queueRecords(ops);
    await this.db.flushed();
    this.next = upTo;
    return this.next >= this.end;
  }

  /** Up to `limit` entries of `address`, newest first, older than `before` when given. */
  async history(address: Uint8Array, limit: number, before?: AddressCursor): Promise<AddressEntry[]> {
    checkAddress(address);
    const lt = before ? layout.addressEntry(address, before.height, before.position) : layout.addressEntry(address, 0xffffffff, 0xffffffff);
    const out: AddressEntry[] = [];
    for await (const [key, value] of this.db.records({ gte: layout.addressEntry(address, 0, 0), lt, reverse: true })) {
      const k = new Reader(key.subarray(1 + ADDRESS_BYTES));
      const v = new Reader(value);
      out.push({ height: k.u32(), position: k.u32(), roles: v.u8(), id: v.bytes(32) });
      if (out.length >= limit) break;
    }
    // The top key (0xffffffff, 0xffffffff) itself cannot hold an entry: no block has 2^32 - 1 txs.
    return out;
  }

  /**
   * `address`'s entries counted. Entries at or below `settledHeight` (a height a reorganisation
   * is not expected to reach while this runs: the caller's tip less a margin) are counted once
   * and remembered with the hash of the block of the last one; a later call counts only what
   * came after it, and starts over if that block left the main chain. A busy address (a miner's:
   * one entry a block) otherwise cost a read of every entry it ever had, on every request. Once
   * `STORED_COUNT_STEP` more entries are counted, the count is also kept in the store (`C`), so a
   * restart does not read them all again: 8.5 s for a miner of a million blocks.
   */
  async counts(address: Uint8Array, settledHeight = 0): Promise<AddressCounts> {
    checkAddress(address);
    const key = toHex(address);
    // One count of an address at a time: the requests that come while it reads a busy address's
    // history then find its memo and read only what came after it. Run side by side, each read
    // the whole history: a burst of requests for a miner's page after a start (its memo empty)
    // cost a full read each, 12 s apiece at a million blocks.
    const running = this.counting.get(key) ?? { queue: new SerialQueue(), waiting: 0 };
    this.counting.set(key, running);
    running.waiting++;
    try {
      return await running.queue.run(() => this.countNow(address, key, settledHeight));
    } finally {
      if (--running.waiting === 0) this.counting.delete(key);
    }
  }

  private async countNow(address: Uint8Array, key: string, settledHeight: number): Promise<AddressCounts> {
    // A block disconnected while this runs may have shown its reads another chain than the one
    // the last entry's block is then read from, even one that came back by the end (a settled
    // block's hash, read first and last, was the same then): the counts are remembered only if
    // none was, the main chain only growing between the first read and the last.
    const disconnects = this.db.disconnectsQueued;
    let memo = this.countMemo.get(key) ?? (await this.storedCount(address));
    if (memo) {
      const [hash] = await this.db.history.mainHashes(memo.height, memo.height + 1);
      if (!hash || !bytesEqual(hash, memo.hash)) memo = undefined;
    }
    const settled = { ...(memo?.counts ?? NO_COUNTS) };
    let last: { height: number; position: number } | undefined;
    const total = { ...settled };
    const from = memo ? layout.addressEntry(address, memo.height, memo.position + 1) : layout.addressEntry(address, 0, 0);
    for await (const [k, value] of this.db.records({ gte: from, lt: layout.addressEntry(address, 0xffffffff, 0xffffffff) })) {
      const height = readU32(k, 21);
      addRoles(total, value[0]!);
      if (height > settledHeight) continue;
      addRoles(settled, value[0]!);
      last = { height, position: readU32(k, 25) };
    }
    const [hash] = last ? await this.db.history.mainHashes(last.height, last.height + 1) : [];
    if (last && hash && this.db.disconnectsQueued === disconnects) {
      let stored = memo?.stored ?? 0;
      if (settled.entries - stored >= STORED_COUNT_STEP) {
        this.db.queueRecords([{ type: 'put', key: layout.addressCount(address), value: encodeCount(this.end, last, hash, settled) }]);
        stored = settled.entries;
      }
      this.countMemo.delete(key);
      this.countMemo.set(key, { ...last, hash, counts: settled, stored });
    }
    return total;
  }

  /** The count kept in the store for `address`, if it was made for this index (see open). */
  private async storedCount(address: Uint8Array): Promise<CountMemo | undefined> {
    const value = await this.db.getRecord(layout.addressCount(address));
    if (!value) return undefined;
    const r = new Reader(value);
    // An index made again (turned off and on by a node that kept no counts) has another end.
    if (value.length !== STORED_COUNT_BYTES || r.u32() !== this.end) return undefined;
    const height = r.u32();
    const position = r.u32();
    const hash = r.bytes(32);
    const counts = { entries: Number(r.u64()), sent: Number(r.u64()), received: Number(r.u64()), coinbase: Number(r.u64()) };
    return { height, position, hash, counts, stored: counts.entries };
  }
}

interface CountMemo {
  readonly height: number;
  readonly position: number;
  readonly hash: Uint8Array;
  readonly counts: AddressCounts;
  /** Entries of the count kept in the store (0: none). */
  readonly stored: number;
}

/** Entries counted past the stored count before it is stored again: a write per request would not do. */
export const STORED_COUNT_STEP = 1_000;
const STORED_COUNT_BYTES = 4 + 4 + 4 + 32 + 4 * 8;

function encodeCount(end: number, at: { height: number; position: number }, hash: Uint8Array, c: AddressCounts): Uint8Array {
  const w = new Writer(STORED_COUNT_BYTES).u32(end).u32(at.height).u32(at.position).bytes(hash, 32);
  for (const n of [c.entries, c.sent, c.received, c.coinbase]) w.u64(BigInt(n));
  return w.finish();
}

const COUNT_MEMO_SIZE = 1_024;
const NO_COUNTS: AddressCounts = { entries: 0, sent: 0, received: 0, coinbase: 0 };

function addRoles(c: { entries: number; sent: number; received: number; coinbase: number }, roles: number): void {
  c.entries++;
  if (roles & ROLE_SENT) c.sent++;
  if (roles & ROLE_RECEIVED) c.received++;
  if (roles & ROLE_COINBASE) c.coinbase++;
}

function readU32(bytes: Uint8Array, at: number): number {
  return new DataView(bytes.buffer, bytes.byteOffset + at, 4).getUint32(0);
}

function checkAddress(address: Uint8Array): void {
  if (address.length !== ADDRESS_BYTES) throw new RangeError(`an address is ${ADDRESS_BYTES} bytes, got ${address.length} (${toHex(address)})`);
}
