import { EventEmitter } from 'node:events';
import { BoundedSet } from '../ledger/bounded.ts';
import { toHex } from '../ledger/bytes.ts';
import { CairnError } from '../ledger/errors.ts';
import { decodeBlock, type Block, type BlockHeader } from '../ledger/block.ts';
import type { Transaction } from '../ledger/transaction.ts';
import type { Mempool } from '../ledger/mempool.ts';
import type { BlockOutcome, Chain } from '../consensus/chain.ts';
import { checkBlockSanity, type SaneBlock } from '../consensus/sanity.ts';
import { ConsensusError } from '../consensus/errors.ts';
import { hasValidProofOfWork } from '../consensus/pow.ts';
import { decodeCompactBlock, encodeCompactBlock, type CompactBlock } from './compact.ts';
import { MAX_NONE_HELD, rebuildCompact, type CompactRebuildOptions } from './compact-rebuild.ts';
import type { PeerManager } from './peers.ts';
import type { NetworkStats, PeerRecords } from './peer-records.ts';
import type { NetworkNames } from './protocols.ts';
import { isOwnFailure, ownFailureFields, verdictFor, type Transport, type Verdict } from './transport.ts';
import type { TxSignatureVerifier } from './tx-signatures.ts';
import { encodeTxBatch } from './wire.ts';
import { GOSSIP_FORK_DEPTH, ORPHAN_TARGET_SLACK, gossipBatchTxs, maxGossipBytes } from './gossip-limits.ts';
import { AfterReorganisation, admitTxBatch } from './gossip-txs.ts';
import { TxBatchTurns, bannedSender, senderGroup } from './tx-batch-turns.ts';
import { BlocksInFlight } from './blocks-in-flight.ts';
import { StopGate } from './stop-gate.ts';
import { OrphansAwaited } from './orphans-awaited.ts';
import type { CompactStats, GossipEvents, GossipOptions } from './gossip-types.ts';

/** An honest node never sends a message above the cap: it is dropped unread, and its sender banned. */
const OVERSIZED_SCORE = 100;

/** Compact blocks remembered by header and forwarder, so that each is rebuilt once (see firstFrom). */
const MAX_REBUILT_FROM = 4096;

/**
 * Blocks and transactions over gossip. The topic validators run the real validation (the same
 * import queue and mempool admission as everything else), so only valid data is forwarded; a
 * compact block on the tip is forwarded once every check short of its import holds, and imported
 * behind its verdict (BIP 152).
 */
export class Gossip extends EventEmitter<GossipEvents> {
  private readonly o: GossipOptions;
  /** Validations under way, which a stop lets end: each refuses to import once it sees the stop. */
  private readonly gate = new StopGate();
  readonly compactStats: CompactStats = { rebuilt: 0, fetched: 0, fromOthers: 0, hedged: 0, failed: 0, unknownParent: 0, awaitedParent: 0, repeated: 0 };
  /** Blocks heard of on a branch that forks more than GOSSIP_FORK_DEPTH below our tip (offDeepFork). */
  deepForkBlocks = 0;
  private readonly inFlight = new BlocksInFlight();
  private readonly orphansAwaited: OrphansAwaited;
  /** `hash peer` of each compact block whose header held here lately, oldest first (MAX_REBUILT_FROM). */
  private readonly rebuiltFrom = new BoundedSet<string>(MAX_REBUILT_FROM);
  private readonly rebuilding: CompactRebuildOptions;

  /** What peers sent that a reorganisation under way refused, tried again once it has ended (a push's too). */
  readonly afterReorganisation: AfterReorganisation;
  /** Transaction batches validated one at a time per address group, a few waiting (tx-batch-turns.ts). */
  readonly txTurns: TxBatchTurns;

  constructor(o: GossipOptions) {
    super();
    this.o = o;
    const { transport, env, names, mempool, chain, peers, records } = o;
    this.rebuilding = { transport, env, names, mempool, params: chain.params, peers, records, untilStop: (answer) => this.gate.untilStop(answer), stopped: () => this.gate.stopped, noneHeld: new BoundedSet(MAX_NONE_HELD), askedAgain: new BoundedSet(MAX_NONE_HELD), stats: this.compactStats };
    const groupOf = (peer: string) => senderGroup(o.peers, o.records, peer);
    this.txTurns = new TxBatchTurns(groupOf, o.stats);
    this.afterReorganisation = new AfterReorganisation(o, this.gate, { admitted: (peer, txs) => this.relayOwn(peer, txs), offence: (peer, err) => void this.reject(peer, err) }, groupOf);
    this.orphansAwaited = new OrphansAwaited(chain, env);
  }

  start(): void {
    const { transport, names } = this.o;
    const cap = maxGossipBytes(this.o.chain.params.maxBlockBytes);
    // The size is judged before anything else reads the message.
    const capped = (validate: (peer: string, data: Uint8Array) => Promise<Verdict>) => (peer: string, data: Uint8Array) => {
      if (this.gate.stopped) return Promise.resolve<Verdict>('ignore');
      if (data.byteLength <= cap) return this.gate.track(validate(peer, data));
      if (this.o.stats) this.o.stats.oversizedGossip++;
      this.o.peers.penalize(peer, OVERSIZED_SCORE, `oversized gossip: ${data.byteLength} bytes, above the cap of ${cap}`);
      return Promise.resolve<Verdict>('reject');
    };
    const held = (validate: (peer: string, data: Uint8Array) => Promise<Verdict>) => (peer: string, data: Uint8Array) =>
      this.o.holdBlocks?.() ? Promise.resolve<Verdict>('ignore') : validate(peer, data);
    transport.subscribe(names.blockTopic, capped(held((peer, data) => this.validateBlock(peer, data))));
    transport.subscribe(names.compactBlockTopic, capped(held((peer, data) => this.validateCompactBlock(peer, data))));
    const welcome = (peer: string) => () => !this.gate.stopped && !bannedSender(this.o.peers, this.o.records, peer);
    transport.subscribe(names.txTopic, capped((peer, data) => this.txTurns.run(peer, data.byteLength, (park, group) => this.validateTxs(peer, data, park, group), welcome(peer))));
  }

  /** The peer brought us something valid first: it keeps its slot when the node is full. */
  private gave(peer: string, what: 'block' | 'tx'): void {
    this.o.records?.gave(peer, what, this.o.env.monotonic());
  }

  /**
   * What arrives from now on is ignored, neither validated nor forwarded. The topics are not left:
   * leaving prunes each mesh with a minute's backoff, so a node stopped and started again within
   * the minute would be kept out of its peers' meshes; the connections' close takes it out of
   * them anyway.
   */
  stop(): void {
    this.gate.stop();
    this.orphansAwaited.stop();
  }

  /**
   * Resolves once every validation under way at the stop has ended, so that none reaches the chain
   * or the mempool after the node's stop has waited for them: a block that waited (for its
   * parent's import, its forwarder's transactions) and finds the node stopping imports nothing.
   */
  drained(): Promise<void> {
    return this.gate.drained();
  }

  /** Announces a block as a compact block: peers rebuild it from their mempools. */
  async publishBlock(block: Block): Promise<void> {
    await this.o.transport.publish(this.o.names.compactBlockTopic, encodeCompactBlock(block));
  }

  /**
   * Publishes a block whole, on the block topic: for a tip that sync connected here. Its compact
   * block may have reached us already, held as an orphan and so not forwarded, and gossipsub
   * never publishes a message it has seen; the whole block is another message.
   */
  async publishWholeBlock(block: Block): Promise<void> {
    await this.o.transport.publish(this.o.names.blockTopic, block.bytes);
  }

  /**
   * Publishes transactions in as few batches as fit under the gossip cap; resolves to the number
   * of peers they were sent to.
   */
  async publishTxs(txs: readonly Transaction[]): Promise<number> {
    const per = gossipBatchTxs(this.o.chain.params.maxBlockBytes);
    let peers = 0;
    for (let i = 0; i < txs.length; i += per) {
      peers = Math.max(peers, await this.o.transport.publish(this.o.names.txTopic, encodeTxBatch(txs.slice(i, i + per))));
    }
    return peers;
  }

  private reject(peer: string, err: unknown): Verdict {
    const verdict = verdictFor(err);
    if (verdict === 'reject') {
      this.o.peers.penalize(peer, err instanceof CairnError ? err.banScore : 100, `invalid gossip: ${(err as Error).message}`);
      this.emit('invalid', peer, err);
    } else if (isOwnFailure(err)) {
      this.ownFailure(peer, err);
    }
    return verdict;
  }

  /** A failure on our side (a bug, the store): no peer's doing, so told here or nowhere. */
  private ownFailure(peer: string, err: unknown): void {
    this.o.log?.('warn', `gossip from ${peer} failed on our side, not the peer's: ${(err as Error)?.message ?? String(err)}`, ownFailureFields(err, { peer }));
  }

  /**
   * A whole block, judged as far as it can be before it waits for the import's turn (a reorganisation
   * may hold it for seconds), as a compact block is: junk, and copies of a block we hold with bodies
   * of their own, were held there in memory at the rate a peer could send them.
   */
  private async validateBlock(peer: string, data: Uint8Array): Promise<Verdict> {
    const { chain } = this.o;
    try {
      const block = decodeBlock(data);
      const { header } = block;
      if (chain.getEntry(header.hash)?.isValid) return 'ignore';
      // Another message of the block (its compact block, say) made it an orphan, and sync is
      // fetching its branch: this one is forwarded if that ends on our main chain, its body
      // checked first (the orphan's header may come with a body of the sender's own).
      if (chain.orphans.has(header.hash)) {
        checkBlockSanity(block, chain.params);
        // Its sender has the branch too, and the sync for the first may fail (a tamperer's bodies):
        // seed 14004 waited for its next poll, its other sources' statuses from before they had it.
        this.emit('orphan', peer);
        return await this.forwardedIfConnected(header.hash);
      }
      if (!hasValidProofOfWork(header)) throw new ConsensusError('HEADER_BAD_POW', 'block header lacks its proof of work');
      // Held as an orphan only with a claimed target near ours, as a compact block is.
      if (chain.judgeHeader(header) === 'unknown' && this.claimTooEasy(header)) {
        this.emit('orphan', peer);
        return 'ignore';
      }
      if (this.belowCheckpoint(peer) || this.offDeepFork(peer, header)) return 'ignore';
      return await this.verdictAfterSync(peer, await chain.processSaneBlock(checkBlockSanity(block, chain.params)), header.hash);
    } catch (err) {
      return this.reject(peer, err);
    }
  }

  /** verdictOf, but an orphan is forwarded if the branch sync fetches for it connects in time (node/orphans-awaited.ts). */
  private async verdictAfterSync(peer: string, outcome: BlockOutcome, hash: Uint8Array): Promise<Verdict> {
    const verdict = this.verdictOf(peer, outcome, hash);
    return outcome === 'orphan' ? await this.forwardedIfConnected(hash) : verdict;
  }

  private async forwardedIfConnected(hash: Uint8Array): Promise<Verdict> {
    return (await this.orphansAwaited.onMainChain(hash)) ? 'accept' : 'ignore';
  }

  /**
   * A header whose parent we lack, claiming a target far easier than our tip's: its proof of work
   * may have cost one hash, so it is not worth holding (or rebuilding) for a parent; sync is asked.
   */
  private claimTooEasy(header: BlockHeader): boolean {
    const { chain } = this.o;
    return !chain.getEntry(header.prevHash) && header.target > chain.tip.header.target * ORPHAN_TARGET_SLACK;
  }

  /**
   * Only a block that became our tip is forwarded: it is the one block whose every rule, state
   * included, we have checked. A side branch's blocks are checked for state only when fork choice
   * connects them, so forwarding one could make us relay an invalid block that gets an honest
   * node blamed; peers hear of a side branch once it leads, from whoever connects it.
   */
  private verdictOf(peer: string, outcome: BlockOutcome, hash: Uint8Array): Verdict {
    // A copy of one held already (another message of it came first) asks its sender's chain too.
    if (outcome === 'orphan' || (outcome === 'duplicate' && this.o.chain.orphans.has(hash))) this.emit('orphan', peer);
    if (outcome === 'connected') {
      this.gave(peer, 'block');
      this.emit('connected', peer, hash);
    }
    return outcome === 'connected' ? 'accept' : 'ignore';
  }

  /**
   * A compact block, after BIP 152. The proof of work is checked before anything else (so junk
   * costs one hash), then the header against its parent, then the block is rebuilt from the
   * mempool, with what is missing fetched from the peer that forwarded it (node/compact-rebuild.ts:
   * from other peers if it gives nothing). A block on our tip is
   * then forwarded at once and imported behind the verdict: its header has real work at the real
   * target, and every node on the way rebuilds and checks it the same way, so a hop costs these
   * checks rather than an import. The price is BIP 152's: a block whose header holds may still
   * fail its import, here or at the peers we forward it to, so such a failure is nobody's fault
   * but its miner's, who paid the work for it, and no forwarder is punished for it.
   */
  private async validateCompactBlock(peer: string, data: Uint8Array): Promise<Verdict> {
    const { chain } = this.o;
    try {
      const compact = decodeCompactBlock(data, chain.params.maxBlockTxs);
      const known = chain.getEntry(compact.header.hash);
      // A block known invalid but with a valid header: an honest node may have forwarded it.
      if (known) return 'ignore';
      if (!hasValidProofOfWork(compact.header)) throw new ConsensusError('HEADER_BAD_POW', 'compact block header lacks its proof of work');
      // Before fetching anything for it. Without its parent a header cannot be judged: its target
      // is its own claim, so its proof of work may have cost one hash, and rebuilding it (a pass
      // over the mempool, requests to the peer) would be ours to pay per message. As Bitcoin Core
      // does, the peer's chain is asked for instead (its status, then a sync).
      let judged = chain.judgeHeader(compact.header);
      const parent = toHex(compact.header.prevHash);
      if (judged === 'unknown' && this.inFlight.has(parent)) {
        this.compactStats.awaitedParent++;
        // Its parent is a compact block whose header held here and that is still being rebuilt,
        // or was forwarded a moment ago and is still importing (relayed before its import, as
        // BIP 152 does): a child found quickly waits for it, not for a sync.
        await this.inFlight.settled(parent);
        if (this.gate.stopped) return 'ignore';
        judged = chain.judgeHeader(compact.header);
      }
      // A header whose target is its own claim is rebuilt (and its block held as an orphan for its
      // parent) only if that claim is near our tip's: then it carries real work, and a node that
      // fell a block behind a fast chain catches up as its parents arrive. An easier claim may
      // have cost one hash: sync is asked instead.
      if (judged === 'unknown' && this.claimTooEasy(compact.header)) {
        this.compactStats.unknownParent++;
        this.emit('orphan', peer);
        return 'ignore';
      }
      if (this.belowCheckpoint(peer) || this.offDeepFork(peer, compact.header)) return 'ignore';
      const hash = toHex(compact.header.hash);
      if (!this.firstFrom(peer, hash)) {
        this.compactStats.repeated++;
        return 'ignore';
      }
      const verdict = await this.inFlight.rebuild(hash, () => this.rebuildAndImport(peer, compact), () => chain.getEntry(compact.header.hash) !== undefined);
      // Out of flight first: its children, and transactions it would let in, wait for sync now.
      return verdict === 'orphan' ? await this.forwardedIfConnected(compact.header.hash) : verdict;
    } catch (err) {
      return this.reject(peer, err);
    }
  }

  /**
   * Whether this is the first compact block of header `hash` from `peer`. An honest peer forwards
   * one (gossipsub drops the same bytes again), but the same header with other short ids is
   * another message: one header's work bought a pass over the mempool and getBlockTxs round trips
   * per message, for as long as the block stayed unknown (an empty answer is no offence).
   */
  private firstFrom(peer: string, hash: string): boolean {
    const key = `${hash} ${peer}`;
    if (this.rebuiltFrom.has(key)) return false;
    this.rebuiltFrom.add(key);
    return true;
  }

  /** validateCompactBlock's second half, once the header held against its parent; 'orphan' for a block held as one. */
  private async rebuildAndImport(peer: string, compact: CompactBlock): Promise<Verdict | 'orphan'> {
    const { chain } = this.o;
    const block = await rebuildCompact(this.rebuilding, peer, compact);
    // The node began to stop while the transactions were fetched: nothing more goes into its chain.
    if (this.gate.stopped) return 'ignore';
    if (!block) {
      this.compactStats.failed++;
      this.emit('orphan', peer); // let sync fetch it whole
      return 'ignore';
    }
    // Judged again: the tip may have moved while transactions were fetched (its parent stays known).
    const place = chain.judgeHeader(block.header);
    if (place === 'tip') {
      this.importForwarded(peer, block);
      return 'accept';
    }
    try {
      const outcome = await chain.processSaneBlock(block);
      const verdict = this.verdictOf(peer, outcome, block.header.hash);
      return outcome === 'orphan' ? 'orphan' : verdict;
    } catch (err) {
      if (isOwnFailure(err)) throw err;
      // Everything a forwarder checks before it forwards has held here too.
      this.emit('failed', peer, err);
      return 'ignore';
    }
  }

  /**
   * Whether our tip is below the checkpoint we hold (`--checkpoint`): then no block is taken from
   * gossip, and the peer's chain is asked for instead, since sync takes only a chain whose headers
   * pass through it. Blocks gossiped one by one on a new node's tip, a cheap chain's, would
   * otherwise go deeper than the reorg depth before the checkpoint's chain is met.
   */
  private belowCheckpoint(peer: string): boolean {
    if (!this.o.chain.belowCheckpoint) return false;
    this.emit('orphan', peer);
    return true;
  }

  /**
   * Whether `header` builds on a block more than GOSSIP_FORK_DEPTH below our tip: then it is not
   * taken from gossip, and the peer's chain is asked for instead (sync fetches a branch only once
   * its headers add up to more work than ours). An honest competing block forks near the tip; far
   * below it, ASERT eases the targets of a branch dated on schedule from its fork by a factor that
   * doubles every half-life, so such blocks could cost next to nothing, and each one imported
   * was a block stored.
   * A parent not in memory is placed by the header's height: one stored below the window, the
   * import would find in the store (and load the window back down to it).
   */
  private offDeepFork(peer: string, header: BlockHeader): boolean {
    const { chain } = this.o;
    const parentHeight = chain.getEntry(header.prevHash)?.height ?? header.height - 1;
    if (parentHeight + GOSSIP_FORK_DEPTH >= chain.tip.height) return false;
    this.deepForkBlocks++;
    this.emit('orphan', peer);
    return true;
  }

  /** The import of a compact block already forwarded; its outcome is the forwarder's record. */
  private importForwarded(peer: string, block: SaneBlock): void {
    this.inFlight.importAnnounced(block, () => this.o.chain.processSaneBlock(block)).then(
      (outcome) => void this.verdictOf(peer, outcome, block.header.hash),
      (err: unknown) => (isOwnFailure(err) ? this.ownFailure(peer, err) : void this.emit('failed', peer, err)),
    );
  }

  /**
   * Announces a block this node made before importing it, as a compact block on the tip is
   * forwarded: for a block on the tip whose header and body hold (the caller checks).
   */
  announceAndImport(block: SaneBlock): Promise<BlockOutcome> {
    return this.inFlight.importAnnounced(block, () => this.o.chain.processSaneBlock(block), () => this.publishBlock(block));
  }

  /** The bytes of a compact block forwarded and still importing, if `hash` is one. */
  forwardedBlockBytes(hash: Uint8Array): Uint8Array | undefined {
    return this.inFlight.forwardedBytes(hash);
  }

  /**
   * A batch of transactions (node/gossip-txs.ts): forwarded if all of it was new and valid, and
   * what was new relayed in a batch of our own if only part was; rejected whole, and its sender
   * punished, if any is invalid.
   */
  private async validateTxs(peer: string, data: Uint8Array, park?: () => void, group?: string): Promise<Verdict> {
    try {
      const { admitted, whole, afterReorganisation } = await admitTxBatch(this.o, data, () => this.inFlight.all(), park);
      if (afterReorganisation) this.afterReorganisation.add(peer, afterReorganisation.txs, afterReorganisation.until, group);
      if (admitted.length === 0) return 'ignore';
      if (!whole) return (this.relayOwn(peer, admitted), 'ignore');
      this.gave(peer, 'tx');
      return 'accept';
    } catch (err) {
      return this.reject(peer, err);
    }
  }

  /** Transactions of `peer` that entered, relayed in a batch of our own. */
  private relayOwn(peer: string, txs: readonly Transaction[]): void {
    this.gave(peer, 'tx');
    for (const tx of txs) this.o.announceTx?.(tx);
  }
}
