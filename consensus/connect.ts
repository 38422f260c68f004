import { bytesEqual, toHex } from '../ledger/bytes.ts';
import { BlockRuleError, StoreError } from '../ledger/errors.ts';
import type { BatchOp, ChainDB, ChainTip } from '../ledger/chaindb.ts';
import type { Block } from '../ledger/block.ts';
import type { ChainParams } from '../ledger/genesis.ts';
import { applyBlock, type BlockEffects, type SignatureChecker } from '../ledger/state.ts';
import type { SaneBlock } from './sanity.ts';

/**
 * The state step of connecting a block (btcd's checkConnectBlock): `block` must be the child of
 * `tip`, and every signature and transaction must hold against the state at `tip`. Only if all
 * of it holds is the connection queued, as one unit, in the store; otherwise a typed rule error
 * is thrown and nothing is written. The caller owns the tip and moves it.
 */
export async function connectBlock(
  db: ChainDB,
  params: ChainParams,
  tip: ChainTip,
  block: SaneBlock,
  options: { signatures?: SignatureChecker; extraOps?: readonly BatchOp[]; blockStored?: boolean } = {},
): Promise<BlockEffects> {
  const { header } = block;
  if (!bytesEqual(header.prevHash, tip.hash)) {
    throw new BlockRuleError('BLOCK_BAD_PARENT', `parent ${toHex(header.prevHash)} is not the tip ${toHex(tip.hash)}`, 0);
  }
  if (header.height !== tip.height + 1) {
    throw new BlockRuleError('BLOCK_BAD_HEIGHT', `height ${header.height}, expected ${tip.height + 1}`);
  }
  await db.backpressure();
  const effects = await applyBlock(db, block, params, options.signatures);
  db.queueConnect(block, effects, options.extraOps, options.blockStored);
  return effects;
}

/** Queues the disconnection of the tip `block` with its stored undo data. */
export async function disconnectBlock(db: ChainDB, block: Block, extraOps: readonly BatchOp[] = []): Promise<void> {
  if (block.header.height === 0) throw new StoreError('STORE_CORRUPT', 'cannot disconnect the genesis block');
  const undo = await db.getUndo(block.header.hash);
  if (!undo) throw new StoreError('STORE_CORRUPT', `tip ${toHex(block.header.hash)} has no undo data`);
  db.queueDisconnect(block, undo, extraOps);
}
