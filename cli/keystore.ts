/**
 * The encrypted keystore behind `cairn keys new|list|import|export`.
 *
 * One file per key, `<DIR>/<cairn1…>.json`, mode 0600, in a directory created 0700. A file holds
 * the 32-byte private key encrypted with AES-256-GCM under a key derived from the password by
 * scrypt (format in `KeyFileV1`). The address text is GCM additional data, so a file whose address
 * was edited fails authentication instead of opening under another name.
 *
 * Nothing here prints, logs, or puts the password or a key into an error message: every failure is
 * a `KeystoreError` with a code and a one-line message that names only paths and addresses.
 */
import { createCipheriv, createDecipheriv, randomBytes, scrypt as scryptCallback } from 'node:crypto';
import { chmod, link, mkdir, open, readFile, readdir, rename, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { fromHex, toHex } from '../ledger/bytes.ts';
import { CairnError } from '../ledger/errors.ts';
import {
  addressOf,
  decodeAddress,
  encodeAddress,
  generatePrivateKey,
  isValidPrivateKey,
  PRIVATE_KEY_BYTES,
  publicKeyOf,
  type RandomSource,
} from '../ledger/keys.ts';

export type KeystoreErrorCode =
  | 'KEYSTORE_NOT_FOUND'
  | 'KEYSTORE_IO'
  | 'KEY_NOT_FOUND'
  | 'KEY_EXISTS'
  | 'KEY_FILE_CORRUPT'
  | 'WRONG_PASSWORD'
  | 'INVALID_PRIVATE_KEY'
  | 'INVALID_ADDRESS'
  | 'EMPTY_PASSWORD'
  | 'NO_PASSWORD'
  | 'PASSWORD_FILE_UNREADABLE'
  | 'PASSWORD_MISMATCH'
  | 'PROMPT_CANCELLED';

export class KeystoreError extends CairnError {
  declare readonly code: KeystoreErrorCode;
  constructor(code: KeystoreErrorCode, message: string) {
    // The CLI prints the message as one line: a path with a newline in it must not break that.
    super(code, message.replace(/\s*[\r\n]+\s*/g, ' '));
  }
}

export const KEY_FILE_VERSION = 1;

/**
 * scrypt N = 2^16, r = 8, p = 1: 64 MiB and about 175 ms per derivation on the 2-core machine this
 * was measured on (2^17 took ~370 ms, 2^18 ~820 ms). Every `new`, `import` and unlock pays it
 * once; an attacker with a stolen file pays it per guessed password.
 */
export const DEFAULT_SCRYPT_N = 1 << 16;
export const SCRYPT_R = 8;
export const SCRYPT_P = 1;
const DERIVED_KEY_BYTES = 32;
const SALT_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;

/**
 * Limits on what a key file may ask of us: a damaged or hostile file must not make the CLI
 * allocate gigabytes or spin for minutes before it can say "corrupt".
 */
const MAX_SCRYPT_N = 1 << 20;
const MAX_SCRYPT_R = 16;
const MAX_SCRYPT_P = 16;
const MAX_SCRYPT_MEMORY = 256 * 1024 * 1024;
const MAX_KEY_FILE_BYTES = 64 * 1024;

const CIPHER = 'aes-256-gcm';
const KDF = 'scrypt';

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
    const match = /^(cairn1[a-z0-9]+)\.json$/.exec(name);
    if (match?.[1] !== undefined && isAddressText(match[1])) addresses.push(match[1]);
  }
  return addresses.sort();
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
    plain = Buffer.concat([decipher.update(fromHex(doc.crypto.ciphertext)), decipher.final()]);
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

function isAddressText(text: string): boolean {
  try {
    decodeAddress(text);
    return true;
  } catch {
    return false;
  }
}

function keyFilePath(dir: string, address: string): string {
  return join(dir, `${address}.json`);
}

/** Binds the ciphertext to its address and to this format. */
function associatedData(address: string): Uint8Array {
  return new TextEncoder().encode(`cairn keystore v${KEY_FILE_VERSION} ${address}`);
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

function checkScryptParams(n: number, r: number, p: number): string | undefined {
  if (!Number.isSafeInteger(n) || n < 2 || n > MAX_SCRYPT_N || (n & (n - 1)) !== 0) {
    return `scrypt n must be a power of 2 from 2 to ${MAX_SCRYPT_N}`;
  }
  if (!Number.isSafeInteger(r) || r < 1 || r > MAX_SCRYPT_R) return `scrypt r must be 1 to ${MAX_SCRYPT_R}`;
  if (!Number.isSafeInteger(p) || p < 1 || p > MAX_SCRYPT_P) return `scrypt p must be 1 to ${MAX_SCRYPT_P}`;
  if (128 * n * r > MAX_SCRYPT_MEMORY) return `scrypt n·r needs more than ${MAX_SCRYPT_MEMORY / 2 ** 20} MiB`;
  return undefined;
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
  // Refuse before paying for scrypt; the link() below closes the race with a concurrent writer.
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

async function ensureDir(dir: string): Promise<void> {
  try {
    const info = await stat(dir);
    if (!info.isDirectory()) throw new KeystoreError('KEYSTORE_IO', `keystore ${dir} is not a directory`);
    return;
  } catch (err) {
    if (err instanceof KeystoreError) throw err;
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw ioError(`cannot use keystore ${dir}`, err);
  }
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    // The umask may have taken bits away from the mode; nobody else needs any.
    await chmod(dir, 0o700);
  } catch (err) {
    throw ioError(`cannot create keystore ${dir}`, err);
  }
}

/**
 * Writes a temporary file 0600 in the same directory, syncs it, then links it to its name. link()
 * is atomic and, unlike rename(), refuses to replace an existing file, so a crash leaves either no
 * key file or a whole one, and two writers of the same key cannot overwrite each other.
 */
async function writeNewFileAtomically(dir: string, file: string, content: string, address: string): Promise<void> {
  const temp = join(dir, `.${address}.json.${toHex(randomBytes(6))}.tmp`);
  try {
    const handle = await open(temp, 'wx', 0o600);
    try {
      await handle.chmod(0o600);
      await handle.writeFile(content, 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
    try {
      await link(temp, file);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') throw keyExists(address, file);
      // A file system without hard links: check, then rename (a narrow race, no torn file).
      if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS') throw err;
      if (await exists(file)) throw keyExists(address, file);
      await rename(temp, file);
    }
    await syncDir(dir);
  } catch (err) {
    if (err instanceof KeystoreError) throw err;
    throw ioError(`cannot write key file ${file}`, err);
  } finally {
    await unlink(temp).catch(() => {});
  }
}

/** Makes the new directory entry durable; not every platform can open a directory to sync it. */
async function syncDir(dir: string): Promise<void> {
  try {
    const handle = await open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    // Best effort: the file itself is already synced.
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw ioError(`cannot read ${path}`, err);
  }
}

async function readKeyFile(dir: string, file: string, address: string): Promise<string> {
  try {
    const info = await stat(dir);
    if (!info.isDirectory()) throw new KeystoreError('KEYSTORE_NOT_FOUND', `keystore ${dir} is not a directory`);
  } catch (err) {
    if (err instanceof KeystoreError) throw err;
    throw keystoreDirError(dir, err);
  }
  try {
    const handle = await open(file, 'r');
    try {
      const info = await handle.stat();
      if (!info.isFile() || info.size > MAX_KEY_FILE_BYTES) {
        throw new KeystoreError('KEY_FILE_CORRUPT', `key file ${file} is not a key file (${info.size} bytes)`);
      }
      return await handle.readFile('utf8');
    } finally {
      await handle.close();
    }
  } catch (err) {
    if (err instanceof KeystoreError) throw err;
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new KeystoreError('KEY_NOT_FOUND', `no key for ${address} in keystore ${dir}`);
    }
    throw ioError(`cannot read key file ${file}`, err);
  }
}

/** Checks every field's type and size, so that decryption only ever sees well-formed input. */
function parseKeyFile(text: string, file: string): KeyFileV1 {
  const corrupt = (why: string): KeystoreError => new KeystoreError('KEY_FILE_CORRUPT', `key file ${file} is corrupt: ${why}`);
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw corrupt('not JSON');
  }
  if (!isObject(doc)) throw corrupt('not a JSON object');
  if (doc['version'] !== KEY_FILE_VERSION) {
    throw corrupt(`version ${JSON.stringify(doc['version'])} is not supported (expected ${KEY_FILE_VERSION})`);
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

function keyExists(address: string, file: string): KeystoreError {
  return new KeystoreError('KEY_EXISTS', `the key of ${address} is already in the keystore (${file})`);
}

function keystoreDirError(dir: string, err: unknown): KeystoreError {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return new KeystoreError('KEYSTORE_NOT_FOUND', `no keystore at ${dir}`);
  if (code === 'ENOTDIR') return new KeystoreError('KEYSTORE_NOT_FOUND', `keystore ${dir} is not a directory`);
  return ioError(`cannot read keystore ${dir}`, err);
}

function ioError(what: string, err: unknown): KeystoreError {
  return new KeystoreError('KEYSTORE_IO', `${what}: ${errnoText(err)}`);
}

/** "EACCES" rather than Node's message, which repeats the path (already in ours). */
export function errnoText(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return e.code ?? (e instanceof Error ? e.message : String(err));
}
