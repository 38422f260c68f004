/**
 * How VerifyPool (node/verify-pool.ts) shares a batch between its threads: in chunks that a thread
 * takes whenever it has room, so a thread that is slow to answer (busy, descheduled, lent to the
 * miner) leaves the rest of the batch to the others instead of holding it to the end. The
 * verdicts themselves are checked against Wycheproof in test/signature-backends.test.ts.
 */
import assert from 'node:assert/strict';
import type { Worker } from 'node:worker_threads';
import { sha256 } from '../ledger/hash.ts';
import { bestBackend, libsecp256k1Signer, nobleBackend } from '../ledger/signature-backends.js';
import { VerifyPool, type VerifyItem } from '../node/verify-pool.ts';

/** `count` signed messages from a few keys; every seventh carries another message's signature. */
function items(count: number): { items: VerifyItem[]; expected: boolean[] } {
  const signer = libsecp256k1Signer();
  assert.ok(signer, 'the native libsecp256k1 signer must load (npm ci installs it)');
  const keys = [1, 2, 3].map((k) => Uint8Array.from({ length: 32 }, (_, i) => (i === 31 ? k : 0)));
  const out: VerifyItem[] = [];
  const expected: boolean[] = [];
  for (let i = 0; i < count; i++) {
    const key = keys[i % keys.length]!;
    const message = Uint8Array.of(i & 0xff, i >>> 8, 7);
    const forged = i % 7 === 3;
    const signed = forged ? Uint8Array.of(i & 0xff, i >>> 8, 8) : message;
    out.push({ message, publicKey: signer.publicKey(key), signature: signer.sign(sha256(signed), key) });
    expected.push(!forged);
  }
  return { items: out, expected };
}

interface Traffic {
  /** Items sent to each thread, by its index. */
  readonly items: number[];
  /** The most chunks any thread held at once. */
  maxHeld: number;
}

/** Watches what the pool sends each thread; `delayMs[i]` holds thread i's messages back that long. */
function watch(pool: VerifyPool, delayMs: number[]): Traffic {
  const workers = (pool as unknown as { workers: Worker[] }).workers;
  const traffic: Traffic = { items: workers.map(() => 0), maxHeld: 0 };
  workers.forEach((worker, i) => {
    let held = 0;
    const post = worker.postMessage.bind(worker);
    worker.prependListener('message', () => held--); // before the pool's own listener sends the next chunk
    worker.postMessage = ((message: { count?: number }, transfer?: readonly ArrayBuffer[]) => {
      traffic.items[i]! += message.count ?? 0;
      traffic.maxHeld = Math.max(traffic.maxHeld, ++held);
      if (delayMs[i]) setTimeout(() => post(message, transfer as never), delayMs[i]);
      else post(message, transfer as never);
    }) as Worker['postMessage'];
  });
  return traffic;
}

describe('VerifyPool: sharing a batch between threads', function () {
  this.timeout(20_000);
  const batch = items(2000);

  it('answers in the order asked, each thread holding at most two chunks at a time', async function () {
    const pool = new VerifyPool(2, bestBackend());
    try {
      const traffic = watch(pool, [0, 0]);
      assert.deepEqual(await pool.verify(batch.items), batch.expected);
      assert.equal(traffic.items[0]! + traffic.items[1]!, 2000);
      assert.ok(traffic.items[0]! > 0 && traffic.items[1]! > 0, `both threads work: ${traffic.items}`);
      assert.ok(traffic.maxHeld <= 2, `a thread held ${traffic.maxHeld} chunks at once`);
      // Concurrent callers share the threads the same way, each answered in its own order.
      const parts = [batch.items.slice(0, 700), batch.items.slice(700, 1300), batch.items.slice(1300)];
      const verdicts = await Promise.all(parts.map((p) => pool.verify(p)));
      assert.deepEqual(verdicts.flat(), batch.expected);
    } finally {
      await pool.close();
    }
  });

  it('refuses what is still queued when it closes, rather than verifying it on the calling thread', async function () {
    let here = 0;
    const counted: typeof nobleBackend = { ...nobleBackend, verify: (...args) => (here++, nobleBackend.verify(...args)) };
    const pool = new VerifyPool(2, counted);
    const few = items(400);
    const outcome = pool.verify(few.items).then(() => 'answered', (err: Error) => err);
    await pool.close();
    assert.ok((await outcome) instanceof Error, 'the batch was answered after close');
    assert.equal(here, 0, `${here} signatures verified on the calling thread after close`);
  });

  it('lets its threads end by themselves when it closes, answering what they hold: none is terminated inside the native verifier', async function () {
    // A thread terminated inside libsecp256k1's binding could abort the whole process (seen once in
    // the suite, and in about one of a hundred closes during a batch in a loop).
    const pool = new VerifyPool(2, bestBackend());
    const workers = (pool as unknown as { workers: Worker[] }).workers.slice();
    const exitCodes = Promise.all(workers.map((w) => new Promise<number>((resolve) => w.once('exit', resolve))));
    await pool.verify(batch.items.slice(0, 100)); // both threads are up
    const held = pool.verify(batch.items.slice(0, 32)); // four chunks of 8: two with each thread, none queued
    await pool.close();
    assert.deepEqual(await held, batch.expected.slice(0, 32), 'the chunks the threads held were answered');
    assert.deepEqual(await exitCodes, [0, 0], 'each thread ended by itself (a terminated one exits with 1)');
  });

  it('leaves what a slow thread has not started to the other thread', async function () {
    // noble: about 2 ms a signature, so the whole batch is seconds of work for the prompt thread
    // and the slow one's first chunks arrive long after it started.
    const pool = new VerifyPool(2, nobleBackend);
    try {
      const traffic = watch(pool, [1500, 0]);
      const few = items(400);
      assert.deepEqual(await pool.verify(few.items), few.expected);
      // A fixed split would give each thread half (200); the slow one gets only its first two chunks.
      assert.ok(traffic.items[0]! < 200, `the slow thread was sent ${traffic.items[0]} of 400`);
      assert.ok(traffic.items[1]! > 200, `the prompt thread was sent ${traffic.items[1]} of 400`);
    } finally {
      await pool.close();
    }
  });

  /**
   * Makes `pool`'s thread `i` die (terminated: noble is plain JavaScript) as soon as it is sent a
   * chunk, or one holding the message `killer`.
   */
  function poison(pool: VerifyPool, i: number, killer?: Uint8Array): void {
    const worker = (pool as unknown as { workers: Worker[] }).workers[i]!;
    const post = worker.postMessage.bind(worker);
    worker.postMessage = ((message: { count?: number; packed?: Uint8Array }, transfer?: readonly ArrayBuffer[]) => {
      if (message.count && (!killer || Buffer.from(message.packed!).includes(Buffer.from(killer)))) void worker.terminate();
      else post(message, transfer as never);
    }) as Worker['postMessage'];
  }

  it('sends what a thread that died held to the others, and says so; a chunk that kills a second thread is refused', async function () {
    // From a review: a dead thread's chunks were refused, failing the whole batch (a block's import).
    const pool = new VerifyPool(2, nobleBackend);
    const lost: [string, number][] = [];
    pool.onThreadLost = (reason, left) => void lost.push([reason, left]);
    try {
      poison(pool, 0);
      const few = items(200);
      assert.deepEqual(await pool.verify(few.items), few.expected, 'answered in full by the thread left');
      assert.equal(pool.threads, 1);
      assert.deepEqual(lost.map(([, left]) => left), [1]);
    } finally {
      await pool.close();
    }
    const doomed = new VerifyPool(2, nobleBackend);
    try {
      const few = items(200);
      const killer = Uint8Array.of(0xde, 0xad, 0xbe, 0xef);
      const batch = few.items.map((it, i) => (i === 150 ? { ...it, message: killer } : it));
      poison(doomed, 0, killer);
      poison(doomed, 1, killer);
      await assert.rejects(doomed.verify(batch), /a verifier thread exited/, 'the chunk that killed one thread and then the other is refused, not sent round for ever');
      assert.equal(doomed.threads, 0);
      assert.deepEqual(await doomed.verify(few.items), few.expected, 'with no thread left, verified here');
    } finally {
      await doomed.close();
    }
  });

  it("sends a block's signatures (urgent) before what was queued for a peer's transactions", async function () {
    // From a review: one first-come queue made a block's import wait behind every gossiped batch.
    const pool = new VerifyPool(1, nobleBackend);
    try {
      const finished: string[] = [];
      const txs = items(400);
      const block = items(16);
      const gossip = pool.verify(txs.items).then((v) => (finished.push('gossip'), v));
      const urgent = pool.verify(block.items, { urgent: true }).then((v) => (finished.push('block'), v));
      assert.deepEqual(await urgent, block.expected);
      assert.deepEqual(await gossip, txs.expected);
      assert.deepEqual(finished, ['block', 'gossip']);
    } finally {
      await pool.close();
    }
  });
});
