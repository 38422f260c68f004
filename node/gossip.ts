import { EventEmitter } from 'node:events';
import { TopicValidatorResult, type Message } from '@libp2p/gossipsub';
import type { PeerId } from '@libp2p/interface';
import { peerIdFromString } from '@libp2p/peer-id';

/** How long a connection may go without a gossip stream before we hang up. */
const GOSSIPLESS_GRACE_MS = 10_000;
import { CairnError, DecodeError } from '../ledger/errors.ts';
import { decodeBlock, type Block } from '../ledger/block.ts';
import type { Transaction } from '../ledger/transaction.ts';
import type { Mempool } from '../ledger/mempool.ts';
import type { BlockOutcome, Chain } from '../consensus/chain.ts';
import type { SaneBlock } from '../consensus/sanity.ts';
import { GOSSIP_BAN_SCORE, type Host } from './host.ts';
import { assemble, decodeCompactBlock, encodeCompactBlock, fetchBlockTxs, matchMempool } from './compact.ts';
import { ConsensusError } from '../consensus/errors.ts';
import { hasValidProofOfWork } from '../consensus/pow.ts';
import type { PeerManager } from './peers.ts';
import type { NetworkNames } from './protocols.ts';
import type { TxSignatureVerifier } from './tx-signatures.ts';
import { decodeTxBatch, encodeTxBatch } from './wire.ts';

/**
 * Every error → gossip verdict decision, in one place (Lodestar's shape). Reject lowers the
 * forwarding peer's gossipsub score and adds the error's ban score to ours; Ignore is for what is
 * nobody's fault (duplicates, stale or not-yet-valid data, a full mempool).
 */
export function verdictFor(err: unknown): TopicValidatorResult {
  if (err instanceof DecodeError) return TopicValidatorResult.Reject;
  if (err instanceof CairnError) return err.banScore > 0 ? TopicValidatorResult.Reject : TopicValidatorResult.Ignore;
  return TopicValidatorResult.Ignore; // our own failure, not the peer's
}

export interface GossipEvents {
  /** A gossiped block whose parent we lack: sync from that peer. */
  /** A gossiped block we could not place (unknown parent, or not rebuildable): sync from that peer. */
  orphan: [peer: PeerId];
  invalid: [peer: PeerId, error: unknown];
}

/**
 * Blocks and transactions over gossipsub. The topic validators run the real validation (the same
 * import queue and mempool admission as everything else), so only valid data is forwarded.
 */
export class Gossip extends EventEmitter<GossipEvents> {
  private readonly host: Host;
  private readonly names: NetworkNames;
  private readonly chain: Chain;
  private readonly mempool: Mempool;
  private readonly peers: PeerManager;
  private readonly clock: () => number;
  private readonly signatures: TxSignatureVerifier;
  private readonly onHeartbeat = () => this.policeScores();
  /** When each connected peer connected (ms), to spot connections that carry no gossip. */
  private readonly connectedAt = new Map<string, number>();
  private readonly onConnect = (e: CustomEvent<PeerId>) => void this.connectedAt.set(e.detail.toString(), Date.now());
  private readonly onDisconnect = (e: CustomEvent<PeerId>) => void this.connectedAt.delete(e.detail.toString());
  /** Compact blocks rebuilt from the mempool alone, with some transactions fetched, or not at all. */
  readonly compactStats = { rebuilt: 0, fetched: 0, failed: 0 };

  constructor(o: { host: Host; names: NetworkNames; chain: Chain; mempool: Mempool; peers: PeerManager; clock: () => number; signatures: TxSignatureVerifier }) {
    super();
    this.host = o.host;
    this.names = o.names;
    this.chain = o.chain;
    this.mempool = o.mempool;
    this.peers = o.peers;
    this.clock = o.clock;
    this.signatures = o.signatures;
  }

  start(): void {
    const pubsub = this.host.services.pubsub;
    pubsub.topicValidators.set(this.names.blockTopic, (peer, msg) => this.validateBlock(peer, msg));
    pubsub.topicValidators.set(this.names.txTopic, (peer, msg) => this.validateTxs(peer, msg));
    pubsub.topicValidators.set(this.names.compactBlockTopic, (peer, msg) => this.validateCompactBlock(peer, msg));
    pubsub.subscribe(this.names.blockTopic);
    pubsub.subscribe(this.names.compactBlockTopic);
    pubsub.subscribe(this.names.txTopic);
    pubsub.addEventListener('gossipsub:heartbeat', this.onHeartbeat);
    this.host.addEventListener('peer:connect', this.onConnect);
    this.host.addEventListener('peer:disconnect', this.onDisconnect);
  }

  stop(): void {
    const pubsub = this.host.services.pubsub;
    pubsub.removeEventListener('gossipsub:heartbeat', this.onHeartbeat);
    this.host.removeEventListener('peer:connect', this.onConnect);
    this.host.removeEventListener('peer:disconnect', this.onDisconnect);
    pubsub.topicValidators.delete(this.names.blockTopic);
    pubsub.topicValidators.delete(this.names.txTopic);
    pubsub.topicValidators.delete(this.names.compactBlockTopic);
  }

  /** Announces a block as a compact block: peers rebuild it from their mempools. */
  async publishBlock(block: Block): Promise<void> {
    await this.host.services.pubsub.publish(this.names.compactBlockTopic, encodeCompactBlock(block)).catch(() => {});
  }

  /** Publishes transactions as one batch; resolves to the number of peers it was sent to. */
  async publishTxs(txs: readonly Transaction[]): Promise<number> {
    const result = await this.host.services.pubsub.publish(this.names.txTopic, encodeTxBatch(txs)).catch(() => undefined);
    return result?.recipients.length ?? 0;
  }

  private reject(peer: PeerId, err: unknown): TopicValidatorResult {
    const verdict = verdictFor(err);
    if (verdict === TopicValidatorResult.Reject) {
      this.peers.penalize(peer, err instanceof CairnError ? err.banScore : 100, `invalid gossip: ${(err as Error).message}`);
      this.emit('invalid', peer, err);
    }
    return verdict;
  }

  private async validateBlock(peer: PeerId, msg: Message): Promise<TopicValidatorResult> {
    try {
      return await this.importBlock(peer, decodeBlock(msg.data));
    } catch (err) {
      return this.reject(peer, err);
    }
  }

  private async importBlock(peer: PeerId, block: Block): Promise<TopicValidatorResult> {
    return this.verdictOf(peer, await this.chain.processBlock(block));
  }

  /**
   * Only a block that became our tip is forwarded: it is the one block whose every rule, state
   * included, we have checked. A side branch's blocks are checked for state only when fork choice
   * connects them, so forwarding one could make us relay an invalid block that gets an honest
   * node blamed; peers hear of a side branch once it leads, from whoever connects it.
   */
  private verdictOf(peer: PeerId, outcome: BlockOutcome): TopicValidatorResult {
    if (outcome === 'orphan') this.emit('orphan', peer);
    return outcome === 'connected' ? TopicValidatorResult.Accept : TopicValidatorResult.Ignore;
  }

  /**
   * A compact block: the proof of work is checked before anything else (so junk costs one hash),
   * then the block is rebuilt from the mempool, with what is missing fetched from the peer that
   * forwarded it, and imported like any other.
   */
  private async validateCompactBlock(peer: PeerId, msg: Message): Promise<TopicValidatorResult> {
    try {
      const compact = decodeCompactBlock(msg.data, this.chain.params.maxBlockTxs);
      const known = this.chain.getEntry(compact.header.hash);
      if (known) return known.isValid ? TopicValidatorResult.Ignore : TopicValidatorResult.Reject;
      if (!hasValidProofOfWork(compact.header)) throw new ConsensusError('HEADER_BAD_POW', 'compact block header lacks its proof of work');
      const { txs, missing } = matchMempool(compact, this.mempool);
      let block: SaneBlock | undefined;
      if (missing.length > 0) {
        this.compactStats.fetched++;
        const fetched = await fetchBlockTxs(this.host, this.names, peer, compact, missing).catch(() => undefined);
        if (fetched) missing.forEach((index, k) => (txs[index] = fetched[k]));
      } else {
        this.compactStats.rebuilt++;
      }
      if (txs.every((tx) => tx !== undefined)) block = assemble(compact, txs as Transaction[], this.chain.params);
      if (!block) {
        // A short-id collision, or transactions we could not get: ask for all of them.
        const all = await fetchBlockTxs(this.host, this.names, peer, compact, compact.shortIds.map((_, i) => i)).catch(() => undefined);
        block = all && assemble(compact, all, this.chain.params);
      }
      if (!block) {
        this.compactStats.failed++;
        this.emit('orphan', peer); // let sync fetch it whole
        return TopicValidatorResult.Ignore;
      }
      return this.verdictOf(peer, await this.chain.processSaneBlock(block));
    } catch (err) {
      return this.reject(peer, err);
    }
  }

  /**
   * A batch of transactions: the new ones' signatures checked together on the pool, then each
   * admitted in order. Forwarded if any was new and valid; rejected whole, and its sender
   * punished, if any is invalid (one forged transaction spoils the message).
   */
  private async validateTxs(peer: PeerId, msg: Message): Promise<TopicValidatorResult> {
    try {
      const txs = decodeTxBatch(msg.data);
      if (txs.length === 0) throw new DecodeError('DECODE_NON_CANONICAL', 'an empty transaction batch');
      const fresh = txs.filter((tx) => !this.mempool.has(tx.id));
      await this.signatures.preverify(fresh);
      const now = this.clock();
      let admitted = 0;
      for (const tx of fresh) {
        try {
          await this.mempool.add(tx, now);
          admitted++;
        } catch (err) {
          if (verdictFor(err) === TopicValidatorResult.Reject) throw err;
        }
      }
      return admitted > 0 ? TopicValidatorResult.Accept : TopicValidatorResult.Ignore;
    } catch (err) {
      return this.reject(peer, err);
    }
  }

  /**
   * gossipsub only ignores low scorers: a peer that keeps sending invalid data is cut off here.
   * So is a connection that has carried no gossip stream for a while — what is left of a peer
   * whose stream gossipsub closed (an over-limit message, a protocol error).
   */
  private policeScores(): void {
    const pubsub = this.host.services.pubsub;
    const gossiping = new Set<string>();
    for (const peer of pubsub.getPeers()) {
      gossiping.add(peer.toString());
      if (pubsub.getScore(peer.toString()) < GOSSIP_BAN_SCORE && !this.peers.isBanned(peer)) {
        this.peers.ban(peer, 'gossip score below threshold');
      }
    }
    const now = Date.now();
    for (const [id, since] of this.connectedAt) {
      if (gossiping.has(id) || now - since < GOSSIPLESS_GRACE_MS || this.peers.isBanned(id)) continue;
      this.connectedAt.delete(id);
      this.peers.penalize(id, 50, 'connected without a working gossip stream');
      void this.host.hangUp(peerIdFromString(id)).catch(() => {});
    }
  }
}
