import type { Account } from './state.ts';
import { EMPTY_HASH, bitAt, innerNode, leafNode, nodeHash, type StateChange } from './smt.ts';

/**
 * The state tree in memory, persistent: an update returns a new tree that shares every untouched
 * subtree with the old one, which stays valid. For blocks made outside a node — test fixtures,
 * benchmarks, the simulator's history and private chains — where each block needs the root of its
 * parent's state plus its own changes, and a whole store per block would be too much. The same
 * tree as ledger/smt.ts (the tests hold the two to each other and to a naive reference).
 */
type MemNode =
  | { readonly leaf: true; readonly key: Uint8Array; readonly account: Account; readonly hash: Uint8Array }
  | { readonly leaf: false; readonly left: MemNode | null; readonly right: MemNode | null; readonly hash: Uint8Array };

interface KeyedChange {
  readonly key: Uint8Array;
  readonly text: string;
  readonly account: Account | undefined;
}

const text = (key: Uint8Array): string => String.fromCharCode.apply(null, key as unknown as number[]);

export class MemoryStateTree {
  private readonly top: MemNode | null;

  private constructor(top: MemNode | null) {
    this.top = top;
  }

  static readonly EMPTY = new MemoryStateTree(null);

  get root(): Uint8Array {
    return this.top ? new Uint8Array(this.top.hash) : EMPTY_HASH;
  }

  /** The account at `key` (ledger/smt.ts stateKey), if there is one. */
  get(key: Uint8Array): Account | undefined {
    let node = this.top;
    for (let depth = 0; node && !node.leaf; depth++) node = bitAt(key, depth) === 0 ? node.left : node.right;
    return node && bytesSame(node.key, key) ? node.account : undefined;
  }

  /**
   * The node a store must hold at position `id` (ledger/smt.ts positionId), or `undefined` where
   * it must hold none: for checking a stored tree against this one, node by node.
   */
  nodeAt(id: string): Uint8Array | undefined {
    const depth = id.charCodeAt(0);
    let node = this.top;
    for (let d = 0; node && d < depth; d++) {
      if (node.leaf) return undefined;
      const bit = (id.charCodeAt(1 + (d >>> 3)) >>> (7 - (d & 7))) & 1;
      node = bit === 0 ? node.left : node.right;
    }
    if (!node) return undefined;
    return node.leaf ? leafNode(node.key, node.account) : innerNode(node.left?.hash ?? EMPTY_HASH, node.right?.hash ?? EMPTY_HASH);
  }

  /** How many nodes the tree has from `depth` down, and leaves above it: what a store keeping only those holds. */
  storedNodeCount(depth: number): number {
    const count = (node: MemNode | null, d: number): number =>
      node === null ? 0 : node.leaf ? 1 : (d >= depth ? 1 : 0) + count(node.left, d + 1) + count(node.right, d + 1);
    return count(this.top, 0);
  }

  /** The tree with `changes` applied (each key at most once); this one is unchanged. */
  with(changes: readonly StateChange[]): MemoryStateTree {
    if (changes.length === 0) return this;
    const sorted: KeyedChange[] = changes.map((c) => ({ key: c.key, text: text(c.key), account: c.account }));
    sorted.sort((a, b) => (a.text < b.text ? -1 : a.text > b.text ? 1 : 0));
    return new MemoryStateTree(update(this.top, 0, sorted));
  }
}

function update(node: MemNode | null, depth: number, changes: readonly KeyedChange[]): MemNode | null {
  if (changes.length === 0) return node;
  if (node === null || node.leaf) {
    const entries = changes.filter((c) => c.account !== undefined).map((c) => ({ key: c.key, node: leaf(c.key, c.account!) }));
    if (node !== null && !changes.some((c) => bytesSame(c.key, node.key))) entries.push({ key: node.key, node });
    return build(entries, depth);
  }
  const mid = firstOne(changes, depth);
  return join(update(node.left, depth + 1, changes.slice(0, mid)), update(node.right, depth + 1, changes.slice(mid)));
}

function build(entries: { key: Uint8Array; node: MemNode }[], depth: number): MemNode | null {
  if (entries.length === 0) return null;
  if (entries.length === 1) return entries[0]!.node;
  const left = entries.filter((e) => bitAt(e.key, depth) === 0);
  const right = entries.filter((e) => bitAt(e.key, depth) === 1);
  return join(build(left, depth + 1), build(right, depth + 1));
}

/** An inner node over two subtrees, or the one leaf they hold between them. */
function join(left: MemNode | null, right: MemNode | null): MemNode | null {
  if (left === null && (right === null || right.leaf)) return right;
  if (right === null && left!.leaf) return left;
  return { leaf: false, left, right, hash: nodeHash(innerNode(left?.hash ?? EMPTY_HASH, right?.hash ?? EMPTY_HASH)) };
}

function leaf(key: Uint8Array, account: Account): MemNode {
  return { leaf: true, key, account, hash: nodeHash(leafNode(key, account)) };
}

function firstOne(changes: readonly KeyedChange[], depth: number): number {
  let i = 0;
  while (i < changes.length && bitAt(changes[i]!.key, depth) === 0) i++;
  return i;
}

function bytesSame(a: Uint8Array, b: Uint8Array): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
