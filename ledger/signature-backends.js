// @ts-check
/**
 * The canonical form of a signature and a public key, and the secp256k1 verifiers behind it.
 * Plain JavaScript, type-checked through JSDoc: with the packages it imports, this is all a
 * node's worker thread (node/pool-worker.js) loads, and a thread that loads
 * TypeScript also carries Node's type stripper, about 13 MB of memory per thread (measured).
 * ledger/keys.ts re-exports the rules; everything else imports them from there.
 */
import { createPublicKey, hash, verify as opensslVerify } from 'node:crypto';
import { createRequire } from 'node:module';
import * as secp from '@noble/secp256k1';

export const PUBLIC_KEY_BYTES = 33;
export const SIGNATURE_BYTES = 64;

/** The order of the secp256k1 group. */
export const CURVE_ORDER = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;

/** @param {bigint} n */
const bytes32 = (n) => Uint8Array.from(Buffer.from(n.toString(16).padStart(64, '0'), 'hex'));
const ORDER_BYTES = bytes32(CURVE_ORDER);
const HALF_ORDER_BYTES = bytes32(CURVE_ORDER >> 1n);

/**
 * The 32 bytes at `offset` as a big-endian number, compared with `bound`: -1, 0 or 1.
 * @param {Uint8Array} bytes @param {number} offset @param {Uint8Array} bound
 */
function compare32(bytes, offset, bound) {
  for (let i = 0; i < 32; i++) {
    const a = /** @type {number} */ (bytes[offset + i]);
    const b = /** @type {number} */ (bound[i]);
    if (a !== b) return a < b ? -1 : 1;
  }
  return 0;
}

/** @param {Uint8Array} bytes @param {number} offset */
function isZero32(bytes, offset) {
  for (let i = 0; i < 32; i++) if (bytes[offset + i] !== 0) return false;
  return true;
}

/**
 * r and s must each lie in [1, n-1], and s in the lower half: for every valid (r, s) the pair
 * (r, n - s) is valid too, so admitting only one of them leaves no signature that a relayer
 * could alter into another valid one (and so no second transaction id for the same payment).
 * Compared byte by byte: every transaction decoded goes through here.
 * @param {Uint8Array} sig
 * @returns {boolean}
 */
export function isCanonicalSignature(sig) {
  if (sig.length !== SIGNATURE_BYTES) return false;
  return !isZero32(sig, 0) && compare32(sig, 0, ORDER_BYTES) < 0 && !isZero32(sig, 32) && compare32(sig, 32, HALF_ORDER_BYTES) <= 0;
}

/**
 * Compressed form with a valid prefix; whether x lies on the curve is checked when verifying.
 * @param {Uint8Array} publicKey
 * @returns {boolean}
 */
export function isCanonicalPublicKeyForm(publicKey) {
  return publicKey.length === PUBLIC_KEY_BYTES && (publicKey[0] === 2 || publicKey[0] === 3);
}

/**
 * One secp256k1 ECDSA verifier. `message` is hashed with SHA-256 by the backend (a transaction's
 * sighash is SHA-256 of its unsigned encoding, so the message is that encoding). Backends differ
 * in speed only: every one is wrapped by `canonical`, so r/s ranges, low S and the compressed key
 * form are judged by the same code whichever library does the curve arithmetic. A disagreement
 * between backends would split the network; the differential test looks for one.
 * @typedef {object} SignatureBackend
 * @property {'noble' | 'openssl' | 'libsecp256k1'} name
 * @property {(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array) => boolean} verify
 */

/**
 * @param {SignatureBackend['name']} name
 * @param {(sig: Uint8Array, message: Uint8Array, pub: Uint8Array) => boolean} curve
 * @returns {SignatureBackend}
 */
function canonical(name, curve) {
  return {
    name,
    verify(sig, message, pub) {
      if (!isCanonicalSignature(sig) || !isCanonicalPublicKeyForm(pub)) return false;
      try {
        return curve(sig, message, pub);
      } catch {
        return false; // a key that is not on the curve
      }
    },
  };
}

/** @param {Uint8Array} data */
const sha256 = (data) => hash('sha256', data, 'buffer');

/** Always available: audited, pure TypeScript, about 450 verifies/s per core here. */
export const nobleBackend = canonical('noble', (sig, message, pub) =>
  secp.verify(sig, sha256(message), pub, { prehash: false, lowS: true, format: 'compact' }),
);

// SubjectPublicKeyInfo for a compressed secp256k1 key: this DER prefix, then the 33 key bytes.
const SPKI_PREFIX = Buffer.from('3036301006072a8648ce3d020106052b8104000a032200', 'hex');

/** node:crypto's OpenSSL, bundled with Node: about 3,100 verifies/s per core here. */
export const opensslBackend = canonical('openssl', (sig, message, pub) => {
  const key = createPublicKey({ key: Buffer.concat([SPKI_PREFIX, pub]), format: 'der', type: 'spki' });
  return opensslVerify('sha256', message, { key, dsaEncoding: 'ieee-p1363' }, sig);
});

/**
 * @typedef {{
 *   ecdsaVerify(sig: Uint8Array, msg32: Uint8Array, pub: Uint8Array): boolean;
 *   ecdsaSign(msg32: Uint8Array, seckey: Uint8Array): { signature: Uint8Array };
 *   publicKeyCreate(seckey: Uint8Array, compressed: boolean): Uint8Array;
 *   publicKeyConvert(pub: Uint8Array, compressed: boolean): Uint8Array;
 * }} NativeBindings
 */

/** @type {NativeBindings | null | undefined} */
let bindings;

/** @returns {NativeBindings | undefined} */
function nativeBindings() {
  if (bindings === undefined) {
    try {
      // `bindings` is the prebuilt addon behind the package's checked wrapper; it throws if the
      // binary does not load, where the package's index would quietly use elliptic instead.
      bindings = /** @type {NativeBindings} */ (createRequire(import.meta.url)('secp256k1/bindings'));
    } catch {
      bindings = null;
    }
  }
  return bindings ?? undefined;
}

/** @type {SignatureBackend | null | undefined} */
let native;

/**
 * libsecp256k1 through the optional `secp256k1` package's prebuilt binary (about 19,000
 * verifies/s per core here), or undefined when it is not installed or does not load. Its own
 * index falls back to a JavaScript library (elliptic) that is not noble: we load the binary only.
 * @returns {SignatureBackend | undefined}
 */
export function libsecp256k1Backend() {
  if (native === undefined) {
    const lib = nativeBindings();
    if (lib) {
      const keys = new UncompressedKeys(lib, UNCOMPRESSED_KEYS_KEPT);
      native = canonical('libsecp256k1', (sig, message, pub) => lib.ecdsaVerify(sig, sha256(message), keys.of(pub)) === true);
    } else {
      native = null;
    }
  }
  return native ?? undefined;
}

/** About 1 MB a thread: a busy chain's active senders (the sync bench's chain cycles through 2,000). */
const UNCOMPRESSED_KEYS_KEPT = 4096;

/**
 * Recent senders' keys in uncompressed form. Parsing a compressed key takes a square root mod p,
 * about a tenth of a verify (41 against 37 µs here), and a sender's key comes back with each of
 * its transactions. A key off the curve throws when converted, as it would when verified, so it
 * is never kept: the verdicts are the same with or without this.
 */
class UncompressedKeys {
  /** @param {NativeBindings} lib @param {number} size */
  constructor(lib, size) {
    this.lib = lib;
    this.size = size;
    /** @type {Map<string, Uint8Array>} */
    this.keys = new Map();
  }

  /** @param {Uint8Array} pub a compressed key in canonical form */
  of(pub) {
    const id = Buffer.from(pub.buffer, pub.byteOffset, pub.byteLength).toString('latin1');
    let full = this.keys.get(id);
    if (full === undefined) {
      full = this.lib.publicKeyConvert(pub, false);
      if (this.keys.size >= this.size) this.keys.delete(/** @type {string} */ (this.keys.keys().next().value));
      this.keys.set(id, full);
    }
    return full;
  }
}

/**
 * libsecp256k1's signer, when its binary loads: RFC 6979 nonces and low S, so its signatures are
 * byte for byte noble's (a test holds them to it), about 20 times faster. For tools that sign in
 * bulk (the simulator, benchmarks); a user's key is signed with noble (ledger/keys.ts).
 * @returns {{ sign(hash32: Uint8Array, privateKey: Uint8Array): Uint8Array; publicKey(privateKey: Uint8Array): Uint8Array } | undefined}
 */
export function libsecp256k1Signer() {
  const lib = nativeBindings();
  if (!lib) return undefined;
  return {
    sign: (hash32, privateKey) => lib.ecdsaSign(hash32, privateKey).signature,
    publicKey: (privateKey) => lib.publicKeyCreate(privateKey, true),
  };
}

/**
 * The fastest backend this machine has.
 * @returns {SignatureBackend}
 */
export function bestBackend() {
  return libsecp256k1Backend() ?? opensslBackend;
}
