/**
 * What a person asks of a node after "is it running": how hard the next block is, how fast the
 * network hashes, the last blocks, the forks seen, and what fee gets a transfer into the next
 * block. Read-only, through the public faces of Chain, ChainDB and Mempool.
 */
import { BoundedMap } from '../ledger/bounded.ts';
import { toHex } from '../ledger/bytes.ts';
import { encodeAddress } from '../ledger/keys.ts';
import { COINBASE_BYTES, HEADER_BYTES, decodeBlock, type Block } from '../ledger/block.ts';
import { TX_BYTES, type Transaction } from '../ledger/transaction.ts';
import { MAX_AMOUNT } from '../ledger/amount.ts';
import type { Mempool } from '../ledger/mempool.ts';
import type { BlockIndexEntry } from '../consensus/block-index.ts';
import type { Chain } from '../consensus/chain.ts';
import { blockWork } from '../consensus/pow.ts';
import type { BlockSummary, FeeEstimate, TipResult } from './rpc-types.ts';

/** Blocks the hash rate is averaged over: about five minutes of the devnet's 5-second blocks. */
const HASH_RATE_WINDOW = 60;
/** Blocks the fee estimate looks back over. */
const FEE_WINDOW = 10;

/** Expected hashes to find the next block: the work of one block at the target the chain expects. */
export function nextBlockDifficulty(chain: Chain): bigint {
  return blockWork(chain.nextBlockRules().target);
}

/**
 * Hashes per second the network spent on the last blocks: their work over the time they took.
 * Undefined until there are two blocks after genesis (genesis's timestamp is set by hand).
 */
export function networkHashRate(chain: Chain): number | undefined {
  const tip = chain.tip;
  const first = chain.mainAt(Math.max(1, tip.height - HASH_RATE_WINDOW));
  if (!first || tip.height - first.height < 1) return undefined;
  const work = tip.totalWork - first.totalWork;
  const seconds = Math.max(1, tip.header.timestamp - first.header.timestamp);
  return Number(work) / seconds;
}

/** How many transactions one block can hold, by count and by bytes. */
export function blockCapacity(chain: Chain): number {
  const { maxBlockTxs, maxBlockBytes } = chain.params;
  return Math.min(maxBlockTxs, Math.floor((maxBlockBytes - HEADER_BYTES - COINBASE_BYTES - 9) / TX_BYTES));
}

/**
 * The fee that gets a transaction into the next block, never below the relay minimum: one more
 * than the cheapest that would still fit when the mempool holds more than a block, and at least
 * the cheapest fee a recent full block took (when blocks are full, that is the going rate).
 * Blocks with room to spare say nothing: anything paying the minimum got in.
 */
export async function estimateFee(chain: Chain, mempool: Mempool): Promise<FeeEstimate> {
  const minFee = mempool.policy.minFee;
  const capacity = blockCapacity(chain);
  let fee = minFee;
  let basis: FeeEstimate['basis'] = 'minimum';
  if (mempool.size >= capacity && capacity > 0) {
    const beat = mempool.feesHighestFirst()[capacity - 1]! + 1n;
    if (beat > fee) [fee, basis] = [beat, 'mempool'];
  }
  let fullBlocks = 0;
  for (let h = chain.tip.height; h > 0 && h > chain.tip.height - FEE_WINDOW; h--) {
    const entry = chain.mainAt(h);
    const lowest = entry && (await cheapestIfFull(chain, entry, capacity));
    if (lowest === undefined || lowest === null) continue;
    fullBlocks++;
    if (lowest > fee) [fee, basis] = [lowest, 'recent-blocks'];
  }
  return { fee: fee.toString(), minFee: minFee.toString(), basis, blockCapacity: capacity, mempoolTxs: mempool.size, fullRecentBlocks: fullBlocks, recentBlocks: Math.min(FEE_WINDOW, chain.tip.height) };
}

/**
 * Per block hash, its cheapest fee if it was full, else null: status asks for the estimate often
 * (a benchmark, ten times a second), and a block's answer never changes, so each is read once.
 */
const fullBlockFloors = new BoundedMap<string, bigint | null>(16 * FEE_WINDOW);

async function cheapestIfFull(chain: Chain, entry: BlockIndexEntry, capacity: number): Promise<bigint | null | undefined> {
  const known = fullBlockFloors.get(entry.hashHex);
  if (known !== undefined) return known;
  const bytes = (await chain.db.getBlocksBytes([entry.hash]))[0];
  if (!bytes) return undefined;
  // Most blocks are not full: their count says so without decoding a megabyte of transactions.
  const floor = capacity === 0 || txCount(bytes) < capacity ? null : decodeBlock(bytes).txs.reduce((low, tx) => (tx.fee < low ? tx.fee : low), MAX_AMOUNT);
  fullBlockFloors.set(entry.hashHex, floor);
  return floor;
}

/** The transaction count of an encoded block: the CompactSize after header and coinbase. */
function txCount(block: Uint8Array): number {
  const at = HEADER_BYTES + COINBASE_BYTES;
  const view = new DataView(block.buffer, block.byteOffset, block.byteLength);
  const tag = block[at]!;
  return tag < 0xfd ? tag : tag === 0xfd ? view.getUint16(at + 1) : view.getUint32(at + 1);
}

/** The last `count` main-chain blocks, newest first, ending at `to` (default the tip). */
export async function recentBlocks(chain: Chain, count: number, to = chain.tip.height): Promise<BlockSummary[]> {
  const out: BlockSummary[] = [];
  for (let h = Math.min(to, chain.tip.height); h >= 0 && out.length < count; h--) {
    const hash = await chain.byHeight.hashAt(h);
    const block = hash && (await chain.db.getBlock(hash));
    if (!block) break; // the tip moved under us, or the block is pruned: what we have is still true
    out.push({
      height: h,
      hash: toHex(block.header.hash),
      timestamp: block.header.timestamp,
      txs: block.txs.length,
      size: block.bytes.length,
      fees: block.txs.reduce((sum, tx) => sum + tx.fee, 0n).toString(),
      miner: h === 0 ? null : encodeAddress(block.coinbase.to),
    });
  }
  return out;
}

/**
 * Every block no other block builds on (Bitcoin's getchaintips): the main tip, and the end of
 * each fork this node has seen, with how far it branches off the main chain.
 */
export function chainTips(chain: Chain): TipResult[] {
  return chain
    .tips()
    .map((tip) => {
      let fork: BlockIndexEntry = tip;
      while (!chain.isMain(fork) && fork.parent) fork = fork.parent;
      const status: TipResult['status'] = chain.isMain(tip) ? 'active' : !tip.isValid ? 'invalid' : 'valid-fork';
      return { height: tip.height, hash: tip.hashHex, branchLength: tip.height - fork.height, forkHeight: fork.height, status, totalWork: tip.totalWork.toString() };
    })
    .sort((a, b) => (a.status === 'active' ? -1 : b.status === 'active' ? 1 : b.height - a.height));
}

/**
 * A transaction by id, pending or in its main-chain block; undefined when neither. One in neither
 * is looked for again once the mempool has done the work it was given: the transactions of blocks
 * a reorganisation disconnected go back to it after the reorganisation, one at a time, each through
 * its signature check (Mempool.update), and one asked for meanwhile is in neither.
 */
export async function findTransaction(chain: Chain, mempool: Mempool, id: Uint8Array): Promise<{ tx: Transaction; block?: Block } | undefined> {
  for (let look = 0; ; look++) {
    const pending = mempool.get(id);
    if (pending) return { tx: pending.tx };
    const location = await chain.db.getTxLocation(id);
    const block = location && (await chain.db.getBlock(location.blockHash));
    const tx = block?.txs[location!.index];
    if (block && tx) return { tx, block };
    if (look > 0) return undefined;
    await mempool.settled();
  }
}
