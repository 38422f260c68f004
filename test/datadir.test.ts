/**
 * What a folder must be to become a datadir: empty, missing, or already Cairn's. A folder of the
 * user's own (`--datadir ~`, a project's folder) is refused, naming it, and left as it was; every
 * datadir Cairn made, whatever it holds besides, keeps working.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DatadirError, initDatadir } from '../cli/datadir.ts';
import { tempDir } from './helpers/fixtures.ts';
import { runCli, writeTestGenesis } from './helpers/cli.ts';

describe('datadir: which folders become one', function () {
  this.timeout(30_000);
  let dir: ReturnType<typeof tempDir>;
  beforeEach(() => (dir = tempDir('cairn-datadir-')));
  afterEach(() => dir.remove());

  /** A folder as a user's own: a file and a folder of theirs. */
  function usersFolder(name: string): string {
    const path = join(dir.path, name);
    mkdirSync(join(path, 'projects'), { recursive: true });
    writeFileSync(join(path, 'notes.txt'), 'mine\n');
    return path;
  }

  it('a folder of the user\'s own is refused, naming it and what to do, and left as it was (a node\'s and a light client\'s)', async () => {
    const home = usersFolder('home');
    for (const options of [{}, { store: false }]) {
      const err = await initDatadir(home, undefined, options).then(() => undefined, (e: unknown) => e);
      assert.ok(err instanceof DatadirError, String(err));
      assert.equal(err.message, `${home} is not empty and is not a Cairn datadir (it has no genesis.json, no chain store): Cairn's files would go in among its 2 entries; give --datadir a new or empty folder (a missing one is made), such as ${join(home, 'cairn')}`);
      assert.deepEqual(readdirSync(home).sort(), ['notes.txt', 'projects']);
    }
  });

  it('cairn node --datadir on such a folder: one line, exit status 1, nothing written', async () => {
    const home = usersFolder('home');
    const r = await runCli(['node', '--datadir', home, '--p2p-host', '127.0.0.1', '--p2p-port', '0', '--rpc-port', '0', '--http-port', '0', '--no-mdns']);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`^cairn: ${home} is not empty and is not a Cairn datadir .*\\n$`));
    assert.deepEqual(readdirSync(home).sort(), ['notes.txt', 'projects']);
  });

  it('a missing or empty folder, one holding only lost+found (a volume mounted there) or only a keystore made first: each made a datadir', async () => {
    const empty = join(dir.path, 'empty');
    mkdirSync(empty);
    const volume = join(dir.path, 'volume');
    mkdirSync(join(volume, 'lost+found'), { recursive: true });
    const keysFirst = join(dir.path, 'keys-first');
    mkdirSync(join(keysFirst, 'keystore'), { recursive: true });
    for (const path of [join(dir.path, 'missing', 'data'), empty, volume, keysFirst]) {
      assert.equal((await initDatadir(path)).created, true, path);
      assert.ok(readdirSync(path).includes('genesis.json'), path);
    }
  });

  it('a datadir of another network is refused with the way on: a datadir of its own, or the mistaken one moved aside', async () => {
    // A first start without --genesis made it the devnet's; the user then gives their own network.
    const data = join(dir.path, 'data');
    await initDatadir(data);
    const genesis = writeTestGenesis(dir.path, 'my-net-1');
    const err = await initDatadir(data, genesis).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof DatadirError, String(err));
    assert.match(err.message, /^\S+ already belongs to the network "cairn-devnet-1" \(genesis [0-9a-f]{64}\), not "my-net-1": /);
    assert.match(err.message, /: give "my-net-1" a --datadir of its own \(a missing one is made\), or, if \S+ was made for "cairn-devnet-1" by mistake \(a start without --genesis\), move it aside first \(keep any keys in its keystore\)$/);
    assert.deepEqual(readdirSync(data).sort(), ['chain', 'genesis.json']);
  });

  it('a datadir Cairn made stays one, whatever else it holds: the user\'s files beside it, or a chain store whose genesis copy a kill left unmade', async () => {
    const made = join(dir.path, 'made');
    await initDatadir(made);
    writeFileSync(join(made, 'notes.txt'), 'mine\n');
    assert.equal((await initDatadir(made)).created, false);
    assert.equal((await initDatadir(made, undefined, { store: false })).created, false);
    // A kill between the store's creation and the genesis copy: the store is the datadir's mark.
    const cut = join(dir.path, 'cut');
    await initDatadir(cut);
    writeFileSync(join(cut, 'notes.txt'), 'mine\n');
    rmSync(join(cut, 'genesis.json'));
    assert.equal((await initDatadir(cut)).created, true);
  });

  it('a genesis copy a kill or a power cut left empty is written again, of the network the store holds; a light client\'s must be told', async () => {
    // From a review of power cuts: the copy was never synced, and a file system that kept its
    // name but not its bytes left it empty: every later start was refused ("damaged") until
    // someone found the genesis file and put it back by hand.
    const theirs = writeTestGenesis(dir.path);
    const made = join(dir.path, 'made');
    const copy = join(made, 'genesis.json');
    await initDatadir(made, theirs);
    writeFileSync(copy, '');
    const refused = await initDatadir(made).then(() => undefined, (e: unknown) => e);
    assert.ok(refused instanceof DatadirError, String(refused));
    assert.match(refused.message, /an empty genesis\.json .*give that network's genesis file with --genesis FILE/);
    assert.equal(readFileSync(copy, 'utf8'), '', 'the bundled network is not written over the store\'s');
    assert.equal((await initDatadir(made, theirs)).params.name, 'cairn-cli-test');
    assert.equal(readFileSync(copy, 'utf8'), readFileSync(theirs, 'utf8'));
    // The bundled network's store says which network it is: its copy comes back at the next start.
    const devnet = join(dir.path, 'devnet');
    await initDatadir(devnet);
    const bundled = readFileSync(join(devnet, 'genesis.json'), 'utf8');
    writeFileSync(join(devnet, 'genesis.json'), '');
    assert.equal((await initDatadir(devnet)).params.name, 'cairn-devnet-1');
    assert.equal(readFileSync(join(devnet, 'genesis.json'), 'utf8'), bundled);
    // A light client's datadir has no store to say it.
    const light = join(dir.path, 'light');
    await initDatadir(light, theirs, { store: false });
    writeFileSync(join(light, 'genesis.json'), '');
    await assert.rejects(initDatadir(light, undefined, { store: false }), /is empty .*--genesis FILE/);
    assert.equal(readFileSync(join(light, 'genesis.json'), 'utf8'), '');
    assert.equal((await initDatadir(light, theirs, { store: false })).params.name, 'cairn-cli-test');
  });
});
