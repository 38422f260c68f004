/**
 * A mining node's coinbase key chosen once per keystore (cli/coinbase.ts): two fresh nodes on
 * datadirs of their own given one `--keystore` each found it empty and made a key, and every
 * later start of either was refused for a keystore of two.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodeAddress } from '../ledger/keys.ts';
import { coinbaseFor } from '../cli/coinbase.ts';
import { KEYSTORE_LOCK_NAME } from '../cli/keystore-lock.ts';
import { withDirLock } from '../cli/dir-lock.ts';
import { createKey, listKeys } from '../cli/keystore.ts';
import { tempDir } from './helpers/fixtures.ts';
import { DEVNET_ADDRESS, DEVNET_PRIVATE_KEY, killAll, spawnCli, waitFor } from './helpers/cli.ts';

const SETTINGS = { p2pPort: 0, rpcPort: 0 };

describe('the coinbase key of a --mine start (cli/coinbase.ts)', function () {
  this.timeout(60_000);
  const dir = tempDir('cairn-coinbase-');
  after(async () => {
    await killAll();
    dir.remove();
  });

  /** A start of a node on a datadir of its own, with `keystore`; `said` collects what it logs. */
  function start(name: string, keystore: string, passwordFile: string) {
    const datadir = join(dir.path, name);
    mkdirSync(datadir);
    const said: string[] = [];
    const run: { said: string[]; settled: boolean; coinbase: Promise<Uint8Array> } = { said, settled: false, coinbase: Promise.resolve(new Uint8Array()) };
    run.coinbase = coinbaseFor({ keystore, 'password-file': passwordFile }, datadir, { ...SETTINGS, datadir }, (level, m) => said.push(level === 'info' ? m : `${level}: ${m}`)).finally(() => (run.settled = true));
    return run;
  }

  /** Holds the keystore's lock, as a first start does from listing it to making its key, while `whileHeld` runs. */
  function holding(keystore: string, whileHeld: () => Promise<void>): Promise<void> {
    const path = join(keystore, KEYSTORE_LOCK_NAME);
    return withDirLock(path, { waiting: () => 'unused', unlockable: (reason) => assert.fail(reason) }, { notice: () => {} }, whileHeld);
  }

  const waiting = (run: ReturnType<typeof start>) =>
    waitFor('the start to say that it waits for the keystore', async () => {
      if (run.settled) await run.coinbase; // a start that did not wait has made a key, or failed: say how
      return run.said.find((m) => m.startsWith('warn: waiting for another cairn node')) ?? (run.settled ? 'settled without waiting' : undefined);
    }, 30_000);

  it('a second start finds the key the first made under the lock, and asks no password', async () => {
    const keystore = join(dir.path, 'shared-keystore');
    mkdirSync(keystore, { mode: 0o700 });
    const none = join(dir.path, 'no-such-password-file'); // read, it would fail the start
    let made = '';
    let second: ReturnType<typeof start> | undefined;
    await holding(keystore, async () => {
      second = start('second', keystore, none);
      const said = await waiting(second);
      // At warn: under --log-level warn a start that waited said nothing of why.
      assert.equal(said, `warn: waiting for another cairn node (pid ${process.pid}) to choose its coinbase key in ${keystore} first (when the keystore holds none, it makes one, asking for its password where it was started): this node then mines to that key`);
      ({ address: made } = await createKey(keystore, 'first password'));
    });
    assert.equal(encodeAddress(await second!.coinbase), made);
    assert.deepEqual(await listKeys(keystore), [made]);
    assert.ok(!second!.said.some((m) => m.startsWith('created')), 'made nothing');
  });

  it('two starts released at once make one key between them, and both mine to it', async () => {
    const keystore = join(dir.path, 'raced-keystore');
    const password = join(dir.path, 'password');
    writeFileSync(password, 'a password\n', { mode: 0o600 });
    mkdirSync(keystore, { mode: 0o700 });
    const runs: ReturnType<typeof start>[] = [];
    await holding(keystore, async () => {
      runs.push(start('a', keystore, password), start('b', keystore, password));
      for (const run of runs) await waiting(run);
    });
    const [a, b] = await Promise.all(runs.map((run) => run.coinbase));
    const keys = await listKeys(keystore);
    assert.equal(keys.length, 1, `one key: ${keys.join(', ')}`);
    assert.deepEqual([encodeAddress(a!), encodeAddress(b!)], [keys[0], keys[0]]);
    assert.equal(runs.filter((run) => run.said.includes(`created coinbase key ${keys[0]} in ${keystore}`)).length, 1);
  });

  it('cairn keys new and import wait for a start choosing its key, saying why, and add theirs after it: none comes between its look and its key', async () => {
    // A key added between a first start's look at an empty keystore and its new key left two, and
    // every later start asked for --coinbase.
    const keystore = join(dir.path, 'keys-beside-a-start');
    mkdirSync(keystore, { mode: 0o700 });
    const password = join(dir.path, 'keys-password');
    writeFileSync(password, 'a password\n', { mode: 0o600 });
    const devKey = join(dir.path, 'devnet.hex');
    writeFileSync(devKey, `${DEVNET_PRIVATE_KEY}\n`);
    let made = '';
    const commands = [spawnCli(['keys', 'new', '--keystore', keystore, '--password-file', password]), spawnCli(['keys', 'import', '--keystore', keystore, '--password-file', password, devKey])];
    await holding(keystore, async () => {
      assert.deepEqual(await listKeys(keystore), [], 'the start finds none');
      for (const command of commands) {
        let exited = false;
        void command.exited.then(() => (exited = true));
        const said = await waitFor('the keys command to say that it waits', async () => (/^waiting for .*$/m.exec(command.stderr())?.[0] ?? (exited ? `exited: ${command.stderr()}` : undefined)), 30_000);
        assert.equal(said, `waiting for a cairn node (pid ${process.pid}) choosing its coinbase key in ${keystore} (when the keystore holds none, it makes one, asking for its password where it was started): this key is added once it is done`);
      }
      assert.deepEqual(await listKeys(keystore), [], 'nothing added while the start chooses');
      ({ address: made } = await createKey(keystore, 'first password'));
    });
    const [created, imported] = await Promise.all(
      commands.map(async (command) => {
        assert.equal((await command.exited).code, 0, command.stderr());
        return command.stdout().trim();
      }),
    );
    assert.equal(imported, DEVNET_ADDRESS);
    assert.deepEqual(await listKeys(keystore), [made, created!, imported!].sort());
  });

  it('a keystore that holds its key is not locked (nothing made in it), and a new one is made before any password is asked', async () => {
    const keystore = join(dir.path, 'kept');
    const { address: kept } = await createKey(keystore, 'a password');
    const run = start('kept-node', keystore, join(dir.path, 'no-such-password-file'));
    assert.equal(encodeAddress(await run.coinbase), kept);
    assert.equal(existsSync(join(keystore, KEYSTORE_LOCK_NAME)), false);
    // A keystore that cannot be made is refused as such, not after a password for a key it cannot hold.
    const file = join(dir.path, 'a-file');
    writeFileSync(file, '');
    await assert.rejects(start('filed', file, join(dir.path, 'no-such-password-file')).coinbase, { code: 'KEYSTORE_IO', message: `keystore ${file} is a file, not a directory; give --keystore a directory of key files (cairn keys new --keystore DIR makes one, with a new key in it)` });
  });
});
