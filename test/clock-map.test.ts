// The key caches' bounded map (engine/kms/clock-map.ts): second-chance eviction, bounds, deletes, replaces,
// and a randomized run against a plain Map of what should be present.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ClockMap } from '../engine/kms/clock-map.ts';

describe('ClockMap', () => {
  it('evicts the first entry the hand finds neither used nor new since it last passed', () => {
    const map = new ClockMap<number>(3);
    const evicted: string[] = [];
    const onEvict = (id: string): void => {
      evicted.push(id);
    };
    map.set('a', 1, onEvict);
    map.set('b', 2, onEvict);
    map.set('c', 3, onEvict);
    // Every entry is new: the hand clears a, b and c, and evicts a on its second pass.
    map.set('d', 4, onEvict);
    assert.deepEqual(evicted, ['a']);
    assert.equal(map.get('a'), undefined);
    assert.equal(map.size, 3);
    assert.equal(map.get('b'), 2); // b used again since the hand passed it
    // The hand is at b: b is spared once, c (cleared, unused) goes.
    map.set('e', 5, onEvict);
    assert.deepEqual(evicted, ['a', 'c']);
    assert.deepEqual([...map.entries()].map(([id]) => id).sort(), ['b', 'd', 'e']);
  });

  it('keeps entries inserted since the hand last passed, even when every older entry was read', () => {
    // A cache filled by writes that are read back once each (the object-key cache under PUT-then-GET):
    // when it first overflows, the newest entries must survive until their own first read.
    const maxEntries = 100;
    const map = new ClockMap<number>(maxEntries);
    for (let index = 0; index < 80; index++) {
      map.set(`old${index}`, index);
      map.get(`old${index}`);
    }
    for (let index = 0; index < 40; index++) map.set(`new${index}`, index);
    for (let index = 0; index < 40; index++) assert.equal(map.get(`new${index}`), index, `new${index}`);
    assert.equal(map.size, maxEntries);
    // The 20 evicted were the oldest.
    for (let index = 0; index < 20; index++) assert.equal(map.get(`old${index}`), undefined, `old${index}`);
    for (let index = 20; index < 80; index++) assert.equal(map.get(`old${index}`), index, `old${index}`);
  });

  it('replaces a value in place and returns the previous one, evicting nothing', () => {
    const map = new ClockMap<string>(2);
    let evictions = 0;
    map.set('k', 'old');
    map.set('j', 'other');
    assert.equal(map.set('k', 'new', () => evictions++), 'old');
    assert.equal(evictions, 0);
    assert.equal(map.get('k'), 'new');
    assert.equal(map.size, 2);
  });

  it('a deleted entry frees its slot: the next insertion evicts nothing', () => {
    const map = new ClockMap<number>(2);
    let evictions = 0;
    map.set('a', 1);
    map.set('b', 2);
    assert.equal(map.delete('a'), 1);
    assert.equal(map.delete('a'), undefined);
    map.set('c', 3, () => evictions++);
    assert.equal(evictions, 0);
    assert.deepEqual([...map.entries()].sort(), [['b', 2], ['c', 3]]);
    map.set('a', 1, () => evictions++);
    assert.equal(evictions, 1, 'full again: one eviction');
    assert.equal(map.size, 2);
  });

  it('clear empties it and it fills again', () => {
    const map = new ClockMap<number>(2);
    map.set('a', 1);
    map.set('b', 2);
    map.clear();
    assert.equal(map.size, 0);
    assert.equal(map.get('a'), undefined);
    map.set('c', 3);
    map.set('d', 4);
    assert.equal(map.size, 2);
  });

  it('randomized: never above its bound, and holds exactly what was set and not evicted or deleted', () => {
    let seed = 12345;
    const random = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    const maxEntries = 50;
    const map = new ClockMap<number>(maxEntries);
    const model = new Map<string, number>();
    for (let step = 0; step < 20_000; step++) {
      const id = `k${random(200)}`;
      const action = random(10);
      if (action < 5) {
        const got = map.get(id);
        assert.equal(got, model.get(id), `get ${id} at step ${step}`);
      } else if (action < 9) {
        map.set(id, step, (evictedId, value) => {
          assert.equal(model.get(evictedId), value, 'an evicted entry was present with that value');
          assert.notEqual(evictedId, id, 'never evicts the id being set');
          model.delete(evictedId);
        });
        model.set(id, step);
      } else {
        assert.equal(map.delete(id), model.get(id));
        model.delete(id);
      }
      assert.ok(map.size <= maxEntries, `size ${map.size} at step ${step}`);
      assert.equal(map.size, model.size, `size matches the model at step ${step}`);
    }
    assert.deepEqual([...map.entries()].sort(), [...model.entries()].sort());
  });

  it('refuses a bound below 1', () => {
    assert.throws(() => new ClockMap(0));
    assert.throws(() => new ClockMap(1.5));
  });
});
