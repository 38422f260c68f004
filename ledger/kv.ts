/**
 * The key-value store ChainDB keeps everything in. Two adapters: LevelDB (`kv-level.ts`) for
 * real nodes, and memory (`kv-memory.ts`) for tests and the simulator, whose crash drops every
 * batch not yet written. What ChainDB relies on, and every adapter must give:
 *   - `write` is atomic: after a crash either every operation of a batch is there or none is;
 *   - a read that starts after `write` resolved sees the batch;
 *   - `iterate` yields keys in unsigned byte order (LevelDB's), within [gte, lt), or the reverse,
 *     at most `limit`, as the store was at its first step however long the reading takes (LevelDB
 *     iterators read from an implicit snapshot: how a snapshot height's accounts are copied while
 *     blocks connect);
 *   - `clear` deletes every key of a range; it need not be atomic (it is for scratch data);
 *   - `snapshot` pins the store as it is when called: its reads answer from that version however
 *     many writes come after, until it is closed.
 */
export type BatchOp = { type: 'put'; key: Uint8Array; value: Uint8Array } | { type: 'del'; key: Uint8Array };

/** An operation as a key and a value, `undefined` for a deletion: how the commit queue's log holds it. */
export function valueOf(op: BatchOp): Uint8Array | undefined {
  return op.type === 'put' ? op.value : undefined;
}

/** The operation of a key and a value (`undefined`: the key's deletion). */
export function batchOp(key: Uint8Array, value: Uint8Array | undefined): BatchOp {
  return value === undefined ? { type: 'del', key } : { type: 'put', key, value };
}

/** A batch's operations in order, each key and value a view valid while the batch is written (ledger/op-log.ts). */
export interface BatchLog {
  forEach(visit: (key: Uint8Array, value: Uint8Array | undefined) => void): void;
  ops(): BatchOp[];
}

export interface KeyRange {
  readonly gte: Uint8Array;
  readonly lt: Uint8Array;
  /** Highest key first (an index read newest first). */
  readonly reverse?: boolean;
}

/**
 * The store as it was when the snapshot was taken (KvStore.snapshot): what a state proof below the
 * tip reads while blocks import. While open it keeps every version written since (LevelDB cannot
 * compact them away): close it however the reading ends.
 */
export interface KvSnapshot {
  get(key: Uint8Array): Promise<Uint8Array | undefined>;
  getMany(keys: readonly Uint8Array[]): Promise<(Uint8Array | undefined)[]>;
  close(): Promise<void>;
}

export interface KvStore {
  get(key: Uint8Array): Promise<Uint8Array | undefined>;
  getMany(keys: readonly Uint8Array[]): Promise<(Uint8Array | undefined)[]>;
  write(ops: readonly BatchOp[]): Promise<void>;
  /** The same as `write(log.ops())`, where the store can take the operations without their objects (ChainDB's commits). */
  writeLog?(log: BatchLog): Promise<void>;
  iterate(range: KeyRange, limit?: number): AsyncIterable<[Uint8Array, Uint8Array]>;
  /** The keys alone, in the same order: a scan that needs no values reads none. */
  keys(range: KeyRange): AsyncIterable<Uint8Array>;
  clear(range: KeyRange): Promise<void>;
  /** The store as it is now, for reads that must not see later writes. */
  snapshot(): KvSnapshot;
  close(): Promise<void>;
}
