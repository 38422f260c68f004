import { createHash, hash } from 'node:crypto';

/** SHA-256 of one byte string. node:crypto's one-shot hash is the fastest path we have. */
export function sha256(data: Uint8Array): Uint8Array<ArrayBuffer> {
  return new Uint8Array(hash('sha256', data, 'buffer'));
}

/** SHA-256 over the concatenation of parts, without building the concatenation. */
export function sha256Parts(...parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}

