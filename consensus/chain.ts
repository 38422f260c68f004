import { EventEmitter } from 'node:events';
import { bytesEqual } from '../ledger/bytes.ts';
import { CairnError } from '../ledger/errors.ts';
import type { Block, BlockHeader } from '../ledger/block.ts';
import type { ChainDB } from '../ledger/chaindb.ts';
import { SerialQueue } from '../ledger/serial.ts';
import { HAVE_DATA, medianTimePast, type BlockIndexEntry } from './block-index.ts';
import { ChainIndex, DEFAULT_REORG_DEPTH, DEFAULT_WINDOW, MEDIAN_SPAN } from './chain-index.ts';
import { HeaderChainCheck } from './headers.ts';
import { ChainByHeight } from './by-height.ts';
import { nextTarget } from './difficulty.ts';
import { ConsensusError } from './errors.ts';
import type { BlockOutcome, ChainEvents, ChainOptions } from './chain-types.ts';
import { OrphanPool } from './orphans.ts';
import { checkBlockSanity, type SaneBlock } from './sanity.ts';
import { ForkChoice } from './fork-choice.ts';
import { BlockAcceptance } from './accept.ts';
import { SettledReads, type Patience } from './settled-reads.ts';
export { maxFutureDrift } from './header-rules.ts';

export type { BlockOutcome, ChainEvents, ChainOptions, Clock, ReorgEvent } from './chain-types.ts';

/**
 * Which chain is THE chain. Every block, from gossip, sync or the miner, enters through
 * `processBlock` (or `processSaneBlock` when the caller ran the sanity check itself), one at a
 * time: a single import queue, as in Lodestar. Each block takes the same road and ends with one
 * outcome (a BlockOutcome, or a typed rule error whose banScore says whether to punish the sender):
 *   1. sanity: proof of work and body, needing nothing but the block (consensus/sanity.ts; not
 *      remembered: a peer can pair a good header with a tampered body);
 *   2. parent: deeper than the reorg depth → refused (BLOCK_FORK_TOO_DEEP); unknown → orphan pool;
 *   3. context: height, expected target, timestamp window, the checkpoint (not remembered: cheap to re-check,
 *      cheap to forge); a valid child of an invalid parent is remembered invalid;
 *   4. store: block + index record in one batch — except a child of the tip, which its own
 *      connect writes with its state (HAVE_DATA, and only it, says a block is on disk);
 *   5. fork choice: most work wins, first seen wins ties; reorganise with undo data, each block
 *      one unit, state rules checked as each connects (consensus/connect.ts); a block that fails
 *      is marked invalid with its descendants, and the chain settles on the best valid branch;
 *   6. events: connect / disconnect per block, then tip, for mempool, miner, RPC;
 *   7. orphans waiting for this block go through the same road.
 * Methods marked "import lock" run only inside the queue and assert it.
 */
export class Chain extends EventEmitter<ChainEvents> {
  readonly db: ChainDB;
  private readonly stopwatch: (() => number) | undefined;
  /** The recent window of the main chain and the side branches off it; older blocks are in the store. */
  private index: ChainIndex;
  private readonly options: ChainOptions;
  /** Steps 2–4 (consensus/accept.ts). */
  private readonly acceptance: BlockAcceptance;
  /** Step 5, which owns the candidates for best tip (consensus/fork-choice.ts). */
  private readonly forkChoice: ForkChoice;
  readonly orphans: OrphanPool;
  /** The main chain by height, the window's part from memory and the rest from the store. */
  readonly byHeight: ChainByHeight;
  private readonly lock = new SerialQueue();
  /**
   * Blocks the running import accepted that are not on disk yet (their entries lack HAVE_DATA):
   * a child of the tip waits for its connect to write it, and acceptance's `writeUnconnected` stores what
   * fork choice left aside. Empty between imports.
   */
  private readonly unwritten = new Map<BlockIndexEntry, SaneBlock>();
  /** Reads of the main chain that wait out a reorganisation under way (readSettled). */
  private readonly settled = new SettledReads();

  private constructor(db: ChainDB, options: ChainOptions, index: ChainIndex) {
    super();
    this.db = db;
    this.stopwatch = options.stopwatch;
    this.orphans = new OrphanPool(options.orphanLimits);
    this.index = index;
    this.options = options;
    this.byHeight = new ChainByHeight(this, db);
    this.forkChoice = new ForkChoice({
      db,
      signatures: options.signatures,
      lock: this.lock,
      index: () => this.index,
      unwritten: this.unwritten,
      remember: (entry) => this.remember(entry),
      events: this,
      reorganising: () => this.reorganising(),
    });
    this.acceptance = new BlockAcceptance({
      db,
      clock: options.clock,
      checkpoint: options.checkpoint,
      lock: this.lock,
      index: () => this.index,
      orphans: this.orphans,
      candidates: this.forkChoice.candidates,
      unwritten: this.unwritten,
      remember: (entry) => this.remember(entry),
    });
  }

  /**
   * Loads the window of the block index from the store (not the whole chain: start-up does not
   * grow with it) and finishes any reorganisation a crash interrupted.
   */
  static async open(db: ChainDB, options: ChainOptions): Promise<Chain> {
    const index = await ChainIndex.load(db, options.reorgDepth ?? DEFAULT_REORG_DEPTH, options.window ?? DEFAULT_WINDOW);
    const chain = new Chain(db, options, index);
    const tip = index.tip;
    for (const e of index.values()) {
      if (e.isValid && e.status & HAVE_DATA && e.totalWork >= tip.totalWork) chain.forkChoice.candidates.add(e);
    }
    await chain.runImport(async () => {
      await chain.forkChoice.activateBestChain();
      await chain.fitWindow();
    });
    return chain;
  }

  get tip(): BlockIndexEntry {
    return this.index.tip;
  }

  get params() {
    return this.db.params;
  }

  /** The deepest reorganisation this chain follows, in blocks below its tip. */
  get reorgDepth(): number {
    return this.index.reorgDepth;
  }

  /** The block the user trusts (ChainOptions.checkpoint), if any. */
  get checkpoint(): ChainOptions['checkpoint'] {
    return this.options.checkpoint;
  }

  /** Our tip is below the checkpoint we hold: no chain is ours until one through it is taken. */
  get belowCheckpoint(): boolean {
    const checkpoint = this.options.checkpoint;
    return checkpoint !== undefined && this.tip.height < checkpoint.height;
  }

  /** The lowest height a fork point may have now: blocks built on anything lower are refused. */
  get forkFloor(): number {
    return this.index.forkFloor;
  }

  /** A block in the index's window or a side branch off it (older blocks are only in the store). */
  getEntry(hash: Uint8Array): BlockIndexEntry | undefined {
    return this.index.get(hash);
  }

  /** Whether the block is on the main chain. */
  isMain(entry: BlockIndexEntry): boolean {
    return this.index.isMain(entry);
  }

  /** Every block no other block builds on, in the window: the main tip and the end of each side branch seen. */
  tips(): BlockIndexEntry[] {
    const parents = new Set<BlockIndexEntry | undefined>([...this.index.values()].map((e) => e.parent));
    return [...this.index.values()].filter((e) => !parents.has(e));
  }

  /** The main-chain entry at `height`, if it is in the window (the last 1,000 blocks and a few more). */
  mainAt(height: number): BlockIndexEntry | undefined {
    return this.index.mainAt(height);
  }

  /** The lowest main-chain height in memory; older blocks are read from the store (`byHeight`). */
  get windowBottom(): number {
    return this.index.bottom;
  }

  /**
   * A check of a peer's headers that build on our main-chain block at `height` (HeaderChainCheck),
   * with the block index reaching down to the median span below it. Undefined when that block is
   * below the fork floor (a fork we would not follow) or past the tip, or is no longer `hash` (a
   * reorganisation since the caller found it: the peer's headers no longer build on what is there).
   */
  headerCheckFrom(height: number, now: number, hash?: Uint8Array): Promise<HeaderChainCheck | undefined> {
    return this.lock.run(async () => {
      if (height < this.index.forkFloor || height > this.tip.height) return undefined;
      if (hash && !bytesEqual(this.index.mainAt(height)?.hash ?? new Uint8Array(0), hash)) return undefined;
      await this.index.ensure(this.db, height - MEDIAN_SPAN);
      // Built while the lock is held: the window cannot be trimmed under its walk back.
      return new HeaderChainCheck(this.params, this.index.mainAt(height)!, now, this.options.checkpoint);
    });
  }

  /** The target a child of the tip must carry, and the earliest timestamp it may have. */
  nextBlockRules(): { target: bigint; minTimestamp: number; height: number } {
    const tip = this.tip;
    return { target: nextTarget(this.params, tip.header, tip.anchorTimestamp), minTimestamp: medianTimePast(tip) + 1, height: tip.height + 1 };
  }

  /** Runs `read` between two imports, so it sees one consistent chain state throughout. */
  withImportsPaused<T>(read: () => Promise<T>): Promise<T> {
    return this.lock.run(read);
  }

  /**
   * Runs `read` of the main chain (`byHeight`) so that it sees no reorganisation part-way, when
   * the main chain ends at the fork point or part-way up the new branch, below the tip before and
   * after: it waits for one under way (as long as `patience` lets it: SettledReads), and reads
   * again if one began meanwhile. Blocks that only extend the chain may connect during it. Unlike
   * withImportsPaused, imports never wait for it: peers may use it as often as their budgets allow.
   * `read` must not pause imports itself (withImportsPaused, headerCheckFrom): its last try runs
   * between imports, and would wait on itself for ever; a read that pauses imports needs no settling.
   */
  readSettled<T>(read: () => Promise<T>, patience?: Patience): Promise<T> {
    return this.settled.read(read, (again) => this.withImportsPaused(again), patience);
  }

  /** A reorganisation or a snapshot's install is under way: the main chain ends part-way, below the tip before and after. */
  get reorganisationUnderWay(): boolean {
    return this.settled.underWay;
  }

  /**
   * Resolves once no reorganisation is under way (at once when none is), for what is judged
   * against the state but is no read to make again: a transaction's admission, which mid-way would
   * see the fork point's state, that neither the chain before nor the one after has (as long as `patience` lets it).
   */
  untilSettled(patience?: Patience): Promise<void> {
    return this.settled.untilSettled(patience);
  }

  /** ForkChoice is about to disconnect blocks: the main chain is a tip's again when the import ends. Import lock. */
  private reorganising(): void {
    this.lock.assertHeld('reorganising');
    this.settled.begin();
  }

  /** Runs import work under the lock, and settles a reorganisation it made once it ends, however it ends. */
  private runImport<T>(work: () => Promise<T>): Promise<T> {
    return this.lock.run(async () => {
      try {
        return await work();
      } finally {
        this.settled.settle();
      }
    });
  }

  /**
   * Runs a snapshot sync's `install` (ledger/snapshot-join.ts), which replaces the state and tip
   * of a chain still at genesis in the store (node/snapshot-sync.ts), then takes them as they are:
   * the store's memory and the index window are read again, and fork choice starts from the
   * snapshot's block. Between imports.
   */
  adoptSnapshot(install: () => Promise<void>): Promise<void> {
    return this.runImport(async () => {
      if (this.tip.height !== 0) throw new Error('a snapshot is adopted only by a chain at genesis');
      this.reorganising(); // the store's chain is replaced underneath the index until it is read again
      await this.db.flushed();
      // One that fails part-way leaves the state half replaced under this chain's memory: the
      // store takes nothing more, and the next open finishes the install.
      await install().catch((err: unknown) => {
        throw this.db.writeFailed(err);
      });
      await this.db.reload();
      this.index = await ChainIndex.load(this.db, this.index.reorgDepth, this.options.window ?? DEFAULT_WINDOW);
      this.forkChoice.candidates.clear();
      this.forkChoice.candidates.add(this.index.tip);
      this.emit('adopted', this.index.tip);
    });
  }

  /** Resolves once every block handed in so far has been processed. */
  idle(): Promise<void> {
    return this.lock.idle();
  }

  /**
   * Imports one block from any source. Resolves with what became of it; rejects with a typed
   * rule error (its banScore says whether to punish the sender). Orphans it unblocks are
   * imported too; their failures are reported through the 'invalid' event, not thrown.
   */
  processBlock(block: Block): Promise<BlockOutcome> {
    return this.runImport(async () => (await this.acceptance.known(block)) ?? this.timed(block, () => this.importBlock(checkBlockSanity(block, this.params))));
  }

  /** The same for a block whose sanity the caller checked (a compact block rebuilt, a synced batch). */
  processSaneBlock(block: SaneBlock): Promise<BlockOutcome> {
    return this.runImport(async () => (await this.acceptance.known(block)) ?? this.timed(block, () => this.importBlock(block)));
  }

  /**
   * Judges a new block's header against its parent, as step 3 will, without importing anything:
   * 'tip' when the parent is our tip (the block leads if its body holds), 'known' for another
   * valid parent in the window, 'unknown' when we lack the parent. Throws what the import would
   * throw for a header that breaks its parent's context or builds on an invalid block. A compact
   * block is forwarded on 'tip' before its import (BIP 152's high-bandwidth relay), so a block
   * crosses a network in the time of its hops' checks rather than of their imports.
   */
  judgeHeader(header: BlockHeader): 'tip' | 'known' | 'unknown' {
    return this.acceptance.judgeHeader(header);
  }

  /** Runs an import, and with a stopwatch tells how long it took ('imported'). Import lock. */
  private async timed(block: Block, run: () => Promise<BlockOutcome>): Promise<BlockOutcome> {
    const start = this.stopwatch?.();
    const outcome = await run();
    if (start !== undefined) this.emit('imported', block, outcome, this.stopwatch!() - start);
    return outcome;
  }

  /** Steps 2–7 for one block. Import lock. */
  private async importBlock(block: SaneBlock): Promise<BlockOutcome> {
    this.lock.assertHeld('importBlock');
    try {
      const entry = await this.acceptance.accept(block);
      if (!entry) return 'orphan';
      const failures = await this.forkChoice.activateBestChain();
      if (!entry.isValid) {
        // It failed as fork choice connected it, or an ancestor did: the sender must hear why.
        const own = failures.find((f) => f.entry === entry);
        throw own?.reason ?? new ConsensusError('BLOCK_PARENT_INVALID', `an ancestor of ${entry.hashHex} is invalid`);
      }
      await this.adoptOrphans(block);
      return this.isMain(entry) ? 'connected' : 'side-branch';
    } finally {
      await this.acceptance.writeUnconnected();
      await this.fitWindow();
    }
  }

  /** Moves the index's window with the tip; what falls out of it can no longer be a candidate. Import lock. */
  private async fitWindow(): Promise<void> {
    this.lock.assertHeld('fitWindow');
    for (const e of await this.index.fit(this.db)) this.forkChoice.candidates.delete(e);
  }

  /** Step 7. Import lock. */
  private async adoptOrphans(parent: Block): Promise<void> {
    this.lock.assertHeld('adoptOrphans');
    const waiting = this.orphans.takeChildren(parent.header.hash);
    while (waiting.length > 0) {
      const child = waiting.shift()!;
      try {
        const entry = await this.acceptance.accept(child);
        if (entry) {
          const failures = await this.forkChoice.activateBestChain();
          const own = failures.find((f) => f.entry === entry);
          if (own) throw own.reason;
        }
        waiting.push(...this.orphans.takeChildren(child.header.hash));
      } catch (err) {
        if (!(err instanceof CairnError)) throw err;
        const entry = this.getEntry(child.header.hash);
        if (entry) this.emit('invalid', entry, err);
      }
    }
  }

  private async remember(entry: BlockIndexEntry): Promise<void> {
    this.index.add(entry);
    await this.db.putIndexRecord(entry.height, entry.hash, entry.encode());
  }
}
