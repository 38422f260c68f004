#!/usr/bin/env node
// The `cairn` executable. It runs the build in dist/ (`npm run build`, which `npm ci` runs) when
// that is newer than every source file, and the TypeScript sources through Node's type stripping
// otherwise: the build starts faster and spares each node process the type stripper (~25 MB of
// memory, measured). When the `node` on PATH is older than 22.18, it re-runs under the Node that
// the `node` package installed beside us, as a child that our signals reach (relay.mjs).
import { readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

/**
 * Whether any source the build is made from, in these folders or below them (node/http,
 * node/libp2p, node/light, …), was modified after `time` (ms): the code, and what the build copies
 * (the explorer's files, the bundled genesis.json), which the node reads beside the code it runs.
 * This runs on every call, so it stops at the first such file; reading all ~170 (in 8 folders)
 * takes about 3 ms.
 * @param {number} time
 * @param {string} [dir]
 * @param {string[]} [names]
 * @returns {boolean}
 */
function sourceNewerThan(time, dir = root, names = ['ledger', 'consensus', 'node', 'cli', 'explorer', 'genesis.json']) {
  for (const name of names) {
    const path = join(dir, name);
    let entries;
    try {
      entries = readdirSync(path, { withFileTypes: true });
    } catch {
      try {
        if (statSync(path).mtimeMs > time) return true; // a file named here (genesis.json)
      } catch {
        // neither
      }
      continue;
    }
    for (const entry of entries) {
      if (entry.isDirectory()) {
        if (sourceNewerThan(time, path, [entry.name])) return true;
      } else if (/\.(ts|js|mjs|html|css|svg)$/.test(entry.name) && statSync(join(path, entry.name)).mtimeMs > time) {
        return true;
      }
    }
  }
  return false;
}

/** dist/cli/main.js if it is up to date, else cli/main.ts (after an edit, until the next build). */
function entry() {
  const built = join(root, 'dist', 'cli', 'main.js');
  try {
    if (!sourceNewerThan(statSync(built).mtimeMs)) return built;
  } catch {
    // not built
  }
  return join(root, 'cli', 'main.ts');
}

const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
if (major > 22 || (major === 22 && minor >= 18)) {
  await import(pathToFileURL(entry()).href);
} else {
  let bundled;
  try {
    bundled = createRequire(import.meta.url).resolve('node/bin/node');
  } catch {
    console.error(`cairn: needs Node.js 22.18 or newer (this is ${process.versions.node}); install one, or run "npm install" to get it`);
    process.exit(1);
  }
  // A child that outlives us would be a node nobody can stop: relay.mjs passes our signals on.
  const { relay } = await import('./relay.mjs');
  relay(bundled, [fileURLToPath(import.meta.url), ...process.argv.slice(2)]);
}
