/**
 * Snapshot sync between real processes (`cairn node --snapshot-sync`): a fresh node joins a
 * generated chain from a serving node's snapshot over libp2p on 127.0.0.1, killed with SIGKILL
 * once the pivot is chosen, again among the chunks, and again as it installs them; every restart
 * goes on from what the last one verified (or finishes the install as it opens its store), and
 * the last one ends at the server's tip with the same state.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, createWriteStream, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { stateDigest } from '../../ledger/audit.ts';
import { ChainDB } from '../../ledger/chaindb.ts';
import { parseGenesis } from '../../ledger/genesis.ts';
import { RpcClient } from '../../cli/rpc-client.ts';
import { generateDatadir } from '../../cli/cmd-generate.ts';
import { CAIRN_BIN, cairn, exited, stopProcess, track, waitFor } from '../helpers/cluster.ts';
import { tempDir } from '../helpers/fixtures.ts';

const BLOCKS = 1500;
const ACCOUNTS = 20_000;
const PIVOT = 1000;
const NETWORK = ['--snapshot-interval', '500', '--reorg-depth', '250'];

/** A node's log, line by line, parsed; resolves `until` with the first line it accepts. */
function logLines(child: ChildProcess, onLine: (entry: Record<string, unknown>) => void): void {
  createInterface({ input: child.stdout! }).on('line', (line) => {
    try {
      onLine(JSON.parse(line) as Record<string, unknown>);
    } catch {
      // not a JSON line
    }
  });
}

function untilLog(child: ChildProcess, what: string, accept: (entry: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    logLines(child, (entry) => accept(entry) && resolve(entry));
    child.once('exit', (code) => reject(new Error(`the node exited (${code}) before ${what}`)));
  });
}

describe('e2e: snapshot sync', function () {
  this.timeout(180_000);
  const dir = tempDir();
  const children: ChildProcess[] = [];
  after(async () => {
    for (const c of children) await stopProcess(c, 'SIGKILL');
    dir.remove();
  });

  function start(datadir: string, extra: string[]): ChildProcess {
    const args = [CAIRN_BIN, 'node', '--datadir', datadir, '--p2p-host', '127.0.0.1', '--p2p-port', '0', '--rpc-port', '0', '--no-http', '--no-mdns', '--log-level', 'debug', ...NETWORK, ...extra];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'ignore'] });
    if (process.env.CAIRN_TEST_LOGS) child.stdout!.pipe(createWriteStream(join(process.env.CAIRN_TEST_LOGS, `${datadir.split('/').pop()}-${children.length}.log`)));
    children.push(child);
    track(child);
    return child;
  }

  it('a fresh node killed as it picks the pivot, among the chunks and during the install reopens each time and finishes at the same tip and state', async () => {
    const server = join(dir.path, 'server');
    await generateDatadir({ datadir: server, blocks: BLOCKS, accounts: ACCOUNTS });
    const params = parseGenesis(readFileSync(join(server, 'genesis.json'), 'utf8'));
    const s = start(server, []);
    const made = untilLog(s, `its snapshot at ${PIVOT}`, (e) => e.msg === 'snapshot made' && e.height === PIVOT);
    const started = await untilLog(s, 'it started', (e) => e.msg === 'node started');
    const peer = `${(started.listen as string[])[0]}`;
    await made;

    const joiner = join(dir.path, 'joiner');
    mkdirSync(joiner);
    copyFileSync(join(server, 'genesis.json'), join(joiner, 'genesis.json'));
    const args = ['--snapshot-sync', '--bootstrap', peer];
    const lives: { chunksDone: number; killedAt: string; reopenedAt: number }[] = [];
    // Killed as soon as the pivot is chosen; then after a few chunks; then as it writes the state.
    const kills: [string, (e: Record<string, unknown>, seen: { chunks: number }) => boolean][] = [
      ['the pivot chosen', (e) => e.msg === 'snapshot sync'],
      ['the 4th chunk', (e, seen) => e.msg === 'snapshot chunk' && ++seen.chunks === 4],
      ['the install', (e) => e.msg === 'snapshot installing' && e.step === 'headers'],
    ];
    for (const [killedAt, when] of kills) {
      const j = start(joiner, args);
      let chunksDone = -1;
      const seen = { chunks: 0 };
      logLines(j, (e) => {
        if (e.msg === 'snapshot sync') chunksDone = Number(e.chunksDone);
      });
      await untilLog(j, killedAt, (e) => when(e, seen));
      process.kill(j.pid!, 'SIGKILL');
      await new Promise((r) => (exited(j) ? r(undefined) : j.once('exit', r)));
      // Whatever the kill interrupted, the store reopens: at genesis, or at the pivot once installed.
      const db = await ChainDB.open(join(joiner, 'chain'), params);
      const tip = await db.storedTip();
      assert.ok(tip.height === 0 || tip.height === PIVOT, `reopened at ${tip.height}`);
      await db.close();
      lives.push({ chunksDone, killedAt, reopenedAt: tip.height });
    }
    assert.equal(lives[1]!.chunksDone, 0, 'nothing verified before the first kill');
    assert.ok(lives[2]!.chunksDone >= 4, `the third life went on from the chunks the second verified: ${JSON.stringify(lives)}`);
    assert.equal(lives[2]!.reopenedAt, PIVOT, 'an install cut short is finished as the store opens');
    const j = start(joiner, args);
    await untilLog(j, 'it started', (e) => e.msg === 'node started'); // its rpc.json is this life's now
    const rpc = await RpcClient.fromDatadir(joiner);
    await waitFor('the joiner to reach the server tip', 90_000, async () => {
      const status = await rpc.call('status', {});
      return status.height === BLOCKS && status.prunedHeight === PIVOT - 1;
    });
    // Caught up, it executes the history below the pivot in the background, from the server.
    const { value: checked } = await waitFor('the joiner to check the history below its snapshot', 90_000, async () => {
      const { historyCheck } = await rpc.call('status', {});
      return historyCheck?.state === 'checking' ? undefined : historyCheck;
    });
    assert.deepEqual(checked, { state: 'valid', height: PIVOT, target: PIVOT, reason: '' });
    // The verdict is kept first, then the check's store removed (a restart in between removes it).
    await waitFor("the check's own store to be removed once it is done", 10_000, () => !existsSync(join(joiner, 'history-check')));
    const shown = await cairn(['status', '--datadir', joiner]);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, new RegExp(`history +blocks 1 to ${PIVOT} checked: all valid`), `cairn status says so:\n${shown.stdout}`);
    await stopProcess(j);
    await stopProcess(s);
    const ours = await ChainDB.open(join(joiner, 'chain'), params);
    const theirs = await ChainDB.open(join(server, 'chain'), params);
    assert.equal(ours.history.stateBase, PIVOT, 'its state began at the snapshot');
    assert.equal(await stateDigest(ours), await stateDigest(theirs), 'the same state');
    await ours.close();
    await theirs.close();
  });
});
