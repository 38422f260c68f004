import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import { bestBackend, type SignatureBackend } from '../ledger/signature-backends.js';
import type { HashingThreads, ThreadLender, WorkerReport } from './hashing.ts';

export interface VerifyItem {
  readonly signature: Uint8Array;
  readonly message: Uint8Array;
  readonly publicKey: Uint8Array;
}

/**
 * A pool thread keeps nothing from one job to the next, so a small young generation holds all it
 * needs; V8's default lets each thread grow its own tens of megabytes of garbage.
 */
const WORKER_HEAP = { maxYoungGenerationSizeMb: 4 };
/** How long a closing pool waits for a thread to end by itself before it terminates it. */
const CLOSE_GRACE_MS = 5_000;

/** Below this many items a batch is verified on the calling thread: a round trip costs more. */
const INLINE_BELOW = 8;

/**
 * Chunks a thread holds at once: the one it verifies and the next, already in its message queue,
 * so it never waits on this thread between them.
 */
const IN_FLIGHT_PER_THREAD = 2;

/**
 * A chunk's size bounds: above, the packing before the first post (~0.3 µs an item) and the
 * time one thread may finish after the other; below, what each message costs both threads.
 */
const MAX_CHUNK = 1024;
const MIN_CHUNK = 8;

/** Part of a caller's batch, queued until a thread has room for it. */
interface Chunk {
  readonly items: readonly VerifyItem[];
  readonly urgent: boolean;
  readonly queuedAt: number;
  readonly resolve: (verdicts: Uint8Array) => void;
  readonly reject: (err: Error) => void;
  /** It was held by a thread that died: a second such death is its own doing, and it is refused. */
  orphaned: boolean;
}

export interface VerifyOptions {
  /**
   * A block's signatures, which its import (and the chain behind it) waits for: sent before every
   * chunk of what is not, such as a peer's transactions, queued earlier or not.
   */
  readonly urgent?: boolean;
}

/**
 * Verifies signatures on every core, so the event loop stays free while they run. A batch is cut
 * into chunks that shrink as it runs out (each about a 2×threads-th of what is left), and a
 * thread gets the next queued chunk whenever it has fewer than two: the threads start within a
 * small chunk's packing and finish within a small chunk of each other, whatever the mix of callers.
 * Every worker uses the same (fastest available) backend. On a mining node the same threads hash
 * for the miner when they have nothing to verify (node/pool-worker.js).
 */
export class VerifyPool implements ThreadLender {
  readonly backend: SignatureBackend['name'];
  private readonly inline: SignatureBackend;
  private readonly workers: Worker[] = [];
  private readonly pending = new Map<number, { chunk: Chunk; worker: Worker }>();
  /** Chunks no thread has room for yet, first come first sent, the urgent before the rest. */
  private readonly urgentQueue: Chunk[] = [];
  private readonly queue: Chunk[] = [];
  private closed = false;
  private readonly inFlight = new Map<Worker, number>();
  /** Told how long each chunk of signatures waited for its thread (seconds): the metrics' queue wait. */
  onQueueWait: ((seconds: number) => void) | undefined;
  /** Told when a thread dies (the node logs it): the pool carries on with the rest, or inline with none. */
  onThreadLost: ((reason: string, threadsLeft: number) => void) | undefined;
  private nextId = 1;
  /** Threads a miner has borrowed (`hashFor`): they hold the process open while it mines. */
  private readonly lent = new Set<Worker>();
  /** Where the threads' hashing reports go while a miner uses them. */
  private onHashed: ((report: WorkerReport) => void) | undefined;
  /** The miner's threads by index (`hashFor`), those told its job counter, and what it is told when one dies. */
  private hashing: { readonly threads: Worker[]; readonly told: Set<Worker>; readonly onLost: () => void } | undefined;

  constructor(threads = availableParallelism(), backend: SignatureBackend = bestBackend()) {
    this.inline = backend;
    this.backend = backend.name;
    for (let i = 0; i < threads; i++) {
      const worker = new Worker(new URL('./pool-worker.js', import.meta.url), { workerData: { backend: backend.name }, resourceLimits: WORKER_HEAP });
      worker.on('message', (m: { id: number; verdicts: Uint8Array; backend: string; started: number } | { mining: WorkerReport }) => {
        if ('mining' in m) return this.onHashed?.(m.mining);
        const job = this.pending.get(m.id);
        if (job && this.onQueueWait) this.onQueueWait(Math.max(0, m.started - job.chunk.queuedAt) / 1000);
        this.pending.delete(m.id);
        this.inFlight.set(worker, (this.inFlight.get(worker) ?? 1) - 1);
        this.release(worker);
        if (m.backend !== this.backend) job?.chunk.reject(new Error(`a verifier thread used ${m.backend}, not ${this.backend}`));
        else job?.chunk.resolve(m.verdicts);
        this.dispatch();
      });
      // A thread that dies must not leave its callers waiting forever, nor fail them: a verdict is
      // a pure function of its inputs, so what the thread held is sent again, at the front. Once:
      // a chunk whose second thread dies too is what kills them, and is refused.
      const fail = (err: Error) => {
        const held: Chunk[] = [];
        for (const [id, job] of this.pending) {
          if (job.worker !== worker) continue;
          this.pending.delete(id);
          if (this.closed || job.chunk.orphaned) job.chunk.reject(err);
          else held.push(job.chunk);
        }
        for (const chunk of held.reverse()) {
          chunk.orphaned = true;
          (chunk.urgent ? this.urgentQueue : this.queue).unshift(chunk);
        }
        const index = this.workers.indexOf(worker);
        if (index >= 0) {
          this.workers.splice(index, 1); // the rest carry on; with none left, work is done inline
          this.onThreadLost?.(err.message, this.workers.length);
        }
        if (this.lent.delete(worker)) this.replaceHashing(worker);
        this.inFlight.delete(worker);
        this.dispatch();
      };
      worker.on('error', fail);
      worker.on('exit', (code) => fail(new Error(`a verifier thread exited (${code})`)));
      worker.unref();
      this.workers.push(worker);
      this.inFlight.set(worker, 0);
    }
  }

  get threads(): number {
    return this.workers.length;
  }

  /**
   * Lends up to `threads` of the pool's threads to a miner: each hashes the job it was last given
   * whenever it has no signatures to check, until `jobCounter` (shared memory) moves past it.
   */
  hashFor(jobCounter: SharedArrayBuffer, threads: number, onReport: (report: WorkerReport) => void, onLost: () => void = () => {}): HashingThreads {
    this.onHashed = onReport;
    const hashing = { threads: this.workers.slice(0, threads), told: new Set<Worker>(), onLost };
    this.hashing = hashing;
    for (const worker of hashing.threads) this.lend(worker);
    return {
      get threads() {
        return hashing.threads.length;
      },
      post: (thread, job) => {
        const worker = hashing.threads[thread];
        if (!worker) return;
        worker.postMessage({ mine: job, jobCounter: hashing.told.has(worker) ? undefined : jobCounter });
        hashing.told.add(worker);
      },
    };
  }

  private lend(worker: Worker): void {
    this.lent.add(worker);
    worker.ref(); // hashing threads keep the process alive, as mining should
  }

  /**
   * A thread the miner hashed on died: a thread it has not borrowed takes its place, or it mines on
   * fewer; told either way, it gives its job again (with none left it says it cannot mine).
   */
  private replaceHashing(dead: Worker): void {
    const hashing = this.hashing;
    const index = hashing?.threads.indexOf(dead) ?? -1;
    if (!hashing || index < 0) return;
    const spare = this.workers.find((w) => !this.lent.has(w));
    if (spare) {
      hashing.threads[index] = spare;
      this.lend(spare);
    } else {
      hashing.threads.splice(index, 1);
    }
    hashing.onLost();
  }

  /** Takes the threads back from the miner (which has already bumped its job counter). */
  stopHashing(): void {
    this.onHashed = undefined;
    this.hashing = undefined;
    const lent = [...this.lent];
    this.lent.clear();
    for (const worker of lent) this.release(worker);
  }

  /** Idle threads never hold the process open: one is held while it owes an answer or mines. */
  private release(worker: Worker): void {
    if (this.lent.has(worker)) return;
    for (const job of this.pending.values()) if (job.worker === worker) return;
    worker.unref();
  }

  async verify(items: readonly VerifyItem[], o: VerifyOptions = {}): Promise<boolean[]> {
    // Workers take fixed-size signatures and keys; anything else is not canonical anyway.
    if (items.some((it) => it.signature.length !== 64 || it.publicKey.length !== 33)) {
      const wellFormed = items.filter((it) => it.signature.length === 64 && it.publicKey.length === 33);
      const verdicts = await this.verify(wellFormed, o);
      let next = 0;
      return items.map((it) => (it.signature.length === 64 && it.publicKey.length === 33 ? verdicts[next++]! : false));
    }
    if (items.length < INLINE_BELOW || this.workers.length === 0) {
      return this.verifyHere(items);
    }
    const chunks: Promise<Uint8Array>[] = [];
    const urgent = o.urgent ?? false;
    const queue = urgent ? this.urgentQueue : this.queue;
    for (let start = 0; start < items.length; ) {
      const size = Math.min(MAX_CHUNK, Math.max(MIN_CHUNK, Math.ceil((items.length - start) / (2 * this.workers.length))));
      const part = items.slice(start, start + size);
      chunks.push(new Promise((resolve, reject) => queue.push({ items: part, urgent, queuedAt: performance.timeOrigin + performance.now(), resolve, reject, orphaned: false })));
      start += part.length;
    }
    this.dispatch();
    const verdicts = await Promise.all(chunks);
    const out: boolean[] = new Array(items.length);
    let i = 0;
    for (const v of verdicts) for (const b of v) out[i++] = b === 1;
    return out;
  }

  /** Sends queued chunks to the threads with room, the least busy first; with no thread left, verifies them here. */
  private dispatch(): void {
    while (this.urgentQueue.length > 0 || this.queue.length > 0) {
      const next = this.urgentQueue.length > 0 ? this.urgentQueue : this.queue;
      if (this.workers.length === 0) {
        const chunk = next.shift()!;
        chunk.resolve(Uint8Array.from(this.verifyHere(chunk.items), (ok) => (ok ? 1 : 0)));
        continue;
      }
      const worker = this.leastBusy();
      if (!worker) return;
      this.send(worker, next.shift()!);
    }
  }

  /** The thread holding the fewest chunks (the first of equals), if one holds fewer than IN_FLIGHT_PER_THREAD. */
  private leastBusy(): Worker | undefined {
    let best: Worker | undefined;
    let held = IN_FLIGHT_PER_THREAD;
    for (const worker of this.workers) {
      const n = this.inFlight.get(worker)!;
      if (n < held) {
        best = worker;
        held = n;
      }
    }
    return best;
  }

  private verifyHere(items: readonly VerifyItem[]): boolean[] {
    return items.map((it) => this.inline.verify(it.signature, it.message, it.publicKey));
  }

  private send(worker: Worker, chunk: Chunk): void {
    let size = 0;
    for (const it of chunk.items) size += 101 + it.message.length;
    const packed = new Uint8Array(size);
    const view = new DataView(packed.buffer);
    let offset = 0;
    for (const it of chunk.items) {
      packed.set(it.signature.subarray(0, 64), offset);
      packed.set(it.publicKey.subarray(0, 33), offset + 64);
      view.setUint32(offset + 97, it.message.length);
      packed.set(it.message, offset + 101);
      offset += 101 + it.message.length;
    }
    const id = this.nextId++;
    this.pending.set(id, { chunk, worker });
    this.inFlight.set(worker, this.inFlight.get(worker)! + 1);
    worker.ref(); // idle threads never hold the process open, busy ones do until they answer
    worker.postMessage({ id, packed, count: chunk.items.length }, [packed.buffer]);
  }

  /**
   * Stops the threads; what is still queued is refused, not verified here (a closing node needs no
   * verdicts). Each thread is asked to end after the messages it has, not terminated: a thread
   * terminated inside libsecp256k1's binding (node-addon-api) aborted the whole process when the
   * binding then threw into the dying thread. One that has not ended after CLOSE_GRACE_MS is.
   */
  async close(): Promise<void> {
    this.closed = true;
    const workers = this.workers.splice(0);
    for (const chunk of [...this.urgentQueue.splice(0), ...this.queue.splice(0)]) chunk.reject(new Error('the verifier pool is closed'));
    await Promise.all(
      workers.map(async (worker) => {
        let timer: NodeJS.Timeout | undefined;
        await new Promise<void>((resolve) => {
          worker.once('exit', () => resolve());
          worker.postMessage({ close: true });
          timer = setTimeout(() => void worker.terminate().finally(resolve), CLOSE_GRACE_MS);
        });
        clearTimeout(timer);
      }),
    );
  }
}
