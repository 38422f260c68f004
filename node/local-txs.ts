import type { Block } from '../ledger/block.ts';
import type { Mempool } from '../ledger/mempool.ts';
import type { Transaction } from '../ledger/transaction.ts';
import { BoundedMap } from '../ledger/bounded.ts';
import { toHex } from '../ledger/bytes.ts';
import { MAX_TXS_PER_BATCH } from './wire.ts';

interface Local {
  readonly tx: Transaction;
  /** When it was last sent (monotonic ms). */
  sentAt: number;
}

const byNonce = (a: Transaction, b: Transaction) => (a.nonce < b.nonce ? -1 : a.nonce > b.nonce ? 1 : 0);

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
  private readonly o: {
    readonly mempool: Pick<Mempool, 'has' | 'sentFrom'>;
    readonly now: () => number;
    readonly blockRoom: number;
    /** Transactions a push carries at most (MAX_TXS_PER_BATCH). */
    readonly maxPush?: number;
  };
  /** Ours, by id (hex), the one added longest ago first. */
  private readonly txs = new BoundedMap<string, Local>(MAX_LOCAL);

  constructor(o: LocalTxs['o']) {
    this.o = o;
  }

  /** A transaction of our users', admitted and announced now. */
  add(tx: Transaction): void {
    this.txs.delete(tx.idHex);
    this.txs.set(tx.idHex, { tx, sentAt: this.o.now() });
  }

  /**
   * Our transactions that `block` (the new tip) passed over though it had room for them, sent
   * long enough ago, each with its sender's earlier nonces in the pool: in nonce order, at most
   * one push batch, ours in it marked sent now. A sender whose nonces do not all fit has its
   * earliest sent (a peer takes none past a nonce it lacks), and ours left out go next time. Those
   * that left the mempool (mined, replaced, expired) are forgotten.
   */
  passedOver(block: Block): Transaction[] {
    const now = this.o.now();
    const room = block.txs.length < this.o.blockRoom;
    let cheapest: bigint | undefined;
    for (const tx of block.txs) if (cheapest === undefined || tx.fee < cheapest) cheapest = tx.fee;
    // Ours that are due, by sender: each sender's pool is read once, however many of ours it has.
    const due = new Map<string, { from: Uint8Array; top: bigint; ours: Local[] }>();
    for (const [id, local] of this.txs) {
      if (!this.o.mempool.has(local.tx.id)) {
        this.txs.delete(id);
        continue;
      }
      if (now - local.sentAt < PASSED_OVER_AFTER_MS) continue;
      if (!room && (cheapest === undefined || cheapest >= local.tx.fee)) continue;
      const sender = toHex(local.tx.from);
      const d = due.get(sender) ?? { from: local.tx.from, top: local.tx.nonce, ours: [] };
      if (local.tx.nonce > d.top) d.top = local.tx.nonce;
      d.ours.push(local);
      due.set(sender, d);
    }
    const maxPush = this.o.maxPush ?? MAX_TXS_PER_BATCH;
    const out: Transaction[] = [];
    for (const { from, top, ours } of due.values()) {
      if (out.length >= maxPush) break;
      const upTo = this.o.mempool
        .sentFrom(from)
        .map((e) => e.tx)
        .filter((tx) => tx.nonce <= top)
        .sort(byNonce)
        .slice(0, maxPush - out.length);
      out.push(...upTo);
      const last = upTo.at(-1)?.nonce ?? -1n;
      for (const local of ours) if (local.tx.nonce <= last) local.sentAt = now;
    }
    return out.sort(byNonce);
  }

  /** Whether the id (hex) is one of ours, followed here. */
  has(idHex: string): boolean {
    return this.txs.has(idHex);
  }

  get size(): number {
    return this.txs.size;
  }
}
