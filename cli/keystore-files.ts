/**
 * The keystore's file I/O: where a key file lives, how a new one is written so that a crash or a
 * concurrent writer never leaves a torn or replaced file, how one is read back within its size
 * limit, and the errno-to-`KeystoreError` mapping those share.
 */
import { randomBytes } from 'node:crypto';
import { chmod, link, mkdir, open, rename, rmdir, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { toHex } from '../ledger/bytes.ts';
import { syncDirectory } from '../node/durable-file.ts';
import { DEFAULT_DATADIR } from './args.ts';
import { isAddressText, MAX_KEY_FILE_BYTES } from './key-file.ts';
import { fileOnTheWay, fileReason } from '../node/file-errors.ts';
import { KeystoreError } from './keystore-error.ts';

/** Where `cairn node` keeps its coinbase key when given no --datadir and no --keystore. */
export const DEFAULT_NODE_KEYSTORE = `./${join(DEFAULT_DATADIR, 'keystore')}`;

export function keyFilePath(dir: string, address: string): string {
  return join(dir, `${address}.json`);
}

/** The address a key file's name gives (`cairn1….json`); undefined for any other name (temporaries, notes, locks). */
export function keyFileAddress(name: string): string | undefined {
  const address = /^(cairn1[a-z0-9]+)\.json$/.exec(name)?.[1];
  return address !== undefined && isAddressText(address) ? address : undefined;
}

/** Makes keystore `dir` unless it is there; the first directory it made, if any, for removeMadeKeystore. */
export async function ensureDir(dir: string): Promise<string | undefined> {
  try {
    const info = await stat(dir);
    if (!info.isDirectory()) throw notADirectory(dir, 'KEYSTORE_IO');
    return undefined;
  } catch (err) {
    if (err instanceof KeystoreError) throw err;
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw ioError(`cannot use keystore ${dir}`, err, dir, KEYSTORE_WAY_ON);
  }
  try {
    const made = await mkdir(dir, { recursive: true, mode: 0o700 });
    // The umask may have taken bits away from the mode; nobody else needs any.
    await chmod(dir, 0o700);
    return made;
  } catch (err) {
    throw ioError(`cannot create keystore ${dir}`, err, dir, KEYSTORE_WAY_ON);
  }
}

/**
 * Takes away what ensureDir made for `dir` (`made`, the first directory, and those under it down
 * to `dir`), each only while it is empty: a command that failed before its key (no password)
 * left an empty keystore, which later ones took for one holding no keys. Never one that holds
 * anything, another process's key or lock among them.
 */
export async function removeMadeKeystore(dir: string, made: string | undefined): Promise<void> {
  if (made === undefined) return;
  const first = resolve(made);
  for (let at = resolve(dir); ; at = dirname(at)) {
    try {
      await rmdir(at);
    } catch {
      return;
    }
    if (at === first || at === dirname(at)) return;
  }
}

/**
 * Writes a temporary file 0600 in the same directory, syncs it, then links it to its name. link()
 * is atomic and, unlike rename(), refuses to replace an existing file, so a crash leaves either no
 * key file or a whole one, and two writers of the same key cannot overwrite each other.
 */
export async function writeNewFileAtomically(dir: string, file: string, content: string, address: string): Promise<void> {
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
    await syncDirectory(dir);
  } catch (err) {
    if (err instanceof KeystoreError) throw err;
    throw ioError(`cannot write key file ${file}`, err, file);
  } finally {
    await unlink(temp).catch(() => {});
  }
}


export async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw ioError(`cannot read ${path}`, err, path);
  }
}

export async function readKeyFile(dir: string, file: string, address: string): Promise<string> {
  try {
    const info = await stat(dir);
    if (!info.isDirectory()) throw notADirectory(dir, 'KEYSTORE_NOT_FOUND');
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
    throw ioError(`cannot read key file ${file}`, err, file);
  }
}

export function keyExists(address: string, file: string): KeystoreError {
  return new KeystoreError('KEY_EXISTS', `the key of ${address} is already in the keystore (${file})`);
}

export function keystoreDirError(dir: string, err: unknown): KeystoreError {
  const code = (err as NodeJS.ErrnoException).code;
  // A newcomer's first send or list often names a folder that was never made, or the node's datadir
  // beside the keystore inside it: both ways on, so that neither has to be guessed.
  if (code === 'ENOENT') return new KeystoreError('KEYSTORE_NOT_FOUND', `no keystore at ${dir}: cairn keys new --keystore ${dir} makes one; a node keeps its coinbase key in its datadir's keystore, DATADIR/keystore (${DEFAULT_NODE_KEYSTORE} by default)`);
  if (code === 'ENOTDIR') return notADirectory(dir, 'KEYSTORE_NOT_FOUND');
  return ioError(`cannot read keystore ${dir}`, err, dir);
}

/**
 * A keystore named by a path that is a file, or runs through one, with what --keystore wants: a
 * bare "is not a directory" left the user guessing. The file named most is a key file itself
 * (`--keystore keys/cairn1….json`): its directory is the keystore.
 */
function notADirectory(dir: string, code: 'KEYSTORE_IO' | 'KEYSTORE_NOT_FOUND'): KeystoreError {
  const file = fileOnTheWay(dir) ?? dir;
  const what = file === dir ? `keystore ${dir} is a file, not a directory` : `keystore ${dir}: ${file} is a file, not a directory`;
  const wayOn = keyFileAddress(basename(file)) !== undefined
    ? `it is a key file: give --keystore the directory that holds it (--keystore ${dirname(file)})`
    : 'give --keystore a directory of key files (cairn keys new --keystore DIR makes one, with a new key in it)';
  return new KeystoreError(code, `${what}; ${wayOn}`);
}

/** What a keystore that cannot be made or used needs. */
const KEYSTORE_WAY_ON = 'give --keystore a directory you can write (a new one is made)';

function ioError(what: string, err: unknown, path?: string, wayOn?: string): KeystoreError {
  return new KeystoreError('KEYSTORE_IO', `${what}: ${fileReason(err, path)}${wayOn ? `; ${wayOn}` : ''}`);
}
