import * as secp from '@noble/secp256k1';
import { createHmac } from 'node:crypto';
import { bech32m } from '@scure/base';
import { sha256 } from './hash.ts';
import { DecodeError } from './errors.ts';
import { bytesToBigInt } from './bytes.ts';

// noble's sync API needs these; node:crypto is the fastest SHA-256 available to us.
secp.hashes.sha256 = (m) => sha256(m);
secp.hashes.hmacSha256 = (k, m) => new Uint8Array(createHmac('sha256', k).update(m).digest());

export const PRIVATE_KEY_BYTES = 32;
export const PUBLIC_KEY_BYTES = 33;
export const SIGNATURE_BYTES = 64;
export const ADDRESS_BYTES = 20;
export const ADDRESS_PREFIX = 'cairn';

/** The order of the secp256k1 group. */
export const CURVE_ORDER = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
const HALF_ORDER = CURVE_ORDER >> 1n;

export type RandomSource = (length: number) => Uint8Array;

/** A new secret key drawn from `random` (a parameter, so tests and simulations can be seeded). */
export function generatePrivateKey(random: RandomSource): Uint8Array {
  for (;;) {
    const candidate = random(PRIVATE_KEY_BYTES);
    if (secp.utils.isValidSecretKey(candidate)) return candidate;
  }
}

export function isValidPrivateKey(key: Uint8Array): boolean {
  return key.length === PRIVATE_KEY_BYTES && secp.utils.isValidSecretKey(key);
}

/** The 33-byte compressed SEC1 public key. */
export function publicKeyOf(privateKey: Uint8Array): Uint8Array {
  return secp.getPublicKey(privateKey, true);
}

/** An address is the first 20 bytes of SHA-256 of the compressed public key. */
export function addressOf(publicKey: Uint8Array): Uint8Array {
  return sha256(publicKey).slice(0, ADDRESS_BYTES);
}

/**
 * r and s must each lie in [1, n-1], and s in the lower half: for every valid (r, s) the pair
 * (r, n - s) is valid too, so admitting only one of them leaves no signature that a relayer
 * could alter into another valid one (and so no second transaction id for the same payment).
 */
export function isCanonicalSignature(sig: Uint8Array): boolean {
  if (sig.length !== SIGNATURE_BYTES) return false;
  const r = bytesToBigInt(sig.subarray(0, 32));
  const s = bytesToBigInt(sig.subarray(32, 64));
  return r >= 1n && r < CURVE_ORDER && s >= 1n && s <= HALF_ORDER;
}

/** Compressed form with a valid prefix; whether x lies on the curve is checked when verifying. */
export function isCanonicalPublicKeyForm(publicKey: Uint8Array): boolean {
  return publicKey.length === PUBLIC_KEY_BYTES && (publicKey[0] === 2 || publicKey[0] === 3);
}

/** Sign a 32-byte hash (we hash transactions ourselves: no prehash). Always low-S. */
export function signHash(hash: Uint8Array, privateKey: Uint8Array): Uint8Array {
  return secp.sign(hash, privateKey, { prehash: false, lowS: true, format: 'compact' });
}

/**
 * The one verifier every consensus path uses. False for anything that is not a canonical
 * signature by a valid compressed key over exactly this 32-byte hash; never throws.
 */
export function verifySignature(sig: Uint8Array, hash: Uint8Array, publicKey: Uint8Array): boolean {
  if (hash.length !== 32 || !isCanonicalSignature(sig) || !isCanonicalPublicKeyForm(publicKey)) return false;
  try {
    return secp.verify(sig, hash, publicKey, { prehash: false, lowS: true, format: 'compact' });
  } catch {
    return false; // e.g. x not on the curve
  }
}

/** Text form of an address: bech32m (BIP 350) with prefix `cairn`, which catches typos. */
export function encodeAddress(address: Uint8Array): string {
  if (address.length !== ADDRESS_BYTES) throw new RangeError('address must be 20 bytes');
  return bech32m.encode(ADDRESS_PREFIX, bech32m.toWords(address));
}

export class AddressError extends DecodeError {}

export function decodeAddress(text: string): Uint8Array {
  let bytes: Uint8Array;
  try {
    if (text !== text.toLowerCase()) throw new Error('address must be lower case');
    const { prefix, words } = bech32m.decode(text as `${string}1${string}`);
    if (prefix !== ADDRESS_PREFIX) throw new Error(`prefix must be "${ADDRESS_PREFIX}", got "${prefix}"`);
    bytes = bech32m.fromWords(words);
  } catch (err) {
    throw new AddressError('DECODE_NON_CANONICAL', `invalid address "${text}": ${(err as Error).message}`);
  }
  if (bytes.length !== ADDRESS_BYTES) {
    throw new AddressError('DECODE_NON_CANONICAL', `invalid address "${text}": ${bytes.length} bytes, expected 20`);
  }
  return bytes;
}
