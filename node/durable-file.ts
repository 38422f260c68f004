import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';

/** The write or removal under way of each file, so that the next waits for it (two writes would use one temporary file). */
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
 * Removes `file` (none is no error), after the write to it under way if any, and syncs its
 * directory: unsynced, a power cut can bring the removed file back.
 */
export function removeFile(file: string): Promise<void> {
  return inTurn(file, async () => {
    try {
      await rm(file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    await syncDirectory(dirname(file));
  });
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
 * kill leaves it, named for what it is.
 */
export async function writeWholeFile<T>(file: string, write: (handle: FileHandle) => Promise<T>): Promise<T> {
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
