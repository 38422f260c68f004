/**
 * The bookkeeping of a state tree update (ledger/smt-update.ts): the changes sorted by key, the
 * span of them under each position on their paths, and the position writes they come to. Both
 * phases work over these (phase 1, ledger/smt-read.ts, fills the spans; phase 2 reads them and
 * appends the writes), so they sit apart from either.
 */
import { compareKeys, positionId, sortByKey, type StateChange, type TreeUpdate, type TreeWrite } from './smt.ts';
import type { Account } from './state.ts';

/**
 * The changes under one position, and what phase 1 learnt there: the node the position holds
 * and, where it is an inner node, the spans of its two halves (`undefined` for an untouched half).
 * A class, every field set at construction: spans are made by the hundred an update, and fields
 * added later would give each object a second allocation for them.
 */
export class Span {
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
export class Batch {
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
export class BatchUpdate implements TreeUpdate {
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
