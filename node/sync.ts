import { EventEmitter } from 'node:events';
import { bytesEqual } from '../ledger/bytes.ts';
import { CairnError } from '../ledger/errors.ts';
import type { Chain } from '../consensus/chain.ts';
import type { SaneBlock } from '../consensus/sanity.ts';
import { LIE, PeerFault, fetchHeaderChain, shortOfCheckpoint, type HeaderChain } from './header-sync.ts';
import { ForkWatch } from './fork-watch.ts';
import { JoinTurns, SnapshotJoin, type JoinOutcome } from './snapshot-sync.ts';
import { JoinProgress, type SnapshotProgress } from './snapshot-progress.ts';
import { InvalidChain } from './body-download.ts';
import { fetchBodiesFrom } from './fetch-bodies.ts';
import { InterruptibleSleeps, type Env } from './env.ts';
import type { PeerManager } from './peers.ts';
import type { PeerRecords } from './peer-records.ts';
import type { Serve } from './serving.ts';
import { serveChain, type AdmitBlocks } from './chain-server.ts';
import { PeerStatuses } from './peer-statuses.ts';
import type { NetworkNames } from './protocols.ts';
import { BusyMemory, TransportError, isOwnFailure, ownFailureFields, waitingOutBusy, type Transport } from './transport.ts';
import { MAX_BLOCKS_PER_REQUEST, type Status } from './wire.ts';
import type { SyncEvents, SyncOptions } from './sync-types.ts';
import { SyncDownloads } from './sync-downloads.ts';
import { LogPace } from './log-pace.ts';
import type { AskedHeights } from './asked-heights.ts';

/**
 * Catches this node up to the most-work chain its peers know, and answers their requests.
 *
 * Protocol (docs/PROTOCOL.md): status (genesis, height, tip, total work, pruned height) on
 * every new connection; then headers first, by height ranges (node/header-sync.ts) — the peer's
 * chain is checked header by header for proof of work, targets and total work before any body
 * is fetched, so a long low-work chain costs only headers — then bodies in batches from every
 * peer that claims the chain and still has them, several at once, imported in order through the
 * one import queue.
 *
 * Blame follows what each peer did. The header peer claimed the chain: if a block of it breaks a
 * rule, the header peer lied. A body provider only served bodies: it is blamed for a body that
 * does not match the header it was asked for (wrong block, wrong transactions), never for what
 * the block itself is — an honest node stores side branches it has not validated, and serves them.
 * A peer that is slow, times out or goes away is not punished: its batch goes to another.
 */
export class Sync extends EventEmitter<SyncEvents> {
  private readonly o: SyncOptions;
  private readonly known: PeerStatuses;
  /** Busy answers' retry-afters, kept for every request of sync's. */
  private readonly busy: BusyMemory;
  private running: Promise<void> | undefined;
  /** Set by stop: no round starts after it, and the download under way ends. */
  private stopped = false;
  /** Busy answers' retry-afters being waited out: a stop ends them. */
  private readonly sleeps: InterruptibleSleeps;
  private again = false;
  /**
   * Peers whose chains this sync put off for a claim of more work elsewhere (takeChain): once each.
   * A claim is only a claim: one that came to nothing put the chain off again every round, for ever.
   */
  private readonly putOff = new Set<string>();
  private lastTarget = 0;
  /**
   * While a snapshot join runs, the chain must stay at genesis for the state to be installed under
   * it: gossip holds its blocks meanwhile (node/gossip.ts), or one block 1, which costs next to
   * nothing on a chain behind schedule, would throw the whole join away.
   */
  private joinUnderWay: SnapshotJoin | undefined;
  private readonly joinTurns: JoinTurns;
  /** The join's phases and what its rounds said, across them: a round that begins one again says so at debug. */
  private readonly joinProgress: JoinProgress;
  /** Chains it will not, or may soon not, follow (node/fork-watch.ts). */
  private readonly forks: ForkWatch;
  /** Body downloads: the one under way, which a peer whose status arrives may join and a stop ends. */
  private readonly downloads: SyncDownloads;

  constructor(o: SyncOptions) {
    super();
    this.o = o;
    this.busy = new BusyMemory(o.env);
    this.sleeps = new InterruptibleSleeps(o.env);
    this.joinTurns = new JoinTurns(() => o.env.monotonic());
    this.joinProgress = new JoinProgress(o.env, (level, message, fields) => this.o.log?.(level, message, fields));
    this.forks = new ForkWatch({ ...o, ask: (peer, protocol, request) => this.busy.ask(peer, protocol, request) });
    this.known = new PeerStatuses({
      ...o,
      busy: this.busy,
      onForeign: (peer) => this.emit('foreign', peer),
      onStatus: (peer, status) => {
        this.downloads.offer(peer, status);
        if (status.totalWork > o.chain.tip.totalWork) void this.requestSync();
        this.emit('status', peer);
      },
    });
    this.downloads = new SyncDownloads({
      ...o,
      events: this,
      statusOf: async (peer) => (await this.known.handshake(peer)) ?? this.statuses.get(peer)?.status,
      fetch: (peer, hashes) => this.fetchBodies(peer, hashes),
      blame: (peer, err) => this.blame(peer, err),
      stopped: () => this.stopped,
    });
  }

  /** True while a snapshot join runs (gossip holds its blocks meanwhile). */
  get joining(): boolean {
    return this.joinUnderWay !== undefined;
  }

  /** Where the snapshot join under way stands (status); undefined when none runs. */
  get snapshotProgress(): SnapshotProgress | undefined {
    return this.joinUnderWay?.progress.now;
  }

  /** True while a sync is running. */
  get syncing(): boolean {
    return this.running !== undefined;
  }

  /** How many peers, not banned, last claimed more work than our tip. */
  get peersAhead(): number {
    return this.ahead().length;
  }

  /** While a sync runs, the height of the chain its headers showed; our own height otherwise. */
  get targetHeight(): number {
    return Math.max(this.o.chain.tip.height, this.lastTarget);
  }

  /** The heights this node asked each peer for on its connection (node/asked-heights.ts), the history check's too. */
  get askedHeights(): AskedHeights {
    return this.downloads.asked;
  }

  /** Serves our chain: status, headers, blocks (node/chain-server.ts). */
  async start(): Promise<void> {
    const { chain } = this.o;
    await serveChain({
      ...this.o,
      status: () => this.ourStatus(),
      announced: (peer) => {
        const status = this.statuses.get(peer)?.status;
        const tip = status && chain.getEntry(status.tipHash);
        return tip ? { tip, prunedHeight: status.prunedHeight } : undefined;
      },
    });
  }

  ourStatus(): Status {
    const { chain } = this.o;
    const tip = chain.tip;
    return { genesis: chain.db.genesis.header.hash, height: tip.height, tipHash: tip.hash, totalWork: tip.totalWork, prunedHeight: Math.min(tip.height, chain.db.history.prunedHeight) };
  }

  /** What each peer of our network last said of its chain (node/peer-statuses.ts). */
  get statuses(): Map<string, { peer: string; status: Status }> {
    return this.known.byPeer;
  }

  /** The handshake: learn the peer's chain, refuse it if it is another network, sync if it is ahead (`fresh`: PeerStatuses.handshake). */
  handshake(peer: string, fresh = false): Promise<Status | undefined> {
    return this.known.handshake(peer, fresh);
  }

  /** `peer` gave us block `hash`, now connected: it has that chain (node/peer-statuses.ts). */
  peerHas(peer: string, hash: Uint8Array): void {
    this.known.peerHas(peer, hash);
  }

  /** The connected peers that claim more work than ours on a chain that forks below our floor. */
  get peersApart(): number {
    return this.forks.apartCount(this.statuses);
  }

  forget(peer: string): void {
    this.known.byPeer.delete(peer);
    this.putOff.delete(peer);
    this.forks.forget(peer);
    this.busy.forget(peer);
    this.downloads.forget(peer);
  }

  /** Resolves when no sync is running. */
  async idle(): Promise<void> {
    await this.running?.catch(() => {});
  }

  /**
   * Ends the sync as its node stops: the download under way ends at once (a busy provider's
   * retry-after, up to a minute, is not waited out) and no round starts after the one running.
   */
  stop(): void {
    this.stopped = true;
    this.downloads.end();
    this.sleeps.interrupt();
  }

  /** Starts a sync round, or asks the running one to go round again. Resolves when idle. */
  requestSync(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      this.putOff.clear();
      try {
        do {
          this.again = false;
          await this.round();
        } while (this.again && !this.stopped);
      } finally {
        // What the headers showed was a target while they were being taken: a chain that broke a
        // rule, or whose peer left, is nobody's offer once the sync ends (metrics, status).
        this.lastTarget = 0;
        this.running = undefined;
        this.emit('idle');
      }
    })();
    return this.running;
  }

  private async round(): Promise<void> {
    const { chain } = this.o;
    const ahead = this.ahead();
    if (this.o.snapshotSync && chain.tip.height === 0 && ahead.length > 0 && !this.joinTurns.givenUp) {
      const outcome = await this.join();
      if (outcome === 'joined') this.again = true; // the next round executes the blocks after the pivot
      if (outcome !== 'not-possible' && !this.joinTurns.givenUp) return;
    }
    // Peers whose turn this round has had: a claim of theirs that came to nothing here (no
    // headers, a fork below our floor, busy) must not keep another peer's chain waiting for it.
    const tried = new Set<string>();
    for (const { peer } of ahead) {
      if (this.stopped) return;
      // Its claim as it stands at its turn: one made on a connection that has ended since (a
      // restart that lost the last blocks it had not written) is not what its chain shows now.
      const status = this.statuses.get(peer)?.status;
      if (!status || status.totalWork <= chain.tip.totalWork) continue;
      tried.add(peer);
      try {
        await this.syncFrom(peer, status, tried);
      } catch (err) {
        this.blame(peer, err);
      }
    }
  }

  /**
   * Punishes only what the peer provably did; every failure drops it from this round. A timeout
   * or a closed connection costs nothing: a crash, a cut cable or a lossy link is no offence,
   * and an honest peer behind one must never be banned for it.
   */
  blame(peer: string, err: unknown): void {
    if (err instanceof TransportError && err.code === 'TRANSPORT_BUSY') return; // it said when to come back; its status stands
    if (err instanceof PeerFault) this.o.peers.penalize(peer, err.score, err.message);
    else if (err instanceof InvalidChain) this.o.peers.penalize(peer, err.score, `sync: its chain holds an invalid block: ${err.message}`);
    else if (isOwnFailure(err)) this.o.log?.('warn', `sync from ${peer} failed on our side, not the peer's: ${(err as Error)?.message ?? String(err)}`, ownFailureFields(err, { peer }));
    else if (err instanceof CairnError) this.o.peers.penalize(peer, err.banScore, `sync: ${err.message}`);
    this.known.byPeer.delete(peer);
  }

  /**
   * A busy answer is waited out as long as it asks, a few times in a row, then the peer is left
   * for this round: busy is the budget speaking, not a fault.
   */
  private readonly patientRequest: Transport['request'] = (to, protocol, body, options) =>
    waitingOutBusy((ms) => this.sleeps.sleep(ms), () => this.busy.ask(to, protocol, () => this.o.transport.request(to, protocol, body, options)), () => this.stopped);

  /**
   * The peers ahead of us, not banned, the most work first. Below our checkpoint, only those whose
   * chains reach its height: no other chain could be ours (no fault: a node still syncing says so).
   */
  private ahead(): { peer: string; status: Status }[] {
    const { chain, peers } = this.o;
    const reaches = (s: Status) => !chain.belowCheckpoint || s.height >= chain.checkpoint!.height;
    return [...this.statuses.values()]
      .filter(({ status, peer }) => status.totalWork > chain.tip.totalWork && reaches(status) && !peers.isBanned(peer))
      .sort((a, b) => (b.status.totalWork > a.status.totalWork ? 1 : b.status.totalWork < a.status.totalWork ? -1 : 0));
  }

  private async join(): Promise<JoinOutcome> {
    const { transport } = this.o;
    const best = this.joinTurns.pick(this.ahead())!;
    const join = new SnapshotJoin({
      ...this.o,
      interval: this.o.snapshotSync!.interval,
      candidates: () => this.ahead(),
      request: this.patientRequest,
      requestMany: (to, protocol, body, max, options) =>
        waitingOutBusy((ms) => this.sleeps.sleep(ms), () => this.busy.ask(to, protocol, () => transport.requestMany(to, protocol, body, max, options)), () => this.stopped),
      onHeaders: (height) => this.emit('headers', (this.lastTarget = height)),
      log: this.o.log ?? (() => {}),
      progress: this.joinProgress,
    });
    this.joinUnderWay = join;
    this.emit('joining', true);
    let unshown = false;
    try {
      return await join.run(best);
    } catch (err) {
      unshown = true;
      this.blame(best.peer, err); // which logs our own failures
      return 'later';
    } finally {
      this.joinTurns.ended(best.peer, unshown, join.chunksVerified);
      if (this.joinTurns.givenUp) this.o.log?.('warn', 'snapshot sync made no progress in several rounds: syncing from genesis instead');
      this.joinProgress.end();
      this.joinUnderWay = undefined;
      this.emit('joining', false);
    }
  }

  private async syncFrom(peer: string, claimed: Status, tried: ReadonlySet<string>): Promise<void> {
    const { chain, clock, log } = this.o;
    // 1. Headers, checked as they come; their hashes go to the store's scratch list by height.
    // Said in the log, and every so often as they come: a long chain's headers took minutes in
    // which a new node's log said nothing between its peers' connections and its first blocks.
    log?.('info', 'sync: checking the headers of a peer ahead', { peer, target: claimed.height, height: chain.tip.height });
    const pace = new LogPace(() => this.o.env.monotonic(), this.o.env.monotonic());
    const headersChecked = (height: number) => {
      this.emit('headers', (this.lastTarget = height));
      if (pace.due()) log?.('info', 'sync: headers checked', { height, target: claimed.height, peer });
    };
    const request = this.patientRequest;
    try {
      const found = await fetchHeaderChain({ request, names: this.o.names, chain, clock, onProgress: headersChecked }, peer, claimed);
      if (found && 'apartBelow' in found) return this.forks.noteApart(peer, claimed, found);
      this.forks.forget(peer);
      if (found?.aheadOfClock) this.forks.noteAheadOfClock(peer, found.aheadOfClock);
      if (found) await this.takeChain(peer, claimed, found, tried);
    } finally {
      // The scratch list holds this peer's hashes only while its chain is taken, whatever happens.
      await chain.db.history.clearPending();
    }
  }

  /** syncFrom's second half, with the peer's headers checked: its claim held to them, then the bodies. */
  private async takeChain(peer: string, claimed: Status, found: HeaderChain, tried: ReadonlySet<string>): Promise<void> {
    const { chain } = this.o;
    const { fork, check, complete } = found;
    // Its claim put it first in this round: it must hold before its chain is taken, whether or
    // not that chain beats ours. A chain of near-free headers claiming much more work would
    // otherwise be imported ahead of an honest peer's heavier one, and once deeper than the
    // reorg depth it would keep us from that chain for good.
    if (complete && check.totalWork < claimed.totalWork) throw new PeerFault('its headers do not add up to the work it claimed', LIE);
    // Short of it, as a chain that moved meanwhile would be (a range with none, or one that does
    // not link): its status asked again tells. The same tip still named is one its headers denied.
    if (!complete && !found.aheadOfClock && !found.interrupted && check.totalWork < claimed.totalWork && (await this.stillNames(peer, claimed))) {
      throw new PeerFault(`its headers stop at ${check.tipHeight}, short of the tip at ${claimed.height} its status names again`, LIE);
    }
    // Below our checkpoint, a chain that stops short of it is not taken, however much work it
    // shows: a cheap one longer than the reorg depth would keep us from the checkpoint's for good.
    // Its status said it reached the checkpoint's height (ahead()).
    if (chain.belowCheckpoint && check.tipHeight < chain.checkpoint!.height) {
      if (complete) throw shortOfCheckpoint(check.tipHeight, chain.checkpoint!, LIE);
      return;
    }
    if (check.totalWork <= chain.tip.totalWork) return;
    // A peer whose status came in meanwhile claims more than this chain holds: it goes first, once.
    if (!this.putOff.has(peer) && this.ahead().some((s) => !tried.has(s.peer) && s.status.totalWork > check.totalWork)) {
      this.putOff.add(peer);
      this.again = true;
      return;
    }
    // 2. Bodies we lack, from every peer that claims at least this much work and has not pruned them.
    const first = fork.height + 1;
    const hasBodies = (s: Status) => s.prunedHeight < first;
    const canServe = (s: Status) => s.totalWork >= check.totalWork && hasBodies(s);
    const others = [...this.statuses.values()].filter((s) => s.peer !== peer && canServe(s.status));
    const providers = [...(hasBodies(claimed) ? [peer] : []), ...others.map((s) => s.peer)];
    // Once this chain's blocks reach the reorg depth above the fork, no chain forking below it can
    // be followed: a peer whose status came in meanwhile claiming more work on another chain goes
    // first, before that line is crossed (node/fork-watch.ts).
    let checkedAtDepth = false;
    let endedEarly = false;
    const keepGoing = async (blocks: readonly SaneBlock[]) => {
      // A batch of blocks we hold already (a side branch an earlier download left) imports nothing.
      const last = blocks.at(-1);
      if (checkedAtDepth || !last || last.header.height <= fork.height + chain.reorgDepth) return true;
      checkedAtDepth = true;
      const others = this.ahead().filter((s) => !tried.has(s.peer) && s.status.totalWork > check.totalWork);
      endedEarly = await this.forks.endsForHeavierChain(others, blocks[0]!.header);
      return !endedEarly;
    };
    await this.downloads.run({ first, last: check.tipHeight, providers, canServe, keepGoing, claimant: peer });
    if (endedEarly) this.again = true;
    this.emit('took');
  }

  /** Whether `peer`'s status, asked again, names the tip `claimed` named (busy or gone: it says nothing). */
  private async stillNames(peer: string, claimed: Status): Promise<boolean> {
    const now = await this.known.handshake(peer, true);
    return now !== undefined && now.height === claimed.height && bytesEqual(now.tipHash, claimed.tipHash);
  }

  /** A batch of bodies from one provider, each checked against what was asked (node/fetch-bodies.ts). */
  fetchBodies(peer: string, hashes: readonly Uint8Array[]): Promise<SaneBlock[]> {
    return fetchBodiesFrom({ ...this.o, busy: this.busy }, peer, hashes);
  }
}

export { MAX_BLOCKS_PER_REQUEST };
