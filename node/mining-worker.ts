/**
 * One nonce-search thread. It hashes in slices and checks a shared job counter between slices,
 * so stale work stops within one slice (about a millisecond) of the head changing, without
 * waiting for a message to be delivered.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { hash } from 'node:crypto';
import { searchNonce } from '../consensus/miner.ts';

export interface MiningJob {
  readonly jobId: number;
  readonly headerBytes: Uint8Array;
  readonly target: Uint8Array;
  readonly startNonce: bigint;
}

export type WorkerReport =
  | { readonly kind: 'found'; readonly jobId: number; readonly nonce: bigint; readonly hashes: number }
  | { readonly kind: 'progress'; readonly jobId: number; readonly hashes: number };

const SLICE = 1000;
const REPORT_EVERY = 200; // slices
const currentJob = new Int32Array(workerData.jobCounter as SharedArrayBuffer);
// A Buffer is a Uint8Array: this hot loop skips ledger's defensive copy of every digest.
const sha256 = (data: Uint8Array): Uint8Array => hash('sha256', data, 'buffer');

parentPort!.on('message', (job: MiningJob) => {
  let nonce = job.startNonce;
  let hashes = 0;
  let slices = 0;
  const run = () => {
    while (Atomics.load(currentJob, 0) === job.jobId) {
      const found = searchNonce(job.headerBytes, job.target, nonce, SLICE, sha256);
      if (found !== undefined) {
        parentPort!.postMessage({ kind: 'found', jobId: job.jobId, nonce: found, hashes: hashes + Number(found - nonce) + 1 } satisfies WorkerReport);
        return;
      }
      nonce += BigInt(SLICE);
      hashes += SLICE;
      if (++slices % REPORT_EVERY === 0) {
        parentPort!.postMessage({ kind: 'progress', jobId: job.jobId, hashes } satisfies WorkerReport);
        hashes = 0;
        setImmediate(run); // let a newer job's message in
        return;
      }
    }
    if (hashes > 0) parentPort!.postMessage({ kind: 'progress', jobId: job.jobId, hashes } satisfies WorkerReport);
  };
  run();
});
