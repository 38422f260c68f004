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
  sortByKey,
  zeroAt,
  type StateChange,
  type TreeNodeReader,
  type TreeUpdate,
  type TreeWrite,
} from './smt.ts';
import { InnerHashQueue } from './inner-hashes.ts';
import { InnerNodePool } from './inner-node-pool.ts';
import { decodeAccount, type Account } from './state.ts';

/**
 * The update of the state tree (ledger/smt.ts) by a block's changes, in two phases: read every
 * node on the changed keys' paths (a level per round trip, or several at once where the reader
 * says to read ahead), then compute the new subtrees bottom-up and the position writes that make
 * a store hold exactly the new tree. O(changes × depth) reads and hashes; nothing is written here.
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
 * The changes under one position, and what phase 1 learnt there: the node the position holds
 * and, where it is an inner node, the spans of its two halves (`undefined` for an untouched half).
 * A class, every field set at construction: spans are made by the hundred an update, and fields
 * added later would give each object a second allocation for them.
 */
class Span {
  readonly lo: number;
  readonly hi: number;
  readonly depth: number;
  readonly id: string;
  /** Read in phase 1; `undefined`: the position is empty. */
  node: Uint8Array | undefined = undefined;
  /** Empty by its parent: the parent's hash for this half is zero, so there is nothing to read. */
  emptyHalf = false;
  left: Span | undefined = undefined;
  right: Span | undefined = undefined;
  /** The untouched half's node, read when the other half removes accounts (a collapse may lift it). */
  sibling: Uint8Array | undefined = undefined;
  siblingId: string | undefined = undefined;

  constructor(lo: number, hi: number, depth: number, id: string) {
    this.lo = lo;
    this.hi = hi;
    this.depth = depth;
    this.id = id;
  }
}

/** Sorted changes. */
class Batch {
  readonly keys: Uint8Array[];
  readonly accounts: (Account | undefined)[];
  /** deletions[i] = removals among changes [0, i): whether a span holds one, in O(1). */
  private readonly deletions: Int32Array;
  /** The writes, as two arrays (an object each was most of what a scavenge found alive in an update). */
  readonly writeIds: string[] = [];
  readonly writeNodes: (Uint8Array | null)[] = [];

  constructor(changes: readonly StateChange[]) {
    const sorted = sortByKey(changes);
    for (let i = 1; i < sorted.length; i++) {
      if (compareKeys(sorted[i]!.key, sorted[i - 1]!.key) === 0) throw new RangeError('a key changes twice in one tree update');
    }
    this.keys = sorted.map((c) => c.key);
    this.accounts = sorted.map((c) => c.account);
    this.deletions = new Int32Array(sorted.length + 1);
    for (let i = 0; i < sorted.length; i++) this.deletions[i + 1] = this.deletions[i]! + (this.accounts[i] === undefined ? 1 : 0);
  }

  /** The same keys with their final values (sorted as the keys are); false if the keys differ. */
  setAccounts(changes: readonly StateChange[]): boolean {
    if (changes.length !== this.keys.length) return false;
    const sorted = sortByKey(changes);
    for (let i = 0; i < sorted.length; i++) {
      if (compareKeys(sorted[i]!.key, this.keys[i]!) !== 0 || sorted[i]!.account === undefined) return false;
      this.accounts[i] = sorted[i]!.account;
    }
    return true;
  }

  span(lo: number, hi: number, depth: number): Span {
    return new Span(lo, hi, depth, positionId(this.keys[lo]!, depth));
  }

  removes(lo: number, hi: number): boolean {
    return this.deletions[hi]! > this.deletions[lo]!;
  }

  /** The first change in [lo, hi) whose key has bit `depth` set (all share the bits before it). */
  split(lo: number, hi: number, depth: number): number {
    const byte = depth >>> 3;
    const mask = 0x80 >>> (depth & 7);
    let a = lo;
    let b = hi;
    while (a < b) {
      const m = (a + b) >>> 1;
      if ((this.keys[m]![byte]! & mask) === 0) a = m + 1;
      else b = m;
    }
    return a;
  }

  put(id: string, node: Uint8Array): void {
    this.writeIds.push(id);
    this.writeNodes.push(node);
  }

  remove(id: string): void {
    this.writeIds.push(id);
    this.writeNodes.push(null);
  }
}

/** A tree update as phase 2 leaves it: its writes kept as the batch's two arrays, made objects only if asked for. */
class BatchUpdate implements TreeUpdate {
  readonly root: Uint8Array;
  readonly release: () => void;
  private readonly ids: readonly string[];
  private readonly nodes: readonly (Uint8Array | null)[];
  private objects: TreeWrite[] | undefined;

  constructor(root: Uint8Array, batch: Batch, release: () => void) {
    this.root = root;
    this.ids = batch.writeIds;
    this.nodes = batch.writeNodes;
    this.release = release;
  }

  get writes(): readonly TreeWrite[] {
    return (this.objects ??= this.ids.map((id, i) => ({ id, node: this.nodes[i]! })));
  }

  forEachWrite(visit: (id: string, node: Uint8Array | null) => void): void {
    for (let i = 0; i < this.ids.length; i++) visit(this.ids[i]!, this.nodes[i]!);
  }
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
 * Phase 1: every node on the changed keys' paths, down to where each path ends (a leaf or an empty
 * position), a level at a time. What the reader holds in memory (`readNow`) is taken at once; the
 * rest of a level is asked of the store in one round trip, several levels deep where the reader
 * says to read ahead. Where a span removes accounts and its sibling is untouched, the sibling is
 * read too: if the span empties, a sibling leaf moves up (the collapse) and must be known to be a leaf.
 */
async function readPaths(reader: TreeNodeReader, batch: Batch, top: Span): Promise<void> {
  // What the store answered, with the positions read ahead of their level.
  const known = new Map<string, Uint8Array | undefined>();
  let level: Span[] = [top];
  let lifted: Span[] = [];
  while (level.length > 0 || lifted.length > 0) {
    let wanted: Set<string> | undefined;
    const lateSiblings: Span[] = [];
    for (const s of lifted) {
      const node = answer(reader, known, s.siblingId!);
      if (node !== false) {
        s.sibling = node;
        continue;
      }
      lateSiblings.push(s);
      (wanted ??= new Set()).add(s.siblingId!);
    }
    const late: Span[] = [];
    for (const s of level) {
      if (s.emptyHalf) continue;
      const node = answer(reader, known, s.id);
      if (node !== false) {
        s.node = node;
        continue;
      }
      late.push(s);
      (wanted ??= new Set()).add(s.id);
      const ahead = reader.readAhead?.(s.depth) ?? 0;
      for (let d = s.depth + 1; d < s.depth + ahead; d++) for (let i = s.lo; i < s.hi; i++) wanted.add(positionId(batch.keys[i]!, d));
    }
    if (wanted) {
      const ids = [...wanted];
      const found = await reader.readNodes(ids);
      ids.forEach((id, i) => known.set(id, found[i]));
      for (const s of lateSiblings) s.sibling = known.get(s.siblingId!);
      for (const s of late) s.node = known.get(s.id);
    }
    const next: Span[] = [];
    lifted = [];
    for (let i = 0; i < level.length; i++) {
      const span = level[i]!;
      const node = span.node;
      if (node === undefined || node[0] !== INNER_PREFIX) continue;
      const { lo, hi, depth } = span;
      const mid = batch.split(lo, hi, depth);
      const left = lo < mid ? batch.span(lo, mid, depth + 1) : undefined;
      const right = mid < hi ? batch.span(mid, hi, depth + 1) : undefined;
      span.left = left;
      span.right = right;
      // A half whose hash in this node is zero is empty: nothing there to read.
      if (left) {
        if (zeroAt(node, 1)) left.emptyHalf = true;
        next.push(left);
      }
      if (right) {
        if (zeroAt(node, 33)) right.emptyHalf = true;
        next.push(right);
      }
      // One half untouched, the other removing accounts: read the untouched one too.
      const lifts = left ? !right && batch.removes(lo, mid) && !zeroAt(node, 33) : batch.removes(mid, hi) && !zeroAt(node, 1);
      if (lifts) {
        span.siblingId = flippedId(batch.keys[lo]!, depth);
        lifted.push(span);
      }
    }
    level = next;
  }
}

/** A position's node if known without asking the store: read this update already, or held by the reader in memory. */
function answer(reader: TreeNodeReader, known: Map<string, Uint8Array | undefined>, id: string): Uint8Array | undefined | false {
  if (known.has(id)) return known.get(id);
  return reader.readNow?.(id) ?? false;
}

/** The position at `depth + 1` under `key`'s position at `depth`, on the side `key` does not take. */
function flippedId(key: Uint8Array, depth: number): string {
  return siblingOf(positionId(key, depth + 1), depth);
}

/**
 * The other half's position next to `id`, a position at `depth + 1`: the bit `depth` flipped. That
 * bit sits in the id's last character (the depth, then the key's bytes up to the bit).
 */
function siblingOf(id: string, depth: number): string {
  const last = id.length - 1;
  return id.slice(0, last) + String.fromCharCode(id.charCodeAt(last) ^ (0x80 >>> (depth & 7)));
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
