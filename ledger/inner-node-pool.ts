import { INNER_NODE_BYTES, newNode } from './smt.ts';

/**
 * The inner nodes a tree update makes, reused by the next update once the first one's writes have
 * been copied by whoever applies them. A block's update makes thousands of inner nodes, each a
 * view on a shared slab (smt.ts `newNode`), and phase 2 is long enough that a scavenge often
 * falls inside it: the views made so far were then copied as survivors, the largest share of a
 * syncing node's (BENCHMARKS.md). ChainDB's tree copies what it keeps of an update (the top into
 * its flat arrays, the nodes below it for its cache and the store) and then releases the update;
 * an update nobody releases keeps its nodes, and the next update takes a pool of its own.
 */
export class InnerNodePool {
  /**
   * Tests set this: a release then fills the nodes it frees with 0xff, so that a consumer that
   * reads an update's node after releasing it reads garbage at once, not only when a later
   * update happens to rewrite that very node.
   */
  static poisonOnRelease = false;

  private readonly nodes: Uint8Array[] = [];
  private used = 0;
  /** Claims so far; the holder is the last claim until it releases. */
  private claims = 0;
  private held = false;

  /** Whether an update may take this pool's nodes now (no unreleased update holds them). */
  get available(): boolean {
    return !this.held;
  }

  /**
   * Taken by an update: its nodes are handed out again from the first. The function returned
   * releases this claim, once; called late (after a later claim), it does nothing.
   */
  claim(): () => void {
    if (this.held) throw new Error('an inner node pool claimed while held');
    this.held = true;
    this.used = 0;
    const claim = ++this.claims;
    return () => {
      if (claim !== this.claims || !this.held) return;
      if (InnerNodePool.poisonOnRelease) for (let i = 0; i < Math.min(this.used, this.nodes.length); i++) this.nodes[i]!.fill(0xff);
      this.held = false;
    };
  }

  /** A zeroed inner node: one made by an earlier update, or a new one (past the cap, never kept). */
  take(): Uint8Array {
    if (this.used >= POOLED_NODES) return newNode(INNER_NODE_BYTES);
    let node = this.nodes[this.used];
    if (node === undefined) node = this.nodes[this.used] = newNode(INNER_NODE_BYTES);
    else node.fill(0);
    this.used++;
    return node;
  }
}

/**
 * Nodes a pool keeps (~9 MB with their views): more than a block of 2,000 transfers makes in a
 * tree of millions of accounts. A larger update (a chain's genesis) takes its extra nodes new.
 */
const POOLED_NODES = 1 << 16;
