import { Worker } from 'node:worker_threads';
import type { VerifyItem } from '../node/verify-pool.ts';

/**
 * What the machine's cores verify when each runs on its own: one thread per core, each looping
 * over its signatures with nothing between them (no messages, no calling thread at work). The
 * machine limit is one core's rate × the cores; cores that share caches, memory and a host with
 * other tenants give less than that together, and this is how much less. The pool's share of it
 * is what the pool itself costs.
 */
export class ParallelCeiling {
  private readonly threads: Worker[];

  constructor(cores: number, items: readonly VerifyItem[]) {
    this.threads = Array.from({ length: cores }, (_, t) => {
      // A share of the items each, as the pool's threads have: the key caches see what they would.
      const own = items.filter((_, i) => i % cores === t).map(({ signature, message, publicKey }) => ({ signature, message, publicKey }));
      return new Worker(new URL('./verify-ceiling-worker.js', import.meta.url), { workerData: { items: own } });
    });
  }

  /** Every thread verifying for `ms` at once: their rates summed, verifies a second. */
  async rate(ms: number): Promise<number> {
    const answers = await Promise.all(
      this.threads.map(
        (thread) =>
          new Promise<{ done: number; ms: number }>((resolve, reject) => {
            const answered = (answer: { done: number; ms: number }) => {
              thread.off('error', failed);
              resolve(answer);
            };
            const failed = (err: Error) => {
              thread.off('message', answered);
              reject(err);
            };
            thread.once('message', answered);
            thread.once('error', failed);
            thread.postMessage({ ms });
          }),
      ),
    );
    return answers.reduce((sum, a) => sum + (a.done * 1000) / a.ms, 0);
  }

  async close(): Promise<void> {
    await Promise.all(
      this.threads.map(
        (thread) =>
          new Promise<void>((resolve) => {
            thread.once('exit', () => resolve());
            thread.postMessage({ close: true });
          }),
      ),
    );
  }
}
