/**
 * `cairn` as a shell script or CI job drives it: its data alone on stdout, what it says to people on
 * stderr, and an exit status that tells success from failure, through real processes.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { generateDatadir } from '../cli/cmd-generate.ts';
import { DEVNET_ADDRESS, runCli } from './helpers/cli.ts';
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

  it('cairn account without --light, given a light client, is refused pointing to --light: its answer had no nextNonce, with status 0', async () => {
    // A light client's answers to status and getAccount, as node/light/rpc.ts gives them.
    const answers: Record<string, unknown> = {
      status: { network: 'cairn-devnet-1', unit: 'CRN', decimals: 8, headerMemoryBytes: 1024 },
      getAccount: { address: DEVNET_ADDRESS, balance: '5', nonce: '1', exists: true, block: { height: 3, hash: '00'.repeat(32) }, provenBy: '12D3KooW' },
    };
    const server = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8').on('data', (d: string) => (body += d)).on('end', () => {
        const call = JSON.parse(body) as { id: number; method: string };
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ jsonrpc: '2.0', id: call.id, result: answers[call.method] }));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
      const results = await Promise.all([runCli(['account', DEVNET_ADDRESS, '--rpc', url, '--rpc-token', 't', '--json']), runCli(['account', DEVNET_ADDRESS, '--rpc', url, '--rpc-token', 't'])]);
      for (const r of results) {
        assert.equal(r.code, 1, r.stdout);
        assert.equal(r.stdout, '');
        assert.equal(r.stderr, `cairn: the node at ${url} is a light client, which proves an account rather than holds it, and has no mempool to count a next nonce from: cairn account ${DEVNET_ADDRESS} --light --datadir DIR asks it for the proven balance and nonce\n`);
      }
    } finally {
      await new Promise((r) => server.close(r));
    }
  });

  it('snapshot export - is refused: it wrote a file named "-" and piped the line saying so on as the snapshot, with status 0', async () => {
    const datadir = join(dir.path, 'generated');
    await generateDatadir({ datadir, blocks: 2 });
    const r = await runCli(['snapshot', 'export', '--datadir', datadir, '--height', '1', '-'], { cwd: dir.path });
    assert.equal(r.code, 2, r.stdout);
    assert.equal(r.stdout, '');
    assert.equal(r.stderr, 'cairn: snapshot export takes a FILE\'s name, not - (stdout: the file is written whole, then renamed into place): give one, such as state.snap (see cairn snapshot --help)\n');
    assert.equal(existsSync(join(dir.path, '-')), false);
  });

  it('keys import with no FILE and an empty stdin (a script that left FILE out) says where it looked, as a usage error', async () => {
    const keystore = join(dir.path, 'import-keys');
    const [bare, dash] = await Promise.all([runCli(['keys', 'import', '--keystore', keystore], { input: '' }), runCli(['keys', 'import', '--keystore', keystore, '-'], { input: '\n' })]);
    assert.deepEqual([bare.code, bare.stderr], [2, 'cairn: no FILE given, and stdin was empty: give the FILE that holds the hex private key, or pipe the key in (see cairn keys --help)\n']);
    assert.deepEqual([dash.code, dash.stderr], [2, 'cairn: stdin was empty: give the FILE that holds the hex private key, or pipe the key in (see cairn keys --help)\n']);
  });

  it('keys new or import that fails before its key (no password, a key that is none) leaves no keystore behind, nor the folders made for it', async () => {
    // Made before the password is asked (the keystore's lock lives in it), an empty keystore was
    // left, and the lock in it too when the key read was none: later commands took it for one with no keys.
    const password = join(dir.path, 'undone-password');
    writeFileSync(password, 'a password\n', { mode: 0o600 });
    const notAKey = join(dir.path, 'not-a-key.hex');
    writeFileSync(notAKey, 'not a key\n');
    const [unasked, refused] = await Promise.all([
      runCli(['keys', 'new', '--keystore', join(dir.path, 'undone-new', 'keys')]),
      runCli(['keys', 'import', '--keystore', join(dir.path, 'undone-import', 'keys'), '--password-file', password, notAKey]),
    ]);
    assert.deepEqual([unasked.code, unasked.stderr], [1, 'cairn: no password: pass --password-file FILE, set CAIRN_PASSWORD, or run in a terminal to be asked\n']);
    assert.deepEqual([refused.code, refused.stderr], [1, 'cairn: a private key is 64 hex digits, optionally prefixed with 0x\n']);
    for (const left of ['undone-new', 'undone-import']) assert.equal(existsSync(join(dir.path, left)), false, left);
  });
});
