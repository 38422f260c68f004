// @ts-check
/**
 * One signature-verification thread. Items arrive packed in one buffer (no per-item messages):
 * signature (64) ‖ public key (33) ‖ message length (u32) ‖ message; verdicts go back as bytes.
 * Plain JavaScript, as is all it imports (ledger/signature-backends.js): a thread that loads
 * TypeScript carries Node's type stripper, about 13 MB of memory per thread.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { bestBackend, nobleBackend, opensslBackend, libsecp256k1Backend } from '../ledger/signature-backends.js';

/** @type {import('../ledger/signature-backends.js').SignatureBackend['name'] | undefined} */
const wanted = workerData?.backend;
const backend =
  wanted === 'noble' ? nobleBackend : wanted === 'openssl' ? opensslBackend : wanted === 'libsecp256k1' ? libsecp256k1Backend() : bestBackend();
// Never substitute another backend silently: the pool must know which library judged.
if (!backend) throw new Error(`signature backend ${wanted} is not available in this thread`);
const port = /** @type {import('node:worker_threads').MessagePort} */ (parentPort);

port.on('message', (/** @type {{ id: number; packed: Uint8Array; count: number }} */ job) => {
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
  port.postMessage({ id: job.id, verdicts, backend: backend.name }, [verdicts.buffer]);
});
