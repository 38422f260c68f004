// Steps 2–4 of a Chain's import (consensus/chain.ts): a sane block's parent, its header against
// that parent, and the block stored with its index entry (btcd's maybeAcceptBlock). The chain owns
// the import lock and the order of the steps; this decides what enters the index, and fork choice
// (step 5) which of it becomes main.

import { toHex } from '../ledger/bytes.ts';
import type { Block, BlockHeader } from '../ledger/block.ts';
import type { ChainDB } from '../ledger/chaindb.ts';
import type { SerialQueue } from '../ledger/serial.ts';
import { BlockIndexEntry, HAVE_DATA, INVALID, decodeIndexRecord, medianTimePast } from './block-index.ts';
import { MEDIAN_SPAN, type ChainIndex } from './chain-index.ts';
import { checkHeaderContext, type Checkpoint } from './header-rules.ts';
import { ConsensusError } from './errors.ts';
import type { BlockOutcome, Clock } from './chain-types.ts';
import type { OrphanPool } from './orphans.ts';
import type { SaneBlock } from './sanity.ts';

/** What acceptance works on: the Chain's own parts, lent to it. */
export interface AcceptParts {
  readonly db: ChainDB;
  readonly clock: Clock;
  readonly checkpoint: Checkpoint | undefined;
  /** The chain's import lock, which the steps that write assert. */
  readonly lock: SerialQueue;
  /** The chain's index; a function because adopting a snapshot replaces it. */
  readonly index: () => ChainIndex;
  readonly orphans: OrphanPool;
  /** Fork choice's candidates for best tip. */
  readonly candidates: Set<BlockIndexEntry>;
  /** Blocks this import accepted that are not on disk yet (the Chain's `unwritten`). */
  readonly unwritten: Map<BlockIndexEntry, SaneBlock>;
  /** Adds an entry to the index and stores its record. */
  readonly remember: (entry: BlockIndexEntry) => Promise<void>;
}

export class BlockAcceptance {
  private readonly parts: AcceptParts;

  constructor(parts: AcceptParts) {
    this.parts = parts;
  }

  /** Step 3 for a header alone, importing nothing (Chain.judgeHeader). */
  judgeHeader(header: BlockHeader): 'tip' | 'known' | 'unknown' {
    const index = this.parts.index();
    const parent = index.get(header.prevHash);
    if (!parent) return 'unknown';
    this.checkContext(header, parent);
    if (!parent.isValid) throw new ConsensusError('BLOCK_PARENT_INVALID', `parent ${parent.hashHex} is invalid`);
    return parent === index.tip ? 'tip' : 'known';
  }

  /** The outcome for a block seen before, without checking it again; below the window, from its stored record. */
  async known(block: Block): Promise<BlockOutcome | undefined> {
    const { db, orphans } = this.parts;
    const index = this.parts.index();
    const { hash, height } = block.header;
    let status = index.get(hash)?.status;
    if (status === undefined && height < index.bottom) {
      const record = await db.history.record(height, hash);
      status = record && decodeIndexRecord(record).status;
    }
    if (status !== undefined && status & INVALID) throw new ConsensusError('BLOCK_KNOWN_INVALID', `block ${toHex(hash)} is known to be invalid`);
    return status !== undefined || orphans.has(hash) ? 'duplicate' : undefined;
  }

  /**
   * Steps 2–4. Returns the new index entry (a candidate for fork choice), or undefined for an
   * orphan. Import lock.
   */
  async accept(block: SaneBlock): Promise<BlockIndexEntry | undefined> {
    const { db, lock, orphans, candidates, unwritten } = this.parts;
    lock.assertHeld('accept');
    const index = this.parts.index();
    const { header } = block;
    const floor = index.forkFloor;
    const below = header.height - 1;
    if (below >= floor && below - MEDIAN_SPAN < index.bottom && (below === 0 || (await db.history.record(below, header.prevHash)))) {
      // Its parent is stored below the window (a fork deeper than the window but within the
      // reorg depth): bring that part of the chain back from the store. Only for a parent that
      // exists, so that made-up blocks cannot make us load the window again and again.
      await index.ensure(db, below - MEDIAN_SPAN);
    }
    const parent = index.get(header.prevHash);
    if (parent ? parent.height < floor : header.height - 1 < floor) {
      // Its parent is too deep to reorganise to (or unknown that deep): it can never become ours.
      throw new ConsensusError('BLOCK_FORK_TOO_DEEP', `block ${toHex(header.hash)} at ${header.height} forks below height ${floor}, deeper than the ${index.reorgDepth} blocks this node reorganises`, 0);
    }
    if (!parent) {
      orphans.add(block, this.parts.clock());
      return undefined;
    }
    const entry = new BlockIndexEntry(header, parent, 0, index.nextSeq++);
    // Context failures are cheap to re-check and cheap to forge (a header may claim an easy
    // target), so they are refused without a trace: remembering them would let junk fill the disk.
    this.checkContext(header, parent);
    if (!parent.isValid) {
      // Real work at the real target built on an invalid block: worth remembering.
      entry.status = INVALID;
      await this.parts.remember(entry);
      throw new ConsensusError('BLOCK_PARENT_INVALID', `parent ${parent.hashHex} is invalid`);
    }
    // The common case, a child of the tip (more work by its own), is connected next: its
    // connect writes it, in the same unit as its state.
    if (parent === index.tip) {
      unwritten.set(entry, block);
    } else {
      entry.status = HAVE_DATA;
      await db.putBlock(block, entry.encode());
    }
    index.add(entry);
    if (entry.totalWork >= index.tip.totalWork) candidates.add(entry);
    candidates.delete(parent);
    return entry;
  }

  /** Stores what this import accepted but fork choice did not connect (a tie lost, or a failure mid-way). Import lock. */
  async writeUnconnected(): Promise<void> {
    const { db, lock, unwritten } = this.parts;
    lock.assertHeld('writeUnconnected');
    try {
      for (const [entry, block] of unwritten) {
        if (!entry.isValid || entry.status & HAVE_DATA) continue;
        entry.status |= HAVE_DATA;
        await db.putBlock(block, entry.encode());
      }
    } finally {
      unwritten.clear();
    }
  }

  /** Step 3: the rules a header meets against its parent (consensus/header-rules.ts). */
  private checkContext(header: BlockHeader, parent: BlockIndexEntry): void {
    checkHeaderContext(this.parts.db.params, header, parent.header, parent.anchorTimestamp, medianTimePast(parent), this.parts.clock(), this.parts.checkpoint);
  }
}
