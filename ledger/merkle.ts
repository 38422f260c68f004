import { sha256 } from './hash.ts';

/**
 * The Merkle tree hash of RFC 6962 over 32-byte ids. Leaves and inner nodes are hashed with
 * different prefixes and an odd node is never paired with itself, so no two lists of ids share
 * a root: the duplicated-last-leaf ambiguity behind Bitcoin's CVE-2012-2459 cannot arise.
 */
export function merkleRoot(ids: readonly Uint8Array[]): Uint8Array {
  return merkleRootOfLeaves(ids.map(merkleLeaf));
}

const leafInput = new Uint8Array(33);

/** The leaf hash of one id, H(0x00 ‖ id): what a transaction keeps, so a block's root costs only its inner nodes. */
export function merkleLeaf(id: Uint8Array): Uint8Array {
  leafInput[0] = 0;
  leafInput.set(id, 1);
  // On the V8 heap (sha256 of a short message makes a plain Uint8Array): a transaction keeps its
  // leaf, and a Buffer's own malloc'd backing store per transaction made a busy node's native memory grow.
  return sha256(leafInput);
}

/** The root over leaf hashes already made by `merkleLeaf`. */
const nodeInput = new Uint8Array(65);

export function merkleRootOfLeaves(leaves: readonly Uint8Array[]): Uint8Array {
  if (leaves.length === 0) throw new RangeError('a Merkle tree needs at least one leaf');
  // A block with no transactions, the commonest: its root is its coinbase's leaf.
  if (leaves.length === 1) return leaves[0]!.slice();
  // Bottom-up, an unpaired last node moving up unhashed: the same tree as RFC 6962's recursive
  // split at the largest power of two below n, without recursion or a hash object per node.
  const scratch = nodeInput;
  scratch[0] = 1;
  let level = leaves;
  while (level.length > 1) {
    const next: Uint8Array[] = [];
    for (let i = 0; i + 1 < level.length; i += 2) {
      scratch.set(level[i]!, 1);
      scratch.set(level[i + 1]!, 33);
      next.push(sha256(scratch));
    }
    if (level.length % 2 === 1) next.push(level[level.length - 1]!);
    level = next;
  }
  return new Uint8Array(level[0]!);
}

/** One step of an audit path: the sibling's hash, and whether it sits left of the path. */
export interface PathStep {
  readonly hash: Uint8Array;
  readonly left: boolean;
}

/**
 * The audit path of leaf `index` (RFC 6962 §2.1.1, PATH): the sibling hashes from the leaf up,
 * each with its side. A node with no sibling at its level (the last of an odd level, which moves
 * up unhashed) adds no step.
 */
export function merkleAuditPath(leaves: readonly Uint8Array[], index: number): PathStep[] {
  if (!Number.isInteger(index) || index < 0 || index >= leaves.length) throw new RangeError(`no leaf ${index} among ${leaves.length}`);
  const path: PathStep[] = [];
  const scratch = new Uint8Array(65);
  scratch[0] = 1;
  let level = leaves;
  let i = index;
  while (level.length > 1) {
    const sibling = i ^ 1;
    if (sibling < level.length) path.push({ hash: new Uint8Array(level[sibling]!), left: sibling < i });
    const next: Uint8Array[] = [];
    for (let j = 0; j + 1 < level.length; j += 2) {
      scratch.set(level[j]!, 1);
      scratch.set(level[j + 1]!, 33);
      next.push(sha256(scratch));
    }
    if (level.length % 2 === 1) next.push(level[level.length - 1]!);
    level = next;
    i >>>= 1;
  }
  return path;
}

/** The root a path leads to from leaf hash `leaf`: H(01 ‖ left ‖ right) at each step. */
export function merkleRootFromPath(leaf: Uint8Array, path: readonly PathStep[]): Uint8Array {
  const scratch = new Uint8Array(65);
  scratch[0] = 1;
  let r = leaf;
  for (const step of path) {
    scratch.set(step.left ? step.hash : r, 1);
    scratch.set(step.left ? r : step.hash, 33);
    r = sha256(scratch);
  }
  return new Uint8Array(r);
}
