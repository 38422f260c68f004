import { MAX_TARGET } from './pow.ts';

/**
 * ASERT, as Bitcoin Cash's aserti3-2d: each block's target is the anchor's target scaled by
 * 2^((actual time - scheduled time) / halfLife), where the schedule is absolute (anchor time plus
 * blockTime per block), so errors never accumulate. Pure integer arithmetic with a cubic
 * approximation of 2^x on 16 fractional bits, bit-for-bit the reference algorithm.
 *
 * timeDelta = parent.timestamp - anchorParentTimestamp; heightDelta = parent.height - anchor.height.
 */
export function asertTarget(
  anchorTarget: bigint,
  blockTime: number,
  timeDelta: number,
  heightDelta: number,
  halfLife: number,
  maxTarget: bigint = MAX_TARGET,
): bigint {
  if (anchorTarget <= 0n || anchorTarget > maxTarget) throw new RangeError('anchor target out of range');
  if (heightDelta < 0 || halfLife <= 0 || blockTime <= 0) throw new RangeError('bad ASERT parameters');
  // BigInt division truncates toward zero and >> is arithmetic (floor), as in the reference C++.
  const exponent = ((BigInt(timeDelta) - BigInt(blockTime) * BigInt(heightDelta + 1)) * 65536n) / BigInt(halfLife);
  let shifts = exponent >> 16n;
  const frac = exponent & 0xffffn;
  const factor =
    65536n + ((195766423245049n * frac + 971821376n * frac * frac + 5127n * frac * frac * frac + (1n << 47n)) >> 48n);
  let next = anchorTarget * factor;
  shifts -= 16n;
  if (shifts <= 0n) next >>= -shifts;
  else if (shifts > 256n) return maxTarget; // a huge timestamp gap must not build a huge bigint
  else next <<= shifts;
  if (next === 0n) return 1n;
  return next > maxTarget ? maxTarget : next;
}

export interface DifficultyParams {
  /** Genesis timestamp and target: the anchor of the schedule. */
  readonly timestamp: number;
  readonly target: bigint;
  readonly blockTime: number;
  readonly asertHalfLife: number;
}

/**
 * The target every child of `parent` must carry. Blocks 1 and 2 carry the genesis target; from
 * there the schedule is anchored at block 1, whose (virtual) parent is taken to be one blockTime
 * before it. Anchoring at block 1 rather than at genesis means the schedule starts when the
 * network does: a genesis file written weeks before its first block does not leave the chain
 * "weeks behind schedule" and let the first miners produce a flood of trivial blocks.
 *
 * `anchorTimestamp` is the timestamp of block 1 of the parent's chain (unused at height 0).
 */
export function nextTarget(params: DifficultyParams, parent: { height: number; timestamp: number }, anchorTimestamp: number | undefined): bigint {
  if (parent.height === 0) return params.target;
  if (anchorTimestamp === undefined) throw new RangeError('nextTarget above height 0 needs the timestamp of block 1');
  const anchorParentTime = anchorTimestamp - params.blockTime;
  return asertTarget(params.target, params.blockTime, parent.timestamp - anchorParentTime, parent.height - 1, params.asertHalfLife);
}
