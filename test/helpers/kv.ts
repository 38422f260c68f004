import type { KvStore } from '../../ledger/kv.ts';

/** A store that does what `inner` does but for the methods `overrides` gives: a test's hook into one kind of read or write. */
export function kvOver(inner: KvStore, overrides: Partial<KvStore>): KvStore {
  return {
    get: (key) => inner.get(key),
    getMany: (keys) => inner.getMany(keys),
    write: (ops) => inner.write(ops),
    iterate: (range, limit) => inner.iterate(range, limit),
    keys: (range) => inner.keys(range),
    clear: (range) => inner.clear(range),
    close: () => inner.close(),
    ...overrides,
  };
}
