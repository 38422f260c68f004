/**
 * importBlocks (node/import-blocks.ts), the sync's import of a downloaded batch: in order, with the
 * event loop turning between blocks even when nothing in a block's import waits on I/O, and each
 * block's stored state read while the block before it connects.
 */
import assert from 'node:assert/strict';
import { MemoryDisk, MemoryKv } from '../ledger/kv-memory.ts';
import type { Transaction } from '../ledger/transaction.ts';
import { ChainDB } from '../ledger/chaindb.ts';
import { Chain } from '../consensus/chain.ts';
import { checkBlockSanity } from '../consensus/sanity.ts';
import { realEnv } from '../node/env.ts';
import { importBlocks } from '../node/import-blocks.ts';
import { FUNDED_KEYS, afterTurns, seededRandom, testKey, testParams, transfer } from './helpers/fixtures.ts';
import { asParent, mineChain, mineChild } from './helpers/mining.ts';
import { deepPairs, randomAddresses } from './helpers/deep-paths.ts';

/**
 * A store whose reads answer as of the call (a LevelDB read's snapshot) and arrive a few turns
 * later, and whose writes commit a few turns after they are made, in order: as many as `rng` says.
 */
class SlowKv extends MemoryKv {
  private readonly rng: ReturnType<typeof seededRandom>;
  reads = 0;

  constructor(seed: number) {
    const rng = seededRandom(seed);
    super(new MemoryDisk(), (complete) => void afterTurns(rng.int(4)).then(complete));
    this.rng = rng;
  }

  override async getMany(keys: readonly Uint8Array[]): Promise<(Uint8Array | undefined)[]> {
    this.reads++;
    const values = await super.getMany(keys);
    await afterTurns(this.rng.int(4));
    return values;
  }
}


const params = testParams();
const now = params.timestamp + 100_000_000;

describe('importBlocks', () => {
  it('imports a batch in order, giving the event loop a turn between blocks', async () => {
    // An in-memory store and a chain the import holds in memory: no block waits on I/O.
    const db = await ChainDB.open(new MemoryDisk().open(), params);
    try {
      const chain = await Chain.open(db, { clock: () => now });
      const blocks = mineChain(params, asParent(db.genesis), 8, { miner: testKey(1).address }).map((b) => checkBlockSanity(b, params));
      const seen: number[] = [];
      const watch = () => {
        seen.push(chain.tip.height);
        if (chain.tip.height < blocks.length) setImmediate(watch);
      };
      setImmediate(watch);
      await importBlocks(chain, blocks, realEnv);
      assert.equal(chain.tip.height, blocks.length);
      // Work queued behind the import ran while it went on, not only once it was over.
      assert.ok(seen.some((h) => h > 0 && h < blocks.length), `the loop turned at heights ${seen.join(', ')}`);
    } finally {
      await db.close();
    }
  });

  it('connects every block of a batch whose accounts lie below the tree\'s top, their paths read while the block before connects', async () => {
    // Pairs of accounts alone below the top, paid block after block; each block's state root is
    // checked as it connects, so a node read ahead that a block before it rewrote would fail it.
    const pairs = deepPairs(randomAddresses(43, 8000), 4).slice(0, 3);
    assert.equal(pairs.length, 3);
    const deep = pairs.flat().map((a) => Buffer.from(a, 'hex'));
    const alloc = [...FUNDED_KEYS.map((k) => ({ address: k.address, balance: 1_000_000n })), ...deep.map((address) => ({ address, balance: 5n }))];
    const deepParams = testParams({ alloc: alloc.sort((a, b) => Buffer.compare(a.address, b.address)) });
    const kv = new SlowKv(3);
    const db = await ChainDB.open(kv, deepParams);
    try {
      const chain = await Chain.open(db, { clock: () => deepParams.timestamp + 100_000_000 });
      const sender = FUNDED_KEYS[0]!;
      const blocks = [];
      let parent = asParent(db.genesis);
      for (let height = 1, nonce = 0n; height <= 24; height++) {
        const txs: Transaction[] = [];
        for (let i = 0; i < 1 + (height % 3); i++) txs.push(transfer(sender, deep[(height + 2 * i) % deep.length]!, 1n, nonce++, 1n, deepParams.chainId));
        const block = mineChild(deepParams, parent, txs, { miner: deep[height % deep.length] });
        blocks.push(checkBlockSanity(block, deepParams));
        parent = asParent(block);
      }
      kv.reads = 0;
      await importBlocks(chain, blocks, realEnv);
      assert.equal(chain.tip.height, blocks.length);
      assert.ok(kv.reads > 0, 'the paths were read from the store');
    } finally {
      await db.close();
    }
  });
});
