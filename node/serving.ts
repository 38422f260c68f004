import type { Env } from './env.ts';
import type { PeerManager } from './peers.ts';
import type { NetworkStats, PeerRecords, ServedProtocol } from './peer-records.ts';
import { isBusy, type Busy, type Responder, type ServeOptions } from './transport.ts';
import { Bucket, DEFAULT_SERVING_LIMITS, type ServingLimits } from './serving-limits.ts';

/** Serves a protocol within the askers' budgets (the node's NetworkGuard). */
export type Serve = (name: ServedProtocol, protocol: string, respond: Responder, options: ServeOptions) => Promise<void>;

/** A peer answered busy this recently is shown as throttled. */
export const THROTTLED_SHOWN_MS = 10_000;
/** Who counts as downloading now, for the equal shares. */
const ACTIVE_WINDOW_MS = 2_000;
/** Peers whose budgets are remembered after they leave (a reconnect does not refill them). */
const MAX_REMEMBERED = 4_096;
const FORGET_AFTER_MS = 10 * 60_000;
/** The retry-after of a request refused because the node holds as many answers as it may: not the asker's doing. */
export const HELD_RETRY_MS = 1_000;

/**
 * A block about to be served: its size, its height (a side branch's too: the budgets know a block
 * served before on a connection by its height, whichever branch's it was), and whether the asker
 * already has it (node/chain-server.ts places them).
 */
export interface ServedBlock {
  readonly bytes: number;
  readonly height: number;
  readonly theirs: boolean;
}

/**
 * The buckets the identities of one address group share (its /24, or /48 for IPv6; each loopback
 * or unplaced peer has its own): an identity costs nothing, an address does. They outlive the
 * group's connections, so a new identity from it starts where they left off, not with a fresh burst.
 */
interface GroupBudget {
  readonly requests: Map<ServedProtocol, Bucket>;
  readonly bytes: Bucket;
  readonly redundant: Bucket;
  lastServedAt: number;
  /** Peer budgets (of connected peers, or remembered) that share it: a group is forgotten only with none. */
  members: number;
  /** Answer bytes its identities hold now (blocks being read, answers not yet written out): at most a quarter of the node's. */
  held: number;
}

interface ProtocolState {
  inFlight: number;
  /** A busy answer asked the peer to keep off until then; requests arriving earlier are counted. */
  busyUntil: number;
  early: number;
}

interface PeerBudget {
  readonly group: GroupBudget;
  readonly protocols: Map<ServedProtocol, ProtocolState>;
  /** Heights served on this connection, one bit each, whichever branch's block: a second time is a re-download. */
  served: Uint8Array;
  /** Its connection ended, no request since: an answer read while it left marks nothing (`served` would stay, H/8 bytes). */
  gone: boolean;
  repeats: number;
  redundantBlocks: number;
  /** Bytes of blocks answers charged when their blocks were read (serveBlocks), not to be charged again once built. */
  prepaid: number;
  lastSeenAt: number;
}

/**
 * Budgets on every request protocol (token buckets in requests and in bytes, an address group's,
 * shared by its identities; requests in flight, each peer's), answered
 * "busy, retry later" when spent rather than reset, with the time to wait. A peer costs score only
 * when it persists: asking again before its retry-after, beyond what was already on its way. A
 * peer that re-downloads what it already has is served at a trickle, then cut off.
 */
export class Serving {
  private readonly env: Env;
  private readonly peers: PeerManager;
  private readonly records: PeerRecords;
  private readonly stats: NetworkStats;
  readonly limits: ServingLimits;
  private readonly budgets = new Map<string, PeerBudget>();
  /** By subnet, the oldest used first: what the identities of each address group share. */
  private readonly groups = new Map<string, GroupBudget>();
  /** Answer bytes held now, node-wide (`maxHeldAnswerBytes`). */
  private held = 0;

  constructor(o: { env: Env; peers: PeerManager; records: PeerRecords; stats: NetworkStats; limits?: Partial<ServingLimits> }) {
    this.env = o.env;
    this.peers = o.peers;
    this.records = o.records;
    this.stats = o.stats;
    this.limits = { ...DEFAULT_SERVING_LIMITS, ...o.limits, requests: { ...DEFAULT_SERVING_LIMITS.requests, ...o.limits?.requests } };
  }

  /**
   * `respond`, answered only within the asker's budgets on `protocol`, its answer counted against
   * them. A request counts in flight, and its answer as held, until the transport says the answer
   * was sent (`sent`): a peer that stops reading cannot have more answers made for it meanwhile.
   */
  guard(protocol: ServedProtocol, respond: Responder): Responder {
    return async (request, peer, sent) => {
      const now = this.env.monotonic();
      const budget = this.budgetOf(peer, now);
      const state = this.protocolOf(budget, protocol);
      const refusal = this.admit(peer, protocol, budget, state, now);
      if (refusal) return refusal;
      state.inFlight++;
      let heldBytes = 0;
      const { group } = budget;
      const done = () => {
        state.inFlight--;
        this.held -= heldBytes;
        group.held -= heldBytes;
      };
      try {
        const answer = await respond(request, peer);
        if (!isBusy(answer)) {
          heldBytes = size(answer);
          this.held += heldBytes;
          group.held += heldBytes;
          this.charge(peer, protocol, budget, heldBytes);
        }
        return answer;
      } finally {
        if (sent) void sent.then(done);
        else done();
      }
    };
  }

  /**
   * Room to read `count` blocks of at most `eachBytes` each from the store for `peer`, held until
   * the release; undefined when they would pass `maxHeldAnswerBytes` node-wide, or a quarter of it
   * for the peer's address group (they always fit when nothing else is held there): a peer that
   * never reads its answers holds them until the answer deadline, and one group holding the whole
   * bound would have every other asker's blocks answered busy. All or none, as every blocks answer
   * (serveBlocks).
   */
  roomForBlocks(peer: string, count: number, eachBytes: number): (() => void) | undefined {
    const bytes = count * eachBytes;
    const group = this.budgets.get(peer)?.group;
    if (this.held > 0 && this.held + bytes > this.limits.maxHeldAnswerBytes) return undefined;
    if (group && group.held > 0 && group.held + bytes > this.limits.maxHeldAnswerBytes / 4) return undefined;
    this.held += bytes;
    if (group) group.held += bytes;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.held -= bytes;
      if (group) group.held -= bytes;
    };
  }

  /** Answer bytes held now, node-wide. */
  get heldAnswerBytes(): number {
    return this.held;
  }

  /**
   * Whether the blocks about to be served to `peer` are served now, all of them, or busy: each
   * comes with its size, its height, and whether the tip the peer announced builds on it;
   * `chainHeight` is ours. A block it already has — its own tip's ancestor, or, past the repeat
   * allowance, one served to it before on this connection (a height served before) — is a
   * re-download, paid for from a trickle: an answer is served only when the trickle holds its
   * re-downloads (less one block: a debt of one block at most), so that no request of 64 large
   * blocks takes a burst's worth many times over. Never cut short: a syncing node takes an answer
   * with fewer blocks than asked, from a peer whose status says it keeps them, for withholding.
   * Honest askers never re-download. The answer's bytes are charged here, before it is sent, and
   * one is served only while the byte budget is not spent: requests in flight at once were each
   * admitted on the same balance, and charging each only once it was built let four of them hold
   * 64 blocks each.
   */
  serveBlocks(peer: string, blocks: readonly ServedBlock[], chainHeight: number): number | Busy {
    const budget = this.budgets.get(peer);
    if (!budget) return blocks.length;
    const { group } = budget;
    const now = this.env.monotonic();
    const allowance = Math.max(this.limits.repeatAllowance, Math.floor(chainHeight / 8));
    group.redundant.refill(now, this.limits.redundantBurstBytes, this.limits.redundantBytesPerSec);
    group.bytes.refill(now, this.limits.burstBytes, this.share(now));
    const state = this.protocolOf(budget, 'blocks');
    if (group.bytes.tokens <= 0) return this.busy(peer, 'blocks', group.bytes.waitFor(Number.MIN_VALUE, this.share(now)), state, now, true);
    let repeats = budget.repeats;
    const inAnswer = new Set<number>(); // a height asked twice in one request is asked again too
    const redundant = blocks.filter((b) => {
      const again = wasServed(budget, b.height) || inAnswer.has(b.height);
      inAnswer.add(b.height);
      if (b.theirs || (again && repeats + 1 > allowance)) return true;
      if (again) repeats++;
      return false;
    });
    // Whole or busy: the trickle must hold the re-downloads less the largest (a block of debt at
    // most). Those of more than its burst never fit: busy for as long as it takes to fill, and the
    // asker asks fewer (node/body-download.ts asks a peer it asked again past the allowance one block a request).
    const redundantBytes = redundant.reduce((sum, b) => sum + b.bytes, 0);
    const owed = redundantBytes - redundant.reduce((max, b) => Math.max(max, b.bytes), 0);
    if (redundant.length > 0 && (group.redundant.tokens <= 0 || group.redundant.tokens < owed)) {
      const wait = owed > this.limits.redundantBurstBytes ? this.fillMs() : group.redundant.waitFor(Math.max(Number.MIN_VALUE, owed), this.limits.redundantBytesPerSec);
      return this.busy(peer, 'blocks', wait, state, now, true);
    }
    budget.repeats = repeats;
    for (const b of blocks) {
      if (!budget.gone) markServed(budget, b.height);
      group.bytes.tokens -= b.bytes;
      budget.prepaid += b.bytes;
    }
    group.redundant.tokens -= redundantBytes;
    budget.redundantBlocks += redundant.length;
    const limit = Math.min(this.limits.maxRedundantBlocks, chainHeight + this.limits.redundantChainMargin);
    if (budget.redundantBlocks > limit) {
      budget.redundantBlocks = 0;
      this.peers.penalize(peer, 100, `re-downloads blocks it has: more than ${limit} on one connection`);
    }
    return blocks.length;
  }

  /** How long the re-download trickle takes to fill from empty. */
  private fillMs(): number {
    return Math.ceil((this.limits.redundantBurstBytes * 1000) / this.limits.redundantBytesPerSec);
  }

  /** Whether `peer` was answered busy, on any protocol, in the last THROTTLED_SHOWN_MS (what `cairn peers` shows). */
  throttled(peer: string): boolean {
    const at = this.records.get(peer)?.lastThrottledAt;
    return at !== undefined && this.env.monotonic() - at < THROTTLED_SHOWN_MS;
  }

  /** The connection ended: what it downloaded no longer says what it has. Its budgets, and its group's, stay a while. */
  disconnected(peer: string): void {
    const b = this.budgets.get(peer);
    if (!b) return;
    b.served = new Uint8Array(0);
    b.gone = true;
    b.repeats = 0;
    b.redundantBlocks = 0;
  }

  private admit(peer: string, protocol: ServedProtocol, budget: PeerBudget, state: ProtocolState, now: number): Busy | undefined {
    const rules = this.limits.requests[protocol];
    if (now < state.busyUntil) {
      // Told to keep off until then. What was already on its way is forgiven; the rest costs.
      if (++state.early > rules.inFlight + 2) this.peers.penalize(peer, this.limits.ignoredBusyScore, `${protocol} requests before their retry-after`);
      return this.busy(peer, protocol, state.busyUntil - now, state, now, false);
    }
    const { group } = budget;
    const requests = this.requestsOf(group, protocol, now);
    requests.refill(now, rules.burst, rules.perSecond);
    group.bytes.refill(now, this.limits.burstBytes, this.share(now));
    group.redundant.refill(now, this.limits.redundantBurstBytes, this.limits.redundantBytesPerSec);
    // Only blocks answers are large enough to matter here: a status or headers answer refused for
    // another asker's unread blocks would stall every peer's sync behind one that never reads.
    if (protocol === 'blocks' && this.held >= this.limits.maxHeldAnswerBytes) return this.busy(peer, protocol, HELD_RETRY_MS, state, now, false);
    const wait = Math.max(
      state.inFlight >= rules.inFlight ? 100 : 0,
      requests.waitFor(1, rules.perSecond),
      group.bytes.waitFor(Number.MIN_VALUE, this.share(now)),
      protocol === 'blocks' ? group.redundant.waitFor(Number.MIN_VALUE, this.limits.redundantBytesPerSec) : 0,
    );
    if (wait > 0) return this.busy(peer, protocol, wait, state, now, true);
    requests.tokens -= 1;
    return undefined;
  }

  private busy(peer: string, protocol: ServedProtocol, waitMs: number, state: ProtocolState, now: number, fresh: boolean): Busy {
    const retryAfterMs = Math.max(1, Math.ceil(waitMs));
    if (fresh) {
      state.busyUntil = now + retryAfterMs;
      state.early = 0;
    }
    this.stats.throttled[protocol]++;
    const r = this.records.get(peer);
    if (r) r.lastThrottledAt = now;
    return { busy: true, retryAfterMs };
  }

  private charge(peer: string, protocol: ServedProtocol, budget: PeerBudget, bytes: number): void {
    const now = this.env.monotonic();
    budget.group.bytes.refill(now, this.limits.burstBytes, this.share(now));
    const prepaid = Math.min(budget.prepaid, bytes);
    budget.prepaid -= prepaid;
    budget.group.bytes.tokens -= bytes - prepaid;
    budget.group.lastServedAt = now;
    this.stats.servedBytes[protocol] += bytes;
    this.stats.servedRequests[protocol]++;
    const r = this.records.get(peer);
    if (r) r.bytesOut += bytes;
  }

  /** Each active downloading group's share of the upload, in bytes a second: its identities share it. */
  private share(now: number): number {
    const active = new Set<GroupBudget>();
    for (const b of this.budgets.values()) if (now - b.group.lastServedAt < ACTIVE_WINDOW_MS) active.add(b.group);
    return this.limits.uploadBytesPerSec / Math.max(1, active.size);
  }

  private budgetOf(peer: string, now: number): PeerBudget {
    let b = this.budgets.get(peer);
    if (!b) {
      if (this.budgets.size >= MAX_REMEMBERED) this.forget(now);
      const group = this.groupOf(peer, now);
      group.members++;
      b = { group, protocols: new Map(), served: new Uint8Array(0), gone: false, repeats: 0, redundantBlocks: 0, prepaid: 0, lastSeenAt: now };
      this.budgets.set(peer, b);
    }
    b.lastSeenAt = now;
    b.gone = false;
    return b;
  }

  /**
   * The group `peer` asks from: its subnet's (PeerRecord.group), remembered; a peer without an IP
   * PeerManager limits (loopback, an address of another kind) is a group of its own.
   */
  private groupOf(peer: string, now: number): GroupBudget {
    const ip = this.peers.ipOf(peer);
    const key = ip === undefined ? undefined : (this.records.get(peer)?.group?.subnet ?? ip);
    let group = key === undefined ? undefined : this.groups.get(key);
    if (!group) {
      group = { requests: new Map(), bytes: new Bucket(this.limits.burstBytes, now), redundant: new Bucket(this.limits.redundantBurstBytes, now), lastServedAt: -Infinity, members: 0, held: 0 };
      if (key !== undefined) this.groups.set(key, group);
    } else {
      this.groups.delete(key!);
      this.groups.set(key!, group);
    }
    // Only past the bound: an iterator made anew walks every entry the moves above deleted before the first live one.
    if (this.groups.size > MAX_REMEMBERED) {
      for (const [k, g] of this.groups) {
        if (this.groups.size <= MAX_REMEMBERED) break;
        if (g.members === 0) this.groups.delete(k);
      }
    }
    return group;
  }

  private requestsOf(group: GroupBudget, protocol: ServedProtocol, now: number): Bucket {
    let bucket = group.requests.get(protocol);
    if (!bucket) group.requests.set(protocol, (bucket = new Bucket(this.limits.requests[protocol].burst, now)));
    return bucket;
  }

  private protocolOf(b: PeerBudget, protocol: ServedProtocol): ProtocolState {
    let s = b.protocols.get(protocol);
    if (!s) b.protocols.set(protocol, (s = { inFlight: 0, busyUntil: 0, early: 0 }));
    return s;
  }

  /**
   * Drops budgets not used for a while (and, if there are still too many, the oldest of peers no
   * longer connected). A connected peer's is never dropped: its next request would start with
   * nothing in flight, and there are far fewer connections than MAX_REMEMBERED.
   */
  private forget(now: number): void {
    const drop = (peer: string, b: PeerBudget) => {
      this.budgets.delete(peer);
      b.group.members--;
    };
    for (const [peer, b] of this.budgets) if (now - b.lastSeenAt > FORGET_AFTER_MS && !this.records.get(peer)) drop(peer, b);
    for (const [peer, b] of this.budgets) {
      if (this.budgets.size < MAX_REMEMBERED) break;
      if (!this.records.get(peer)) drop(peer, b);
    }
  }
}

function size(answer: Uint8Array | Uint8Array[]): number {
  return Array.isArray(answer) ? answer.reduce((s, f) => s + f.byteLength, 0) : answer.byteLength;
}

function wasServed(b: PeerBudget, h: number): boolean {
  const byte = h >> 3;
  return byte < b.served.length && (b.served[byte]! & (1 << (h & 7))) !== 0;
}

/** Marks height `h` served on this connection. */
function markServed(b: PeerBudget, h: number): void {
  const byte = h >> 3;
  if (byte >= b.served.length) {
    const grown = new Uint8Array(Math.max(byte + 1, b.served.length * 2, 1024));
    grown.set(b.served);
    b.served = grown;
  }
  b.served[byte]! |= 1 << (h & 7);
}
