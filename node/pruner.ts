import type { Chain } from '../consensus/chain.ts';
import type { BlockIndexEntry } from '../consensus/block-index.ts';
import { nextTurn, type Env } from './env.ts';

/** Blocks pruned per batch at most (fewer when they hold many transactions): one atomic write. */
export const PRUNE_CHUNK = 1_000;

/**
 * Deletes the bodies, undo data and transaction index of main-chain blocks more than `keep`
 * below the tip, in the background: a chunk at a time after the tip moves, each chunk ONE batch
 * with the new pruning mark (ledger/history.ts), never part of a block's commit, and on its own
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
  /** Told of every chunk pruned (the node logs it), and of a chunk that failed (the next tip tries again). */
  private readonly report: (height: number, err?: Error) => void;
  /** The highest height something else still needs the bodies up to (the address index's backfill). */
  private readonly needed: () => number;
  /** Blocks that must be prunable before a run starts (`batchOf`). */
  private readonly batchOf: number;

  /**
   * `batchOf`: prune only once that many blocks may go (default 1: on every tip). A chain that
   * imports hundreds of blocks a second (the history check's) was otherwise pruned a batch of
   * blocks at a time, each prune holding its imports while the store flushed and the bodies were
   * read back: a quarter to a third of its rate.
   */
  constructor(chain: Chain, env: Env, keep: number, report: (height: number, err?: Error) => void = () => {}, needed: () => number = () => Infinity, o: { batchOf?: number } = {}) {
    if (!Number.isSafeInteger(keep) || keep < chain.reorgDepth) {
      throw new RangeError(`pruning must keep at least the ${chain.reorgDepth} blocks of the deepest reorganisation followed, not ${keep}`);
    }
    this.chain = chain;
    this.env = env;
    this.keep = keep;
    this.report = report;
    this.needed = needed;
    this.batchOf = Math.max(1, o.batchOf ?? 1);
  }

  start(): void {
    this.chain.on('tip', this.onTip);
    this.schedule();
  }

  /** Resolves once no chunk is being written (the store can then be closed). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.chain.off('tip', this.onTip);
    await this.running;
  }

  /** Resolves when everything prunable now is pruned: for tests. */
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

  /** Prunes what may be pruned now, in the background: on every new tip, and when what held it back (needed) moved. */
  schedule(): void {
    if (this.running || this.stopped || this.target() - this.chain.db.history.prunedHeight < this.batchOf) return;
    this.running = nextTurn(this.env)
      .then(() => this.run())
      .catch((err: Error) => this.report(this.chain.db.history.prunedHeight, err))
      .finally(() => (this.running = undefined));
  }

  private async run(): Promise<void> {
    const history = this.chain.db.history;
    while (!this.stopped && this.target() - history.prunedHeight >= this.batchOf) {
      // Between imports: a reorganisation connects its branch a block at a time, and a tip it
      // passes through (a longer branch that may yet fail, and be undone) is no tip to prune from.
      const pruned = await this.chain.withImportsPaused(async () => {
        const target = this.target();
        return target > history.prunedHeight ? history.prune(Math.min(target, history.prunedHeight + PRUNE_CHUNK)) : undefined;
      });
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
