import type { PeerId } from '@libp2p/interface';
import { CairnError } from '../ledger/errors.ts';
import type { Mempool } from '../ledger/mempool.ts';
import type { Transaction } from '../ledger/transaction.ts';
import type { Gossip } from './gossip.ts';
import type { TxSignatureVerifier } from './tx-signatures.ts';
import type { Host } from './host.ts';
import type { PeerManager } from './peers.ts';
import type { NetworkNames } from './protocols.ts';
import { request, serve } from './reqresp.ts';
import { MAX_TXS_PER_PUSH, decodeTxPush, encodeTxPush } from './wire.ts';

const PUSH_TIMEOUT_MS = 10_000;
const MAX_PUSH_BYTES = 16 + MAX_TXS_PER_PUSH * 200;

/**
 * Pushes pending transactions straight to a peer. Gossip cannot do this job: gossipsub refuses
 * to publish a message it has seen in the last two minutes, so transactions that a reorg put
 * back, or that one side of a healed partition never saw, would wait for someone to resubmit
 * them. Used on every new connection (the mempools meet) and after every reorg. What a peer
 * admits from a push it gossips on, so the rest of its side hears of it.
 */
export class TxRelay {
  private readonly o: { host: Host; names: NetworkNames; mempool: Mempool; gossip: Gossip; peers: PeerManager; clock: () => number; signatures: TxSignatureVerifier };

  constructor(o: TxRelay['o']) {
    this.o = o;
  }

  async start(): Promise<void> {
    await serve(
      this.o.host,
      this.o.names.txPush,
      async (req, peer) => {
        const txs = decodeTxPush(req);
        await this.o.signatures.preverify(txs.filter((tx) => !this.o.mempool.has(tx.id)));
        for (const tx of txs) await this.admit(tx, peer);
        return new Uint8Array(0);
      },
      { timeoutMs: PUSH_TIMEOUT_MS, maxBytes: MAX_PUSH_BYTES, onBadRequest: (peer, err) => this.o.peers.badRequest(peer, err) },
    );
  }

  private async admit(tx: Transaction, peer: PeerId): Promise<void> {
    try {
      await this.o.mempool.add(tx, this.o.clock());
      await this.o.gossip.publishTx(tx);
    } catch (err) {
      if (err instanceof CairnError) this.o.peers.penalize(peer, err.banScore, `pushed tx: ${err.message}`);
    }
  }

  /** Sends `txs` (in batches) to `peer`; failures are the peer's business, not ours. */
  async push(peer: PeerId, txs: readonly Transaction[]): Promise<void> {
    for (let i = 0; i < txs.length; i += MAX_TXS_PER_PUSH) {
      const batch = txs.slice(i, i + MAX_TXS_PER_PUSH);
      await request(this.o.host, peer, this.o.names.txPush, encodeTxPush(batch), { timeoutMs: PUSH_TIMEOUT_MS, maxBytes: 16 }).catch(() => {});
    }
  }

  async pushToAll(txs: readonly Transaction[]): Promise<void> {
    if (txs.length === 0) return;
    await Promise.all(this.o.host.getPeers().map((peer) => this.push(peer, txs)));
  }

  /** Our whole mempool, in nonce order per sender, for a peer that just connected. */
  async pushMempool(peer: PeerId): Promise<void> {
    const txs = [...this.o.mempool.entries()].map((e) => e.tx).sort((a, b) => (a.nonce < b.nonce ? -1 : a.nonce > b.nonce ? 1 : 0));
    await this.push(peer, txs);
  }
}
