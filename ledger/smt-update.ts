import {
  EMPTY_HASH,
  INNER_PREFIX,
  bitAt,
  compareKeys,
  leafAccountBytes,
  leafKey,
  leafNode,
  nodeHash,
  nodeHashInto,
  positionId,
  zeroAt,
  type StateChange,
  type TreeNodeReader,
  type TreeUpdate,
} from './smt.ts';
import { InnerHashQueue } from './inner-hashes.ts';
import { InnerNodePool } from './inner-node-pool.ts';
import { decodeAccount, type Account } from './state.ts';
import { Batch, BatchUpdate, type Span } from './smt-batch.ts';
import { readPaths, siblingOf } from './smt-read.ts';

/**
 * The update of the state tree (ledger/smt.ts) by a block's changes, in two phases: read every
 * node on the changed keys' paths (a level per round trip, or several at once where the reader
 * says to read ahead), then compute the new subtrees bottom-up and the position writes that make
 * a store hold exactly the new tree. O(changes × depth) reads and hashes; nothing is written here.
 * Phase 1 is ledger/smt-read.ts, over the batch both phases share (ledger/smt-batch.ts); phase 2
 * stays with the entry points, as `finish` and it share one module's state (the halves, the hash
 * queue, the node pool, which `finish` replaces).
 */
/**
 * What phase 2 made of a subtree, besides its hash: its node (undefined: empty) and whether its
 * position must be rewritten. The hash goes where the caller asks, which is where it belongs: into
 * the parent's new node, or the root. An update makes hundreds of these, so they are reused, one
 * pair a level (`halvesAt`): each is read before the next at its level is made.
 */
interface Made {
  node: Uint8Array | undefined;
  /** The node differs from what its position held (or the position is new). */
  changed: boolean;
  /** Known only to be non-empty: an untouched subtree whose node was not read. */
  unknown: boolean;
}

const newMade = (): Made => ({ node: undefined, changed: false, unknown: false });

/** HALVES[d]: what the two halves of a node being made at depth d came to (phase 2 is synchronous). */
const HALVES: [Made, Made][] = [];

function halvesAt(depth: number): [Made, Made] {
  return (HALVES[depth] ??= [newMade(), newMade()]);
}

function madeEmpty(made: Made, out: Uint8Array, at: number): void {
  made.node = undefined;
  made.changed = false;
  made.unknown = false;
  out.fill(0, at, at + 32);
}

function copyHash(from: Uint8Array, offset: number, out: Uint8Array, at: number): void {
  for (let i = 0; i < 32; i++) out[at + i] = from[offset + i]!;
}

/**
 * Applies `changes` (each key at most once) to the tree `reader` holds and returns the new root
 * with the position writes that make the store hold the new tree. Reads level by level, all
 * paths of a level in one round trip; costs O(changes × depth) reads and hashes. Writes nothing.
 */
export async function updateTree(reader: TreeNodeReader, changes: readonly StateChange[]): Promise<TreeUpdate> {
  if (changes.length === 0) {
    const [root] = await reader.readNodes([String.fromCharCode(0)]);
    return { root: root ? new Uint8Array(nodeHash(root)) : EMPTY_HASH, writes: [] };
  }
  const batch = new Batch(changes);
  const top = batch.span(0, batch.keys.length, 0);
  await readPaths(reader, batch, top);
  return finish(batch, top);
}

/** A tree update whose keys are known before their values (see prepareTreeUpdate). */
export interface PreparedTreeUpdate {
  /**
   * The account at each key (`undefined`: none), by the very key arrays given, as the tree holds
   * it: the read goes down every key's path anyway, and a path ends at the key's own leaf, which
   * holds its account, or somewhere that says it has none. `undefined` if the read failed.
   */
  accounts(): Promise<ReadonlyMap<Uint8Array, Account | undefined> | undefined>;
  finish(changes: readonly StateChange[]): Promise<TreeUpdate>;
  /** Once its reads have ended, failed or not: an update given up must not leave them running. */
  settled(): Promise<void>;
}

/**
 * An update whose keys are known before their values: its reads start at once and overlap the
 * work that finds the values (a block's state transition, which can take the accounts it starts
 * from out of these very reads). `finish` takes the values; given other keys, or removals, it
 * does the whole update itself.
 */
export function prepareTreeUpdate(reader: TreeNodeReader, keys: readonly Uint8Array[]): PreparedTreeUpdate {
  let batch: Batch | undefined;
  let top: Span | undefined;
  try {
    batch = new Batch(keys.map((key) => ({ key, account: { balance: 0n, nonce: 0n } })));
    top = batch.span(0, batch.keys.length, 0);
  } catch {
    batch = undefined; // repeated keys: left to `finish`, which will refuse them
  }
  const read = batch && top && keys.length > 0 ? readPaths(reader, batch, top).then(() => true, () => false) : Promise.resolve(false);
  return {
    async accounts() {
      if (!(await read)) return undefined;
      const found = new Map<Uint8Array, Account | undefined>(batch!.keys.map((key) => [key, undefined]));
      accountsAt(batch!, top!, found);
      return found;
    },
    async finish(changes) {
      const ready = await read;
      if (!ready || !batch!.setAccounts(changes)) return updateTree(reader, changes);
      return finish(batch!, top!);
    },
    async settled() {
      await read;
    },
  };
}

/** Phase 1's answer for the accounts themselves: where each key's path ended, into `out`. */
function accountsAt(batch: Batch, span: Span, out: Map<Uint8Array, Account | undefined>): void {
  const { lo, hi } = span;
  const node = span.emptyHalf ? undefined : span.node;
  if (node === undefined) return; // an empty position: none of these keys has an account
  if (node[0] !== INNER_PREFIX) {
    for (let i = lo; i < hi; i++) if (keyAt(batch.keys[i]!, node)) out.set(batch.keys[i]!, decodeAccount(leafAccountBytes(node)));
    return;
  }
  if (span.left) accountsAt(batch, span.left, out);
  if (span.right) accountsAt(batch, span.right, out);
}

/**
 * The new inner nodes' hashes, queued as phase 2 makes them and taken a level at a time once it
 * is done: phase 2 decides the tree's shape from what nodes are (leaf, inner, empty) and whether
 * they changed, never from an inner node's hash, so those can wait for a whole level.
 */
const innerHashes = new InnerHashQueue();

/**
 * Where phase 2's new inner nodes come from (ledger/inner-node-pool.ts): the pool the last
 * released update left, or a new one while an update not yet released holds it. Phase 2 is
 * synchronous, so this is the running update's pool until it returns.
 */
let innerNodes = new InnerNodePool();

function finish(batch: Batch, top: Span): TreeUpdate {
  if (!innerNodes.available) innerNodes = new InnerNodePool();
  const release = innerNodes.claim();
  const root = new Uint8Array(32);
  const made = newMade();
  try {
    compute(batch, top, root, 0, made, undefined);
    innerHashes.run(); // empties the queue as it goes
  } catch (err) {
    innerHashes.clear(); // an update that failed part way leaves nothing for the next
    release();
    throw err;
  }
  if (made.node === undefined) {
    if (top.node !== undefined) batch.remove(top.id);
  } else if (made.changed) {
    batch.put(top.id, made.node);
  }
  return new BatchUpdate(root, batch, release);
}

/**
 * Phase 2: the new subtree at a span's position, from the nodes phase 1 read, into `made`; its
 * hash into `out` at `at`, where `old` (the parent's node before, if it had one) held the hash
 * before. An inner node's halves hash straight into the node made over them.
 */
function compute(batch: Batch, span: Span, out: Uint8Array, at: number, made: Made, old: Uint8Array | undefined): void {
  const { lo, hi, depth } = span;
  const existing = span.node;
  if (existing === undefined) {
    const entries = collect(batch, lo, hi);
    return build(batch, entries, 0, entries.length, depth, out, at, made);
  }
  if (existing[0] !== INNER_PREFIX) {
    // A leaf has nothing below it: the subtree is built again from it and the changes.
    const entries = collect(batch, lo, hi);
    let touched = false;
    for (let i = lo; i < hi; i++) if (keyAt(batch.keys[i]!, existing)) touched = true;
    if (!touched) {
      entries.push({ key: leafKey(existing), node: existing });
      entries.sort((a, b) => compareKeys(a.key, b.key));
    }
    build(batch, entries, 0, entries.length, depth, out, at, made);
    if (made.node !== undefined && sameBytes(made.node, existing)) made.changed = false;
    return;
  }
  const inner = innerNodes.take();
  inner[0] = INNER_PREFIX;
  const [left, right] = halvesAt(depth);
  if (span.left) compute(batch, span.left, inner, 1, left, existing);
  else untouched(existing, 1, span.sibling, inner, left);
  if (span.right) compute(batch, span.right, inner, 33, right, existing);
  else untouched(existing, 33, span.sibling, inner, right);
  place(batch, inner, depth, span.left?.id, span.right?.id, !zeroAt(existing, 1), !zeroAt(existing, 33), existing, out, at, made, old);
}

/** Whether `key` is the key of `leaf` (compared in place: no view of the leaf's key). */
function keyAt(key: Uint8Array, leaf: Uint8Array): boolean {
  for (let i = 0; i < 32; i++) if (key[i] !== leaf[1 + i]) return false;
  return true;
}

/** A half no change reaches: its hash, at `offset` in its parent, carried into the new node. */
function untouched(parent: Uint8Array, offset: number, node: Uint8Array | undefined, inner: Uint8Array, made: Made): void {
  if (zeroAt(parent, offset)) return madeEmpty(made, inner, offset);
  copyHash(parent, offset, inner, offset);
  made.node = node;
  made.changed = false;
  made.unknown = node === undefined;
}

interface Entry {
  readonly key: Uint8Array;
  readonly node: Uint8Array;
}

/** The leaves the changes in [lo, hi) put (removals leave none). */
function collect(batch: Batch, lo: number, hi: number): Entry[] {
  const out: Entry[] = [];
  for (let i = lo; i < hi; i++) {
    const account = batch.accounts[i];
    if (account !== undefined) out.push({ key: batch.keys[i]!, node: leafNode(batch.keys[i]!, account) });
  }
  return out;
}

/** A subtree from sorted leaves `entries[from, to)` alone: no position below this one held a node before. */
function build(batch: Batch, entries: readonly Entry[], from: number, to: number, depth: number, out: Uint8Array, at: number, made: Made): void {
  if (from === to) return madeEmpty(made, out, at);
  if (to - from === 1) {
    made.node = entries[from]!.node;
    made.changed = true;
    made.unknown = false;
    nodeHashInto(made.node, out, at);
    return;
  }
  let mid = from;
  while (mid < to && bitAt(entries[mid]!.key, depth) === 0) mid++;
  const inner = innerNodes.take();
  inner[0] = INNER_PREFIX;
  const [left, right] = halvesAt(depth);
  build(batch, entries, from, mid, depth + 1, inner, 1, left);
  build(batch, entries, mid, to, depth + 1, inner, 33, right);
  const any = new Uint8Array(entries[from]!.key); // never a view: the key may sit inside a stored node
  any[depth >>> 3]! &= ~(0x80 >>> (depth & 7));
  const leftId = positionId(any, depth + 1);
  any[depth >>> 3]! |= 0x80 >>> (depth & 7);
  const rightId = positionId(any, depth + 1);
  place(batch, inner, depth, leftId, rightId, false, false, undefined, out, at, made, undefined);
}

/**
 * The node over the two halves just made at `depth` (in `inner` the hashes of the halves that came
 * out as they were, leaves and empty ones; a new inner half's is queued to land there), and the
 * writes of the halves' positions: two empty halves make an empty subtree, a lone leaf moves up
 * (its old position emptied), anything else is `inner` with its changed halves written below it.
 * A half's id may be left out: it is its sibling's with one bit flipped (`halfId`). A new inner
 * node's hash is queued (`innerHashes`); one that came out as it was keeps the hash `old` held.
 */
function place(
  batch: Batch,
  inner: Uint8Array,
  depth: number,
  leftId: string | undefined,
  rightId: string | undefined,
  hadLeft: boolean,
  hadRight: boolean,
  existing: Uint8Array | undefined,
  out: Uint8Array,
  at: number,
  made: Made,
  old: Uint8Array | undefined,
): void {
  const [left, right] = halvesAt(depth);
  const leftEmpty = left.node === undefined && !left.unknown;
  const rightEmpty = right.node === undefined && !right.unknown;
  if (leftEmpty || rightEmpty) {
    const other = leftEmpty ? right : left;
    if (other.unknown) throw new Error('state tree: a collapse needs a node that was not read');
    if (other.node === undefined || other.node[0] !== INNER_PREFIX) {
      if (hadLeft) batch.remove(halfId(leftId, rightId, depth));
      if (hadRight) batch.remove(halfId(rightId, leftId, depth));
      if (other.node === undefined) return madeEmpty(made, out, at);
      copyHash(inner, leftEmpty ? 33 : 1, out, at);
      made.node = other.node;
      made.changed = true;
      made.unknown = false;
      return;
    }
  }
  if (leftEmpty) {
    if (hadLeft) batch.remove(halfId(leftId, rightId, depth));
  } else if (left.changed || !hadLeft) {
    batch.put(halfId(leftId, rightId, depth), left.node!);
  }
  if (rightEmpty) {
    if (hadRight) batch.remove(halfId(rightId, leftId, depth));
  } else if (right.changed || !hadRight) {
    batch.put(halfId(rightId, leftId, depth), right.node!);
  }
  // A changed half changes the node; only halves that came out as they were may leave it as it was.
  // Their hashes are then in `inner` already: a half's hash waits in the queue only if it changed.
  const same = existing !== undefined && !left.changed && !right.changed && sameBytes(inner, existing);
  made.node = same ? existing : inner;
  made.changed = !same;
  made.unknown = false;
  if (same && old !== undefined) copyHash(old, at, out, at);
  else innerHashes.add(depth, inner, out, at);
}

/** A half's position: given, or its sibling's with the bit `depth` flipped. */
function halfId(id: string | undefined, siblingId: string | undefined, depth: number): string {
  return id ?? siblingOf(siblingId!, depth);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
