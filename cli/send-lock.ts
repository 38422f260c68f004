/**
 * One `cairn send` at a time per key and keystore, from the choice of its nonce to the node's
 * answer. Two started together (a script sending in parallel, two terminals) both read the same
 * next nonce: the one that paid more replaced the other in the node's mempool, whose id had been
 * printed and never confirmed, and any other was refused with "replacing nonce 0 needs a fee of
 * at least …".
 *
 * The lock is a `withDirLock` (dir-lock.ts) beside the key file: a send killed or crashed while
 * holding it leaves no stale lock.
 */
import { join } from 'node:path';
import { CairnError } from '../ledger/errors.ts';
import { withDirLock, type DirLockOptions } from './dir-lock.ts';

/**
 * How long a send waits for one holder of the lock from the same key: longer than a holder can
 * take (its nonce read and its submission, each bounded by the RPC client's 60 s), so that giving
 * up means a holder that does not run (stopped with Ctrl-Z, in a debugger). Counted from when the
 * lock last changed hands: a queue of honest sends ahead may together take longer.
 */
export const SEND_LOCK_MAX_WAIT_MS = 180_000;

/** Where the lock of `address`'s sends lives in `keystore`: hidden, so that `keys list` passes it by. */
export function sendLockPath(keystore: string, address: string): string {
  return join(keystore, `.${address}.send-lock`);
}

/**
 * Runs `run` holding the lock of `address`'s sends in `keystore`, waiting for any other holder
 * first. A keystore where no lock can be made (read-only) is warned of and sent from unlocked:
 * a send that worked there before must not stop working.
 */
export function withSendLock<T>(keystore: string, address: string, options: DirLockOptions, run: () => Promise<T>): Promise<T> {
  const path = sendLockPath(keystore, address);
  const words = {
    waiting: (holder: string) => `waiting for another cairn send from ${address}${holder} to submit its transfer first`,
    heldTooLong: (holder: string, seconds: number) =>
      new CairnError('SEND_LOCKED', `another cairn send from ${address}${holder} has held ${path} for ${seconds} s; a send holds it only from choosing its nonce to the node's answer: is that one stopped (Ctrl-Z, a debugger)?`),
    unlockable: (reason: string) => `warning: cannot lock ${path} (${reason}): sends from ${address} started at once may pick the same nonce`,
  };
  return withDirLock(path, words, { maxWaitMs: SEND_LOCK_MAX_WAIT_MS, ...options }, run);
}
