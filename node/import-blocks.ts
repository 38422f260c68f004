import { CairnError, StoreError } from '../ledger/errors.ts';
import type { Chain } from '../consensus/chain.ts';
import type { SaneBlock } from '../consensus/sanity.ts';
import { prefetchBlockState } from '../consensus/connect.ts';
import { InvalidChain } from './body-download.ts';
import { nextTurn, type Env } from './env.ts';

/**
 * Imports a batch of a checked header chain in order; a block that breaks a rule ends it
 * (InvalidChain). A store that fails is not the block's doing: its error goes up as it is.
 *
 * Between blocks it gives the event loop a turn (`nextTurn`). A block whose accounts and tree
 * paths are all in memory, and whose signatures were checked ahead, imports without waiting on
 * anything, so a batch would otherwise hold the loop for all of its blocks: the peers' messages,
 * RPC calls and the store's write completions wait behind it (a 32-block batch of full blocks takes
 * over a second).
 */
export async function importBlocks(chain: Chain, blocks: readonly SaneBlock[], env: Env): Promise<void> {
  for (const [i, block] of blocks.entries()) {
    if (i > 0) await nextTurn(env);
    // The next block's stored state is read while this one connects, not after it.
    const next = blocks[i + 1];
    if (next) prefetchBlockState(chain.db, next);
    try {
      await chain.processSaneBlock(block);
    } catch (err) {
      if (err instanceof CairnError && !(err instanceof StoreError)) throw new InvalidChain(err, block.header.height);
      throw err;
    }
  }
}
