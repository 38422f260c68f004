/**
 * Which process holds a datadir's lock, and what cairn command it runs: a node still starting
 * (a long store open) has no rpc.json yet, and was reported as "no node is running".
 *
 * The lock is LevelDB's (the store's `chain/LOCK`, a light client's `lock/LOCK`), a POSIX record
 * lock. Taking it to see whether it is free would race the start it asks about (a node opening
 * its store just then is refused, "in use by another process"); Linux lists every lock held, with
 * its holder's pid, in /proc/locks, which is read here and nothing is taken. Elsewhere, or where
 * the list does not name the file, the holder is unknown and the callers say what they said before.
 */
import { readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The file in a datadir naming the pid of a node waiting there for its new coinbase key's
 * password, its store's lock held: nothing else tells that wait (a person's, for as long as they
 * take) from a store open. Believed only while that pid holds the lock, so one a kill left behind
 * says nothing.
 */
export const PASSWORD_WAIT_FILE = 'password-wait';

export interface LockHolder {
  readonly pid: number;
  /** The cairn command it runs (`node`, `light`, `snapshot`, …), when its command line says. */
  readonly command: string | undefined;
  /** A node waiting for the password of its new coinbase key (whileWaitingForPassword). */
  readonly waitingForPassword: boolean;
}

/** The process holding the lock of the datadir's store (a full node's) or of a light client's datadir. */
export function datadirHolder(datadir: string, light = false): LockHolder | undefined {
  const pid = lockHolderPid(join(datadir, light ? 'lock' : 'chain', 'LOCK'));
  return pid === undefined ? undefined : { pid, command: cairnCommandOf(pid), waitingForPassword: !light && passwordWaiter(datadir) === pid };
}

/**
 * `ask` (a password read), with the datadir marked as waiting for it by this process, which holds
 * the datadir's store's lock meanwhile. The mark is a hint for those who ask who holds the
 * datadir: a write or a removal that fails costs the start nothing.
 */
export async function whileWaitingForPassword<T>(datadir: string, ask: () => Promise<T>): Promise<T> {
  const file = join(datadir, PASSWORD_WAIT_FILE);
  const hint = (write: () => void) => {
    try {
      write();
    } catch {
      // Only the words of `cairn status` meanwhile are at stake.
    }
  };
  hint(() => writeFileSync(file, `${process.pid}\n`));
  try {
    return await ask();
  } finally {
    hint(() => rmSync(file, { force: true }));
  }
}

function passwordWaiter(datadir: string): number | undefined {
  try {
    const pid = Number(readFileSync(join(datadir, PASSWORD_WAIT_FILE), 'utf8').trim());
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** The pid holding a POSIX lock on `file`, from /proc/locks (Linux); undefined where none or unknown. */
export function lockHolderPid(file: string, locks = '/proc/locks'): number | undefined {
  let id: string;
  let listed: string;
  try {
    const st = statSync(file, { bigint: true });
    // The kernel prints the device as MAJOR:MINOR in hex (Linux's split of a 64-bit dev_t).
    const major = ((st.dev >> 8n) & 0xfffn) | ((st.dev >> 32n) & ~0xfffn);
    const minor = (st.dev & 0xffn) | ((st.dev >> 12n) & ~0xffn);
    id = `${major.toString(16).padStart(2, '0')}:${minor.toString(16).padStart(2, '0')}:${st.ino}`;
    listed = readFileSync(locks, 'utf8');
  } catch {
    return undefined;
  }
  for (const line of listed.split('\n')) {
    // "1: POSIX  ADVISORY  WRITE 6400 fe:00:2147618 0 EOF"; a waiter's line has "->" after the number.
    const f = line.trim().split(/\s+/);
    if (f[1] === 'POSIX' && f[5] === id) {
      const pid = Number(f[4]);
      if (Number.isSafeInteger(pid) && pid > 0) return pid;
    }
  }
  return undefined;
}

function cairnCommandOf(pid: number): string | undefined {
  try {
    return cairnCommandIn(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0'));
  } catch {
    return undefined;
  }
}

/**
 * The cairn command a command line runs: the word after the script (cli/main.ts, dist/cli/main.js,
 * cli/cairn.mjs, or the installed `cairn`: npm's bin is a link, and the kernel names the link).
 */
export function cairnCommandIn(argv: readonly string[]): string | undefined {
  const script = argv.findIndex((a) => /(^|\/)(cli\/main\.[jt]s|cli\/cairn\.mjs|cairn)$/.test(a));
  return script < 0 ? undefined : argv[script + 1] || undefined;
}

/**
 * A datadir's holder in words, for a command that found no node answering there: a node or light
 * client starting (its RPC comes once its store is open), or another cairn command using it.
 */
export function holderText(datadir: string, holder: LockHolder, what: string): string {
  if (holder.waitingForPassword) {
    return `the node on ${datadir} (pid ${holder.pid}) is starting, waiting for the password of its new coinbase key (asked where it was started): it answers once given one and its store is open (kill ${holder.pid} stops it)`;
  }
  if (holder.command === 'node' || holder.command === 'light') {
    return `the ${holder.command === 'light' ? 'light client' : 'node'} on ${datadir} (pid ${holder.pid}) is starting: it answers once its store is open; ask again in a moment (kill ${holder.pid} stops it)`;
  }
  if (holder.command) return `cairn ${holder.command} (pid ${holder.pid}) holds the store of ${datadir}, and no ${what} answers there: ask again once it has ended`;
  return `another process (pid ${holder.pid}) holds the store of ${datadir} (a ${what} still starting?), and no ${what} answers there yet: ask again in a moment`;
}
