import type { ServedProtocol } from './peer-records.ts';

/** What one peer may ask of one protocol: a burst, then a rate, and a few at a time. */
export interface RequestBudget {
  readonly burst: number;
  readonly perSecond: number;
  readonly inFlight: number;
}

export interface ServingLimits {
  readonly requests: Readonly<Record<ServedProtocol, RequestBudget>>;
  /**
   * Bytes a second the node serves, all peers together, shared equally among the address groups it
   * served in the last two seconds: one syncing peer alone gets all of it, n groups a share each.
   */
  readonly uploadBytesPerSec: number;
  /** Bytes an address group may take at once before its share applies. */
  readonly burstBytes: number;
  /** Blocks a peer already has (re-downloads): this many bytes a second, after this burst... */
  readonly redundantBytesPerSec: number;
  readonly redundantBurstBytes: number;
  /**
   * ...and past this many such blocks on one connection (or the chain's length and
   * `redundantChainMargin` more, if that is less: it has had the whole chain twice), a ban score
   * of 100: it is cut off.
   */
  readonly maxRedundantBlocks: number;
  readonly redundantChainMargin: number;
  /**
   * Blocks asked for a second time on one connection that are forgiven: an honest node asks again
   * for a batch whose answer it lost (a timeout, a cut), 32 blocks at a time. At least this many,
   * or an eighth of the chain if that is more.
   */
  readonly repeatAllowance: number;
  /**
   * Requests that arrive before the retry-after of a busy answer: the first `inFlight + 2` may
   * have been on their way already; each one after costs this ban score.
   */
  readonly ignoredBusyScore: number;
  /**
   * Bytes of answers the node holds at once, all askers together: blocks being read for an answer,
   * answers built and not yet written out (a peer that stops reading holds its answers up to the
   * transport's answer deadline); an address group's identities at most a quarter of it. Past
   * either, blocks requests are answered busy (other answers are small).
   */
  readonly maxHeldAnswerBytes: number;
}

/**
 * Sized from what honest peers do (docs/PROTOCOL.md, "Budgets"): a status on every connection,
 * every 15 s and per orphan block, one at a time; headers 2000 at a time, one request after
 * another; blocks 32 at a time, two in flight; the whole mempool pushed on connection; a few
 * missing transactions per compact block; headers by height 2000 at a time, eight in flight for a
 * syncing full node (80,000 headers/s sustained), one after another for a light client; a light
 * client's account proofs one request at a time, a few per question it is asked (each proof
 * pauses the node's imports: the tightest budget); a joining node's snapshot chunks, eight in
 * flight (4,096 accounts each at most: about 150 KB an answer).
 */
export const DEFAULT_SERVING_LIMITS: ServingLimits = {
  requests: {
    status: { burst: 16, perSecond: 1, inFlight: 2 },
    headers: { burst: 64, perSecond: 20, inFlight: 2 },
    blocks: { burst: 64, perSecond: 64, inFlight: 4 },
    txPush: { burst: 64, perSecond: 8, inFlight: 2 },
    blockTxs: { burst: 32, perSecond: 8, inFlight: 4 },
    headerRange: { burst: 128, perSecond: 40, inFlight: 8 },
    proofs: { burst: 32, perSecond: 4, inFlight: 1 },
    snapshot: { burst: 64, perSecond: 32, inFlight: 8 },
  },
  uploadBytesPerSec: 64 << 20,
  burstBytes: 8 << 20,
  redundantBytesPerSec: 128 << 10,
  redundantBurstBytes: 256 << 10,
  maxRedundantBlocks: 4096,
  redundantChainMargin: 256,
  repeatAllowance: 256,
  ignoredBusyScore: 10,
  maxHeldAnswerBytes: 256 << 20,
};

const NONE: RequestBudget = { burst: 1e9, perSecond: 1e9, inFlight: 1e9 };

/** No budgets at all, what serving was before them: for benchmarks and control runs, never a real node. */
export const UNLIMITED_SERVING: ServingLimits = {
  requests: { status: NONE, headers: NONE, blocks: NONE, txPush: NONE, blockTxs: NONE, headerRange: NONE, proofs: NONE, snapshot: NONE },
  uploadBytesPerSec: 1e15,
  burstBytes: 1e15,
  redundantBytesPerSec: 1e15,
  redundantBurstBytes: 1e15,
  maxRedundantBlocks: Number.MAX_SAFE_INTEGER,
  redundantChainMargin: Number.MAX_SAFE_INTEGER,
  repeatAllowance: Number.MAX_SAFE_INTEGER,
  ignoredBusyScore: 0,
  maxHeldAnswerBytes: 1e15,
};

/** A token bucket on the env's monotonic clock. Tokens may go below zero (a debt): an answer is sent whole, and paid for after. */
export class Bucket {
  tokens: number;
  private at: number;
  constructor(capacity: number, now: number) {
    this.tokens = capacity;
    this.at = now;
  }

  refill(now: number, capacity: number, perSecond: number): void {
    if (now > this.at) this.tokens = Math.min(capacity, this.tokens + ((now - this.at) * perSecond) / 1000);
    this.at = Math.max(this.at, now);
  }

  /** Milliseconds until the bucket holds `want` tokens. */
  waitFor(want: number, perSecond: number): number {
    return this.tokens >= want ? 0 : Math.ceil(((want - this.tokens) * 1000) / perSecond);
  }
}
