import { bytesEqual, toHex } from '../ledger/bytes.ts';
import { StoreError } from '../ledger/errors.ts';
import { changesOfUndo, stateKey, type TreeNodeReader, type TreeWrite } from '../ledger/smt.ts';
import { updateTree } from '../ledger/smt-update.ts';
import { encodeAccountProof, proveKeys } from '../ledger/smt-proof.ts';
import { proveTransaction, encodeTxProof } from '../ledger/tx-proof.ts';
import type { BlockHeader } from '../ledger/block.ts';
import type { BlockIndexEntry } from './block-index.ts';
import type { Chain } from './chain.ts';

/**
 * Proofs of what the main chain holds. The store keeps one state tree, the tip's; the tree at an
 * older main-chain block is the tip's with the undo records of the blocks above it applied in
 * memory, newest first, each step checked against the state root of the block below. That costs
 * the changes of every block rolled back, so a caller says how deep it will go.
 *
 * Call between imports (Chain.withImportsPaused): the tip and its tree must not move meanwhile.
 */
export type ProofRefusal = 'not-on-main-chain' | 'too-deep';

/** A tree of nodes written in memory over another (the store's), for states that are not the tip's. */
class TreeOverlay implements TreeNodeReader {
  private readonly base: TreeNodeReader;
  private readonly nodes = new Map<string, Uint8Array | null>();

  constructor(base: TreeNodeReader) {
    this.base = base;
  }

  async readNodes(ids: readonly string[]): Promise<(Uint8Array | undefined)[]> {
    const out: (Uint8Array | undefined)[] = new Array(ids.length);
    const missing: number[] = [];
    ids.forEach((id, i) => {
      const own = this.nodes.get(id);
      if (own === undefined) missing.push(i);
      else out[i] = own ?? undefined;
    });
    if (missing.length > 0) {
      const found = await this.base.readNodes(missing.map((i) => ids[i]!));
      missing.forEach((i, k) => (out[i] = found[k]));
    }
    return out;
  }

  apply(writes: readonly TreeWrite[]): void {
    for (const w of writes) this.nodes.set(w.id, w.node);
  }
}

/** The state tree after main-chain block `entry`, at most `maxDepth` blocks below the tip. */
export async function treeAt(chain: Chain, entry: BlockIndexEntry, maxDepth: number): Promise<TreeNodeReader | ProofRefusal> {
  if (!chain.isMain(entry)) return 'not-on-main-chain';
  const tip = chain.tip;
  if (tip.height - entry.height > maxDepth) return 'too-deep';
  if (entry === tip) return chain.db;
  const overlay = new TreeOverlay(chain.db);
  for (let e = tip; e !== entry; e = e.parent!) {
    const undo = await chain.db.getUndo(e.hash);
    if (!undo) throw new StoreError('STORE_CORRUPT', `main-chain block ${e.hashHex} has no undo data`);
    const update = await updateTree(overlay, changesOfUndo(undo));
    if (!bytesEqual(update.root, e.parent!.header.stateRoot)) {
      throw new StoreError('STORE_CORRUPT', `rolling back ${e.hashHex} leaves state root ${toHex(update.root)}, not its parent's`);
    }
    overlay.apply(update.writes);
  }
  return overlay;
}

/** Account proofs of `addresses` against the state root of main-chain block `entry`. */
export async function proveAccountsAt(chain: Chain, entry: BlockIndexEntry, addresses: readonly Uint8Array[], maxDepth: number): Promise<Uint8Array[] | ProofRefusal> {
  const tree = await treeAt(chain, entry, maxDepth);
  if (typeof tree === 'string') return tree;
  return (await proveKeys(tree, addresses.map(stateKey))).map(encodeAccountProof);
}

/** A confirmed transaction's proof, with the header it proves against; undefined if it is not on the main chain. */
export async function proveTransactionById(chain: Chain, txid: Uint8Array): Promise<{ header: BlockHeader; proof: Uint8Array } | undefined> {
  const location = await chain.db.getTxLocation(txid);
  if (!location) return undefined;
  const block = await chain.db.getBlock(location.blockHash);
  const entry = chain.getEntry(location.blockHash);
  if (!block || !entry || !chain.isMain(entry)) return undefined;
  return { header: block.header, proof: encodeTxProof(proveTransaction(block, location.index)) };
}
