import { Level } from 'level';
import { StoreError, isDiskFull } from './errors.ts';
import type { BatchLog, BatchOp, KeyRange, KvSnapshot, KvStore } from './kv.ts';

type Db = Level<Uint8Array, Uint8Array>;

/** LevelDB behind the KvStore interface. */
export class LevelKv implements KvStore {
  private readonly db: Db;

  private constructor(db: Db) {
    this.db = db;
  }

  /**
   * Opens (creating if absent) the database at `location`. A database another process holds is
   * refused with STORE_LOCKED, so the caller can say who holds it; a full disk with STORE_DISK_FULL.
   * `writeBufferSize`: a bulk writer (the chain generator) flushes fewer, larger tables with a bigger one.
   */
  static async open(location: string, tuning: { writeBufferSize?: number } = {}): Promise<LevelKv> {
    const db: Db = new Level<Uint8Array, Uint8Array>(location, { keyEncoding: 'view', valueEncoding: 'view', ...tuning });
    try {
      await db.open();
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      if (cause?.code === 'LEVEL_LOCKED') throw new StoreError('STORE_LOCKED', `the database at ${location} is in use by another process`);
      // Not STORE_CORRUPT: told that, an operator may delete a store that is whole.
      if (isDiskFull(err)) throw new StoreError('STORE_DISK_FULL', `the disk holding the database at ${location} is full (${cause?.message ?? (err as Error).message}): free some space on it; nothing in the database is damaged`);
      throw new StoreError('STORE_CORRUPT', `cannot open the database at ${location}: ${(err as Error).message}${cause?.message ? ` (${cause.message})` : ''}`);
    }
    return new LevelKv(db);
  }

  get(key: Uint8Array): Promise<Uint8Array | undefined> {
    return this.db.get(key);
  }

  getMany(keys: readonly Uint8Array[]): Promise<(Uint8Array | undefined)[]> {
    const slab = new Slab(keys);
    return this.db.getMany(keys.map((key) => slab.place(key)));
  }

  /**
   * One atomic batch, built as a chained batch: abstract-level's array form copies and checks
   * every operation object first, 15-30 ms of main thread for a 2,000-transaction block's 6,000
   * operations against 4-7 ms chained. Async, as `writeLog`: a closed database refuses the batch at
   * once, by a throw, and a refusal must reach the caller as a rejection (the commit queue's
   * failure road), not escape the timer that started the flush as an uncaught exception.
   */
  async write(ops: readonly BatchOp[]): Promise<void> {
    const batch = this.db.batch();
    const slab = new Slab(ops);
    for (const op of ops) {
      if (op.type === 'put') batch.put(slab.place(op.key), slab.place(op.value));
      else batch.del(slab.place(op.key));
    }
    return batch.write();
  }

  /** A commit's batch from the commit queue's log: its views live outside the heap, so they are passed as they are. */
  async writeLog(log: BatchLog): Promise<void> {
    const batch = this.db.batch();
    log.forEach((key, value) => {
      if (value === undefined) batch.del(key);
      else batch.put(key, value);
    });
    return batch.write();
  }

  /** In chunks (`nextv`): one native call per thousand entries, not one promise each from LevelDB. */
  iterate(range: KeyRange, limit = Infinity): AsyncIterable<[Uint8Array, Uint8Array]> {
    return inChunks(() => this.db.iterator({ gte: range.gte, lt: range.lt, reverse: range.reverse === true, ...(limit < Infinity ? { limit } : {}) }));
  }

  keys(range: KeyRange): AsyncIterable<Uint8Array> {
    return inChunks(() => this.db.keys({ gte: range.gte, lt: range.lt, reverse: range.reverse === true }));
  }

  clear(range: KeyRange): Promise<void> {
    return this.db.clear({ gte: range.gte, lt: range.lt });
  }

  /** LevelDB's explicit snapshot (abstract-level 3): made at once, in the calling turn. */
  snapshot(): KvSnapshot {
    const db = this.db;
    const snapshot = db.snapshot();
    return {
      get: (key) => db.get(key, { snapshot }),
      getMany: (keys) => {
        const slab = new Slab(keys);
        return db.getMany(keys.map((key) => slab.place(key)), { snapshot });
      },
      close: () => snapshot.close(),
    };
  }

  close(): Promise<void> {
    return this.db.close();
  }
}

/**
 * V8 keeps a typed array of up to 64 bytes inside its own heap, and LevelDB's binding, asking for
 * its bytes' address, first moves them into a backing store of their own: an allocation and a
 * tracked external buffer for every key and most values of a block's batch (a syncing node's
 * profile had ~3 µs a put in the binding). Small arrays are copied instead into one buffer outside
 * the heap, made per batch, and passed as views of it; larger ones live outside the heap already.
 */
const IN_HEAP_MAX = 64;

class Slab {
  private readonly bytes: Uint8Array;
  private used = 0;

  constructor(items: readonly (Uint8Array | { key: Uint8Array; value?: Uint8Array })[]) {
    let size = 0;
    for (const item of items) {
      if (item instanceof Uint8Array) size += small(item);
      else size += small(item.key) + (item.value ? small(item.value) : 0);
    }
    this.bytes = new Uint8Array(new ArrayBuffer(size));
  }

  place(bytes: Uint8Array): Uint8Array {
    if (!small(bytes)) return bytes;
    const out = this.bytes.subarray(this.used, (this.used += bytes.length));
    for (let i = 0; i < bytes.length; i++) out[i] = bytes[i]!;
    return out;
  }
}

/**
 * The bytes to copy for `bytes`: none if it lives outside the heap already, which a view at an
 * offset always does (only a typed array made whole, of up to 64 bytes, is kept in the heap; taking
 * a view of one first moves its bytes out). The commit queue's operations are such views (OpLog).
 */
const small = (bytes: Uint8Array): number => (bytes.length > IN_HEAP_MAX || bytes.byteOffset !== 0 ? 0 : bytes.length);

/**
 * A LevelDB iterator's entries a thousand at a time (`nextv`), closed however the reader stops.
 * The iterator is made when the first entry is asked for, so an iterable never read holds none
 * open. Returned as it is, not delegated to from another generator: a level of `yield*` between
 * a loop and this one costs a promise more an entry (a scan of the state tree's top on open,
 * 140,000 entries: 0.49 s delegated, 0.34–0.45 s not).
 */
async function* inChunks<T>(open: () => { nextv(size: number): Promise<T[]>; close(): Promise<void> }): AsyncIterable<T> {
  const it = open();
  try {
    for (;;) {
      const chunk = await it.nextv(1000);
      if (chunk.length === 0) return;
      yield* chunk;
    }
  } finally {
    await it.close();
  }
}
