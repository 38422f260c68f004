import type { EventEmitter } from 'node:events';
import { CairnError, DecodeError, StoreError } from '../ledger/errors.ts';
import type { Env } from './env.ts';

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

/**
 * Every error → gossip verdict decision, in one place (Lodestar's shape). Reject lowers the
 * forwarding peer's standing with the transport and adds the error's ban score to ours; Ignore is
 * for what is nobody's fault (duplicates, stale or not-yet-valid data, a full mempool).
 */
export function verdictFor(err: unknown): Verdict {
  if (err instanceof DecodeError) return 'reject';
  if (err instanceof CairnError) return err.banScore > 0 ? 'reject' : 'ignore';
  return 'ignore'; // our own failure, not the peer's
}

/**
 * A failure that is no peer's doing and no rule's: a bug of ours (a TypeError, a broken
 * invariant) or the store failing. No peer pays for it, so unless it is logged nobody hears of it:
 * a node whose every import or answer fails on such an error otherwise just stops keeping up.
 * (Only for errors not already known as the peer's: PeerFault and InvalidChain are plain Errors.)
 */
export function isOwnFailure(err: unknown): boolean {
  return err instanceof StoreError || !(err instanceof CairnError);
}

/** The fields an own failure is logged with: its stack, to find the bug by. */
export function ownFailureFields(err: unknown, fields: Record<string, unknown> = {}): Record<string, unknown> {
  return { ...fields, error: err instanceof Error ? (err.stack ?? err.message) : String(err) };
}

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

/**
 * "Busy, retry later": the answerer will not serve this request now (a budget of the asker's is
 * spent). Not an error of anyone's: the asker waits at least `retryAfterMs` before asking this
 * peer on this protocol again, and may ask another peer meanwhile. On the wire it is one frame,
 * `FF ‖ retry after (u32, ms)`, in place of the whole response (docs/PROTOCOL.md, "Busy").
 */
export interface Busy {
  readonly busy: true;
  readonly retryAfterMs: number;
}

/**
 * Answers one request. `sent`, when the transport gives it, settles once the answer has been
 * written out or given up (a reset, the answer deadline): until then the answer is held in memory,
 * which the serving budgets count (node/serving.ts).
 */
export type Responder = (request: Uint8Array, peer: string, sent?: Promise<void>) => Promise<Uint8Array | Uint8Array[] | Busy>;

const BUSY_MARK = 0xff;
export const BUSY_FRAME_BYTES = 5;

export function isBusy(answer: Uint8Array | Uint8Array[] | Busy): answer is Busy {
  return (answer as Busy).busy === true;
}

export function encodeBusy(retryAfterMs: number): Uint8Array {
  const out = new Uint8Array(BUSY_FRAME_BYTES);
  out[0] = BUSY_MARK;
  new DataView(out.buffer).setUint32(1, Math.min(0xffff_ffff, Math.max(0, Math.ceil(retryAfterMs))));
  return out;
}

/**
 * The retry-after of a busy frame, or undefined for any other frame. No other response can be
 * taken for one: every other message starts with the wire version 01, a block with its version's
 * first byte 00, and an end of list or a push's answer is empty.
 */
export function decodeBusy(frame: Uint8Array): number | undefined {
  if (frame.byteLength !== BUSY_FRAME_BYTES || frame[0] !== BUSY_MARK) return undefined;
  return new DataView(frame.buffer, frame.byteOffset, frame.byteLength).getUint32(1);
}

export interface ServeOptions extends RequestLimits {
  /** A request we could not serve (garbage, over the cap, too slow): the asker may pay for it. */
  readonly onBadRequest: (peer: string, err: unknown) => void;
  /**
   * Streams a peer may open on this protocol at once, past which the transport resets them: a
   * backstop well above what the node's own budgets (node/serving.ts) answer busy to.
   */
  readonly maxStreamsPerPeer?: number;
  /** How long writing the answer may take (default: the transport's, longer than any asker waits). */
  readonly answerTimeoutMs?: number;
}

/** The transport's backstop on streams per peer and protocol (see ServeOptions). */
export const MAX_STREAMS_PER_PEER = 32;

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
  /** Bytes that arrived from a peer at our layer: responses to our requests, gossip it forwarded. */
  'peer:bytes': [peer: string, bytes: number];
  /** Another node announced itself on the local network with our peer id (libp2p: by mDNS): it holds our key. */
  'identity:shared': [addrs: readonly string[]];
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
  /** Resolves with the number of peers the message went to. */
  publish(topic: string, data: Uint8Array): Promise<number>;

  stop(): Promise<void>;
}

/**
 * Decides, for the transport, who may not connect: banned peers, and (before any handshake, from
 * the address alone) banned addresses and addresses that already hold their share of inbound
 * connections. The transport asks as early as it can, so that a refused peer costs little.
 */
export interface ConnectionGate {
  denied(peer: string): boolean;
  /**
   * An inbound connection from `remoteAddr` (a multiaddr) is refused. `open`: the remote
   * addresses of the inbound connections the transport holds now, handshaking or not (one with
   * handshakes to wait on must say, or sockets that never finish theirs count against nothing).
   */
  deniedInbound?(remoteAddr: string, open?: readonly string[]): boolean;
  /** Dialling `addr` is refused (a banned address). */
  deniedDial?(addr: string): boolean;
  /**
   * Dialling `peer` is refused for now, though it is not banned: the node's peer book is backing
   * off from it, and the dial is not the book's (libp2p redials the DHT's closest peers on its own,
   * and a peer that hangs up after each handshake would be redialled hundreds of times a second).
   */
  deniedDialPeer?(peer: string): boolean;
}

export type TransportErrorCode =
  /** The peer does not speak the protocol: another network, or not a Cairn node. */
  | 'TRANSPORT_UNSUPPORTED'
  | 'TRANSPORT_TIMEOUT'
  /** A frame over its cap, or a garbled length prefix: the sender broke the framing. */
  | 'TRANSPORT_BAD_FRAME'
  /** Reset, closed, unreachable: nobody's proven fault. */
  | 'TRANSPORT_CLOSED'
  /** The peer answered busy: ask again after `retryAfterMs`, or ask someone else. */
  | 'TRANSPORT_BUSY';

/** A request that failed in the transport, classified so callers never read adapter-specific errors. */
export class TransportError extends CairnError {
  /** For TRANSPORT_BUSY: how long the peer asked us to wait. */
  readonly retryAfterMs: number;
  constructor(code: TransportErrorCode, message: string, retryAfterMs = 0) {
    super(code, message, code === 'TRANSPORT_BAD_FRAME' ? 25 : 0);
    this.retryAfterMs = retryAfterMs;
  }
}

/** The error a busy answer becomes on the asking side. */
export function busyError(peer: string, protocol: string, retryAfterMs: number): TransportError {
  return new TransportError('TRANSPORT_BUSY', `${peer} is busy on ${protocol}: retry after ${retryAfterMs} ms`, retryAfterMs);
}

/** Busy answers in a row an asker waits out before it leaves that peer (docs/PROTOCOL.md, "Busy"). */
export const MAX_BUSY_IN_A_ROW = 5;
/**
 * The longest retry-after an asker waits out: a peer that asks for more (the u32 allows 49 days)
 * is left at once, as if it had said busy too often. An honest server's budget refills sooner.
 */
export const MAX_RETRY_AFTER_MS = 64_000;

/**
 * Runs `attempt` until it is not answered busy: each busy answer is waited out as long as it asked
 * (no fault of the peer's), a few in a row (`maxBusy`) and none over `maxRetryAfterMs`, then, or
 * once `stopped` says so, its error is thrown.
 */
export async function waitingOutBusy<T>(wait: (ms: number) => Promise<void>, attempt: () => Promise<T>, stopped: () => boolean = () => false, maxBusy = MAX_BUSY_IN_A_ROW, maxRetryAfterMs = MAX_RETRY_AFTER_MS): Promise<T> {
  for (let busy = 0; ; busy++) {
    try {
      return await attempt();
    } catch (err) {
      if (!(err instanceof TransportError && err.code === 'TRANSPORT_BUSY') || busy >= maxBusy || err.retryAfterMs > maxRetryAfterMs || stopped()) throw err;
      await wait(err.retryAfterMs);
      if (stopped()) throw err; // a stop that cut the wait short asks nothing more
    }
  }
}

/**
 * The busy answers an asker was given, per peer and protocol: that peer is not asked on that
 * protocol again before its retry-after is over (a TRANSPORT_BUSY error at once instead), as
 * docs/PROTOCOL.md's "Busy" asks of every asker.
 */
export class BusyMemory {
  private readonly env: Pick<Env, 'monotonic'>;
  /** On the monotonic clock: the wall clock set back an hour would keep the peer unasked for an hour. */
  private readonly notBefore = new Map<string, number>();

  constructor(env: Pick<Env, 'monotonic'>) {
    this.env = env;
  }

  async ask<T>(peer: string, protocol: string, request: () => Promise<T>): Promise<T> {
    const key = `${peer}\n${protocol}`;
    const wait = (this.notBefore.get(key) ?? 0) - this.env.monotonic();
    if (wait > 0) throw busyError(peer, protocol, wait);
    this.notBefore.delete(key);
    try {
      return await request();
    } catch (err) {
      if (err instanceof TransportError && err.code === 'TRANSPORT_BUSY') this.notBefore.set(key, this.env.monotonic() + err.retryAfterMs);
      throw err;
    }
  }

  forget(peer: string): void {
    for (const key of this.notBefore.keys()) if (key.startsWith(`${peer}\n`)) this.notBefore.delete(key);
  }
}
