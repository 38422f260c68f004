import { sha256 } from '../ledger/hash.ts';
import type { Block } from '../ledger/block.ts';
import type { Transaction } from '../ledger/transaction.ts';
import { makeBlock, makeHeader } from '../ledger/block.ts';
import type { ChainParams } from '../ledger/genesis.ts';
import { genesisBlock, genesisChanges } from '../ledger/genesis.ts';
import { stateKey, type StateChange } from '../ledger/smt.ts';
import { toHex } from '../ledger/bytes.ts';
import { EMPTY_ACCOUNT, type Account } from '../ledger/state.ts';
import { MemoryStateTree } from '../ledger/smt-memory.ts';
import { nextTarget } from '../consensus/difficulty.ts';
import { buildTemplate, completeBlock, searchNonce, targetBytes, templateHeader } from '../consensus/miner.ts';
import type { CairnNode } from '../node/node.ts';

/**
 * The block `node` would mine now: its own template (its tip, its mempool, its clock) with a
 * nonce found against the simulated network's easy target, a few hashes. Which node finds the
 * next block, and when, the simulator's lottery decides; the proof of work itself is real. A miner
 * that lies about the time gives its own `now` (the template still keeps it past the median time past).
 */
export async function mineBlock(node: CairnNode, coinbase: Uint8Array, now = node.clock()): Promise<Block | undefined> {
  const template = await buildTemplate(node.chain, node.mempool, coinbase, now);
  const nonce = searchNonce(template.headerBytes, targetBytes(template.target), 0n, 1_000_000, sha256);
  return nonce === undefined ? undefined : completeBlock(template, nonce);
}

/**
 * A chain the network already has when the run starts: `count` blocks on schedule from genesis
 * (coinbase-only unless `txsAt` gives each height its transactions), so that nodes joining later have a long download (several batches,
 * from several peers) ahead of them. `timestampAt` stamps them otherwise (the capturer's cheap chain).
 */
export function mineHistory(
  params: ChainParams,
  count: number,
  coinbase: Uint8Array,
  txsAt: (height: number) => readonly Transaction[] = () => [],
  timestampAt: (height: number, parentTimestamp: number) => number = (_height, parentTimestamp) => parentTimestamp + params.blockTime,
): Block[] {
  const out: Block[] = [];
  let parent = genesisBlock(params).header;
  let anchor: number | undefined;
  let state = MemoryStateTree.EMPTY.with(genesisChanges(params));
  for (let i = 0; i < count; i++) {
    const height = parent.height + 1;
    const target = nextTarget(params, parent, anchor);
    const txs = txsAt(height);
    const cb = { to: coinbase, amount: params.reward + txs.reduce((sum, tx) => sum + tx.fee, 0n) };
    state = stateAfter(state, cb, txs);
    const base = templateHeader({ height, prevHash: parent.hash, coinbase: cb, txs, stateRoot: state.root, timestamp: timestampAt(height, parent.timestamp), target });
    const nonce = searchNonce(base.bytes, targetBytes(target), 0n, 1_000_000, sha256);
    if (nonce === undefined) throw new Error('history: no nonce');
    const block = makeBlock(makeHeader({ ...base, nonce }), cb, txs);
    if (height === 1) anchor = block.header.timestamp;
    out.push(block);
    parent = block.header;
  }
  return out;
}

/**
 * The state a block leaves: its transfers, in order, then its coinbase, applied without the checks
 * consensus makes (the history's transactions are valid by construction, and the nodes that
 * download them make the checks; an adversary's block is to break one rule only). Throws if an
 * account would go below zero.
 */
export function stateAfter(state: MemoryStateTree, cb: { to: Uint8Array; amount: bigint }, txs: readonly Transaction[]): MemoryStateTree {
  return state.with(blockChanges(state, cb, txs));
}

function blockChanges(state: MemoryStateTree, cb: { to: Uint8Array; amount: bigint }, txs: readonly Transaction[]): StateChange[] {
  const changed = new Map<string, StateChange>();
  const account = (address: Uint8Array) => {
    const key = stateKey(address);
    return changed.get(toHex(key))?.account ?? state.get(key) ?? EMPTY_ACCOUNT;
  };
  const set = (address: Uint8Array, a: Account) => {
    const key = stateKey(address);
    changed.set(toHex(key), { key, account: a });
  };
  for (const tx of txs) {
    const from = account(tx.from);
    set(tx.from, { balance: from.balance - tx.amount - tx.fee, nonce: from.nonce + 1n });
    const to = account(tx.to);
    set(tx.to, { balance: to.balance + tx.amount, nonce: to.nonce });
  }
  const miner = account(cb.to);
  set(cb.to, { balance: miner.balance + cb.amount, nonce: miner.nonce });
  return [...changed.values()];
}
