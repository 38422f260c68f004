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
import type { Scheduler } from './scheduler.ts';

/** How long a gossip message id is remembered, as gossipsub's seen cache does (ms). */
const SEEN_TTL_MS = 120_000;

/** What a node's transport needs of the simulated network (sim/network.ts, SimNetwork). */
export interface SimWire {
  readonly scheduler: Scheduler;
  /** Where node `id` listens, and where a connection from it comes from. */
  address(id: string): string;
  remoteAddress(id: string): string;
  link(from: string, to: string): { readonly latencyMs: number };
  /** Sends `bytes` from one node to another; `deliver` runs at the receiver if it arrives. */
  send(from: string, to: string, bytes: number, deliver: (t: SimTransport) => void): void;
  connect(from: SimTransport, to: string): Promise<string>;
  disconnect(a: string, b: string): void;
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
  private readonly net: SimWire;
  private readonly connections = new Map<string, ConnectionInfo>();
  private readonly handlers = new Map<string, { respond: Responder; options: ServeOptions; inFlight: Map<string, number> }>();
  private readonly topics = new Map<string, GossipValidator>();
  private readonly seen = new Map<string, number>();
  private readonly pending = new Map<number, PendingRequest>();
  /** A transport whose handlers answer what this one has none for (an identity speaking for a node). */
  private speaksFor: SimTransport | undefined;
  up = true;

  constructor(net: SimWire, id: string, gate: ConnectionGate) {
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

  /** Answers every protocol it does not serve itself as `other` does. */
  answerAs(other: SimTransport): void {
    this.speaksFor = other;
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
    const h = this.handlers.get(protocol) ?? (this.speaksFor?.up ? this.speaksFor.handlers.get(protocol) : undefined);
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

  async publish(topic: string, data: Uint8Array): Promise<number> {
    const id = messageId(topic, data);
    if (this.seen.has(id)) return 0;
    this.remember(id);
    return this.forward(topic, data, id, undefined);
  }

  /**
   * Sends a gossip message to one peer only, seen here or not: an adversary tells different peers
   * different things (an equivocator), or the same thing again long after (a replayer).
   */
  sendTo(peer: string, topic: string, data: Uint8Array): void {
    if (!this.up || !this.connections.has(peer)) return;
    const id = messageId(topic, data);
    this.net.send(this.peerId, peer, data.length + 64, (remote) => remote.gossip(this.peerId, topic, data, id));
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
