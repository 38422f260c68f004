// @ts-check
/**
 * One nonce-search thread. It hashes in slices and checks a shared job counter between slices,
 * so stale work stops within one slice (about a millisecond) of the head changing, without
 * waiting for a message to be delivered. Plain JavaScript, as is all it imports: a thread that
 * loads TypeScript carries Node's type stripper (consensus/nonce-search.js).
 *
 * @typedef {import('./miner.ts').MiningJob} MiningJob
 * @typedef {import('./miner.ts').WorkerReport} WorkerReport
 */
import { parentPort, workerData } from 'node:worker_threads';
import { searchNonceWith } from '../consensus/nonce-search.js';
import { meetsTarget } from './pow-hash.js';

const SLICE = 1000;
const REPORT_EVERY = 200; // slices
const currentJob = new Int32Array(workerData.jobCounter);
const port = /** @type {import('node:worker_threads').MessagePort} */ (parentPort);

/** @param {WorkerReport} report */
const report = (report) => port.postMessage(report);

port.on('message', (/** @type {MiningJob} */ job) => {
  let nonce = job.startNonce;
  let hashes = 0;
  let slices = 0;
  const meets = meetsTarget(job.target);
  const run = () => {
    while (Atomics.load(currentJob, 0) === job.jobId) {
      const found = searchNonceWith(job.headerBytes, nonce, SLICE, meets);
      if (found !== undefined) {
        report({ kind: 'found', jobId: job.jobId, nonce: found, hashes: hashes + Number(found - nonce) + 1 });
        return;
      }
      nonce += BigInt(SLICE);
      hashes += SLICE;
      if (++slices % REPORT_EVERY === 0) {
        report({ kind: 'progress', jobId: job.jobId, hashes });
        hashes = 0;
        setImmediate(run); // let a newer job's message in
        return;
      }
    }
    if (hashes > 0) report({ kind: 'progress', jobId: job.jobId, hashes });
  };
  run();
});
