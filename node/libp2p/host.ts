import { createLibp2p, type Libp2p } from 'libp2p';
import { tcp } from '@libp2p/tcp';
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { identify, type Identify } from '@libp2p/identify';
import { ping, type Ping } from '@libp2p/ping';
import { bootstrap } from '@libp2p/bootstrap';
import { mdns } from '@libp2p/mdns';
import { kadDHT, passthroughMapper, type KadDHT, type KadDHTComponents } from '@libp2p/kad-dht';
import {
  gossipsub,
  StrictNoSign,
  type GossipSub,
  type GossipSubComponents,
  type GossipsubOpts,
  type Message,
  type PublishResult,
  type TopicValidatorResult,
} from '@libp2p/gossipsub';
import type { PublishOpts } from '@libp2p/gossipsub/types';
import type { ConnectionGater, PeerDiscovery, PeerInfo, PrivateKey } from '@libp2p/interface';
import { sha256 } from '../../ledger/hash.ts';
import { gossipTopics, type NetworkNames } from '../protocols.ts';

/** Methods the runtime GossipSub has that its exported interface leaves out. */
export interface CairnPubSub extends GossipSub {
  getScore(peerId: string): number;
  getMeshPeers(topic: string): string[];
  /** The stream gossipsub writes to each peer on: gone once it was cut (a peer that stopped reading), and not made again. */
  readonly streamsOutbound: ReadonlyMap<string, unknown>;
  reportMessageValidationResult(msgId: string, propagationSource: string, acceptance: TopicValidatorResult): void;
  publish(topic: string, data: Uint8Array, opts?: PublishOpts): Promise<PublishResult>;
}

export type HostServices = { identify: Identify; ping: Ping; pubsub: CairnPubSub; dht: KadDHT };
export type Host = Libp2p<HostServices>;

export interface HostOptions {
  readonly privateKey: PrivateKey;
  readonly listen: readonly string[];
  readonly bootstrap: readonly string[];
  readonly mdns: boolean;
  readonly maxConnections: number;
  readonly names: NetworkNames;
  /** Largest gossip message: a full block plus framing. */
  readonly maxMessageBytes: number;
  readonly gater: ConnectionGater;
  /**
   * Every announcement of a peer by mDNS or the DHT. libp2p's own 'peer:discovery' fires only
   * for a peer new to its peer store: a peer forgotten after failed dials, and announced again
   * once it is back, would never be heard of again.
   */
  readonly onDiscovered?: (peer: PeerInfo, via: 'mdns' | 'dht') => void;
}

/** A service made by `factory` whose 'peer' announcements also go to `onPeer`. */
function announcing<C, S>(factory: (components: C) => S, onPeer: ((peer: PeerInfo, via: 'mdns' | 'dht') => void) | undefined, via: 'mdns' | 'dht'): (components: C) => S {
  if (!onPeer) return factory;
  return (components) => {
    const service = factory(components);
    (service as unknown as PeerDiscovery).addEventListener('peer', (e) => onPeer(e.detail, via));
    return service;
  };
}

type DhtStore = KadDHTComponents['datastore'];

/**
 * The DHT's store, which keeps nothing. Cairn asks the DHT only for peers; in server mode kad-dht
 * also kept, in libp2p's in-memory datastore, every provider record (any key, its sender as the
 * provider) and every valid value (a "/pk/" record is any public key under its own hash) that
 * any peer sent, for a day and without bound: a peer in a loop grew the heap without end. What
 * peers send is now taken and dropped, and nobody is told of it.
 */
function keepsNothing(): DhtStore {
  const notFound = () => Object.assign(new Error('the DHT keeps no records'), { name: 'NotFoundError' });
  return {
    has: () => false,
    put: (key) => key,
    get: () => {
      throw notFound();
    },
    delete: () => {},
    async *putMany(pairs) {
      for await (const { key } of pairs) yield key;
    },
    async *getMany(keys) {
      for await (const key of keys) throw Object.assign(notFound(), { message: `the DHT keeps no record for ${key.toString()}` });
    },
    async *deleteMany(keys) {
      yield* keys;
    },
    batch: () => ({ put: () => {}, delete: () => {}, commit: () => {} }),
    *query() {},
    *queryKeys() {},
  };
}

/** The service `factory` makes, given `store` as its datastore instead of libp2p's. */
function storingIn<S>(factory: (components: KadDHTComponents) => S, store: DhtStore): (components: KadDHTComponents) => S {
  return (components) => factory(new Proxy(components, { get: (target, key) => (key === 'datastore' ? store : Reflect.get(target, key)) }));
}

/**
 * Streams a peer may have open on a connection at once (yamux's default is 1,000). One whose
 * protocol is not said yet waits 10 s at about 17 KB of heap; an honest peer has a few dozen
 * open, its requests held to a few in flight a protocol (node/serving.ts).
 */
export const MAX_INBOUND_STREAMS_PER_CONNECTION = 128;

/** The gossipsub score of a peer below which the node cuts it off (see node/gossip.ts). */
export const GOSSIP_BAN_SCORE = -40;

function topicScore() {
  return {
    topicWeight: 1,
    timeInMeshWeight: 0.01,
    timeInMeshQuantum: 1000,
    timeInMeshCap: 100,
    firstMessageDeliveriesWeight: 1,
    firstMessageDeliveriesDecay: 0.5,
    firstMessageDeliveriesCap: 10,
    // Few nodes publish rarely here: no penalty for quiet mesh peers, only for invalid messages.
    meshMessageDeliveriesWeight: 0,
    meshMessageDeliveriesDecay: 0.5,
    meshMessageDeliveriesCap: 10,
    meshMessageDeliveriesThreshold: 1,
    meshMessageDeliveriesWindow: 10,
    meshMessageDeliveriesActivation: 5000,
    meshFailurePenaltyWeight: 0,
    meshFailurePenaltyDecay: 0.5,
    invalidMessageDeliveriesWeight: -10,
    invalidMessageDeliveriesDecay: 0.9,
  };
}

/**
 * libp2p 3 with TCP, noise, yamux, identify, ping, gossipsub and a private Kademlia DHT (peers
 * beyond the bootstrap list), bootstrap and optional mDNS. Gossip messages carry their own
 * signatures (transactions) or proof of work (blocks), so they are unsigned at the pubsub layer
 * and identified by content hash, as Lodestar does.
 */
export async function createHost(o: HostOptions): Promise<Host> {
  const pubsub: Partial<GossipsubOpts> = {
    globalSignaturePolicy: StrictNoSign,
    msgIdFn: (m: Message) => sha256(m.data),
    // gossipsub drops an over-limit message by closing the sender's stream, unpunished, leaving a
    // connection we never read from again. Admit up to 8 MiB, so our validators see (and punish)
    // anything above our own limits; senders beyond it are caught as gossip-less peers.
    maxInboundDataLength: Math.max(8 << 20, 2 * o.maxMessageBytes),
    // Subscriptions and messages on any other topic are dropped as they are read: one without a
    // validator or score parameters here was valid, cached and served, its sender never scored.
    allowedTopics: gossipTopics(o.names),
    // gossipsub writes without waiting for a peer's stream to drain, and the stream queued without
    // bound: a peer that stopped reading had all the node sent it kept, for as long as it stayed.
    // Past a few full blocks the stream is cut (the peer gets nothing more; its loss alone).
    maxOutboundBufferSize: Math.max(8 << 20, 4 * o.maxMessageBytes),
    allowPublishToZeroTopicPeers: true,
    ignoreDuplicatePublishError: true,
    scoreParams: {
      IPColocationFactorWeight: 0, // a local network puts every peer on one IP
      // A node that leaves its topics (a stop prunes each mesh, with a backoff of a minute) and
      // is back within the minute grafts during that backoff: two penalties a topic, six in all.
      // gossipsub squares the count above this threshold, so with the default of 0 one honest
      // restart scored −360 and was banned (GOSSIP_BAN_SCORE) unless the penalty decayed first.
      behaviourPenaltyThreshold: 6,
      topics: Object.fromEntries(gossipTopics(o.names).map((t) => [t, topicScore()])),
    },
    scoreThresholds: { gossipThreshold: -10, publishThreshold: -50, graylistThreshold: -80 },
  };
  const discovery = [];
  if (o.bootstrap.length > 0) discovery.push(bootstrap({ list: [...o.bootstrap], timeout: 100 }));
  if (o.mdns) discovery.push(announcing(mdns({ interval: 5000, serviceTag: o.names.mdnsTag }), o.onDiscovered, 'mdns'));
  return createLibp2p({
    privateKey: o.privateKey,
    addresses: { listen: [...o.listen] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux({ maxInboundStreams: MAX_INBOUND_STREAMS_PER_CONNECTION })],
    connectionGater: o.gater,
    connectionManager: {
      maxConnections: o.maxConnections,
      // The default (5 per second per IP) refuses the sixth local peer of a devnet or test.
      inboundConnectionThreshold: 100,
      // Handshakes pending at once, from every address. The default, 10, took a few silent
      // sockets from two subnets to fill for 10 s at a time (the gate holds each address and
      // subnet to its share of them, node/slots.ts).
      maxIncomingPendingConnections: o.maxConnections,
      dialTimeout: 5000,
    },
    peerDiscovery: discovery,
    services: {
      identify: identify(),
      ping: ping(),
      pubsub: gossipsub(pubsub) as (c: GossipSubComponents) => CairnPubSub,
      // Server mode and no address filtering: the defaults find nothing on private networks.
      // Peers are all it is for: what others ask it to store is dropped (keepsNothing).
      dht: announcing(storingIn(kadDHT({ protocol: o.names.dht, clientMode: false, peerInfoMapper: passthroughMapper }), keepsNothing()), o.onDiscovered, 'dht'),
    },
  });
}
