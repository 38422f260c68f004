/** What ChainDB (ledger/chaindb.ts) is opened with and hands out, apart from the class itself. */
import { Writer } from './bytes.ts';
import { layout } from './layout.ts';
import type { Block } from './block.ts';
import type { FlushScheduler } from './commit-queue.ts';
import type { StoreError } from './errors.ts';

export interface ChainTip {
  readonly hash: Uint8Array;
  readonly height: number;
}

/**
 * Records kept beside the chain that follow the main chain exactly (the address index,
 * ledger/address-index.ts): what connecting or disconnecting a block adds to its unit, so an
 * index can never disagree with the block it describes, even across a kill.
 */
export interface BlockIndexer {
  /**
   * Writes the records connecting `block` adds: a put of `value` at `key`, or its deletion
   * (`value` undefined). From the block alone: a snapshot's block is indexed so at its install,
   * its state taken, not made by executing it.
   */
  connect(block: Block, write: (key: Uint8Array, value: Uint8Array | undefined) => void): void;
  /** The same for disconnecting it: the writes that take those records out again. */
  disconnect(block: Block, write: (key: Uint8Array, value: Uint8Array | undefined) => void): void;
}

export interface ChainDBOptions {
  /** When the commit queue starts writing what was queued (see FlushScheduler). */
  readonly scheduleFlush?: FlushScheduler;
  /** Whose records go into every connect and disconnect unit. */
  readonly indexers?: readonly BlockIndexer[];
  /** Tree nodes below the top kept in memory (ledger/tree-store.ts; the simulator makes it small). */
  readonly cachedTreeNodes?: number;
  /**
   * Told once when a write to the store fails (a full disk, a read-only remount): memory is then
   * ahead of the store, which takes nothing more, and whoever runs the chain must stop it.
   */
  readonly onWriteFailed?: (err: StoreError) => void;
}

export interface TxLocation {
  readonly blockHash: Uint8Array;
  readonly index: number;
}

/**
 * The transaction index records (`T`, ledger/layout.ts) of `block`: each transaction's block hash
 * and place in it. One writer for a block's connect and a snapshot's pivot at its install.
 */
export function eachTxLocation(block: Block, write: (key: Uint8Array, value: Uint8Array) => void): void {
  block.txs.forEach((tx, i) => write(layout.tx(tx.id), new Writer(36).bytes(block.header.hash).u32(i).finish()));
}
