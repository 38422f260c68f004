/**
 * MemoryKv's reads under a read scheduler (ledger/kv-memory.ts), as the simulator's disks make
 * them: an answer that comes later, with the disk as of the call or as of the answer, and none
 * after a crash.
 */
import assert from 'node:assert/strict';
import { MemoryDisk } from '../ledger/kv-memory.ts';
import { batchOp } from '../ledger/kv.ts';
import { checkSnapshot } from './helpers/kv.ts';

const key = new Uint8Array([1]);
const value = (n: number) => new Uint8Array([n]);

/** A disk whose reads wait for `answerAll`, each answering as `asOfCall` says. */
function heldReads(asOfCall: boolean) {
  const held: (() => void)[] = [];
  const kv = new MemoryDisk().open(undefined, (answer) => held.push(() => answer(asOfCall)));
  return { kv, answerAll: () => held.splice(0).forEach((answer) => answer()) };
}

describe('MemoryKv reads under a read scheduler', () => {
  it('answer only when the scheduler says, with the disk as of the call or as of the answer', async () => {
    for (const asOfCall of [true, false]) {
      const { kv, answerAll } = heldReads(asOfCall);
      await kv.write([batchOp(key, value(1))]);
      let answered: (Uint8Array | undefined)[] | undefined;
      const read = kv.getMany([key]).then((v) => (answered = v));
      await kv.write([batchOp(key, value(2))]);
      await Promise.resolve();
      assert.equal(answered, undefined, 'no answer before the scheduler gives it');
      answerAll();
      await read;
      assert.deepEqual(answered, [value(asOfCall ? 1 : 2)]);
      const single = kv.get(key);
      answerAll();
      assert.deepEqual(await single, value(2));
    }
  });

  it('a read pending at a crash never answers; one pending at a close fails', async () => {
    const crashed = heldReads(false);
    let settled = false;
    void crashed.kv.get(key).then(
      () => (settled = true),
      () => (settled = true),
    );
    crashed.kv.crash();
    crashed.answerAll();
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(settled, false);

    const closed = heldReads(true);
    const read = closed.kv.get(key);
    await closed.kv.close();
    closed.answerAll();
    await assert.rejects(read, /closed/);
    await assert.rejects(closed.kv.get(key), /closed/);
  });

  it('a write to a closed store is a rejection, not a throw, as LevelKv\'s', async () => {
    // From the lifecycle review: LevelKv's was fixed, this one (the simulator's) still threw.
    const kv = new MemoryDisk().open();
    await kv.close();
    let write: Promise<void> | undefined;
    assert.doesNotThrow(() => (write = kv.write([{ type: 'put', key: Uint8Array.of(1), value: Uint8Array.of(1) }])));
    await assert.rejects(write!, /closed/);
  });

  it('a snapshot reads the disk as it was when taken, through later puts, deletions and clears, until closed, as LevelKv\'s', async () => {
    await checkSnapshot(new MemoryDisk().open());
    // Under a read scheduler, and across the disk's own clear (a store's directory removed).
    const { kv, answerAll } = heldReads(false);
    await kv.write([batchOp(key, value(1))]);
    const snapshot = kv.snapshot();
    const read = snapshot.get(key);
    await kv.write([batchOp(key, value(2))]);
    answerAll();
    assert.deepEqual(await read, value(1));
    await kv.close();
    await assert.rejects(snapshot.get(key), /closed/, 'the store closed ends it, as LevelDB\'s close does');
    const disk = new MemoryDisk();
    const crashed = disk.open();
    await crashed.write([batchOp(key, value(1))]);
    const kept = crashed.snapshot();
    disk.clear();
    assert.deepEqual(await kept.get(key), value(1));
    crashed.crash();
    await assert.rejects(kept.get(key));
  });
});
