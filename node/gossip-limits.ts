import { TX_BYTES } from '../ledger/transaction.ts';
import { MAX_TXS_PER_BATCH } from './wire.ts';

// Gossip's limits as docs/PROTOCOL.md states them ("Gossip"): test/spec-limits.test.ts holds each to the text.

/** The largest gossip message on any topic: a full block and its framing (docs/PROTOCOL.md, "Gossip"). */
export function maxGossipBytes(maxBlockBytes: number): number {
  return maxBlockBytes + 64 * 1024;
}

/**
 * Transactions in one gossip message: a batch of at most MAX_TXS_PER_BATCH that fits under the
 * cap. On a network whose blocks are under 100,468 bytes, 1,000 transactions (166,004 bytes) do
 * not, and a receiver bans the sender of a message over the cap.
 */
export function gossipBatchTxs(maxBlockBytes: number): number {
  return Math.min(MAX_TXS_PER_BATCH, Math.floor((maxGossipBytes(maxBlockBytes) - BATCH_HEAD_BYTES) / TX_BYTES));
}
/** A batch's wire version and its count (CompactSize, 3 bytes up to 65,535). */
const BATCH_HEAD_BYTES = 4;

/** How far below our tip a gossiped block's parent may be for gossip to import it. */
export const GOSSIP_FORK_DEPTH = 16;
/**
 * How much easier than our tip's target a compact block whose parent we lack may claim to be, and
 * still be rebuilt: ASERT moves a target by 2^(lead / half-life), so near our tip an honest one
 * is within a small factor of ours, while a claim far easier may be junk that cost one hash.
 */
export const ORPHAN_TARGET_SLACK = 16n;
