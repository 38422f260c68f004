import { bytesToBigInt } from '../ledger/bytes.ts';
import type { BlockHeader } from '../ledger/block.ts';

const TWO_256 = 1n << 256n;
export const MAX_TARGET = TWO_256 - 1n;

/** The header hash read as a 256-bit big-endian number must not exceed the target. */
export function meetsTarget(hash: Uint8Array, target: bigint): boolean {
  return bytesToBigInt(hash) <= target;
}

export function hasValidProofOfWork(header: BlockHeader): boolean {
  return header.target > 0n && header.target <= MAX_TARGET && meetsTarget(header.hash, header.target);
}

/** Expected hashes to find a block at `target`: 2^256 / (target + 1). Chains compare by the sum. */
export function blockWork(target: bigint): bigint {
  return TWO_256 / (target + 1n);
}
