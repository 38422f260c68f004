import { EventEmitter } from 'node:events';
import { CairnError } from '../ledger/errors.ts';
import type { ConnectionGate } from './transport.ts';

/** Misbehaviour adds up per peer; at this score the peer is cut off and refused for a while. */
export const BAN_THRESHOLD = 100;
export const DEFAULT_BAN_SECONDS = 600;

export interface PeerManagerEvents {
  /** Hang up on this peer now (the node does it; this class holds no connections). */
  ban: [peer: string, reason: string];
  /** Misbehaviour counted against a peer, for logs, metrics and the simulator's checks. */
  penalty: [peer: string, score: number, reason: string];
}

/**
 * Ban scores and bans, by peer id. Rule errors carry their own ban score (ledger/errors.ts), so
 * this class punishes without interpreting consensus. Only what a peer provably did counts:
 * invalid data, lies about its chain, broken framing. Slowness, timeouts and vanished
 * connections cost nothing here (a crash or a cut cable is no offence); sync simply asks someone
 * else. It is also the transport's gate: a banned peer is refused both ways until its ban expires.
 */
export class PeerManager extends EventEmitter<PeerManagerEvents> implements ConnectionGate {
  private readonly clock: () => number;
  private readonly banSeconds: number;
  private readonly scores = new Map<string, number>();
  private readonly bans = new Map<string, number>();

  constructor(clock: () => number, banSeconds = DEFAULT_BAN_SECONDS) {
    super();
    this.clock = clock;
    this.banSeconds = banSeconds;
  }

  /** Adds `score` to the peer's misbehaviour; bans it at BAN_THRESHOLD. Returns true if it was banned. */
  penalize(peer: string, score: number, reason: string): boolean {
    if (score <= 0 || this.isBanned(peer)) return false;
    const total = (this.scores.get(peer) ?? 0) + score;
    this.scores.set(peer, total);
    this.emit('penalty', peer, score, reason);
    if (total < BAN_THRESHOLD) return false;
    this.ban(peer, reason);
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

  ban(peer: string, reason: string): void {
    this.bans.set(peer, this.clock() + this.banSeconds);
    this.scores.delete(peer);
    this.emit('ban', peer, reason);
  }

  isBanned(peer: string): boolean {
    const until = this.bans.get(peer);
    if (until === undefined) return false;
    if (this.clock() >= until) {
      this.bans.delete(peer);
      return false;
    }
    return true;
  }

  denied(peer: string): boolean {
    return this.isBanned(peer);
  }

  score(peer: string): number {
    return this.scores.get(peer) ?? 0;
  }

  get bannedCount(): number {
    return [...this.bans.keys()].filter((id) => this.isBanned(id)).length;
  }
}
