import { TransportError, type ConnectionGate } from '../node/transport.ts';
import { sha256 } from '../ledger/hash.ts';
import type { Random } from './random.ts';
import type { Scheduler } from './scheduler.ts';
import { SimTransport, type SimWire } from './transport.ts';

export { SimTransport };

/** How one direction of a link behaves. */
export interface LinkProfile {
  /** One-way delay, ms. */
  readonly latencyMs: number;
  /** Added uniformly at random per message, ms: large values reorder messages. */
  readonly jitterMs: number;
  /** Probability a message is lost. */
  readonly drop: number;
  /** Probability a message is delivered twice. */
  readonly duplicate: number;
}

function subnet(ip: string): string {
  return ip.split('.').slice(0, 3).join('.');
}

export const PERFECT_LINK: LinkProfile = { latencyMs: 5, jitterMs: 0, drop: 0, duplicate: 0 };

/**
 * Bytes a node's uplink sends per millisecond (10 MB/s) unless told otherwise. Everything a node
 * sends, to whichever peer, leaves through its one uplink, first in first out: a large block takes
 * longer than a status, and what one peer downloads delays what the others get.
 */
export const UPLINK_BYTES_PER_MS = 10_000;
/** The port every simulated node listens on (its address is its IP and this). */
const SIM_PORT = 7370;

export interface NetworkStats {
  messages: number;
  dropped: number;
  duplicated: number;
  bytes: number;
}

/**
 * Every node's network in one process: connections, request-response and gossip between
 * SimTransports, each message delayed, lost, duplicated or reordered as its link's profile and
 * the run's seed say, and cut by partitions. A node that is down receives nothing.
 */
export class SimNetwork implements SimWire {
  readonly scheduler: Scheduler;
  private readonly rng: Random;
  private readonly transports = new Map<string, SimTransport>();
  private readonly links = new Map<string, LinkProfile>();
  /** Each node's IP (several identities may share one), its uplink speed, and when its uplink is next free. */
  private readonly ips = new Map<string, string>();
  private readonly uplinks = new Map<string, { bytesPerMs: number; freeAt: number }>();
  private freshIps = 0;
  /** The /24s ipOf has given out. */
  private readonly subnets = new Set<string>();
  /** Identities that are on another node's side of any partition. */
  private readonly sides = new Map<string, string>();
  /** Nodes in different groups cannot reach each other; undefined: no partition. */
  private groups: Map<string, number> | undefined;
  defaultLink: LinkProfile = PERFECT_LINK;
  readonly stats: NetworkStats = { messages: 0, dropped: 0, duplicated: 0, bytes: 0 };
  /** Bytes sent from one node to another ("from>to"), for measurements. */
  private readonly linkBytes = new Map<string, number>();

  constructor(scheduler: Scheduler, rng: Random) {
    this.scheduler = scheduler;
    this.rng = rng;
  }

  /** A transport for node `id`; it is up until `down()`. */
  attach(id: string, gate: ConnectionGate): SimTransport {
    const t = new SimTransport(this, id, gate);
    this.transports.set(id, t);
    return t;
  }

  /**
   * Gives node `id` an IP (default: one of its own), an uplink speed (default UPLINK_BYTES_PER_MS),
   * and a node whose side of any partition it is on (an identity an adversary made).
   */
  place(id: string, o: { ip?: string; uplinkBytesPerMs?: number; sideOf?: string }): void {
    if (o.ip) this.ips.set(id, o.ip);
    if (o.sideOf) this.sides.set(id, o.sideOf);
    if (o.uplinkBytesPerMs) this.uplinks.set(id, { bytesPerMs: o.uplinkBytesPerMs, freeAt: 0 });
  }

  /** An IP no node was given, in a /24 of its own, for identities an adversary makes. */
  freshIp(): string {
    const n = this.freshIps++;
    return `10.${240 + ((n >>> 8) & 0xf)}.${n & 0xff}.1`;
  }

  ipOf(id: string): string {
    let ip = this.ips.get(id);
    if (!ip) {
      // A node of its own: its own /24 (below freshIp's), derived from a hash of its id so that
      // nothing depends on start order, unless another node holds that /24 already. A hash whose
      // low bits alone differ (n0 to n9 once all fell in one /24) put every node under one subnet's
      // limits.
      for (let attempt = 0; !ip || this.subnets.has(subnet(ip)); attempt++) {
        const h = sha256(new TextEncoder().encode(`${id}/${attempt}`));
        ip = `10.${h[0]! % 240}.${h[1]}.${1 + (h[2]! % 254)}`;
      }
      this.ips.set(id, ip);
      this.subnets.add(subnet(ip));
    }
    return ip;
  }

  /** Where node `id` listens, as a dialable address with its id. */
  address(id: string): string {
    return `/ip4/${this.ipOf(id)}/tcp/${SIM_PORT}/p2p/${id}`;
  }

  /** The address a connection from `id` comes from: its IP and a port of its own. */
  remoteAddress(id: string): string {
    const h = [...id].reduce((x, c) => (x * 33 + c.charCodeAt(0)) >>> 0, 5);
    return `/ip4/${this.ipOf(id)}/tcp/${40_000 + (h % 20_000)}/p2p/${id}`;
  }

  transport(id: string): SimTransport | undefined {
    const t = this.transports.get(id);
    return t?.up ? t : undefined;
  }

  setLink(a: string, b: string, profile: LinkProfile): void {
    this.links.set(`${a}>${b}`, profile);
    this.links.set(`${b}>${a}`, profile);
  }

  /** The pair's link is the network's default again (whatever that is by then). */
  clearLink(a: string, b: string): void {
    this.links.delete(`${a}>${b}`);
    this.links.delete(`${b}>${a}`);
  }

  link(from: string, to: string): LinkProfile {
    return this.links.get(`${from}>${to}`) ?? this.defaultLink;
  }

  /** Splits the network: each inner list is one side. Connections across sides are cut. */
  partition(sides: readonly (readonly string[])[]): void {
    this.groups = new Map();
    sides.forEach((side, i) => side.forEach((id) => this.groups!.set(id, i)));
    for (const t of this.transports.values()) {
      if (!t.up) continue;
      for (const peer of t.peers()) if (!this.reachable(t.peerId, peer)) t.cut(peer);
    }
  }

  heal(): void {
    this.groups = undefined;
  }

  reachable(a: string, b: string): boolean {
    if (!this.groups) return true;
    const side = (id: string) => this.groups!.get(this.sides.get(id) ?? id) ?? -1;
    return side(a) === side(b);
  }

  /**
   * Sends one message from `from` to `to`: after the link's delay (and the time its bytes take),
   * unless lost; perhaps twice. `deliver` runs only if the receiver is still up and reachable.
   */
  send(from: string, to: string, bytes: number, deliver: (t: SimTransport) => void): void {
    const link = this.link(from, to);
    this.stats.messages++;
    this.stats.bytes += bytes;
    this.linkBytes.set(`${from}>${to}`, (this.linkBytes.get(`${from}>${to}`) ?? 0) + bytes);
    // The bytes leave through the sender's uplink once what it queued before has gone (a message
    // lost on the way still took its turn).
    let uplink = this.uplinks.get(from);
    if (!uplink) this.uplinks.set(from, (uplink = { bytesPerMs: UPLINK_BYTES_PER_MS, freeAt: 0 }));
    uplink.freeAt = Math.max(uplink.freeAt, this.scheduler.now) + bytes / uplink.bytesPerMs;
    const queued = uplink.freeAt - this.scheduler.now;
    if (link.drop > 0 && this.rng.chance(link.drop)) {
      this.stats.dropped++;
      return;
    }
    const copies = link.duplicate > 0 && this.rng.chance(link.duplicate) ? 2 : 1;
    if (copies === 2) this.stats.duplicated++;
    for (let i = 0; i < copies; i++) {
      const delay = queued + link.latencyMs + (link.jitterMs > 0 ? this.rng.next() * link.jitterMs : 0);
      this.scheduler.after(delay, () => {
        const target = this.transport(to);
        if (target && this.reachable(from, to)) deliver(target);
      });
    }
  }

  /** Opens a connection from `from` to `to` (both up, reachable and not refusing each other). */
  connect(from: SimTransport, to: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const fail = (why: string) => reject(new TransportError('TRANSPORT_CLOSED', `cannot reach ${to}: ${why}`));
      const link = this.link(from.peerId, to);
      this.scheduler.after(2 * link.latencyMs, () => {
        if (!from.up) return; // crashed meanwhile: the promise never settles, as with a dead process
        const target = this.transport(to);
        if (!target || !this.reachable(from.peerId, to)) return fail('no answer');
        if (target === from) return fail('that is this node');
        if (from.gate.denied(to) || from.gate.deniedDial?.(this.address(to))) return fail('refused');
        // The answerer sees the address first, and the identity only after the handshake.
        if (target.gate.deniedInbound?.(this.remoteAddress(from.peerId)) || target.gate.denied(from.peerId)) return fail('refused');
        if (!from.isConnected(to)) {
          from.open(to, 'outbound');
          target.open(from.peerId, 'inbound');
        }
        resolve(to);
      });
    });
  }

  /** Closes the connection between two nodes on both sides. */
  disconnect(a: string, b: string): void {
    this.transports.get(a)?.closed(b);
    this.transports.get(b)?.closed(a);
  }

  /** Bytes `from` has sent `to` so far. */
  sent(from: string, to: string): number {
    return this.linkBytes.get(`${from}>${to}`) ?? 0;
  }

  /** Every attached transport that is up, for discovery. */
  upTransports(): SimTransport[] {
    return [...this.transports.values()].filter((t) => t.up);
  }
}
