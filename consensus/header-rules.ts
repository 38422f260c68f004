import { bytesEqual, fromHex, toHex } from '../ledger/bytes.ts';
import type { BlockHeader } from '../ledger/block.ts';
import { nextTarget, type DifficultyParams } from './difficulty.ts';
import { ConsensusError } from './errors.ts';

/** How far ahead of our clock a block's timestamp may be: 12 block times, at least 1 min, at most 2 h. */
export function maxFutureDrift(blockTime: number): number {
  return Math.min(7200, Math.max(60, 12 * blockTime));
}

/**
 * The rules a header must meet against its parent: link, height, ASERT's target, a timestamp
 * after the median time past and at most `maxFutureDrift` ahead of `now`, and the `checkpoint`
 * this node holds, if any. Shared by block import and by the check of a peer's header chain, so
 * both judge a header alike.
 */
export function checkHeaderContext(
  params: DifficultyParams,
  header: BlockHeader,
  parent: Pick<BlockHeader, 'hash' | 'height' | 'timestamp'>,
  anchorTimestamp: number | undefined,
  medianTimePast: number,
  now: number,
  checkpoint?: Checkpoint,
): void {
  if (!bytesEqual(header.prevHash, parent.hash) || header.height !== parent.height + 1) {
    throw new ConsensusError('HEADER_BAD_HEIGHT', `height ${header.height} does not follow its parent at ${parent.height}`);
  }
  const expected = nextTarget(params, parent, anchorTimestamp);
  if (header.target !== expected) {
    throw new ConsensusError('HEADER_BAD_TARGET', `target ${header.target.toString(16)}, expected ${expected.toString(16)}`);
  }
  if (header.timestamp <= medianTimePast) {
    throw new ConsensusError('HEADER_TIME_TOO_OLD', `timestamp ${header.timestamp} is not after the median time past ${medianTimePast}`);
  }
  const limit = now + maxFutureDrift(params.blockTime);
  if (header.timestamp > limit) {
    // Our clock may be the one that is wrong, and the block may be fine later: no ban.
    throw new ConsensusError('HEADER_TIME_TOO_NEW', `timestamp ${header.timestamp} is beyond ${limit}`, 0);
  }
  checkCheckpoint(checkpoint, header);
}

/** A block the user trusts, `HEIGHT:HASH` (`cairn node|light|verify --checkpoint`). */
export interface Checkpoint {
  readonly height: number;
  readonly hash: Uint8Array;
}

/**
 * A checkpoint as a user writes one, `HEIGHT:HASH` (a header's height, 64 lower-case hex digits):
 * the flag, and the file a node or light client keeps it in. Undefined if `text` is not one.
 */
export function parseCheckpoint(text: string): Checkpoint | undefined {
  const m = /^(\d{1,10}):([0-9a-f]{64})$/.exec(text);
  if (!m || Number(m[1]) > 0xffffffff) return undefined;
  return { height: Number(m[1]), hash: fromHex(m[2]!) };
}

export function checkpointText(checkpoint: Checkpoint): string {
  return `${checkpoint.height}:${toHex(checkpoint.hash)}`;
}

export function sameCheckpoint(a: Checkpoint, b: Checkpoint): boolean {
  return a.height === b.height && bytesEqual(a.hash, b.hash);
}

/** `header` stands where the checkpoint does and is another block: its chain forks below it. */
export function contradictsCheckpoint(checkpoint: Checkpoint | undefined, header: Pick<BlockHeader, 'hash' | 'height'>): boolean {
  return checkpoint !== undefined && header.height === checkpoint.height && !bytesEqual(header.hash, checkpoint.hash);
}

/**
 * A header at the checkpoint's height that is another block is on a chain this node never takes,
 * however much work it shows (`cairn node --checkpoint`). Ban-worthy, as Bitcoin Core's
 * checkpoints: an honest peer's chain passes through the block, or has not reached its height.
 */
export function checkCheckpoint(checkpoint: Checkpoint | undefined, header: Pick<BlockHeader, 'hash' | 'height'>): void {
  if (contradictsCheckpoint(checkpoint, header)) {
    throw new ConsensusError('HEADER_CHECKPOINT', `block ${toHex(header.hash)} at height ${header.height} is not the checkpoint ${checkpointText(checkpoint!)}: its chain forks below it`);
  }
}

/** Median of up to 11 timestamps (Bitcoin's median time past). */
export function medianOf(times: readonly number[]): number {
  const sorted = [...times].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}
