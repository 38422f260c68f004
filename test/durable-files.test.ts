/**
 * The files a node keeps beside its store (node/durable-file.ts): its identity, bans and mempool
 * are replaced whole or not at all, one write after another, and what a kill left behind in an
 * older version does not stop the next start.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadOrCreatePeerKey, PEER_KEY_FILE } from '../node/libp2p/identity.ts';
import { replaceFile } from '../node/durable-file.ts';
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
});
