import { bytesEqual, toHex } from '../ledger/bytes.ts';
import { StoreError } from '../ledger/errors.ts';
import { changesOfUndo, stateKey, type TreeNodeReader, type TreeWrite } from '../ledger/smt.ts';
import { updateTree } from '../ledger/smt-update.ts';
import { encodeAccountProof, proveKeys, type AccountProof } from '../ledger/smt-proof.ts';
import type { PinnedState } from '../ledger/pinned-state.ts';
import { proveTransaction, encodeTxProof } from '../ledger/tx-proof.ts';
import type { BlockHeader } from '../ledger/block.ts';
import type { Chain } from './chain.ts';

/**
 * Proofs of what the main chain holds. The store keeps one state tree, the tip's; the tree at an
 * older main-chain block is the tip's with the undo records of the blocks above it applied in
 * memory, newest first, each step checked against the state root of the block below. That costs
 * the changes of every block rolled back (seconds, for 16 full blocks), so a caller says how deep
 * it will go, and it is done after the import lock is let go: between two imports the tip's tree
 * is pinned (ChainDB.pinState), and the roll-back reads that while blocks go on importing.
 */
export type ProofRefusal = 'not-on-main-chain' | 'too-deep' | 'pruned';

/** A main-chain block a proof is made at: an index entry, or a header read by height. */
type ProofBlock = Pick<BlockHeader, 'height' | 'hash'>;

/** A tree of nodes written in memory over another (a pinned state's), for states that are not the tip's. */
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

/** What a proof below the tip reads after the import lock is let go: the tip's state pinned, and the headers from its block up to that tip. */
interface PinnedRollBack {
  readonly state: PinnedState;
  readonly headers: readonly BlockHeader[];
}

/**
 * Account proofs of `addresses` against the state root of main-chain block `at`, at most `maxDepth`
 * blocks below the tip. Rolling back to it needs the undo data of every block above it, which a
 * pruned node keeps only so deep (ledger/history.ts): below that it answers 'pruned'. Headers are
 * read by height, so `at` may be below the block index's window.
 *
 * It pauses imports itself, only to pin the state: never call it from inside
 * Chain.withImportsPaused, where it would wait for itself.
 */
export async function proveAccountsAt(chain: Chain, at: ProofBlock, addresses: readonly Uint8Array[], maxDepth: number): Promise<Uint8Array[] | ProofRefusal> {
  const keys = addresses.map(stateKey);
  const pinned = await chain.withImportsPaused(async (): Promise<PinnedRollBack | ProofRefusal | { proofs: AccountProof[] }> => {
    const tip = chain.tip;
    if (at.height > tip.height || !(await chain.byHeight.isMain(at.hash, at.height))) return 'not-on-main-chain';
    if (tip.height - at.height > maxDepth) return 'too-deep';
    // At the tip nothing is rolled back: made here, from the tip's tree and its caches, in a millisecond or less.
    if (at.height === tip.height) return { proofs: await proveKeys(chain.db, keys) };
    // No undo data up to the pruning mark, nor for the block a snapshot sync began the state at
    // (its state was installed, not reached by connecting it): the mark is one below that block.
    const history = chain.db.history;
    if (at.height < Math.max(history.prunedHeight, history.stateBase)) return 'pruned';
    const headers = await chain.byHeight.headers(at.height, tip.height - at.height + 1);
    if (headers.length !== tip.height - at.height + 1) throw new StoreError('STORE_CORRUPT', `main-chain headers missing between heights ${at.height} and ${tip.height}`);
    return { state: await chain.db.pinState(), headers };
  });
  if (typeof pinned === 'string') return pinned;
  if ('proofs' in pinned) return pinned.proofs.map(encodeAccountProof);
  try {
    return (await proveKeys(await rolledBack(pinned), keys)).map(encodeAccountProof);
  } finally {
    await pinned.state.close();
  }
}

/** The pinned tree with the blocks above the lowest header undone, newest first, each checked against its parent's state root. */
async function rolledBack({ state, headers }: PinnedRollBack): Promise<TreeNodeReader> {
  const overlay = new TreeOverlay(state);
  for (let i = headers.length - 1; i > 0; i--) {
    const block = headers[i]!;
    const parent = headers[i - 1]!;
    // The state was pinned above the pruning mark, and its store with it: pruning since took nothing from it.
    const undo = await state.getUndo(block.hash);
    if (!undo) throw new StoreError('STORE_CORRUPT', `main-chain block ${toHex(block.hash)} has no undo data`);
    const update = await updateTree(overlay, changesOfUndo(undo));
    if (!bytesEqual(update.root, parent.stateRoot)) {
      throw new StoreError('STORE_CORRUPT', `rolling back ${toHex(block.hash)} leaves state root ${toHex(update.root)}, not its parent's`);
    }
    overlay.apply(update.writes);
  }
  return overlay;
}

/** A confirmed transaction's proof, with the header it proves against; undefined if it is not on the main chain. */
export async function proveTransactionById(chain: Chain, txid: Uint8Array): Promise<{ header: BlockHeader; proof: Uint8Array } | undefined> {
  const location = await chain.db.getTxLocation(txid);
  if (!location) return undefined;
  const block = await chain.db.getBlock(location.blockHash);
  if (!block || !(await chain.byHeight.isMain(block.header.hash, block.header.height))) return undefined;
  return { header: block.header, proof: encodeTxProof(proveTransaction(block, location.index)) };
}
