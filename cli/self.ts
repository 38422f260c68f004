/**
 * How to tell a user to run cairn again, in a hint they can paste: "cairn" when that name on their
 * PATH is this very checkout's launcher, else the launcher's path (bin/cairn). A hint that says
 * "cairn status" to someone without cairn on PATH earns a "command not found".
 */
import { accessSync, constants, realpathSync } from 'node:fs';
import { delimiter, join, relative, isAbsolute } from 'node:path';
import { fileURLToPath } from 'node:url';

/** bin/cairn of this checkout: beside cli/ in the sources, two levels up from dist/cli/. */
function launcher(): string | undefined {
  for (const up of ['../bin/cairn', '../../bin/cairn']) {
    const path = fileURLToPath(new URL(up, import.meta.url));
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // not here
    }
  }
  return undefined;
}

function real(path: string): string | undefined {
  try {
    return realpathSync(path);
  } catch {
    return undefined;
  }
}

export function cairnCommand(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): string {
  const ours = launcher();
  if (!ours) return 'cairn';
  const target = real(ours);
  for (const dir of (env['PATH'] ?? '').split(delimiter)) {
    if (!dir) continue;
    const found = real(join(isAbsolute(dir) ? dir : join(cwd, dir), 'cairn'));
    if (found !== undefined) return found === target ? 'cairn' : ours; // the first cairn on PATH is the one that runs
  }
  const rel = relative(cwd, ours);
  return rel.startsWith('..') ? ours : rel;
}
