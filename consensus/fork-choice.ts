// Step 5 of a Chain's import (consensus/chain.ts): fork choice. The blocks that could be the best
// tip, the move to the most-work valid one, and a block that fails on the way marked invalid with
// its descendants. The chain accepts blocks and owns the import lock; this decides which are main.

import type { EventEmitter } from 'node:events';
import { BlockRuleError, StoreError, TxRuleError, type CairnError } from '../ledger/errors.ts';
import type { Block } from '../ledger/block.ts';
import { ChainDB } from '../ledger/chaindb.ts';
import type { SignatureChecker } from '../ledger/state.ts';
import type { SerialQueue } from '../ledger/serial.ts';
import { INVALID, HAVE_DATA, findForkPoint, type BlockIndexEntry } from './block-index.ts';
import type { ChainIndex } from './chain-index.ts';
import type { ChainEvents } from './chain-types.ts';
import { storedBlockIsSane, type SaneBlock } from './sanity.ts';
import { connectBlock, disconnectBlock } from './connect.ts';

/** A block that failed as fork choice connected it, and why. */
export interface ConnectFailure {
  readonly entry: BlockIndexEntry;
  readonly reason: CairnError;
}

class ConnectFailed extends Error {
  readonly failure: ConnectFailure;
  constructor(failure: ConnectFailure) {
    super(failure.reason.message);
    this.failure = failure;
  }
}

/** What fork choice works on: the Chain's own parts, lent to it. */
export interface ForkChoiceParts {
  readonly db: ChainDB;
  readonly signatures: SignatureChecker | undefined;
  /** The chain's import lock, which every method here asserts. */
  readonly lock: SerialQueue;
  /** The chain's index; a function because adopting a snapshot replaces it. */
  readonly index: () => ChainIndex;
  /** Blocks the running import accepted that are not on disk yet (the Chain's `unwritten`). */
  readonly unwritten: ReadonlyMap<BlockIndexEntry, SaneBlock>;
  /** Adds an entry to the index and stores its record. */
  readonly remember: (entry: BlockIndexEntry) => Promise<void>;
  /** The chain, whose listeners hear of every block connected, disconnected or found invalid. */
  readonly events: EventEmitter<ChainEvents>;
  /** Told before the first block of a reorganisation is disconnected: the main chain is no longer a tip's until the import ends. */
  readonly reorganising: () => void;
}

export class ForkChoice {
  /** Valid entries with their block at hand that could be the best tip; all others have less work or a better child. */
  readonly candidates = new Set<BlockIndexEntry>();
  private readonly parts: ForkChoiceParts;

  constructor(parts: ForkChoiceParts) {
    this.parts = parts;
  }

  private get tip(): BlockIndexEntry {
    return this.parts.index().tip;
  }

  /**
   * The tip to move to. `incumbent`, the tip before this activation, keeps ties: a reorganisation
   * that failed part-way leaves the tip on a prefix of the failed branch, and where that prefix has
   * only as much work as the incumbent, the node goes back rather than stay on the branch it
   * joined for work that turned out invalid.
   */
  private bestCandidate(incumbent: BlockIndexEntry): BlockIndexEntry {
    const tip = this.tip;
    const holder = incumbent.isValid && incumbent.status & HAVE_DATA && incumbent.totalWork >= tip.totalWork ? incumbent : tip;
    let best = holder;
    for (const c of this.candidates) {
      if (!c.isValid || c.totalWork < tip.totalWork) {
        this.candidates.delete(c);
        continue;
      }
      // Among chains with more work than the holder's, the most work wins and then the first seen.
      const tie = c.totalWork === best.totalWork && best !== holder && c.seq < best.seq;
      if (c.totalWork > best.totalWork || tie) best = c;
    }
    return best;
  }

  /** Step 5: moves to the most-work valid chain; returns what failed on the way. Import lock. */
  async activateBestChain(): Promise<ConnectFailure[]> {
    this.parts.lock.assertHeld('activateBestChain');
    const failures: ConnectFailure[] = [];
    const incumbent = this.tip;
    for (;;) {
      // Anything but the tip has more work than it, or is the incumbent, back from a failed branch.
      const best = this.bestCandidate(incumbent);
      if (best === this.tip) return failures;
      try {
        await this.reorganizeTo(best);
      } catch (err) {
        if (!(err instanceof ConnectFailed)) throw err;
        failures.push(err.failure);
        await this.markInvalid(err.failure);
      }
    }
  }

  /** Import lock. */
  private async markInvalid({ entry, reason }: ConnectFailure): Promise<void> {
    this.parts.lock.assertHeld('markInvalid');
    entry.status |= INVALID;
    await this.parts.remember(entry);
    this.candidates.delete(entry);
    const index = this.parts.index();
    // Descendants are off the main chain (it ends below `entry`), on side branches of the window.
    for (const e of [...index.values()]) {
      if (e.height > entry.height && !index.isMain(e) && e.ancestor(entry.height) === entry) {
        this.candidates.delete(e);
        if (e.isValid) {
          e.status |= INVALID;
          await this.parts.remember(e);
        }
      }
    }
    if (entry.parent && entry.parent.isValid) this.candidates.add(entry.parent);
    this.parts.events.emit('invalid', entry, reason);
  }

  /** The block of an entry on its way to the main chain: in hand from this import, or from the store. */
  private async blockOf(entry: BlockIndexEntry): Promise<SaneBlock> {
    const inHand = this.parts.unwritten.get(entry);
    if (inHand) return inHand;
    const stored = await this.parts.db.getBlock(entry.hash);
    if (!stored) throw new StoreError('STORE_CORRUPT', `block ${entry.hashHex} is indexed as stored but missing`);
    return storedBlockIsSane(stored);
  }

  /** Import lock. */
  private async reorganizeTo(target: BlockIndexEntry): Promise<void> {
    this.parts.lock.assertHeld('reorganizeTo');
    const { db, events } = this.parts;
    const index = this.parts.index();
    const from = this.tip;
    const fork = findForkPoint(from, target);
    const disconnected: Block[] = [];
    const connected: Block[] = [];
    if (from !== fork) this.parts.reorganising();
    try {
      while (this.tip !== fork) {
        const entry = this.tip;
        const block = await this.blockOf(entry);
        // The fork is in the window (a reorganisation is never deeper), so every parent here is too.
        await disconnectBlock(db, block, entry.parent!.header.stateRoot);
        index.popMain();
        disconnected.unshift(block);
        events.emit('disconnect', block, entry);
      }
      const path: BlockIndexEntry[] = [];
      for (let e: BlockIndexEntry = target; e !== fork; e = e.parent!) path.unshift(e);
      for (const entry of path) {
        const block = await this.blockOf(entry);
        const stored = (entry.status & HAVE_DATA) !== 0;
        try {
          // A block not yet on disk goes in with its index record, in the unit of its connect.
          const record = stored ? [] : [ChainDB.indexRecordOp(entry.height, entry.hash, entry.encode(entry.status | HAVE_DATA))];
          await connectBlock(db, db.params, this.tip, block, { signatures: this.parts.signatures, extraOps: record, blockStored: stored });
          entry.status |= HAVE_DATA;
        } catch (err) {
          if (err instanceof TxRuleError || err instanceof BlockRuleError) throw new ConnectFailed({ entry, reason: err });
          throw err;
        }
        index.pushMain(entry);
        connected.push(block);
        events.emit('connect', block, entry);
      }
    } finally {
      if (disconnected.length > 0 || connected.length > 0) {
        events.emit('tip', { fork, from, to: this.tip, disconnected, connected });
      }
    }
  }
}
