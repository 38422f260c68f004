import { EventEmitter } from 'node:events';
import { sha256 } from '../ledger/hash.ts';
import { toHex } from '../ledger/bytes.ts';
import {
  MAX_STREAMS_PER_PEER,
  TransportError,
  busyError,
  decodeBusy,
  encodeBusy,
  isBusy,
  type ConnectionGate,
  type ConnectionInfo,
  type GossipValidator,
  type RequestLimits,
  type Responder,
  type ServeOptions,
  type Transport,
  type TransportEvents,
} from '../node/transport.ts';
import type { Random } from './random.ts';
import type { Scheduler } from './scheduler.ts';

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

export const PERFECT_LINK: LinkProfile = { latencyMs: 5, jitterMs: 0, drop: 0, duplicate: 0 };

/**
 * Bytes a node's uplink sends per millisecond (10 MB/s) unless told otherwise. Everything a node
 * sends, to whichever peer, leaves through its one uplink, first in first out: a large block takes
 * longer than a status, and what one peer downloads delays what the others get.
 */
export const UPLINK_BYTES_PER_MS = 10_000;
/** The port every simulated node listens on (its address is its IP and this). */
const SIM_PORT = 7370;
/** How long a gossip message id is remembered, as gossipsub's seen cache does (ms). */
const SEEN_TTL_MS = 120_000;

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
export class SimNetwork {
  readonly scheduler: Scheduler;
  private readonly rng: Random;
  private readonly transports = new Map<string, SimTransport>();
  private readonly links = new Map<string, LinkProfile>();
  /** Each node's IP (several identities may share one), its uplink speed, and when its uplink is next free. */
  private readonly ips = new Map<string, string>();
  private readonly uplinks = new Map<string, { bytesPerMs: number; freeAt: number }>();
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

  /** Gives node `id` an IP (default: one of its own) and an uplink speed (default UPLINK_BYTES_PER_MS). */
  place(id: string, o: { ip?: string; uplinkBytesPerMs?: number }): void {
    if (o.ip) this.ips.set(id, o.ip);
    if (o.uplinkBytesPerMs) this.uplinks.set(id, { bytesPerMs: o.uplinkBytesPerMs, freeAt: 0 });
  }

  ipOf(id: string): string {
    let ip = this.ips.get(id);
    if (!ip) {
      // A node of its own: its own /24, derived from its id, so that nothing depends on start order.
      const h = [...id].reduce((x, c) => (x * 31 + c.charCodeAt(0)) >>> 0, 7);
      ip = `10.${(h >>> 16) & 0xff}.${(h >>> 8) & 0xff}.${1 + (h & 0x7f)}`;
      this.ips.set(id, ip);
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
    return (this.groups.get(a) ?? -1) === (this.groups.get(b) ?? -1);
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

interface PendingRequest {
  readonly resolve: (frames: Uint8Array[]) => void;
  readonly reject: (err: Error) => void;
  readonly limits: RequestLimits;
  readonly peer: string;
  readonly maxFrames: number;
  timer: unknown;
}

let nextRequestId = 1;

/**
 * One node's side of the simulated network: the Transport the node's gossip, sync and relay use,
 * with libp2p's semantics where they matter — a gossip message is validated before it is
 * forwarded, duplicates are dropped by a seen cache, requests have caps and deadlines.
 */
export class SimTransport extends EventEmitter<TransportEvents> implements Transport {
  readonly peerId: string;
  readonly gate: ConnectionGate;
  private readonly net: SimNetwork;
  private readonly connections = new Map<string, ConnectionInfo>();
  private readonly handlers = new Map<string, { respond: Responder; options: ServeOptions; inFlight: Map<string, number> }>();
  private readonly topics = new Map<string, GossipValidator>();
  private readonly seen = new Map<string, number>();
  private readonly pending = new Map<number, PendingRequest>();
  up = true;

  constructor(net: SimNetwork, id: string, gate: ConnectionGate) {
    super();
    this.net = net;
    this.peerId = id;
    this.gate = gate;
  }

  listenAddresses(): string[] {
    return [this.net.address(this.peerId)];
  }

  peers(): string[] {
    return [...this.connections.keys()];
  }

  isConnected(peer: string): boolean {
    return this.connections.has(peer);
  }

  connectionInfo(peer: string): ConnectionInfo | undefined {
    return this.connections.get(peer);
  }

  async dial(addrs: readonly string[]): Promise<string> {
    const id = /\/p2p\/([^/]+)$/.exec(addrs[0] ?? '')?.[1];
    if (!id) throw new TransportError('TRANSPORT_CLOSED', `not a simulated address: ${addrs[0]}`);
    if (this.connections.has(id)) return id;
    return this.net.connect(this, id);
  }

  /** The network opened a connection: tell the node, and soon that the peer is ready. */
  open(peer: string, direction: 'inbound' | 'outbound'): void {
    // An outbound connection goes to the address dialled; an inbound one comes from a port of the peer's.
    this.connections.set(peer, { direction, remoteAddr: direction === 'outbound' ? this.net.address(peer) : this.net.remoteAddress(peer) });
    this.emit('peer:connect', peer, this.connections.get(peer)!);
    this.net.scheduler.after(this.net.link(peer, this.peerId).latencyMs, () => {
      if (this.up && this.connections.has(peer)) this.emit('peer:ready', peer, [this.net.address(peer)]);
    });
  }

  /** The connection to `peer` is gone (hung up, cut, or the peer crashed). */
  closed(peer: string): void {
    if (!this.connections.delete(peer)) return;
    for (const [id, p] of this.pending) {
      if (p.peer !== peer) continue;
      this.pending.delete(id);
      p.reject(new TransportError('TRANSPORT_CLOSED', `connection to ${peer} closed`));
    }
    if (this.up) this.emit('peer:disconnect', peer);
  }

  /** A partition cut the connection to `peer`. */
  cut(peer: string): void {
    this.net.disconnect(this.peerId, peer);
  }

  async hangUp(peer: string): Promise<void> {
    this.net.disconnect(this.peerId, peer);
  }

  async handle(protocol: string, respond: Responder, options: ServeOptions): Promise<void> {
    this.handlers.set(protocol, { respond, options, inFlight: new Map() });
  }

  /** Replaces what this node answers on `protocol` (adversaries lie with it). */
  override(protocol: string, respond: Responder): void {
    const h = this.handlers.get(protocol);
    if (h) h.respond = respond;
    else this.handlers.set(protocol, { respond, options: { timeoutMs: 5000, maxBytes: 1 << 20, onBadRequest: () => {} }, inFlight: new Map() });
  }

  async request(peer: string, protocol: string, body: Uint8Array, limits: RequestLimits): Promise<Uint8Array> {
    const frames = await this.ask(peer, protocol, body, 1, limits);
    return frames[0]!;
  }

  requestMany(peer: string, protocol: string, body: Uint8Array, maxFrames: number, limits: RequestLimits): Promise<Uint8Array[]> {
    return this.ask(peer, protocol, body, maxFrames, limits);
  }

  private ask(peer: string, protocol: string, body: Uint8Array, maxFrames: number, limits: RequestLimits): Promise<Uint8Array[]> {
    if (!this.up) return new Promise(() => {});
    if (!this.connections.has(peer)) return Promise.reject(new TransportError('TRANSPORT_CLOSED', `not connected to ${peer}`));
    const id = nextRequestId++;
    return new Promise<Uint8Array[]>((resolve, reject) => {
      const p: PendingRequest = { resolve, reject, limits, peer, maxFrames, timer: undefined };
      this.pending.set(id, p);
      p.timer = this.net.scheduler.after(limits.timeoutMs, () => {
        if (this.pending.delete(id)) reject(new TransportError('TRANSPORT_TIMEOUT', `${protocol} to ${peer} timed out`));
      });
      this.net.send(this.peerId, peer, body.length + 64, (remote) => remote.serve(this.peerId, protocol, body, id));
    });
  }

  /** A request arrived from `from`. */
  private serve(from: string, protocol: string, body: Uint8Array, id: number): void {
    if (!this.connections.has(from)) return;
    const h = this.handlers.get(protocol);
    const reply = (frames: Uint8Array[] | Error) => {
      const size = frames instanceof Error ? 64 : frames.reduce((s, f) => s + f.length + 4, 64);
      this.net.send(this.peerId, from, size, (asker) => asker.answered(id, protocol, frames));
    };
    if (!h) return reply(new TransportError('TRANSPORT_UNSUPPORTED', `${this.peerId} does not speak ${protocol}`));
    if (body.length > h.options.maxBytes) {
      h.options.onBadRequest(from, new TransportError('TRANSPORT_BAD_FRAME', `a request of ${body.length} bytes, limit ${h.options.maxBytes}`));
      return reply(new TransportError('TRANSPORT_CLOSED', 'stream reset'));
    }
    const inFlight = h.inFlight.get(from) ?? 0;
    if (inFlight >= (h.options.maxStreamsPerPeer ?? MAX_STREAMS_PER_PEER)) return reply(new TransportError('TRANSPORT_CLOSED', 'too many streams'));
    h.inFlight.set(from, inFlight + 1);
    h.respond(body, from).then(
      (answer) => reply(isBusy(answer) ? [encodeBusy(answer.retryAfterMs)] : Array.isArray(answer) ? answer : [answer]),
      (err: unknown) => {
        h.options.onBadRequest(from, err);
        reply(new TransportError('TRANSPORT_CLOSED', 'stream reset'));
      },
    ).finally(() => {
      const n = (h.inFlight.get(from) ?? 1) - 1;
      if (n <= 0) h.inFlight.delete(from);
      else h.inFlight.set(from, n);
    });
  }

  /** The answer to request `id` arrived. A duplicate finds nothing pending and is dropped. */
  private answered(id: number, protocol: string, frames: Uint8Array[] | Error): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    this.net.scheduler.cancel(p.timer as Parameters<Scheduler['cancel']>[0]);
    if (frames instanceof Error) return p.reject(frames);
    const retryAfter = frames.length === 1 ? decodeBusy(frames[0]!) : undefined;
    if (retryAfter !== undefined) return p.reject(busyError(p.peer, protocol, retryAfter));
    this.emit('peer:bytes', p.peer, frames.reduce((sum, f) => sum + f.length, 0));
    if (frames.length > p.maxFrames) return p.reject(new TransportError('TRANSPORT_BAD_FRAME', `more than ${p.maxFrames} frames in a response`));
    if (frames.some((f) => f.length > p.limits.maxBytes)) return p.reject(new TransportError('TRANSPORT_BAD_FRAME', 'a response frame over its limit'));
    p.resolve(frames.map((f) => f.slice()));
  }

  subscribe(topic: string, validate: GossipValidator): void {
    this.topics.set(topic, validate);
  }

  unsubscribe(topic: string): void {
    this.topics.delete(topic);
  }

  async publish(topic: string, data: Uint8Array): Promise<number> {
    const id = messageId(topic, data);
    if (this.seen.has(id)) return 0;
    this.remember(id);
    return this.forward(topic, data, id, undefined);
  }

  /**
   * Sends a message to every peer but `except`. Its id (the content hash gossipsub derives from
   * the data) travels with it, so that the receivers need not hash it again: same ids, less work.
   */
  private forward(topic: string, data: Uint8Array, id: string, except: string | undefined): number {
    let sent = 0;
    for (const peer of this.connections.keys()) {
      if (peer === except) continue;
      sent++;
      this.net.send(this.peerId, peer, data.length + 64, (remote) => remote.gossip(this.peerId, topic, data, id));
    }
    return sent;
  }

  /** A gossip message from `from`: validated once (duplicates are dropped), forwarded if accepted. */
  private gossip(from: string, topic: string, data: Uint8Array, id: string): void {
    if (!this.connections.has(from)) return;
    const validate = this.topics.get(topic);
    if (!validate) return;
    if (this.seen.has(id)) return;
    this.remember(id);
    this.emit('peer:bytes', from, data.length);
    void validate(from, data.slice()).then((verdict) => {
      if (verdict === 'accept' && this.up) this.forward(topic, data, id, from);
    });
  }

  private remember(id: string): void {
    const now = this.net.scheduler.now;
    this.seen.set(id, now + SEEN_TTL_MS);
    if (this.seen.size % 256 === 0) {
      for (const [k, until] of this.seen) {
        if (until > now) break;
        this.seen.delete(k);
      }
    }
  }

  /** Tells the node about a peer it could dial (the simulator's stand-in for mDNS and the DHT). */
  discover(peer: string): void {
    if (this.up && peer !== this.peerId && !this.connections.has(peer)) this.emit('peer:discovered', peer, [this.net.address(peer)]);
  }

  /** The node crashed or stopped: every connection drops, nothing more is delivered here. */
  goDown(): void {
    if (!this.up) return;
    this.up = false;
    for (const peer of [...this.connections.keys()]) this.net.disconnect(this.peerId, peer);
    for (const p of this.pending.values()) this.net.scheduler.cancel(p.timer as Parameters<Scheduler['cancel']>[0]);
    this.pending.clear();
    this.removeAllListeners();
  }

  async stop(): Promise<void> {
    this.goDown();
  }
}

function messageId(topic: string, data: Uint8Array): string {
  return `${topic} ${toHex(sha256(data))}`;
}
