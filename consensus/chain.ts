import { EventEmitter } from 'node:events';
import { toHex } from '../ledger/bytes.ts';
import { BlockRuleError, CairnError, StoreError, TxRuleError } from '../ledger/errors.ts';
import type { Block } from '../ledger/block.ts';
import { ChainDB } from '../ledger/chaindb.ts';
import type { SignatureChecker } from '../ledger/state.ts';
import { SerialQueue } from '../ledger/serial.ts';
import { BlockIndexEntry, HAVE_DATA, INVALID, decodeIndexRecord, findForkPoint, medianTimePast } from './block-index.ts';
import { nextTarget } from './difficulty.ts';
import { checkHeaderContext } from './header-rules.ts';
import { ConsensusError } from './errors.ts';
import { OrphanPool, type OrphanLimits } from './orphans.ts';
import { checkBlockSanity, storedBlockIsSane, type SaneBlock } from './sanity.ts';
import { connectBlock, disconnectBlock } from './connect.ts';
export { maxFutureDrift } from './header-rules.ts';

/** Seconds since the epoch. A parameter, so tests and simulations control time. */
export type Clock = () => number;

export interface ChainOptions {
  readonly clock: Clock;
  readonly signatures?: SignatureChecker;
  readonly orphanLimits?: OrphanLimits;
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
  invalid: [entry: BlockIndexEntry, error: CairnError];
  /** A block's import finished with an outcome, after `ms` in the import queue (with a stopwatch). */
  imported: [block: Block, outcome: BlockOutcome, ms: number];
}

/** A block that failed as fork choice connected it, and why. */
interface ConnectFailure {
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

/**
 * Which chain is THE chain. Every block, from gossip, sync or the miner, enters through
 * `processBlock` (or `processSaneBlock` when the caller ran the sanity check itself), one at a
 * time: a single import queue, as in Lodestar. Each block takes the same road and ends with one
 * outcome (a BlockOutcome, or a typed rule error whose banScore says whether to punish the sender):
 *   1. sanity: proof of work and body, needing nothing but the block (consensus/sanity.ts; not
 *      remembered: a peer can pair a good header with a tampered body);
 *   2. parent: unknown → orphan pool;
 *   3. context: height, expected target, timestamp window (not remembered: cheap to re-check,
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
  private readonly clock: Clock;
  private readonly signatures: SignatureChecker | undefined;
  private readonly stopwatch: (() => number) | undefined;
  private readonly index = new Map<string, BlockIndexEntry>();
  /** Valid entries with their block at hand that could be the best tip; all others have less work or a better child. */
  private readonly candidates = new Set<BlockIndexEntry>();
  readonly orphans: OrphanPool;
  private tipEntry: BlockIndexEntry;
  /** The main chain by height, so main-chain questions are array lookups, not walks. */
  private readonly main: BlockIndexEntry[] = [];
  private nextSeq = 1;
  private readonly lock = new SerialQueue();
  /**
   * Blocks the running import accepted that are not on disk yet (their entries lack HAVE_DATA):
   * a child of the tip waits for its connect to write it, and `writeUnconnected` stores what
   * fork choice left aside. Empty between imports.
   */
  private readonly unwritten = new Map<BlockIndexEntry, SaneBlock>();

  private constructor(db: ChainDB, options: ChainOptions, genesis: BlockIndexEntry) {
    super();
    this.db = db;
    this.clock = options.clock;
    this.signatures = options.signatures;
    this.stopwatch = options.stopwatch;
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
    const stored = await db.storedTip();
    const tip = chain.index.get(toHex(stored.hash));
    if (!tip) throw new StoreError('STORE_CORRUPT', 'the stored tip has no index record');
    chain.tipEntry = tip;
    for (let e: BlockIndexEntry | undefined = tip; e; e = e.parent) chain.main[e.height] = e;
    for (const e of chain.index.values()) {
      if (e.isValid && e.status & HAVE_DATA && e.totalWork >= tip.totalWork) chain.candidates.add(e);
    }
    await chain.lock.run(() => chain.activateBestChain());
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
    return this.lock.run(read);
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
    return this.lock.run(async () => this.known(block) ?? this.timed(block, () => this.importBlock(checkBlockSanity(block, this.params))));
  }

  /** The same for a block whose sanity the caller checked (a compact block rebuilt, a synced batch). */
  processSaneBlock(block: SaneBlock): Promise<BlockOutcome> {
    return this.lock.run(async () => this.known(block) ?? this.timed(block, () => this.importBlock(block)));
  }

  /** Runs an import, and with a stopwatch tells how long it took ('imported'). Import lock. */
  private async timed(block: Block, run: () => Promise<BlockOutcome>): Promise<BlockOutcome> {
    const start = this.stopwatch?.();
    const outcome = await run();
    if (start !== undefined) this.emit('imported', block, outcome, this.stopwatch!() - start);
    return outcome;
  }

  /** The outcome for a block seen before, without checking it again. */
  private known(block: Block): BlockOutcome | undefined {
    const known = this.getEntry(block.header.hash);
    if (known && !known.isValid) throw new ConsensusError('BLOCK_KNOWN_INVALID', `block ${known.hashHex} is known to be invalid`);
    return known || this.orphans.has(block.header.hash) ? 'duplicate' : undefined;
  }

  /** Steps 2–7 for one block. Import lock. */
  private async importBlock(block: SaneBlock): Promise<BlockOutcome> {
    this.lock.assertHeld('importBlock');
    try {
      const entry = await this.accept(block);
      if (!entry) return 'orphan';
      const failures = await this.activateBestChain();
      if (!entry.isValid) {
        // It failed as fork choice connected it, or an ancestor did: the sender must hear why.
        const own = failures.find((f) => f.entry === entry);
        throw own?.reason ?? new ConsensusError('BLOCK_PARENT_INVALID', `an ancestor of ${entry.hashHex} is invalid`);
      }
      await this.adoptOrphans(block);
      return this.isMain(entry) ? 'connected' : 'side-branch';
    } finally {
      await this.writeUnconnected();
    }
  }

  /** Stores what this import accepted but fork choice did not connect (a tie lost, or a failure mid-way). Import lock. */
  private async writeUnconnected(): Promise<void> {
    this.lock.assertHeld('writeUnconnected');
    try {
      for (const [entry, block] of this.unwritten) {
        if (!entry.isValid || entry.status & HAVE_DATA) continue;
        entry.status |= HAVE_DATA;
        await this.db.putBlock(block, entry.encode());
      }
    } finally {
      this.unwritten.clear();
    }
  }

  /** Step 7. Import lock. */
  private async adoptOrphans(parent: Block): Promise<void> {
    this.lock.assertHeld('adoptOrphans');
    const waiting = this.orphans.takeChildren(parent.header.hash);
    while (waiting.length > 0) {
      const child = waiting.shift()!;
      try {
        const entry = await this.accept(child);
        if (entry) {
          const failures = await this.activateBestChain();
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

  /**
   * Steps 2–4. Returns the new index entry (a candidate for fork choice), or undefined for an
   * orphan. Import lock.
   */
  private async accept(block: SaneBlock): Promise<BlockIndexEntry | undefined> {
    this.lock.assertHeld('accept');
    const { header } = block;
    const parent = this.getEntry(header.prevHash);
    if (!parent) {
      this.orphans.add(block, this.clock());
      return undefined;
    }
    const entry = new BlockIndexEntry(header, parent, 0, this.nextSeq++);
    // Context failures are cheap to re-check and cheap to forge (a header may claim an easy
    // target), so they are refused without a trace: remembering them would let junk fill the disk.
    checkHeaderContext(this.params, header, parent.header, parent.anchorTimestamp, medianTimePast(parent), this.clock());
    if (!parent.isValid) {
      // Real work at the real target built on an invalid block: worth remembering.
      entry.status = INVALID;
      await this.remember(entry);
      throw new ConsensusError('BLOCK_PARENT_INVALID', `parent ${parent.hashHex} is invalid`);
    }
    // The common case, a child of the tip (more work by its own), is connected next: its
    // connect writes it, in the same unit as its state.
    if (parent === this.tipEntry) {
      this.unwritten.set(entry, block);
    } else {
      entry.status = HAVE_DATA;
      await this.db.putBlock(block, entry.encode());
    }
    this.index.set(entry.hashHex, entry);
    if (entry.totalWork >= this.tipEntry.totalWork) this.candidates.add(entry);
    this.candidates.delete(parent);
    return entry;
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

  /** Step 5: moves to the most-work valid chain; returns what failed on the way. Import lock. */
  private async activateBestChain(): Promise<ConnectFailure[]> {
    this.lock.assertHeld('activateBestChain');
    const failures: ConnectFailure[] = [];
    for (;;) {
      const best = this.bestCandidate();
      if (best === this.tipEntry || best.totalWork <= this.tipEntry.totalWork) return failures;
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
    this.lock.assertHeld('markInvalid');
    entry.status |= INVALID;
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
    this.emit('invalid', entry, reason);
  }

  /** The block of an entry on its way to the main chain: in hand from this import, or from the store. */
  private async blockOf(entry: BlockIndexEntry): Promise<SaneBlock> {
    const inHand = this.unwritten.get(entry);
    if (inHand) return inHand;
    const stored = await this.db.getBlock(entry.hash);
    if (!stored) throw new StoreError('STORE_CORRUPT', `block ${entry.hashHex} is indexed as stored but missing`);
    return storedBlockIsSane(stored);
  }

  /** Import lock. */
  private async reorganizeTo(target: BlockIndexEntry): Promise<void> {
    this.lock.assertHeld('reorganizeTo');
    const from = this.tipEntry;
    const fork = findForkPoint(from, target);
    const disconnected: Block[] = [];
    const connected: Block[] = [];
    try {
      while (this.tipEntry !== fork) {
        const entry = this.tipEntry;
        const block = await this.blockOf(entry);
        await disconnectBlock(this.db, block, entry.parent!.header.stateRoot);
        this.tipEntry = entry.parent!;
        this.main.pop();
        disconnected.unshift(block);
        this.emit('disconnect', block, entry);
      }
      const path: BlockIndexEntry[] = [];
      for (let e: BlockIndexEntry = target; e !== fork; e = e.parent!) path.unshift(e);
      for (const entry of path) {
        const block = await this.blockOf(entry);
        const stored = (entry.status & HAVE_DATA) !== 0;
        try {
          // A block not yet on disk goes in with its index record, in the unit of its connect.
          const record = stored ? [] : [ChainDB.indexRecordOp(entry.hash, entry.encode(entry.status | HAVE_DATA))];
          await connectBlock(this.db, this.params, this.tipEntry, block, { signatures: this.signatures, extraOps: record, blockStored: stored });
          entry.status |= HAVE_DATA;
        } catch (err) {
          if (err instanceof TxRuleError || err instanceof BlockRuleError) throw new ConnectFailed({ entry, reason: err });
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
