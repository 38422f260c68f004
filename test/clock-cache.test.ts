import { strict as assert } from 'node:assert';
import { ClockCache } from '../ledger/clock-cache.ts';
import { seededRandom } from './helpers/fixtures.ts';

/**
 * The eviction ClockCache replaced, kept as the reference: entries in a Map's insertion order, the
 * oldest evicted unless used, in which case it is unmarked and moved to the back. Without
 * deletions this is the same policy as a clock's ring (second-chance FIFO), entry for entry. One
 * difference is mended here: the replaced code inserted before evicting, so with every entry used
 * it evicted the entry it had just inserted.
 */
class SecondChanceMap<V> {
  readonly entries = new Map<string, { value: V; used: boolean }>();
  private readonly capacity: number;
  constructor(capacity: number) {
    this.capacity = capacity;
  }
  get(key: string): V | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    e.used = true;
    return e.value;
  }
  set(key: string, value: V): void {
    const e = this.entries.get(key);
    if (e) {
      e.value = value;
      e.used = true;
      return;
    }
    while (this.entries.size >= this.capacity) {
      const [oldest, entry] = this.entries.entries().next().value!;
      this.entries.delete(oldest);
      if (!entry.used) break;
      entry.used = false;
      this.entries.set(oldest, entry);
    }
    this.entries.set(key, { value, used: false });
  }
}

describe('ClockCache (bounded map, second-chance eviction)', () => {
  it('evicts the first unused entry from the hand on, sparing and unmarking used ones', () => {
    const cache = new ClockCache<number>(3);
    cache.set('a', 1);
    cache.set('b', 2);
    cache.set('c', 3);
    assert.equal(cache.get('a'), 1); // a is used: spared once
    cache.set('d', 4); // the hand passes a (unmarking it) and evicts b
    assert.deepEqual(['a', 'b', 'c', 'd'].map((k) => cache.has(k)), [true, false, true, true]);
    cache.set('e', 5); // c is next and unused
    assert.deepEqual(['a', 'c', 'd', 'e'].map((k) => cache.has(k)), [true, false, true, true]);
    cache.set('f', 6); // a was unmarked as the hand passed it: it goes now
    assert.deepEqual(['a', 'd', 'e', 'f'].map((k) => cache.has(k)), [false, true, true, true]);
    assert.equal(cache.size, 3);
  });

  it('updates an entry in place and marks it used', () => {
    const cache = new ClockCache<string | null>(2);
    cache.set('x', 'one');
    cache.set('y', null);
    cache.set('x', 'two');
    cache.set('z', 'three'); // x was updated, so used: y goes
    assert.equal(cache.get('x'), 'two');
    assert.equal(cache.get('y'), undefined);
    assert.equal(cache.has('y'), false);
    assert.equal(cache.get('z'), 'three');
  });

  it('gives a deleted entry’s slot to the next new entry before evicting anything', () => {
    const cache = new ClockCache<number>(3);
    for (const [i, k] of ['a', 'b', 'c'].entries()) cache.set(k, i);
    cache.delete('b');
    cache.delete('missing');
    assert.equal(cache.size, 2);
    cache.set('d', 3);
    assert.deepEqual(['a', 'b', 'c', 'd'].map((k) => cache.has(k)), [true, false, true, true]);
    cache.set('e', 4); // full again: the hand starts at a, unused
    assert.deepEqual(['a', 'c', 'd', 'e'].map((k) => cache.has(k)), [false, true, true, true]);
    cache.clear();
    assert.equal(cache.size, 0);
    assert.equal(cache.get('c'), undefined);
    for (const k of ['p', 'q', 'r']) cache.set(k, 0);
    assert.equal(cache.size, 3);
  });

  it('forgets freed slots when cleared: every entry after a clear has a slot of its own', () => {
    const cache = new ClockCache<number>(3);
    for (const [i, k] of ['a', 'b', 'c'].entries()) cache.set(k, i);
    cache.delete('b'); // a freed slot, which clear() must not hand out again besides the unfilled ones
    cache.clear();
    for (const [i, k] of ['p', 'q', 'r'].entries()) cache.set(k, i);
    assert.deepEqual(['p', 'q', 'r'].map((k) => cache.get(k)), [0, 1, 2]);
    assert.equal(cache.size, 3);
  });

  it('refuses a capacity below one', () => {
    assert.throws(() => new ClockCache(0), RangeError);
    assert.throws(() => new ClockCache(1.5), RangeError);
  });

  it('holds exactly what the Map-ordered second-chance eviction held, over random reads and writes', () => {
    for (const seed of [1, 2, 3]) {
      const random = seededRandom(seed);
      const capacity = 1 + random.int(40);
      const cache = new ClockCache<number>(capacity);
      const reference = new SecondChanceMap<number>(capacity);
      for (let step = 0; step < 5_000; step++) {
        const key = `k${random.int(capacity * 3)}`;
        if (random.int(2) === 0) {
          assert.equal(cache.get(key), reference.get(key), `seed ${seed} step ${step}: get ${key}`);
        } else {
          cache.set(key, step);
          reference.set(key, step);
        }
        assert.equal(cache.size, reference.entries.size);
      }
      for (const [key, { value }] of reference.entries) assert.equal(cache.has(key) && cache.get(key), value);
    }
  });
});
