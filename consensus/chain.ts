import { EventEmitter } from 'node:events';
import { toHex } from '../ledger/bytes.ts';
import { BlockRuleError, CairnError, StoreError, TxRuleError } from '../ledger/errors.ts';
import { checkBlockBody, type Block } from '../ledger/block.ts';
import { ChainDB } from '../ledger/chaindb.ts';
import type { SignatureChecker } from '../ledger/state.ts';
import { BlockIndexEntry, HAVE_DATA, INVALID, decodeIndexRecord, findForkPoint, medianTimePast } from './block-index.ts';
export { maxFutureDrift } from './header-rules.ts';
import { nextTarget } from './difficulty.ts';
import { checkHeaderContext } from './header-rules.ts';
import { ConsensusError } from './errors.ts';
import { OrphanPool, type OrphanLimits } from './orphans.ts';
import { hasValidProofOfWork } from './pow.ts';

/** Seconds since the epoch. A parameter, so tests and simulations control time. */
export type Clock = () => number;

export interface ChainOptions {
  readonly clock: Clock;
  readonly signatures?: SignatureChecker;
  readonly orphanLimits?: OrphanLimits;
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
  invalid: [entry: BlockIndexEntry, error: CairnError];
}

class ConnectFailure extends Error {
  readonly entry: BlockIndexEntry;
  readonly reason: CairnError;
  constructor(entry: BlockIndexEntry, reason: CairnError) {
    super(reason.message);
    this.entry = entry;
    this.reason = reason;
  }
}

/**
 * Which chain is THE chain. Every block, from gossip or sync, enters through `processBlock`, one
 * at a time (a single import queue, as in Lodestar), and takes the same road:
 *   1. sanity: proof of work and body, needing nothing but the block (failures not remembered:
 *      they may be a peer's tampering with a good header's body);
 *   2. parent: unknown → orphan pool;
 *   3. context: height, expected target, timestamp window (not remembered: cheap to re-check,
 *      cheap to forge); a valid child of an invalid parent is remembered invalid;
 *   4. store block + index record in one batch;
 *   5. fork choice: most work wins, first seen wins ties; reorganise with undo data, each block
 *      atomic, state rules checked as each connects; a block that fails is marked invalid with
 *      its descendants, and the chain settles on the best valid branch;
 *   6. events: connect / disconnect per block, then tip, for mempool, miner, RPC;
 *   7. orphans waiting for this block go through the same road.
 */
export class Chain extends EventEmitter<ChainEvents> {
  readonly db: ChainDB;
  private readonly clock: Clock;
  private readonly signatures: SignatureChecker | undefined;
  private readonly index = new Map<string, BlockIndexEntry>();
  /** Valid entries with data that could be the best tip; all others have less work or a better child. */
  private readonly candidates = new Set<BlockIndexEntry>();
  /** Why a block failed as it was connected, for the caller that brought it in this run. */
  private readonly invalidCause = new WeakMap<BlockIndexEntry, CairnError>();
  readonly orphans: OrphanPool;
  private tipEntry: BlockIndexEntry;
  /** The main chain by height, so main-chain questions are array lookups, not walks. */
  private readonly main: BlockIndexEntry[] = [];
  private nextSeq = 1;
  private queue: Promise<unknown> = Promise.resolve();
  /**
   * Blocks handed in by the running import, so connecting them reads nothing back from the store.
   * One that extends the tip is not stored on arrival: its connect writes it in the same batch as
   * its state, and `settleArrivals` stores it only if fork choice left it aside.
   */
  private readonly arriving = new Map<BlockIndexEntry, { block: Block; stored: boolean }>();

  private constructor(db: ChainDB, options: ChainOptions, genesis: BlockIndexEntry) {
    super();
    this.db = db;
    this.clock = options.clock;
    this.signatures = options.signatures;
    this.orphans = new OrphanPool(options.orphanLimits);
    this.tipEntry = genesis;
    this.main.push(genesis);
    this.index.set(genesis.hashHex, genesis);
  }

  /** Loads the block index from the store and finishes any reorganisation a crash interrupted. */
  static async open(db: ChainDB, options: ChainOptions): Promise<Chain> {
    const genesis = new BlockIndexEntry(db.genesis.header, undefined, HAVE_DATA, 0);
    const chain = new Chain(db, options, genesis);
    const records = [];
    for await (const { record } of db.indexRecords()) records.push(decodeIndexRecord(record));
    records.sort((a, b) => a.header.height - b.header.height || a.seq - b.seq);
    for (const r of records) {
      const parent = chain.index.get(toHex(r.header.prevHash));
      if (!parent) continue; // cannot happen with batched writes; skip rather than refuse to start
      const entry = new BlockIndexEntry(r.header, parent, r.status, r.seq);
      chain.index.set(entry.hashHex, entry);
      chain.nextSeq = Math.max(chain.nextSeq, r.seq + 1);
    }
    const tip = chain.index.get(toHex(db.tip.hash));
    if (!tip) throw new StoreError('STORE_CORRUPT', 'the stored tip has no index record');
    chain.tipEntry = tip;
    for (let e: BlockIndexEntry | undefined = tip; e; e = e.parent) chain.main[e.height] = e;
    for (const e of chain.index.values()) {
      if (e.isValid && e.status & HAVE_DATA && e.totalWork >= tip.totalWork) chain.candidates.add(e);
    }
    await chain.exclusive(() => chain.activateBestChain());
    return chain;
  }

  get tip(): BlockIndexEntry {
    return this.tipEntry;
  }

  get params() {
    return this.db.params;
  }

  getEntry(hash: Uint8Array): BlockIndexEntry | undefined {
    return this.index.get(toHex(hash));
  }

  /** Whether the block is on the main chain. */
  isMain(entry: BlockIndexEntry): boolean {
    return this.main[entry.height] === entry;
  }

  /** Every block no other block builds on: the main tip and the end of each side branch seen. */
  tips(): BlockIndexEntry[] {
    const parents = new Set<BlockIndexEntry | undefined>([...this.index.values()].map((e) => e.parent));
    return [...this.index.values()].filter((e) => !parents.has(e));
  }

  /** The main-chain entry at `height`, if the chain is that long. */
  mainAt(height: number): BlockIndexEntry | undefined {
    return this.main[height];
  }

  /**
   * Main-chain headers after the first locator hash that is on our main chain (genesis when none
   * is), at most `max`: what a peer asks for to find its fork point and catch up.
   */
  headersAfter(locator: readonly Uint8Array[], max: number): BlockIndexEntry[] {
    let start = 0;
    for (const hash of locator) {
      const e = this.getEntry(hash);
      if (e && this.isMain(e)) {
        start = e.height;
        break;
      }
    }
    return this.main.slice(start + 1, start + 1 + max);
  }

  /** The target a child of the tip must carry, and the earliest timestamp it may have. */
  nextBlockRules(): { target: bigint; minTimestamp: number; height: number } {
    const tip = this.tipEntry;
    return { target: nextTarget(this.params, tip.header, tip.anchorTimestamp), minTimestamp: medianTimePast(tip) + 1, height: tip.height + 1 };
  }

  /** Runs `read` between two imports, so it sees one consistent chain state throughout. */
  withImportsPaused<T>(read: () => Promise<T>): Promise<T> {
    return this.exclusive(read);
  }

  /** Resolves once every block handed in so far has been processed. */
  async idle(): Promise<void> {
    await this.queue;
  }

  /** Serialises every change of chain state: no two blocks are ever imported at once. */
  private exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = this.queue.then(work, work);
    this.queue = run.catch(() => {});
    return run;
  }

  /**
   * Imports one block (from any source). Resolves with what became of it; rejects with a typed
   * rule error (its banScore says whether to punish the sender). Orphans it unblocks are
   * imported too; their failures are reported through the 'invalid' event, not thrown.
   */
  processBlock(block: Block): Promise<BlockOutcome> {
    return this.exclusive(async () => {
      try {
        const outcome = await this.acceptBlock(block);
        if (outcome !== 'side-branch') return outcome;
        await this.activateBestChain();
        const entry = this.getEntry(block.header.hash)!;
        if (!entry.isValid) {
          // It failed as fork choice connected it (or an ancestor did): the sender must hear of it.
          throw this.invalidCause.get(entry) ??
            new ConsensusError('BLOCK_PARENT_INVALID', `an ancestor of ${entry.hashHex} is invalid`);
        }
        await this.adoptOrphans(block);
        return this.isMain(entry) ? 'connected' : 'side-branch';
      } finally {
        await this.settleArrivals();
      }
    });
  }

  /** Stores what this import accepted but did not connect (a tie lost, or a store failure mid-way). */
  private async settleArrivals(): Promise<void> {
    try {
      for (const [entry, arrived] of this.arriving) {
        if (!arrived.stored && entry.isValid && !this.isMain(entry)) await this.db.putBlock(arrived.block, entry.encode());
      }
    } finally {
      this.arriving.clear();
    }
  }

  private async adoptOrphans(parent: Block): Promise<void> {
    const waiting = this.orphans.takeChildren(parent.header.hash);
    while (waiting.length > 0) {
      const child = waiting.shift()!;
      try {
        if ((await this.acceptBlock(child)) === 'side-branch') await this.activateBestChain();
        waiting.push(...this.orphans.takeChildren(child.header.hash));
      } catch (err) {
        if (!(err instanceof CairnError)) throw err;
        const entry = this.getEntry(child.header.hash);
        if (entry) this.emit('invalid', entry, err);
      }
    }
  }

  /** Steps 1–4. Returns 'side-branch' for a newly stored block (fork choice decides the rest). */
  private async acceptBlock(block: Block): Promise<BlockOutcome> {
    const { header } = block;
    const known = this.getEntry(header.hash);
    if (known) {
      if (!known.isValid) throw new ConsensusError('BLOCK_KNOWN_INVALID', `block ${known.hashHex} is known to be invalid`);
      return 'duplicate';
    }
    if (this.orphans.has(header.hash)) return 'duplicate';

    if (!hasValidProofOfWork(header)) {
      throw new ConsensusError('HEADER_BAD_POW', 'header hash does not meet its target');
    }
    checkBlockBody(block, this.params);

    const parent = this.getEntry(header.prevHash);
    if (!parent) {
      this.orphans.add(block, this.clock());
      return 'orphan';
    }
    const entry = new BlockIndexEntry(header, parent, HAVE_DATA, this.nextSeq++);
    // Context failures are cheap to re-check and cheap to forge (a header may claim an easy
    // target), so they are refused without a trace: remembering them would let junk fill the disk.
    this.checkHeaderContext(entry);
    if (!parent.isValid) {
      // Real work at the real target built on an invalid block: worth remembering.
      entry.status = INVALID;
      await this.remember(entry);
      throw new ConsensusError('BLOCK_PARENT_INVALID', `parent ${parent.hashHex} is invalid`);
    }
    // The common case, a child of the tip (more work by its own), is connected next: its connect stores it.
    const extendsTip = parent === this.tipEntry;
    if (!extendsTip) await this.db.putBlock(block, entry.encode());
    this.arriving.set(entry, { block, stored: !extendsTip });
    this.index.set(entry.hashHex, entry);
    if (entry.totalWork >= this.tipEntry.totalWork) this.candidates.add(entry);
    this.candidates.delete(parent);
    return 'side-branch';
  }

  /** Step 3: the rules that need the parent. */
  private checkHeaderContext(entry: BlockIndexEntry): void {
    const parent = entry.parent!;
    checkHeaderContext(this.params, entry.header, parent.header, parent.anchorTimestamp, medianTimePast(parent), this.clock());
  }

  private async remember(entry: BlockIndexEntry): Promise<void> {
    this.index.set(entry.hashHex, entry);
    await this.db.putIndexRecord(entry.hash, entry.encode());
  }

  private bestCandidate(): BlockIndexEntry {
    let best = this.tipEntry;
    for (const c of this.candidates) {
      if (!c.isValid || c.totalWork < this.tipEntry.totalWork) {
        this.candidates.delete(c);
        continue;
      }
      // Among chains with more work than ours, the most work wins and then the first seen.
      const tie = c.totalWork === best.totalWork && best !== this.tipEntry && c.seq < best.seq;
      if (c.totalWork > best.totalWork || tie) best = c;
    }
    return best;
  }

  /** Step 5: move to the most-work valid chain, marking what fails on the way. */
  private async activateBestChain(): Promise<void> {
    for (;;) {
      const best = this.bestCandidate();
      if (best === this.tipEntry || best.totalWork <= this.tipEntry.totalWork) return;
      try {
        await this.reorganizeTo(best);
      } catch (err) {
        if (!(err instanceof ConnectFailure)) throw err;
        await this.markInvalid(err.entry, err.reason);
      }
    }
  }

  private async markInvalid(entry: BlockIndexEntry, cause: CairnError): Promise<void> {
    entry.status |= INVALID;
    // A child of the tip that failed its connect was never written: its record must not claim data.
    if (this.arriving.get(entry)?.stored === false) entry.status &= ~HAVE_DATA;
    this.invalidCause.set(entry, cause);
    await this.remember(entry);
    this.candidates.delete(entry);
    for (const e of this.index.values()) {
      if (e.height > entry.height && e.ancestor(entry.height) === entry) {
        this.candidates.delete(e);
        if (e.isValid) {
          e.status |= INVALID;
          await this.remember(e);
        }
      }
    }
    if (entry.parent && entry.parent.isValid) this.candidates.add(entry.parent);
    this.emit('invalid', entry, cause);
  }

  private async reorganizeTo(target: BlockIndexEntry): Promise<void> {
    const from = this.tipEntry;
    const fork = findForkPoint(from, target);
    const disconnected: Block[] = [];
    const connected: Block[] = [];
    try {
      while (this.tipEntry !== fork) {
        const entry = this.tipEntry;
        const block = await this.db.disconnectTip();
        this.tipEntry = entry.parent!;
        this.main.pop();
        disconnected.unshift(block);
        this.emit('disconnect', block, entry);
      }
      const path: BlockIndexEntry[] = [];
      for (let e: BlockIndexEntry = target; e !== fork; e = e.parent!) path.unshift(e);
      for (const entry of path) {
        const arrived = this.arriving.get(entry);
        const block = arrived?.block ?? (await this.db.getBlock(entry.hash));
        if (!block) throw new Error(`block ${entry.hashHex} is indexed as stored but missing`);
        try {
          const indexOps = arrived && !arrived.stored ? [ChainDB.indexRecordOp(entry.hash, entry.encode())] : [];
          await this.db.connectBlock(block, this.signatures, indexOps);
          if (arrived) arrived.stored = true;
        } catch (err) {
          if (err instanceof TxRuleError || err instanceof BlockRuleError) throw new ConnectFailure(entry, err);
          throw err;
        }
        this.tipEntry = entry;
        this.main.push(entry);
        connected.push(block);
        this.emit('connect', block, entry);
      }
    } finally {
      if (disconnected.length > 0 || connected.length > 0) {
        this.emit('tip', { fork, from, to: this.tipEntry, disconnected, connected });
      }
    }
  }

  /** Main-chain hashes from the tip back to genesis, dense first then exponentially sparse. */
  locator(): Uint8Array[] {
    const out: Uint8Array[] = [];
    let step = 1;
    for (let height = this.tipEntry.height; ; height -= step) {
      if (height <= 0) {
        out.push(this.main[0]!.hash);
        return out;
      }
      out.push(this.main[height]!.hash);
      if (out.length >= 10) step *= 2;
    }
  }
}
