import { sha256 } from '../../ledger/hash.ts';
import { computeMerkleRoot, makeBlock, makeHeader, BLOCK_VERSION, type Block } from '../../ledger/block.ts';
import type { ChainParams } from '../../ledger/genesis.ts';
import type { Transaction } from '../../ledger/transaction.ts';
import type { BlockIndexEntry } from '../../consensus/block-index.ts';
import { nextTarget } from '../../consensus/difficulty.ts';
import { postStateRoot, searchNonce, targetBytes } from '../../consensus/miner.ts';
import type { Chain } from '../../consensus/chain.ts';
import { testKey } from './fixtures.ts';
import { applyLoosely, rememberState, stateAfter } from './states.ts';

export interface MineOptions {
  readonly miner?: Uint8Array;
  /** Seconds after the parent (default: the block time, i.e. on schedule). */
  readonly spacing?: number;
  readonly timestamp?: number;
  readonly target?: bigint;
  readonly coinbaseAmount?: bigint;
  /** Grind the nonce until the hash does NOT meet the target. */
  readonly badPow?: boolean;
  /** Overrides the state root (default: the parent's state after this block). */
  readonly stateRoot?: Uint8Array;
}

type Parent = Pick<BlockIndexEntry, 'hash' | 'height' | 'header'> & { readonly anchorTimestamp?: number | undefined };

/** Block 1's timestamp for every block mined here, so a child can be mined from a bare block. */
const anchors = new Map<string, number>();
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

function anchorOf(parent: Parent): number | undefined {
  if (parent.height === 0) return undefined;
  if (parent.height === 1) return parent.header.timestamp;
  return parent.anchorTimestamp ?? anchors.get(hex(parent.hash));
}

/** A valid child of `parent` under consensus rules: expected target, on-schedule time, real proof of work. */
export function mineChild(params: ChainParams, parent: Parent, txs: readonly Transaction[] = [], o: MineOptions = {}): Block {
  const height = parent.height + 1;
  const fees = txs.reduce((s, tx) => s + tx.fee, 0n);
  const coinbase = { to: o.miner ?? testKey(99).address, amount: o.coinbaseAmount ?? params.reward + fees };
  const anchor = anchorOf(parent);
  const target = o.target ?? nextTarget(params, parent.header, anchor);
  const before = stateAfter(parent, params);
  if (!before && !o.stateRoot) throw new Error(`mineChild: the state after block ${hex(parent.hash)} is unknown here (mine it with mineChild, or give stateRoot)`);
  const after = before && applyLoosely(before, txs, coinbase);
  const base = makeHeader({
    version: BLOCK_VERSION,
    height,
    prevHash: parent.hash,
    merkleRoot: computeMerkleRoot(height, coinbase, txs),
    stateRoot: o.stateRoot ?? after!.root,
    timestamp: o.timestamp ?? parent.header.timestamp + (o.spacing ?? params.blockTime),
    target,
    nonce: 0n,
  });
  let nonce: bigint | undefined;
  if (o.badPow) {
    for (nonce = 0n; ; nonce++) {
      if (searchNonce(base.bytes, targetBytes(target), nonce, 1, sha256) === undefined) break;
    }
  } else {
    nonce = searchNonce(base.bytes, targetBytes(target), 0n, 1_000_000, sha256);
    if (nonce === undefined) throw new Error('no nonce found: target too hard for a test');
  }
  const block = makeBlock(makeHeader({ ...base, nonce }), coinbase, txs);
  anchors.set(hex(block.header.hash), height === 1 ? block.header.timestamp : anchor!);
  if (after) rememberState(block.header.hash, after);
  return block;
}

/** A chain of `n` empty blocks on `parent`, each mined by `miner`. */
export function mineChain(params: ChainParams, parent: Parent, n: number, o: MineOptions = {}): Block[] {
  const out: Block[] = [];
  let p: Parent = parent;
  for (let i = 0; i < n; i++) {
    const b = mineChild(params, p, [], o);
    out.push(b);
    p = { hash: b.header.hash, height: b.header.height, header: b.header };
  }
  return out;
}

export function asParent(block: Block): Parent {
  return { hash: block.header.hash, height: block.header.height, header: block.header };
}

/**
 * The state root a block of `txs` paying `miner` leaves on `chain`'s tip, from its store: for
 * blocks built on a tip that blocks from elsewhere (a node's miner, gossip) led to.
 */
export async function stateRootOnTip(chain: Chain, miner: Uint8Array, txs: readonly Transaction[] = []): Promise<Uint8Array> {
  return chain.withImportsPaused(async () => (await postStateRoot(chain.db, chain.params, miner, txs)).stateRoot);
}
