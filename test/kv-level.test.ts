import { strict as assert } from 'node:assert';
import { join } from 'node:path';
import { LevelKv } from '../ledger/kv-level.ts';
import type { BatchOp } from '../ledger/kv.ts';
import { seededRandom, tempDir } from './helpers/fixtures.ts';
import { checkSnapshot } from './helpers/kv.ts';

/**
 * LevelKv passes small keys and values to LevelDB as views of one buffer per batch (kv-level.ts
 * Slab): what is stored must be exactly what was given, whatever the sizes and however the caller's
 * arrays sit in their own buffers.
 */
const plain = (bytes: Uint8Array | undefined) => (bytes === undefined ? undefined : Uint8Array.from(bytes));

describe('LevelKv', () => {
  let dir: ReturnType<typeof tempDir>;
  beforeEach(() => (dir = tempDir()));
  afterEach(() => dir.remove());

  it('stores and reads back keys and values of every size around the in-heap limit, views included', async () => {
    const kv = await LevelKv.open(join(dir.path, 'db'));
    try {
      const random = seededRandom(5);
      const shared = random.bytes(4096);
      // Keys that are views into one larger buffer, each its own region of it.
      const keyPool = new Uint8Array(600 * 82);
      const expected = new Map<string, Uint8Array>();
      const ops: BatchOp[] = [];
      for (let i = 0; i < 600; i++) {
        const keyLength = 2 + (i % 80);
        const key = i % 3 === 0 ? keyPool.subarray(i * 82, i * 82 + keyLength) : random.bytes(keyLength);
        key.set(random.bytes(keyLength));
        key[0] = 0x4b;
        key[1] = i & 0xff;
        const valueLength = i % 7 === 0 ? 0 : (i * 13) % 130;
        const value = i % 2 === 0 ? random.bytes(valueLength) : shared.subarray(4096 - valueLength);
        const copy = Buffer.from(key).toString('hex');
        if (!expected.has(copy)) ops.push({ type: 'put', key, value });
        expected.set(copy, value.slice());
      }
      const before = ops.map((op) => Buffer.from(op.key).toString('hex'));
      await kv.write(ops);
      assert.deepEqual(ops.map((op) => Buffer.from(op.key).toString('hex')), before, "the caller's keys are left as they were");
      const keys = [...expected.keys()].map((hex) => Uint8Array.from(Buffer.from(hex, 'hex')));
      const values = await kv.getMany([...keys, Uint8Array.of(0x4b, 0xff, 0xff, 0xff)]);
      assert.equal(values.length, keys.length + 1);
      keys.forEach((key, i) => assert.deepEqual(plain(values[i]), expected.get(Buffer.from(key).toString('hex')), `key ${i}`));
      assert.equal(values[keys.length], undefined);
      const dropped = keys.filter((_, i) => i % 2 === 0);
      await kv.write(dropped.map((key) => ({ type: 'del' as const, key: key.subarray(0) })));
      const after = await kv.getMany(keys);
      keys.forEach((key, i) => assert.deepEqual(plain(after[i]), i % 2 === 0 ? undefined : expected.get(Buffer.from(key).toString('hex'))));
    } finally {
      await kv.close();
    }
  });

  it('a write to a closed database is a rejection, not a throw: it reaches the commit queue\'s failure road', async () => {
    // From the lifecycle review: a flush that came after the store closed threw out of the commit
    // queue's timer (abstract-level refuses a batch of a closed database synchronously), an
    // uncaught exception that ended the process.
    const kv = await LevelKv.open(join(dir.path, 'db'));
    await kv.close();
    const key = Uint8Array.of(1);
    let write: Promise<void> | undefined;
    assert.doesNotThrow(() => (write = kv.write([{ type: 'put', key, value: key }])));
    await assert.rejects(write!, /not open/);
    let logged: Promise<void> | undefined;
    assert.doesNotThrow(() => (logged = kv.writeLog({ forEach: (visit) => visit(key, key), ops: () => [{ type: 'put', key, value: key }] })));
    await assert.rejects(logged!, /not open/);
  });

  it('a snapshot reads the store as it was when taken, through later puts, deletions and clears, until closed', async () => {
    const kv = await LevelKv.open(join(dir.path, 'db'));
    try {
      await checkSnapshot(kv);
    } finally {
      await kv.close();
    }
  });
});
