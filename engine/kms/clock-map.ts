// A bounded map with CLOCK ("second chance") eviction, for the key caches (object-key-cache.ts, cache.ts).
// They were LRUs built on a Map's insertion order: a hit deleted its entry and set it again, and an eviction
// took the Map's first entry. Both are O(size) in V8 once the Map is large — measured with 10,000 entries,
// a delete+set of one key cost 24 µs and taking the first key 6.7 µs (deleted entries stay as holes that
// every operation walks until the next rehash), which made a cached SSE GET slower than an uncached one.
// Here a hit only sets a flag; an insertion into a full map moves a hand around a ring of slots, clearing
// flags, and evicts the first entry neither used nor inserted since the hand last passed it: an
// approximation of LRU with O(1) amortized work and no reinsertion.
//
// An entry starts flagged, as textbook CLOCK loads a page with its reference bit set. Started clear, the
// newest entries were the first victims whenever every older entry had been read once: the hand cleared a
// ring of flags and stopped at the first fresh entry. The object-key cache did that to SSE objects written
// moments before their first GET (every PUT inserts its key), once 10,000 keys had been cached: ~1,100 of
// one benchmark round's 2,000 keys, each miss a KMS unwrap, and SSE GET rounds at 0.75× instead of 0.95×.

interface Slot<V> {
  value: V;
  used: boolean;
  readonly index: number;
}

export class ClockMap<V> {
  readonly #entries = new Map<string, Slot<V>>();
  /** ids by slot; undefined marks a free slot (never filled, or its entry deleted) */
  readonly #ring: Array<string | undefined> = [];
  #hand = 0;
  readonly maxEntries: number;

  constructor(maxEntries: number) {
    if (!(Number.isInteger(maxEntries) && maxEntries >= 1)) throw new Error('ClockMap: maxEntries must be an integer ≥ 1');
    this.maxEntries = maxEntries;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The value, marked as used (it survives the hand's next pass). */
  get(id: string): V | undefined {
    const slot = this.#entries.get(id);
    if (slot === undefined) return undefined;
    slot.used = true;
    return slot.value;
  }

  /**
   * Insert or replace. A new id in a full map evicts one entry, which `onEvict` receives (e.g. to wipe a
   * key); a replaced value is returned to the caller instead.
   */
  set(id: string, value: V, onEvict?: (id: string, value: V) => void): V | undefined {
    const existing = this.#entries.get(id);
    if (existing !== undefined) {
      const previous = existing.value;
      existing.value = value;
      return previous;
    }
    let index: number;
    if (this.#ring.length < this.maxEntries) {
      index = this.#ring.length;
      this.#ring.push(id);
    } else {
      index = this.#freeSlot(onEvict);
      this.#ring[index] = id;
    }
    this.#entries.set(id, { value, used: true, index });
    return undefined;
  }

  /** Remove an entry (its slot is reused later); returns its value. */
  delete(id: string): V | undefined {
    const slot = this.#entries.get(id);
    if (slot === undefined) return undefined;
    this.#entries.delete(id);
    this.#ring[slot.index] = undefined;
    return slot.value;
  }

  *entries(): IterableIterator<[string, V]> {
    for (const [id, slot] of this.#entries) yield [id, slot.value];
  }

  *values(): IterableIterator<V> {
    for (const slot of this.#entries.values()) yield slot.value;
  }

  clear(): void {
    this.#entries.clear();
    this.#ring.length = 0;
    this.#hand = 0;
  }

  /** A slot for a new entry in a full ring: a free one, else the first entry the hand finds unused. */
  #freeSlot(onEvict: ((id: string, value: V) => void) | undefined): number {
    const mayEvict = this.#entries.size >= this.maxEntries;
    // Two passes at most: the first clears every flag it passes.
    for (;;) {
      const index = this.#hand;
      this.#hand = (index + 1) % this.#ring.length;
      const id = this.#ring[index];
      if (id === undefined) return index;
      if (!mayEvict) continue;
      const slot = this.#entries.get(id)!; // a filled slot's id is always in the map (delete empties the slot)
      if (slot.used) {
        slot.used = false;
        continue;
      }
      this.#entries.delete(id);
      onEvict?.(id, slot.value);
      return index;
    }
  }
}
