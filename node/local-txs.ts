import type { Block } from '../ledger/block.ts';
import type { Mempool } from '../ledger/mempool.ts';
import type { Transaction } from '../ledger/transaction.ts';
import { MAX_TXS_PER_BATCH } from './wire.ts';

/**
 * How long a transaction of ours must have been out (since it was submitted, or last pushed again)
 * before a block that passes it over, with room to take it, is taken to mean its miner never got
 * it. Shorter would push again what merely reached the miner after its template was built.
 */
export const PASSED_OVER_AFTER_MS = 10_000;
/** Transactions of ours remembered at most: the oldest is forgotten first (it stays in the mempool). */
const MAX_LOCAL = 10_000;

/**
 * The transactions this node's own users submitted (RPC, the CLI), until a block takes them or
 * they leave the mempool. Gossip sends each once: a message lost on a link that stays up (a lossy
 * path, a peer that stopped reading for a while) left it with us and the peers that got it, and if
 * none of them mines, it waited for hours until it expired. So when a block that had room for it
 * (fewer transactions than a block takes, or one paying a lower fee) passes it over, it is pushed
 * to every peer again (TxRelay.pushToAll, which gossip's seen-cache does not stop), as Bitcoin
 * Core rebroadcasts a wallet's transactions that no block took. With each go its sender's earlier
 * nonces that the pool holds, ours or not: a user whose node went down mid-way sends the rest
 * through another, and a peer that lacks the first can take none of the others.
 */
export class LocalTxs {
  private readonly o: { readonly mempool: Mempool; readonly now: () => number; readonly blockRoom: number };
  /** By id (hex): the transaction, and when it was last sent (monotonic ms). */
  private readonly txs = new Map<string, { tx: Transaction; sentAt: number }>();

  constructor(o: LocalTxs['o']) {
    this.o = o;
  }

  /** A transaction of our users', admitted and announced now. */
  add(tx: Transaction): void {
    this.txs.delete(tx.idHex);
    this.txs.set(tx.idHex, { tx, sentAt: this.o.now() });
    if (this.txs.size > MAX_LOCAL) this.txs.delete(this.txs.keys().next().value!);
  }

  /**
   * Our transactions that `block` (the new tip) passed over though it had room for them, sent
   * long enough ago, each with its sender's earlier nonces in the pool: in nonce order, at most
   * one push batch, ours marked sent now. Those that left the mempool (mined, replaced, expired)
   * are forgotten.
   */
  passedOver(block: Block): Transaction[] {
    const now = this.o.now();
    const room = block.txs.length < this.o.blockRoom;
    let cheapest: bigint | undefined;
    for (const tx of block.txs) if (cheapest === undefined || tx.fee < cheapest) cheapest = tx.fee;
    const out = new Map<string, Transaction>();
    for (const [id, local] of this.txs) {
      if (!this.o.mempool.has(local.tx.id)) {
        this.txs.delete(id);
        continue;
      }
      if (now - local.sentAt < PASSED_OVER_AFTER_MS || out.size >= MAX_TXS_PER_BATCH) continue;
      if (!room && (cheapest === undefined || cheapest >= local.tx.fee)) continue;
      const earlier = this.earlierPending(local.tx).filter((tx) => !out.has(tx.idHex));
      if (out.size + earlier.length + 1 > MAX_TXS_PER_BATCH) continue;
      local.sentAt = now;
      for (const tx of earlier) out.set(tx.idHex, tx);
      out.set(id, local.tx);
    }
    return [...out.values()].sort((a, b) => (a.nonce < b.nonce ? -1 : a.nonce > b.nonce ? 1 : 0));
  }

  /** The pool's transactions from `tx`'s sender with lower nonces: what a peer needs before it can take `tx`. */
  private earlierPending(tx: Transaction): Transaction[] {
    return this.o.mempool
      .sentFrom(tx.from)
      .filter((e) => e.tx.nonce < tx.nonce)
      .map((e) => e.tx);
  }

  get size(): number {
    return this.txs.size;
  }
}
