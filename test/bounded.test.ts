import { strict as assert } from 'node:assert';
import { BoundedMap, BoundedSet } from '../ledger/bounded.ts';
import { seededRandom } from './helpers/fixtures.ts';

/** What the bounded collections replaced, kept as the reference: the first key deleted anew each time. */
class FirstKeyDeleted<V> {
  readonly map = new Map<string, V>();
  private readonly bound: number;
  constructor(bound: number) {
    this.bound = bound;
  }
  set(key: string, value: V): void {
    this.map.set(key, value);
    if (this.map.size > this.bound) this.map.delete(this.map.keys().next().value!);
  }
}

describe('BoundedSet and BoundedMap (the oldest key forgotten past the bound)', () => {
  it('forget the key inserted first; one inserted again keeps its place, one deleted and inserted again goes to the end', () => {
    const set = new BoundedSet<string>(3);
    for (const k of ['a', 'b', 'c']) set.add(k);
    set.add('a'); // held: keeps its place
    set.add('d');
    assert.deepEqual([...set], ['b', 'c', 'd']);
    set.delete('b');
    set.add('b'); // now the newest
    set.add('e');
    assert.deepEqual([...set], ['d', 'b', 'e']);
    assert.equal(set.has('c'), false);

    const map = new BoundedMap<string, number>(2);
    map.set('x', 1).set('y', 2).set('x', 3); // x updated in place
    map.set('z', 4);
    assert.deepEqual([...map], [['y', 2], ['z', 4]]);
    map.delete('y');
    map.set('y', 5);
    map.set('w', 6);
    assert.deepEqual([...map], [['y', 5], ['w', 6]]);
    assert.equal(map.get('z'), undefined);
  });

  it('start again after a clear, and after deletes that leave room', () => {
    const set = new BoundedSet<number>(4);
    for (let i = 0; i < 10; i++) set.add(i);
    set.clear();
    for (let i = 10; i < 16; i++) set.add(i);
    assert.deepEqual([...set], [12, 13, 14, 15]);
    set.delete(13);
    set.delete(14);
    for (let i = 16; i < 19; i++) set.add(i);
    assert.deepEqual([...set], [15, 16, 17, 18]);
  });

  it('evict from one kept iterator: a run of evictions asks for the keys once, and again only after a delete', () => {
    // A fresh iterator per eviction walks every key deleted before the oldest (V8): O(evictions) each.
    const set = new BoundedSet<number>(100);
    let iterators = 0;
    const keys = set.keys.bind(set);
    set.keys = () => {
      iterators++;
      return keys();
    };
    for (let i = 0; i < 10_000; i++) set.add(i);
    assert.equal(iterators, 1);
    set.delete(12_345); // not held: nothing to let go
    for (let i = 10_000; i < 15_000; i++) set.add(i);
    assert.equal(iterators, 1);
    set.delete(14_990);
    for (let i = 15_000; i < 20_000; i++) set.add(i);
    assert.equal(iterators, 2);
    assert.deepEqual([...set], Array.from({ length: 100 }, (_, i) => 19_900 + i));
  });

  it('refuse a bound below one', () => {
    assert.throws(() => new BoundedSet(0), RangeError);
    assert.throws(() => new BoundedMap(2.5), RangeError);
  });

  it('hold exactly what deleting the first key anew held, in the same order, over random inserts, moves, deletes and clears', () => {
    for (const seed of [1, 2, 3, 4]) {
      const random = seededRandom(seed);
      // Bounds around V8's table sizes, and runs long enough for its tables to be rebuilt many times.
      const bound = [1, 7, 64, 1_025][seed - 1]!;
      const map = new BoundedMap<string, number>(bound);
      const set = new BoundedSet<string>(bound);
      const reference = new FirstKeyDeleted<number>(bound);
      for (let step = 0; step < 40_000; step++) {
        const key = `k${random.int(bound * 4)}`;
        const op = random.int(100);
        if (op < 60) {
          map.set(key, step);
          set.add(key);
          reference.set(key, step);
        } else if (op < 85) {
          // Moved to the end, as the caches that refresh on use do.
          for (const c of [map, set, reference.map]) c.delete(key);
          map.set(key, step);
          set.add(key);
          reference.set(key, step);
        } else if (op < 99) {
          for (const c of [map, set, reference.map]) c.delete(key);
        } else if (random.int(20) === 0) {
          for (const c of [map, set, reference.map]) c.clear();
        }
        assert.equal(map.size, reference.map.size, `seed ${seed} step ${step}`);
        if (step % 997 === 0 || step > 39_900) {
          assert.deepEqual([...map], [...reference.map], `seed ${seed} step ${step}`);
          assert.deepEqual([...set], [...reference.map.keys()], `seed ${seed} step ${step}`);
        }
      }
    }
  });
});
