import { EventEmitter } from 'node:events';
import type { PeerId } from '@libp2p/interface';
import { CairnError } from '../ledger/errors.ts';

/** Misbehaviour adds up per peer; at this score the peer is cut off and refused for a while. */
export const BAN_THRESHOLD = 100;
export const DEFAULT_BAN_SECONDS = 600;

export interface PeerManagerEvents {
  /** Hang up on this peer now (the host does it; this class holds no sockets). */
  ban: [peerId: string, reason: string];
}

/**
 * Ban scores and bans, by peer id. Rule errors carry their own ban score (ledger/errors.ts), so
 * this class punishes without interpreting consensus. It is also the connection gater's oracle:
 * a banned peer is refused in both directions until its ban expires.
 */
export class PeerManager extends EventEmitter<PeerManagerEvents> {
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
  penalize(peer: PeerId | string, score: number, reason: string): boolean {
    if (score <= 0) return false;
    const id = peer.toString();
    const total = (this.scores.get(id) ?? 0) + score;
    this.scores.set(id, total);
    if (total < BAN_THRESHOLD) return false;
    this.ban(id, reason);
    return true;
  }

  /**
   * For a request we could not serve. Malformed content costs its ban score, broken framing (an
   * over-limit or garbled length prefix) a flat 25; a peer that vanished mid-request (reset,
   * end of stream, timeout) costs nothing: a crash or a cut cable is no offence.
   */
  badRequest(peer: PeerId | string, err: unknown): void {
    const name = (err as Error)?.name ?? '';
    const score = err instanceof CairnError ? Math.max(err.banScore, 10) : /^Invalid.*(Length|Data)/.test(name) ? 25 : 0;
    this.penalize(peer, score, `bad request: ${(err as Error)?.message ?? String(err)}`);
  }

  ban(peer: PeerId | string, reason: string): void {
    const id = peer.toString();
    this.bans.set(id, this.clock() + this.banSeconds);
    this.scores.delete(id);
    this.emit('ban', id, reason);
  }

  isBanned(peer: PeerId | string): boolean {
    const id = peer.toString();
    const until = this.bans.get(id);
    if (until === undefined) return false;
    if (this.clock() >= until) {
      this.bans.delete(id);
      return false;
    }
    return true;
  }

  score(peer: PeerId | string): number {
    return this.scores.get(peer.toString()) ?? 0;
  }

  get bannedCount(): number {
    return [...this.bans.keys()].filter((id) => this.isBanned(id)).length;
  }

  /** The libp2p connection gater: refuse banned peers inbound and outbound. */
  gater() {
    const denied = (peer: PeerId) => this.isBanned(peer);
    return {
      denyDialPeer: async (peer: PeerId) => denied(peer),
      denyOutboundEncryptedConnection: async (peer: PeerId) => denied(peer),
      denyInboundEncryptedConnection: async (peer: PeerId) => denied(peer),
    };
  }
}
