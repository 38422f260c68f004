import { BlockRuleError, CairnError, TxRuleError } from '../ledger/errors.ts';
import type { SaneBlock } from '../consensus/sanity.ts';
import { LIE, PeerFault } from './header-sync.ts';
import { nextTurn, type Env } from './env.ts';
import { MAX_BUSY_IN_A_ROW, MAX_RETRY_AFTER_MS, TransportError } from './transport.ts';
import type { AskedHeights } from './asked-heights.ts';
import { PartialBatches } from './partial-batches.ts';

/**
 * A sync's body download (node/sync.ts): the blocks of heights [first, last] of a checked header
 * chain, in batches fetched from every provider at once and imported strictly in order. Its own
 * file because its scheduling (read-ahead, who holds which batch, a slow provider's hand-over)
 * is a piece to read alone; one provider's answer, checked, is node/fetch-bodies.ts's.
 */
const BLOCK_BATCH = 32;
/**
 * Batches fetched (and their signatures checked) ahead of the import. Enough to keep the pool and
 * the network busy while a batch imports; more only holds blocks in memory and takes the main
 * thread from the import.
 */
const READ_AHEAD_BATCHES = 8;
/** Requests outstanding to one provider: one at a time leaves both ends idle for a round trip. */
const REQUESTS_PER_PEER = 2;
/**
 * A provider holds up the import when the next batch is its, the read-ahead is full and another
 * provider is idle. Once that has lasted twice as long as the idle one's last batch took (at
 * least STALL_MIN_MS; STALL_MS while that one has none yet), its batches go to the others. As
 * Bitcoin Core's stalling clock, it starts when the hold-up is first seen, not when the request
 * went out: a request that was slow while the window still had room held nobody up.
 */
const STALL_MIN_MS = 500;
const STALL_MS = 2_000;
/**
 * A provider that held up the import sits out STALL_PAUSE_MS, four times longer at each stall of
 * the same download up to STALL_PAUSE_MAX_MS, then takes batches again: one slow answer (a busy
 * moment, a collection) no longer leaves the whole download to the others, and a provider that
 * stays slow sits out most of it. As Bitcoin Core's block-stalling timeout, the growth is capped:
 * in a download of hours, a provider that stalled a few times would otherwise sit out the rest of
 * it, even when it is the only one left.
 */
const STALL_PAUSE_MS = 2_000;
const STALL_PAUSE_GROWTH = 4;
const STALL_PAUSE_MAX_MS = 64_000;
/**
 * A provider leaves this download, unpunished, after this many busy answers in a row (to either
 * of its requests), or at one whose retry-after is over MAX_RETRY_AFTER_MS: an honest server's
 * retry-after is followed by an answer, and one that only ever says busy, or "in a month", would
 * otherwise keep the download, and the sync behind it, waiting on it.
 */
const MAX_BUSY_ANSWERS = MAX_BUSY_IN_A_ROW * REQUESTS_PER_PEER;

/**
 * What the peer whose headers a download follows is charged for an answer with fewer blocks than
 * asked, at most once a download: those are the chain it just served as its own, and its status,
 * asked again then, still says it keeps their bodies (an honest server answers busy rather than
 * short: node/serving.ts). A withholder's claim would otherwise head every round, its headers
 * fetched again each time, for as long as it stayed. Not a ban at once: a status may be stale in
 * ways this cannot see.
 */
export const WITHHELD = 25;

/** How long a provider sits out after its `stalls`-th stall (1, 2, …) of one download. */
export function stallPauseMs(stalls: number): number {
  return Math.min(STALL_PAUSE_MAX_MS, STALL_PAUSE_MS * STALL_PAUSE_GROWTH ** (stalls - 1));
}

/**
 * A block of the claimed chain broke a rule of its own (not a body that fails to match its
 * header, which is the sender's doing): the peer that claimed the chain is to blame.
 */
export class InvalidChain extends Error {
  readonly reason: CairnError;
  /** The height of the block that broke it. */
  readonly height: number;
  constructor(reason: CairnError, height: number) {
    super(reason.message);
    this.reason = reason;
    this.height = height;
  }

  /**
   * What the peer that claimed the chain is charged. A state rule (a nonce, a balance, an
   * overflow) costs nothing where a transaction travels alone, as a reorganisation can make it
   * stale; a block of a claimed chain is judged on its parent's state, which that chain names, so
   * it is invalid for everyone and the claim a lie. What says more of this node than of the chain
   * (its clock, its reorg depth) keeps its own score: none.
   */
  get score(): number {
    const { reason } = this;
    const stateRule = reason instanceof TxRuleError || (reason instanceof BlockRuleError && reason.code === 'BLOCK_BAD_COINBASE');
    return stateRule ? Math.max(reason.banScore, LIE) : reason.banScore;
  }
}

export interface BodyDownloadParts {
  readonly env: Env;
  readonly first: number;
  readonly last: number;
  /** The hashes of the blocks of heights [start, start + count) still to fetch. */
  batchHashes(start: number, count: number): Promise<Uint8Array[]>;
  /**
   * The peer whose headers these are, if it is a provider, and whether it still keeps the bodies
   * from `height` up (its status asked again: a pruning may have passed them since its last): if
   * so, an answer with fewer of the blocks than asked is withholding (WITHHELD).
   */
  readonly claimant?: { readonly peer: string; keepsBodies(height: number): Promise<boolean> };
  /** The heights asked of each provider on its connection, this download's asks recorded in it. */
  readonly asked?: AskedHeights;
  /** A batch from one provider, each body checked against its header (InvalidChain: a block breaks a rule). */
  fetch(peer: string, hashes: readonly Uint8Array[]): Promise<SaneBlock[]>;
  /** Signatures checked on every core while earlier batches import. */
  preverify?(blocks: readonly SaneBlock[]): Promise<void>;
  /** Imports a batch in order (InvalidChain: a block breaks a rule); `from` sent it. */
  importBatch(blocks: readonly SaneBlock[], from: string): Promise<void>;
  /** Asked before each batch is imported: false ends the download there, the batch not imported. */
  keepGoing?(blocks: readonly SaneBlock[]): Promise<boolean>;
  /** A provider held up the import and sits out `pauseMs` (its `stalls`-th stall here): no fault, but a slow sync's why. */
  onStall?(peer: string, stalls: number, pauseMs: number): void;
  /** A provider at fault (a body that does not match, a rule broken). */
  blame(peer: string, err: unknown): void;
  isBanned(peer: string): boolean;
}

export class BodyDownload {
  private readonly parts: BodyDownloadParts;
  /** Providers that joined before the download started. */
  private readonly early: string[] = [];
  private joinNow: ((peer: string) => void) | undefined;
  private goneNow: ((peer: string) => void) | undefined;
  private endNow: (() => void) | undefined;
  private ended = false;

  constructor(parts: BodyDownloadParts) {
    this.parts = parts;
  }

  /**
   * Ends the download at once (its owner stops): what was imported stays, and no retry-after or
   * pause is waited out (a busy provider's can be over a minute).
   */
  end(): void {
    this.ended = true;
    this.endNow?.();
  }

  /** A provider joins (before or during the download); one that dropped out does not come back. */
  join(peer: string): void {
    if (this.joinNow) this.joinNow(peer);
    else this.early.push(peer);
  }

  /**
   * `peer`'s connection ended: it leaves, and may join again on its next connection. What it
   * claimed on the old one is not held against what it answers on the next: a node that crashed
   * lost the last blocks it had not written, and asked on again it answered short of the status
   * it gave before, which was charged as withholding.
   */
  gone(peer: string): void {
    if (this.goneNow) this.goneNow(peer);
    else this.early.splice(0, this.early.length, ...this.early.filter((p) => p !== peer));
  }

  /**
   * Runs the download to its end: every block imported, or nobody left who can serve it (the
   * sync's next round retries), or `keepGoing` said no, or a block that breaks a rule (thrown:
   * InvalidChain).
   */
  async run(): Promise<void> {
    const { env, first, last, claimant } = this.parts;
    const batchCount = Math.ceil((last - first + 1) / BLOCK_BATCH);
    const batchHashes = (index: number): Promise<Uint8Array[]> => {
      const start = first + index * BLOCK_BATCH;
      return this.parts.batchHashes(start, Math.min(BLOCK_BATCH, last - start + 1));
    };
    const queue = Array.from({ length: batchCount }, (_, i) => i);
    const arrived = new Map<number, { blocks: SaneBlock[]; from: string; verified: Promise<void> }>();
    const parts = new PartialBatches();
    /** Who was last given each batch still outstanding, and when; since when it held up the import. */
    const holders = new Map<number, { peer: string; since: number; holdingUpSince?: number }>();
    /** How long each provider's last batch took. */
    const batchMs = new Map<string, number>();
    /** The providers taking part, each with its joining's token: a worker of an earlier one (a connection since ended) stops. */
    const active = new Map<string, object>();
    /** Every peer that took part: one that dropped out does not come back in this download. */
    const joined = new Set<string>();
    /** Providers sitting out after a stall: until when, and how many stalls so far. */
    const paused = new Map<string, { until: number; stalls: number }>();
    /** Busy answers in a row, per provider. */
    const busyAnswers = new Map<string, number>();
    /** Whether the claimant's empty answer was judged (WITHHELD). */
    let claimantJudged = false;
    let nextToImport = 0;
    let finished = this.ended;
    let invalid: InvalidChain | undefined;
    let waiters: (() => void)[] = [];
    const changed = () => new Promise<void>((resolve) => waiters.push(resolve));
    const notify = () => {
      const woken = waiters;
      waiters = [];
      for (const wake of woken) wake();
    };
    /** What each pending sleep and request does when the download ends (removed as each settles). */
    const atEnd = new Set<() => void>();
    /**
     * Sleeps `ms`, or until `until` settles, or until the download is over. The timer is cleared
     * as soon as the sleep ends, so that sleeps cut short by `until` (one or more a batch) leave
     * no timer and no closure behind for the rest of a long download.
     */
    const sitOut = (ms: number, until?: Promise<void>) =>
      new Promise<void>((resolve) => {
        const wake = () => {
          env.clearTimeout(timer);
          atEnd.delete(wake);
          resolve();
        };
        const timer = env.setTimeout(wake, Math.max(0, ms));
        atEnd.add(wake);
        void until?.then(wake);
      });
    const requeue = (index: number) => {
      queue.unshift(index);
      queue.sort((a, b) => a - b);
    };
    const pauseSlow = (peer: string) => {
      const stalls = (paused.get(peer)?.stalls ?? 0) + 1;
      paused.set(peer, { until: env.monotonic() + stallPauseMs(stalls), stalls });
      this.parts.onStall?.(peer, stalls, stallPauseMs(stalls));
      for (const [index, holder] of holders) {
        if (holder.peer !== peer) continue;
        holders.delete(index); // its copy is still imported if it comes first
        requeue(index);
      }
      notify();
    };
    /** A provider leaves this download; the last ones left need not sit out their pauses alone. */
    const leave = (peer: string) => {
      active.delete(peer);
      const now = env.monotonic();
      if ([...active.keys()].every((p) => (paused.get(p)?.until ?? 0) > now)) {
        for (const pause of paused.values()) pause.until = Math.min(pause.until, now);
      }
      notify();
    };

    const worker = async (peer: string, token: object) => {
      while (!finished && active.get(peer) === token) {
        const pause = paused.get(peer);
        if (pause && pause.until > env.monotonic()) {
          await sitOut(pause.until - env.monotonic(), changed()); // woken early if its pause is lifted
          continue;
        }
        if (queue.length === 0 || queue[0]! >= nextToImport + READ_AHEAD_BATCHES) {
          // Everything is taken (a failed batch may come back), or far enough ahead. If the
          // import waits on another peer's batch meanwhile, that peer is holding everyone up.
          const holder = arrived.has(nextToImport) ? undefined : holders.get(nextToImport);
          if (holder === undefined || holder.peer === peer) {
            await changed();
            continue;
          }
          const mine = batchMs.get(peer);
          holder.holdingUpSince ??= env.monotonic();
          const left = holder.holdingUpSince + (mine === undefined ? STALL_MS : Math.max(STALL_MIN_MS, 2 * mine)) - env.monotonic();
          if (left <= 0) pauseSlow(holder.peer);
          else await sitOut(left, changed());
          continue;
        }
        const index = queue.shift()!;
        if (index < nextToImport || arrived.has(index)) continue; // a copy came first
        const since = env.monotonic();
        // This request's own mark: the peer's other request may hold the same batch later (it
        // went back in line meanwhile), and only the request that set a mark may clear it.
        const mark: { peer: string; since: number; holdingUpSince?: number } = { peer, since };
        holders.set(index, mark);
        let retryAfterMs: number | undefined;
        try {
          const hashes = await batchHashes(index);
          const start = first + index * BLOCK_BATCH;
          const count = Math.min(BLOCK_BATCH, last - start + 1);
          // Re-downloads past its trickle's burst would be answered busy for ever (node/asked-heights.ts).
          const rest = parts.missing(index, hashes).slice(0, this.parts.asked?.reDownloads(peer, start, count) ? 1 : undefined);
          const asked = (request: Promise<SaneBlock[]>) => this.parts.asked?.counting(peer, start, count, request) ?? request;
          const got = rest.length === 0 ? [] : await untilOver(asked(this.parts.fetch(peer, rest)), peer);
          if (got === undefined) break; // the download ended without it
          const blocks = index >= nextToImport ? parts.add(index, hashes, rest, got) : undefined;
          // Signatures are checked on every core while earlier batches import.
          if (blocks && !arrived.has(index)) {
            arrived.set(index, { blocks, from: peer, verified: this.parts.preverify?.(blocks).catch(() => {}) ?? Promise.resolve() });
          }
          if (got.length < rest.length && peer === claimant?.peer && !claimantJudged) {
            claimantJudged = true; // its other request's answer costs nothing more
            if (await claimant.keepsBodies(start)) throw new PeerFault(`served ${got.length} of ${rest.length} blocks of the chain it announced`, WITHHELD);
          }
          // None: a provider on another chain as heavy, which lacks the rest; the others may have it.
          if (got.length === 0 && rest.length > 0) throw new Error('lacks blocks of the chain it announced');
          busyAnswers.delete(peer);
          if (got.length === rest.length) batchMs.set(peer, env.monotonic() - since);
          // Short (up to the first it lacks), or a part asked: what came is kept, the rest asked
          // again, of it or another.
          if (!blocks && index >= nextToImport && !arrived.has(index) && holders.get(index) === mark) requeue(index);
        } catch (err) {
          if (err instanceof InvalidChain) {
            invalid ??= err;
            finished = true;
          } else {
            // The batch goes back in line for the others, unless another request holds it now.
            if (holders.get(index) === mark) requeue(index);
            const busy = err instanceof TransportError && err.code === 'TRANSPORT_BUSY';
            const busyInARow = busy ? (busyAnswers.get(peer) ?? 0) + 1 : 0;
            if (busy && busyInARow < MAX_BUSY_ANSWERS && err.retryAfterMs <= MAX_RETRY_AFTER_MS) {
              busyAnswers.set(peer, busyInARow);
              retryAfterMs = err.retryAfterMs; // not a failure: asked again once that has passed
            } else {
              if (active.get(peer) === token) leave(peer);
              if (!busy && (err instanceof PeerFault || err instanceof CairnError)) this.parts.blame(peer, err);
            }
          }
        } finally {
          if (holders.get(index) === mark) holders.delete(index);
        }
        notify();
        if (retryAfterMs !== undefined) await sitOut(retryAfterMs);
        // The others woken by this notify go first: the one that just finished would otherwise
        // always be first in line for the next free slot, and one provider would serve nearly all.
        else await nextTurn(env);
      }
    };
    /**
     * A request's answer, or undefined once the download is over: the import has what it needs,
     * and a request given up on (its batch went to another provider) may take the transport's
     * whole timeout to end. A provable fault in such an answer (a lie, garbage) is still held
     * against its sender, as during the download.
     */
    const untilOver = <T>(request: Promise<T>, peer: string) =>
      new Promise<T | undefined>((resolve, reject) => {
        let settled = false;
        const settle = () => {
          const first = !settled;
          settled = true;
          atEnd.delete(abandon);
          return first;
        };
        const abandon = () => settle() && resolve(undefined);
        if (finished) abandon();
        else atEnd.add(abandon);
        request.then(
          (value) => settle() && resolve(value),
          (err: unknown) => {
            if (settle()) reject(err);
            else if (err instanceof PeerFault || (err instanceof CairnError && !(err instanceof TransportError && err.code === 'TRANSPORT_BUSY'))) this.parts.blame(peer, err);
          },
        );
      });
    const workers: Promise<void>[] = [];
    this.joinNow = (peer: string) => {
      if (finished || joined.has(peer) || this.parts.isBanned(peer)) return;
      joined.add(peer);
      const token = {};
      active.set(peer, token);
      for (let i = 0; i < REQUESTS_PER_PEER; i++) workers.push(worker(peer, token));
    };
    this.goneNow = (peer: string) => {
      joined.delete(peer);
      busyAnswers.delete(peer);
      if (peer === claimant?.peer) claimantJudged = true;
      if (active.has(peer)) leave(peer);
    };
    for (const peer of this.early) this.joinNow(peer);
    this.endNow = () => {
      finished = true;
      for (const end of [...atEnd]) end();
      notify();
    };

    try {
      while (nextToImport < batchCount && !invalid && !finished) {
        const ready = arrived.get(nextToImport);
        if (!ready) {
          if (active.size === 0 || finished) break; // nobody left who can serve us; the next round retries
          await changed();
          continue;
        }
        if (this.parts.keepGoing && !(await this.parts.keepGoing(ready.blocks))) break;
        parts.drop(nextToImport);
        arrived.delete(nextToImport++);
        notify(); // the read-ahead window moved
        await ready.verified;
        await this.parts.importBatch(ready.blocks, ready.from);
      }
    } finally {
      this.joinNow = undefined;
      this.goneNow = undefined;
      this.endNow = undefined;
      finished = true;
      for (const end of [...atEnd]) end();
      notify();
      await Promise.allSettled(workers);
    }
    if (invalid) throw invalid;
  }
}
