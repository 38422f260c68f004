import { Reader, Writer, bytesEqual } from './bytes.ts';
import { DecodeError, ProofError } from './errors.ts';
import type { Block, BlockHeader } from './block.ts';
import { coinbaseId } from './block.ts';
import { merkleAuditPath, merkleLeaf, merkleRootFromPath, type PathStep } from './merkle.ts';
import { TX_BYTES, readTransaction, type Transaction } from './transaction.ts';

/**
 * A transaction's inclusion proof (docs/PROTOCOL.md, "Transaction proofs"): the transaction and
 * the audit path from its leaf to the header's Merkle root, each step with its side:
 *
 *   tx (166) ‖ count u8 ‖ sides (ceil(count/8) bytes) ‖ count × 32 path hashes, from the leaf up
 *
 * Bit i of `sides` (most significant first) is 1 when hash i sits left of the path. The sides say
 * where the leaf is, so no position or tree size travels (neither would be covered by the root).
 */
export interface TxProof {
  readonly tx: Transaction;
  readonly path: readonly PathStep[];
}

/** A tree of 2^32 leaves has 32 levels. */
const MAX_PATH = 32;

/** The proof of the block's transaction at `position` (from 0; its leaf is position + 1, the coinbase is leaf 0). */
export function proveTransaction(block: Block, position: number): TxProof {
  const tx = block.txs[position];
  if (!tx) throw new RangeError(`the block has no transaction ${position}`);
  const leaves = [merkleLeaf(coinbaseId(block.header.height, block.coinbase)), ...block.txs.map((t) => t.merkleLeaf)];
  return { tx, path: merkleAuditPath(leaves, position + 1) };
}

export function encodeTxProof(proof: TxProof): Uint8Array {
  const n = proof.path.length;
  const sides = new Uint8Array((n + 7) >>> 3);
  proof.path.forEach((step, i) => {
    if (step.left) sides[i >>> 3]! |= 0x80 >>> (i & 7);
  });
  const w = new Writer(TX_BYTES + 1 + sides.length + n * 32).bytes(proof.tx.bytes, TX_BYTES).u8(n).bytes(sides);
  for (const step of proof.path) w.bytes(step.hash, 32);
  return w.finish();
}

export function decodeTxProof(bytes: Uint8Array): TxProof {
  const r = new Reader(bytes);
  const tx = readTransaction(r);
  const n = r.u8('proof path length');
  if (n > MAX_PATH) throw new DecodeError('DECODE_OVER_LIMIT', `a path of ${n} hashes`);
  const sides = r.bytes((n + 7) >>> 3, 'proof sides');
  if (n & 7 && (sides.at(-1)! & (0xff >>> (n & 7))) !== 0) throw new DecodeError('DECODE_NON_CANONICAL', 'proof sides has bits set past its path');
  const path: PathStep[] = [];
  for (let i = 0; i < n; i++) path.push({ hash: r.bytes(32, 'proof path hash'), left: (sides[i >>> 3]! & (0x80 >>> (i & 7))) !== 0 });
  r.end('transaction proof');
  return { tx, path };
}

/** The transaction `proofBytes` proves is in the block of `header`; throws DecodeError or ProofError otherwise. */
export function verifyTxProof(header: BlockHeader, proofBytes: Uint8Array): TxProof {
  const proof = decodeTxProof(proofBytes);
  if (!bytesEqual(merkleRootFromPath(proof.tx.merkleLeaf, proof.path), header.merkleRoot)) {
    throw new ProofError("the path does not lead to the header's Merkle root");
  }
  return proof;
}
