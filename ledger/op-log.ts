import { batchOp, type BatchLog, type BatchOp } from './kv.ts';

/**
 * Store operations as the commit queue holds them until their flush: the bytes of each key and
 * value copied, as it is queued, into one buffer outside the JS heap, with an index of where each
 * sits. A block's operations (thousands: its accounts, tree leaves, indexes) otherwise lived as
 * objects and small arrays from the block's connect until the flush before them had committed; a
 * scavenge falls inside that span every block under the node's young generation (cli/runtime.ts),
 * and copied, then promoted, every one of them: ~1 MB a 500-transaction block.
 *
 * An operation can be overwritten in place (`set`): its new bytes are appended and the index points
 * there; the old bytes stay unused until the log is emptied.
 */
export class OpLog implements BatchLog {
  private bytes = new Uint8Array(new ArrayBuffer(1 << 16));
  private used = 0;
  /** Per operation: where its key starts, the key's length, the value's length (-1: a deletion); the value follows the key. */
  private index = new Int32Array(3 * 1024);
  private count = 0;

  get length(): number {
    return this.count;
  }

  /** Bytes of keys and values the log holds (an operation overwritten in place still counts its old bytes). */
  get size(): number {
    return this.used;
  }

  /** Bytes the log holds room for. */
  get capacity(): number {
    return this.bytes.length;
  }

  /** Appends a put of `value` at `key`, or its deletion (`value` undefined); returns its place. */
  add(key: Uint8Array, value: Uint8Array | undefined): number {
    const at = this.count;
    if (3 * (at + 1) > this.index.length) {
      const index = new Int32Array(this.index.length * 2);
      index.set(this.index);
      this.index = index;
    }
    this.count++;
    this.set(at, key, value);
    return at;
  }

  /** Puts the put of `value` at `key` (a deletion: `value` undefined) in the place of the operation at `at`. */
  set(at: number, key: Uint8Array, value: Uint8Array | undefined): void {
    const size = key.length + (value?.length ?? 0);
    if (this.used + size > this.bytes.length) this.grow(size);
    const bytes = this.bytes;
    let p = this.used;
    this.index[3 * at] = p;
    this.index[3 * at + 1] = key.length;
    this.index[3 * at + 2] = value === undefined ? -1 : value.length;
    p = place(bytes, p, key);
    if (value !== undefined) p = place(bytes, p, value);
    this.used = p;
  }

  /**
   * Each operation in order, its key and value (`undefined`: a deletion) as views of the log's
   * buffer, valid until the log is emptied: a writer that copies them at once (LevelDB's batch)
   * leaves each garbage as soon as it is made.
   */
  forEach(visit: (key: Uint8Array, value: Uint8Array | undefined) => void): void {
    const { bytes, index } = this;
    for (let i = 0; i < this.count; i++) {
      const at = index[3 * i]!;
      const keyEnd = at + index[3 * i + 1]!;
      const valueLength = index[3 * i + 2]!;
      visit(bytes.subarray(at, keyEnd), valueLength < 0 ? undefined : bytes.subarray(keyEnd, keyEnd + valueLength));
    }
  }

  /** The operations as objects, for a store that takes them so (the same views as `forEach`). */
  ops(): BatchOp[] {
    const out: BatchOp[] = [];
    this.forEach((key, value) => out.push(batchOp(key, value)));
    return out;
  }

  /** Empties the log, keeping its buffers for the next flush. */
  clear(): void {
    this.used = 0;
    this.count = 0;
  }

  private grow(size: number): void {
    let length = this.bytes.length * 2;
    while (length < this.used + size) length *= 2;
    const bytes = new Uint8Array(new ArrayBuffer(length));
    bytes.set(this.bytes.subarray(0, this.used));
    this.bytes = bytes;
  }
}

/** Copies `from` into `to` at `p`; returns the end. A loop for the short keys and values, which most are. */
function place(to: Uint8Array, p: number, from: Uint8Array): number {
  const n = from.length;
  if (n > 64) to.set(from, p);
  else for (let i = 0; i < n; i++) to[p + i] = from[i]!;
  return p + n;
}
