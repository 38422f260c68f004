/**
 * `cairn` as a shell script or CI job drives it: its data alone on stdout, what it says to people on
 * stderr, and an exit status that tells success from failure, through real processes.
 */
import assert from 'node:assert/strict';
import { runCli } from './helpers/cli.ts';

describe('cairn driven by a script', function () {
  this.timeout(60_000);

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
});
