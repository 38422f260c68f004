/**
 * A lock between cairn processes, held as LevelDB's lock on an empty database at a path (the kind
 * a light client holds on its datadir, cli/datadir.ts): the system releases it when the process
 * ends, however it ends, so a holder killed or crashed leaves no stale lock, and no pid can be
 * reused into one. The holder's pid is written beside it to name it to those who wait, with a
 * token of its hold, by which they tell that the lock changed hands.
 *
 * Its users: one `cairn send` per key (send-lock.ts), and the keystore's lock (keystore-lock.ts),
 * under which a node chooses its coinbase key and `cairn keys` adds one.
 */
import { randomUUID } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { StoreError } from '../ledger/errors.ts';

/** After this long, the waiting process says what it waits for. */
const NOTICE_AFTER_MS = 2_000;

/** What a lock's user says of its wait, each given the holder as ` (pid N)`, or '' when it is not known. */
export interface DirLockWords {
  /** Told once, when the wait is long. */
  readonly waiting: (holder: string) => string;
  /** Thrown when one holder has held the lock for maxWaitMs or longer; without it, the wait has no limit. */
  readonly heldTooLong?: (holder: string, seconds: number) => Error;
  /** Told when no lock can be made there (a read-only directory): `run` then runs unlocked. */
  readonly unlockable: (reason: string) => string;
}

export interface DirLockOptions {
  /** Told what the wait is for, when it is long, or that no lock could be made. */
  readonly notice: (text: string) => void;
  /** How long one holder may hold it before the wait gives up (with `heldTooLong`; default: no limit). */
  readonly maxWaitMs?: number;
  /** The clock the wait is measured on, in milliseconds (performance.now unless a test gives its own). */
  readonly now?: () => number;
}

/**
 * Runs `run` holding the lock at `path`, waiting for any other holder first. Where no lock can be
 * made, `run` runs unlocked, with a notice: what worked there before must not stop working.
 */
export async function withDirLock<T>(path: string, words: DirLockWords, options: DirLockOptions, run: () => Promise<T>): Promise<T> {
  const { LevelKv } = await loadLevel();
  const maxWaitMs = options.maxWaitMs ?? Infinity;
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
        options.notice(words.unlockable((err as Error).message));
        return run();
      }
    }
    const at = now();
    const text = await readHolder(path);
    if (holder?.text !== text) holder = { text, since: at };
    // One holder's time, not the whole wait's: users queued from a script pass the lock along for
    // longer than any one may hold it, and the last of them told of a stopped one that was not.
    const held = at - holder.since;
    if (words.heldTooLong && held >= maxWaitMs) throw words.heldTooLong(pidText(text), Math.round(held / 1000));
    if (!told && at - started >= NOTICE_AFTER_MS) {
      told = true;
      options.notice(words.waiting(pidText(text)));
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
 * Loads LevelDB's binding, which `withDirLock` needs: on demand, since every other command
 * would pay its 20-30 ms with the command table, and early (while a key's scrypt runs on
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
