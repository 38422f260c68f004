import type { Transaction } from './transaction.ts';

/** What the index needs of a pending transaction. */
interface Pending {
  readonly tx: Transaction;
}

interface Slot<E extends Pending> {
  readonly sender: string;
  /** When the sender entered the pool: the order of the pool's sender map, which breaks fee ties. */
  readonly order: number;
  /** The sender's pending transactions by nonce: the pool's own map, read, never written here. */
  readonly pending: ReadonlyMap<bigint, E>;
  /** The highest nonce pending. */
  tail: E;
  /** Where the slot sits in the heap. */
  index: number;
}

/** A candidate victim: its rank is its fee, then its sender's order. */
interface Candidate<E extends Pending> {
  readonly entry: E;
  readonly slot: Slot<E>;
  /** The heap position it was read from (its children are the next candidates), or -1 for a sender's next tail. */
  readonly index: number;
}

function ranksBefore(feeA: bigint, orderA: number, feeB: bigint, orderB: number): boolean {
  return feeA < feeB || (feeA === feeB && orderA < orderB);
}

const slotBefore = <E extends Pending>(a: Slot<E>, b: Slot<E>) => ranksBefore(a.tail.tx.fee, a.order, b.tail.tx.fee, b.order);
const candidateBefore = <E extends Pending>(a: Candidate<E>, b: Candidate<E>) => ranksBefore(a.entry.tx.fee, a.slot.order, b.entry.tx.fee, b.slot.order);
const noMove = () => {};

/** Binary min-heap steps over an array; `moved` hears where each item lands. Both return the final index. */
function siftUp<T>(heap: T[], i: number, before: (a: T, b: T) => boolean, moved: (item: T, index: number) => void): number {
  const item = heap[i]!;
  while (i > 0) {
    const parent = (i - 1) >> 1;
    if (!before(item, heap[parent]!)) break;
    heap[i] = heap[parent]!;
    moved(heap[i]!, i);
    i = parent;
  }
  heap[i] = item;
  moved(item, i);
  return i;
}

function siftDown<T>(heap: T[], i: number, before: (a: T, b: T) => boolean, moved: (item: T, index: number) => void): number {
  const item = heap[i]!;
  for (;;) {
    const l = 2 * i + 1;
    if (l >= heap.length) break;
    const r = l + 1;
    const child = r < heap.length && before(heap[r]!, heap[l]!) ? r : l;
    if (!before(heap[child]!, item)) break;
    heap[i] = heap[child]!;
    moved(heap[i]!, i);
    i = child;
  }
  heap[i] = item;
  moved(item, i);
  return i;
}

/** The pending transaction of `pending` with the highest nonce below `nonce`. */
function below<E extends Pending>(pending: ReadonlyMap<bigint, E>, nonce: bigint): E | undefined {
  const previous = pending.get(nonce - 1n); // the usual case: nonces without a gap
  if (previous) return previous;
  let best: E | undefined;
  for (const e of pending.values()) if (e.tx.nonce < nonce && (!best || e.tx.nonce > best.tx.nonce)) best = e;
  return best;
}

/**
 * Each sender's tail (its highest-nonce pending transaction, the only one a full pool can evict
 * without breaking the sender's nonce chain) in a binary min-heap by fee, equal fees in the order
 * the senders entered the pool. One slot per sender with something pending, moved in place when
 * its tail changes, so the heap never holds a stale entry and never outgrows the senders.
 *
 * The pool tells it every insertion (`added`, after the sender's map took the entry) and removal
 * (`removed`, after the map dropped it); a sender's slot lives exactly as long as its map does, so
 * `order` follows the map's insertion order, including a sender that empties and comes back last.
 */
export class SenderTails<E extends Pending> {
  private readonly heap: Slot<E>[] = [];
  private readonly slots = new Map<string, Slot<E>>();
  private entered = 0;
  private readonly place = (slot: Slot<E>, index: number) => {
    slot.index = index;
  };

  /** Senders held: one slot each. */
  get size(): number {
    return this.heap.length;
  }

  added(entry: E, pending: ReadonlyMap<bigint, E>): void {
    const sender = entry.tx.fromKey;
    const slot = this.slots.get(sender);
    if (!slot) {
      const created: Slot<E> = { sender, order: this.entered++, pending, tail: entry, index: this.heap.length };
      this.slots.set(sender, created);
      this.heap.push(created);
      siftUp(this.heap, created.index, slotBefore, this.place);
    } else if (entry.tx.nonce >= slot.tail.tx.nonce) {
      this.retail(slot, entry);
    }
  }

  removed(entry: E): void {
    const slot = this.slots.get(entry.tx.fromKey);
    if (!slot) return;
    if (slot.pending.size === 0) {
      this.slots.delete(slot.sender);
      const last = this.heap.pop()!;
      if (last !== slot) {
        this.heap[slot.index] = last;
        siftDown(this.heap, siftUp(this.heap, slot.index, slotBefore, this.place), slotBefore, this.place);
      }
    } else if (slot.tail === entry) {
      this.retail(slot, below(slot.pending, entry.tx.nonce)!);
    }
  }

  private retail(slot: Slot<E>, tail: E): void {
    slot.tail = tail;
    siftDown(this.heap, siftUp(this.heap, slot.index, slotBefore, this.place), slotBefore, this.place);
  }

  /**
   * The tails the pool could evict for a newcomer of `sender` at `nonce`, cheapest first (equal
   * fees: the sender that entered first); once a sender's tail is taken, its next-highest nonce
   * competes as the tail it would become. Of `sender`'s own, only those above `nonce`: the
   * newcomer needs those below it. Reads the heap without changing it (a frontier of the
   * positions whose parents were taken, so k taken cost O(k log k)), so the pool must not change
   * while the iteration runs.
   */
  *cheapestFirst(sender: string, nonce: bigint): Generator<E, undefined> {
    const frontier: Candidate<E>[] = [];
    const offer = (candidate: Candidate<E>) => {
      frontier.push(candidate);
      siftUp(frontier, frontier.length - 1, candidateBefore, noMove);
    };
    const fromHeap = (index: number) => {
      const slot = this.heap[index];
      if (slot) offer({ entry: slot.tail, slot, index });
    };
    fromHeap(0);
    for (;;) {
      const taken = frontier[0];
      if (!taken) return undefined;
      const last = frontier.pop()!;
      if (frontier.length > 0) {
        frontier[0] = last;
        siftDown(frontier, 0, candidateBefore, noMove);
      }
      if (taken.index >= 0) {
        fromHeap(2 * taken.index + 1);
        fromHeap(2 * taken.index + 2);
      }
      if (taken.slot.sender === sender && taken.entry.tx.nonce <= nonce) continue;
      yield taken.entry;
      const next = below(taken.slot.pending, taken.entry.tx.nonce);
      if (next) offer({ entry: next, slot: taken.slot, index: -1 });
    }
  }
}
