/**
 * The keystore's lock (`.coinbase-lock` in it, a `withDirLock`): held by a `--mine` start while it
 * lists the keystore and, finding it empty, makes its coinbase key (coinbase.ts), and by `cairn
 * keys new|import` around their write. A key added between that listing and that write left the
 * keystore with two keys, and every later start refused until told which with --coinbase; under
 * the lock the start finds the key added first, and mines to it.
 *
 * Apart from coinbase.ts, which loads LevelDB with its first import: `cairn keys` is in the
 * command table every command loads, and dir-lock.ts loads LevelDB only when a lock is taken.
 */
import { join } from 'node:path';
import { withDirLock, type DirLockWords } from './dir-lock.ts';

/**
 * The name of the keystore's lock in it: hidden, so that `keys list` passes it by. Named when a
 * --mine start alone took it, and kept: a node of an earlier build takes the same lock.
 */
export const KEYSTORE_LOCK_NAME = '.coinbase-lock';

/** The lock's path in `keystore`. */
export function keystoreLockPath(keystore: string): string {
  return join(keystore, KEYSTORE_LOCK_NAME);
}

/**
 * Runs `run` (a key written by `cairn keys`) holding `keystore`'s lock, with no limit on the wait:
 * its holder may be a node waiting for a person to type its new key's password, which `notice`
 * is told once the wait is long.
 */
export function withKeyWriteLock<T>(keystore: string, notice: (text: string) => void, run: () => Promise<T>): Promise<T> {
  const path = keystoreLockPath(keystore);
  const words: DirLockWords = {
    waiting: (holder) =>
      `waiting for a cairn node${holder} choosing its coinbase key in ${keystore} (when the keystore holds none, it makes one, asking for its password where it was started): this key is added once it is done`,
    unlockable: (reason) => `warning: cannot lock ${path} (${reason}): a node starting on ${keystore} meanwhile may make a key of its own`,
  };
  return withDirLock(path, words, { notice }, run);
}
