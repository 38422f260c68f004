/**
 * The mempool file (node/mempool-file.ts): pending transactions kept across a restart with the
 * time each first arrived, so expiry counts from then and not from the restart; a file of the
 * version before (no times) is still read; a damaged file gives what came before the damage.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Mempool } from '../ledger/mempool.ts';
import { MemoryAccounts } from '../ledger/audit.ts';
import { encodeTxBatch } from '../node/wire.ts';
import { MEMPOOL_FILE, loadMempool, saveMempool } from '../node/mempool-file.ts';
import { FUNDED_KEYS, tempDir, testKey, transfer } from './helpers/fixtures.ts';

const MAX_AGE = 3_600;
const senders = [0, 1, 2].map((i) => testKey(400 + i));
const sink = testKey(410).address;

function pool(): Mempool {
  const state = new MemoryAccounts();
  for (const k of senders) state.set(k.address, { balance: 1_000_000n, nonce: 0n });
  return new Mempool(state, { chainId: 7 }, { maxAge: MAX_AGE }, () => {});
}

describe('the mempool file', () => {
  let dir: ReturnType<typeof tempDir>;
  beforeEach(() => (dir = tempDir()));
  afterEach(() => dir.remove());

  it('keeps each transaction\'s arrival time: one that waited past the age limit while the node was down is dropped, the rest expire on their own time', async () => {
    // From a review: every transaction came back as arriving at the restart, so a node restarted
    // more often than the age limit kept a transaction for ever.
    const before = pool();
    const [old, mid, fresh] = senders.map((k) => transfer(k, sink, 1n, 0n));
    await before.add(old!, 1_000);
    await before.add(mid!, 2_000);
    await before.add(fresh!, 4_000);
    assert.equal(await saveMempool(dir.path, before), 3);
    const after = pool();
    assert.deepEqual(await loadMempool(dir.path, after, 4_700), { admitted: 2, dropped: 1 });
    assert.ok(!after.has(old!.id), 'waited 3,700 s: past the limit');
    assert.deepEqual([...after.entries()].map((e) => e.addedAt).sort(), [2_000, 4_000]);
    assert.equal(await after.expire(5_700), 1, 'the one that came at 2,000 s expires an hour after it came, not after the restart');
    assert.ok(after.has(fresh!.id));
  });

  it('reads a file of the version before (no arrival times) as arriving now', async () => {
    const txs = senders.map((k) => transfer(k, sink, 2n, 0n));
    const body = encodeTxBatch(txs);
    const head = Buffer.alloc(4);
    head.writeUInt32BE(body.length);
    writeFileSync(join(dir.path, MEMPOOL_FILE), Buffer.concat([head, body]));
    const after = pool();
    assert.deepEqual(await loadMempool(dir.path, after, 9_000), { admitted: 3, dropped: 0 });
    assert.deepEqual([...after.entries()].map((e) => e.addedAt), [9_000, 9_000, 9_000]);
  });

  it('a damaged file: what came before the damage, and the file is gone', async () => {
    const before = pool();
    for (const k of senders) await before.add(transfer(k, sink, 3n, 0n), 100);
    await saveMempool(dir.path, before);
    const file = join(dir.path, MEMPOOL_FILE);
    const whole = readFileSync(file);
    writeFileSync(file, whole.subarray(0, whole.length - 4)); // the last arrival time cut short
    const restored = await loadMempool(dir.path, pool(), 200);
    assert.deepEqual([restored.admitted, restored.dropped], [0, 0], 'one chunk, cut: nothing of it');
    assert.match(restored.problem ?? '', /mempool\.dat is damaged \(a chunk cut short\): 0 transactions read before the damage, the file removed/, 'and the node is told (it logs it): a silent loss is a mystery');
    assert.equal(existsSync(file), false);
  });

  it('a file that cannot be read: an empty mempool, the reason told, the file left as it is', async () => {
    // Before, any read error was taken as "no file": a mempool lost at a start, with no word why.
    const file = join(dir.path, MEMPOOL_FILE);
    mkdirSync(file); // EISDIR, as a root-run test cannot make a file it cannot read
    const restored = await loadMempool(dir.path, pool(), 200);
    assert.deepEqual([restored.admitted, restored.dropped], [0, 0]);
    // In words, not Node's code (EISDIR): the log line an operator reads.
    assert.match(restored.problem ?? '', /cannot read .*mempool\.dat \(it is a directory, not a file\): the mempool starts empty$/);
    assert.equal(existsSync(file), true);
    mkdirSync(join(dir.path, 'empty'));
    assert.deepEqual(await loadMempool(join(dir.path, 'empty'), pool(), 200), { admitted: 0, dropped: 0 }, 'no file is no problem');
  });
});

describe('the mempool file on a real node', function () {
  this.timeout(60_000);

  it('a start that fails (its P2P port taken) leaves the file of the last stop as it was', async () => {
    // From a review: the failed start's stop (as `cairn node` makes it, to close what did start)
    // saved the mempool the node had made but not yet restored, an empty one, over the file: the
    // transactions pending at the last clean stop were gone once the port was fixed.
    const { startNode, networkParams } = await import('./helpers/network.ts');
    const { createNode } = await import('../node/launch.ts');
    const first = await startNode(networkParams(), [], { verifyThreads: 1 });
    const taken = createServer();
    try {
      const tx = transfer(FUNDED_KEYS[0]!, sink, 5n, 0n);
      await first.node.submitTransaction(tx);
      await first.node.stop();
      await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
      const port = (taken.address() as AddressInfo).port;
      const failing = createNode({ ...first.config, listen: [`/ip4/127.0.0.1/tcp/${port}`] });
      await assert.rejects(failing.start());
      await failing.stop();
      const again = createNode(first.config);
      try {
        await again.start();
        assert.ok(again.mempool.has(tx.id), 'still pending after the failed start');
      } finally {
        await again.stop();
      }
    } finally {
      taken.close();
      first.remove();
    }
  });

  it('a save that fails (here its temporary file cannot be made) is logged, and the last saved file stays', async () => {
    // From a review: a failed save (a full disk) was dropped without a word.
    const { startNode, networkParams } = await import('./helpers/network.ts');
    const t = await startNode(networkParams(), [], { verifyThreads: 1 });
    const warnings: string[] = [];
    t.node.on('log', (level, message) => void (level === 'warn' && warnings.push(message)));
    try {
      const file = join(t.config.datadir, MEMPOOL_FILE);
      writeFileSync(file, 'the last save');
      mkdirSync(`${file}.tmp`);
      writeFileSync(join(`${file}.tmp`, 'in the way'), '');
      await t.node.stop();
      assert.ok(warnings.some((m) => m === `cannot save the mempool: ${file}.tmp: it is a directory, not a file`), warnings.join('\n'));
      assert.equal(readFileSync(file, 'utf8'), 'the last save');
    } finally {
      t.remove();
    }
  });
});
