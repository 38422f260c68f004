/**
 * `cairn` as a shell script or CI job drives it: its data alone on stdout, what it says to people on
 * stderr, and an exit status that tells success from failure, through real processes.
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { runCli } from './helpers/cli.ts';
import { tempDir } from './helpers/fixtures.ts';

describe('cairn driven by a script', function () {
  this.timeout(60_000);
  const dir = tempDir('cairn-scripts-');
  after(() => dir.remove());

  it('a command of subcommands given none is a usage error (status 2) on stderr, as cairn proof is: not its help on stdout with status 0', async () => {
    const [keys, genesis, proof] = await Promise.all([runCli(['keys']), runCli(['genesis']), runCli(['proof'])]);
    for (const [r, said] of [
      [keys, 'cairn: say what to do: cairn keys new, list, import or export (see cairn keys --help)\n'],
      [genesis, 'cairn: say what to do: cairn genesis new --name NAME … > genesis.json (see cairn genesis --help)\n'],
      [proof, 'cairn: say what to prove: cairn proof account ADDRESS, or cairn proof tx ID (see cairn proof --help)\n'],
    ] as const) {
      assert.equal(r.code, 2, r.stderr);
      assert.equal(r.stdout, '');
      assert.equal(r.stderr, said);
    }
  });

  it('an empty list prints no line on stdout, where a loop over its lines took "(no keys in …)" for keys; the way on is on stderr, and --json prints []', async () => {
    const keystore = join(dir.path, 'empty-keys');
    mkdirSync(keystore);
    const [human, json] = await Promise.all([runCli(['keys', 'list', '--keystore', keystore]), runCli(['keys', 'list', '--keystore', keystore, '--json'])]);
    for (const r of [human, json]) {
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /^\(no keys in .*empty-keys; cairn keys new --keystore .* makes one/);
    }
    assert.equal(human.stdout, '');
    assert.deepEqual(JSON.parse(json.stdout), []);
  });

  it('cairn help names the exit statuses the commands give: 0 success, 2 a command line that cannot run, 1 any other failure', async () => {
    const empty = join(dir.path, 'no-node');
    mkdirSync(empty);
    const [help, ok, usage, failed] = await Promise.all([runCli(['help']), runCli(['--version']), runCli(['status', '--bogus']), runCli(['status', '--datadir', empty])]);
    assert.match(help.stdout, /Exit status: 0 success, 2 a command line that cannot run as written,\s+1 any other failure\./);
    assert.deepEqual([ok.code, usage.code, failed.code], [0, 2, 1]);
    for (const r of [usage, failed]) assert.equal(r.stdout, '');
  });
});
