/**
 * The background check of the history below a snapshot (node/history-check.ts): a node whose
 * state was imported from a snapshot executes blocks 1 to the snapshot's block in a store of its
 * own, reaches a verdict, keeps it, and removes that store; a block below the snapshot that breaks
 * a rule (here a signature the chain's miner never checked) is found and named; a stopped check
 * resumes where it stopped; a clock behind the history makes it wait, not call the chain invalid.
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { toHex } from '../ledger/bytes.ts';
import { ChainDB } from '../ledger/chaindb.ts';
import { StoreError } from '../ledger/errors.ts';
import { layout } from '../ledger/layout.ts';
import { genesisJson, type ChainParams } from '../ledger/genesis.ts';
import { MemoryDisk } from '../ledger/kv-memory.ts';
import { decodeTransaction, UNSIGNED_TX_BYTES, type Transaction } from '../ledger/transaction.ts';
import { Chain } from '../consensus/chain.ts';
import { checkBlockSanity, type SaneBlock } from '../consensus/sanity.ts';
import { historyText } from '../cli/cmd-inspect.ts';
import { exportSnapshot, importSnapshot } from '../cli/cmd-snapshot.ts';
import { realEnv, type Env } from '../node/env.ts';
import { HistoryCheck, historyCheckStatus, type HistoryCheckStatus } from '../node/history-check.ts';
import { InlineVerifier } from '../node/inline-verifier.ts';
import { busyError } from '../node/transport.ts';
import { AskedHeights } from '../node/asked-heights.ts';
import { FUNDED_KEYS, tempDir, testKey, testParams, transfer, uncheckedSignatures } from './helpers/fixtures.ts';
import { mineChild } from './helpers/mining.ts';

const BLOCKS = 80;
/** The snapshot of an 80-block chain, interval 20 and reorg depth 10: block 60. */
const BASE = 60;
/** The reorg depth of the node, and so of its check, whose store keeps the blocks that deep. */
const DEPTH = 10;
const BAD_HEIGHT = 7;
const clock = () => 2_000_000_000;

/** A copy of `tx` whose signature no longer verifies (its last byte changed). */
function brokenSignature(tx: Transaction): Transaction {
  const bytes = tx.bytes.slice();
  assert.ok(bytes.length > UNSIGNED_TX_BYTES);
  bytes[bytes.length - 1]! ^= 0x01;
  return decodeTransaction(bytes);
}

/**
 * A datadir holding an 80-block chain with a transfer in every block, mined by a node that checks
 * no signatures: with `badAt`, that block's transfer carries a broken signature.
 */
async function sourceChain(datadir: string, params: ChainParams, badAt?: number): Promise<void> {
  mkdirSync(datadir, { recursive: true });
  writeFileSync(join(datadir, 'genesis.json'), genesisJson(params));
  const db = await ChainDB.open(join(datadir, 'chain'), params);
  const chain = await Chain.open(db, { clock, signatures: uncheckedSignatures });
  for (let h = 1; h <= BLOCKS; h++) {
    const tx = transfer(FUNDED_KEYS[0]!, testKey(50 + (h % 7)).address, 10n, BigInt(h - 1));
    const block = mineChild(params, chain.tip, [h === badAt ? brokenSignature(tx) : tx]);
    assert.equal(await chain.processBlock(block), 'connected');
  }
  await chain.idle();
  await db.close();
}

describe('history check below a snapshot', function () {
  this.timeout(60_000);
  const dir = tempDir();
  const params = testParams({ name: 'cairn-history-check' });
  const goodSource = join(dir.path, 'good-source');
  const badSource = join(dir.path, 'bad-source');
  before(async () => {
    await sourceChain(goodSource, params);
    await sourceChain(badSource, params, BAD_HEIGHT);
  });
  /** Every check started, stopped after each test even when it failed (a running one keeps the process alive). */
  const started: HistoryCheck[] = [];
  afterEach(async () => {
    await Promise.all(started.splice(0).map((check) => check.stop()));
  });
  after(() => dir.remove());

  /** A node whose state was imported from `source`'s snapshot, checking its history from `source`'s blocks. */
  async function importedNode(source: string, name: string) {
    const file = join(dir.path, `${name}.snap`);
    assert.equal((await exportSnapshot(source, file, { interval: 20, reorgDepth: 10 })).height, BASE);
    const datadir = join(dir.path, name);
    mkdirSync(datadir);
    await importSnapshot(datadir, file, params);
    const db = await ChainDB.open(join(datadir, 'chain'), params);
    const chain = await Chain.open(db, { clock, reorgDepth: DEPTH });
    const src = await ChainDB.open(join(source, 'chain'), params);
    return { db, chain, src, disk: new MemoryDisk(), async close() { await db.close(); await src.close(); } };
  }

  /**
   * A check of `node`'s history from the source's blocks. `serveUpTo`: the peer fails every request
   * for a block above it, once the blocks up to it are imported (earlier, the download would drop
   * the batch it is fetching with the peer).
   */
  function checker(node: Awaited<ReturnType<typeof importedNode>>, o: { serveUpTo?: number; fetched?: number[]; env?: Env; logs?: string[]; busyFor?: number; providers?: () => string[]; asked?: AskedHeights; requests?: number[] } = {}): HistoryCheck {
    const check: HistoryCheck = new HistoryCheck({
      env: o.env ?? realEnv,
      chain: node.chain,
      store: { open: async () => node.disk.open(), remove: async () => node.disk.clear() },
      verifier: new InlineVerifier(),
      providers: o.providers ?? (() => ['source']),
      asked: o.asked,
      fetch: async (_peer, hashes): Promise<SaneBlock[]> => {
        o.requests?.push(hashes.length);
        if (o.busyFor !== undefined) throw busyError('source', 'blocks', o.busyFor);
        const blocks = [];
        for (const hash of hashes) {
          const block = (await node.src.getBlock(hash))!;
          if (block.header.height > (o.serveUpTo ?? Infinity)) {
            while (check.checkedHeight < o.serveUpTo!) await new Promise((resolve) => setTimeout(resolve, 10));
            throw new Error('the peer went away');
          }
          o.fetched?.push(block.header.height);
          blocks.push(checkBlockSanity(block, params));
        }
        return blocks;
      },
      blame: () => {},
      isBanned: () => false,
      syncIdle: async () => {},
      log: (_level, message) => void o.logs?.push(message),
    });
    started.push(check);
    return check;
  }

  async function verdict(node: Awaited<ReturnType<typeof importedNode>>, check: HistoryCheck): Promise<HistoryCheckStatus> {
    for (let i = 0; i < 600; i++) {
      const status = historyCheckStatus(node.db.history, check)!;
      if (status.state !== 'checking') return status;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(`no verdict: ${JSON.stringify(historyCheckStatus(node.db.history, check))}`);
  }

  it('executes blocks 1 to the snapshot block, keeps the verdict and removes its own store', async () => {
    const node = await importedNode(goodSource, 'good');
    try {
      assert.equal(node.db.history.stateBase, BASE);
      assert.deepEqual(historyCheckStatus(node.db.history, undefined), { state: 'off', height: 0, target: BASE, reason: '' });
      const fetched: number[] = [];
      const check = checker(node, { fetched });
      check.start();
      assert.deepEqual(await verdict(node, check), { state: 'valid', height: BASE, target: BASE, reason: '' });
      await check.stop();
      assert.deepEqual(fetched.sort((a, b) => a - b), Array.from({ length: BASE }, (_, i) => i + 1), 'every block below the snapshot, once');
      assert.equal(node.disk.entries.size, 0, "the check's store is removed");
      assert.deepEqual(node.db.history.historyVerdict, { valid: true, height: BASE, reason: '' });

      // Killed after keeping the verdict, before removing its store: the next start removes it, checking nothing.
      node.disk.apply([{ type: 'put', key: Uint8Array.of(1, 2, 3), value: Uint8Array.of(4) }]);
      const fetchedAgain: number[] = [];
      const again = checker(node, { fetched: fetchedAgain });
      again.start();
      await again.stop();
      assert.equal(node.disk.entries.size, 0, 'a store left behind by a kill is removed');
      assert.deepEqual(fetchedAgain, [], 'and nothing is checked again');
    } finally {
      await node.close();
    }
    // The verdict is kept: a restart does not check again.
    const db = await ChainDB.open(join(dir.path, 'good', 'chain'), params);
    try {
      assert.deepEqual(historyCheckStatus(db.history, undefined), { state: 'valid', height: BASE, target: BASE, reason: '' });
    } finally {
      await db.close();
    }
  });

  it("records its asks with the sync's, per connection, and asks a peer one block a request once its server would count a batch as asked again", async () => {
    // Since blocks below a server's in-memory window are placed by their height (407948c), the
    // server counts a history block asked again on the connection, past its allowance, as a
    // re-download: a batch of them larger than its trickle's burst would be busy for ever.
    const fresh = await importedNode(goodSource, 'asked-fresh');
    try {
      const asked = new AskedHeights();
      const requests: number[] = [];
      const check = checker(fresh, { asked, requests });
      check.start();
      assert.equal((await verdict(fresh, check)).state, 'valid');
      assert.ok(requests.some((n) => n > 1), `whole batches at first: ${JSON.stringify(requests)}`);
      // Five more asks of the same heights: 4 × 60 asked again without the check's (under the allowance of 256), 5 × 60 with them.
      for (let i = 0; i < 5; i++) await asked.counting('source', 1, BASE, Promise.resolve());
      assert.equal(asked.reDownloads('source', 1, BASE), true, "the check's asks were recorded");
    } finally {
      await fresh.close();
    }
    const node = await importedNode(goodSource, 'asked');
    try {
      const asked = new AskedHeights();
      // The sync (or an earlier round of the check) asked this connection for these heights many times over.
      for (let i = 0; i < 6; i++) await asked.counting('source', 1, BASE, Promise.resolve());
      const requests: number[] = [];
      const check = checker(node, { asked, requests });
      check.start();
      assert.equal((await verdict(node, check)).state, 'valid');
      assert.ok(requests.length >= BASE && requests.every((n) => n === 1), `one block a request: ${JSON.stringify(requests)}`);
    } finally {
      await node.close();
    }
  });

  it('names the block below the snapshot that breaks a rule', async () => {
    const node = await importedNode(badSource, 'bad');
    try {
      assert.equal(node.chain.tip.height, BASE, 'the node starts at the snapshot block, its history unexecuted');
      const check = checker(node);
      check.start();
      const status = await verdict(node, check);
      await check.stop();
      assert.equal(status.state, 'invalid');
      assert.equal(status.height, BAD_HEIGHT);
      assert.match(status.reason, /signature does not verify/);
      assert.equal(node.db.history.historyVerdict?.valid, false);
      assert.equal(node.disk.entries.size, 0);
    } finally {
      await node.close();
    }
  });

  it('prunes its store a chunk at a time, never at every block', async () => {
    // Pruned at every tip, as a node following the network is, the check held its imports for a
    // prune after every batch: a long history was checked at 0.6 to 0.75 of a sync's rate.
    const node = await importedNode(goodSource, 'chunked');
    try {
      const marks: number[] = [];
      const open = node.disk.open.bind(node.disk);
      node.disk.open = (...args) => {
        const kv = open(...args);
        const write = kv.write.bind(kv);
        kv.write = (ops) => {
          for (const op of ops) if (op.type === 'put' && toHex(op.key) === toHex(layout.pruned)) marks.push(Buffer.from(op.value).readUInt32BE());
          return write(ops);
        };
        return kv;
      };
      const check = checker(node);
      check.start();
      assert.equal((await verdict(node, check)).state, 'valid');
      await check.stop();
      assert.ok(marks.length > 0, 'pruned');
      const steps = marks.map((mark, i) => mark - (marks[i - 1] ?? 0));
      assert.ok(steps.every((step) => step >= DEPTH), `each prune takes the reorg depth's worth of blocks at least: ${marks}`);
    } finally {
      await node.close();
    }
  });

  it('a stopped check resumes from where it stopped, not from genesis', async () => {
    const node = await importedNode(goodSource, 'resumed');
    try {
      // The only peer serves the first batch (blocks 1 to 32), then goes away.
      const first = checker(node, { serveUpTo: 32 });
      first.start();
      for (let i = 0; i < 200 && first.checkedHeight < 32; i++) await new Promise((resolve) => setTimeout(resolve, 50));
      assert.equal(first.checkedHeight, 32);
      // The check's store keeps only the blocks within the reorg depth of its tip, as a pruned
      // node, and a chunk more (here the depth: it prunes a chunk at a time).
      const prunedMark = () => Buffer.from(node.disk.entries.get(toHex(layout.pruned))?.value ?? [0, 0, 0, 0]).readUInt32BE();
      for (let i = 0; i < 200 && prunedMark() < 32 - 2 * DEPTH; i++) await new Promise((resolve) => setTimeout(resolve, 50));
      assert.ok(prunedMark() >= 32 - 2 * DEPTH && prunedMark() <= 32 - DEPTH - 1, `pruned to ${prunedMark()}: more than the reorg depth below its tip, within a chunk of it`);
      await first.stop();
      assert.equal(historyCheckStatus(node.db.history, undefined)?.state, 'off', 'no verdict yet');
      assert.ok(node.disk.entries.size > 0, 'the check keeps its store to resume from');

      const fetched: number[] = [];
      const second = checker(node, { fetched });
      second.start();
      assert.equal((await verdict(node, second)).state, 'valid');
      await second.stop();
      assert.deepEqual(fetched.sort((a, b) => a - b), Array.from({ length: BASE - 32 }, (_, i) => 33 + i), 'only the blocks after where the first check stopped');
    } finally {
      await node.close();
    }
  });

  it("a store of its own that does not open (damaged, copied mid-write, another network's) is started again, not left to stop every check", async () => {
    const node = await importedNode(goodSource, 'damaged-check-store');
    try {
      // A genesis mark without its block: STORE_CORRUPT at every open.
      node.disk.apply([{ type: 'put', key: layout.genesis, value: new Uint8Array(32).fill(7) }]);
      const logs: string[] = [];
      const check = checker(node, { logs });
      check.start();
      assert.equal((await verdict(node, check)).state, 'valid');
      await check.stop();
      assert.ok(logs.some((l) => /^the history check's store cannot be used \(.*genesis block it does not hold\): the check starts again from genesis$/.test(l)), logs.join('\n'));
      assert.equal(node.disk.entries.size, 0, 'and removed once done');
    } finally {
      await node.close();
    }
  });

  for (const [failure, code, message] of [
    ['its store locked', 'STORE_LOCKED', 'the database at history-check is in use by another process'],
    // From a crash-safety review: a full disk was STORE_CORRUPT, and the store, whole, was removed.
    ['a full disk', 'STORE_DISK_FULL', 'the disk holding the database at history-check is full: free some space on it; nothing in the database is damaged'],
  ] as const) it(`a run that failed on our side (${failure}) starts again a minute later, not only at the next restart, its store kept`, async () => {
    // From a review: a failed run left the check stopped for good, its status "checking".
    const node = await importedNode(goodSource, `${code}-check-store`);
    try {
      const open = node.disk.open.bind(node.disk);
      let opens = 0;
      node.disk.open = (...args) => {
        if (opens++ === 0) throw new StoreError(code, message);
        return open(...args);
      };
      let restart: (() => void) | undefined;
      const env: Env = {
        ...realEnv,
        setTimeout: (run, ms) => {
          if (ms !== 60_000) return realEnv.setTimeout(run, ms);
          restart = run;
          return 0 as never;
        },
        clearTimeout: (timer) => timer !== 0 && realEnv.clearTimeout(timer),
      };
      const logs: string[] = [];
      const check = checker(node, { env, logs });
      check.start();
      for (let i = 0; i < 200 && !restart; i++) await new Promise((resolve) => setTimeout(resolve, 10));
      assert.ok(restart, 'a restart is set');
      assert.ok(logs.includes(`history check stopped: ${message}; it starts again in 60 s`), logs.join('\n'));
      check.start(); // a sync's idle meanwhile: not sooner
      assert.equal(opens, 1);
      restart();
      assert.equal((await verdict(node, check)).state, 'valid');
      assert.equal(opens, 2);
    } finally {
      await node.close();
    }
  });

  it('a clock behind the blocks is no verdict: the check waits for the clock and carries on', async () => {
    const node = await importedNode(goodSource, 'clock-behind');
    try {
      // Started before its clock was set (a machine without a real-time clock, before NTP): a day
      // before block 1, so every block below the snapshot is "too far ahead".
      let nowMs = (params.timestamp - 86_400) * 1000;
      const logs: string[] = [];
      let waits = 0;
      const env: Env = {
        ...realEnv,
        now: () => nowMs,
        // The check's wait before asking again (10 s): the clock is set meanwhile, and the wait cut short.
        setTimeout: (run, ms) => {
          if (ms !== 10_000) return realEnv.setTimeout(run, ms);
          waits++;
          nowMs = Date.now();
          return realEnv.setTimeout(run, 0);
        },
      };
      const check = checker(node, { env, logs });
      check.start();
      assert.deepEqual(await verdict(node, check), { state: 'valid', height: BASE, target: BASE, reason: '' }, logs.join('\n'));
      await check.stop();
      assert.equal(waits, 1, 'one wait for the clock');
      assert.ok(logs.some((l) => l.includes("ahead of this node's clock")), logs.join('\n'));
      assert.deepEqual(node.db.history.historyVerdict, { valid: true, height: BASE, reason: '' });
    } finally {
      await node.close();
    }
  });

  it('no peer keeps the blocks (every one pruned them): said once in the log and in the status, and checked once one comes', async () => {
    const node = await importedNode(goodSource, 'no-keeper');
    try {
      const logs: string[] = [];
      let keeper = false;
      // The check's waits before asking again (10 s), held until the test lets each go.
      const held: (() => void)[] = [];
      const env: Env = { ...realEnv, setTimeout: (run, ms) => (ms === 10_000 ? void held.push(run) : realEnv.setTimeout(run, ms)) };
      const check = checker(node, { env, logs, providers: () => (keeper ? ['source'] : []) });
      check.start();
      const heldWaits = async (n: number) => {
        for (let i = 0; i < 500 && held.length < n; i++) await new Promise((resolve) => setTimeout(resolve, 10));
        assert.equal(held.length, n, 'the check waits to ask again');
      };
      await heldWaits(1);
      const waiting = `waiting for a peer that keeps blocks 1 to ${BASE}: no peer connected has them (a node run with --prune-keep keeps only its last blocks)`;
      const status = historyCheckStatus(node.db.history, check)!;
      assert.deepEqual(status, { state: 'checking', height: 0, target: BASE, reason: waiting });
      assert.equal(historyText(status), `checking blocks 1 to ${BASE} in the background: 0 done (0%); ${waiting}`, 'cairn status says it too');
      held[0]!();
      await heldWaits(2);
      assert.deepEqual(logs.filter((l) => l.includes('waiting for a peer')), [`the history check is ${waiting}`], 'told once, not every 10 s');
      keeper = true;
      held[1]!();
      assert.deepEqual(await verdict(node, check), { state: 'valid', height: BASE, target: BASE, reason: '' });
    } finally {
      await node.close();
    }
  });

  it('a stop ends the check at once, without waiting out a busy provider\'s retry-after', async () => {
    const node = await importedNode(goodSource, 'busy-provider');
    try {
      // Its only provider is busy for a minute: the waits it asks for are never over here.
      const waits: number[] = [];
      const env: Env = {
        ...realEnv,
        setTimeout: (run, ms) => {
          if (ms < 60_000) return realEnv.setTimeout(run, ms);
          waits.push(ms);
          return undefined;
        },
        clearTimeout: (timer) => timer !== undefined && realEnv.clearTimeout(timer),
      };
      const check = checker(node, { env, busyFor: 60_000 });
      check.start();
      for (let i = 0; i < 200 && waits.length < 2; i++) await new Promise((resolve) => setTimeout(resolve, 10));
      assert.deepEqual(waits, [60_000, 60_000], 'both requests told to retry after a minute');
      let stopped = false;
      const stopping = check.stop().then(() => (stopped = true));
      for (let i = 0; i < 200 && !stopped; i++) await new Promise((resolve) => setTimeout(resolve, 10));
      assert.ok(stopped, 'the check stopped while its provider asked it to wait');
      await stopping;
      assert.equal(historyCheckStatus(node.db.history, undefined)?.state, 'off', 'no verdict');
    } finally {
      await node.close();
    }
  });
});
