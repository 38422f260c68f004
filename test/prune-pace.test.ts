/**
 * The pruner's pace (node/pruner.ts): a node catching up, importing faster than PRUNE_PAUSE_MS,
 * prunes once the pause is over or a whole chunk may go; a node at the tip prunes at every tip.
 */
import assert from 'node:assert/strict';
import { ChainDB } from '../ledger/chaindb.ts';
import { MemoryDisk } from '../ledger/kv-memory.ts';
import { Chain } from '../consensus/chain.ts';
import { realEnv, type Env } from '../node/env.ts';
import { PRUNE_CHUNK, PRUNE_PAUSE_MS, Pruner } from '../node/pruner.ts';
import { testParams, testKey } from './helpers/fixtures.ts';
import { asParent, mineChild } from './helpers/mining.ts';

const params = testParams();
const DEPTH = 8;

/** A pruned chain whose monotonic clock and timers are the test's: nothing fires unless it says so. */
async function pacedChain() {
  const clock = { ms: 0 };
  const timers = new Set<() => void>();
  let waiting: (() => void) | undefined;
  const env: Env = {
    ...realEnv,
    monotonic: () => clock.ms,
    setTimeout: (run) => {
      timers.add(run);
      waiting?.();
      return run;
    },
    clearTimeout: (timer) => void timers.delete(timer as () => void),
  };
  const db = await ChainDB.open(new MemoryDisk().open(), params);
  const chain = await Chain.open(db, { clock: () => params.timestamp + 10_000_000, reorgDepth: DEPTH, window: 4 });
  const marks: number[] = [];
  const pruner = new Pruner(chain, env, DEPTH, (height, err) => {
    if (err) throw err;
    marks.push(height);
  });
  pruner.start();
  let parent = asParent(db.genesis);
  /** A block in, and the pruner done with it: pruned, or in a pause. */
  const connect = async () => {
    const b = mineChild(params, parent, [], { miner: testKey(70).address });
    parent = asParent(b);
    assert.equal(await chain.processBlock(b), 'connected');
    if (timers.size > 0) return;
    await new Promise<void>((resolve) => {
      waiting = resolve;
      void pruner.idle().then(resolve);
    });
  };
  return { clock, timers, marks, pruner, connect, close: () => db.close() };
}

describe('pruning pace', function () {
  it('a node catching up prunes once the pause is over, not at every block; at the tip, at every tip', async () => {
    const { clock, timers, marks, pruner, connect, close } = await pacedChain();
    // Catching up: 200 blocks within one pause. The first prune comes at once (none before it);
    // the rest wait for the pause, however many blocks come meanwhile (fewer than a chunk).
    for (let h = 1; h <= 200; h++) await connect();
    assert.deepEqual(marks, [1], 'one prune, at the first block that could go');
    assert.equal(timers.size, 1, 'the rest wait for the pause');
    clock.ms += PRUNE_PAUSE_MS;
    for (const fire of [...timers]) fire();
    await pruner.idle();
    assert.deepEqual(marks, [1, 200 - DEPTH - 1], 'then all of it in one prune');

    // At the tip: blocks further apart than the pause, each tip prunes its one block.
    for (let h = 201; h <= 205; h++) {
      clock.ms += 10 * PRUNE_PAUSE_MS;
      await connect();
      assert.equal(marks.at(-1), h - DEPTH - 1, `pruned at tip ${h}`);
    }
    assert.deepEqual(marks.slice(2), [192, 193, 194, 195, 196]);
    assert.equal(timers.size, 0);
    await pruner.stop();
    await close();
  });

  it('a node catching up prunes a whole chunk at once, without waiting for the pause', async () => {
    // However fast the imports, the store holds no more than a chunk beyond what it keeps.
    const { clock, timers, marks, pruner, connect, close } = await pacedChain();
    for (let h = 1; h <= PRUNE_CHUNK + DEPTH + 2; h++) await connect();
    assert.equal(clock.ms, 0, 'no time passed');
    assert.deepEqual(marks, [1, PRUNE_CHUNK + 1], 'at the first block, then once a whole chunk could go');
    assert.equal(timers.size, 0, 'the chunk ended the pause');
    await pruner.stop();
    await close();
  });
});
