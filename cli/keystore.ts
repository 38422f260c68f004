/**
 * The encrypted keystore behind `cairn keys new|list|import|export`.
 *
 * One file per key, `<DIR>/<cairn1…>.json`, mode 0600, in a directory created 0700. A file holds
 * the 32-byte private key encrypted with AES-256-GCM under a key derived from the password by
 * scrypt (format in `KeyFileV1`, key-file.ts; reading and writing in keystore-files.ts). The address
 * text is GCM additional data, so a file whose address was edited fails authentication instead of
 * opening under another name.
 *
 * Nothing here prints, logs, or puts the password or a key into an error message: every failure is
 * a `KeystoreError` with a code and a one-line message that names only paths and addresses.
 */
import { createCipheriv, createDecipheriv, randomBytes, scrypt as scryptCallback } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { fromHex, toHex } from '../ledger/bytes.ts';
import {
  addressOf,
  encodeAddress,
  generatePrivateKey,
  isValidPrivateKey,
  PRIVATE_KEY_BYTES,
  publicKeyOf,
  type RandomSource,
} from '../ledger/keys.ts';
import {
  associatedData,
  checkScryptParams,
  CIPHER,
  DEFAULT_SCRYPT_N,
  DERIVED_KEY_BYTES,
  isAddressText,
  IV_BYTES,
  KDF,
  KEY_FILE_VERSION,
  parseKeyFile,
  SALT_BYTES,
  SCRYPT_P,
  SCRYPT_R,
  TAG_BYTES,
  type KeyFileV1,
} from './key-file.ts';
import { KeystoreError } from './keystore-error.ts';
import { DEFAULT_NODE_KEYSTORE, ensureDir, exists, keyExists, keyFileAddress, keyFilePath, keystoreDirError, readKeyFile, writeNewFileAtomically } from './keystore-files.ts';

export { KeystoreError, type KeystoreErrorCode } from './keystore-error.ts';
export { DEFAULT_SCRYPT_N, KEY_FILE_VERSION, SCRYPT_P, SCRYPT_R, type KeyFileV1 } from './key-file.ts';

export interface KeystoreOptions {
  /** scrypt cost for files written now. Tests lower it; the CLI leaves the default. */
  readonly scryptN?: number;
  /** Source of salt and IV (and, for `createKey`, of nothing else: the key has its own). */
  readonly random?: RandomSource;
}

const defaultRandom: RandomSource = (length) => new Uint8Array(randomBytes(length));

/** A new key in `dir` (created 0700 if missing), encrypted under `password`. */
export async function createKey(
  dir: string,
  password: string,
  random: RandomSource = defaultRandom,
  options: KeystoreOptions = {},
): Promise<{ address: string }> {
  requirePassword(password);
  const privateKey = new Uint8Array(generatePrivateKey(random));
  try {
    return await storeKey(dir, password, privateKey, options.random ?? random, options);
  } finally {
    privateKey.fill(0);
  }
}

/**
 * Adds an existing key: `hexText` is 64 hex digits, optionally `0x`-prefixed, with any surrounding
 * whitespace (a file's trailing newline). A key already in the keystore is refused, not replaced:
 * replacing would silently change which password opens it.
 */
export async function importKey(
  dir: string,
  password: string,
  hexText: string,
  options: KeystoreOptions = {},
): Promise<{ address: string }> {
  requirePassword(password);
  const privateKey = parsePrivateKeyHex(hexText);
  try {
    return await storeKey(dir, password, privateKey, options.random ?? defaultRandom, options);
  } finally {
    privateKey.fill(0);
  }
}

/** The addresses with a key file in `dir`, sorted. Other files (temporaries, notes) are ignored. */
export async function listKeys(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    throw keystoreDirError(dir, err);
  }
  const addresses: string[] = [];
  for (const name of names) {
    const address = keyFileAddress(name);
    if (address !== undefined) addresses.push(address);
  }
  return addresses.sort();
}

/**
 * Refuses, before its password is asked, a key the keystore does not hold: the user typed a
 * password only to read that there was no key (most often the node's coinbase key, which is in
 * the node's datadir, not in the keystore made beside it).
 */
export async function requireKey(dir: string, address: string): Promise<void> {
  const held = await listKeys(dir);
  if (held.includes(address)) return;
  const listing = `cairn keys list --keystore ${dir}`;
  if (isDatadirKeystore(dir)) {
    // Pointing a user at a datadir's keystore when they gave one sent them back where they were.
    const wayOn = held.length === 0 ? howToFillKeystore(dir) : `${listing} shows the keys it holds`;
    throw new KeystoreError('KEY_NOT_FOUND', `no key for ${address} in keystore ${dir} (it holds ${held.length === 1 ? held[0] : held.length === 0 ? 'none' : held.length}); ${wayOn}`);
  }
  const holds = held.length === 0 ? 'it holds none' : `it holds ${held.length === 1 ? held[0] : `${held.length}: ${listing}`}`;
  throw new KeystoreError('KEY_NOT_FOUND', `no key for ${address} in keystore ${dir} (${holds}); the key a node mines to is in its datadir's keystore, e.g. --keystore ${DEFAULT_NODE_KEYSTORE}`);
}

/** The way on from an empty keystore: a key made there, or one brought in. */
export function howToFillKeystore(dir: string): string {
  return `cairn keys new --keystore ${dir} makes one, cairn keys import --keystore ${dir} FILE brings one`;
}

/**
 * Whether `dir` is a node's keystore: the default datadir's (as the hint above names it), or the
 * `keystore` folder of any folder holding a datadir's genesis copy or chain store.
 */
function isDatadirKeystore(dir: string): boolean {
  const path = resolve(dir);
  if (path === resolve(DEFAULT_NODE_KEYSTORE)) return true;
  return basename(path) === 'keystore' && ['genesis.json', 'chain'].some((entry) => existsSync(join(dirname(path), entry)));
}

/** Decrypts the key for `address`. The caller owns the bytes and should zero them when done. */
export async function loadPrivateKey(dir: string, address: string, password: string): Promise<Uint8Array> {
  requirePassword(password);
  // Validated before it becomes part of a path: "../x" is not an address.
  if (!isAddressText(address)) throw new KeystoreError('INVALID_ADDRESS', `"${address}" is not a cairn address`);
  const file = keyFilePath(dir, address);
  const text = await readKeyFile(dir, file, address);
  const doc = parseKeyFile(text, file);
  if (doc.address !== address) {
    throw new KeystoreError('KEY_FILE_CORRUPT', `key file ${file} holds the key of ${doc.address}, not ${address}`);
  }
  const { kdfparams } = doc.crypto;
  const derived = await deriveKey(password, fromHex(kdfparams.salt), kdfparams.n, kdfparams.r, kdfparams.p);
  let plain: Buffer;
  try {
    const decipher = createDecipheriv(CIPHER, derived, fromHex(doc.crypto.iv), { authTagLength: TAG_BYTES });
    decipher.setAAD(associatedData(address));
    decipher.setAuthTag(fromHex(doc.crypto.tag));
    const part = decipher.update(fromHex(doc.crypto.ciphertext));
    try {
      plain = Buffer.concat([part, decipher.final()]);
    } finally {
      part.fill(0); // the key's bytes, copied into `plain`
    }
  } catch {
    // GCM cannot tell a wrong password from an altered file: both fail the same tag check.
    throw new KeystoreError('WRONG_PASSWORD', `wrong password for ${address} (or the key file ${file} was altered)`);
  } finally {
    derived.fill(0);
  }
  const privateKey = new Uint8Array(plain);
  plain.fill(0);
  if (!isValidPrivateKey(privateKey) || encodeAddress(addressOf(publicKeyOf(privateKey))) !== address) {
    privateKey.fill(0);
    throw new KeystoreError('KEY_FILE_CORRUPT', `key file ${file} decrypts to a key that is not ${address}'s`);
  }
  return privateKey;
}

// ——— internals ———

export function requirePassword(password: string, from?: string): string {
  if (password === '') {
    throw new KeystoreError('EMPTY_PASSWORD', from === undefined ? 'the password is empty' : `the password from ${from} is empty`);
  }
  return password;
}

/** Refuses text that is no private key, as importKey would, before a keystore is made or a password asked for it. */
export function checkPrivateKeyText(hexText: string): void {
  parsePrivateKeyHex(hexText).fill(0);
}

/** Never echoes the input: a near-miss of a private key is still almost a private key. */
function parsePrivateKeyHex(hexText: string): Uint8Array {
  const text = hexText.trim();
  const digits = /^0[xX]/.test(text) ? text.slice(2) : text;
  if (!/^[0-9a-fA-F]{64}$/.test(digits)) {
    throw new KeystoreError('INVALID_PRIVATE_KEY', 'a private key is 64 hex digits, optionally prefixed with 0x');
  }
  const key = fromHex(digits, PRIVATE_KEY_BYTES);
  if (!isValidPrivateKey(key)) {
    key.fill(0);
    throw new KeystoreError('INVALID_PRIVATE_KEY', 'the private key is out of range (it must be between 1 and n - 1)');
  }
  return key;
}

/**
 * Passwords are NFKC-normalised: the same characters typed on two systems can arrive as different
 * code points (composed or decomposed accents), and must open the same key.
 */
async function deriveKey(password: string, salt: Uint8Array, n: number, r: number, p: number): Promise<Buffer> {
  // OpenSSL needs 128·r·(N + 2) bytes for V plus 128·r·p for B; Node's default cap is 32 MiB.
  const maxmem = 128 * r * (n + 2 + p) + 1024 * 1024;
  return new Promise((resolve, reject) => {
    scryptCallback(password.normalize('NFKC'), salt, DERIVED_KEY_BYTES, { N: n, r, p, maxmem }, (err, key) =>
      err === null ? resolve(key) : reject(new KeystoreError('KEYSTORE_IO', `scrypt failed: ${err.message}`)),
    );
  });
}

async function storeKey(
  dir: string,
  password: string,
  privateKey: Uint8Array,
  random: RandomSource,
  options: KeystoreOptions,
): Promise<{ address: string }> {
  const n = options.scryptN ?? DEFAULT_SCRYPT_N;
  const problem = checkScryptParams(n, SCRYPT_R, SCRYPT_P);
  if (problem !== undefined) throw new RangeError(problem);
  const address = encodeAddress(addressOf(publicKeyOf(privateKey)));
  const file = keyFilePath(dir, address);

  await ensureDir(dir);
  // Refuse before paying for scrypt; the link() in writeNewFileAtomically closes the race with a
  // concurrent writer.
  if (await exists(file)) throw keyExists(address, file);

  const salt = random(SALT_BYTES);
  const iv = random(IV_BYTES);
  const derived = await deriveKey(password, salt, n, SCRYPT_R, SCRYPT_P);
  let ciphertext: Buffer;
  let tag: Buffer;
  try {
    const cipher = createCipheriv(CIPHER, derived, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(associatedData(address));
    ciphertext = Buffer.concat([cipher.update(privateKey), cipher.final()]);
    tag = cipher.getAuthTag();
  } finally {
    derived.fill(0);
  }
  const doc: KeyFileV1 = {
    version: KEY_FILE_VERSION,
    address,
    crypto: {
      kdf: KDF,
      kdfparams: { n, r: SCRYPT_R, p: SCRYPT_P, dklen: DERIVED_KEY_BYTES, salt: toHex(salt) },
      cipher: CIPHER,
      iv: toHex(iv),
      ciphertext: toHex(ciphertext),
      tag: toHex(tag),
    },
  };
  await writeNewFileAtomically(dir, file, JSON.stringify(doc, null, 2) + '\n', address);
  return { address };
}
