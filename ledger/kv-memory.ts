import { toHex } from './bytes.ts';
import type { BatchOp, KeyRange, KvStore } from './kv.ts';

/**
 * When a batch handed to `write` reaches the disk: the simulator passes its own scheduler, so
 * writes take simulated time and a crash can fall between a write and its completion.
 */
export type DiskScheduler = (complete: () => void) => void;

/** What survives a crash: the batches that completed, keyed by the hex of their keys. */
export class MemoryDisk {
  readonly entries = new Map<string, { key: Uint8Array; value: Uint8Array }>();
  /** Completed batches, for tests that count them. */
  batches = 0;

  /** An open handle on this disk, as a node holds one between start and stop (or crash). */
  open(schedule?: DiskScheduler): MemoryKv {
    return new MemoryKv(this, schedule);
  }

  /** Deletes everything, as removing a store's directory does. */
  clear(): void {
    this.entries.clear();
    this.sorted = undefined;
  }

  /** Every key in sorted order, kept between writes: the simulator scans height ranges often. */
  private sorted: string[] | undefined;

  apply(ops: readonly BatchOp[]): void {
    for (const op of ops) {
      const k = toHex(op.key);
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
  private inFlight: { ops: readonly BatchOp[]; resolve: () => void; reject: (err: Error) => void }[] = [];
  private closed = false;

  constructor(disk: MemoryDisk, schedule?: DiskScheduler) {
    this.disk = disk;
    this.schedule = schedule;
  }

  private checkOpen(): void {
    if (this.closed) throw new Error('the store is closed');
  }

  async get(key: Uint8Array): Promise<Uint8Array | undefined> {
    this.checkOpen();
    return this.disk.entries.get(toHex(key))?.value.slice();
  }

  async getMany(keys: readonly Uint8Array[]): Promise<(Uint8Array | undefined)[]> {
    this.checkOpen();
    return keys.map((k) => this.disk.entries.get(toHex(k))?.value.slice());
  }

  write(ops: readonly BatchOp[]): Promise<void> {
    this.checkOpen();
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

  /** Loses what was not yet written and closes, like a kill -9. Pending writes never settle. */
  crash(): void {
    this.inFlight = [];
    this.closed = true;
  }

  async close(): Promise<void> {
    while (this.inFlight.length > 0) this.completeOne();
    this.closed = true;
  }
}
