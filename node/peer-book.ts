import { addressGroup } from './address-groups.ts';
import type { Env } from './env.ts';
import type { PeerManager } from './peers.ts';
import type { Transport } from './transport.ts';
import type { KnownAddress } from './peer-file.ts';
import { undialable } from './undialable.ts';

/** How a peer came to be known. Bootstrap and user-given peers are kept for good; the others may be forgotten. */
export type PeerSource = 'bootstrap' | 'user' | 'discovered' | 'connected';

/** Its times are the env's monotonic ones: a backoff measured on the wall clock set back an hour would hold every dial for an hour. */
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
  /** When a connection to it last came up: the peers worth keeping across a restart. */
  lastConnectedAt?: number;
  /**
   * A dial of ours reached it: it listens where it says. One that only ever dialled us names its
   * own addresses, and fresh identities of one host could otherwise fill peers.json ahead of them.
   */
  reached?: boolean;
  /** The group it counts in against MAX_KNOWN_PER_SUBNET, while it is forgettable. */
  group?: string;
}

const REDIAL_MIN_MS = 1_000;
const REDIAL_MAX_MS = 60_000;
/**
 * A connection that lasted this long earns its peer a fresh backoff when it ends. One that ended
 * sooner (a peer that bans us, or is full, and hangs up after the handshake) does not, or such a
 * peer would be redialled every second, forever.
 */
const STABLE_CONNECTION_MS = 30_000;
/**
 * Discovered peers are dialled while the node has fewer connections it dialled than this. Inbound
 * ones do not count: a few cheap inbound connections would otherwise stop all dialling, and leave
 * the node with the peers an attacker chose (an eclipse).
 */
const WANTED_PEERS = 8;
/**
 * Connections the node chose (dials in flight included) to one subnet (/24, /48), beyond which a
 * discovered peer there is not dialled, as Bitcoin Core makes one outbound connection per network
 * group: one host announcing many identities (mDNS, the DHT) took all 8 of them in the
 * simulator's eclipser runs. Loopback is exempt (a devnet on one machine), and bootstrap and
 * user-given peers are dialled whatever it says.
 */
const MAX_OUTBOUND_PER_SUBNET = 2;
/** A discovered peer that failed this many dials in a row is forgotten (it moved, or left). */
const MAX_DISCOVERED_FAILURES = 5;
const MAX_KNOWN = 1_000;
/**
 * Discovered or once-connected peers kept from one subnet (/24, /48; all loopback ones together,
 * and all without an IP): without it, one announcer of a thousand identities on one address
 * pushed every honest peer out of the book.
 */
const MAX_KNOWN_PER_SUBNET = 64;
/** Addresses kept for one peer: anyone may announce more for a known id, and each is dialled. */
const MAX_ADDRS_PER_PEER = 8;

/** Why restore passes over a saved peer, beside undialable's reasons. */
const ITSELF = "this node's own peer id";
const ANOTHER_PEER = "an address ending in another peer's id";

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
  /** Forgettable entries by the group they were admitted in (MAX_KNOWN_PER_SUBNET). */
  private readonly perGroup = new Map<string, number>();
  /** Peers being dialled now, with their subnets: not dialled twice at once, and counted against WANTED_PEERS and MAX_OUTBOUND_PER_SUBNET. */
  private readonly dialling = new Map<string, string>();
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

  /** Of the known peers, those banned now: not dialled, so no answer is awaited from them. */
  get bannedCount(): number {
    let banned = 0;
    for (const id of this.known.keys()) if (this.peers.isBanned(id)) banned++;
    return banned;
  }

  /** Remembers a full address (with its /p2p/ id). Returns the peer id, or undefined if it has none. */
  remember(addr: string, source: PeerSource): string | undefined {
    const id = peerIdOf(addr);
    if (!id || id === this.transport.peerId) return id;
    const k = this.known.get(id);
    if (k) {
      if (source === 'bootstrap' || source === 'user') {
        k.source = source;
        this.uncount(k); // kept for good now: no longer one of its subnet's share
        if (!k.addrs.includes(addr)) k.addrs.unshift(addr); // the user's word first, however many others
      } else if (!k.addrs.includes(addr) && k.addrs.length < MAX_ADDRS_PER_PEER) {
        k.addrs.push(addr);
      }
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
      for (const a of addrs) if (!k.addrs.includes(a) && k.addrs.length < MAX_ADDRS_PER_PEER) k.addrs.push(a);
      return false;
    }
    return this.add(peer, { addrs: addrs.slice(0, MAX_ADDRS_PER_PEER), source: 'discovered', delayMs: REDIAL_MIN_MS, nextAt: 0, failures: 0, reported: false });
  }

  /** A connection is up: its listen addresses are where to find it again. */
  connected(peer: string, listenAddrs: readonly string[]): void {
    const now = this.env.monotonic();
    const reached = this.transport.connectionInfo(peer)?.direction === 'outbound';
    const k = this.known.get(peer);
    if (k) {
      if (listenAddrs.length > 0) k.addrs = listenAddrs.slice(0, MAX_ADDRS_PER_PEER);
      k.failures = 0;
      k.reported = false;
      k.connectedAt = now;
      k.lastConnectedAt = now;
      if (reached) k.reached = true;
    } else if (listenAddrs.length > 0) {
      this.add(peer, { addrs: listenAddrs.slice(0, MAX_ADDRS_PER_PEER), source: 'connected', delayMs: REDIAL_MIN_MS, nextAt: 0, failures: 0, reported: false, connectedAt: now, lastConnectedAt: now, reached });
    }
  }

  /**
   * The peers it was connected to, with where they listened, for peers.json: those a dial of ours
   * reached first (a restart dials the file in order), then those that only dialled us, each the
   * most recent first.
   */
  worthKeeping(limit: number): KnownAddress[] {
    return [...this.known]
      .filter(([id, k]) => k.lastConnectedAt !== undefined && !this.peers.isBanned(id))
      .sort(([, a], [, b]) => Number(b.reached === true) - Number(a.reached === true) || b.lastConnectedAt! - a.lastConnectedAt!)
      .slice(0, limit)
      .map(([peer, k]) => ({ peer, addrs: [...k.addrs] }));
  }

  /**
   * Peers from before a restart, known again as once connected: dialled like discovered ones
   * (while the node wants peers, forgotten after failing), within the same per-subnet share.
   * What no dial could ever reach is passed over (a hand-edited or damaged file): this node's own
   * id, an address naming another peer's id, and what `undialable` says of an address; a peer left
   * with no address is not taken. Returns how many were taken, how many had nothing left to dial,
   * and what was passed over, by why.
   */
  restore(saved: readonly KnownAddress[]): { taken: number; unreachable: number; passedOver: Map<string, number> } {
    let taken = 0;
    let unreachable = 0;
    const passedOver = new Map<string, number>();
    const passOver = (why: string) => passedOver.set(why, (passedOver.get(why) ?? 0) + 1);
    for (const { peer, addrs } of saved) {
      if (peer === this.transport.peerId) {
        passOver(ITSELF);
        unreachable++;
        continue;
      }
      if (this.known.has(peer)) continue;
      const usable = addrs.filter((a) => {
        const id = peerIdOf(a);
        const why = undialable(a) ?? (id !== undefined && id !== peer ? ANOTHER_PEER : undefined);
        if (why !== undefined) passOver(why);
        return why === undefined;
      }).slice(0, MAX_ADDRS_PER_PEER);
      if (usable.length === 0) {
        unreachable++;
        continue;
      }
      // Kept in the next save too, behind every peer connected since: two restarts in a row without
      // a connection must not empty the file.
      const k = { addrs: usable, source: 'connected' as const, delayMs: REDIAL_MIN_MS, nextAt: 0, failures: 0, reported: false, lastConnectedAt: 0 };
      if (this.add(peer, k)) taken++;
    }
    return { taken, unreachable, passedOver };
  }

  /** The connection ended: if it had lasted, the peer is redialled at once and its backoff starts over. */
  disconnected(peer: string): void {
    const k = this.known.get(peer);
    if (k?.connectedAt === undefined) return;
    if (this.env.monotonic() - k.connectedAt >= STABLE_CONNECTION_MS) startOver(k);
    k.connectedAt = undefined;
  }

  /** Adds a peer not known yet; false if its subnet already has its share, or the book is all bootstrap. */
  private add(peer: string, k: KnownPeer): boolean {
    const forgettable = (s: PeerSource) => s === 'discovered' || s === 'connected';
    const group = forgettable(k.source) ? subnetOf(k.addrs) : undefined;
    if (group !== undefined && (this.perGroup.get(group) ?? 0) >= MAX_KNOWN_PER_SUBNET) return false;
    if (this.known.size >= MAX_KNOWN) {
      // Forget the oldest peer that is not a bootstrap or user-given one.
      for (const [id, old] of this.known) {
        if (forgettable(old.source)) {
          this.forget(id);
          break;
        }
      }
      if (this.known.size >= MAX_KNOWN) return false;
    }
    this.known.set(peer, k);
    if (group !== undefined) {
      k.group = group;
      this.perGroup.set(group, (this.perGroup.get(group) ?? 0) + 1);
    }
    return true;
  }

  private forget(peer: string): void {
    const k = this.known.get(peer);
    if (!k) return;
    this.uncount(k);
    this.known.delete(peer);
  }

  private uncount(k: KnownPeer): void {
    if (k.group === undefined) return;
    const left = (this.perGroup.get(k.group) ?? 1) - 1;
    if (left > 0) this.perGroup.set(k.group, left);
    else this.perGroup.delete(k.group);
    k.group = undefined;
  }

  /** Whether a dial of `peer` now would fall inside its backoff and is not this book's: the transport's gate refuses it. */
  holdsOff(peer: string): boolean {
    const k = this.known.get(peer);
    return k !== undefined && !this.dialling.has(peer) && k.nextAt > this.env.monotonic();
  }

  /** Asked for by the user: dialled now, whatever its backoff, which starts over. */
  retryNow(peer: string): void {
    const k = this.known.get(peer);
    if (k) startOver(k);
  }

  /** Dials known peers we are not connected to, each when its backoff allows. */
  redial(): void {
    const now = this.env.monotonic();
    const connected = new Set(this.transport.peers());
    let dialled = 0;
    const outbound = new Map<string, number>();
    const count = (subnet: string) => outbound.set(subnet, (outbound.get(subnet) ?? 0) + 1);
    for (const peer of connected) {
      const info = this.transport.connectionInfo(peer);
      if (info?.direction === 'inbound') continue;
      dialled++;
      if (info) count(subnetOf([info.remoteAddr]));
    }
    for (const subnet of this.dialling.values()) count(subnet);
    for (const [id, k] of this.known) {
      if (k.nextAt > now || connected.has(id) || this.dialling.has(id) || this.peers.isBanned(id)) continue;
      const keep = k.source === 'bootstrap' || k.source === 'user';
      // However many peers discovery announces at once, only enough to reach WANTED_PEERS are dialled.
      if (!keep && dialled + this.dialling.size >= WANTED_PEERS) continue;
      const subnet = subnetOf(k.addrs);
      if (!keep && subnet !== 'loopback' && (outbound.get(subnet) ?? 0) >= MAX_OUTBOUND_PER_SUBNET) continue;
      k.nextAt = now + k.delayMs;
      k.delayMs = Math.min(REDIAL_MAX_MS, k.delayMs * 2);
      this.dialling.set(id, subnet);
      count(subnet);
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
          if (!keep && k.failures >= MAX_DISCOVERED_FAILURES) this.forget(id);
        },
      );
    }
  }
}

/**
 * The group an entry counts in: the subnet of the first of `addrs` with a routable IP; else one
 * group for all loopback-only entries and one for those with no IP at all. Every group has its
 * cap: a peer's own list of addresses must not put it outside all of them (127.0.0.1 listed
 * first, or DNS names only, once let any number in).
 */
function subnetOf(addrs: readonly string[]): string {
  let loopback = false;
  for (const a of addrs) {
    const g = addressGroup(a);
    if (g?.loopback) loopback = true;
    else if (g) return g.subnet;
  }
  return loopback ? 'loopback' : 'no IP';
}
