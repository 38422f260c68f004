import { bytesEqual, toHex } from '../ledger/bytes.ts';
import { StoreError } from '../ledger/errors.ts';
import { changesOfUndo, stateKey, type TreeNodeReader, type TreeWrite } from '../ledger/smt.ts';
import { updateTree } from '../ledger/smt-update.ts';
import { encodeAccountProof, proveKeys } from '../ledger/smt-proof.ts';
import { proveTransaction, encodeTxProof } from '../ledger/tx-proof.ts';
import type { BlockHeader } from '../ledger/block.ts';
import type { Chain } from './chain.ts';

/**
 * Proofs of what the main chain holds. The store keeps one state tree, the tip's; the tree at an
 * older main-chain block is the tip's with the undo records of the blocks above it applied in
 * memory, newest first, each step checked against the state root of the block below. That costs
 * the changes of every block rolled back, so a caller says how deep it will go.
 *
 * Call between imports (Chain.withImportsPaused): the tip and its tree must not move meanwhile.
 */
export type ProofRefusal = 'not-on-main-chain' | 'too-deep' | 'pruned';

/** A main-chain block a proof is made at: an index entry, or a header read by height. */
type ProofBlock = Pick<BlockHeader, 'height' | 'hash'>;

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

/**
 * The state tree after main-chain block `at`, at most `maxDepth` blocks below the tip. Rolling back
 * to it needs the undo data of every block above it, which a pruned node keeps only so deep
 * (ledger/history.ts): below that it answers 'pruned'. Headers are read by height, so `at` may
 * be below the block index's window.
 */
export async function treeAt(chain: Chain, at: ProofBlock, maxDepth: number): Promise<TreeNodeReader | ProofRefusal> {
  const tip = chain.tip;
  if (at.height > tip.height || !(await chain.byHeight.isMain(at.hash, at.height))) return 'not-on-main-chain';
  if (tip.height - at.height > maxDepth) return 'too-deep';
  if (at.height === tip.height) return chain.db;
  const history = chain.db.history;
  // No undo data up to the pruning mark, nor for the block a snapshot sync began the state at
  // (its state was installed, not reached by connecting it): the mark is one below that block.
  const kept = () => Math.max(history.prunedHeight, history.stateBase);
  if (at.height < kept()) return 'pruned';
  const headers = await chain.byHeight.headers(at.height, tip.height - at.height + 1);
  if (headers.length !== tip.height - at.height + 1) throw new StoreError('STORE_CORRUPT', `main-chain headers missing between heights ${at.height} and ${tip.height}`);
  const overlay = new TreeOverlay(chain.db);
  for (let i = headers.length - 1; i > 0; i--) {
    const block = headers[i]!;
    const parent = headers[i - 1]!;
    const undo = await chain.db.getUndo(block.hash);
    if (!undo) {
      // Pruning runs beside proofs, between imports: it may have passed this height meanwhile.
      if (block.height <= kept()) return 'pruned';
      throw new StoreError('STORE_CORRUPT', `main-chain block ${toHex(block.hash)} has no undo data`);
    }
    const update = await updateTree(overlay, changesOfUndo(undo));
    if (!bytesEqual(update.root, parent.stateRoot)) {
      throw new StoreError('STORE_CORRUPT', `rolling back ${toHex(block.hash)} leaves state root ${toHex(update.root)}, not its parent's`);
    }
    overlay.apply(update.writes);
  }
  return overlay;
}

/** Account proofs of `addresses` against the state root of main-chain block `at`. */
export async function proveAccountsAt(chain: Chain, at: ProofBlock, addresses: readonly Uint8Array[], maxDepth: number): Promise<Uint8Array[] | ProofRefusal> {
  const tree = await treeAt(chain, at, maxDepth);
  if (typeof tree === 'string') return tree;
  return (await proveKeys(tree, addresses.map(stateKey))).map(encodeAccountProof);
}

/** A confirmed transaction's proof, with the header it proves against; undefined if it is not on the main chain. */
export async function proveTransactionById(chain: Chain, txid: Uint8Array): Promise<{ header: BlockHeader; proof: Uint8Array } | undefined> {
  const location = await chain.db.getTxLocation(txid);
  if (!location) return undefined;
  const block = await chain.db.getBlock(location.blockHash);
  if (!block || !(await chain.byHeight.isMain(block.header.hash, block.header.height))) return undefined;
  return { header: block.header, proof: encodeTxProof(proveTransaction(block, location.index)) };
}
