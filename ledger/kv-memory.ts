import { toHex } from './bytes.ts';
import type { BatchOp, KeyRange, KvSnapshot, KvStore } from './kv.ts';

/**
 * When a batch handed to `write` reaches the disk: the simulator passes its own scheduler, so
 * writes take simulated time and a crash can fall between a write and its completion.
 */
export type DiskScheduler = (complete: () => void) => void;

/**
 * When a read answers, and with the disk as it was when the read was made (`asOfCall`) or as it
 * is when it answers: a LevelDB read runs on a thread of its own at some instant in between, so a
 * write completed meanwhile may or may not be seen, and other work runs before it answers.
 */
export type ReadScheduler = (answer: (asOfCall: boolean) => void) => void;

type Entry = { key: Uint8Array; value: Uint8Array };

/**
 * What an open snapshot sees of the keys written since it was taken: each one's entry then (null:
 * absent), kept by the first write after it. Every other key it reads as the disk holds it.
 */
type Pinned = Map<string, Entry | null>;

/** What survives a crash: the batches that completed, keyed by the hex of their keys. */
export class MemoryDisk {
  readonly entries = new Map<string, Entry>();
  /** Completed batches, for tests that count them. */
  batches = 0;
  private readonly pins = new Set<Pinned>();

  /** The disk as it is now, for a snapshot: kept until `unpin`. */
  pin(): Pinned {
    const pinned: Pinned = new Map();
    this.pins.add(pinned);
    return pinned;
  }

  unpin(pinned: Pinned): void {
    this.pins.delete(pinned);
  }

  /** The entry at `k` as `pinned` sees it. */
  pinnedEntry(pinned: Pinned, k: string): Entry | undefined {
    return pinned.has(k) ? (pinned.get(k) ?? undefined) : this.entries.get(k);
  }

  /** Keeps the entry at `k`, about to change, for the snapshots that have not seen it change yet. */
  private keepForPins(k: string): void {
    for (const pinned of this.pins) if (!pinned.has(k)) pinned.set(k, this.entries.get(k) ?? null);
  }

  /** An open handle on this disk, as a node holds one between start and stop (or crash). */
  open(schedule?: DiskScheduler, scheduleRead?: ReadScheduler): MemoryKv {
    return new MemoryKv(this, schedule, scheduleRead);
  }

  /** Deletes everything, as removing a store's directory does. */
  clear(): void {
    if (this.pins.size > 0) for (const k of this.entries.keys()) this.keepForPins(k);
    this.entries.clear();
    this.sorted = undefined;
  }

  /** Every key in sorted order, kept between writes: the simulator scans height ranges often. */
  private sorted: string[] | undefined;

  apply(ops: readonly BatchOp[]): void {
    for (const op of ops) {
      const k = toHex(op.key);
      if (this.pins.size > 0) this.keepForPins(k);
      if (op.type === 'put') {
        if (this.sorted && !this.entries.has(k)) this.sorted.splice(this.lowerBound(k), 0, k);
        this.entries.set(k, { key: op.key.slice(), value: op.value.slice() });
      } else if (this.entries.delete(k)) {
        this.sorted?.splice(this.lowerBound(k), 1);
      }
    }
    this.batches++;
  }

  /** Where `k` is, or would go, in the sorted keys. */
  private lowerBound(k: string): number {
    const keys = this.sorted!;
    let a = 0;
    let b = keys.length;
    while (a < b) {
      const mid = (a + b) >> 1;
      if (keys[mid]! < k) a = mid + 1;
      else b = mid;
    }
    return a;
  }

  /** Hex keys in [lo, hi), in order. Lower-case hex sorts as the bytes do. */
  keysIn(lo: string, hi: string): string[] {
    this.sorted ??= [...this.entries.keys()].sort();
    const keys = this.sorted;
    const out: string[] = [];
    for (let i = this.lowerBound(lo); i < keys.length && keys[i]! < hi; i++) out.push(keys[i]!);
    return out;
  }
}

/**
 * A KvStore in memory. Writes complete whole (atomically) when the scheduler says, in the order
 * they were made; `crash()` drops every batch not yet completed and closes the handle, as a kill
 * would. Values are copied in and out, so no caller can change what is "on disk".
 */
export class MemoryKv implements KvStore {
  private readonly disk: MemoryDisk;
  private readonly schedule: DiskScheduler | undefined;
  private readonly scheduleRead: ReadScheduler | undefined;
  private inFlight: { ops: readonly BatchOp[]; resolve: () => void; reject: (err: Error) => void }[] = [];
  private closed = false;
  private crashed = false;
  /** This handle's open snapshots: a close or a crash ends them, as LevelDB's close does. */
  private readonly pins = new Set<Pinned>();

  constructor(disk: MemoryDisk, schedule?: DiskScheduler, scheduleRead?: ReadScheduler) {
    this.disk = disk;
    this.schedule = schedule;
    this.scheduleRead = scheduleRead;
  }

  private checkOpen(): void {
    if (this.closed) throw new Error('the store is closed');
  }

  get(key: Uint8Array): Promise<Uint8Array | undefined> {
    return this.read(() => this.disk.entries.get(toHex(key))?.value.slice());
  }

  getMany(keys: readonly Uint8Array[]): Promise<(Uint8Array | undefined)[]> {
    return this.read(() => keys.map((k) => this.disk.entries.get(toHex(k))?.value.slice()));
  }

  /** A read now, or when the read scheduler says; one still pending at a crash never settles. */
  private read<T>(value: () => T): Promise<T> {
    let early: T;
    try {
      this.checkOpen();
      early = value();
    } catch (err) {
      return Promise.reject(err);
    }
    if (!this.scheduleRead) return Promise.resolve(early);
    return new Promise((resolve, reject) => {
      this.scheduleRead!((asOfCall) => {
        if (this.crashed) return;
        if (this.closed) reject(new Error('the store is closed'));
        else resolve(asOfCall ? early : value());
      });
    });
  }

  write(ops: readonly BatchOp[]): Promise<void> {
    // Refused as LevelKv refuses it: by a rejection, which the commit queue's failure road takes;
    // a throw would escape the timer that started the flush.
    if (this.closed) return Promise.reject(new Error('the store is closed'));
    if (!this.schedule) {
      this.disk.apply(ops);
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      this.inFlight.push({ ops, resolve, reject });
      this.schedule!(() => this.completeOne());
    });
  }

  private completeOne(): void {
    const next = this.inFlight.shift();
    if (!next) return; // dropped by a crash
    this.disk.apply(next.ops);
    next.resolve();
  }

  /** As of its first step, as a LevelDB iterator reads from a snapshot of the store taken then. */
  async *iterate(range: KeyRange, limit = Infinity): AsyncIterable<[Uint8Array, Uint8Array]> {
    this.checkOpen();
    const keys = this.disk.keysIn(toHex(range.gte), toHex(range.lt));
    if (range.reverse) keys.reverse();
    const entries: { key: Uint8Array; value: Uint8Array }[] = [];
    for (const k of keys) {
      if (entries.length >= limit) break;
      const entry = this.disk.entries.get(k);
      if (entry) entries.push(entry);
    }
    for (const entry of entries) yield [entry.key.slice(), entry.value.slice()];
  }

  async *keys(range: KeyRange): AsyncIterable<Uint8Array> {
    this.checkOpen();
    const keys = this.disk.keysIn(toHex(range.gte), toHex(range.lt));
    if (range.reverse) keys.reverse();
    for (const k of keys) {
      const entry = this.disk.entries.get(k);
      if (entry) yield entry.key.slice();
    }
  }

  /** As a batch of deletions, in order with the writes before it. */
  async clear(range: KeyRange): Promise<void> {
    this.checkOpen();
    const keys = this.disk.keysIn(toHex(range.gte), toHex(range.lt));
    if (keys.length === 0) return;
    await this.write(keys.map((k) => ({ type: 'del', key: this.disk.entries.get(k)!.key })));
  }

  /** Reads through the read scheduler as the store's own do, from the disk as it was when taken. */
  snapshot(): KvSnapshot {
    this.checkOpen();
    const pinned = this.disk.pin();
    this.pins.add(pinned);
    const at = (key: Uint8Array) => this.disk.pinnedEntry(pinned, toHex(key))?.value.slice();
    const read = <T>(value: () => T): Promise<T> => (this.pins.has(pinned) ? this.read(value) : Promise.reject(new Error('the snapshot is closed')));
    return {
      get: (key) => read(() => at(key)),
      getMany: (keys) => read(() => keys.map(at)),
      close: async () => this.unpin(pinned),
    };
  }

  private unpin(pinned: Pinned): void {
    this.pins.delete(pinned);
    this.disk.unpin(pinned);
  }

  /** Loses what was not yet written and closes, like a kill -9. Pending writes never settle. */
  crash(): void {
    this.inFlight = [];
    this.closed = true;
    this.crashed = true;
    for (const pinned of this.pins) this.unpin(pinned);
  }

  async close(): Promise<void> {
    while (this.inFlight.length > 0) this.completeOne();
    this.closed = true;
    for (const pinned of this.pins) this.unpin(pinned);
  }
}
