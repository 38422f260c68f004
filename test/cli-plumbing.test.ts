/**
 * The command line's plumbing, without a node: its defaults, its log lines, how it words a
 * failure it is handed, and the launcher that picks what to run.
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { DEFAULT_PORTS } from '../cli/args.ts';
import { tempDir } from './helpers/fixtures.ts';
import { CAIRN_BIN, runCli } from './helpers/cli.ts';

/** Writes `text` to `path` (making its folder) and dates it `seconds` after the epoch. */
function writeAt(path: string, text: string, seconds: number): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, text);
  utimesSync(path, seconds, seconds);
}

describe('cli plumbing', function () {
  this.timeout(30_000);

  describe('default ports', () => {
    it('every default port is its own: a light client beside a node (as the README runs them) takes none of the node\'s', async () => {
      const ports = Object.values(DEFAULT_PORTS);
      assert.equal(new Set(ports).size, ports.length, JSON.stringify(DEFAULT_PORTS));
      // And the help says what the code does.
      const [node, light] = await Promise.all([runCli(['node', '--help']), runCli(['light', '--help'])]);
      assert.match(node.stdout, new RegExp(`P2P on port ${DEFAULT_PORTS.p2p} .*JSON-RPC on 127\\.0\\.0\\.1:${DEFAULT_PORTS.rpc} `, 's'));
      assert.match(node.stdout, new RegExp(`http://127\\.0\\.0\\.1:${DEFAULT_PORTS.http}/`));
      assert.match(light.stdout, new RegExp(`JSON-RPC on 127\\.0\\.0\\.1:${DEFAULT_PORTS.lightRpc} `));
    });
  });

  describe('the launcher (cli/cairn.mjs)', () => {
    const dir = tempDir('cairn-launcher-');
    after(() => dir.remove());

    it('runs the build while it is newer than every source, and the sources once a file in a subfolder (node/http, …) is newer', async () => {
      // A checkout of its own: the launcher finds its root from where it lies.
      const root = dir.path;
      mkdirSync(join(root, 'cli'));
      copyFileSync(CAIRN_BIN, join(root, 'cli', 'cairn.mjs'));
      utimesSync(join(root, 'cli', 'cairn.mjs'), 1_000, 1_000); // a source too
      writeAt(join(root, 'cli', 'main.ts'), "console.log('sources');\n", 1_000);
      for (const f of ['ledger/a.ts', 'consensus/a.ts', 'node/a.ts', 'node/http/a.ts', 'node/light/a.ts']) writeAt(join(root, f), '', 1_000);
      writeAt(join(root, 'dist', 'cli', 'main.js'), "console.log('build');\n", 2_000);
      const run = async () => {
        const r = await runCli([], { script: join(root, 'cli', 'cairn.mjs') });
        assert.equal(r.code, 0, r.stderr);
        return r.stdout.trim();
      };
      assert.equal(await run(), 'build');
      utimesSync(join(root, 'node', 'http', 'a.ts'), 3_000, 3_000); // an edit under node/http
      assert.equal(await run(), 'sources');
      utimesSync(join(root, 'node', 'http', 'a.ts'), 1_000, 1_000);
      utimesSync(join(root, 'node', 'light', 'a.ts'), 3_000, 3_000);
      assert.equal(await run(), 'sources');
    });
  });
});
