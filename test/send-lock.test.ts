import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sendLockPath, withSendLock } from '../cli/send-lock.ts';
import { CairnError } from '../ledger/errors.ts';
import { tempDir } from './helpers/fixtures.ts';
import { REPO } from './helpers/cli.ts';

const ADDRESS = 'cairn12rqpp3a5l5vef8weqsvd42g9rzmqx4la30zrhz';

describe('the send lock (cli/send-lock.ts)', function () {
  this.timeout(30_000);
  const dir = tempDir('cairn-send-lock-');
  const notices: string[] = [];
  const options = { notice: (text: string) => notices.push(text) };
  let holder: ChildProcess | undefined;
  afterEach(async () => {
    notices.length = 0;
    if (holder && holder.exitCode === null && holder.signalCode === null) {
      const gone = new Promise((r) => holder!.once('close', r));
      holder.kill('SIGKILL');
      await gone;
    }
    holder = undefined;
  });
  after(() => dir.remove());

  it('a second send from the key runs only once the first has let go', async () => {
    const keystore = join(dir.path, 'order');
    mkdirSync(keystore);
    const events: string[] = [];
    let letGo!: () => void;
    let firstHolds!: () => void;
    const holding = new Promise<void>((r) => (firstHolds = r));
    const first = withSendLock(keystore, ADDRESS, options, async () => {
      events.push('first in');
      firstHolds();
      await new Promise<void>((r) => (letGo = r));
      events.push('first out');
    });
    await holding;
    const second = withSendLock(keystore, ADDRESS, options, async () => void events.push('second in'));
    // One that may not wait is refused while the first holds it, naming the holder...
    await assert.rejects(withSendLock(keystore, ADDRESS, { ...options, maxWaitMs: 0 }, async () => void events.push('third in')), (err: CairnError) => {
      assert.equal(err.code, 'SEND_LOCKED');
      assert.match(err.message, new RegExp(`^another cairn send from ${ADDRESS} \\(pid ${process.pid}\\) has held .*\\.${ADDRESS}\\.send-lock for 0 s; .*Ctrl-Z`));
      return true;
    });
    letGo();
    await Promise.all([first, second]);
    assert.deepEqual(events, ['first in', 'first out', 'second in']);
    // ... and a key of its own has a lock of its own.
    await withSendLock(keystore, 'cairn1khw92xl6qudmpnfnxp9kz8ll2sq6e7y2ppu0rk', { ...options, maxWaitMs: 0 }, async () => {
      await withSendLock(keystore, ADDRESS, { ...options, maxWaitMs: 0 }, async () => {});
    });
    assert.deepEqual(notices, []);
  });

  it('a send killed while it holds the lock leaves none behind (kill -9: no stale lock)', async () => {
    const keystore = join(dir.path, 'killed');
    mkdirSync(keystore);
    const script = `import { withSendLock } from ${JSON.stringify(join(REPO, 'cli', 'send-lock.ts'))};
await withSendLock(${JSON.stringify(keystore)}, ${JSON.stringify(ADDRESS)}, { notice: () => {} }, () => { process.stdout.write('held\\n'); return new Promise(() => setInterval(() => {}, 1000)); });`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: REPO, stdio: ['ignore', 'pipe', 'inherit'] });
    holder = child;
    const exited = new Promise((r) => child.once('close', r));
    await new Promise<void>((resolve, reject) => {
      child.stdout.setEncoding('utf8').on('data', (d: string) => d.includes('held') && resolve());
      child.once('close', (code) => reject(new Error(`the holder exited with status ${code} before it held the lock`)));
    });
    await assert.rejects(withSendLock(keystore, ADDRESS, { ...options, maxWaitMs: 0 }, async () => {}), new RegExp(`\\(pid ${child.pid}\\) has held`));
    child.kill('SIGKILL');
    await exited;
    let ran = false;
    await withSendLock(keystore, ADDRESS, { ...options, maxWaitMs: 0 }, async () => void (ran = true));
    assert.ok(ran);
    assert.deepEqual(notices, []);
  });

  it('where no lock can be made, the send goes on unlocked and says so', async () => {
    const keystore = join(dir.path, 'unlockable');
    mkdirSync(keystore);
    writeFileSync(sendLockPath(keystore, ADDRESS), 'not a lock\n');
    let ran = false;
    await withSendLock(keystore, ADDRESS, options, async () => void (ran = true));
    assert.ok(ran);
    assert.equal(notices.length, 1);
    assert.match(notices[0]!, new RegExp(`^warning: cannot lock .*\\.${ADDRESS}\\.send-lock \\(.*\\): sends from ${ADDRESS} started at once may pick the same nonce$`));
  });
});
