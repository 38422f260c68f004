/**
 * The address a mining node pays to: --coinbase, else the keystore's one key, else a new one.
 *
 * Two locks are held while it is chosen. The datadir's store's: two nodes started together on a
 * new datadir each made a key, the second was then refused the store, and every later start was
 * refused for a keystore of two; now the second is refused first, and makes nothing. And the
 * keystore's own (`.coinbase-lock` in it, a `withDirLock`): two nodes on datadirs of their own
 * given one `--keystore` each found it empty and made a key, with the same end. Under it the
 * keystore is listed and, when it holds none, the key made: the second waits (saying so, as the
 * first may be waiting for a person to type its password), then finds the first's key and mines
 * to it without asking for a password (`cairn keys new|import` take it too: keystore-lock.ts).
 * Both locks are let go for the node to take its store: one that comes between finds the key and
 * uses it.
 */
import { join } from 'node:path';
import { LevelKv } from '../ledger/kv-level.ts';
import { createKey, KeystoreError, listKeys } from './keystore.ts';
import { ensureDir } from './keystore-files.ts';
import { readPassword } from './password.ts';
import { whileWaitingForPassword } from './lock-holder.ts';
import { withDirLock } from './dir-lock.ts';
import { keystoreLockPath } from './keystore-lock.ts';
import { address, str, UsageError } from './args.ts';
import { explainStartFailure, type StartSettings } from './start-errors.ts';

/** Where what the choice does goes: the key made (info), the wait for another node's choice, or a lock that cannot be made (warn). */
export type CoinbaseLog = (level: 'info' | 'warn', message: string) => void;

/**
 * The coinbase of a `--mine` start (`values`: its flags), chosen holding its datadir's store's
 * lock; `log` tells what was made, and what is waited for.
 */
export async function coinbaseFor(values: Record<string, unknown>, datadir: string, settings: StartSettings, log: CoinbaseLog): Promise<Uint8Array> {
  const given = str(values, 'coinbase');
  if (given) return address(given, '--coinbase address');
  const lock = await LevelKv.open(join(datadir, 'chain')).catch((err: unknown) => {
    throw explainStartFailure(err, settings);
  });
  try {
    return await keptOrNewCoinbase(values, datadir, log);
  } finally {
    await lock.close();
  }
}

/**
 * The keystore's one key, or a new one when it holds none. Keys are only ever added, so one found
 * is the answer without the keystore's lock; none found is looked for again under it.
 */
export async function keptOrNewCoinbase(values: Record<string, unknown>, datadir: string, log: CoinbaseLog): Promise<Uint8Array> {
  const keystore = str(values, 'keystore') ?? join(datadir, 'keystore');
  const kept = await keptCoinbase(keystore);
  if (kept) return kept;
  // Made before the lock, which lives in it, and so before any password is asked: a keystore
  // that cannot be made is refused without one.
  await ensureDir(keystore);
  const path = keystoreLockPath(keystore);
  // No limit on the wait: the holder may be waiting for a person to type a password.
  const words = {
    waiting: (holder: string) =>
      `waiting for another cairn node${holder} to choose its coinbase key in ${keystore} first (when the keystore holds none, it makes one, asking for its password where it was started): this node then mines to that key`,
    unlockable: (reason: string) => `warning: cannot lock ${path} (${reason}): nodes started at once on ${keystore} may each make a key`,
  };
  // At warn: a start that waits, perhaps for minutes, must say why under --log-level warn too.
  return withDirLock(path, words, { notice: (text) => log('warn', text) }, async () => {
    const madeMeanwhile = await keptCoinbase(keystore);
    if (madeMeanwhile) return madeMeanwhile;
    const password = await whileWaitingForPassword(datadir, () => readPassword({ passwordFile: str(values, 'password-file'), confirm: true, purpose: `the new coinbase key in ${keystore}` }));
    const { address: created } = await createKey(keystore, password);
    log('info', `created coinbase key ${created} in ${keystore}`);
    return address(created, 'coinbase key');
  });
}

/** The keystore's one key; undefined when it holds none (or is not there yet). */
async function keptCoinbase(keystore: string): Promise<Uint8Array | undefined> {
  const existing = await listKeys(keystore).catch((err: unknown) => {
    if (err instanceof KeystoreError && err.code === 'KEYSTORE_NOT_FOUND') return [] as string[]; // made by the caller
    throw err;
  });
  // Which of several keys would be a guess (the first by name was once the public development
  // key, imported by the walkthrough): the user says which.
  if (existing.length > 1) throw new UsageError(`${keystore} holds ${existing.length} keys: say which one mining pays with --coinbase ADDRESS (cairn keys list --keystore ${keystore})`);
  return existing.length === 1 ? address(existing[0]!, 'coinbase key') : undefined;
}
