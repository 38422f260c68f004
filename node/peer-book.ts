import type { Env } from './env.ts';
import type { PeerManager } from './peers.ts';
import type { Transport } from './transport.ts';

/** How a peer came to be known. Bootstrap and user-given peers are kept for good; the others may be forgotten. */
export type PeerSource = 'bootstrap' | 'user' | 'discovered' | 'connected';

interface KnownPeer {
  addrs: string[];
  source: PeerSource;
  delayMs: number;
  nextAt: number;
  failures: number;
  /** Whether a failed dial of this peer has been reported (once per peer, not every retry). */
  reported: boolean;
  /** When the current connection came up, if there is one. */
  connectedAt?: number;
}

const REDIAL_MIN_MS = 1_000;
const REDIAL_MAX_MS = 60_000;
/**
 * A connection that lasted this long earns its peer a fresh backoff when it ends. One that ended
 * sooner (a peer that bans us, or is full, and hangs up after the handshake) does not, or such a
 * peer would be redialled every second, forever.
 */
const STABLE_CONNECTION_MS = 30_000;
/** Discovered peers are dialled while the node has fewer connections than this. */
const WANTED_PEERS = 8;
/** A discovered peer that failed this many dials in a row is forgotten (it moved, or left). */
const MAX_DISCOVERED_FAILURES = 5;
const MAX_KNOWN = 1_000;

/** A fresh backoff: dialled at the next round, then 1 s later, doubling. */
function startOver(k: KnownPeer): void {
  k.nextAt = 0;
  k.delayMs = REDIAL_MIN_MS;
}

/** The peer id at the end of an address ("…/p2p/<id>"), as libp2p and the simulator write them. */
export function peerIdOf(addr: string): string | undefined {
  return /\/p2p\/([^/]+)$/.exec(addr)?.[1];
}

/**
 * The peers a node knows how to reach, and the dialling that keeps it connected: bootstrap
 * peers always (each with its own exponential backoff), peers heard of by discovery (mDNS, the
 * DHT, the simulator's) while the node has fewer than WANTED_PEERS connections, and any peer it
 * was once connected to, so a restart or a partition heals without help.
 */
export class PeerBook {
  private readonly env: Env;
  private readonly transport: Transport;
  private readonly peers: PeerManager;
  private readonly known = new Map<string, KnownPeer>();
  /** Peers being dialled now: not dialled twice at once, and counted against WANTED_PEERS. */
  private readonly dialling = new Set<string>();
  /** Told once per peer when dialling it fails, with why. */
  onDialFailed: ((peer: string, source: PeerSource, addrs: readonly string[], err: Error) => void) | undefined;

  constructor(env: Env, transport: Transport, peers: PeerManager) {
    this.env = env;
    this.transport = transport;
    this.peers = peers;
  }

  get size(): number {
    return this.known.size;
  }

  /** Remembers a full address (with its /p2p/ id). Returns the peer id, or undefined if it has none. */
  remember(addr: string, source: PeerSource): string | undefined {
    const id = peerIdOf(addr);
    if (!id || id === this.transport.peerId) return id;
    const k = this.known.get(id);
    if (k) {
      if (!k.addrs.includes(addr)) k.addrs.push(addr);
      if (source === 'bootstrap' || source === 'user') k.source = source;
    } else {
      this.add(id, { addrs: [addr], source, delayMs: REDIAL_MIN_MS, nextAt: 0, failures: 0, reported: false });
    }
    return id;
  }

  /** A peer heard of by discovery. Returns true if it was new. */
  discovered(peer: string, addrs: readonly string[]): boolean {
    if (peer === this.transport.peerId || addrs.length === 0) return false;
    const k = this.known.get(peer);
    if (k) {
      for (const a of addrs) if (!k.addrs.includes(a)) k.addrs.push(a);
      return false;
    }
    this.add(peer, { addrs: [...addrs], source: 'discovered', delayMs: REDIAL_MIN_MS, nextAt: 0, failures: 0, reported: false });
    return true;
  }

  /** A connection is up: its listen addresses are where to find it again. */
  connected(peer: string, listenAddrs: readonly string[]): void {
    const now = this.env.now();
    const k = this.known.get(peer);
    if (k) {
      if (listenAddrs.length > 0) k.addrs = [...listenAddrs];
      k.failures = 0;
      k.reported = false;
      k.connectedAt = now;
    } else if (listenAddrs.length > 0) {
      this.add(peer, { addrs: [...listenAddrs], source: 'connected', delayMs: REDIAL_MIN_MS, nextAt: 0, failures: 0, reported: false, connectedAt: now });
    }
  }

  /** The connection ended: if it had lasted, the peer is redialled at once and its backoff starts over. */
  disconnected(peer: string): void {
    const k = this.known.get(peer);
    if (k?.connectedAt === undefined) return;
    if (this.env.now() - k.connectedAt >= STABLE_CONNECTION_MS) startOver(k);
    k.connectedAt = undefined;
  }

  private add(peer: string, k: KnownPeer): void {
    if (this.known.size >= MAX_KNOWN) {
      // Forget the oldest peer that is not a bootstrap or user-given one.
      for (const [id, old] of this.known) {
        if (old.source === 'discovered' || old.source === 'connected') {
          this.known.delete(id);
          break;
        }
      }
      if (this.known.size >= MAX_KNOWN) return;
    }
    this.known.set(peer, k);
  }

  /** Whether a dial of `peer` now would fall inside its backoff and is not this book's: the transport's gate refuses it. */
  holdsOff(peer: string): boolean {
    const k = this.known.get(peer);
    return k !== undefined && !this.dialling.has(peer) && k.nextAt > this.env.now();
  }

  /** Asked for by the user: dialled now, whatever its backoff, which starts over. */
  retryNow(peer: string): void {
    const k = this.known.get(peer);
    if (k) startOver(k);
  }

  /** Dials known peers we are not connected to, each when its backoff allows. */
  redial(): void {
    const now = this.env.now();
    const connected = new Set(this.transport.peers());
    for (const [id, k] of this.known) {
      if (k.nextAt > now || connected.has(id) || this.dialling.has(id) || this.peers.isBanned(id)) continue;
      const keep = k.source === 'bootstrap' || k.source === 'user';
      // However many peers discovery announces at once, only enough to reach WANTED_PEERS are dialled.
      if (!keep && connected.size + this.dialling.size >= WANTED_PEERS) continue;
      k.nextAt = now + k.delayMs;
      k.delayMs = Math.min(REDIAL_MAX_MS, k.delayMs * 2);
      this.dialling.add(id);
      this.transport.dial(k.addrs).finally(() => this.dialling.delete(id)).then(
        () => {
          k.failures = 0;
        },
        (err: Error) => {
          k.failures++;
          if (!k.reported) {
            k.reported = true;
            this.onDialFailed?.(id, k.source, k.addrs, err);
          }
          if (!keep && k.failures >= MAX_DISCOVERED_FAILURES) this.known.delete(id);
        },
      );
    }
  }
}
