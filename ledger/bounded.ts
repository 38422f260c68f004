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
 * (V8 moves a kept iterator onto a table an insertion rebuilt); every live key lies past it, since
 * keys are only ever appended. A delete lets it go, and the next eviction walks from the start
 * once: a table rebuilt by a delete (V8 shrinks), or by an insertion that evicts nothing (after a
 * delete), would stay alive with every key in it as long as a parked iterator held it.
 *
 * The memory is the built-in's, 56 MB for those 200,000 ids either way: an order queue beside the
 * Set held up to 105 MB (the keys it passed stay until it is cut), and two generations of half the
 * bound 24–50 MB, but they hold from half the bound to all of it.
 */
export class BoundedSet<K> extends Set<K> {
  private readonly oldest: OldestKey<K>;

  constructor(bound: number) {
    super();
    this.oldest = new OldestKey(this, bound, (key) => super.delete(key));
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
    this.oldest.forget();
    super.clear();
  }
}

/** A Map bounded as BoundedSet is (see there). */
export class BoundedMap<K, V> extends Map<K, V> {
  private readonly oldest: OldestKey<K>;

  constructor(bound: number) {
    super();
    this.oldest = new OldestKey(this, bound, (key) => super.delete(key));
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
    this.oldest.forget();
    super.clear();
  }
}

/**
 * What BoundedSet and BoundedMap share (two built-ins, no common base): the bound, and the iterator
 * over their keys kept from one eviction to the next.
 */
class OldestKey<K> {
  private readonly of: Set<K> | Map<K, unknown>;
  private readonly bound: number;
  /** The built-in's delete, which keeps the iterator. */
  private readonly evict: (key: K) => boolean;
  private iterator: Iterator<K> | undefined;

  constructor(of: Set<K> | Map<K, unknown>, bound: number, evict: (key: K) => boolean) {
    if (!Number.isInteger(bound) || bound < 1) throw new RangeError(`a bounded collection holds at least one key, not ${bound}`);
    this.of = of;
    this.bound = bound;
    this.evict = evict;
  }

  /** A key was inserted: past the bound, the oldest is deleted. */
  inserted(): void {
    if (this.of.size <= this.bound) return;
    let next = this.iterator?.next();
    // An iterator that once said done stays done: start again, whatever made it run out.
    if (!next || next.done) next = (this.iterator = this.of.keys()).next();
    this.evict(next.value as K);
  }

  /** `deleted`: a key was (not an eviction); the iterator is let go (see BoundedSet). */
  deleted(deleted: boolean): boolean {
    if (deleted) this.iterator = undefined;
    return deleted;
  }

  /** Every key is about to go: the iterator too. */
  forget(): void {
    this.iterator = undefined;
  }
}
