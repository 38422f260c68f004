// @ts-check
/**
 * One thread of the verify suite's parallel ceiling (bench/verify-ceiling.ts): it verifies the
 * signatures it was given at start, on its own, for as long as each message asks, and answers how
 * many it did in how long. Plain JavaScript, as node/pool-worker.js is, so that the two kinds of
 * thread differ only in what the pool adds: its messages and the calling thread's work.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { libsecp256k1Backend, opensslBackend } from '../ledger/signature-backends.js';

const backend = libsecp256k1Backend() ?? opensslBackend;
/** @type {{ signature: Uint8Array; message: Uint8Array; publicKey: Uint8Array }[]} */
const items = workerData.items;
const port = /** @type {import('node:worker_threads').MessagePort} */ (parentPort);
let next = 0;

port.on('message', (/** @type {{ ms: number } | { close: true }} */ m) => {
  if ('close' in m) return port.close();
  const start = performance.now();
  let done = 0;
  do {
    for (let i = 0; i < 100; i++) {
      const it = /** @type {(typeof items)[number]} */ (items[next++ % items.length]);
      if (!backend.verify(it.signature, it.message, it.publicKey)) throw new Error('a pre-signed signature failed to verify');
    }
    done += 100;
  } while (performance.now() - start < m.ms);
  port.postMessage({ done, ms: performance.now() - start });
});
