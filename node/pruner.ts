import type { Chain } from '../consensus/chain.ts';
import type { BlockIndexEntry } from '../consensus/block-index.ts';
import { nextTurn, type Env } from './env.ts';

/** Blocks pruned per batch at most (fewer when they hold many transactions): one atomic write. */
export const PRUNE_CHUNK = 1_000;

/**
 * A prune waits this long (the Env's monotonic clock) after the last one ended, unless a whole
 * chunk may go. A node at the tip sees blocks far further apart, and prunes at each; one catching
 * up imports hundreds a second, and pruned at each its imports were held for a prune at every
 * block while the store flushed and the bodies were read back: 0.64 to 0.83 of an unpruned sync.
 */
export const PRUNE_PAUSE_MS = 1_000;

/**
 * Deletes the bodies, undo data and transaction index of main-chain blocks more than `keep`
 * below the tip, in the background: at each tip for a node following the network, a pause's worth
 * or a whole chunk at a time for one catching up (PRUNE_PAUSE_MS), each chunk ONE batch with the
 * new pruning mark (ledger/history.ts), never part of a block's commit, and on its own
 * turn of the event loop so imports and RPC go on meanwhile. Headers, the index and the state
 * stay. `keep` is at least the chain's reorg depth, so a reorganisation always finds the undo
 * data and bodies it needs. A kill between chunks, or within one, leaves a store that reopens
 * with the mark where the last whole chunk put it, and the next start carries on.
 */
export class Pruner {
  private readonly chain: Chain;
  private readonly env: Env;
  readonly keep: number;
  private running: Promise<void> | undefined;
  private stopped = false;
  private readonly onTip = () => this.schedule();
  /** Ends the pause under way now (a whole chunk may go, or a stop). */
  private wake: (() => void) | undefined;
  /** When the last prune ended (monotonic), -Infinity before the first. */
  private lastEnded = -Infinity;
  /** Told of every chunk pruned (the node logs it), and of a chunk that failed (the next tip tries again). */
  private readonly report: (height: number, err?: Error) => void;
  /** The highest height something else still needs the bodies up to (the address index's backfill). */
  private readonly needed: () => number;
  /** Blocks that go at once, without the pause: the most the store holds beyond `keep` while imports outrun it. */
  private readonly chunk: number;
  /** Blocks that must be prunable before a prune, even after the pause (`chunksOnly`: a chunk). */
  private readonly batchOf: number;

  /**
   * `chunksOnly`: prune only once a chunk may go (at most the reorg depth: the store holds twice
   * `keep` at most), never after the pause alone: for a chain that only ever catches up (the
   * history check's), whose store need not follow its tip closer.
   */
  constructor(chain: Chain, env: Env, keep: number, report: (height: number, err?: Error) => void = () => {}, needed: () => number = () => Infinity, o: { chunksOnly?: boolean } = {}) {
    if (!Number.isSafeInteger(keep) || keep < chain.reorgDepth) {
      throw new RangeError(`pruning must keep at least the ${chain.reorgDepth} blocks of the deepest reorganisation followed, not ${keep}`);
    }
    this.chain = chain;
    this.env = env;
    this.keep = keep;
    this.report = report;
    this.needed = needed;
    this.chunk = o.chunksOnly ? Math.max(1, Math.min(PRUNE_CHUNK, chain.reorgDepth)) : PRUNE_CHUNK;
    this.batchOf = o.chunksOnly ? this.chunk : 1;
  }

  start(): void {
    this.chain.on('tip', this.onTip);
    this.schedule();
  }

  /** Resolves once no chunk is being written (the store can then be closed). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.chain.off('tip', this.onTip);
    this.wake?.();
    await this.running;
  }

  /** Resolves when everything prunable now is pruned, the pause included: for tests. */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  /**
   * The highest height that may be pruned now: more than `keep` below the tip. The block `keep`
   * below it stays whole, as the fork point of the deepest reorganisation followed (the chain's
   * fork floor is never at a pruned height).
   */
  private target(): number {
    return Math.min(this.chain.tip.height - this.keep - 1, this.needed());
  }

  /** Blocks that may be pruned now and are not. */
  private prunable(): number {
    return this.target() - this.chain.db.history.prunedHeight;
  }

  /**
   * Prunes what may be pruned, in the background: on every new tip, and when what held it back
   * (needed) moved; at once when a whole chunk may go or the pause since the last prune is over,
   * otherwise once it is (what comes meanwhile waits with it).
   */
  schedule(): void {
    if (this.running) {
      if (this.prunable() >= this.chunk) this.wake?.(); // the store holds no more than a chunk beyond `keep`
      return;
    }
    if (this.stopped || this.prunable() < this.batchOf) return;
    const wait = this.prunable() >= this.chunk ? 0 : this.lastEnded + PRUNE_PAUSE_MS - this.env.monotonic();
    this.running = (wait > 0 ? this.pause(wait) : nextTurn(this.env))
      .then(() => this.run())
      .then(
        () => {
          this.running = undefined;
          this.schedule(); // tips that came during the last chunk
        },
        (err: Error) => {
          this.running = undefined;
          this.report(this.chain.db.history.prunedHeight, err); // the next tip tries again
        },
      );
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = this.env.setTimeout(() => this.wake?.(), ms);
      this.wake = () => {
        this.wake = undefined;
        this.env.clearTimeout(timer);
        resolve();
      };
    });
  }

  /** One prune once due, then more while a whole chunk may go (a start after a long stop, a backfill done). */
  private async run(): Promise<void> {
    const history = this.chain.db.history;
    for (let due = this.batchOf; !this.stopped && this.prunable() >= due; due = this.chunk) {
      // Between imports: a reorganisation connects its branch a block at a time, and a tip it
      // passes through (a longer branch that may yet fail, and be undone) is no tip to prune from.
      const pruned = await this.chain.withImportsPaused(async () => {
        const target = this.target();
        return target > history.prunedHeight ? history.prune(Math.min(target, history.prunedHeight + PRUNE_CHUNK)) : undefined;
      });
      this.lastEnded = this.env.monotonic();
      if (pruned === undefined) return;
      this.report(pruned);
      await nextTurn(this.env); // let imports and RPC in between chunks
    }
  }
}

/**
 * The block index's entry for a block at a height whose bodies pruning deleted (those of side
 * branches there too), so that asking by hash answers "pruned", as by height, rather than "no such
 * block". Only while the index holds the entry: the store keeps headers by height, so below the
 * window a hash alone does not say the height, and such a block cannot be told from an unknown one.
 */
export function prunedEntry(chain: Pick<Chain, 'getEntry' | 'db'>, hash: Uint8Array): BlockIndexEntry | undefined {
  const entry = chain.getEntry(hash);
  return entry && entry.height > 0 && entry.height <= chain.db.history.prunedHeight ? entry : undefined;
}
