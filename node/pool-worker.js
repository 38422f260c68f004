// @ts-check
/**
 * One of a node's worker threads (node/verify-pool.ts). It checks signatures, and on a mining
 * node hashes for the miner whenever it has none to check: a thread that only hashed was a
 * whole V8 isolate (~20-28 MB, measured) for work that fits in the verifiers' idle time.
 *
 * Signatures arrive packed in one buffer (no per-item messages): signature (64) ‖ public key (33)
 * ‖ message length (u32) ‖ message; verdicts go back as bytes. Hashing runs in slices of 1,000
 * headers (~0.35 ms), each scheduled with setImmediate, so a batch of signatures waits at most one
 * slice; a shared job counter, read between slices, drops stale work as soon as the tip changes.
 * Plain JavaScript, as is all it imports: a thread that loads TypeScript carries Node's type
 * stripper, about 13 MB of memory per thread.
 *
 * @typedef {import('./hashing.ts').MiningJob} MiningJob
 * @typedef {import('./hashing.ts').WorkerReport} WorkerReport
 */
import { parentPort, workerData } from 'node:worker_threads';
import { bestBackend, nobleBackend, opensslBackend, libsecp256k1Backend } from '../ledger/signature-backends.js';
import { searchNonceWith } from '../consensus/nonce-search.js';
import { meetsTarget } from './pow-hash.js';

/** @type {import('../ledger/signature-backends.js').SignatureBackend['name'] | undefined} */
const wanted = workerData?.backend;
const chosen =
  wanted === 'noble' ? nobleBackend : wanted === 'openssl' ? opensslBackend : wanted === 'libsecp256k1' ? libsecp256k1Backend() : bestBackend();
// Never substitute another backend silently: the pool must know which library judged.
if (!chosen) throw new Error(`signature backend ${wanted} is not available in this thread`);
const backend = chosen;
const port = /** @type {import('node:worker_threads').MessagePort} */ (parentPort);

/** @param {{ id: number; packed: Uint8Array; count: number }} job */
function verify(job) {
  // On the epoch's clock, as the pool's sending time is: the difference is the wait in the queue.
  const started = performance.timeOrigin + performance.now();
  const verdicts = new Uint8Array(job.count);
  const view = new DataView(job.packed.buffer, job.packed.byteOffset, job.packed.byteLength);
  let offset = 0;
  for (let i = 0; i < job.count; i++) {
    const sig = job.packed.subarray(offset, offset + 64);
    const pub = job.packed.subarray(offset + 64, offset + 97);
    const length = view.getUint32(offset + 97);
    const message = job.packed.subarray(offset + 101, offset + 101 + length);
    verdicts[i] = backend.verify(sig, message, pub) ? 1 : 0;
    offset += 101 + length;
  }
  port.postMessage({ id: job.id, verdicts, backend: backend.name, started }, [verdicts.buffer]);
}

const SLICE = 1000;
const REPORT_EVERY = 200; // slices

/** The miner's job counter (shared memory), and this thread's current job. */
let counter = new Int32Array(0);
/** @type {{ job: MiningJob; meets: (header: Uint8Array) => boolean; nonce: bigint; hashes: number; slices: number } | undefined} */
let mining;
let scheduled = false;

/** @param {WorkerReport} report */
const report = (report) => port.postMessage({ mining: report });

function hashSlice() {
  scheduled = false;
  const m = mining;
  if (!m) return;
  if (Atomics.load(counter, 0) !== m.job.jobId) {
    if (m.hashes > 0) report({ kind: 'progress', jobId: m.job.jobId, hashes: m.hashes });
    mining = undefined;
    return;
  }
  const found = searchNonceWith(m.job.headerBytes, m.nonce, SLICE, m.meets);
  if (found !== undefined) {
    report({ kind: 'found', jobId: m.job.jobId, nonce: found, hashes: m.hashes + Number(found - m.nonce) + 1 });
    mining = undefined;
    return;
  }
  m.nonce += BigInt(SLICE);
  m.hashes += SLICE;
  if (++m.slices % REPORT_EVERY === 0) {
    report({ kind: 'progress', jobId: m.job.jobId, hashes: m.hashes });
    m.hashes = 0;
  }
  scheduled = true;
  setImmediate(hashSlice); // signatures that arrived meanwhile are checked first
}

port.on('message', (/** @type {any} */ message) => {
  // The pool is closing: stop hashing, and let the thread end once this handler returns. It ends
  // between messages, never inside a native verification (VerifyPool.close says why).
  if (message.close === true) {
    mining = undefined;
    port.close();
    return;
  }
  if (message.mine === undefined) return verify(message);
  if (message.jobCounter) counter = new Int32Array(message.jobCounter);
  const job = /** @type {MiningJob} */ (message.mine);
  if (mining && mining.hashes > 0) report({ kind: 'progress', jobId: mining.job.jobId, hashes: mining.hashes });
  mining = { job, meets: meetsTarget(job.target), nonce: job.startNonce, hashes: 0, slices: 0 };
  if (!scheduled) {
    scheduled = true;
    setImmediate(hashSlice);
  }
});
