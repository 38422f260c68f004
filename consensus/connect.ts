import { bytesEqual, toHex } from '../ledger/bytes.ts';
import { BlockRuleError, StoreError } from '../ledger/errors.ts';
import type { BatchOp, ChainDB } from '../ledger/chaindb.ts';
import type { ChainTip } from '../ledger/chaindb-types.ts';
import type { Block } from '../ledger/block.ts';
import type { ChainParams } from '../ledger/genesis.ts';
import { applyBlock, type AccountSource, type BlockEffects, type SignatureChecker } from '../ledger/state.ts';
import { changesOfEffects, changesOfUndo } from '../ledger/smt.ts';
import { prepareTreeUpdate, updateTree, type PreparedTreeUpdate } from '../ledger/smt-update.ts';
import type { SaneBlock } from './sanity.ts';

/**
 * The state step of connecting a block (btcd's checkConnectBlock): `block` must be the child of
 * `tip`, every signature and transaction must hold against the state at `tip`, and the state
 * they leave must hash to the header's state root. Only if all of it holds is the connection
 * queued, as one unit, in the store; otherwise a typed rule error is thrown and nothing is
 * written. The caller owns the tip and moves it.
 *
 * A wrong state root is a fact about the header, not about how the body travelled: the body has
 * already matched the header's Merkle root, and the state it leaves follows from the parent's.
 * The block is invalid for good, like any other failure here.
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
  // The tree's reads go out with the state transition's: both know the accounts before their values.
  const keys = touchedKeys(db, block);
  const tree = prepareTreeUpdate(db, [...keys.values()]);
  const effects = await applyBlock(accountsFromTree(db, keys, tree), block, params, options.signatures).catch(settleFirst(tree));
  const update = await tree.finish(changesOfEffects(effects, keys));
  if (!bytesEqual(update.root, header.stateRoot)) {
    update.release?.(); // nothing of it is kept
    throw new BlockRuleError('BLOCK_BAD_STATE_ROOT', `state root ${toHex(header.stateRoot)}, but the state after the block hashes to ${toHex(update.root)}`);
  }
  db.queueConnect(block, effects, update, options.extraOps, options.blockStored);
  return effects;
}

/**
 * For a block refused by its state transition (a bad signature can refuse it before its tree
 * reads end): the refusal, once those reads have ended, so that none outlives the import lock
 * and lands in the tree's cache after the next block wrote there.
 */
function settleFirst(tree: PreparedTreeUpdate): (err: unknown) => Promise<never> {
  return async (err) => {
    await tree.settled();
    throw err;
  };
}

/**
 * The state step for a block made here, whose header is not yet known because it must carry the
 * state root the body leaves (the chain generator): the body's effects and that root are computed
 * once, `seal` makes the block with the root (header, nonce), and the block is queued as
 * connectBlock would queue it. A block made this way is one connectBlock accepts (a test imports
 * generated chains through the import path).
 */
export async function connectMadeBlock(
  db: ChainDB,
  params: ChainParams,
  tip: ChainTip,
  body: Pick<Block, 'txs' | 'coinbase'>,
  seal: (stateRoot: Uint8Array) => SaneBlock,
  options: { signatures?: SignatureChecker; extraOps?: (block: SaneBlock) => readonly BatchOp[] } = {},
): Promise<SaneBlock> {
  await db.backpressure();
  const keys = touchedKeys(db, body);
  const tree = prepareTreeUpdate(db, [...keys.values()]);
  const effects = await applyBlock(accountsFromTree(db, keys, tree), body, params, options.signatures).catch(settleFirst(tree));
  const update = await tree.finish(changesOfEffects(effects, keys));
  const block = seal(update.root);
  const { header } = block;
  if (!bytesEqual(header.prevHash, tip.hash) || header.height !== tip.height + 1 || !bytesEqual(header.stateRoot, update.root)) {
    throw new RangeError(`a made block must be the tip's child and carry the root its body leaves`);
  }
  db.queueConnect(block, effects, update, options.extraOps?.(block) ?? []);
  return block;
}

/**
 * Starts reading the state `block` will need from the store (ChainDB.prefetchState), while the
 * block before it is still connecting: its tree keys, memoised for its own connect, and the
 * stored parts of their paths.
 */
export function prefetchBlockState(db: ChainDB, block: Pick<Block, 'txs' | 'coinbase'>): void {
  db.prefetchState(touchedKeys(db, block).values());
}

/** The tree keys of every account a block touches (senders, recipients, its miner), once each, by address hex. */
function touchedKeys(db: ChainDB, block: Pick<Block, 'txs' | 'coinbase'>): Map<string, Uint8Array> {
  const keys = new Map<string, Uint8Array>();
  const add = (address: Uint8Array, hex: string) => {
    if (!keys.has(hex)) keys.set(hex, db.stateKeys.of(address, hex));
  };
  for (const tx of block.txs) {
    add(tx.from, tx.fromKey);
    add(tx.to, tx.toKey);
  }
  add(block.coinbase.to, toHex(block.coinbase.to));
  return keys;
}

/**
 * The accounts a block starts from, out of the tree update's own reads: each key's path ends at
 * its leaf, which holds the account, or says there is none. The tree at the tip and the stored
 * accounts are the same state (both written in every block's one batch), so the answers are the
 * store's; what the paths reach in memory costs no store read. On a fresh node most new
 * recipients' paths end in the top (ledger/tree-store.ts) while their accounts are in no cache.
 * The state transition asks only for the block's own accounts; if it asked for another, or the
 * tree read failed, the store would answer.
 */
function accountsFromTree(db: ChainDB, keys: ReadonlyMap<string, Uint8Array>, tree: PreparedTreeUpdate): AccountSource {
  return {
    getAccount: (address) => db.getAccount(address),
    async getAccounts(addresses, hexKeys) {
      const found = await tree.accounts();
      const treeKeys = hexKeys.map((hex) => keys.get(hex));
      if (!found || !treeKeys.every((key) => key !== undefined && found.has(key))) return db.getAccounts(addresses, hexKeys);
      return treeKeys.map((key) => found.get(key!));
    },
  };
}

/**
 * Queues the disconnection of the tip `block` with its stored undo data. The tree goes back with
 * the accounts, and must come back to `parentStateRoot` exactly: anything else is a damaged store.
 */
export async function disconnectBlock(db: ChainDB, block: Block, parentStateRoot: Uint8Array, extraOps: readonly BatchOp[] = []): Promise<void> {
  if (block.header.height === 0) throw new StoreError('STORE_CORRUPT', 'cannot disconnect the genesis block');
  const undo = await db.getUndo(block.header.hash);
  if (!undo) throw new StoreError('STORE_CORRUPT', `tip ${toHex(block.header.hash)} has no undo data`);
  const tree = await updateTree(db, changesOfUndo(undo));
  if (!bytesEqual(tree.root, parentStateRoot)) {
    tree.release?.();
    throw new StoreError('STORE_CORRUPT', `disconnecting ${toHex(block.header.hash)} leaves state root ${toHex(tree.root)}, not its parent's ${toHex(parentStateRoot)}`);
  }
  db.queueDisconnect(block, undo, tree, extraOps);
}
