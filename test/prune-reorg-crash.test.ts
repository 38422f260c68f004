/**
 * A kill in the middle of the deepest reorganisation a pruned node follows: the store is cut at
 * every batch the branch's import writes (its blocks, each disconnect and connect unit, a pruning
 * chunk), and each time it must reopen at a block of one chain or the other with a state equal to
 * a replay, finish the reorganisation on opening, and still hold the bodies and undo data above
 * its pruning mark.
 */
import assert from 'node:assert/strict';
import { auditChainDB } from '../ledger/audit.ts';
import { toHex } from '../ledger/bytes.ts';
import type { Block } from '../ledger/block.ts';
import { ChainDB } from '../ledger/chaindb.ts';
import { genesisBlock } from '../ledger/genesis.ts';
import { MemoryDisk, type MemoryKv } from '../ledger/kv-memory.ts';
import { Chain } from '../consensus/chain.ts';
import { realEnv } from '../node/env.ts';
import { Pruner } from '../node/pruner.ts';
import { FUNDED_KEYS, testKey, testParams, transfer } from './helpers/fixtures.ts';
import { asParent, mineChild } from './helpers/mining.ts';

const params = testParams();
const DEPTH = 8;
const MAIN = 40;
const clock = () => params.timestamp + 10_000_000;

/** Blocks paying from the funded keys, so that undoing them moves balances and nonces back. */
function chainOf(parent: Block, count: number, nonces: bigint[], miner: number): Block[] {
  const out: Block[] = [];
  let p = asParent(parent);
  for (let i = 0; i < count; i++) {
    const k = (p.height + miner) % FUNDED_KEYS.length;
    const tx = transfer(FUNDED_KEYS[k]!, testKey(100 + miner * 50 + i).address, 10n + BigInt(i), nonces[k]!++);
    const b = mineChild(params, p, [tx], { miner: testKey(miner).address });
    out.push(b);
    p = asParent(b);
  }
  return out;
}

/**
 * Opens a chain on `disk` whose writes complete a turn later; `cutAfter(n)` crashes it (as a kill
 * -9) once n more batches are on disk, and `crashed` resolves then.
 */
async function openCrashing(disk: MemoryDisk) {
  let limit = Infinity;
  let crash!: () => void;
  const crashed = new Promise<void>((resolve) => (crash = resolve));
  const kv: MemoryKv = disk.open((complete) =>
    setImmediate(() => {
      if (disk.batches < limit) return complete();
      kv.crash();
      crash();
    }),
  );
  const db = await ChainDB.open(kv, params, { onWriteFailed: () => {} });
  const chain = await Chain.open(db, { clock, reorgDepth: DEPTH, window: 4 });
  await db.flushed();
  return { db, chain, crashed, cutAfter: (n: number) => (limit = disk.batches + n) };
}

describe('a kill during the deepest reorganisation a pruned node follows', function () {
  this.timeout(120_000);

  it('reopens at a block of either chain, equal to its replay, finishes the reorganisation, and pruned nothing it needs', async () => {
    const nonces = FUNDED_KEYS.map(() => 0n);
    const old = chainOf(genesisBlock(params), MAIN, nonces, 1);
    const fork = MAIN - DEPTH;
    const branchNonces = FUNDED_KEYS.map(() => 0n);
    for (const b of old.slice(0, fork)) for (const tx of b.txs) branchNonces[FUNDED_KEYS.findIndex((k) => toHex(k.address) === tx.fromKey)]!++;
    const branch = chainOf(old[fork - 1]!, DEPTH + 1, branchNonces, 2);

    // The store before the branch arrives: the old chain, pruned at the reorg depth.
    const before = new MemoryDisk();
    {
      const db = await ChainDB.open(before.open(), params);
      const chain = await Chain.open(db, { clock, reorgDepth: DEPTH, window: 4 });
      const pruner = new Pruner(chain, realEnv, DEPTH);
      pruner.start();
      for (const b of old) assert.equal(await chain.processBlock(b), 'connected');
      await pruner.idle();
      await pruner.stop();
      // The deepest reorganisation is allowed, and pruning went as far as it may.
      assert.equal(chain.forkFloor, fork);
      assert.ok(db.history.prunedHeight >= fork - 1, `pruned to ${db.history.prunedHeight}`);
      await db.close();
    }
    const copy = () => {
      const disk = new MemoryDisk();
      for (const [k, v] of before.entries) disk.entries.set(k, { key: v.key.slice(), value: v.value.slice() });
      return disk;
    };

    // How many batches the branch's import writes, uncut.
    let written = 0;
    const whole = copy();
    {
      const { db, chain } = await openCrashing(whole);
      const start = whole.batches;
      const pruner = new Pruner(chain, realEnv, DEPTH);
      pruner.start();
      const undone: number[] = [];
      chain.on('tip', (e) => undone.push(e.disconnected.length));
      for (const b of branch) await chain.processBlock(b);
      assert.deepEqual(undone, [DEPTH], 'one reorganisation, the deepest followed');
      await pruner.idle();
      await pruner.stop();
      assert.equal(toHex(chain.tip.hash), toHex(branch.at(-1)!.header.hash));
      written = whole.batches - start;
      await db.close();
    }
    assert.ok(written > 2 * DEPTH, `the reorganisation wrote ${written} batches`);

    const oldHashes = new Set(old.map((b) => toHex(b.header.hash)));
    const branchHashes = new Set(branch.map((b) => toHex(b.header.hash)));
    for (let cut = 0; cut < written; cut++) {
      const disk = copy();
      const { chain, crashed, cutAfter } = await openCrashing(disk);
      cutAfter(cut);
      const pruner = new Pruner(chain, realEnv, DEPTH);
      pruner.start();
      // Its imports fail once the store is gone, as a killed process's would never finish.
      void (async () => {
        for (const b of branch) await chain.processBlock(b);
      })().catch(() => {});
      await crashed;

      const context = `cut after ${cut} of ${written} batches`;
      const db = await ChainDB.open(disk.open(), params);
      const stored = await db.storedTip();
      const hash = toHex(stored.hash);
      assert.ok(oldHashes.has(hash) || branchHashes.has(hash), `${context}: reopened at ${stored.height} ${hash}`);
      assert.equal((await auditChainDB(db)).height, stored.height, `${context}: the state is its replay`);
      // Opening finishes the reorganisation if the branch's blocks are stored, else stays on the old chain.
      const reopened = await Chain.open(db, { clock, reorgDepth: DEPTH, window: 4 });
      const tip = toHex(reopened.tip.hash);
      assert.ok(tip === toHex(old.at(-1)!.header.hash) || tip === toHex(branch.at(-1)!.header.hash), `${context}: opened at ${reopened.tip.height} ${tip}`);
      // Every block the node may still have to undo has its body and undo data.
      const mark = db.history.prunedHeight;
      assert.ok(mark < reopened.forkFloor, `${context}: pruned to ${mark}, the fork floor at ${reopened.forkFloor}`);
      for (let h = mark + 1; h <= reopened.tip.height; h++) {
        const at = (await db.getHashAtHeight(h))!;
        assert.ok(await db.getBlock(at), `${context}: the body at ${h}`);
        assert.ok(await db.getUndo(at), `${context}: the undo data at ${h}`);
      }
      await auditChainDB(db); // and after the reorganisation's end
      await db.close();
    }
  });
});
