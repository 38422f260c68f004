// @ts-check
/**
 * The nonce search: what a node's worker threads (node/pool-worker.js) run to mine. Plain
 * JavaScript, type-checked through JSDoc, because a thread that loads a TypeScript module also
 * loads Node's type stripper: about 13 MB of memory in every thread that does (measured).
 */

/** Where the 8-byte nonce sits in a header: its last field (ledger/block.ts, HEADER_BYTES − 8). */
export const NONCE_OFFSET = 144;

/**
 * True when the 32-byte big-endian hash is at most the target's 32-byte big-endian form.
 * @param {Uint8Array} hash
 * @param {Uint8Array} target
 * @returns {boolean}
 */
export function hashMeetsTargetBytes(hash, target) {
  for (let i = 0; i < 32; i++) {
    if (hash[i] !== target[i]) return /** @type {number} */ (hash[i]) < /** @type {number} */ (target[i]);
  }
  return true;
}

/**
 * Tries nonces start, start+1, … for `count` headers and returns the first whose header `meets`
 * accepts (its proof of work, judged however is fastest where the search runs).
 * @param {Uint8Array} headerBytes
 * @param {bigint} start
 * @param {number} count
 * @param {(header: Uint8Array) => boolean} meets
 * @returns {bigint | undefined}
 */
export function searchNonceWith(headerBytes, start, count, meets) {
  const work = headerBytes.slice();
  const view = new DataView(work.buffer, work.byteOffset, work.byteLength);
  // Two 32-bit halves rather than a bigint per try: this loop is the hash rate.
  let hi = Number(start >> 32n) >>> 0;
  let lo = Number(start & 0xffffffffn);
  view.setUint32(NONCE_OFFSET, hi);
  for (let i = 0; i < count; i++) {
    view.setUint32(NONCE_OFFSET + 4, lo);
    if (meets(work)) return (BigInt(hi) << 32n) | BigInt(lo);
    if (++lo > 0xffffffff) {
      lo = 0;
      hi = (hi + 1) >>> 0;
      view.setUint32(NONCE_OFFSET, hi);
    }
  }
  return undefined;
}

/**
 * The same, judging each header by `hash` of it against a 32-byte big-endian target.
 * @param {Uint8Array} headerBytes
 * @param {Uint8Array} target
 * @param {bigint} start
 * @param {number} count
 * @param {(data: Uint8Array) => Uint8Array} hash
 * @returns {bigint | undefined}
 */
export function searchNonce(headerBytes, target, start, count, hash) {
  return searchNonceWith(headerBytes, start, count, (header) => hashMeetsTargetBytes(hash(header), target));
}
