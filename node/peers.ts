import { EventEmitter } from 'node:events';
import { BoundedMap } from '../ledger/bounded.ts';
import { CairnError } from '../ledger/errors.ts';
import { addressGroup } from './address-groups.ts';

/** Misbehaviour adds up per peer (fading, SCORE_HALF_LIFE_SECONDS); at this score the peer is cut off and refused for a while. */
export const BAN_THRESHOLD = 100;
export const DEFAULT_BAN_SECONDS = 600;
/** Bans remembered at most, of each kind: the soonest to expire go first. */
const MAX_BANS = 10_000;
/**
 * Misbehaviour fades: a score halves every ten minutes (Lodestar's half-life). A peer that does
 * wrong in a burst is banned as before; an honest one whose rare slips (a frame cut by a crash,
 * a request a moment before its retry-after) would otherwise add up over months is not.
 */
export const SCORE_HALF_LIFE_SECONDS = 600;
/** Scores kept at most, of each kind: the longest unpenalised go first (each is below 100 anyway). */
const MAX_SCORES = 10_000;

/** A score, and when (seconds) it was last added to. */
interface Score {
  value: number;
  at: number;
}

/** What `s` has faded to by `now`. */
function faded(s: Score | undefined, now: number): number {
  return s === undefined ? 0 : s.value * 2 ** (-(now - s.at) / SCORE_HALF_LIFE_SECONDS);
}

/** Adds `score` to `key`'s faded total, moved to the end of the map's order; returns the new total. */
function addScore(scores: BoundedMap<string, Score>, key: string, score: number, now: number): number {
  const value = faded(scores.get(key), now) + score;
  scores.delete(key);
  scores.set(key, { value, at: now });
  return value;
}

/** A ban as it is kept across restarts: a peer id or an IP, until a time (seconds since the epoch). */
export interface BanRecord {
  readonly kind: 'peer' | 'ip';
  readonly id: string;
  readonly until: number;
  readonly reason: string;
}

/** Where bans survive a restart (a file in the datadir for a real node, memory in the simulator). */
export interface BanStore {
  /** Rejects, saying why, when there are bans kept that cannot be read. */
  load(): Promise<readonly BanRecord[]>;
  save(bans: readonly BanRecord[]): Promise<void>;
}

export interface PeerManagerOptions {
  readonly banSeconds?: number;
  /**
   * Whether loopback addresses (127.0.0.0/8, ::1) are scored and banned like others. Off by
   * default: they are the machine's own processes — a local devnet, tests — and one hostile local
   * process would otherwise get every other one refused. Bans by peer id apply to them as to all.
   */
  readonly limitLoopback?: boolean;
}

export interface PeerManagerEvents {
  /** Hang up on this peer now (the node does it; this class holds no connections). */
  ban: [peer: string, reason: string];
  /** Misbehaviour counted against a peer, for logs, metrics and the simulator's checks. */
  penalty: [peer: string, score: number, reason: string];
}

/** Peers gone lately whose IP is still known, for penalties that land after their disconnect. */
const RECENT_IPS = 1_024;

/**
 * Ban scores and bans, by peer id and by IP. Rule errors carry their own ban score
 * (ledger/errors.ts), so this class punishes without interpreting consensus. Only what a peer
 * provably did counts: invalid data, lies about its chain, broken framing, requests that ignore
 * "busy". Slowness, timeouts and vanished connections cost nothing here (a crash or a cut cable is
 * no offence); sync simply asks someone else.
 *
 * An identity costs nothing to make, an address does: a peer's score also adds up on its IP, and
 * a ban covers both, so a new identity from a banned address is refused too, for as long. Peers
 * already connected from that address stay (neighbours behind one NAT). Bans outlive restarts
 * through a BanStore, and expire by the node's clock.
 */
export class PeerManager extends EventEmitter<PeerManagerEvents> {
  private readonly clock: () => number;
  private readonly banSeconds: number;
  private readonly limitLoopback: boolean;
  private readonly scores = new BoundedMap<string, Score>(MAX_SCORES);
  private readonly ipScores = new BoundedMap<string, Score>(MAX_SCORES);
  private readonly bans = new Map<string, { until: number; reason: string }>();
  private readonly ipBans = new Map<string, { until: number; reason: string }>();
  /** The IP each connected peer came from, for its score and its ban. */
  private readonly ips = new Map<string, string>();
  /**
   * The IP of each peer gone lately (the last RECENT_IPS): a penalty often lands after the
   * connection closed (an import's verdict, a sync's), and a peer that hung up at once would
   * otherwise leave its address unscored and unbanned, free to come back under a new identity.
   */
  private readonly goneIps = new BoundedMap<string, string>(RECENT_IPS);
  /** The latest time the clock said, to see it set back. */
  private latest = -Infinity;
  /** The ban made last, for the operator (status): a node whose every peer was banned says why. */
  private newestBan: { readonly peer: string; readonly reason: string; readonly at: number } | undefined;

  constructor(clock: () => number, options: PeerManagerOptions | number = {}) {
    super();
    const o = typeof options === 'number' ? { banSeconds: options } : options;
    this.clock = clock;
    this.banSeconds = o.banSeconds ?? DEFAULT_BAN_SECONDS;
    this.limitLoopback = o.limitLoopback ?? false;
  }

  /**
   * The clock, and what it means when it was set back (NTP, an operator fixing the date): no ban
   * may then run longer than banSeconds from now, or a ten-minute ban set a day ahead would last a
   * day, and no score may date from after now, or it would grow as it "fades" (2^144 for a day) and
   * ban at its next slip every peer that ever slipped.
   */
  private now(): number {
    const now = this.clock();
    if (now < this.latest) {
      for (const bans of [this.bans, this.ipBans]) for (const b of bans.values()) b.until = Math.min(b.until, now + this.banSeconds);
      for (const scores of [this.scores, this.ipScores]) for (const s of scores.values()) s.at = Math.min(s.at, now);
    }
    this.latest = now;
    return now;
  }

  /** The IP of `addr` if it is one this manager scores (not loopback, unless told to). */
  private scoredIp(addr: string): string | undefined {
    const g = addressGroup(addr);
    return g && (this.limitLoopback || !g.loopback) ? g.ip : undefined;
  }

  /** A peer connected from `remoteAddr`: its misbehaviour will also count against that IP. */
  connectedFrom(peer: string, remoteAddr: string): void {
    const ip = this.scoredIp(remoteAddr);
    if (ip) this.ips.set(peer, ip);
    this.goneIps.delete(peer);
  }

  disconnected(peer: string): void {
    const ip = this.ips.get(peer);
    if (ip === undefined) return;
    this.ips.delete(peer);
    this.goneIps.delete(peer);
    this.goneIps.set(peer, ip);
  }

  /** The IP `peer` is connected from, or was when it left lately (undefined for loopback, unless told to limit it). */
  ipOf(peer: string): string | undefined {
    return this.ips.get(peer) ?? this.goneIps.get(peer);
  }

  /** Adds `score` to the peer's misbehaviour (and its IP's); bans it at BAN_THRESHOLD. Returns true if it was banned. */
  penalize(peer: string, score: number, reason: string): boolean {
    if (score <= 0 || this.isBanned(peer)) return false;
    const now = this.now();
    const total = addScore(this.scores, peer, score, now);
    const ip = this.ipOf(peer);
    const ipTotal = ip ? addScore(this.ipScores, ip, score, now) : 0;
    this.emit('penalty', peer, score, reason);
    if (total < BAN_THRESHOLD && ipTotal < BAN_THRESHOLD) return false;
    this.ban(peer, ipTotal >= BAN_THRESHOLD && total < BAN_THRESHOLD ? `${reason} (its address's identities together)` : reason);
    return true;
  }

  /**
   * For a request we could not serve. Malformed content costs its ban score (at least 10), broken
   * framing its TransportError's (25); a peer that vanished mid-request costs nothing.
   */
  badRequest(peer: string, err: unknown): void {
    const score = err instanceof CairnError ? (err.banScore > 0 ? Math.max(err.banScore, 10) : 0) : 0;
    this.penalize(peer, score, `bad request: ${(err as Error)?.message ?? String(err)}`);
  }

  /**
   * Bans the peer, and the IP it is connected from, for banSeconds. `address: false` for what is
   * no offence of the address's other nodes (a node of another network: its neighbours may be ours).
   */
  ban(peer: string, reason: string, o: { address?: boolean } = {}): void {
    const now = this.now();
    const until = now + this.banSeconds;
    this.newestBan = { peer, reason, at: now };
    this.bans.set(peer, { until, reason });
    this.scores.delete(peer);
    const ip = o.address === false ? undefined : this.ipOf(peer);
    if (ip) {
      this.ipBans.set(ip, { until, reason });
      this.ipScores.delete(ip);
    }
    bound(this.bans);
    bound(this.ipBans);
    this.emit('ban', peer, reason);
  }

  isBanned(peer: string): boolean {
    return live(this.bans, peer, this.now());
  }

  /** Whether connections from (or to) `addr` are refused: its IP is banned. */
  addressBanned(addr: string): boolean {
    const ip = this.scoredIp(addr);
    return ip !== undefined && live(this.ipBans, ip, this.now());
  }

  /** The peer's misbehaviour as it has faded by now, to a whole point. */
  score(peer: string): number {
    return Math.round(faded(this.scores.get(peer), this.now()));
  }

  get bannedCount(): number {
    const now = this.now();
    return [...this.bans.keys()].filter((id) => live(this.bans, id, now)).length;
  }

  /** The ban made last, while it lasts (since this start): who, why, and when by the node's clock. */
  get lastBan(): { readonly peer: string; readonly reason: string; readonly at: number } | undefined {
    return this.newestBan && this.isBanned(this.newestBan.peer) ? this.newestBan : undefined;
  }

  get bannedAddressCount(): number {
    const now = this.now();
    return [...this.ipBans.keys()].filter((ip) => live(this.ipBans, ip, now)).length;
  }

  /** Every ban in force, to be saved. */
  records(): BanRecord[] {
    const now = this.now();
    const out: BanRecord[] = [];
    for (const [id, b] of this.bans) if (b.until > now) out.push({ kind: 'peer', id, until: b.until, reason: b.reason });
    for (const [id, b] of this.ipBans) if (b.until > now) out.push({ kind: 'ip', id, until: b.until, reason: b.reason });
    return out;
  }

  /** Bans saved before a restart; those expired by now are dropped. */
  restore(records: readonly BanRecord[]): number {
    const now = this.now();
    let restored = 0;
    for (const r of records) {
      if (!(r.until > now)) continue;
      // Saved by a clock that ran ahead, maybe: no longer than one ban from now.
      (r.kind === 'ip' ? this.ipBans : this.bans).set(r.id, { until: Math.min(r.until, now + this.banSeconds), reason: r.reason });
      restored++;
    }
    bound(this.bans);
    bound(this.ipBans);
    return restored;
  }
}

function live(bans: Map<string, { until: number }>, key: string, now: number): boolean {
  const b = bans.get(key);
  if (b === undefined) return false;
  if (now >= b.until) {
    bans.delete(key);
    return false;
  }
  return true;
}

/**
 * Drops the bans that end soonest beyond MAX_BANS. One over, as each new ban makes it once full, is
 * a scan: a sort of the whole map per ban was 2.5 ms, at the rate a peer of another network can
 * come back under a new identity to be banned again.
 */
function bound(bans: Map<string, { until: number }>): void {
  const excess = bans.size - MAX_BANS;
  if (excess <= 0) return;
  if (excess === 1) {
    let soonest: string | undefined;
    let soonestUntil = Infinity;
    for (const [key, b] of bans) {
      if (b.until < soonestUntil) {
        soonestUntil = b.until;
        soonest = key;
      }
    }
    bans.delete(soonest!);
    return;
  }
  const soonest = [...bans.entries()].sort((a, b) => a[1].until - b[1].until).slice(0, excess);
  for (const [key] of soonest) bans.delete(key);
}
