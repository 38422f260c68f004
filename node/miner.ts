import { EventEmitter } from 'node:events';
import type { Mempool } from '../ledger/mempool.ts';
import type { Block } from '../ledger/block.ts';
import type { Chain, Clock } from '../consensus/chain.ts';
import { buildTemplate, completeBlock, targetBytes, type BlockTemplate } from '../consensus/miner.ts';
import { maxFutureDrift } from '../consensus/chain.ts';
import { decodeHeader } from '../ledger/block.ts';
import type { HashingThreads, ThreadLender, WorkerReport } from './hashing.ts';
import type { Env, Timer } from './env.ts';

export interface MinerOptions {
  readonly chain: Chain;
  readonly mempool: Mempool;
  readonly coinbase: Uint8Array;
  readonly clock: Clock;
  /** How many of the pool's threads hash (at most all of them). */
  readonly threads: number;
  /** The node's worker threads, which hash whenever they have no signatures to check. */
  readonly pool: ThreadLender;
  readonly env: Env;
  /** Where a found block goes: the chain's import by default; the node's imports and gossips it. */
  readonly submit?: (block: Block) => Promise<unknown>;
  /**
   * How long a template may leave out transactions the mempool took after it was built (ms): a
   * rebuild then takes them in, so a transaction waits for the next block rather than the one
   * after it. Default a fifth of the block time; 0 rebuilds only on a new tip.
   */
  readonly refreshMs?: number;
  /**
   * Why the node should not mine now, if it should not (a `CatchUpGate`'s `reason`): no template
   * is built and the threads idle until it says nothing. Asked before each build and before a
   * found block is submitted; `recheckHold` when its answer may have changed.
   */
  readonly hold?: () => string | undefined;
}

/** The hash rate is what the threads reported over about this long (ms). */
const RATE_WINDOW_MS = 10_000;
/** At most one sample of the count a this often (ms): reports come every ~70 ms a thread. */
const RATE_SAMPLE_MS = 250;

/** A rebuild for new transactions waits at least this many times the last build's cost: rebuilds take at most a fifth of the event loop. */
const REFRESH_COST_FACTOR = 4;
/** The longest the miner idles before it looks again at a chain that is ahead of its clock. */
const MAX_IDLE_SECONDS = 60;

export interface MinerEvents {
  mined: [block: Block];
  error: [error: Error];
  /** Mining stopped for this reason, or (undefined) resumed. */
  held: [reason: string | undefined];
}

/**
 * Mines on the current tip in the node's worker threads (between their signature checks), so the
 * event loop only builds templates. A new tip bumps a shared job counter, which every thread
 * checks between small slices: stale work is dropped at once. Each thread searches its own nonce
 * range.
 */
export class Miner extends EventEmitter<MinerEvents> {
  private readonly options: MinerOptions;
  private readonly jobCounter = new SharedArrayBuffer(4);
  private readonly job = new Int32Array(this.jobCounter);
  private hashing: HashingThreads | undefined;
  private template: BlockTemplate | undefined;
  private running = false;
  private rebuilding: Promise<void> | undefined;
  private queued: Promise<void> | undefined;
  private retry: Timer | undefined;
  private refreshTimer: Timer | undefined;
  private builtAt = 0;
  private buildMs = 0;
  private hashesDone = 0;
  private heldFor: string | undefined;
  /** Why the miner idles while the chain's next block would be too far ahead of its clock, or undefined. */
  private aheadOfClock: string | undefined;
  /** The hash count as it was at recent moments (monotonic ms), the oldest first. */
  private readonly counts: { readonly at: number; readonly hashes: number }[] = [];
  private readonly onTip = () => {
    Atomics.add(this.job, 0, 1); // the threads drop the old tip's job now, not once the new one is built
    void this.newJob();
  };
  private readonly onAdded = () => this.scheduleRefresh();

  constructor(options: MinerOptions) {
    super();
    this.options = options;
  }

  /** The block the threads are hashing now, if any. */
  get currentTemplate(): BlockTemplate | undefined {
    return this.template;
  }

  /** Why the miner is not mining, while it is held (MinerOptions.hold). */
  get held(): string | undefined {
    return this.heldFor ?? this.aheadOfClock;
  }

  /** Hashes tried since start, across all workers. */
  get hashes(): number {
    return this.hashesDone;
  }

  /** Hashes a second across all threads over about the last 10 s, as they reported them (0 once held or stopped that long). */
  get hashRate(): number {
    const now = this.options.env.monotonic();
    const oldest = this.counts.find((c) => now - c.at <= RATE_WINDOW_MS);
    if (!oldest || now <= oldest.at) return 0;
    return ((this.hashesDone - oldest.hashes) * 1000) / (now - oldest.at);
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.counts.splice(0, this.counts.length, { at: this.options.env.monotonic(), hashes: this.hashesDone });
    this.hashing = this.options.pool.hashFor(
      this.jobCounter,
      this.options.threads,
      (report) => this.onReport(report).catch((err: Error) => this.emit('error', err)),
      () => this.onThreadLost(),
    );
    if (this.hashing.threads === 0) this.emit('error', new Error('no worker threads to mine on'));
    this.options.chain.on('tip', this.onTip);
    this.options.mempool.on('added', this.onAdded);
    void this.newJob();
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.options.env.clearTimeout(this.retry);
    this.options.env.clearTimeout(this.refreshTimer);
    this.refreshTimer = undefined;
    this.options.chain.off('tip', this.onTip);
    this.options.mempool.off('added', this.onAdded);
    Atomics.add(this.job, 0, 1); // the threads drop the job at their next slice
    this.options.pool.stopHashing();
    this.hashing = undefined;
  }

  /** Rebuilds the template (e.g. when the mempool has better transactions); tip changes do this themselves. */
  refresh(): Promise<void> {
    return this.newJob();
  }

  /** The hold may have changed (a peer's status, a sync that ended): start or stop mining if it did. */
  recheckHold(): void {
    if (this.running && (this.options.hold?.() !== undefined) !== (this.heldFor !== undefined)) void this.newJob();
  }

  /** The mempool took a transaction: the template takes it in within `refreshMs`, unless a rebuild is already due. */
  private scheduleRefresh(): void {
    const { env, chain } = this.options;
    const refreshMs = this.options.refreshMs ?? chain.params.blockTime * 200;
    if (refreshMs <= 0 || !this.running || this.refreshTimer !== undefined) return;
    const wait = Math.max(refreshMs, REFRESH_COST_FACTOR * this.buildMs) - (env.monotonic() - this.builtAt);
    this.refreshTimer = env.setTimeout(() => {
      this.refreshTimer = undefined;
      void this.newJob();
    }, Math.max(0, wait));
  }

  private newJob(): Promise<void> {
    // Coalesce: one rebuild at a time, and at most one more queued behind it however often asked.
    if (this.queued) return this.queued;
    const run = async () => {
      this.queued = undefined;
      if (!this.running) return;
      const { chain, mempool, coinbase, clock, env } = this.options;
      // This build takes in everything the mempool holds now; what comes during it schedules the next.
      env.clearTimeout(this.refreshTimer);
      this.refreshTimer = undefined;
      if (this.holding()) return;
      const started = env.monotonic();
      const now = clock();
      const template = await buildTemplate(chain, mempool, coinbase, now);
      this.builtAt = env.monotonic();
      this.buildMs = this.builtAt - started;
      if (this.holding()) return; // it came on during the build
      const jobId = Atomics.add(this.job, 0, 1) + 1;
      const ahead = decodeHeader(template.headerBytes).timestamp - (now + maxFutureDrift(chain.params.blockTime));
      const earliest = decodeHeader(template.headerBytes).timestamp - maxFutureDrift(chain.params.blockTime);
      // Said (log, status), not only done: a genesis dated in the future (in milliseconds, say)
      // otherwise left a "mining" node that never made a block, and nothing said why.
      this.noteAheadOfClock(ahead < 0 ? undefined : `no block can be mined before ${new Date(earliest * 1000).toISOString()}, ahead of this node's clock: the genesis timestamp (or the chain's recent blocks) is in the future, or this machine's clock is behind`);
      if (ahead >= 0) {
        // The median of recent timestamps has run ahead of our clock: any block now would be
        // refused as too far in the future. Idle (jobId has moved on) and try again shortly:
        // within a minute however far ahead, since the clock may be set right at any moment
        // (and Node runs a timer of more than 2^31 - 1 ms, 24.8 days, after 1 ms: a busy loop).
        this.options.env.clearTimeout(this.retry);
        this.retry = this.options.env.setTimeout(() => void this.newJob(), Math.min(ahead + 1, MAX_IDLE_SECONDS) * 1000);
        return;
      }
      this.template = template;
      const target = targetBytes(template.target);
      for (let i = 0; i < (this.hashing?.threads ?? 0); i++) {
        this.hashing!.post(i, { jobId, headerBytes: template.headerBytes, target, startNonce: BigInt(i) << 48n });
      }
    };
    const next = (this.rebuilding ?? Promise.resolve()).then(run).catch((err: Error) => {
      this.emit('error', err);
    });
    this.rebuilding = next;
    this.queued = next;
    return next;
  }

  private countHashes(): void {
    const now = this.options.env.monotonic();
    const last = this.counts.at(-1);
    if (last && now - last.at < RATE_SAMPLE_MS) return;
    this.counts.push({ at: now, hashes: this.hashesDone });
    while (this.counts.length > 1 && now - this.counts[1]!.at > RATE_WINDOW_MS) this.counts.shift();
  }

  /** A hashing thread died: the job goes again to those left, or the miner says it cannot mine. */
  private onThreadLost(): void {
    if (!this.running) return;
    if (this.hashing?.threads === 0) this.emit('error', new Error('the last mining thread stopped: nothing is mined (restart the node)'));
    else void this.newJob();
  }

  private noteAheadOfClock(reason: string | undefined): void {
    if (reason === this.aheadOfClock) return;
    this.aheadOfClock = reason;
    if (this.heldFor === undefined) this.emit('held', reason);
  }

  /** True, with the threads stopped and the template dropped, while the hold says not to mine. */
  private holding(): boolean {
    const reason = this.options.hold?.();
    if (reason === undefined) {
      if (this.heldFor !== undefined) this.emit('held', (this.heldFor = undefined));
      return false;
    }
    Atomics.add(this.job, 0, 1); // the threads drop their job at their next slice
    this.template = undefined;
    if (this.heldFor !== reason) this.emit('held', (this.heldFor = reason));
    return true;
  }

  private async onReport(report: WorkerReport): Promise<void> {
    this.hashesDone += report.hashes;
    this.countHashes();
    if (report.kind !== 'found' || report.jobId !== Atomics.load(this.job, 0) || !this.template) return;
    Atomics.add(this.job, 0, 1); // stop the other workers on this job
    // Found as a hold came on (a snapshot join began: a block 1 of ours would throw it away).
    if (this.holding()) return;
    const block = completeBlock(this.template, report.nonce);
    try {
      await (this.options.submit ?? ((b: Block) => this.options.chain.processBlock(b)))(block);
      this.emit('mined', block);
    } catch (err) {
      this.emit('error', err as Error);
    }
    if (this.running && !this.options.chain.tip.hash.every((b, i) => b === block.header.hash[i])) void this.newJob();
  }
}

/**
 * How long a node with peers to find waits for one to tell its chain before it mines on its own
 * (ms): a dial and a status take a second or two; peers that never answer (all of them gone since
 * peers.json was written, a wrong --bootstrap) must not keep the node from mining for good.
 */
export const PEER_WAIT_MS = 60_000;

interface CatchUpGateOptions {
  readonly sync: CatchUpSync;
  readonly chain: { readonly tip: { readonly height: number }; readonly checkpoint?: { readonly height: number } | undefined };
  readonly snapshotSync: boolean;
  /** Peers it knew to dial at start (--bootstrap, peers.json): then its own chain is likely behind theirs. */
  readonly knownPeers?: number;
}

/** What a CatchUpGate reads of a node's sync (node/sync.ts). */
export interface CatchUpSync {
  readonly syncing: boolean;
  readonly peersAhead: number;
  /** The peers that told their chain so far. */
  readonly statuses: { readonly size: number };
}

/**
 * Whether a node has caught up enough to mine, as Bitcoin Core mines nothing in its initial block
 * download: a block made on a chain far behind schedule costs next to nothing, so a node catching
 * up would make blocks faster than it downloads, and more than the reorg depth of them would leave
 * it on its own chain for good; a `--snapshot-sync` node's own block 1 would make the join
 * impossible. Held:
 *  - with `--snapshot-sync` at genesis, until a peer has told its chain and none is ahead (the
 *    join, or a sync from genesis when no chain is long enough, moves the tip first); a lone
 *    node waits for a peer (a network's first node is started without the flag);
 *  - with peers to find at start, until one has told its chain, or PEER_WAIT_MS passed
 *    (`stopWaitingForPeers`): till then its tip may be far behind theirs, and a block on it would
 *    be a private fork thrown away at their first status;
 *  - until the node has once caught up with its peers, while a sync runs towards a peer ahead.
 * Only the start is held: once caught up the node mines on, as a peer could otherwise hold it
 * for nothing by claiming more work than it can show. A node with no peer mines (the first node
 * of a network, a devnet).
 */
export class CatchUpGate {
  private readonly o: CatchUpGateOptions;
  private heardPeer = false;
  private caughtUp = false;
  private peerWaitOver = false;

  constructor(o: CatchUpGateOptions) {
    this.o = o;
    // The node dials its known peers before its services start: a status may be in already, and
    // none other comes before the next poll (15 s).
    this.heardPeer = o.sync.statuses.size > 0;
  }

  /** No known peer told its chain in time: the node mines on its own (the catch-up hold still applies). */
  stopWaitingForPeers(): void {
    this.peerWaitOver = true;
  }

  /** A peer told its chain (Sync's 'status'), or a sync ended ('idle'). */
  noteStatus(): void {
    this.heardPeer = true;
    this.noteIdle();
  }

  noteIdle(): void {
    if (this.heardPeer && !this.o.sync.syncing && this.o.sync.peersAhead === 0) this.caughtUp = true;
  }

  /** Why the node should not mine now, or undefined. */
  reason(): string | undefined {
    const { sync, chain } = this.o;
    // Its own blocks there would be a chain that cannot pass through the checkpoint.
    if (chain.checkpoint && chain.tip.height < chain.checkpoint.height) return `below its checkpoint at ${chain.checkpoint.height} (--checkpoint): waiting for a chain through it`;
    if (this.o.snapshotSync && chain.tip.height === 0) {
      if (!this.heardPeer) return 'waiting for a peer to join by snapshot (--snapshot-sync, at genesis)';
      if (sync.peersAhead > 0) return 'joining a peer\'s chain (--snapshot-sync, at genesis)';
    }
    const known = this.o.knownPeers ?? 0;
    if (known > 0 && !this.heardPeer && !this.peerWaitOver) return `waiting for a peer to tell its chain (${known} known, --bootstrap or from before a restart)`;
    if (!this.caughtUp && sync.syncing && sync.peersAhead > 0) return 'catching up with its peers';
    return undefined;
  }
}
