/**
 * Blocks for the scaling suite, made outside any node: empty blocks from an in-memory state (for
 * chains of a million), and blocks of transfers built on a store's tip. Their transfers carry
 * placeholder signatures (canonical, signing nothing) and are connected with signature checks
 * skipped: signing millions of transactions would take longer than the suite, and a signature
 * costs the same whatever the chain's length, state or block size (the `ledger` and `sync` suites
 * time it), so what these curves show is everything else.
 */
import { sha256 } from '../ledger/hash.ts';
import { BLOCK_VERSION, computeMerkleRoot, makeBlock, makeHeader, type Block, type BlockHeader } from '../ledger/block.ts';
import { genesisBlock, genesisChanges, type ChainParams } from '../ledger/genesis.ts';
import { MemoryStateTree } from '../ledger/smt-memory.ts';
import { stateKey } from '../ledger/smt.ts';
import type { Transaction } from '../ledger/transaction.ts';
import type { Chain } from '../consensus/chain.ts';
import { nextTarget } from '../consensus/difficulty.ts';
import { postStateRoot, searchNonce, targetBytes } from '../consensus/miner.ts';

/** A clock far enough ahead that no block of a million on schedule is "too far in the future". */
export function farClock(params: ChainParams): () => number {
  return () => params.timestamp + params.blockTime * 50_000_000;
}

function solve(fields: Omit<Parameters<typeof makeHeader>[0], 'nonce'>): BlockHeader {
  const base = makeHeader({ ...fields, nonce: 0n });
  const nonce = searchNonce(base.bytes, targetBytes(fields.target), 0n, 1_000_000, sha256);
  if (nonce === undefined) throw new Error('no nonce found: the bench needs an easy target');
  return makeHeader({ ...fields, nonce });
}

/**
 * Coinbase-only blocks on `params`' genesis, one after another, on schedule, each paying `miner`:
 * the state (genesis plus one miner) is kept in memory, so a block costs a few hashes to make.
 */
export function emptyBlocks(params: ChainParams, miner: Uint8Array): () => Block {
  let tree = MemoryStateTree.EMPTY.with(genesisChanges(params));
  const minerKey = stateKey(miner);
  let balance = tree.get(minerKey)?.balance ?? 0n;
  let parent = genesisBlock(params).header;
  let anchor: number | undefined;
  return () => {
    const height = parent.height + 1;
    const coinbase = { to: miner, amount: params.reward };
    balance += params.reward;
    tree = tree.with([{ key: minerKey, account: { balance, nonce: 0n } }]);
    const header = solve({
      version: BLOCK_VERSION,
      height,
      prevHash: parent.hash,
      merkleRoot: computeMerkleRoot(height, coinbase, []),
      stateRoot: tree.root,
      timestamp: parent.timestamp + params.blockTime,
      target: nextTarget(params, parent, anchor),
    });
    if (height === 1) anchor = header.timestamp;
    parent = header;
    return makeBlock(header, coinbase, []);
  };
}

/** The block of `txs` on `chain`'s tip, with the state root the chain will expect (read from its store). */
export async function blockOnTip(chain: Chain, txs: readonly Transaction[], miner: Uint8Array): Promise<Block> {
  const rules = chain.nextBlockRules();
  const { stateRoot, txs: kept, coinbase } = await postStateRoot(chain.db, chain.params, miner, txs);
  if (kept.length !== txs.length) throw new Error(`a bench block lost ${txs.length - kept.length} of its transfers`);
  const header = solve({
    version: BLOCK_VERSION,
    height: rules.height,
    prevHash: chain.tip.hash,
    merkleRoot: computeMerkleRoot(rules.height, coinbase, kept),
    stateRoot,
    timestamp: Math.max(chain.tip.header.timestamp + chain.params.blockTime, rules.minTimestamp),
    target: rules.target,
  });
  return makeBlock(header, coinbase, kept);
}

export async function connect(chain: Chain, block: Block): Promise<void> {
  const outcome = await chain.processBlock(block);
  if (outcome !== 'connected') throw new Error(`block ${block.header.height} was ${outcome}`);
}
