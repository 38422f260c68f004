import { createPublicKey, verify as opensslVerify } from 'node:crypto';
import { createRequire } from 'node:module';
import * as secp from '@noble/secp256k1';
import { sha256 } from './hash.ts';
import { isCanonicalPublicKeyForm, isCanonicalSignature } from './keys.ts';

/**
 * One secp256k1 ECDSA verifier. `message` is hashed with SHA-256 by the backend (a transaction's
 * sighash is SHA-256 of its unsigned encoding, so the message is that encoding). Backends differ
 * in speed only: every one is wrapped by `canonical`, so r/s ranges, low S and the compressed key
 * form are judged by the same code whichever library does the curve arithmetic. A disagreement
 * between backends would split the network; the differential test looks for one.
 */
export interface SignatureBackend {
  readonly name: 'noble' | 'openssl' | 'libsecp256k1';
  verify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean;
}

function canonical(name: SignatureBackend['name'], curve: (sig: Uint8Array, message: Uint8Array, pub: Uint8Array) => boolean): SignatureBackend {
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

interface NativeBindings {
  ecdsaVerify(sig: Uint8Array, msg32: Uint8Array, pub: Uint8Array): boolean;
}

let native: SignatureBackend | null | undefined;

/**
 * libsecp256k1 through the optional `secp256k1` package's prebuilt binary (about 19,000
 * verifies/s per core here), or undefined when it is not installed or does not load. Its own
 * index falls back to a JavaScript library (elliptic) that is not noble: we load the binary only.
 */
export function libsecp256k1Backend(): SignatureBackend | undefined {
  if (native === undefined) {
    try {
      const require = createRequire(import.meta.url);
      // `bindings` is the prebuilt addon behind the package's checked wrapper; it throws if the
      // binary does not load, where the package's index would quietly use elliptic instead.
      const bindings = require('secp256k1/bindings') as NativeBindings;
      native = canonical('libsecp256k1', (sig, message, pub) => bindings.ecdsaVerify(sig, sha256(message), pub) === true);
    } catch {
      native = null;
    }
  }
  return native ?? undefined;
}

/** The fastest backend this machine has. */
export function bestBackend(): SignatureBackend {
  return libsecp256k1Backend() ?? opensslBackend;
}
