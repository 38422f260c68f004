/**
 * Loaded into a `cairn` process by tests (NODE_OPTIONS=--import=this file).
 *
 * CAIRN_TEST_FAULT: on SIGUSR2 it throws where nothing catches, as a bug in a timer's, an event
 * handler's or a library's callback would: `exception` (a throw in a timer callback) or
 * `rejection` (a promise rejected with nothing handling it).
 *
 * CAIRN_TEST_HANG=store-close: from SIGUSR2 on, a store's close never ends (a stop that hangs),
 * the process kept alive meanwhile as a hang on a socket or a thread keeps it.
 *
 * CAIRN_TEST_HOLD=store-open: the store's open (a long scan, a resumed install) is held until
 * SIGUSR2, after writing `store open held` to stderr. CAIRN_TEST_HOLD=store-opened: the same,
 * but with LevelDB open and its lock taken (`store opened, held`), as a long scan holds it.
 *
 * CAIRN_TEST_KILL_AFTER_WRITE=HEX: the process kills itself (SIGKILL) as soon as a batch written
 * with LevelKv.write (not the commit queue's writeLog) that holds a key starting with those bytes
 * is done: a kill at a chosen point, with that write and every earlier one committed.
 *
 * CAIRN_TEST_DISK_FULL=store: every LevelDB open fails as it does on a full disk (an IO error "No
 * space left on device" the cause of "Database failed to open"). CAIRN_TEST_DISK_FULL=NAME: a file
 * whose name starts with NAME (rpc.json: its rpc.json.tmp) cannot be opened for writing, with
 * Node's ENOSPC.
 */
import { promises as fsPromises } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { basename } from 'node:path';
import { Level } from 'level';
import { LevelKv } from '../../ledger/kv-level.ts';

const fault = process.env['CAIRN_TEST_FAULT'];
if (fault === 'exception' || fault === 'rejection') {
  process.on('SIGUSR2', () => {
    if (fault === 'exception') {
      setImmediate(() => {
        throw new TypeError("injected fault: Cannot read properties of undefined (reading 'height')");
      });
    } else {
      void Promise.reject(new Error('injected fault: a rejection nobody handles'));
    }
  });
}

if (process.env['CAIRN_TEST_HANG'] === 'store-close') {
  process.once('SIGUSR2', () => {
    LevelKv.prototype.close = () => new Promise<void>(() => void setInterval(() => {}, 60_000));
  });
}

const hold = process.env['CAIRN_TEST_HOLD'];
if (hold === 'store-open' || hold === 'store-opened') {
  const open = LevelKv.open.bind(LevelKv);
  // A listener keeps no process alive, as the open's own work would.
  const alive = setInterval(() => {}, 60_000);
  const released = new Promise<void>((resolve) => process.once('SIGUSR2', () => resolve(clearInterval(alive))));
  LevelKv.open = async (...args: Parameters<typeof LevelKv.open>) => {
    if (hold === 'store-open') {
      process.stderr.write('store open held\n');
      await released;
      return open(...args);
    }
    const opened = await open(...args);
    process.stderr.write('store opened, held\n');
    await released;
    return opened;
  };
}

const killAfter = process.env['CAIRN_TEST_KILL_AFTER_WRITE'];
if (killAfter) {
  const prefix = Buffer.from(killAfter, 'hex');
  const write = LevelKv.prototype.write;
  LevelKv.prototype.write = async function (this: LevelKv, ...args: Parameters<typeof write>) {
    await write.apply(this, args);
    if (args[0].some((op) => Buffer.from(op.key.subarray(0, prefix.length)).equals(prefix))) process.kill(process.pid, 'SIGKILL');
  };
}

const diskFull = process.env['CAIRN_TEST_DISK_FULL'];
if (diskFull === 'store') {
  // abstract-level's hook under open(), which wraps what it throws as LevelDB's own failures.
  (Level.prototype as unknown as { _open: () => Promise<void> })._open = async function (this: Level) {
    throw Object.assign(new Error(`IO error: ${this.location}/MANIFEST-000001: No space left on device`), { code: 'LEVEL_IO_ERROR' });
  };
} else if (diskFull) {
  const open = fsPromises.open;
  fsPromises.open = async (...args: Parameters<typeof open>) => {
    const [path, flags] = args;
    if (typeof path === 'string' && basename(path).startsWith(diskFull) && typeof flags === 'string' && /[wa]/.test(flags)) {
      throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', errno: -28, syscall: 'write' });
    }
    return open(...args);
  };
  syncBuiltinESMExports(); // `import { open } from 'node:fs/promises'` sees it too
}
