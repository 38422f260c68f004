import type { BatchLog, BatchOp, KvStore } from '../ledger/kv.ts';

/**
 * `store` with each batch write timed (`observe`, in seconds, once the write resolved): a block's
 * unit, a prune chunk, a snapshot's pages. ledger/ has no clock, so the node times the writes at
 * its side of the KvStore interface (the metrics' cairn_store_write_seconds); a failed write is
 * not timed: it poisons the commit queue, and the node says so.
 */
export function timedWrites(store: KvStore, monotonic: () => number, observe: (seconds: number) => void): KvStore {
  const timed = async (write: () => Promise<void>): Promise<void> => {
    const started = monotonic();
    await write();
    observe((monotonic() - started) / 1000);
  };
  const writeLog = store.writeLog?.bind(store);
  return {
    get: (key) => store.get(key),
    getMany: (keys) => store.getMany(keys),
    write: (ops: readonly BatchOp[]) => timed(() => store.write(ops)),
    ...(writeLog ? { writeLog: (log: BatchLog) => timed(() => writeLog(log)) } : {}),
    iterate: (range, limit) => store.iterate(range, limit),
    keys: (range) => store.keys(range),
    snapshot: () => store.snapshot(),
    clear: (range) => store.clear(range),
    close: () => store.close(),
  };
}
