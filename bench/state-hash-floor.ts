import { connectBlock } from '../consensus/connect.ts';
import type { SaneBlock } from '../consensus/sanity.ts';
import { bytesEqual, toHex } from '../ledger/bytes.ts';
import { ChainDB } from '../ledger/chaindb.ts';
import { genesisChanges, type ChainParams } from '../ledger/genesis.ts';
import { InnerHashQueue } from '../ledger/inner-hashes.ts';
import { INNER_PREFIX, changesOfEffects, nodeHashInto, stateKey, type StateChange, type TreeNodeReader } from '../ledger/smt.ts';
import { updateTree } from '../ledger/smt-update.ts';
import type { Block } from '../ledger/block.ts';
import { uncheckedSignatures } from '../test/helpers/fixtures.ts';
import type { SuiteContext } from './report.ts';

/**
 * The SHA-256 work a chain's state roots need, and nothing else: issue #16 asks that connecting
 * blocks stay within 15% of its throughput before the state root, and this is the part of the
 * root's cost no implementation of the tree (docs/PROTOCOL.md) can skip. Per block: the tree key
 * of every address a fresh store has not seen (ChainDB's StateKeys hashes each once), every leaf
 * the update writes (a new or changed account, or one pushed down by a new neighbour), and every
 * inner node it writes, a level at a time through the same native queue phase 2 uses.
 */
export interface HashWork {
  readonly blocks: readonly BlockHashWork[];
  readonly txs: number;
}

/** One block's: the addresses whose keys are hashed, and the nodes whose hashes the root needs. */
interface BlockHashWork {
  readonly addresses: Uint8Array[];
  readonly leaves: Uint8Array[];
  readonly inner: { depth: number; node: Uint8Array }[];
}

/**
 * Connects `chain` once (untimed) to learn each block's changes, and replays them on a tree kept in
 * a map, whose every update's root must be the header's: what is collected is the node's own tree.
 */
export async function collectHashWork(ctx: SuiteContext, params: ChainParams, chain: readonly Block[]): Promise<HashWork> {
  const nodes = new Map<string, Uint8Array>();
  const reader: TreeNodeReader = { readNodes: async (ids) => ids.map((id) => nodes.get(id)) };
  const apply = async (changes: readonly StateChange[]) => {
    const update = await updateTree(reader, changes);
    const leaves: Uint8Array[] = [];
    const inner: { depth: number; node: Uint8Array }[] = [];
    for (const { id, node } of update.writes) {
      if (node === null) {
        nodes.delete(id);
        continue;
      }
      const copy = node.slice(); // the update's nodes go back to its pool on release
      nodes.set(id, copy);
      if (copy[0] === INNER_PREFIX) inner.push({ depth: id.charCodeAt(0), node: copy });
      else leaves.push(copy);
    }
    update.release?.();
    return { root: update.root, leaves, inner };
  };
  await apply(genesisChanges(params));
  const dir = ctx.tempDir('cairn-bench-hashwork-');
  const db = await ChainDB.open(dir.path, params);
  const seen = new Set<string>();
  const blocks: BlockHashWork[] = [];
  let txs = 0;
  try {
    let tip = await db.storedTip();
    for (const block of chain) {
      const effects = await connectBlock(db, params, tip, block as SaneBlock, { signatures: uncheckedSignatures });
      tip = { hash: block.header.hash, height: block.header.height };
      const { root, leaves, inner } = await apply(changesOfEffects(effects));
      if (!bytesEqual(root, block.header.stateRoot)) throw new Error(`hash work: block ${block.header.height} leaves root ${toHex(root)}, not its header's`);
      const addresses = effects.accounts.filter((a) => !seen.has(a.key)).map((a) => a.address);
      for (const a of effects.accounts) seen.add(a.key);
      blocks.push({ addresses, leaves, inner });
      txs += block.txs.length;
    }
  } finally {
    await db.close();
    dir.remove();
  }
  return { blocks, txs };
}

const innerHashes = new InnerHashQueue();

/** Every hash of `work`, timed, in passes over it until `minMs` have gone by: nanoseconds per transaction. */
export function hashWorkNsPerTx(work: HashWork, minMs = 250): number {
  const out = new Uint8Array(32);
  const start = performance.now();
  let txs = 0;
  do {
    for (const block of work.blocks) {
      for (const address of block.addresses) stateKey(address);
      for (const leaf of block.leaves) nodeHashInto(leaf, out, 0);
      for (const { depth, node } of block.inner) innerHashes.add(depth, node, out, 0);
      innerHashes.run();
    }
    txs += work.txs;
  } while (performance.now() - start < minMs);
  return ((performance.now() - start) * 1e6) / txs;
}

/** What one block asks of SHA-256, on average over `work`. */
export function hashWorkPerBlock(work: HashWork): { addresses: number; leaves: number; inner: number } {
  const n = work.blocks.length;
  const sum = (f: (b: BlockHashWork) => number) => Math.round(work.blocks.reduce((s, b) => s + f(b), 0) / n);
  return { addresses: sum((b) => b.addresses.length), leaves: sum((b) => b.leaves.length), inner: sum((b) => b.inner.length) };
}
