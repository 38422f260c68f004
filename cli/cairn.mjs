#!/usr/bin/env node
// The `cairn` executable. Cairn is TypeScript run by Node's type stripping (22.18+); when the
// `node` on PATH is older, re-run under the Node that the `node` package installed beside us.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';

const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
if (major > 22 || (major === 22 && minor >= 18)) {
  await import('./main.ts');
} else {
  let bundled;
  try {
    bundled = createRequire(import.meta.url).resolve('node/bin/node');
  } catch {
    console.error(`cairn: needs Node.js 22.18 or newer (this is ${process.versions.node}); install one, or run "npm install" to get it`);
    process.exit(1);
  }
  const result = spawnSync(bundled, [new URL('./main.ts', import.meta.url).pathname, ...process.argv.slice(2)], { stdio: 'inherit' });
  process.exit(result.status ?? 1);
}
