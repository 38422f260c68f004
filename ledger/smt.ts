import { hash } from 'node:crypto';
import { ACCOUNT_BYTES, encodeAccount, type Account, type BlockEffects, type UndoRecord } from './state.ts';

/**
 * The state tree: a sparse Merkle tree over every account, keyed by `H(address)` (docs/PROTOCOL.md,
 * "The state tree"). A subtree with no account hashes to 32 zero bytes, a subtree with one account
 * is that account's leaf wherever it sits (single-leaf subtrees collapse, as in the Jellyfish Merkle
 * tree), and any other subtree is an inner node over its two halves: a path is about log2(accounts)
 * long however the keys fall.
 *
 * A node's stored bytes are exactly what its hash covers, so `H(node)` is its hash:
 *   leaf   00 ‖ key (32) ‖ account (16)        49 bytes
 *   inner  01 ‖ left hash (32) ‖ right hash (32)  65 bytes
 *
 * Nodes are stored by position: depth and the key's first `depth` bits (`positionId`). A position
 * is computable from a key alone, so every node a key's path may hold can be asked for at once,
 * and the store holds exactly the current tree: an update overwrites the positions it changes and
 * deletes the ones it empties. This file is the update; proofs are in smt-proof.ts.
 */
export const STATE_KEY_BYTES = 32;
export const EMPTY_HASH: Uint8Array = new Uint8Array(32);
export const LEAF_PREFIX = 0x00;
export const INNER_PREFIX = 0x01;
export const LEAF_NODE_BYTES = 1 + STATE_KEY_BYTES + ACCOUNT_BYTES;
export const INNER_NODE_BYTES = 1 + 32 + 32;

/** Where an account sits in the tree: `H(address)`, read as 256 bits, most significant first. */
export function stateKey(address: Uint8Array): Uint8Array {
  return new Uint8Array(hash('sha256', address, 'buffer'));
}

export function bitAt(key: Uint8Array, i: number): number {
  return (key[i >>> 3]! >>> (7 - (i & 7))) & 1;
}

export function leafNode(key: Uint8Array, account: Account): Uint8Array {
  const node = new Uint8Array(LEAF_NODE_BYTES);
  node[0] = LEAF_PREFIX;
  node.set(key, 1);
  node.set(encodeAccount(account), 1 + STATE_KEY_BYTES);
  return node;
}

export function innerNode(left: Uint8Array, right: Uint8Array): Uint8Array {
  const node = new Uint8Array(INNER_NODE_BYTES);
  node[0] = INNER_PREFIX;
  node.set(left, 1);
  node.set(right, 33);
  return node;
}

/** A node's hash: SHA-256 of its bytes (the prefix byte keeps leaves and inner nodes apart). */
export function nodeHash(node: Uint8Array): Uint8Array {
  return hash('sha256', node, 'buffer');
}

export function isInner(node: Uint8Array): boolean {
  return node[0] === INNER_PREFIX;
}

/** An inner node's child hash on side `bit` (0 left, 1 right). */
export function childHash(node: Uint8Array, bit: number): Uint8Array {
  return bit === 0 ? node.subarray(1, 33) : node.subarray(33, 65);
}

export function leafKey(node: Uint8Array): Uint8Array {
  return node.subarray(1, 1 + STATE_KEY_BYTES);
}

export function leafAccountBytes(node: Uint8Array): Uint8Array {
  return node.subarray(1 + STATE_KEY_BYTES);
}

const isEmptyHash = (h: Uint8Array): boolean => h.every((b) => b === 0);

/** A key as a string of 32 char codes 0–255, which sort and slice as the bytes do. */
function keyString(key: Uint8Array): string {
  return String.fromCharCode.apply(null, key as unknown as number[]);
}

/**
 * The id of the position at `depth` on `key`'s path: a string of char codes, the depth and then
 * the key's first `depth` bits in whole bytes, the bits past `depth` cleared. Store keys are
 * `S ‖ those bytes` (ledger/layout.ts).
 */
export function positionId(key: Uint8Array, depth: number, keyText: string = keyString(key)): string {
  const whole = depth >>> 3;
  const rest = depth & 7;
  const head = String.fromCharCode(depth) + keyText.slice(0, whole);
  return rest === 0 ? head : head + String.fromCharCode(key[whole]! & (0xff << (8 - rest)) & 0xff);
}

/** The bytes of a position id, as the store keys it (after its prefix byte). */
export function positionBytes(id: string): Uint8Array {
  const out = new Uint8Array(id.length);
  for (let i = 0; i < id.length; i++) out[i] = id.charCodeAt(i);
  return out;
}

export function positionIdOfBytes(bytes: Uint8Array): string {
  return String.fromCharCode.apply(null, bytes as unknown as number[]);
}

/** Where the tree's nodes are read from: the store (with what is queued for it), or an overlay on it. */
export interface TreeNodeReader {
  /** The node at each position, `undefined` where there is none. */
  readNodes(ids: readonly string[]): Promise<(Uint8Array | undefined)[]>;
}

/** One account's new value; `undefined` removes it (only disconnecting a block that created it does). */
export interface StateChange {
  readonly key: Uint8Array;
  readonly account: Account | undefined;
}

/** What connecting a block does to the tree: every account it touched, at its new value. */
export function changesOfEffects(effects: BlockEffects): StateChange[] {
  return effects.accounts.map((a) => ({ key: stateKey(a.address), account: a.account }));
}

/** What disconnecting it does: every account back to its value before, or gone if it was new. */
export function changesOfUndo(undo: readonly UndoRecord[]): StateChange[] {
  return undo.map((u) => ({ key: stateKey(u.address), account: u.previous }));
}

/** A position's new node, or `null`: the position is empty now. */
export interface TreeWrite {
  readonly id: string;
  readonly node: Uint8Array | null;
}

export interface TreeUpdate {
  /** The root hash after the changes. */
  readonly root: Uint8Array;
  /** Exactly the positions whose node changed, appeared or went away. */
  readonly writes: readonly TreeWrite[];
}

/** What a subtree became: its node (undefined: empty) and whether its position must be rewritten. */
interface Result {
  readonly node: Uint8Array | undefined;
  readonly hash: Uint8Array;
  /** The node differs from what its position held (or the position is new). */
  readonly changed: boolean;
  /** Known only to be non-empty: an untouched subtree whose node was not read. */
  readonly unknown?: boolean;
}

const EMPTY: Result = { node: undefined, hash: EMPTY_HASH, changed: false };

/** Sorted changes and what the first phase learnt about each span of them. */
class Batch {
  readonly keys: Uint8Array[];
  readonly texts: string[];
  readonly accounts: (Account | undefined)[];
  /** deletions[i] = removals among changes [0, i): whether a span holds one, in O(1). */
  private readonly deletions: number[];
  /** Nodes read, by position id; absent from the map = not read, `undefined` = read and empty. */
  readonly nodes = new Map<string, Uint8Array | undefined>();
  readonly writes: TreeWrite[] = [];

  constructor(changes: readonly StateChange[]) {
    const items = changes.map((c) => ({ text: keyString(c.key), change: c }));
    items.sort((a, b) => (a.text < b.text ? -1 : a.text > b.text ? 1 : 0));
    for (let i = 1; i < items.length; i++) {
      if (items[i]!.text === items[i - 1]!.text) throw new RangeError('a key changes twice in one tree update');
    }
    this.keys = items.map((i) => i.change.key);
    this.texts = items.map((i) => i.text);
    this.accounts = items.map((i) => i.change.account);
    this.deletions = [0];
    for (const a of this.accounts) this.deletions.push(this.deletions.at(-1)! + (a === undefined ? 1 : 0));
  }

  id(i: number, depth: number): string {
    return positionId(this.keys[i]!, depth, this.texts[i]!);
  }

  removes(lo: number, hi: number): boolean {
    return this.deletions[hi]! > this.deletions[lo]!;
  }

  /** The first change in [lo, hi) whose key has bit `depth` set (all share the bits before it). */
  split(lo: number, hi: number, depth: number): number {
    let a = lo;
    let b = hi;
    while (a < b) {
      const m = (a + b) >>> 1;
      if (bitAt(this.keys[m]!, depth) === 0) a = m + 1;
      else b = m;
    }
    return a;
  }

  put(id: string, node: Uint8Array): void {
    this.writes.push({ id, node });
  }

  remove(id: string): void {
    this.writes.push({ id, node: null });
  }
}

interface Span {
  readonly lo: number;
  readonly hi: number;
  readonly depth: number;
}

/**
 * Applies `changes` (each key at most once) to the tree `reader` holds and returns the new root
 * with the position writes that make the store hold the new tree. Reads level by level, all
 * paths of a level in one round trip; costs O(changes × depth) reads and hashes. Writes nothing.
 */
export async function updateTree(reader: TreeNodeReader, changes: readonly StateChange[]): Promise<TreeUpdate> {
  const batch = new Batch(changes);
  const rootId = String.fromCharCode(0);
  if (batch.keys.length === 0) {
    const [root] = await reader.readNodes([rootId]);
    return { root: root ? new Uint8Array(nodeHash(root)) : EMPTY_HASH, writes: [] };
  }
  await readPaths(reader, batch);
  const root = compute(batch, { lo: 0, hi: batch.keys.length, depth: 0 }, batch.nodes.get(rootId));
  if (root.node === undefined) {
    if (batch.nodes.get(rootId) !== undefined) batch.remove(rootId);
  } else if (root.changed) {
    batch.put(rootId, root.node);
  }
  return { root: new Uint8Array(root.hash), writes: batch.writes };
}

/**
 * Phase 1: every node on the changed keys' paths, down to where each path ends (a leaf or an empty
 * position), a level per round trip. Where a span removes accounts and its sibling is untouched,
 * the sibling is read too: if the span empties, a sibling leaf moves up (the collapse) and must be
 * known to be a leaf.
 */
async function readPaths(reader: TreeNodeReader, batch: Batch): Promise<void> {
  let spans: Span[] = [{ lo: 0, hi: batch.keys.length, depth: 0 }];
  let siblings: string[] = [];
  while (spans.length > 0 || siblings.length > 0) {
    const ids = spans.map((s) => batch.id(s.lo, s.depth));
    const asked = ids.concat(siblings);
    const found = await reader.readNodes(asked);
    for (let i = 0; i < asked.length; i++) batch.nodes.set(asked[i]!, found[i]);
    const next: Span[] = [];
    siblings = [];
    for (let s = 0; s < spans.length; s++) {
      const node = found[s];
      if (node === undefined || !isInner(node)) continue;
      const { lo, hi, depth } = spans[s]!;
      const mid = batch.split(lo, hi, depth);
      const sides: [number, number][] = [[lo, mid], [mid, hi]];
      for (let bit = 0; bit < 2; bit++) {
        const [a, b] = sides[bit]!;
        if (a < b) {
          next.push({ lo: a, hi: b, depth: depth + 1 });
          const [c, d] = sides[1 - bit]!;
          if (c === d && batch.removes(a, b) && !isEmptyHash(childHash(node, 1 - bit))) {
            siblings.push(siblingId(batch, a, depth + 1));
          }
        }
      }
    }
    spans = next;
  }
}

/** The position at `depth` beside the path of change `i` (same parent, the other side). */
function siblingId(batch: Batch, i: number, depth: number): string {
  const key = new Uint8Array(batch.keys[i]!); // a copy even of a Buffer, whose slice() is a view
  const bit = depth - 1;
  key[bit >>> 3]! ^= 0x80 >>> (bit & 7);
  return positionId(key, depth);
}

/** Phase 2: the new subtree at a span's position, from the nodes phase 1 read. */
function compute(batch: Batch, span: Span, existing: Uint8Array | undefined): Result {
  const { lo, hi, depth } = span;
  if (existing === undefined) return build(batch, collect(batch, lo, hi), depth);
  if (!isInner(existing)) {
    // A leaf has nothing below it: the subtree is built again from it and the changes.
    const key = leafKey(existing);
    const text = keyString(key);
    const entries = collect(batch, lo, hi);
    let touched = false;
    for (let i = lo; i < hi; i++) if (batch.texts[i] === text) touched = true;
    if (!touched) {
      entries.push({ key, text, node: existing });
      entries.sort((a, b) => (a.text < b.text ? -1 : a.text > b.text ? 1 : 0));
    }
    const result = build(batch, entries, depth);
    return result.node !== undefined && sameBytes(result.node, existing) ? { ...result, changed: false } : result;
  }
  const mid = batch.split(lo, hi, depth);
  // The children's positions: from a key on that side, or from a key of the other side with bit `depth` flipped.
  const leftId = lo < mid ? batch.id(lo, depth + 1) : siblingId(batch, lo, depth + 1);
  const rightId = mid < hi ? batch.id(mid, depth + 1) : siblingId(batch, lo, depth + 1);
  const left = lo < mid ? compute(batch, { lo, hi: mid, depth: depth + 1 }, batch.nodes.get(leftId)) : untouched(batch, childHash(existing, 0), leftId);
  const right = mid < hi ? compute(batch, { lo: mid, hi, depth: depth + 1 }, batch.nodes.get(rightId)) : untouched(batch, childHash(existing, 1), rightId);
  return place(batch, left, right, leftId, rightId, !isEmptyHash(childHash(existing, 0)), !isEmptyHash(childHash(existing, 1)), existing);
}

function untouched(batch: Batch, hash: Uint8Array, id: string): Result {
  if (isEmptyHash(hash)) return EMPTY;
  const node = batch.nodes.get(id);
  return node === undefined ? { node: undefined, hash, changed: false, unknown: true } : { node, hash, changed: false };
}

interface Entry {
  readonly key: Uint8Array;
  readonly text: string;
  readonly node: Uint8Array;
}

/** The leaves the changes in [lo, hi) put (removals leave none). */
function collect(batch: Batch, lo: number, hi: number): Entry[] {
  const out: Entry[] = [];
  for (let i = lo; i < hi; i++) {
    const account = batch.accounts[i];
    if (account !== undefined) out.push({ key: batch.keys[i]!, text: batch.texts[i]!, node: leafNode(batch.keys[i]!, account) });
  }
  return out;
}

/** A subtree from sorted leaves alone: no position below this one held a node before. */
function build(batch: Batch, entries: readonly Entry[], depth: number): Result {
  if (entries.length === 0) return EMPTY;
  if (entries.length === 1) return { node: entries[0]!.node, hash: nodeHash(entries[0]!.node), changed: true };
  let mid = 0;
  while (mid < entries.length && bitAt(entries[mid]!.key, depth) === 0) mid++;
  const left = build(batch, entries.slice(0, mid), depth + 1);
  const right = build(batch, entries.slice(mid), depth + 1);
  const any = new Uint8Array(entries[0]!.key); // never a view: the key may sit inside a stored node
  any[depth >>> 3]! &= ~(0x80 >>> (depth & 7));
  const leftId = positionId(any, depth + 1);
  any[depth >>> 3]! |= 0x80 >>> (depth & 7);
  const rightId = positionId(any, depth + 1);
  return place(batch, left, right, leftId, rightId, false, false, undefined);
}

/**
 * The node over two new halves, and the writes of the halves' positions: two empty halves make an
 * empty subtree, a lone leaf moves up (its old position emptied), anything else is an inner node
 * with its changed halves written below it.
 */
function place(
  batch: Batch,
  left: Result,
  right: Result,
  leftId: string,
  rightId: string,
  hadLeft: boolean,
  hadRight: boolean,
  existing: Uint8Array | undefined,
): Result {
  const leftEmpty = left.node === undefined && !left.unknown;
  const rightEmpty = right.node === undefined && !right.unknown;
  if (leftEmpty || rightEmpty) {
    const other = leftEmpty ? right : left;
    if (other.unknown) throw new Error('state tree: a collapse needs a node that was not read');
    if (other.node === undefined || !isInner(other.node)) {
      if (hadLeft) batch.remove(leftId);
      if (hadRight) batch.remove(rightId);
      return other.node === undefined ? EMPTY : { node: other.node, hash: other.hash, changed: true };
    }
  }
  if (leftEmpty) {
    if (hadLeft) batch.remove(leftId);
  } else if (left.changed || !hadLeft) {
    batch.put(leftId, left.node!);
  }
  if (rightEmpty) {
    if (hadRight) batch.remove(rightId);
  } else if (right.changed || !hadRight) {
    batch.put(rightId, right.node!);
  }
  const node = innerNode(left.hash, right.hash);
  if (existing !== undefined && sameBytes(node, existing)) return { node: existing, hash: nodeHash(existing), changed: false };
  return { node, hash: nodeHash(node), changed: true };
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
