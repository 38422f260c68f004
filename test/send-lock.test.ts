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

  it('gives up on one holder, not on a queue: its wait counts from when the lock last changed hands', async () => {
    // From a review: the wait counted every holder ahead of it, so sends queued from a script,
    // passing the lock along for longer than any one may hold it, ended in SEND_LOCKED for the
    // last of them, whose message asked whether a holder was stopped: none was.
    const keystore = join(dir.path, 'queue');
    mkdirSync(keystore);
    let t = 0;
    const entered: string[] = [];
    let letGo!: () => void;
    const first = withSendLock(keystore, ADDRESS, options, async () => {
      entered.push('first');
      await new Promise<void>((r) => (letGo = r));
    });
    await until(() => entered.length === 1, 'the first holds the lock');
    // Two wait behind it, each on a clock of ours that counts its polls; either may go next.
    let goOn!: () => void;
    const second = new Promise<void>((r) => (goOn = r));
    const waiters = ['b', 'c'].map((name) => {
      const w = { name, polls: 0, settled: false, outcome: Promise.resolve('') };
      const now = () => (w.polls++, t);
      w.outcome = withSendLock(keystore, ADDRESS, { ...options, maxWaitMs: 1_000, now }, async () => {
        entered.push(name);
        await second;
      }).then(
        () => ((w.settled = true), 'sent'),
        (err: Error) => ((w.settled = true), err.message),
      );
      return w;
    });
    const pollsOn = async (w: (typeof waiters)[number], what: string) => {
      const from = w.polls;
      await until(() => w.polls >= from + 2 || w.settled, what);
    };
    for (const w of waiters) await pollsOn(w, `${w.name} saw the first holder`);
    t = 900;
    letGo();
    await until(() => entered.length === 2, 'a waiter took the lock');
    const behind = waiters.find((w) => !entered.includes(w.name))!;
    await pollsOn(behind, 'the one behind saw the lock change hands at 900 ms');
    t = 1_500; // 1.5 s of waiting in all, 0.6 s of this holder's
    await pollsOn(behind, 'the one behind looked again at 1,500 ms');
    goOn();
    await first;
    assert.deepEqual(await Promise.all(waiters.map((w) => w.outcome)), ['sent', 'sent']);
    assert.deepEqual(entered.slice(1).sort(), ['b', 'c']);
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

/** Waits until `done()` holds, looking every few milliseconds, for at most 10 s. */
async function until(done: () => boolean, what: string): Promise<void> {
  for (const deadline = performance.now() + 10_000; !done(); ) {
    assert.ok(performance.now() < deadline, what);
    await new Promise((r) => setTimeout(r, 5));
  }
}
