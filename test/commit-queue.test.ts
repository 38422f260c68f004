import assert from 'node:assert/strict';
import { CommitQueue, type AccountWrite, type BatchOp } from '../ledger/commit-queue.ts';
import { StoreError } from '../ledger/errors.ts';
import type { OpLog } from '../ledger/op-log.ts';

/** A store whose batches complete only when the test says so. */
function manualStore() {
  const batches: { ops: BatchOp[]; finish: (err?: Error) => void }[] = [];
  // The ops copied: the queue reuses a committed batch's log for a later one.
  const store = (log: OpLog): Promise<void> =>
    new Promise((resolve, reject) =>
      batches.push({
        ops: log.ops().map((op) => (op.type === 'put' ? { type: 'put', key: op.key.slice(), value: op.value.slice() } : { type: 'del', key: op.key.slice() })),
        finish: (err) => (err ? reject(err) : resolve()),
      }),
    );
  return { store, batches };
}

const put = (n: number): BatchOp => ({ type: 'put', key: Uint8Array.of(n), value: Uint8Array.of(n) });
const acct = (key: string, balance: bigint): AccountWrite => ({ key, account: { balance, nonce: 0n } });
const tick = () => new Promise((r) => setImmediate(r));

describe('CommitQueue (ChainDB group commit)', () => {
  it('commits what was queued during a flush together, in order, in the next batch', async () => {
    const { store, batches } = manualStore();
    const q = new CommitQueue(store, () => {});
    q.enqueue([put(1)]);
    q.enqueue([put(2)]);
    q.enqueue([put(3), put(4)]);
    assert.equal(batches.length, 1, 'one flush in flight at a time');
    assert.deepEqual(batches[0]!.ops.map((o) => o.key[0]), [1]);
    batches[0]!.finish();
    await tick();
    assert.equal(batches.length, 2);
    assert.deepEqual(batches[1]!.ops.map((o) => o.key[0]), [2, 3, 4]);
    const done = q.flushed();
    batches[1]!.finish();
    await done;
  });

  it('writes a latest-value slot once per flush, its last value in its first place; the next flush writes it again', async () => {
    const { store, batches } = manualStore();
    const q = new CommitQueue(store, () => {});
    const tip = (n: number) => ({ kind: 'tip' as const, slot: 'tip', op: { type: 'put' as const, key: Uint8Array.of(200), value: Uint8Array.of(n) } });
    q.enqueue([put(1)], [], [], [tip(1)]);
    q.enqueue([put(2)], [], [], [tip(2), { kind: 'node' as const, slot: 'x', op: put(50) }]);
    q.enqueue([put(3)], [], [], [tip(3), { kind: 'node' as const, slot: 'x', op: { type: 'del', key: Uint8Array.of(50) } }]);
    q.enqueue([put(4)], [], [], [tip(4)]);
    const shown = (ops: BatchOp[]) => ops.map((o) => (o.type === 'put' ? `${o.key[0]}=${o.value[0]}` : `-${o.key[0]}`));
    assert.deepEqual(shown(batches[0]!.ops), ['1=1', '200=1']);
    batches[0]!.finish();
    await tick();
    assert.deepEqual(shown(batches[1]!.ops), ['2=2', '200=4', '-50', '3=3', '4=4'], 'one tip (the last), one x (its removal)');
    q.enqueue([put(5)], [], [], [tip(5)]);
    batches[1]!.finish();
    await tick();
    assert.deepEqual(shown(batches[2]!.ops), ['5=5', '200=5']);
    const done = q.flushed();
    batches[2]!.finish();
    await done;
  });

  it('answers queued accounts before they commit, and hands each to the cache once committed unless rewritten later', async () => {
    const { store, batches } = manualStore();
    const committed: AccountWrite[] = [];
    const q = new CommitQueue(store, (c) => committed.push(...c));
    q.enqueue([put(1)], [acct('a', 1n), acct('b', 1n)]);
    q.enqueue([put(2)], [acct('a', 2n)]);
    assert.equal(q.account('a')?.balance, 2n, 'the newest queued value');
    assert.equal(q.account('b')?.balance, 1n);
    assert.equal(q.account('c'), undefined);
    batches[0]!.finish();
    await tick();
    assert.deepEqual(committed.map((c) => c.key), ['b'], '"a" is written again by the next batch: not yet the store\'s');
    assert.equal(q.account('b'), undefined, 'committed: the cache and the store answer now');
    assert.equal(q.account('a')?.balance, 2n);
    batches[1]!.finish();
    await q.flushed();
    assert.deepEqual(committed.map((c) => [c.key, c.account?.balance]), [['b', 1n], ['a', 2n]]);
  });

  it("writes an account's operation once per flush, its last in its first place, and hands the account to the cache once", async () => {
    const { store, batches } = manualStore();
    const committed: AccountWrite[] = [];
    const q = new CommitQueue(store, (c) => committed.push(...c));
    const write = (key: string, balance: number): AccountWrite => ({ ...acct(key, BigInt(balance)), op: { type: 'put', key: Uint8Array.of(key.charCodeAt(0)), value: Uint8Array.of(balance) } });
    const shown = (ops: BatchOp[]) => ops.map((o) => (o.type === 'put' ? `${String.fromCharCode(o.key[0]!)}=${o.value[0]}` : `-${o.key[0]}`));
    q.enqueue([put(1)], [write('a', 1)]);
    q.enqueue([put(2)], [write('a', 2), write('b', 2)]);
    q.enqueue([put(3)], [write('b', 3), write('a', 3), acct('c', 3n)]);
    q.enqueue([put(4)], [write('a', 4)]);
    assert.deepEqual(shown(batches[0]!.ops), ['\x01=1', 'a=1']);
    batches[0]!.finish();
    await tick();
    assert.deepEqual(shown(batches[1]!.ops), ['\x02=2', 'a=4', 'b=3', '\x03=3', '\x04=4'], 'one write of a and of b, each its last value; c rides with no operation');
    assert.equal(q.account('a')?.balance, 4n);
    batches[1]!.finish();
    await q.flushed();
    assert.deepEqual(committed.map((c) => [c.key, c.account?.balance]), [['a', 4n], ['b', 3n], ['c', 3n]], "each account once, with its last value (the first flush's a was overtaken)");
    q.enqueue([], [write('a', 5)]);
    await tick();
    assert.deepEqual(shown(batches[2]!.ops), ['a=5'], 'the next flush writes it again');
    batches[2]!.finish();
    await q.flushed();
  });

  it('flushed() waits for what was queued before it was called, not for what comes after', async () => {
    const { store, batches } = manualStore();
    const q = new CommitQueue(store, () => {});
    q.enqueue([put(1)]);
    q.enqueue([put(2)]);
    let done = false;
    const waiting = q.flushed().then(() => (done = true));
    batches[0]!.finish();
    await tick();
    q.enqueue([put(3)]); // queued after the call: behind batch 2, which carries put(2)
    assert.equal(done, false, 'put(2) is not committed yet');
    batches[1]!.finish();
    await waiting;
    assert.equal(done, true, 'resolved once put(2) committed, with put(3) still queued');
    assert.deepEqual(batches[1]!.ops.map((o) => o.key[0]), [2]);
    batches[2]?.finish();
    await q.flushed();
  });

  it('with a scheduler, starts the flush a write needs when the scheduler says, and flushed() does not wait for it', async () => {
    const { store, batches } = manualStore();
    const scheduled: (() => void)[] = [];
    const q = new CommitQueue(store, () => {}, (start) => scheduled.push(start));
    q.enqueue([put(1)]);
    q.enqueue([put(2)]);
    assert.equal(batches.length, 0, 'nothing written while the connect that queued it is still running');
    assert.equal(scheduled.length, 1, 'one scheduled start for both');
    scheduled[0]!();
    assert.deepEqual(batches[0]!.ops.map((o) => o.key[0]), [1, 2], 'both in one batch');
    q.enqueue([put(3)]);
    assert.equal(scheduled.length, 1, 'a flush in flight starts the next itself');
    batches[0]!.finish();
    await tick();
    assert.deepEqual(batches[1]!.ops.map((o) => o.key[0]), [3]);
    batches[1]!.finish();
    await tick();
    q.enqueue([put(4)]);
    const done = q.flushed(); // starts the write at once: a reader is waiting for it
    assert.deepEqual(batches[2]!.ops.map((o) => o.key[0]), [4]);
    batches[2]!.finish();
    await done;
    scheduled[1]!(); // the start scheduled for put(4) finds nothing left to write
    assert.equal(batches.length, 3);
  });

  it('a failed flush refuses every later write and wait with STORE_WRITE_FAILED, and is told once', async () => {
    const { store, batches } = manualStore();
    const told: StoreError[] = [];
    const q = new CommitQueue(store, () => {}, undefined, (err) => told.push(err));
    q.enqueue([put(1)]);
    q.enqueue([put(2)]);
    batches[0]!.finish(new Error('disk full'));
    await assert.rejects(q.flushed(), (err: unknown) => err instanceof StoreError && err.code === 'STORE_WRITE_FAILED');
    assert.deepEqual(told.map((e) => e.code), ['STORE_WRITE_FAILED'], 'no writer may be waiting to hear it: whoever runs the store is told');
    assert.equal(batches.length, 1, 'nothing after a failed batch is written: it would build on what is not there');
    assert.throws(() => q.enqueue([put(3)]), (err: unknown) => err instanceof StoreError && err.code === 'STORE_WRITE_FAILED');
    await assert.rejects(q.backpressure(), StoreError);
    assert.equal(told.length, 1);
  });

  it('reuses a committed batch\'s log for a later one, never one whose write is still in flight', async () => {
    // A store that keeps the log's own views, as LevelDB's write reads them until it is done.
    const batches: { ops: BatchOp[]; finish: () => void }[] = [];
    const q = new CommitQueue((log) => new Promise<void>((resolve) => batches.push({ ops: log.ops(), finish: resolve })), () => {});
    const putBytes = (n: number) => ({ type: 'put' as const, key: Uint8Array.of(n, n), value: new Uint8Array(100).fill(n) });
    const bytesOf = (ops: BatchOp[]) => ops.map((o) => (o.type === 'put' ? [...o.key, ...o.value] : [...o.key]));
    q.enqueue([putBytes(1)]);
    q.enqueue([putBytes(2), putBytes(3)]); // queued behind batch 0, in a second log
    batches[0]!.finish();
    await tick(); // batch 0 committed: its log is the spare; batch 1 is in flight
    assert.equal(batches.length, 2);
    const inFlight = bytesOf(batches[1]!.ops);
    q.enqueue([putBytes(4), putBytes(5), putBytes(6)]); // into batch 0's log, emptied
    assert.deepEqual(bytesOf(batches[1]!.ops), inFlight, 'a write in flight reads what was queued, whatever is queued after it');
    batches[1]!.finish();
    await tick();
    assert.deepEqual(bytesOf(batches[2]!.ops), bytesOf([putBytes(4), putBytes(5), putBytes(6)]));
    const done = q.flushed();
    batches[2]!.finish();
    await done;
  });

  it('waits on backpressure before its bytes outgrow a reusable log, so an import that never yields keeps reusing two logs', async () => {
    // A writer that never lets the event loop turn (a generated chain's import) queues until
    // backpressure makes it wait for the flush in flight, which LevelDB finishes on a later turn.
    const logs = new Set<OpLog>();
    let flushes = 0;
    let capacity = 0;
    const q = new CommitQueue((log) => {
      flushes++;
      logs.add(log);
      capacity = Math.max(capacity, log.capacity);
      return new Promise<void>((resolve) => setImmediate(resolve));
    }, () => {});
    const value = new Uint8Array(300).fill(7);
    for (let i = 0; i < 200_000; i++) {
      await q.backpressure();
      q.enqueue([{ type: 'put', key: Uint8Array.of(i >>> 16, i >>> 8, i), value }]);
    }
    await q.flushed();
    assert.ok(flushes >= 8, `${flushes} flushes`);
    assert.ok(capacity <= 8 * 1024 * 1024, `a log grew to ${capacity} bytes`);
    assert.equal(logs.size, 2, `${logs.size} logs made for ${flushes} flushes`);
  });
});
