import { sha256 } from '../ledger/hash.ts';
import type { Block } from '../ledger/block.ts';
import { makeBlock, makeHeader } from '../ledger/block.ts';
import type { ChainParams } from '../ledger/genesis.ts';
import { genesisBlock, genesisChanges } from '../ledger/genesis.ts';
import { stateKey } from '../ledger/smt.ts';
import { MemoryStateTree } from '../ledger/smt-memory.ts';
import { nextTarget } from '../consensus/difficulty.ts';
import { buildTemplate, completeBlock, searchNonce, targetBytes, templateHeader } from '../consensus/miner.ts';
import type { CairnNode } from '../node/node.ts';

/**
 * The block `node` would mine now: its own template (its tip, its mempool, its clock) with a
 * nonce found against the simulated network's easy target, a few hashes. Which node finds the
 * next block, and when, the simulator's lottery decides; the proof of work itself is real.
 */
export async function mineBlock(node: CairnNode, coinbase: Uint8Array): Promise<Block | undefined> {
  const template = await buildTemplate(node.chain, node.mempool, coinbase, node.clock());
  const nonce = searchNonce(template.headerBytes, targetBytes(template.target), 0n, 1_000_000, sha256);
  return nonce === undefined ? undefined : completeBlock(template, nonce);
}

/**
 * A chain the network already has when the run starts: `count` coinbase-only blocks on
 * schedule from genesis, so that nodes joining later have a long download (several batches,
 * from several peers) ahead of them.
 */
export function mineHistory(params: ChainParams, count: number, coinbase: Uint8Array): Block[] {
  const out: Block[] = [];
  let parent = genesisBlock(params).header;
  let anchor: number | undefined;
  // Only the miner's account changes: the state after each block is the genesis state plus its rewards.
  let state = MemoryStateTree.EMPTY.with(genesisChanges(params));
  const minerKey = stateKey(coinbase);
  for (let i = 0; i < count; i++) {
    const height = parent.height + 1;
    const target = nextTarget(params, parent, anchor);
    const cb = { to: coinbase, amount: params.reward };
    const paid = state.get(minerKey) ?? { balance: 0n, nonce: 0n };
    state = state.with([{ key: minerKey, account: { balance: paid.balance + cb.amount, nonce: paid.nonce } }]);
    const base = templateHeader({ height, prevHash: parent.hash, coinbase: cb, txs: [], stateRoot: state.root, timestamp: parent.timestamp + params.blockTime, target });
    const nonce = searchNonce(base.bytes, targetBytes(target), 0n, 1_000_000, sha256);
    if (nonce === undefined) throw new Error('history: no nonce');
    const block = makeBlock(makeHeader({ ...base, nonce }), cb, []);
    if (height === 1) anchor = block.header.timestamp;
    out.push(block);
    parent = block.header;
  }
  return out;
}
