/**
 * A light client's restarts: the chain it reopens at is the one it had, whole, however it changed
 * before (node/light/headers.ts), and however the last run ended. Killed (kill -9, a crash, the
 * power), it must reopen on a consistent chain and not lose the headers it had committed: before,
 * only a clean stop saved its tip, and the next start after a kill fetched every header from
 * genesis again (a minute and 150 MB of its peers' upload at a million headers), proving nothing
 * meanwhile.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync, openSync, rmSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { toHex } from '../ledger/bytes.ts';
import { genesisBlock } from '../ledger/genesis.ts';
import { LightHeaders, RECENT_HEADERS } from '../node/light/headers.ts';
import { withCompileCache } from './helpers/compile-cache.ts';
import { seededRandom, testParams } from './helpers/fixtures.ts';
import { waitFor } from './helpers/network.ts';
import { carol, cheapThenHeavier, extend, fullNode, names, newChain, params, unminedChild, useLightClients, waitsNeverEnd } from './helpers/light-net.ts';

const WRITER = fileURLToPath(new URL('./helpers/light-headers-writer.ts', import.meta.url));
const KILLS = 12;

/** One run of light-headers-writer.ts until SIGKILL, some commits in: its stdout lines. */
async function runUntilKilled(path: string, seed: number, commits: number, delayMs: number): Promise<string[]> {
  const child = spawn(process.execPath, [WRITER, path, String(seed)], { env: withCompileCache(), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
  const closed = new Promise<void>((resolve) => child.on('close', () => resolve()));
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the writer made no ${commits} commits in 20 s: ${out.slice(-300)} ${err}`)), 20_000);
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
        out += chunk;
        if (out.split('\ndone\n').length > commits) {
          clearTimeout(timer);
          setTimeout(resolve, delayMs);
        }
      });
      void closed.then(() => reject(new Error(`the writer exited: ${err}`)));
    });
  } finally {
    child.kill('SIGKILL'); // a writer that failed to commit in time is not left running either
    await closed;
  }
  return out.split('\n');
}

describe('light client restarts', function () {
  this.timeout(60_000);
  const lights = useLightClients('cairn-light-restart-');

  it(`its header store, killed ${KILLS} times while it stages, commits, reorganises and drops headers, reopens each time at the chain last committed (or the one being committed), every hash in place`, async () => {
    const params = testParams({ name: 'cairn-light-kill', timestamp: 1_600_000_000 });
    const genesis = genesisBlock(params).header;
    const path = join(lights.datadir, 'headers');
    const rng = seededRandom(16);
    let committed = [toHex(genesis.hash)];
    let reopenedAbove = 0;
    for (let run = 0; run < KILLS; run++) {
      const lines = await runUntilKilled(path, run, 2 + rng.int(4), rng.int(40));
      let pending: string[] | undefined;
      for (const line of lines) {
        const [word, a, b] = line.split(' ');
        if (word === 'open') assert.deepEqual([Number(a), b], [committed.length - 1, committed.at(-1)], `run ${run} opened where the last one left`);
        else if (word === 'begin') pending = [...committed.slice(0, Number(a) + 1), ...b!.split(',')];
        else if (word === 'done') [committed, pending] = [pending!, undefined];
      }
      // A restart, as the client's start: the chain committed, or the one whose commit the kill cut.
      const store = LightHeaders.open(path, genesis);
      const tip = toHex(store.tip.header.hash);
      if (pending && tip === pending.at(-1)) committed = pending;
      assert.equal(tip, committed.at(-1), `run ${run}: opened at ${store.height}, not the chain committed (${committed.length - 1})`);
      assert.equal(store.height, committed.length - 1);
      for (let h = 0; h <= store.height; h++) assert.equal(toHex(store.hashAt(h)!), committed[h], `run ${run}: the hash at ${h}`);
      assert.equal(statSync(path).size, committed.length * 32);
      if (store.height > 0) reopenedAbove++;
      await store.close();
    }
    assert.equal(reopenedAbove, KILLS);
    assert.ok(committed.length > RECENT_HEADERS, `past the headers kept whole: ${committed.length}`);
  });

  it('headers saved that do not go on from the hashes file below them (another chain\'s file, a bad disk) are not trusted: it starts over', async () => {
    const genesis = genesisBlock(params).header;
    const path = join(lights.datadir, 'headers');
    const store = new LightHeaders(path, genesis);
    const staged = store.stage();
    let parent = genesis;
    while (parent.height < RECENT_HEADERS + 100) {
      parent = unminedChild(parent, 0);
      staged.append([parent], [staged.tip.totalWork + 2n]);
    }
    store.commit(); // saved: the headers from 101 up
    await store.close();
    assert.equal((await reopened()).height, parent.height, 'as saved');
    const fd = openSync(path, 'r+');
    writeSync(fd, new Uint8Array(32), 0, 32, 100 * 32); // the hash just below them
    closeSync(fd);
    assert.equal((await reopened()).height, 0);

    async function reopened(): Promise<LightHeaders> {
      const again = LightHeaders.open(path, genesis);
      await again.close();
      return again;
    }
  });

  it('a saved tip of the whole chain reopens without the hashes file (removed): it is written again from it', async () => {
    const genesis = genesisBlock(params).header;
    const path = join(lights.datadir, 'headers');
    const store = new LightHeaders(path, genesis);
    const staged = store.stage();
    for (let parent = genesis; parent.height < 30; ) {
      parent = unminedChild(parent, 0);
      staged.append([parent], [staged.tip.totalWork + 2n]);
    }
    store.commit();
    const hashes = [...Array(31).keys()].map((h) => toHex(store.hashAt(h)!));
    await store.close();
    rmSync(path);
    const again = LightHeaders.open(path, genesis);
    assert.deepEqual([...Array(31).keys()].map((h) => toHex(again.hashAt(h)!)), hashes);
    await again.close();
    assert.equal(statSync(path).size, 31 * 32);
  });

  it('a reorganisation to a shorter chain that forks below most of the headers kept is saved, and reopens', async () => {
    // The headers kept whole after it are those from the fork's ancestors kept before it up to the
    // new tip: fewer than the window, with the heights below them gone from it. Saving took the
    // window as whole and read a header at each of those heights: a TypeError at the stop.
    const { cheap, heavier } = await cheapThenHeavier(lights.net, 1100);
    const client = await lights.start();
    const failures: string[] = [];
    client.on('log', (level, message) => level === 'warn' && failures.push(message));
    await lights.meet(client, 'cheap');
    assert.equal(client.headers.height, cheap.tip.height);
    await lights.meet(client, 'heavier');
    assert.deepEqual(failures, []);
    assert.equal(toHex(client.headers.tip.header.hash), heavier.tip.hashHex);
    const again = await lights.start(); // killed: what the commit saved
    assert.equal(toHex(again.headers.tip.header.hash), heavier.tip.hashHex);
    await client.stop();
    await again.stop();
    const cleanly = await lights.start();
    assert.equal(toHex(cleanly.headers.tip.header.hash), heavier.tip.hashHex);
  });

  it('reopens at the tip it committed, after a kill mid-way through staging a longer chain', async () => {
    const chain = await newChain();
    const blocks = [...(await extend(chain, 3, 50, true)), ...(await extend(chain, RECENT_HEADERS + 40, 51))];
    const longer = await newChain();
    for (const block of blocks) await longer.processBlock(block);
    await extend(longer, 2_100, 52);
    await fullNode(lights.net, 'full', chain);
    await fullNode(lights.net, 'cut', longer);
    const handlers = lights.net.peers.get('cut')!;
    const respond = handlers.get(names.headerRange)!;
    let answers = 0;
    handlers.set(names.headerRange, async (req, asker) => (answers++ > 0 ? { busy: true, retryAfterMs: 1_500 } : respond(req, asker)));
    const killed = await lights.start(waitsNeverEnd(1_000));
    await lights.meet(killed, 'full');
    assert.equal(killed.headers.height, chain.tip.height);
    lights.transport.connect('cut');
    await waitFor(() => answers >= 2, 10_000, 'a range staged beyond our tip, and the next answered busy');
    assert.ok(statSync(join(lights.datadir, 'headers')).size > (chain.tip.height + 1) * 32, 'staged hashes written past the tip');
    // Killed here: no stop, nothing saved at the end. A new start on the same datadir.
    const again = await lights.start();
    assert.equal(again.headers.height, chain.tip.height, 'the committed tip, not genesis');
    assert.equal(toHex(again.headers.tip.header.hash), chain.tip.hashHex);
    assert.equal(statSync(join(lights.datadir, 'headers')).size, (chain.tip.height + 1) * 32, 'the staged hashes cut off');
    for (const h of [1, 2, 500, chain.tip.height - RECENT_HEADERS, chain.tip.height]) assert.equal(toHex(again.headers.hashAt(h)!), toHex(blocks[h - 1]!.header.hash));
    await lights.meet(again, 'full');
    assert.deepEqual((await again.getAccount(carol.address)).account, { balance: 507n, nonce: 0n });
  });
});
