import { Writer, bytesEqual, toHex } from './bytes.ts';
import { StoreError } from './errors.ts';
import { STORE_LAYOUT, layout } from './layout.ts';
import type { BatchOp, KvStore } from './kv.ts';
import { decodeBlock, type Block } from './block.ts';
import { genesisBlock, genesisLeaves, type ChainParams } from './genesis.ts';
import { encodeAccount } from './state.ts';
import { SortedTreeBuilder } from './smt-build.ts';
import { storesNode } from './tree-store.ts';

/** Operations a batch when the genesis state is written: a genesis of a million accounts is ~3 million. */
const GENESIS_BATCH = 10_000;

/**
 * Writes block 0 and its state into an empty store: the accounts and the tree's nodes made in one
 * pass over the genesis leaves (ledger/smt-build.ts), a batch every GENESIS_BATCH operations, the
 * genesis mark in the last. A store without the mark is cleared and written again on its next
 * open, so a kill part way leaves nothing that is read, whatever genesis comes next; a small genesis is one batch. (As one batch over a tree in
 * memory, a genesis of a million accounts needed several GB of heap.) Block 0 is made with the root
 * this pass builds, and returned: the root is not computed a second time.
 */
export async function writeGenesis(kv: KvStore, params: ChainParams): Promise<Block> {
  // What a write cut short left: with another genesis.json its accounts and tree nodes would stay
  // beside the new ones (a tree the next open refuses for good, accounts nobody was given).
  await kv.clear(layout.range('A'));
  await kv.clear(layout.range('S'));
  let ops: BatchOp[] = [];
  const flush = async () => {
    if (ops.length > 0) await kv.write(ops);
    ops = [];
  };
  const builder = new SortedTreeBuilder((id, node) => {
    if (storesNode(id, node)) ops.push({ type: 'put', key: layout.stateNode(id), value: node });
  });
  const leaves = genesisLeaves(params);
  for (let lo = 0; lo < leaves.length; ) {
    const first = leaves[lo]!.key[0]!;
    let hi = lo;
    while (hi < leaves.length && leaves[hi]!.key[0] === first) hi++;
    const group = leaves.slice(lo, hi);
    for (const leaf of group) ops.push({ type: 'put', key: layout.account(leaf.address), value: encodeAccount(leaf.account) });
    builder.addGroup(first, group);
    if (ops.length >= GENESIS_BATCH) await flush();
    lo = hi;
  }
  const genesis = genesisBlock(params, builder.finish());
  const hash = genesis.header.hash;
  ops.push(
    { type: 'put', key: layout.network, value: new TextEncoder().encode(params.name) },
    layoutMark(),
    { type: 'put', key: layout.block(hash), value: genesis.bytes },
    { type: 'put', key: layout.height(0), value: hash },
    { type: 'put', key: layout.tip, value: hash },
    // In the last batch: its presence means the rest is there.
    { type: 'put', key: layout.genesis, value: hash },
  );
  await flush();
  return genesis;
}

/**
 * Block 0 of a store whose genesis mark is `hash`, if it is the genesis of `params`; undefined if
 * not. The state root is taken from the stored header rather than computed: the header's Merkle
 * root commits to every parameter, the allocations included, so a header made from `params` with
 * the stored root hashes to the mark only if the allocations are those the store was written from,
 * and writeGenesis built that root from them. Computing it is one pass over every allocation
 * (12-17 s at a million accounts), on every open.
 */
export async function storedGenesis(kv: KvStore, params: ChainParams, hash: Uint8Array): Promise<Block | undefined> {
  const bytes = await kv.get(layout.block(hash));
  if (bytes === undefined) throw new StoreError('STORE_CORRUPT', 'the store marks a genesis block it does not hold');
  let stored: Block;
  try {
    stored = decodeBlock(bytes);
  } catch (err) {
    throw new StoreError('STORE_CORRUPT', `the stored genesis block does not decode: ${(err as Error).message}`);
  }
  if (!bytesEqual(stored.header.hash, hash)) throw new StoreError('STORE_CORRUPT', 'the stored genesis block does not hash to the genesis the store is marked with');
  const genesis = genesisBlock(params, stored.header.stateRoot);
  return bytesEqual(genesis.header.hash, hash) ? genesis : undefined;
}

/** The put that marks a store as of this layout (ledger/layout.ts STORE_LAYOUT). */
export function layoutMark(): BatchOp {
  return { type: 'put', key: layout.layoutVersion, value: new Writer(4).u32(STORE_LAYOUT).finish() };
}

/**
 * Refuses a store of a layout newer than this node's (its `M "layout"`, `stored`) before anything
 * else is read or written: this node would read its keys as its own (an undo record, an index
 * record of another shape) and could fail deep in a reorganisation, or answer wrong. Whether the
 * store is marked: a store written before the mark existed is of a layout this node reads (the
 * open migrates what it must, as ledger/tree-store.ts does the tree's older depths), and is
 * marked once it opened.
 */
export function checkStoreLayout(stored: Uint8Array | undefined): boolean {
  if (stored === undefined) return false;
  if (stored.length !== 4) throw new StoreError('STORE_CORRUPT', `the store's layout mark is not a version: ${toHex(stored)}`);
  const version = new DataView(stored.buffer, stored.byteOffset, 4).getUint32(0);
  if (version > STORE_LAYOUT) {
    throw new StoreError('STORE_TOO_NEW', `this store was written by a newer version of Cairn (store layout ${version}; this version reads layout ${STORE_LAYOUT}): open it with that version or a later one; nothing in it was changed`);
  }
  if (version < 1) throw new StoreError('STORE_CORRUPT', `the store's layout mark is ${version}, which no version of Cairn writes`);
  return true;
}
