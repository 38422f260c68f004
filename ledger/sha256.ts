/**
 * SHA-256 (FIPS 180-4) in JavaScript, for the short messages a block's import hashes by the
 * hundred: state tree leaves (49 bytes), Merkle nodes, addresses, ids, and inner nodes (64 bytes)
 * where no native hash takes them a level at a time (inner-hashes.ts). node:crypto's one-shot hash
 * costs about 1.6 µs a call here whatever the length, most of it crossing into C++ and making a
 * Buffer; this costs ~0.35 µs a 64-byte block and allocates only its result. Past a few blocks
 * node:crypto's native compression wins, which `sha256` in hash.ts decides by length.
 */
const K = Int32Array.of(
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
);
const IV = Int32Array.of(0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19);

// Scratch shared by every call: the hash is synchronous, so no two calls ever overlap.
const W = new Int32Array(64);
const H = new Int32Array(8);
const TAIL = new Uint8Array(128);

function compress(block: Uint8Array, off: number): void {
  for (let i = 0; i < 16; i++) {
    const j = off + 4 * i;
    W[i] = (block[j]! << 24) | (block[j + 1]! << 16) | (block[j + 2]! << 8) | block[j + 3]!;
  }
  for (let i = 16; i < 64; i++) {
    const w15 = W[i - 15]!;
    const w2 = W[i - 2]!;
    const s0 = ((w15 >>> 7) | (w15 << 25)) ^ ((w15 >>> 18) | (w15 << 14)) ^ (w15 >>> 3);
    const s1 = ((w2 >>> 17) | (w2 << 15)) ^ ((w2 >>> 19) | (w2 << 13)) ^ (w2 >>> 10);
    W[i] = (W[i - 16]! + s0 + W[i - 7]! + s1) | 0;
  }
  let a = H[0]!, b = H[1]!, c = H[2]!, d = H[3]!, e = H[4]!, f = H[5]!, g = H[6]!, h = H[7]!;
  for (let i = 0; i < 64; i++) {
    const s1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
    const t1 = (h + s1 + ((e & f) ^ (~e & g)) + K[i]! + W[i]!) | 0;
    const s0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
    const t2 = (s0 + ((a & b) ^ (a & c) ^ (b & c))) | 0;
    h = g;
    g = f;
    f = e;
    e = (d + t1) | 0;
    d = c;
    c = b;
    b = a;
    a = (t1 + t2) | 0;
  }
  H[0] = (H[0]! + a) | 0;
  H[1] = (H[1]! + b) | 0;
  H[2] = (H[2]! + c) | 0;
  H[3] = (H[3]! + d) | 0;
  H[4] = (H[4]! + e) | 0;
  H[5] = (H[5]! + f) | 0;
  H[6] = (H[6]! + g) | 0;
  H[7] = (H[7]! + h) | 0;
}

/** SHA-256 of `msg` (messages under 2^29 bytes: the length is padded as 32 bits). */
export function sha256Js(msg: Uint8Array): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(32);
  sha256JsInto(msg, out, 0);
  return out;
}

/**
 * SHA-256 of `msg` written to `out` at `offset`: a state tree update hashes each node straight
 * into its parent, where the hash belongs, instead of into an array of its own.
 */
export function sha256JsInto(msg: Uint8Array, out: Uint8Array, offset: number): void {
  H.set(IV);
  const n = msg.length;
  const whole = n & ~63;
  for (let off = 0; off < whole; off += 64) compress(msg, off);
  // The last partial block, the 0x80 marker and the length in bits: one block, or two when fewer
  // than 9 bytes are left in the first.
  const rest = n - whole;
  const end = rest < 56 ? 64 : 128;
  // A byte loop, not TAIL.set(msg.subarray(whole)): every tree node hashed made a view for it.
  for (let i = 0; i < rest; i++) TAIL[i] = msg[whole + i]!;
  TAIL[rest] = 0x80;
  TAIL.fill(0, rest + 1, end - 4);
  const bits = n * 8;
  TAIL[end - 4] = bits >>> 24;
  TAIL[end - 3] = bits >>> 16;
  TAIL[end - 2] = bits >>> 8;
  TAIL[end - 1] = bits;
  compress(TAIL, 0);
  if (end === 128) compress(TAIL, 64);
  writeDigest(out, offset);
}

/** The state `H` as the digest's 32 bytes, big-endian, into `out` at `at`. */
function writeDigest(out: Uint8Array, at: number): void {
  for (let i = 0; i < 8; i++) {
    const v = H[i]!;
    out[at + 4 * i] = v >>> 24;
    out[at + 4 * i + 1] = v >>> 16;
    out[at + 4 * i + 2] = v >>> 8;
    out[at + 4 * i + 3] = v;
  }
}

// The padding block of every 64-byte message: the 0x80 marker and the length, 512 bits.
const PAD64 = new Uint8Array(64);
PAD64[0] = 0x80;
PAD64[62] = 0x02;

/**
 * SHA-256 of the 64 bytes at `src[off, off + 64)` written to `out` at `at`: a state tree inner
 * node's two child hashes, hashed in place inside the node with no view made of them.
 */
export function sha256Js64Into(src: Uint8Array, off: number, out: Uint8Array, at: number): void {
  H.set(IV);
  compress(src, off);
  compress(PAD64, 0);
  writeDigest(out, at);
}
