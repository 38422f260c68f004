import { toHex } from '../ledger/bytes.ts';
import { BLOCK_VERSION, type BlockHeader } from '../ledger/block.ts';
import type { ChainParams } from '../ledger/genesis.ts';
import type { BlockIndexEntry } from './block-index.ts';
import { checkHeaderContext, medianOf } from './header-rules.ts';
import { ConsensusError } from './errors.ts';
import { blockWork, hasValidProofOfWork } from './pow.ts';

/** Where a checked chain of headers starts: a header we trust, and what checking its children needs. */
export interface HeaderChainStart {
  readonly header: Pick<BlockHeader, 'hash' | 'height' | 'timestamp'>;
  /** The chain's total work up to and including `header`. */
  readonly totalWork: bigint;
  /** Block 1's timestamp (ASERT's anchor); undefined at genesis. */
  readonly anchorTimestamp: number | undefined;
  /** Timestamps of `header` and up to 10 before it, oldest first: for the median time past. */
  readonly recentTimes: readonly number[];
}

/** The start of a chain after an entry of our block index. */
export function startAt(fork: BlockIndexEntry): HeaderChainStart {
  const times: number[] = [];
  for (let e: BlockIndexEntry | undefined = fork; e && times.length < 11; e = e.parent) times.unshift(e.header.timestamp);
  return { header: fork.header, totalWork: fork.totalWork, anchorTimestamp: fork.anchorTimestamp, recentTimes: times };
}

/**
 * A peer's claimed chain, checked header by header before any body is fetched: linkage, height,
 * proof of work, the expected target and the timestamp window. Nothing is stored, so a long
 * chain of cheap headers costs the time to hash them and no more. Feed batches in order with
 * `extend`; `totalWork` is then the claimed tip's total work. Light clients and `cairn verify`
 * check their header chains with it too.
 */
export class HeaderChainCheck {
  private readonly params: ChainParams;
  private readonly now: number;
  /** Timestamps of the last 11 headers (oldest first), for median time past. */
  private readonly recentTimes: number[];
  private last: Pick<BlockHeader, 'hash' | 'height' | 'timestamp'>;
  private anchorTimestamp: number | undefined;
  private work: bigint;
  readonly headers: BlockHeader[] = [];
  /** Whether checked headers are kept in `headers` (a light client keeps its own, compact, record). */
  private readonly keep: boolean;

  /** Starts at `fork`, a block we have (or a start we trust): the first header must be its child. */
  constructor(params: ChainParams, fork: BlockIndexEntry | HeaderChainStart, now: number, options: { keepHeaders?: boolean } = {}) {
    const start = 'recentTimes' in fork ? fork : startAt(fork);
    this.params = params;
    this.now = now;
    this.last = start.header;
    this.anchorTimestamp = start.anchorTimestamp;
    this.work = start.totalWork;
    this.recentTimes = [...start.recentTimes];
    this.keep = options.keepHeaders ?? true;
  }

  /** Block 1's timestamp, once the chain has reached it. */
  get anchor(): number | undefined {
    return this.anchorTimestamp;
  }

  /** Where the checked chain now ends, as a start for checking more. */
  get end(): HeaderChainStart {
    return { header: this.last, totalWork: this.work, anchorTimestamp: this.anchorTimestamp, recentTimes: [...this.recentTimes] };
  }

  get totalWork(): bigint {
    return this.work;
  }

  get tipHash(): Uint8Array {
    return this.last.hash;
  }

  get tipHeight(): number {
    return this.last.height;
  }

  /** Checks and appends headers; throws a ConsensusError (ban-worthy) at the first bad one. */
  extend(headers: readonly BlockHeader[]): void {
    for (const h of headers) {
      if (h.version !== BLOCK_VERSION) throw new ConsensusError('HEADER_BAD_VERSION', `unknown header version ${h.version}`);
      if (!hasValidProofOfWork(h)) throw new ConsensusError('HEADER_BAD_POW', `header ${toHex(h.hash)} lacks its proof of work`);
      checkHeaderContext(this.params, h, this.last, this.anchorTimestamp, medianOf(this.recentTimes), this.now);
      if (h.height === 1) this.anchorTimestamp = h.timestamp;
      this.recentTimes.push(h.timestamp);
      if (this.recentTimes.length > 11) this.recentTimes.shift();
      this.work += blockWork(h.target);
      this.last = h;
      if (this.keep) this.headers.push(h);
    }
  }
}
