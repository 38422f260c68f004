import { checkBlockBody, type Block } from '../ledger/block.ts';
import type { ChainParams } from '../ledger/genesis.ts';
import { ConsensusError } from './errors.ts';
import { hasValidProofOfWork } from './pow.ts';

declare const SANE: unique symbol;

/**
 * A block whose proof of work and body passed the checks that need nothing but the block
 * (btcd's checkBlockSanity). Only `checkBlockSanity` makes one, so the import path states in its
 * types that the check ran, once, instead of remembering it per object where nobody looks.
 */
export type SaneBlock = Block & { readonly [SANE]: true };

/**
 * Proof of work, then the body (ledger/block.ts checkBlockBody). Throws the rule's typed error.
 * Neither failure may be remembered against the header's hash: a body that does not match its
 * header says nothing about the header (CVE-2012-2459), and bad proof of work costs nothing to send.
 */
export function checkBlockSanity(block: Block, params: ChainParams): SaneBlock {
  if (!hasValidProofOfWork(block.header)) throw new ConsensusError('HEADER_BAD_POW', 'header hash does not meet its target');
  checkBlockBody(block, params);
  return block as SaneBlock;
}

/**
 * For blocks read back from our own store: consensus stores a block only after it passed
 * `checkBlockSanity`, so what the store returns is sane by construction.
 */
export function storedBlockIsSane(block: Block): SaneBlock {
  return block as SaneBlock;
}

/**
 * For a block the chain generator (consensus/generate.ts) just assembled from the miner's own
 * template: its proof of work is checked here, and its body is what checkBlockSanity would
 * recompute from the same parts (test/generate.test.ts imports generated chains through the
 * full import path to prove it).
 */
export function assembledBlockIsSane(block: Block): SaneBlock {
  if (!hasValidProofOfWork(block.header)) throw new ConsensusError('HEADER_BAD_POW', 'header hash does not meet its target');
  return block as SaneBlock;
}
