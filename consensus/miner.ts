import { bigIntToBytes } from '../ledger/bytes.ts';
import { BLOCK_VERSION, HEADER_BYTES, computeMerkleRoot, makeBlock, decodeHeader, makeHeader, type Block, type BlockHeader, type Coinbase } from '../ledger/block.ts';
import { TX_BYTES, type Transaction } from '../ledger/transaction.ts';
import { COINBASE_BYTES } from '../ledger/block.ts';
import type { Mempool } from '../ledger/mempool.ts';
import type { Chain } from './chain.ts';

// The nonce search lives apart so that a mining thread loads no TypeScript (nonce-search.js).
export { NONCE_OFFSET, hashMeetsTargetBytes, searchNonce, searchNonceWith } from './nonce-search.js';

export interface BlockTemplate {
  /** The header with nonce 0; search varies its last 8 bytes. */
  readonly headerBytes: Uint8Array;
  readonly target: bigint;
  readonly coinbase: { readonly to: Uint8Array; readonly amount: bigint };
  readonly txs: readonly Transaction[];
  readonly parentHash: Uint8Array;
  readonly height: number;
}

/**
 * A block on the current tip paying `coinbaseTo`: the highest-fee transactions the mempool can
 * execute in order, within the limits, with the target the chain expects and a timestamp that is
 * `now` unless the median time past demands later.
 */
export async function buildTemplate(chain: Chain, mempool: Mempool, coinbaseTo: Uint8Array, now: number): Promise<BlockTemplate> {
  const { params } = chain;
  const tip = chain.tip;
  const rules = chain.nextBlockRules();
  const room = Math.floor((params.maxBlockBytes - HEADER_BYTES - COINBASE_BYTES - 9) / TX_BYTES);
  const txs = await mempool.selectForBlock(Math.min(params.maxBlockTxs, room), room * TX_BYTES);
  const fees = txs.reduce((sum, tx) => sum + tx.fee, 0n);
  const coinbase = { to: coinbaseTo, amount: params.reward + fees };
  const header = templateHeader({ height: rules.height, prevHash: tip.hash, coinbase, txs, timestamp: Math.max(now, rules.minTimestamp), target: rules.target });
  return { headerBytes: header.bytes, target: rules.target, coinbase, txs, parentHash: tip.hash, height: rules.height };
}

/**
 * The header of a new block, nonce 0: the one place a miner's header fields are chosen (the
 * miner's template and the chain generator both come here), so a new header field is added
 * once for both.
 */
export function templateHeader(o: { height: number; prevHash: Uint8Array; coinbase: Coinbase; txs: readonly Transaction[]; timestamp: number; target: bigint }): BlockHeader {
  return makeHeader({
    version: BLOCK_VERSION,
    height: o.height,
    prevHash: o.prevHash,
    merkleRoot: computeMerkleRoot(o.height, o.coinbase, o.txs),
    timestamp: o.timestamp,
    target: o.target,
    nonce: 0n,
  });
}

/** The block a template makes with a nonce that solved it. */
export function completeBlock(template: BlockTemplate, nonce: bigint): Block {
  const fields = decodeHeader(template.headerBytes);
  return makeBlock(makeHeader({ ...fields, nonce }), template.coinbase, template.txs);
}

export function targetBytes(target: bigint): Uint8Array {
  return bigIntToBytes(target, 32);
}
