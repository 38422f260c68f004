/**
 * Why a file or directory could not be used, in words: one a user named (the CLI's flags), or one
 * of the node's own beside its store (its log). Node says it as a code ("ENOENT", "EISDIR") that
 * sent a user to a search engine; each caller adds the path and the way on (which flag, which file
 * it wanted).
 */
import { statSync } from 'node:fs';
import { dirname } from 'node:path';

/** What went wrong with `path` (or the path the error names, if another), without Node's code. */
export function fileReason(err: unknown, path?: string): string {
  const e = err as NodeJS.ErrnoException;
  const at = e.path ?? path;
  switch (e.code) {
    case 'ENOENT':
      return at !== undefined && path !== undefined && at !== path ? `${at} does not exist` : 'it does not exist';
    case 'EISDIR':
      return 'it is a directory, not a file';
    case 'ENOTDIR':
      return `${(at !== undefined && fileOnTheWay(at)) || 'a directory on its path'} is a file, not a directory`;
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EROFS':
      return 'the file system is read-only';
    case 'ENOSPC':
      return 'no space left on the device';
    case 'EDQUOT':
      return 'the disk quota is used up';
    case 'ELOOP':
      return 'its symbolic links form a loop';
    case 'ENAMETOOLONG':
      return 'the name is too long';
    case 'EMFILE':
    case 'ENFILE':
      return 'too many files are open';
    case 'EIO':
      return 'the device failed to read or write it (a failing disk, or a lost network mount)';
  }
  // Anything rarer in Node's own words, without its code and system call: "EXDEV: cross-device
  // link not permitted, link 'a' -> 'b'" is "cross-device link not permitted".
  const message = err instanceof Error ? err.message : String(err);
  return /^[A-Z][A-Z0-9_]*: ([^,]+)/.exec(message)?.[1] ?? message;
}

/** `fileReason` after the path the error names, for a log line that names no file of its own (a save's temporary file, say). */
export function fileReasonAt(err: unknown): string {
  const at = (err as NodeJS.ErrnoException | undefined)?.path;
  return at === undefined ? fileReason(err) : `${at}: ${fileReason(err, at)}`;
}

/** Whether `err` is the system's (a file call's errno code), which `fileReason` puts in words; anything else is ours to pass on. */
export function isSystemError(err: unknown): err is NodeJS.ErrnoException {
  const e = err as NodeJS.ErrnoException | undefined;
  return typeof e?.syscall === 'string' || /^E[A-Z0-9]+$/.test(e?.code ?? '');
}

/** The nearest of `path` and its parents that exists and is not a directory. */
export function fileOnTheWay(path: string): string | undefined {
  for (let p = path; ; p = dirname(p)) {
    try {
      if (!statSync(p).isDirectory()) return p;
    } catch {
      // not there: its parent, then
    }
    if (dirname(p) === p) return undefined;
  }
}
