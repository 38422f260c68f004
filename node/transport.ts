import type { EventEmitter } from 'node:events';
import { CairnError } from '../ledger/errors.ts';

/**
 * What gossip, sync, transaction relay and peer handling need from the network, and nothing
 * more. Two adapters: libp2p (node/libp2p/) for real nodes, and the simulator's network (sim/),
 * where many nodes share one process and simulated time. Peers are named by their id string.
 *
 * Request-response: one request frame, answered with one frame or a list of frames, every read
 * capped in bytes and time. Gossip: a message a validator accepts is forwarded to the other
 * subscribed peers; one it ignores or rejects goes no further (a reject also lowers the sender's
 * standing with the transport, where it keeps one).
 */
export type Verdict = 'accept' | 'ignore' | 'reject';

export interface ConnectionInfo {
  readonly direction: 'inbound' | 'outbound';
  /** Where the peer is, as the transport names addresses (a multiaddr for libp2p). */
  readonly remoteAddr: string;
}

export interface RequestLimits {
  readonly timeoutMs: number;
  /** The largest frame accepted: the request when serving, each response frame when asking. */
  readonly maxBytes: number;
}

export type Responder = (request: Uint8Array, peer: string) => Promise<Uint8Array | Uint8Array[]>;

export interface ServeOptions extends RequestLimits {
  /** A request we could not serve (garbage, over the cap, too slow): the asker may pay for it. */
  readonly onBadRequest: (peer: string, err: unknown) => void;
  /** Requests a peer may have in flight on this protocol at once. */
  readonly maxInFlightPerPeer?: number;
}

export type GossipValidator = (peer: string, data: Uint8Array) => Promise<Verdict>;

export interface TransportEvents {
  'peer:connect': [peer: string, info: ConnectionInfo];
  'peer:disconnect': [peer: string];
  /** The peer's connection is ready for our protocols (libp2p: identify finished); its listen addresses. */
  'peer:ready': [peer: string, listenAddrs: readonly string[]];
  /** A peer we are not connected to was heard of (bootstrap list, mDNS, the DHT). */
  'peer:discovered': [peer: string, addrs: readonly string[]];
  /** The transport's own judgement of a peer (libp2p: its gossipsub score fell, or its gossip stream died). */
  'peer:misbehaved': [peer: string, score: number, reason: string];
}

export interface Transport extends EventEmitter<TransportEvents> {
  readonly peerId: string;
  listenAddresses(): string[];
  /** Connected peers. */
  peers(): string[];
  connectionInfo(peer: string): ConnectionInfo | undefined;
  /** Connects to a peer at one of `addrs`; resolves with its id. */
  dial(addrs: readonly string[]): Promise<string>;
  hangUp(peer: string): Promise<void>;

  handle(protocol: string, respond: Responder, options: ServeOptions): Promise<void>;
  request(peer: string, protocol: string, body: Uint8Array, limits: RequestLimits): Promise<Uint8Array>;
  /** Collects response frames until the peer's end, at most `maxFrames`. */
  requestMany(peer: string, protocol: string, body: Uint8Array, maxFrames: number, limits: RequestLimits): Promise<Uint8Array[]>;

  subscribe(topic: string, validate: GossipValidator): void;
  unsubscribe(topic: string): void;
  /** Resolves with the number of peers the message went to. */
  publish(topic: string, data: Uint8Array): Promise<number>;

  stop(): Promise<void>;
}

/** Decides, for the transport, which peers may not connect (bans). */
export interface ConnectionGate {
  denied(peer: string): boolean;
}

export type TransportErrorCode =
  /** The peer does not speak the protocol: another network, or not a Cairn node. */
  | 'TRANSPORT_UNSUPPORTED'
  | 'TRANSPORT_TIMEOUT'
  /** A frame over its cap, or a garbled length prefix: the sender broke the framing. */
  | 'TRANSPORT_BAD_FRAME'
  /** Reset, closed, unreachable: nobody's proven fault. */
  | 'TRANSPORT_CLOSED';

/** A request that failed in the transport, classified so callers never read adapter-specific errors. */
export class TransportError extends CairnError {
  constructor(code: TransportErrorCode, message: string) {
    super(code, message, code === 'TRANSPORT_BAD_FRAME' ? 25 : 0);
  }
}
