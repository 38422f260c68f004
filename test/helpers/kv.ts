import assert from 'node:assert/strict';
import { batchOp, type KvStore } from '../../ledger/kv.ts';

/** A store that does what `inner` does but for the methods `overrides` gives: a test's hook into one kind of read or write. */
export function kvOver(inner: KvStore, overrides: Partial<KvStore>): KvStore {
  return {
    get: (key) => inner.get(key),
    getMany: (keys) => inner.getMany(keys),
    write: (ops) => inner.write(ops),
    iterate: (range, limit) => inner.iterate(range, limit),
    keys: (range) => inner.keys(range),
    clear: (range) => inner.clear(range),
    snapshot: () => inner.snapshot(),
    close: () => inner.close(),
    ...overrides,
  };
}

/**
 * What every adapter's snapshot must do (ledger/kv.ts): read the store as it was when taken, through
 * puts, deletions and a clear made after, while the store itself reads them; and refuse once closed.
 */
export async function checkSnapshot(kv: KvStore): Promise<void> {
  const at = (n: number) => Uint8Array.of(0x10, n);
  const plain = (values: (Uint8Array | undefined)[]) => values.map((v) => v && [...v]);
  await kv.write([batchOp(at(1), Uint8Array.of(1)), batchOp(at(2), Uint8Array.of(2))]);
  const snapshot = kv.snapshot();
  await kv.write([batchOp(at(1), Uint8Array.of(3)), batchOp(at(2), undefined), batchOp(at(3), Uint8Array.of(4))]);
  assert.deepEqual(plain(await snapshot.getMany([at(1), at(2), at(3)])), [[1], [2], undefined]);
  assert.deepEqual(plain(await kv.getMany([at(1), at(2), at(3)])), [[3], undefined, [4]]);
  await kv.clear({ gte: at(0), lt: at(0xff) });
  assert.deepEqual(plain([await snapshot.get(at(1)), await snapshot.get(at(3))]), [[1], undefined]);
  assert.equal(await kv.get(at(1)), undefined);
  await snapshot.close();
  await snapshot.close(); // twice is once
  await assert.rejects(snapshot.get(at(1)));
}
