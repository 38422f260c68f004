import type { Block } from '../ledger/block.ts';
import type { Mempool } from '../ledger/mempool.ts';
import type { Transaction } from '../ledger/transaction.ts';

/**
 * How long a sender's next transaction must have been passed over by blocks with room for it
 * before it is pushed again; the wait doubles after each push. Gossip carries a transaction to
 * every node within a second or two: one a minute old that a block with room left out is one its
 * miner lacks.
 */
export const RELAYED_PASSED_OVER_AFTER_MS = 60_000;

interface PassedOver {
  /** When it may be pushed again (monotonic ms). */
  nextAt: number;
  /** The wait after its next push. */
  interval: number;
}

/**
 * The transactions peers relayed to us that blocks keep passing over. Cairn has no INV/GETDATA: a
 * node never asks for what it lacks, and a transaction reaches a miner only by gossip (sent once)
 * or a push (on connection, after a reorganisation). A user's transaction whose only copies went,
 * after its origin crashed, to nodes that do not mine, by a gossip message to the miners lost on a
 * link that stays up, waited until it expired (3 h). Bitcoin Core rebroadcasts only its wallet's
 * transactions (local-txs.ts does that for our users'), but its peers ask with INV/GETDATA for
 * what they lack, which Cairn's cannot.
 *
 * Cheap because it waits for evidence: only a block that had room for more (its miner took every
 * transaction it could) says that what it left out, executable here for a minute or more, is
 * missing there; a full block, the usual case under load, says nothing and costs nothing. Bounded:
 * each sender's next transaction goes with its run (a peer takes none past a nonce it lacks) at
 * most once a minute, then two, four..., and a push holds what is left of one batch. A peer that
 * has them refuses them on sight, before any signature check.
 */
export class RelayedTxs {
  private readonly o: {
    readonly mempool: Pick<Mempool, 'executableHeads' | 'runFrom'>;
    readonly now: () => number;
    readonly blockRoom: number;
    /** Whether the id (hex) is one of our users' transactions, which local-txs.ts pushes again itself. */
    readonly ours: (idHex: string) => boolean;
  };
  /** The senders' next transactions that blocks with room passed over, by id (hex). */
  private passed = new Map<string, PassedOver>();

  constructor(o: RelayedTxs['o']) {
    this.o = o;
  }

  /**
   * The runs of senders whose next transaction `block` (the new tip), with room for more, passed
   * over, long enough since it was first passed over or last pushed: in nonce order per sender, at
   * most `max` in all. Each next transaction that is no longer passed over (mined, gone, no longer
   * first) is forgotten.
   */
  passedOver(block: Block, max: number): Transaction[] {
    if (block.txs.length >= this.o.blockRoom) return [];
    const now = this.o.now();
    const passed = new Map<string, PassedOver>();
    const out: Transaction[] = [];
    for (const next of this.o.mempool.executableHeads()) {
      if (this.o.ours(next.idHex)) continue;
      const at = this.passed.get(next.idHex) ?? { nextAt: now + RELAYED_PASSED_OVER_AFTER_MS, interval: 2 * RELAYED_PASSED_OVER_AFTER_MS };
      passed.set(next.idHex, at);
      if (now < at.nextAt || out.length >= max) continue;
      out.push(...this.o.mempool.runFrom(next).slice(0, max - out.length).map((e) => e.tx));
      at.nextAt = now + at.interval;
      at.interval *= 2;
    }
    this.passed = passed;
    return out;
  }
}
