import { createHash, hash } from 'node:crypto';
import { sha256Js } from './sha256.ts';

/**
 * Messages up to this long are hashed in JavaScript (three blocks with the padding): below it the
 * cost of a call into node:crypto is more than the compression itself (ledger/sha256.ts).
 */
const JS_HASH_MAX_BYTES = 183;

/** SHA-256 of one byte string, by whichever of the two implementations is faster at its length. */
export function sha256(data: Uint8Array): Uint8Array<ArrayBuffer> {
  return data.length <= JS_HASH_MAX_BYTES ? sha256Js(data) : new Uint8Array(hash('sha256', data, 'buffer'));
}

/** SHA-256 over the concatenation of parts, without building the concatenation. */
export function sha256Parts(...parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}

