/**
 * importBlocks (node/import-blocks.ts), the sync's import of a downloaded batch: in order, and with the
 * event loop turning between blocks even when nothing in a block's import waits on I/O.
 */
import assert from 'node:assert/strict';
import { MemoryDisk } from '../ledger/kv-memory.ts';
import { ChainDB } from '../ledger/chaindb.ts';
import { Chain } from '../consensus/chain.ts';
import { checkBlockSanity } from '../consensus/sanity.ts';
import { realEnv } from '../node/env.ts';
import { importBlocks } from '../node/import-blocks.ts';
import { testKey, testParams } from './helpers/fixtures.ts';
import { asParent, mineChain } from './helpers/mining.ts';

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
});
