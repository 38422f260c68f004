import type { Block } from '../ledger/block.ts';
import type { CairnError } from '../ledger/errors.ts';
import type { SignatureChecker } from '../ledger/state.ts';
import type { BlockIndexEntry } from './block-index.ts';
import type { OrphanLimits } from './orphans.ts';
import type { Checkpoint } from './header-rules.ts';

// What a Chain (consensus/chain.ts) is opened with and what it tells: options, outcomes, events.

/** Seconds since the epoch. A parameter, so tests and simulations control time. */
export type Clock = () => number;

export interface ChainOptions {
  readonly clock: Clock;
  readonly signatures?: SignatureChecker;
  readonly orphanLimits?: OrphanLimits;
  /** The deepest reorganisation followed (DEFAULT_REORG_DEPTH); tests and the simulator use small ones. */
  readonly reorgDepth?: number;
  /** Main-chain blocks below the tip kept in memory when nothing needs more (DEFAULT_WINDOW). */
  readonly window?: number;
  /**
   * A block the user trusts (`cairn node --checkpoint`): no other block at its height is taken,
   * by import or header check (HEADER_CHECKPOINT), and sync takes no chain short of it (node/sync.ts).
   */
  readonly checkpoint?: Checkpoint;
  /** Milliseconds, for measuring imports only (the 'imported' event): nothing is judged by it. */
  readonly stopwatch?: () => number;
}

export type BlockOutcome =
  /** Became (part of) the main chain. */
  | 'connected'
  /** Valid so far and stored, on a branch with no more work than the main chain. */
  | 'side-branch'
  /** Waiting for its parent. */
  | 'orphan'
  | 'duplicate';

export interface ReorgEvent {
  readonly fork: BlockIndexEntry;
  readonly from: BlockIndexEntry;
  readonly to: BlockIndexEntry;
  readonly disconnected: readonly Block[];
  readonly connected: readonly Block[];
}

export interface ChainEvents {
  connect: [block: Block, entry: BlockIndexEntry];
  disconnect: [block: Block, entry: BlockIndexEntry];
  /** After every change of tip, with the blocks taken off and put on (oldest first) by it. */
  tip: [event: ReorgEvent];
  /** After a snapshot's state replaced the chain's (`adoptSnapshot`): a new tip, with no blocks to follow it by. */
  adopted: [tip: BlockIndexEntry];
  invalid: [entry: BlockIndexEntry, error: CairnError];
  /** A block's import finished with an outcome, after `ms` in the import queue (with a stopwatch). */
  imported: [block: Block, outcome: BlockOutcome, ms: number];
}
