/**
 * The files a node keeps beside its store (node/durable-file.ts): its identity, bans and mempool
 * are replaced whole or not at all, one write after another, and what a kill left behind in an
 * older version does not stop the next start.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { createRequire, syncBuiltinESMExports } from 'node:module';
import { join } from 'node:path';
import { loadOrCreatePeerKey, PEER_KEY_FILE } from '../node/libp2p/identity.ts';
import { replaceFile, replaceFileSync, writeWholeFile } from '../node/durable-file.ts';
import { createServer } from 'node:net';
import { JsonRpcServer } from '../node/rpc.ts';
import { RPC_ENDPOINT_FILE } from '../node/rpc-types.ts';
import { tempDir } from './helpers/fixtures.ts';

describe('files kept beside the store', () => {
  let dir: ReturnType<typeof tempDir>;
  beforeEach(() => (dir = tempDir()));
  afterEach(() => dir.remove());

  it('an empty identity file (a kill between making it and writing it) gets a new key, kept from then on', async () => {
    // From a review: the key was written in place, and the file a kill left empty stopped every
    // later start ("cannot read the node identity") until someone deleted it by hand.
    const file = join(dir.path, PEER_KEY_FILE);
    writeFileSync(file, '');
    const key = await loadOrCreatePeerKey(dir.path);
    assert.ok(statSync(file).size > 0, 'the new key is written');
    assert.equal((statSync(file).mode & 0o777).toString(8), '600');
    assert.ok((await loadOrCreatePeerKey(dir.path)).equals(key), 'and read back at the next start');
  });

  it('an identity file that holds something else is refused, naming it, and left as it is', async () => {
    const file = join(dir.path, PEER_KEY_FILE);
    writeFileSync(file, 'not a key');
    await assert.rejects(loadOrCreatePeerKey(dir.path), (err: Error) => err.message.includes(file));
    assert.equal(readFileSync(file, 'utf8'), 'not a key');
  });

  it('writes to one file started together each leave it whole, the last one started winning', async () => {
    // Large enough that each is written in several pieces: two writes sharing one temporary
    // file at once interleaved them.
    const file = join(dir.path, 'data');
    const contents = [1, 2, 3, 4].map((n) => Buffer.alloc(3 << 20, n));
    await Promise.all(contents.map((c) => replaceFile(file, c)));
    assert.ok(readFileSync(file).equals(contents.at(-1)!));
    assert.equal(existsSync(`${file}.tmp`), false);
  });

  it('a write that fails keeps the file it would have replaced', async () => {
    const file = join(dir.path, 'data');
    await replaceFile(file, 'old');
    mkdirSync(`${file}.tmp`); // the temporary file cannot be made
    writeFileSync(join(`${file}.tmp`, 'x'), '');
    await assert.rejects(replaceFile(file, 'new'));
    assert.equal(readFileSync(file, 'utf8'), 'old');
  });

  it('a file written in a stream: whole or not at all, its temporary file its own, and removed when the write fails', async () => {
    const file = join(dir.path, 'out.snap');
    await writeWholeFile(file, (handle) => handle.write('old'));
    // What a kill left, under a name a write here may take next (a pid reused): passed over.
    writeFileSync(`${file}.${process.pid}.2.partial`, 'a kill left this');
    await assert.rejects(writeWholeFile(file, async (handle) => {
      await handle.write('half');
      throw new Error('the disk is full');
    }), /the disk is full/);
    assert.equal(readFileSync(file, 'utf8'), 'old', 'a failed write keeps the file it would have replaced');
    assert.equal(await writeWholeFile(file, async (handle) => (await handle.write('new')).bytesWritten), 3);
    assert.equal(readFileSync(file, 'utf8'), 'new');
    assert.deepEqual(readdirSync(dir.path).sort(), ['out.snap', `out.snap.${process.pid}.2.partial`], "no temporary file left of its own; another's left alone");
    assert.equal(readFileSync(`${file}.${process.pid}.2.partial`, 'utf8'), 'a kill left this');
  });

  it('a file written in a stream: what killed writers of it left is removed at its next write; a live writer\'s, and other files\', are not', async () => {
    // From the project's list: a kill during an export left FILE.PID.N.partial, the snapshot's size, for good.
    const file = join(dir.path, 'out.snap');
    const dead = spawnSync(process.execPath, ['-e', '']).pid!; // ended and reaped: no process has its pid
    const live = process.ppid;
    const left = [`out.snap.${dead}.1.partial`, `out.snap.${dead}.7.partial`];
    const kept = [`out.snap.${live}.3.partial`, `other.snap.${dead}.1.partial`, `out.snapshot.${dead}.1.partial`, `out.snap.${dead}.1.partial.old`];
    for (const name of [...left, ...kept]) writeFileSync(join(dir.path, name), 'a kill left this');
    await writeWholeFile(file, (handle) => handle.write('new'));
    assert.deepEqual(readdirSync(dir.path).sort(), ['out.snap', ...kept].sort());
  });

  it("a light client's saved tip is replaced whole before the call returns: written and synced, renamed, and the rename synced", () => {
    // Saved at each commit, between synchronous writes of the hashes file it must agree with.
    const fs = createRequire(import.meta.url)('node:fs') as typeof import('node:fs');
    const file = join(dir.path, 'headers.tip');
    writeFileSync(file, 'old');
    const steps: string[] = [];
    const { fsyncSync, renameSync } = fs;
    fs.fsyncSync = (fd) => (fsyncSync(fd), steps.push(fs.fstatSync(fd).isDirectory() ? 'directory synced' : 'file synced'));
    fs.renameSync = (from, to) => (renameSync(from, to), steps.push(`${String(from).slice(dir.path.length + 1)} renamed`));
    syncBuiltinESMExports();
    try {
      replaceFileSync(file, Uint8Array.of(1, 2, 3));
    } finally {
      Object.assign(fs, { fsyncSync, renameSync });
      syncBuiltinESMExports();
    }
    assert.deepEqual(steps, ['file synced', 'headers.tip.tmp renamed', 'directory synced']);
    assert.deepEqual([...readFileSync(file)], [1, 2, 3]);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.deepEqual(readdirSync(dir.path), ['headers.tip']);
  });

  it('rpc.json is written whole (mode 0600); an RPC start that cannot write it fails and leaves no port open', async () => {
    // From a review of a full disk: rpc.json was written in place (a CLI could read half a token),
    // and an RPC start that failed to write it left its server listening, unusable, until exit.
    const file = join(dir.path, RPC_ENDPOINT_FILE);
    const rpc = new JsonRpcServer({}, {}, { datadir: dir.path });
    const url = await rpc.start();
    assert.equal((JSON.parse(readFileSync(file, 'utf8')) as { url: string }).url, url);
    assert.equal((statSync(file).mode & 0o777).toString(8), '600');
    await rpc.stop();

    mkdirSync(`${file}.tmp`); // the write cannot be made
    const port = await freePort();
    const blocked = new JsonRpcServer({}, {}, { datadir: dir.path, port });
    const started = await blocked.start().then(() => true, () => false);
    if (started) await blocked.stop(); // so that a failure here cannot hold the run open
    assert.equal(started, false, 'the start fails');
    assert.equal(existsSync(file), false);
    const again = createServer();
    await new Promise<void>((listening, failed) => again.once('error', failed).listen(port, '127.0.0.1', listening));
    await new Promise((closed) => again.close(closed));
  });
});

/** A port free now on 127.0.0.1. */
async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((listening) => probe.listen(0, '127.0.0.1', listening));
  const { port } = probe.address() as { port: number };
  await new Promise((closed) => probe.close(closed));
  return port;
}
