/**
 * A node still starting (its store open, or its coinbase key's password awaited; no rpc.json yet)
 * is told apart from none running (cli/lock-holder.ts): the holder of the store's lock, read from
 * /proc/locks, never taken.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, constants, existsSync, openSync, readdirSync, readFileSync, readlinkSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { cairnCommandIn, lockHolderPid, PASSWORD_WAIT_FILE } from '../cli/lock-holder.ts';
import { LevelKv } from '../ledger/kv-level.ts';
import { tempDir } from './helpers/fixtures.ts';
import { CAIRN_MAIN, runCli, waitFor } from './helpers/cli.ts';
import { spawnWithFaults, stopProcess } from './helpers/cluster.ts';

const NODE_FLAGS = ['--p2p-host', '127.0.0.1', '--p2p-port', '0', '--rpc-port', '0', '--http-port', '0', '--no-mdns', '--log-level', 'warn'];
const linux = process.platform === 'linux';

/**
 * Whether /proc/locks names a lock this process holds by the device and inode stat gives: Linux on
 * a local file system does; elsewhere (not Linux; an overlay file system, whose locks are listed
 * by the inode beneath) the holder is unknown and the messages stay as they were.
 */
async function locksListed(path: string): Promise<boolean> {
  if (!linux) return false;
  const kv = await LevelKv.open(path);
  try {
    return lockHolderPid(join(path, 'LOCK')) === process.pid;
  } finally {
    await kv.close();
  }
}

/** What cairn status and cairn stop say of a datadir whose node is starting (`said`), and the last line of a second node's refusal (`inUse`). */
async function namedWhileStarting(datadir: string, said: string, inUse: string): Promise<void> {
  const [status, stop, second] = await Promise.all([
    runCli(['status', '--datadir', datadir]),
    runCli(['stop', '--datadir', datadir]),
    runCli(['node', '--datadir', datadir, ...NODE_FLAGS]),
  ]);
  assert.deepEqual([status.code, status.stderr], [1, said]);
  assert.deepEqual([stop.code, stop.stderr], [1, said]);
  assert.equal(second.code, 1, second.stderr);
  assert.equal(second.stderr.trimEnd().split('\n').at(-1), inUse);
}

describe('who holds a datadir', function () {
  this.timeout(60_000);
  const dir = tempDir('cairn-lock-holder-');
  after(() => dir.remove());
  let listed = false;
  before(async () => {
    listed = await locksListed(join(dir.path, 'probe'));
    if (!listed) console.log('      SKIPPED: /proc/locks does not name this file system\'s locks as stat does (not Linux, or an overlay file system)');
  });

  it('names the cairn command a holder runs, from a checkout, the built CLI or the installed cairn (a link the kernel names)', () => {
    assert.equal(cairnCommandIn(['node', '/src/cairn/cli/main.ts', 'node', '--datadir', 'd']), 'node');
    assert.equal(cairnCommandIn(['/usr/bin/node', '/x/dist/cli/main.js', 'light']), 'light');
    assert.equal(cairnCommandIn(['node', '/usr/local/bin/cairn', 'snapshot', 'import']), 'snapshot');
    assert.equal(cairnCommandIn(['node', '/home/u/app/node_modules/.bin/cairn', 'node']), 'node');
    assert.equal(cairnCommandIn(['node', '/x/cli/cairn.mjs']), undefined, 'no command word');
    assert.equal(cairnCommandIn(['node', 'server.js', 'node']), undefined, 'not cairn');
  });

  it('reads the holder of a LevelDB lock from /proc/locks, not a waiter; none for a free lock, or without the list', async function () {
    if (!listed) this.skip(); // elsewhere the holder is unknown, and the messages are as before
    const store = join(dir.path, 'store');
    const kv = await LevelKv.open(store);
    try {
      assert.equal(lockHolderPid(join(store, 'LOCK')), process.pid);
    } finally {
      await kv.close();
    }
    assert.equal(lockHolderPid(join(store, 'LOCK')), undefined, 'released');
    assert.equal(lockHolderPid(join(dir.path, 'none', 'LOCK')), undefined);
    const kept = await LevelKv.open(store);
    try {
      // A waiter's line ("->") names the file too, and is no holder; without the list (not Linux), none.
      const list = join(dir.path, 'locks');
      const held = readFileSync('/proc/locks', 'utf8').split('\n').find((l) => l.split(/\s+/)[4] === String(process.pid))!;
      const waiter = held.replace(/^(\d+:) POSIX/, '$1 -> POSIX').replace(String(process.pid), '4242');
      writeFileSync(list, `${waiter}\n${held}\n`);
      assert.equal(lockHolderPid(join(store, 'LOCK'), list), process.pid);
      assert.equal(lockHolderPid(join(store, 'LOCK'), join(dir.path, 'no-such-list')), undefined);
    } finally {
      await kept.close();
    }
  });

  it('cairn status, cairn stop and a second node name a node still opening its store, with its pid; once started, it answers', async function () {
    if (!listed) this.skip();
    const datadir = join(dir.path, 'data');
    const starting = spawnWithFaults([CAIRN_MAIN, 'node', '--datadir', datadir, ...NODE_FLAGS], { CAIRN_TEST_HOLD: 'store-opened' });
    try {
      await waitFor('the store to be opened and held', async () => {
        if (starting.child.exitCode !== null) throw new Error(`the node exited: ${starting.log()}`);
        return starting.log().includes('store opened, held') || undefined;
      }, 30_000);
      const pid = starting.child.pid!;
      await namedWhileStarting(
        datadir,
        `cairn: the node on ${datadir} (pid ${pid}) is starting: it answers once its store is open; ask again in a moment (kill ${pid} stops it)\n`,
        `cairn: the datadir ${datadir} is in use by cairn node with pid ${pid}, still starting: wait for it or stop it (kill ${pid}), or give this one another --datadir`,
      );
      process.kill(pid, 'SIGUSR2');
      await waitFor('the node to answer', async () => ((await runCli(['status', '--datadir', datadir, '--json'])).code === 0 ? true : undefined), 30_000);
    } finally {
      await stopProcess(starting.child, 'SIGTERM');
    }
  });

  it('cairn status, cairn stop and a second node name a first --mine start waiting for its coinbase key\'s password, with its pid, not as opening its store', async function () {
    if (!listed) this.skip();
    // From the project's list: it holds the store's lock while it waits (cli/coinbase.ts, coinbaseFor),
    // and was told as opening its store, "ask again in a moment", for as long as nobody typed.
    const datadir = join(dir.path, 'mining');
    const password = join(dir.path, 'password');
    assert.equal(spawnSync('mkfifo', [password]).status, 0, 'mkfifo');
    // A FIFO as --password-file: its open waits for a writer, as a prompt waits for a person.
    const starting = spawnWithFaults([CAIRN_MAIN, 'node', '--mine', '--datadir', datadir, '--password-file', password, ...NODE_FLAGS], {});
    try {
      const pid = starting.child.pid!;
      const alive = () => {
        if (starting.child.exitCode !== null) throw new Error(`the node exited: ${starting.log()}`);
      };
      await waitFor('the node to wait for its password', async () => {
        alive();
        return existsSync(join(datadir, PASSWORD_WAIT_FILE)) || undefined;
      }, 30_000);
      await namedWhileStarting(
        datadir,
        `cairn: the node on ${datadir} (pid ${pid}) is starting, waiting for the password of its new coinbase key (asked where it was started): it answers once given one and its store is open (kill ${pid} stops it)\n`,
        `cairn: the datadir ${datadir} is in use by cairn node with pid ${pid}, still starting: waiting for the password of its new coinbase key: wait for it or stop it (kill ${pid}), or give this one another --datadir`,
      );
      // Opened for reading and writing, a FIFO's open waits for nobody (Linux): the password is
      // written, and the pipe let go once the node has it open, which then reads it to its end.
      const writer = openSync(password, constants.O_RDWR);
      try {
        writeSync(writer, 'a password\n');
        const opened = (fd: string) => {
          try {
            return readlinkSync(`/proc/${pid}/fd/${fd}`) === password;
          } catch {
            return false;
          }
        };
        await waitFor('the node to open its password file', async () => {
          alive();
          return readdirSync(`/proc/${pid}/fd`).some(opened) || undefined;
        }, 30_000);
      } finally {
        closeSync(writer);
      }
      await waitFor('the node to answer', async () => ((await runCli(['status', '--datadir', datadir, '--json'])).code === 0 ? true : undefined), 30_000);
      assert.equal(existsSync(join(datadir, PASSWORD_WAIT_FILE)), false, 'the mark is gone once the password came');
    } finally {
      await stopProcess(starting.child, 'SIGTERM');
    }
  });

  it("a light client's datadir held by another process: cairn account --light says so, not \"no light client is running\"", async function () {
    if (!listed) this.skip();
    const light = join(dir.path, 'light');
    const held = await LevelKv.open(join(light, 'lock')); // as a light client holds it while it starts
    try {
      const r = await runCli(['account', 'cairn12rqpp3a5l5vef8weqsvd42g9rzmqx4la30zrhz', '--light', '--datadir', light]);
      assert.deepEqual([r.code, r.stderr], [1, `cairn: another process (pid ${process.pid}) holds the store of ${light} (a light client still starting?), and no light client answers there yet: ask again in a moment\n`]);
    } finally {
      await held.close();
    }
  });
});
