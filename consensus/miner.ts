import { bigIntToBytes, bytesEqual } from '../ledger/bytes.ts';
import { BLOCK_VERSION, HEADER_BYTES, computeMerkleRoot, makeBlock, decodeHeader, makeHeader, type Block, type BlockHeader, type Coinbase } from '../ledger/block.ts';
import { BlockRuleError, TxRuleError } from '../ledger/errors.ts';
import { MAX_AMOUNT } from '../ledger/amount.ts';
import { TX_BYTES, type Transaction } from '../ledger/transaction.ts';
import { COINBASE_BYTES } from '../ledger/block.ts';
import type { Mempool } from '../ledger/mempool.ts';
import { applyBlock, type AccountSource, type SignatureChecker, type StateRules } from '../ledger/state.ts';
import { changesOfEffects, type TreeNodeReader } from '../ledger/smt.ts';
import { updateTree } from '../ledger/smt-update.ts';
import type { Chain } from './chain.ts';
import type { ChainParams } from '../ledger/genesis.ts';

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

/** Signatures were checked when the mempool admitted the transactions. */
const admitted: SignatureChecker = { async checkBlockSignatures() {} };

/**
 * The state root a block of `txs` paying `coinbase` leaves on the state `state` holds, and the
 * transactions that make it: one that no longer applies (the mempool trails the tip by a moment)
 * is left out with its sender's later ones, so the template stays a valid block.
 */
export async function postStateRoot(
  state: AccountSource & TreeNodeReader,
  rules: StateRules & { readonly reward: bigint },
  coinbaseTo: Uint8Array,
  candidates: readonly Transaction[],
): Promise<{ stateRoot: Uint8Array; txs: Transaction[]; coinbase: Coinbase }> {
  const minerBalance = (await state.getAccount(coinbaseTo))?.balance ?? 0n;
  let txs = withinCoinbaseRoom(candidates, MAX_AMOUNT - rules.reward - minerBalance);
  for (;;) {
    const coinbase = { to: coinbaseTo, amount: rules.reward + txs.reduce((sum, tx) => sum + tx.fee, 0n) };
    try {
      const effects = await applyBlock(state, { txs, coinbase }, rules, admitted);
      const update = await updateTree(state, changesOfEffects(effects));
      update.release?.(); // only the root is kept: the next block's update may reuse its nodes
      return { stateRoot: update.root, txs, coinbase };
    } catch (err) {
      if (err instanceof BlockRuleError && err.code === 'BLOCK_BAD_COINBASE' && txs.some((tx) => bytesEqual(tx.to, coinbaseTo))) {
        // Transfers to the miner raised its balance before the coinbase was paid: without them,
        // the room counted above holds.
        const senders = new Set(txs.filter((tx) => bytesEqual(tx.to, coinbaseTo)).map((tx) => tx.fromKey));
        txs = txs.filter((tx) => !senders.has(tx.fromKey));
        continue;
      }
      if (!(err instanceof TxRuleError) || err.txIndex === undefined) throw err;
      const bad = txs[err.txIndex]!;
      txs = txs.filter((tx, i) => i < err.txIndex! || !bytesEqual(tx.from, bad.from));
    }
  }
}

/**
 * The candidates whose fees fit in `room` (what the coinbase may add to the reward: body rule 6
 * caps reward + fees, and the miner's balance plus the coinbase, at MAX_AMOUNT), in their order;
 * a sender whose transaction does not fit waits with its later nonces. Without this, fees too
 * large together made every template fail, and mining stop, for as long as they were pending.
 */
function withinCoinbaseRoom(candidates: readonly Transaction[], room: bigint): Transaction[] {
  const waiting = new Set<string>();
  const out: Transaction[] = [];
  let fees = 0n;
  for (const tx of candidates) {
    if (waiting.has(tx.fromKey)) continue;
    if (fees + tx.fee > room) {
      waiting.add(tx.fromKey);
      continue;
    }
    fees += tx.fee;
    out.push(tx);
  }
  return out;
}

/** The transactions a block of this network can take: its count limit, or what its bytes fit (9 for the count's encoding). */
export function blockTxRoom(params: Pick<ChainParams, 'maxBlockBytes' | 'maxBlockTxs'>): number {
  return Math.min(params.maxBlockTxs, Math.floor((params.maxBlockBytes - HEADER_BYTES - COINBASE_BYTES - 9) / TX_BYTES));
}

/**
 * A block on the current tip paying `coinbaseTo`: the highest-fee transactions the mempool can
 * execute in order, within the limits, with the target the chain expects, a timestamp that is
 * `now` unless the median time past demands later, and the root of the state it leaves. Built
 * between two imports, so that the state it is built on is the tip's throughout.
 */
export async function buildTemplate(chain: Chain, mempool: Mempool, coinbaseTo: Uint8Array, now: number): Promise<BlockTemplate> {
  return chain.withImportsPaused(async () => {
    const { params } = chain;
    const tip = chain.tip;
    const rules = chain.nextBlockRules();
    const room = blockTxRoom(params);
    const selected = await mempool.selectForBlock(room, room * TX_BYTES);
    const { stateRoot, txs, coinbase } = await postStateRoot(chain.db, params, coinbaseTo, selected);
    const header = templateHeader({ height: rules.height, prevHash: tip.hash, coinbase, txs, stateRoot, timestamp: Math.max(now, rules.minTimestamp), target: rules.target });
    return { headerBytes: header.bytes, target: rules.target, coinbase, txs, parentHash: tip.hash, height: rules.height };
  });
}

/**
 * The header of a new block, nonce 0: the one place a miner's header fields are chosen (the
 * miner's template and the chain generator both come here), so a new header field is added
 * once for both. `stateRoot` is the root of the state the block leaves (postStateRoot).
 */
export function templateHeader(o: { height: number; prevHash: Uint8Array; coinbase: Coinbase; txs: readonly Transaction[]; stateRoot: Uint8Array; timestamp: number; target: bigint }): BlockHeader {
  return makeHeader({
    version: BLOCK_VERSION,
    height: o.height,
    prevHash: o.prevHash,
    merkleRoot: computeMerkleRoot(o.height, o.coinbase, o.txs),
    stateRoot: o.stateRoot,
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
