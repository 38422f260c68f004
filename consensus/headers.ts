import { toHex } from '../ledger/bytes.ts';
import { BLOCK_VERSION, type BlockHeader } from '../ledger/block.ts';
import type { ChainParams } from '../ledger/genesis.ts';
import type { BlockIndexEntry } from './block-index.ts';
import { checkHeaderContext, type Checkpoint } from './header-rules.ts';
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
 * proof of work, the expected target and the timestamp window. It keeps only what the next
 * header is judged against (the last 11 timestamps, the anchor, the work), so a chain of any
 * length costs the time to hash it and no memory; the caller stores what it needs. Feed batches
 * in order with `extend`; `totalWork` is then the claimed tip's total work. Full-node sync,
 * light clients and `cairn verify` check their header chains with it.
 */
export class HeaderChainCheck {
  private readonly params: ChainParams;
  private now: number;
  /** Timestamps of the last 11 headers (oldest first), for median time past, and the same sorted. */
  private readonly recentTimes: number[];
  private readonly sortedTimes: number[];
  private last: Pick<BlockHeader, 'hash' | 'height' | 'timestamp'>;
  private anchorTimestamp: number | undefined;
  private work: bigint;
  private readonly checkpoint: Checkpoint | undefined;

  /**
   * Starts at `fork`, a block we have (or a start we trust): the first header must be its child.
   * With a `checkpoint`, a header at its height must be that block.
   */
  constructor(params: ChainParams, fork: BlockIndexEntry | HeaderChainStart, now: number, checkpoint?: Checkpoint) {
    const start = 'recentTimes' in fork ? fork : startAt(fork);
    this.params = params;
    this.now = now;
    this.checkpoint = checkpoint;
    this.last = start.header;
    this.anchorTimestamp = start.anchorTimestamp;
    this.work = start.totalWork;
    this.recentTimes = [...start.recentTimes];
    this.sortedTimes = [...start.recentTimes].sort((a, b) => a - b);
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

  /**
   * Checks and appends headers; throws a ConsensusError (ban-worthy) at the first bad one. `now`,
   * the clock as this batch arrives: a sync of a long chain outlasts the clock drift allowed, and
   * its last batch holds blocks mined while it ran, which the clock at its start would refuse.
   */
  extend(headers: readonly BlockHeader[], now?: number): void {
    if (now !== undefined) this.now = Math.max(this.now, now);
    for (const h of headers) {
      if (h.version !== BLOCK_VERSION) throw new ConsensusError('HEADER_BAD_VERSION', `unknown header version ${h.version}`);
      if (!hasValidProofOfWork(h)) throw new ConsensusError('HEADER_BAD_POW', `header ${toHex(h.hash)} lacks its proof of work`);
      // The median of the sorted copy: what medianOf(recentTimes) gives, without a sort per header.
      const median = this.sortedTimes[this.sortedTimes.length >> 1]!;
      checkHeaderContext(this.params, h, this.last, this.anchorTimestamp, median, this.now, this.checkpoint);
      if (h.height === 1) this.anchorTimestamp = h.timestamp;
      this.recentTimes.push(h.timestamp);
      insertSorted(this.sortedTimes, h.timestamp);
      if (this.recentTimes.length > 11) this.sortedTimes.splice(this.sortedTimes.indexOf(this.recentTimes.shift()!), 1);
      this.work += blockWork(h.target);
      this.last = h;
    }
  }
}

function insertSorted(list: number[], value: number): void {
  let i = list.length;
  while (i > 0 && list[i - 1]! > value) i--;
  list.splice(i, 0, value);
}
