/**
 * A file or directory a user named that cannot be used (cli/file-errors.ts): each command says
 * what was wrong with which path, in words, and the way on; never Node's code ("ENOENT",
 * "EISDIR") alone, nor its message with the system call.
 */
import assert from 'node:assert/strict';
import { closeSync, existsSync, mkdirSync, openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateDatadir } from '../cli/cmd-generate.ts';
import { fileReason } from '../node/file-errors.ts';
import { DEVNET_PRIVATE_KEY, runCli, type CliResult } from './helpers/cli.ts';
import { tempDir } from './helpers/fixtures.ts';

/** The one line of stderr, and the status. */
function said(r: CliResult): { code: number | null; line: string } {
  assert.doesNotMatch(r.stderr, /\bE[A-Z]{3,}\b/, r.stderr);
  return { code: r.code, line: r.stderr.trimEnd() };
}

describe('files and directories a command cannot use, through real processes', function () {
  this.timeout(60_000);
  const dir = tempDir('cairn-file-errors-');
  after(() => dir.remove());

  it('a missing file, a directory for a file, a file on a path: what and where, and the way on', async () => {
    const missing = join(dir.path, 'missing.json');
    const folder = join(dir.path, 'a-folder');
    mkdirSync(join(folder, 'rpc.json'), { recursive: true });
    const aFile = join(dir.path, 'a-file');
    writeFileSync(aFile, '');
    const key = join(dir.path, 'devnet.hex');
    writeFileSync(key, DEVNET_PRIVATE_KEY + '\n');
    const keystore = join(dir.path, 'keys');
    const passwordFile = join(dir.path, 'password');
    writeFileSync(passwordFile, 'pw\n', { mode: 0o600 });
    const datadir = join(dir.path, 'data');
    const [genesis, verify, verifyGenesis, keyFile, password, underFile, snapshotIn, generate, status] = await Promise.all([
      runCli(['init', '--datadir', datadir, '--genesis', missing]),
      runCli(['verify', folder]),
      runCli(['verify', '--genesis', missing, folder]),
      runCli(['keys', 'import', '--keystore', keystore, '--password-file', aFile, missing]),
      runCli(['keys', 'import', '--keystore', keystore, '--password-file', folder, key]),
      runCli(['keys', 'new', '--keystore', join(aFile, 'keys'), '--password-file', passwordFile]),
      runCli(['snapshot', 'import', folder, '--datadir', datadir]),
      runCli(['generate', '--datadir', join(aFile, 'chain'), '--blocks', '1']),
      runCli(['status', '--datadir', 'a-folder'], { cwd: dir.path }),
    ]);
    assert.deepEqual(said(genesis), { code: 1, line: `cairn: cannot read genesis file ${missing}: it does not exist; give --genesis the network's genesis file (cairn genesis new writes one for a network of your own)` });
    assert.deepEqual(said(verify), { code: 2, line: `cairn: cannot read ${folder}: it is a directory, not a file; give the file cairn proof wrote (cairn proof account ADDRESS > proof.json) (see cairn verify --help)` });
    assert.deepEqual(said(verifyGenesis), { code: 1, line: `cairn: cannot read genesis file ${missing}: it does not exist; give --genesis the network's genesis file (cairn genesis new writes one for a network of your own)` });
    assert.deepEqual(said(keyFile), { code: 2, line: `cairn: cannot read ${missing}: it does not exist; give the file that holds the hex private key, or - to read it from stdin (see cairn keys --help)` });
    assert.deepEqual(said(password), { code: 1, line: `cairn: cannot read password file ${folder}: it is a directory, not a file; give --password-file a file whose first line is the password` });
    assert.deepEqual(said(underFile), { code: 1, line: `cairn: cannot use keystore ${join(aFile, 'keys')}: ${aFile} is a file, not a directory; give --keystore a directory you can write (a new one is made)` });
    assert.deepEqual(said(snapshotIn), { code: 2, line: `cairn: cannot read ${folder}: it is a directory, not a file; give the file cairn snapshot export wrote (see cairn snapshot --help)` });
    assert.deepEqual(said(generate), { code: 1, line: `cairn: cannot create the datadir ${join(aFile, 'chain')}: ${aFile} is a file, not a directory; give --datadir a directory you can write` });
    // rpc.json as a directory stands for one the user may not read (root reads any file).
    assert.deepEqual(said(status), { code: 1, line: `cairn: cannot read ${join('a-folder', 'rpc.json')}: it is a directory, not a file; the node writes it for the user it runs as: run this as that user, or give --rpc URL with its token in CAIRN_RPC_TOKEN` });
  });

  it('an empty proof file, as a failed cairn proof … > FILE leaves it, is said to be that, not "not JSON"', async () => {
    const empty = join(dir.path, 'txproof.json');
    writeFileSync(empty, '');
    assert.deepEqual(said(await runCli(['verify', empty])), { code: 2, line: `cairn: ${empty} is empty, as a cairn proof … > ${empty} that failed leaves it: make it again once that command succeeds (see cairn verify --help)` });
  });

  it('snapshot export to a directory that does not exist names that directory, not the temporary file beside FILE', async () => {
    const datadir = join(dir.path, 'generated');
    await generateDatadir({ datadir, blocks: 2 });
    const r = await runCli(['snapshot', 'export', '--datadir', datadir, '--height', '1', join(dir.path, 'nowhere', 'state.snap')]);
    assert.deepEqual(said(r), { code: 2, line: `cairn: cannot write ${join(dir.path, 'nowhere', 'state.snap')}: the directory ${join(dir.path, 'nowhere')} does not exist; give a FILE in a directory you can write (see cairn snapshot --help)` });
  });

  it('an answer that cannot be written to stdout (a full disk: > /dev/full) fails the command, saying so; it was lost with status 0', async function () {
    if (!existsSync('/dev/full')) {
      console.log('      SKIPPED: no /dev/full on this system');
      this.skip(); // reported as pending, not passed
    }
    const full = openSync('/dev/full', 'w');
    try {
      const [genesis, help] = await Promise.all([runCli(['genesis', 'new', '--name', 'full-1', '--json'], { stdoutTo: full }), runCli(['help'], { stdoutTo: full })]);
      for (const r of [genesis, help]) {
        assert.equal(r.code, 1, r.stderr);
        assert.match(r.stderr, /^cairn: the answer could not be written to stdout: no space left on the device$/m);
      }
    } finally {
      closeSync(full);
    }
  });

  it('the system\'s other refusals in words, the path they name when it is not the one given', () => {
    // Not through a process: the tests may run as root, which may read anything.
    const error = (code: string, message: string, path?: string) => Object.assign(new Error(message), { code, syscall: 'open', ...(path && { path }) });
    assert.equal(fileReason(error('EACCES', "EACCES: permission denied, open '/srv/key'", '/srv/key'), '/srv/key'), 'permission denied');
    assert.equal(fileReason(error('EROFS', "EROFS: read-only file system, open '/mnt/x'"), '/mnt/x'), 'the file system is read-only');
    assert.equal(fileReason(error('ENOENT', "ENOENT: no such file or directory, open '/a/b.partial'", '/a/b.partial'), '/a/b'), '/a/b.partial does not exist');
    assert.equal(fileReason(error('EXDEV', "EXDEV: cross-device link not permitted, link 'a' -> 'b'")), 'cross-device link not permitted');
  });
});
