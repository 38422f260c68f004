import * as secp from '@noble/secp256k1';
import { createHmac } from 'node:crypto';
import { bech32m } from '@scure/base';
import { sha256 } from './hash.ts';
import { DecodeError } from './errors.ts';

// noble's sync API needs these; node:crypto is the fastest SHA-256 available to us.
secp.hashes.sha256 = (m) => sha256(m);
secp.hashes.hmacSha256 = (k, m) => new Uint8Array(createHmac('sha256', k).update(m).digest());

// The canonical forms live with the verifiers, in the one module a verifier thread loads.
export { CURVE_ORDER, PUBLIC_KEY_BYTES, SIGNATURE_BYTES, isCanonicalPublicKeyForm, isCanonicalSignature } from './signature-backends.js';
import { isCanonicalPublicKeyForm, isCanonicalSignature } from './signature-backends.js';

export const PRIVATE_KEY_BYTES = 32;
export const ADDRESS_BYTES = 20;
export const ADDRESS_PREFIX = 'cairn';

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
    throw new AddressError('DECODE_NON_CANONICAL', `invalid address ${JSON.stringify(text)}: ${(err as Error).message}`);
  }
  if (bytes.length !== ADDRESS_BYTES) {
    throw new AddressError('DECODE_NON_CANONICAL', `invalid address ${JSON.stringify(text)}: ${bytes.length} bytes, expected 20`);
  }
  return bytes;
}
