/**
 * One `cairn send` at a time per key and keystore, from the choice of its nonce to the node's
 * answer. Two started together (a script sending in parallel, two terminals) both read the same
 * next nonce: the one that paid more replaced the other in the node's mempool, whose id had been
 * printed and never confirmed, and any other was refused with "replacing nonce 0 needs a fee of
 * at least …".
 *
 * The lock is LevelDB's, on an empty database beside the key file (the kind a light client holds
 * on its datadir, cli/datadir.ts): the system releases it when the process ends, however it ends,
 * so a send killed or crashed while holding it leaves no stale lock, and no pid can be reused
 * into one. The holder's pid is written beside it to name it to those who wait, with a token of
 * its hold, by which they tell that the lock changed hands.
 */
import { randomUUID } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CairnError, StoreError } from '../ledger/errors.ts';

/**
 * How long a send waits for one holder of the lock from the same key: longer than a holder can
 * take (its nonce read and its submission, each bounded by the RPC client's 60 s), so that giving
 * up means a holder that does not run (stopped with Ctrl-Z, in a debugger). Counted from when the
 * lock last changed hands: a queue of honest sends ahead may together take longer.
 */
export const SEND_LOCK_MAX_WAIT_MS = 180_000;
/** After this long, the waiting send says what it waits for. */
const NOTICE_AFTER_MS = 2_000;

export interface SendLockOptions {
  /** Told once what the send waits for, when the wait is long (stderr). */
  readonly notice: (text: string) => void;
  readonly maxWaitMs?: number;
  /** The clock the wait is measured on, in milliseconds (performance.now unless a test gives its own). */
  readonly now?: () => number;
}

/** Where the lock of `address`'s sends lives in `keystore`: hidden, so that `keys list` passes it by. */
export function sendLockPath(keystore: string, address: string): string {
  return join(keystore, `.${address}.send-lock`);
}

/**
 * Runs `run` holding the lock of `address`'s sends in `keystore`, waiting for any other holder
 * first. A keystore where no lock can be made (read-only) is warned of and sent from unlocked:
 * a send that worked there before must not stop working.
 */
export async function withSendLock<T>(keystore: string, address: string, options: SendLockOptions, run: () => Promise<T>): Promise<T> {
  const path = sendLockPath(keystore, address);
  const { LevelKv } = await loadLevel();
  const maxWaitMs = options.maxWaitMs ?? SEND_LOCK_MAX_WAIT_MS;
  const now = options.now ?? (() => performance.now());
  const started = now();
  /** What the holder wrote when last read, and since when: what it says changes with each new holder. */
  let holder: { text: string; since: number } | undefined;
  let pause = 2;
  let told = false;
  let lock: Awaited<ReturnType<typeof LevelKv.open>> | undefined;
  for (;;) {
    try {
      lock = await LevelKv.open(path);
      break;
    } catch (err) {
      if (!(err instanceof StoreError && err.code === 'STORE_LOCKED')) {
        options.notice(`warning: cannot lock ${path} (${(err as Error).message}): sends from ${address} started at once may pick the same nonce`);
        return run();
      }
    }
    const at = now();
    const text = await readHolder(path);
    if (holder?.text !== text) holder = { text, since: at };
    // One holder's time, not the whole wait's: sends queued from a script pass the lock along for
    // longer than any one may hold it, and the last of them told of a stopped one that was not.
    const held = at - holder.since;
    if (held >= maxWaitMs) {
      throw new CairnError('SEND_LOCKED', `another cairn send from ${address}${pidText(text)} has held ${path} for ${Math.round(held / 1000)} s; a send holds it only from choosing its nonce to the node's answer: is that one stopped (Ctrl-Z, a debugger)?`);
    }
    if (!told && at - started >= NOTICE_AFTER_MS) {
      told = true;
      options.notice(`waiting for another cairn send from ${address}${pidText(text)} to submit its transfer first`);
    }
    await new Promise((r) => setTimeout(r, pause));
    pause = Math.min(pause * 2, 50);
  }
  try {
    await writeFile(join(path, 'holder'), `${process.pid} ${randomUUID()}\n`).catch(() => {});
    return await run();
  } finally {
    await lock.close();
  }
}

let level: Promise<typeof import('../ledger/kv-level.ts')> | undefined;

/**
 * Loads LevelDB's binding, which `withSendLock` needs: on demand, since every other command
 * would pay its 20-30 ms with the command table, and early (while the key's scrypt runs on
 * another thread), so that a send does not pay them either.
 */
export function loadLevel(): Promise<typeof import('../ledger/kv-level.ts')> {
  level ??= import('../ledger/kv-level.ts');
  return level;
}

/** What the lock's holder wrote beside it (its pid and its hold's token), or '' when nothing is there yet. */
function readHolder(path: string): Promise<string> {
  return readFile(join(path, 'holder'), 'utf8').catch(() => '');
}

function pidText(holder: string): string {
  const pid = Number(holder.trim().split(' ')[0]);
  return Number.isSafeInteger(pid) && pid > 0 ? ` (pid ${pid})` : '';
}
