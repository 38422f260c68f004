/**
 * The key file's format, version 1: its constants, the limits a file read back must keep to, and
 * the checks that turn untrusted JSON into a `KeyFileV1` before any decryption sees it. No I/O here.
 */
import { jsonValueText } from '../ledger/json-text.ts';
import { decodeAddress, PRIVATE_KEY_BYTES } from '../ledger/keys.ts';
import { KeystoreError } from './keystore-error.ts';

export const KEY_FILE_VERSION = 1;

/**
 * scrypt N = 2^16, r = 8, p = 1: 64 MiB and about 175 ms per derivation on the 2-core machine this
 * was measured on (2^17 took ~370 ms, 2^18 ~820 ms). Every `new`, `import` and unlock pays it
 * once; an attacker with a stolen file pays it per guessed password.
 */
export const DEFAULT_SCRYPT_N = 1 << 16;
export const SCRYPT_R = 8;
export const SCRYPT_P = 1;
export const DERIVED_KEY_BYTES = 32;
export const SALT_BYTES = 32;
export const IV_BYTES = 12;
export const TAG_BYTES = 16;

/**
 * Limits on what a key file may ask of us: a damaged or hostile file must not make the CLI
 * allocate gigabytes or spin for minutes before it can say "corrupt".
 */
const MAX_SCRYPT_N = 1 << 20;
const MAX_SCRYPT_R = 16;
const MAX_SCRYPT_P = 16;
const MAX_SCRYPT_MEMORY = 256 * 1024 * 1024;
export const MAX_KEY_FILE_BYTES = 64 * 1024;

export const CIPHER = 'aes-256-gcm';
export const KDF = 'scrypt';

/** The on-disk document, version 1. Hex is lower case. */
export interface KeyFileV1 {
  version: 1;
  address: string;
  crypto: {
    kdf: 'scrypt';
    kdfparams: { n: number; r: number; p: number; dklen: number; salt: string };
    cipher: 'aes-256-gcm';
    iv: string;
    ciphertext: string;
    tag: string;
  };
}

export function isAddressText(text: string): boolean {
  try {
    decodeAddress(text);
    return true;
  } catch {
    return false;
  }
}

/** Binds the ciphertext to its address and to this format. */
export function associatedData(address: string): Uint8Array {
  return new TextEncoder().encode(`cairn keystore v${KEY_FILE_VERSION} ${address}`);
}

export function checkScryptParams(n: number, r: number, p: number): string | undefined {
  if (!Number.isSafeInteger(n) || n < 2 || n > MAX_SCRYPT_N || (n & (n - 1)) !== 0) {
    return `scrypt n must be a power of 2 from 2 to ${MAX_SCRYPT_N}`;
  }
  if (!Number.isSafeInteger(r) || r < 1 || r > MAX_SCRYPT_R) return `scrypt r must be 1 to ${MAX_SCRYPT_R}`;
  if (!Number.isSafeInteger(p) || p < 1 || p > MAX_SCRYPT_P) return `scrypt p must be 1 to ${MAX_SCRYPT_P}`;
  if (128 * n * r > MAX_SCRYPT_MEMORY) return `scrypt n·r needs more than ${MAX_SCRYPT_MEMORY / 2 ** 20} MiB`;
  return undefined;
}

/** Checks every field's type and size, so that decryption only ever sees well-formed input. */
export function parseKeyFile(text: string, file: string): KeyFileV1 {
  const corrupt = (why: string): KeystoreError => new KeystoreError('KEY_FILE_CORRUPT', `key file ${file} is corrupt: ${why}`);
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw corrupt('not JSON');
  }
  if (!isObject(doc)) throw corrupt('not a JSON object');
  if (doc['version'] !== KEY_FILE_VERSION) {
    throw corrupt(`version ${jsonValueText(doc['version'])} is not supported (expected ${KEY_FILE_VERSION})`);
  }
  const address = doc['address'];
  if (typeof address !== 'string' || !isAddressText(address)) throw corrupt('address is not a cairn address');
  const crypto = doc['crypto'];
  if (!isObject(crypto)) throw corrupt('crypto is missing');
  if (crypto['kdf'] !== KDF) throw corrupt(`kdf must be "${KDF}"`);
  if (crypto['cipher'] !== CIPHER) throw corrupt(`cipher must be "${CIPHER}"`);
  const params = crypto['kdfparams'];
  if (!isObject(params)) throw corrupt('kdfparams is missing');
  const { n, r, p, dklen } = params;
  if (typeof n !== 'number' || typeof r !== 'number' || typeof p !== 'number') throw corrupt('n, r, p must be numbers');
  const problem = checkScryptParams(n, r, p);
  if (problem !== undefined) throw corrupt(problem);
  if (dklen !== DERIVED_KEY_BYTES) throw corrupt(`dklen must be ${DERIVED_KEY_BYTES}`);
  const salt = hexField(params['salt'], 16, 64, 'salt', corrupt);
  const iv = hexField(crypto['iv'], IV_BYTES, IV_BYTES, 'iv', corrupt);
  const ciphertext = hexField(crypto['ciphertext'], PRIVATE_KEY_BYTES, PRIVATE_KEY_BYTES, 'ciphertext', corrupt);
  const tag = hexField(crypto['tag'], TAG_BYTES, TAG_BYTES, 'tag', corrupt);
  return {
    version: KEY_FILE_VERSION,
    address,
    crypto: { kdf: KDF, kdfparams: { n, r, p, dklen, salt }, cipher: CIPHER, iv, ciphertext, tag },
  };
}

function hexField(value: unknown, min: number, max: number, name: string, corrupt: (why: string) => KeystoreError): string {
  const size = min === max ? `${min}` : `${min} to ${max}`;
  if (typeof value !== 'string' || !/^(?:[0-9a-f]{2})*$/.test(value) || value.length < 2 * min || value.length > 2 * max) {
    throw corrupt(`${name} must be ${size} bytes of lower-case hex`);
  }
  return value;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
