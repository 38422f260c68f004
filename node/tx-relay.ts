import { CairnError } from '../ledger/errors.ts';
import type { Mempool } from '../ledger/mempool.ts';
import type { MempoolEntry } from '../ledger/pending-set.ts';
import type { Transaction } from '../ledger/transaction.ts';
import type { Block } from '../ledger/block.ts';
import { LocalTxs } from './local-txs.ts';
import { RelayedTxs } from './relayed-txs.ts';
import type { Gossip } from './gossip.ts';
import { liftedByABlock, reorganisationMet } from './gossip-txs.ts';
import type { Chain } from '../consensus/chain.ts';
import type { TxSignatureVerifier } from './tx-signatures.ts';
import { InterruptibleSleeps, type Env, type Timer } from './env.ts';
import { TransportError, waitingOutBusy, type Transport } from './transport.ts';
import type { PeerRecords } from './peer-records.ts';
import type { Serve } from './serving.ts';
import type { PeerManager } from './peers.ts';
import type { NetworkNames } from './protocols.ts';
import { senderGroup } from './tx-batch-turns.ts';
import { MAX_TXS_PER_BATCH, decodeTxBatch, encodeTxBatch } from './wire.ts';

const PUSH_TIMEOUT_MS = 10_000;
/** A push: 01 ‖ count ‖ up to 1,000 transactions of 166 bytes = 166,003 bytes, with room to spare. */
export const MAX_PUSH_BYTES = 16 + MAX_TXS_PER_BATCH * 200;
/** Busy answers to one batch before a push gives the rest up (the peer hears of them by gossip). */
const MAX_BUSY_PER_BATCH = 3;
/** The pause before a batch lost on the way (a timeout, a reset stream) is sent again, once. */
export const PUSH_RETRY_PAUSE_MS = 5_000;
/**
 * How long an admitted transaction waits for others to share its gossip message. Each message
 * costs a stream write per mesh peer and a validation at each of them, whatever it carries; one
 * per transaction held nodes' event loops for seconds at a thousand transactions a second.
 */
const ANNOUNCE_DELAY_MS = 10;
/**
 * A peer that dialled us gets our whole mempool at most this often per address group (its subnet,
 * /24 or /48, as the serving budgets count). An identity costs nothing and a reconnect little, nor
 * does an IPv6 host's next /64, while a push is up to 33 MB of our upload (and a sort of the whole
 * pool): without it one host reconnecting under fresh identities, or from fresh /64s, had the
 * mempool sent to it again each time. Within the interval the group is sent what entered since it
 * was last sent any: what a node that restarted missed while it was down, which only a push brings
 * it (gossip sends each once), and to a host that keeps reconnecting no more than gossip gives it.
 * Peers we dialled, and the machine's own processes, are sent it all on every connection.
 */
export const MEMPOOL_PUSH_PER_GROUP_INTERVAL_MS = 10 * 60_000;
/** Groups remembered for that at most: the oldest goes first. */
const MEMPOOL_PUSH_GROUPS = 4_096;

/**
 * Relays transactions this node admitted itself (from its user, or from a push): gathered for a
 * few milliseconds into one gossip message of up to 1,000, pushed directly to every peer when the
 * gossip reached nobody (no mesh yet, say: gossipsub would never try again).
 *
 * Also pushes pending transactions straight to a peer. Gossip cannot do this job: gossipsub refuses
 * to publish a message it has seen in the last two minutes, so transactions that a reorg put
 * back, or that one side of a healed partition never saw, would wait for someone to resubmit
 * them. Used on every new connection (the mempools meet), after every reorg, and for our users'
 * transactions a block passed over (local-txs.ts). What a peer admits from a push it gossips on,
 * so the rest of its side hears of it.
 */
export class TxRelay {
  private readonly o: {
    transport: Transport;
    env: Env;
    names: NetworkNames;
    mempool: Mempool;
    chain: Pick<Chain, 'reorganisationUnderWay' | 'untilSettled'>;
    gossip: Gossip;
    peers: PeerManager;
    clock: () => number;
    signatures: TxSignatureVerifier;
    serve: Serve;
    records?: PeerRecords;
    /** Transactions a block can take (consensus/miner.ts blockTxRoom): whether one had room for ours. */
    blockRoom: number;
  };
  /** What this node's own users submitted, pushed again when a block passes it over (local-txs.ts). */
  private readonly local: LocalTxs;
  /** What peers relayed, pushed again when blocks with room keep passing it over (relayed-txs.ts). */
  private readonly relayed: RelayedTxs;

  private outbox: Transaction[] = [];
  /**
   * The address groups of inbound peers sent our whole mempool, when (oldest first), and the
   * admissions they have been sent up to since.
   */
  private readonly mempoolSentTo = new Map<string, { at: number; upTo: number }>();
  /** Each pool entry's place in the order of admission (`admissions` when it entered). */
  private readonly admissionOrder = new WeakMap<MempoolEntry, number>();
  private admissions = 0;
  private readonly onAdmitted = (entry: MempoolEntry): void => void this.admissionOrder.set(entry, ++this.admissions);
  private flushTimer: Timer | undefined;
  private stopped = false;
  /** A push's pauses (a busy peer's retry-after, a lost batch's before it goes again), which a stop ends, and with them the push. */
  private readonly pauses: InterruptibleSleeps;

  constructor(o: TxRelay['o']) {
    this.o = o;
    this.pauses = new InterruptibleSleeps(o.env);
    this.local = new LocalTxs({ mempool: o.mempool, now: () => o.env.monotonic(), blockRoom: o.blockRoom });
    this.relayed = new RelayedTxs({ mempool: o.mempool, now: () => o.env.monotonic(), blockRoom: o.blockRoom, ours: (idHex) => this.local.has(idHex) });
    o.mempool?.on('added', this.onAdmitted);
  }

  /** `announce` for a transaction this node's own user submitted: it is also followed until a block takes it. */
  announceLocal(tx: Transaction): void {
    this.local.add(tx);
    this.announce(tx);
  }

  /**
   * `block` is the new tip: our users' transactions it passed over with room to take them go to
   * every peer again, and with them, in what is left of one batch, the runs of relayed ones that
   * blocks with room kept passing over.
   */
  async pushPassedOver(block: Block): Promise<void> {
    const ours = this.local.passedOver(block);
    const pushed = new Set(ours.map((tx) => tx.idHex));
    const relayed = this.relayed.passedOver(block, MAX_TXS_PER_BATCH - ours.length).filter((tx) => !pushed.has(tx.idHex));
    await this.pushToAll([...ours, ...relayed]);
  }

  /** Queues an admitted transaction for the next gossip batch. */
  announce(tx: Transaction): void {
    if (this.stopped) return;
    this.outbox.push(tx);
    if (this.outbox.length >= MAX_TXS_PER_BATCH) void this.flush();
    else this.flushTimer ??= this.o.env.setTimeout(() => void this.flush(), ANNOUNCE_DELAY_MS);
  }

  /** Gossips everything queued now. */
  async flush(): Promise<void> {
    this.o.env.clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    while (this.outbox.length > 0) {
      const batch = this.outbox.splice(0, MAX_TXS_PER_BATCH);
      if ((await this.o.gossip.publishTxs(batch)) === 0) await this.pushToAll(batch);
    }
  }

  stop(): void {
    this.stopped = true;
    this.o.mempool?.off('added', this.onAdmitted);
    this.pauses.interrupt();
    this.o.env.clearTimeout(this.flushTimer);
    this.outbox = [];
  }

  async start(): Promise<void> {
    await this.o.serve(
      'txPush',
      this.o.names.txPush,
      async (req, peer) => {
        const group = senderGroup(this.o.peers, this.o.records, peer);
        const awaiting = await this.admitPushed(peer, decodeTxBatch(req));
        // Pushes carry what a reorganisation took back (node.ts regossip) to peers often in the
        // same one: what the fork point's state refused here is tried again after it, not lost.
        // Not before the answer, which tells nothing: a push held that long would time out, and
        // hold the pusher's requests in flight (its next batches answered busy, then given up).
        const met = awaiting.length > 0 ? reorganisationMet(this.o) : undefined;
        if (met) this.o.gossip.afterReorganisation.add(peer, awaiting, met, group);
        return new Uint8Array(0);
      },
      { timeoutMs: PUSH_TIMEOUT_MS, maxBytes: MAX_PUSH_BYTES, onBadRequest: (peer, err) => this.o.peers.badRequest(peer, err) },
    );
  }

  /** Admits a peer's push, announcing what entered; returns those refused for funds or nonces. */
  private async admitPushed(peer: string, txs: readonly Transaction[]): Promise<Transaction[]> {
    await this.o.signatures.preverifyFromPeer(await this.o.mempool.worthVerifying(txs));
    // The first offence ends the push, as it ends a gossiped batch: each transaction after it
    // was another signature checked, one at a time, for a peer banned already.
    const outcomes = await this.o.mempool.addMany(txs, this.o.clock(), (refusal) => refusal instanceof CairnError && refusal.banScore > 0);
    let admitted = 0;
    const awaiting: Transaction[] = [];
    outcomes.forEach((outcome, i) => {
      if (outcome instanceof Error) {
        if (outcome instanceof CairnError) this.o.peers.penalize(peer, outcome.banScore, `pushed tx: ${outcome.message}`);
        if (liftedByABlock(outcome)) awaiting.push(txs[i]!);
      } else {
        this.announce(txs[i]!);
        admitted++;
      }
    });
    if (admitted > 0) this.o.records?.gave(peer, 'tx', this.o.env.monotonic());
    return awaiting;
  }

  /**
   * Sends `txs` (in batches) to `peer`; failures are the peer's business, not ours. A busy peer is
   * given the time it asks for, a few times per batch; a batch lost on the way is sent again once.
   */
  async push(peer: string, txs: readonly Transaction[]): Promise<void> {
    for (let i = 0; i < txs.length; i += MAX_TXS_PER_BATCH) {
      const body = encodeTxBatch(txs.slice(i, i + MAX_TXS_PER_BATCH));
      let err = await this.pushBatch(peer, body);
      // A lossy link, a peer that stopped reading a while: nothing else sends these again while
      // the connection lasts (gossip has seen them), and a relayed one whose origin crashed, never.
      // Once only, and not past a stop or the connection's end: a peer that never reads would
      // otherwise keep us sending, and the push's transactions in memory, for as long as it stays.
      if (this.lostOnTheWay(peer, err)) {
        await this.pauses.sleep(PUSH_RETRY_PAUSE_MS);
        if (this.stopped || this.o.transport.connectionInfo(peer) === undefined) return;
        err = await this.pushBatch(peer, body);
        // Lost twice: that peer is not reading, and each batch after would cost a timeout too.
        if (this.lostOnTheWay(peer, err)) return;
      }
      // Still busy (too often, or for longer than any asker waits): that peer goes without these.
      // Gone: so is every batch after, each encoded for nothing (a whole mempool, 32 MB, for each
      // peer that hangs up as its push begins).
      if (err instanceof TransportError && (err.code === 'TRANSPORT_BUSY' || err.code === 'TRANSPORT_CLOSED')) return;
    }
  }

  /** One batch to `peer`, its busy answers waited out: undefined when it arrived, else why not. */
  private pushBatch(peer: string, body: Uint8Array): Promise<unknown> {
    return waitingOutBusy(
      (ms) => this.pauses.sleep(ms),
      () => this.o.transport.request(peer, this.o.names.txPush, body, { timeoutMs: PUSH_TIMEOUT_MS, maxBytes: 16 }),
      () => this.stopped,
      MAX_BUSY_PER_BATCH,
    ).then(() => undefined, (e: unknown) => e);
  }

  /**
   * Whether `err` lost a batch on the way to a peer still connected: a timeout, or a stream reset
   * (a server's own failure, its streams full). Not a refusal (a peer that does not speak the
   * protocol, a frame it broke), nor busy answers past what is waited out, nor a closed connection.
   */
  private lostOnTheWay(peer: string, err: unknown): boolean {
    if (!(err instanceof TransportError)) return false;
    return err.code === 'TRANSPORT_TIMEOUT' || (err.code === 'TRANSPORT_CLOSED' && this.o.transport.connectionInfo(peer) !== undefined);
  }

  async pushToAll(txs: readonly Transaction[]): Promise<void> {
    if (txs.length === 0) return;
    await Promise.all(this.o.transport.peers().map((peer) => this.push(peer, txs)));
  }

  /**
   * Our whole mempool, in nonce order per sender, for a peer that just connected: unless it dialled
   * us from an address group sent it within MEMPOOL_PUSH_PER_GROUP_INTERVAL_MS, which is sent only
   * what entered since the group was last sent any.
   */
  async pushMempool(peer: string): Promise<void> {
    const sentUpTo = this.admissionsSentTo(peer);
    if (sentUpTo === this.admissions) return; // nothing new: not even a walk of the pool
    const txs: Transaction[] = [];
    for (const e of this.o.mempool.entries()) if ((this.admissionOrder.get(e) ?? 0) > sentUpTo) txs.push(e.tx);
    txs.sort((a, b) => (a.nonce < b.nonce ? -1 : a.nonce > b.nonce ? 1 : 0));
    await this.push(peer, txs);
  }

  /** The admissions `peer` has been sent (by its address group): all of them are to go, -1, unless it dialled us. */
  private admissionsSentTo(peer: string): number {
    if (this.o.records?.get(peer)?.direction !== 'inbound' || this.o.peers.ipOf(peer) === undefined) return -1;
    const group = senderGroup(this.o.peers, this.o.records, peer);
    const now = this.o.env.monotonic(); // a duration: the wall clock may be stepped meanwhile
    for (const [sentTo, { at }] of this.mempoolSentTo) {
      if (now - at < MEMPOOL_PUSH_PER_GROUP_INTERVAL_MS && this.mempoolSentTo.size < MEMPOOL_PUSH_GROUPS) break;
      this.mempoolSentTo.delete(sentTo);
    }
    const sent = this.mempoolSentTo.get(group);
    this.mempoolSentTo.set(group, { at: sent?.at ?? now, upTo: this.admissions });
    return sent?.upTo ?? -1;
  }
}
