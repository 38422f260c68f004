import { strict as assert } from 'node:assert';
import { join } from 'node:path';
import { LevelKv } from '../ledger/kv-level.ts';
import { valueOf, type BatchOp } from '../ledger/kv.ts';
import { OpLog } from '../ledger/op-log.ts';
import { seededRandom, tempDir } from './helpers/fixtures.ts';

const hex = (bytes: Uint8Array | undefined) => (bytes === undefined ? undefined : Buffer.from(bytes).toString('hex'));
const shape = (ops: readonly BatchOp[]) => ops.map((op) => (op.type === 'put' ? ['put', hex(op.key), hex(op.value)] : ['del', hex(op.key)]));

/** Keys and values of every length up to 300 bytes, views at offsets among them: enough to outgrow the log's first buffers. */
function someOps(seed: number, count: number): BatchOp[] {
  const random = seededRandom(seed);
  const pool = random.bytes(4096);
  return Array.from({ length: count }, (_, i): BatchOp => {
    const key = i % 4 === 0 ? pool.subarray(i % 1000, (i % 1000) + 1 + (i % 90)) : random.bytes(1 + (i % 70));
    if (i % 5 === 0) return { type: 'del', key };
    const value = i % 3 === 0 ? pool.subarray(100, 100 + ((i * 7) % 300)) : random.bytes((i * 13) % 130);
    return { type: 'put', key, value };
  });
}

describe('OpLog (the commit queue’s operations outside the heap)', () => {
  it('gives back what was pushed, in order, past the growth of its buffers, and copies rather than keeps the caller’s arrays', () => {
    const ops = someOps(1, 5_000);
    const log = new OpLog();
    ops.forEach((op, i) => assert.equal(log.add(op.key, valueOf(op)), i));
    const expected = shape(ops);
    for (const op of ops) op.key.fill(0); // the caller reuses its arrays: the log must not see it
    assert.equal(log.length, ops.length);
    assert.deepEqual(shape(log.ops()), expected);
    const visited: unknown[] = [];
    log.forEach((key, value) => visited.push(value === undefined ? ['del', hex(key)] : ['put', hex(key), hex(value)]));
    assert.deepEqual(visited, expected);
  });

  it('puts an operation in the place of an earlier one, a put by a deletion and back, and starts empty after clear', () => {
    const log = new OpLog();
    log.add(Uint8Array.of(1), Uint8Array.of(10));
    const at = log.add(Uint8Array.of(2), Uint8Array.of(20));
    log.add(Uint8Array.of(3), undefined);
    log.set(at, Uint8Array.of(2), undefined);
    log.set(2, Uint8Array.of(3), new Uint8Array(200).fill(7));
    log.set(at, Uint8Array.of(2), Uint8Array.of(21, 22));
    assert.deepEqual(shape(log.ops()), [
      ['put', '01', '0a'],
      ['put', '02', '1516'],
      ['put', '03', '07'.repeat(200)],
    ]);
    log.clear();
    assert.equal(log.length, 0);
    assert.deepEqual(log.ops(), []);
    log.add(Uint8Array.of(9), undefined);
    assert.deepEqual(shape(log.ops()), [['del', '09']]);
  });

  it('is written by LevelKv as the same batch its operations would be', async () => {
    const dir = tempDir();
    const kv = await LevelKv.open(join(dir.path, 'db'));
    try {
      const ops = someOps(2, 3_000);
      const log = new OpLog();
      for (const op of ops) log.add(op.key, valueOf(op));
      await kv.writeLog(log);
      const last = new Map<string, string | undefined>();
      for (const op of ops) last.set(hex(op.key)!, op.type === 'put' ? hex(op.value) : undefined);
      const keys = [...last.keys()];
      const stored = await kv.getMany(keys.map((k) => Uint8Array.from(Buffer.from(k, 'hex'))));
      keys.forEach((k, i) => assert.equal(hex(stored[i]), last.get(k), `key ${k}`));
    } finally {
      await kv.close();
      dir.remove();
    }
  });
});
