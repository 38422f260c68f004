import { closeSync, fchmodSync, fsyncSync, openSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { open, readdir, rename, rm, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** The write under way of each file, so that the next waits for it (two writes would use one temporary file). */
const writing = new Map<string, Promise<void>>();

/**
 * Replaces `file` with `data` (mode 0600), whole or not at all, across a kill or a power cut:
 * written to `file.tmp`, synced, renamed over `file`, then the directory synced so that the
 * rename is kept too. Without the syncs, a power cut can keep the rename and lose the data, and
 * leave an empty file where the old one was. Writes to one file run one after another; a write
 * that fails (a full disk) leaves the old file and removes its temporary one.
 */
export function replaceFile(file: string, data: Uint8Array | string): Promise<void> {
  return inTurn(file, () => writeThenRename(file, data));
}

/**
 * replaceFile, done before it returns: for a file written between synchronous writes of another
 * that it must agree with (a light client's saved tip, as its hashes file commits). Never for a
 * file replaceFile writes too: the two would share the temporary file.
 */
export function replaceFileSync(file: string, data: Uint8Array): void {
  const temp = `${file}.tmp`;
  try {
    const fd = openSync(temp, 'w', 0o600);
    try {
      fchmodSync(fd, 0o600);
      writeFileSync(fd, data);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temp, file);
  } catch (err) {
    rmSync(temp, { force: true });
    throw err;
  }
  try {
    const dir = openSync(dirname(file), 'r');
    try {
      fsyncSync(dir);
    } finally {
      closeSync(dir);
    }
  } catch {
    // Best effort, as syncDirectory: the file itself is synced.
  }
}

/** `change` to `file` once the one under way has ended. */
function inTurn(file: string, change: () => Promise<void>): Promise<void> {
  const previous = writing.get(file) ?? Promise.resolve();
  const done = previous.then(change);
  const settled = done.catch(() => {});
  writing.set(file, settled);
  void settled.then(() => {
    if (writing.get(file) === settled) writing.delete(file);
  });
  return done;
}

async function writeThenRename(file: string, data: Uint8Array | string): Promise<void> {
  const temp = `${file}.tmp`;
  const handle = await open(temp, 'w', 0o600).catch(async (err: unknown) => {
    await rm(temp, { force: true }).catch(() => {});
    throw err;
  });
  await syncAndRename(handle, temp, file, async () => {
    await handle.chmod(0o600); // a temporary file a kill left behind keeps its old mode otherwise
    await handle.writeFile(data);
  });
}

/** Temporary files this process made, for a name of its own each. */
let temporaries = 0;

/**
 * Writes `file` from what `write` writes to the open file, whole or not at all, as replaceFile,
 * for a file too big to hold in memory (a snapshot file). Its temporary file is this write's own
 * (`FILE.PID.N.partial`, made new): two writers of one file (two exports from two datadirs) each
 * rename a file of their own, never one that both wrote into. A write that fails removes it; a
 * kill leaves it, named for what it is, until the next write of `file` (removeKilledPartials).
 */
export async function writeWholeFile<T>(file: string, write: (handle: FileHandle) => Promise<T>): Promise<T> {
  await removeKilledPartials(file);
  for (;;) {
    const temp = `${file}.${process.pid}.${++temporaries}.partial`;
    let handle: FileHandle;
    try {
      handle = await open(temp, 'wx');
    } catch (err) {
      // A kill's leftover whose pid was since reused: the next name.
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      continue;
    }
    return syncAndRename(handle, temp, file, () => write(handle));
  }
}

/**
 * The temporary files of `file` whose writers were killed mid-way (`FILE.PID.N.partial`, PID no
 * live process), each as big as the file: a killed export left one for good. A live writer's are
 * kept (two exports from two datadirs may write one file at once). Removed before the write,
 * whose rename's directory sync keeps the removals too; one that cannot be removed is left.
 * Where the PID is another PID namespace's (a container writing to a shared mount), a live writer
 * looks dead from here: its rename then fails and its `file` stays as it was.
 */
async function removeKilledPartials(file: string): Promise<void> {
  const dir = dirname(file);
  const prefix = `${basename(file)}.`;
  // A directory that cannot be read: the write's own open says why.
  const names = await readdir(dir).catch(() => [] as string[]);
  for (const name of names) {
    const pid = name.startsWith(prefix) ? /^(\d+)\.\d+\.partial$/.exec(name.slice(prefix.length))?.[1] : undefined;
    if (pid !== undefined && !processAlive(Number(pid))) await rm(join(dir, name), { force: true }).catch(() => {});
  }
}

/** Whether a process with `pid` runs (another user's too), as far as this PID namespace shows. */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0); // throws when no such process
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'; // there, but another user's
  }
}

/**
 * `write` into the open temporary file, then synced, closed and renamed over `file`, and the
 * rename synced; on any failure the temporary file is removed and `file` is as it was.
 */
async function syncAndRename<T>(handle: FileHandle, temp: string, file: string, write: () => Promise<T>): Promise<T> {
  let result: T;
  try {
    try {
      result = await write();
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, file);
  } catch (err) {
    await rm(temp, { force: true }).catch(() => {});
    throw err;
  }
  await syncDirectory(dirname(file));
  return result;
}

/** Keeps a rename in `dir` across a power cut; not every platform can open a directory to sync it. */
export async function syncDirectory(dir: string): Promise<void> {
  try {
    const handle = await open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    // Best effort: the file itself is synced.
  }
}
