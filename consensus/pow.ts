import { TARGET_OFFSET, type BlockHeader } from '../ledger/block.ts';
import { hashMeetsTargetBytes } from './nonce-search.js';

const TWO_256 = 1n << 256n;
export const MAX_TARGET = TWO_256 - 1n;

/** Compared byte by byte with the target as the header carries it: no big integers per header. */
export function hasValidProofOfWork(header: BlockHeader): boolean {
  return header.target > 0n && header.target <= MAX_TARGET && hashMeetsTargetBytes(header.hash, header.bytes.subarray(TARGET_OFFSET, TARGET_OFFSET + 32));
}

/** Expected hashes to find a block at `target`: 2^256 / (target + 1). Chains compare by the sum. */
export function blockWork(target: bigint): bigint {
  return TWO_256 / (target + 1n);
}
