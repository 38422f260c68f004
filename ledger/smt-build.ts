import type { Account } from './state.ts';
import { EMPTY_HASH, bitAt, compareKeys, innerNode, leafNode, nodeHash, positionId } from './smt.ts';

/**
 * The state tree (ledger/smt.ts) built in one pass from its leaves in key order, rather than
 * updated from a block's changes: what a snapshot needs — a serving node's copy of the state at a
 * snapshot height, a joining node's tree from the chunks it fetched, a chunk's own subtree in its
 * range proof. A subtree's summary is what its parent needs to know of it: empty, a single leaf
 * (which the parent may lift further up, single-leaf subtrees being collapsed) or an inner node.
 */
export interface SortedLeaf {
  readonly key: Uint8Array;
  readonly account: Account;
}

export type Subtree =
  | { readonly kind: 'empty'; readonly hash: Uint8Array }
  | { readonly kind: 'leaf'; readonly hash: Uint8Array; readonly key: Uint8Array; readonly node: Uint8Array }
  | { readonly kind: 'inner'; readonly hash: Uint8Array };

export const EMPTY_SUBTREE: Subtree = { kind: 'empty', hash: EMPTY_HASH };

/** Called with every node the tree holds at its position (ledger/smt.ts positionId), once. */
export type EmitNode = (id: string, node: Uint8Array) => void;

export function leafSubtree(key: Uint8Array, account: Account): Subtree {
  const node = leafNode(key, account);
  return { kind: 'leaf', hash: nodeHash(node), key, node };
}

/**
 * The subtree at `depth` over `leaves[lo, hi)` (sorted, distinct, all sharing the position's first
 * `depth` bits). Every node strictly inside it is emitted; the subtree's own node is the caller's
 * to place, since a single leaf moves up to where it is alone.
 */
export function buildSubtree(leaves: readonly SortedLeaf[], depth: number, emit?: EmitNode, lo = 0, hi = leaves.length): Subtree {
  if (hi - lo === 0) return EMPTY_SUBTREE;
  if (hi - lo === 1) return leafSubtree(leaves[lo]!.key, leaves[lo]!.account);
  // The first leaf whose bit at `depth` is 1: sorted keys under one position put the 0s first.
  let a = lo;
  let b = hi;
  while (a < b) {
    const mid = (a + b) >>> 1;
    if (bitAt(leaves[mid]!.key, depth) === 0) a = mid + 1;
    else b = mid;
  }
  const left = buildSubtree(leaves, depth + 1, emit, lo, a);
  const right = buildSubtree(leaves, depth + 1, emit, a, hi);
  return joinSubtrees(left, right, depth, leaves[lo]!.key, emit);
}

/**
 * The subtree at `depth` on `key`'s path whose halves are `left` and `right`: empty, a lone leaf
 * lifted, or an inner node (its children emitted where a leaf ends up below it).
 */
export function joinSubtrees(left: Subtree, right: Subtree, depth: number, key: Uint8Array, emit?: EmitNode): Subtree {
  if (left.kind === 'empty' && right.kind !== 'inner') return right;
  if (right.kind === 'empty' && left.kind === 'leaf') return left;
  if (emit) {
    if (left.kind === 'leaf') emit(positionId(left.key, depth + 1), left.node);
    if (right.kind === 'leaf') emit(positionId(right.key, depth + 1), right.node);
  }
  const node = innerNode(left.hash, right.hash);
  emit?.(positionId(key, depth), node);
  return { kind: 'inner', hash: nodeHash(node) };
}

/** Places the root subtree: a lone leaf sits at depth 0. Returns the state root. */
export function placeRoot(root: Subtree, emit?: EmitNode): Uint8Array {
  if (root.kind === 'leaf') emit?.(positionId(root.key, 0), root.node);
  return root.hash;
}

/**
 * The whole tree from its leaves a first byte at a time (a depth-8 group each), so a caller can
 * stream millions of leaves from a store in key order and write what is emitted as it goes:
 * memory is one group and 256 summaries. Groups must come in increasing order, each sorted.
 */
export class SortedTreeBuilder {
  private readonly groups: Subtree[] = new Array(256).fill(EMPTY_SUBTREE);
  private readonly emit: EmitNode | undefined;
  private last = -1;
  private previous: Uint8Array | undefined;

  constructor(emit?: EmitNode) {
    this.emit = emit;
  }

  /** The leaves whose keys start with `firstByte`. */
  addGroup(firstByte: number, leaves: readonly SortedLeaf[]): void {
    if (firstByte <= this.last || firstByte > 255) throw new RangeError(`group ${firstByte} after ${this.last}`);
    for (const leaf of leaves) {
      if (leaf.key[0] !== firstByte) throw new RangeError('a leaf outside its group');
      if (this.previous && compareKeys(this.previous, leaf.key) >= 0) throw new RangeError('leaves out of key order');
      this.previous = leaf.key;
    }
    this.last = firstByte;
    this.groups[firstByte] = buildSubtree(leaves, 8, this.emit);
  }

  /** Joins the groups up to the root, emitting the nodes above depth 8; returns the root hash. */
  finish(): Uint8Array {
    let level = this.groups;
    for (let depth = 7; depth >= 0; depth--) {
      const up: Subtree[] = [];
      for (let i = 0; i < level.length; i += 2) {
        const key = new Uint8Array(32);
        key[0] = (i << (7 - depth)) & 0xff;
        up.push(joinSubtrees(level[i]!, level[i + 1]!, depth, key, this.emit));
      }
      level = up;
    }
    return placeRoot(level[0]!, this.emit);
  }
}
