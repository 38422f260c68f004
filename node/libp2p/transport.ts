import { EventEmitter } from 'node:events';
import { TopicValidatorResult } from '@libp2p/gossipsub';
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr';
import { peerIdFromString } from '@libp2p/peer-id';
import type { MultiaddrConnection, PeerId, PeerInfo } from '@libp2p/interface';
import type { NetworkNames } from '../protocols.ts';
import {
  TransportError,
  type ConnectionGate,
  type ConnectionInfo,
  type GossipValidator,
  type RequestLimits,
  type Responder,
  type ServeOptions,
  type Transport,
  type TransportEvents,
} from '../transport.ts';
import { GOSSIP_BAN_SCORE, createHost, type Host, type HostOptions } from './host.ts';
import { classify, request, requestMany, serve } from './reqresp.ts';

/** How long a connection may go without a gossip stream before we hang up. */
const GOSSIPLESS_GRACE_MS = 10_000;
/** Records libp2p's peer store keeps of peers neither connected nor tagged (see sweepPeerStore). */
const MAX_STORED_PEERS = 1_000;
const PEER_STORE_SWEEP_MS = 60_000;

const VERDICTS = {
  accept: TopicValidatorResult.Accept,
  ignore: TopicValidatorResult.Ignore,
  reject: TopicValidatorResult.Reject,
} as const;

export interface Libp2pTransportOptions extends Omit<HostOptions, 'gater'> {
  readonly names: NetworkNames;
  readonly gate: ConnectionGate;
  /** Records of peers neither connected nor tagged kept after a sweep, and how often one runs (tests make them small). */
  readonly maxStoredPeers?: number;
  readonly peerStoreSweepMs?: number;
}

/**
 * The Transport of a real node: libp2p 3 (node/libp2p/host.ts) with gossipsub, length-prefixed
 * request-response, and the peer policing only libp2p needs — gossipsub scores and connections
 * whose gossip stream died, reported as 'peer:misbehaved'.
 */
export class Libp2pTransport extends EventEmitter<TransportEvents> implements Transport {
  /** The libp2p node itself, for tests and benchmarks that look at its connections and mesh. */
  readonly host: Host;
  private readonly connectedAt = new Map<string, number>();
  private readonly onHeartbeat = () => this.police();
  private readonly maxStoredPeers: number;
  private readonly sweepMs: number;
  private sweptAt = Date.now();
  private sweeping: Promise<void> | undefined;

  private constructor(host: Host, o: Libp2pTransportOptions) {
    super();
    this.host = host;
    this.maxStoredPeers = o.maxStoredPeers ?? MAX_STORED_PEERS;
    this.sweepMs = o.peerStoreSweepMs ?? PEER_STORE_SWEEP_MS;
  }

  static async create(o: Libp2pTransportOptions): Promise<Libp2pTransport> {
    const denied = (peer: PeerId) => o.gate.denied(peer.toString());
    let transport: Libp2pTransport | undefined;
    // Inbound sockets let in, until they close: libp2p says nothing of those still handshaking.
    const inbound = new Set<MultiaddrConnection>();
    const host = await createHost({
      ...o,
      onDiscovered: (peer, via) => transport?.heardOf(peer, via),
      gater: {
        denyDialPeer: async (peer: PeerId) => denied(peer) || (o.gate.deniedDialPeer?.(peer.toString()) ?? false),
        denyDialMultiaddr: async (addr: Multiaddr) => o.gate.deniedDial?.(addr.toString()) ?? false,
        // Before noise and yamux: an address that is banned or has its share, sockets still
        // handshaking included, costs one accept.
        denyInboundConnection: async (conn: MultiaddrConnection) => {
          for (const c of inbound) if (c.status !== 'open') inbound.delete(c);
          const denied = o.gate.deniedInbound?.(conn.remoteAddr.toString(), [...inbound].map((c) => c.remoteAddr.toString())) ?? false;
          if (!denied) {
            inbound.add(conn);
            conn.addEventListener('close', () => inbound.delete(conn), { once: true });
          }
          return denied;
        },
        denyOutboundEncryptedConnection: async (peer: PeerId) => denied(peer),
        denyInboundEncryptedConnection: async (peer: PeerId) => denied(peer),
      },
    });
    transport = new Libp2pTransport(host, o);
    transport.wire();
    return transport;
  }

  private wire(): void {
    const host = this.host;
    host.addEventListener('peer:connect', (e) => {
      const peer = e.detail.toString();
      this.connectedAt.set(peer, Date.now());
      const info = this.connectionInfo(peer);
      if (info) this.emit('peer:connect', peer, info);
    });
    host.addEventListener('peer:disconnect', (e) => {
      this.connectedAt.delete(e.detail.toString());
      this.emit('peer:disconnect', e.detail.toString());
    });
    host.addEventListener('peer:identify', (e) => {
      const { peerId, listenAddrs } = e.detail;
      const id = peerId.toString();
      this.emit('peer:ready', id, listenAddrs.map((a) => a.encapsulate(`/p2p/${id}`).toString()));
    });
    host.addEventListener('peer:discovery', (e: CustomEvent<PeerInfo>) => this.heardOf(e.detail));
    host.services.pubsub.addEventListener('gossipsub:heartbeat', this.onHeartbeat);
  }

  /** A peer announced by discovery (mDNS, the DHT, the bootstrap list): worth telling the node while we are not connected to it. */
  private heardOf({ id, multiaddrs }: PeerInfo, via?: 'mdns' | 'dht'): void {
    if (id.equals(this.host.peerId)) {
      // mDNS drops our own answers by a random name each host draws: one with our id is another
      // host's, holding our key (a copied datadir). The DHT may name us with addresses peers saw.
      if (via === 'mdns' && multiaddrs.length > 0) this.emit('identity:shared', multiaddrs.map((a) => a.toString()));
      return;
    }
    if (multiaddrs.length === 0 || this.host.getConnections(id).length > 0) return;
    const peer = id.toString();
    const addrs = multiaddrs.map((a) => (a.getComponents().some((c) => c.name === 'p2p') ? a : a.encapsulate(`/p2p/${peer}`)).toString());
    this.emit('peer:discovered', peer, addrs);
  }

  get peerId(): string {
    return this.host.peerId.toString();
  }

  listenAddresses(): string[] {
    return this.host.getMultiaddrs().map((a) => a.toString());
  }

  peers(): string[] {
    return this.host.getPeers().map((p) => p.toString());
  }

  connectionInfo(peer: string): ConnectionInfo | undefined {
    const conn = this.host.getConnections(peerIdFromString(peer))[0];
    return conn && { direction: conn.direction, remoteAddr: conn.remoteAddr.toString() };
  }

  async dial(addrs: readonly string[]): Promise<string> {
    try {
      const conn = await this.host.dial(addrs.map((a) => multiaddr(a)));
      return conn.remotePeer.toString();
    } catch (err) {
      throw classify(err);
    }
  }

  async hangUp(peer: string): Promise<void> {
    await this.host.hangUp(peerIdFromString(peer)).catch(() => {});
  }

  handle(protocol: string, respond: Responder, options: ServeOptions): Promise<void> {
    return serve(this.host, protocol, respond, options);
  }

  async request(peer: string, protocol: string, body: Uint8Array, limits: RequestLimits): Promise<Uint8Array> {
    const response = await request(this.host, toPeerId(peer), protocol, body, limits);
    this.emit('peer:bytes', peer, response.byteLength);
    return response;
  }

  async requestMany(peer: string, protocol: string, body: Uint8Array, maxFrames: number, limits: RequestLimits): Promise<Uint8Array[]> {
    const frames = await requestMany(this.host, toPeerId(peer), protocol, body, maxFrames, limits);
    this.emit('peer:bytes', peer, frames.reduce((sum, f) => sum + f.byteLength, 0));
    return frames;
  }

  subscribe(topic: string, validate: GossipValidator): void {
    const pubsub = this.host.services.pubsub;
    pubsub.topicValidators.set(topic, async (peer, msg) => {
      const id = peer.toString();
      this.emit('peer:bytes', id, msg.data.byteLength);
      return VERDICTS[await validate(id, msg.data)];
    });
    pubsub.subscribe(topic);
  }

  async publish(topic: string, data: Uint8Array): Promise<number> {
    const result = await this.host.services.pubsub.publish(topic, data).catch(() => undefined);
    return result?.recipients.length ?? 0;
  }

  async stop(): Promise<void> {
    this.host.services.pubsub.removeEventListener('gossipsub:heartbeat', this.onHeartbeat);
    await this.sweeping;
    await this.host.stop();
  }

  /**
   * libp2p's peer store keeps a record of every peer it connected to or heard of (identify's
   * addresses, protocols and agent, ~1 KB), and lets one go only when that same peer is looked up
   * again six hours on: identities cost nothing, so a node whose peers came and went kept one
   * record per identity for as long as it ran, and one address could feed it a hundred a second.
   * A sweep lets libp2p drop what it counts as expired (reading them all does), then deletes the
   * records of peers neither connected nor tagged (the DHT's routing table, the bootstrap list),
   * the longest unchanged first, down to maxStoredPeers. Nothing here needs them: the peer book
   * keeps the addresses it redials, and a connection's handshake learns the rest again.
   */
  async sweepPeerStore(): Promise<void> {
    const spare: { id: PeerId; updated: number }[] = [];
    for (const peer of await this.host.peerStore.all()) {
      if (peer.tags.size > 0 || this.host.getConnections(peer.id).length > 0) continue;
      // `updated` is the stored record's (when libp2p last wrote it); the Peer type leaves it out.
      spare.push({ id: peer.id, updated: Number((peer as { updated?: number }).updated ?? 0) });
    }
    if (spare.length <= this.maxStoredPeers) return;
    spare.sort((a, b) => a.updated - b.updated);
    for (const { id } of spare.slice(0, spare.length - this.maxStoredPeers)) await this.host.peerStore.delete(id);
  }

  /**
   * gossipsub only ignores low scorers: a peer that keeps sending invalid data is reported here.
   * So is a connection that has carried no gossip stream for a while — what is left of a peer
   * whose stream gossipsub closed (an over-limit message, a protocol error). One whose stream
   * from us gossipsub cut, as the peer stopped reading it (maxOutboundBufferSize), is hung up on,
   * unpunished (a stuck process is no offence), as Bitcoin Core drops a peer whose send buffer
   * does not drain: gossipsub never writes to it again, yet it kept the connection and its places
   * in the meshes, which peers that read would take. Every sweepMs, the peer store is swept too
   * (sweepPeerStore).
   */
  private police(): void {
    const pubsub = this.host.services.pubsub;
    const gossiping = new Set<string>();
    const unread = new Set<string>();
    for (const peer of pubsub.getPeers()) {
      const id = peer.toString();
      (pubsub.streamsOutbound.has(id) ? gossiping : unread).add(id);
      if (pubsub.getScore(id) < GOSSIP_BAN_SCORE) this.emit('peer:misbehaved', id, 100, 'gossip score below threshold');
    }
    const now = Date.now();
    if (!this.sweeping && now - this.sweptAt >= this.sweepMs) {
      this.sweptAt = now;
      this.sweeping = this.sweepPeerStore()
        .catch(() => {}) // a sweep that fails leaves the records to the next
        .finally(() => (this.sweeping = undefined));
    }
    for (const [id, since] of this.connectedAt) {
      if (gossiping.has(id) || now - since < GOSSIPLESS_GRACE_MS) continue;
      this.connectedAt.delete(id);
      if (!unread.has(id)) this.emit('peer:misbehaved', id, 50, 'connected without a working gossip stream');
      void this.hangUp(id);
    }
  }
}

function toPeerId(peer: string): PeerId {
  try {
    return peerIdFromString(peer);
  } catch (err) {
    throw new TransportError('TRANSPORT_CLOSED', `not a peer id: ${peer} (${(err as Error).message})`);
  }
}
