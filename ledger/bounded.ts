/**
 * A Set and a Map that hold at most `bound` keys: an insertion past the bound deletes the oldest
 * key, the first in insertion order, exactly as `set.delete(set.keys().next().value)` after each
 * insertion did. Everything else is the built-in's: a key set again keeps its place (delete it
 * first to move it to the end), and nothing is refreshed by a read.
 *
 * Why not that one line: V8 leaves a deleted key's entry in the table as a hole until the table is
 * rebuilt, and an iterator made anew walks every hole before the first live key. Forgetting the
 * oldest on every insertion made ever more holes in front: 77 µs an insertion into a Set of
 * 200,000 hex ids (the signature cache under a flood), 1.9 µs here; 5.7 and 0.7 µs at 10,000. So
 * the iterator is kept from one eviction to the next, where it resumes after the key it gave last
 * (V8 moves a kept iterator onto a rebuilt table); every live key lies past it, since keys are only
 * ever appended. The memory is the built-in's, 56 MB for those 200,000 ids either way: an order
 * queue beside the Set held up to 105 MB (the keys it passed stay until it is cut), and two
 * generations of half the bound 24–50 MB, but they hold from half the bound to all of it.
 */
export class BoundedSet<K> extends Set<K> {
  private readonly oldest: OldestKey<K>;

  constructor(bound: number) {
    super();
    this.oldest = new OldestKey(this, bound);
  }

  override add(key: K): this {
    super.add(key);
    this.oldest.inserted();
    return this;
  }

  override delete(key: K): boolean {
    return this.oldest.deleted(super.delete(key));
  }

  override clear(): void {
    super.clear();
    this.oldest.cleared();
  }
}

/** A Map bounded as BoundedSet is (see there). */
export class BoundedMap<K, V> extends Map<K, V> {
  private readonly oldest: OldestKey<K>;

  constructor(bound: number) {
    super();
    this.oldest = new OldestKey(this, bound);
  }

  override set(key: K, value: V): this {
    super.set(key, value);
    this.oldest.inserted();
    return this;
  }

  override delete(key: K): boolean {
    return this.oldest.deleted(super.delete(key));
  }

  override clear(): void {
    super.clear();
    this.oldest.cleared();
  }
}

/**
 * What BoundedSet and BoundedMap share (two built-ins, no common base): the bound, and the iterator
 * over their keys kept between evictions.
 */
class OldestKey<K> {
  private readonly of: Set<K> | Map<K, unknown>;
  private readonly bound: number;
  private iterator: Iterator<K> | undefined;

  constructor(of: Set<K> | Map<K, unknown>, bound: number) {
    if (!Number.isInteger(bound) || bound < 1) throw new RangeError(`a bounded collection holds at least one key, not ${bound}`);
    this.of = of;
    this.bound = bound;
  }

  /** A key was inserted: past the bound, the oldest is deleted. */
  inserted(): void {
    if (this.of.size <= this.bound) return;
    let next = this.iterator?.next();
    // An iterator that once said done stays done: start again, whatever made it run out.
    if (!next || next.done) next = (this.iterator = this.of.keys()).next();
    this.of.delete(next.value as K);
  }

  /**
   * A key was deleted (`deleted`: it was held). Leaving fewer than bound - 1 (not a key moved to the
   * end by delete-and-set while full, nor an eviction) may let V8 shrink the table, and a kept
   * iterator holds the table it was made on, with every key in it, until its next step: it is let
   * go, and the next eviction walks from the start once.
   */
  deleted(deleted: boolean): boolean {
    if (deleted && this.of.size < this.bound - 1) this.iterator = undefined;
    return deleted;
  }

  /** The iterator would hold the old table and its keys. */
  cleared(): void {
    this.iterator = undefined;
  }
}
