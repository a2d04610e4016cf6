// Unsealed object keys of SSE-S3 and SSE-KMS objects, so a GET of a recently read object skips the key
// unwrap: a KMS-cache lookup (a SHA-256 over its inputs plus the KMS context JSON), the KEK derivation
// (HMAC-SHA256) and the AES-GCM open of the sealed key — about 50 µs of event-loop time per GET, a tenth of
// a small encrypted GET's server CPU (bench/RESULTS.md).
//
// An entry is found by its sealed object key (the record's base64 text: random per object, so only copies of
// the same metadata share one) and holds every other input of the unwrap: object type, bucket, object name,
// KMS key name, IV, sealed data key, context, bucket-key flag. A hit needs all of them equal, so it returns
// what the unwrap would return for byte-identical metadata; metadata that differs in any byte is a miss and
// is unwrapped (and authenticated) again. It adds no new exposure: the data key that opens the object key sits
// in the KMS cache (engine/kms/cache.ts) for the same TTL, which is why the two share it — a master key
// deleted in the KMS keeps opening cached keys for up to that long in either layer. SSE-C keys are never
// cached: the customer's key must be checked on every request.
//
// The entries were keyed by one length-prefixed string of all the inputs (~300 characters). Hashing that
// string cost ~2.5 µs per PUT (insert) and ~2 µs per GET (lookup), a tenth of a 4 KiB SSE GET's extra
// server CPU; the sealed key alone is 88 characters and the inputs compare as the strings they already are.
//
// Bounded, evicting with CLOCK (engine/kms/clock-map.ts: a hit only sets a flag), with an absolute TTL; an
// evicted or expired key is zeroed. Callers get their own copy.

import { ClockMap } from './clock-map.ts';

export interface ObjectKeyCacheOptions {
  /** most cached keys (default 10,000: ~3 MB with their inputs) */
  readonly maxEntries?: number;
  /** absolute lifetime from when the key was unwrapped (default 5 min, the KMS cache's default) */
  readonly ttlMs?: number;
  /** clock in ms (tests); default Date.now */
  readonly now?: () => number;
}

/** The unwrap's inputs besides the sealed key, in a fixed order chosen by the caller; absent ones undefined. */
export type ObjectKeyInputs = readonly (string | undefined)[];

interface Entry {
  readonly key: Buffer;
  readonly inputs: ObjectKeyInputs;
  readonly expiresAtMs: number;
}

export class ObjectKeyCache {
  readonly #entries: ClockMap<Entry>;
  readonly #ttlMs: number;
  readonly #now: () => number;
  hits = 0;
  misses = 0;

  constructor(options: ObjectKeyCacheOptions = {}) {
    const maxEntries = options.maxEntries ?? 10_000;
    this.#ttlMs = options.ttlMs ?? 5 * 60_000;
    this.#now = options.now ?? Date.now;
    if (!(Number.isInteger(maxEntries) && maxEntries >= 1)) throw new Error('ObjectKeyCache: maxEntries must be ≥ 1');
    if (!(this.#ttlMs > 0)) throw new Error('ObjectKeyCache: ttlMs must be > 0');
    this.#entries = new ClockMap<Entry>(maxEntries);
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The object key cached for `sealedKey` if it was stored with exactly these `inputs` (a copy), else undefined. */
  get(sealedKey: string, inputs: ObjectKeyInputs): Buffer | undefined {
    const entry = this.#entries.get(sealedKey);
    if (entry === undefined || !sameInputs(entry.inputs, inputs)) {
      this.misses++;
      return undefined;
    }
    if (entry.expiresAtMs <= this.#now()) {
      this.#entries.delete(sealedKey);
      entry.key.fill(0);
      this.misses++;
      return undefined;
    }
    this.hits++;
    return Buffer.from(entry.key);
  }

  /** Cache (a copy of) `key`, replacing whatever `sealedKey` held: the latest unwrap wins. */
  set(sealedKey: string, inputs: ObjectKeyInputs, key: Buffer): void {
    const replaced = this.#entries.set(sealedKey, { key: Buffer.from(key), inputs, expiresAtMs: this.#now() + this.#ttlMs }, wipe);
    replaced?.key.fill(0);
  }

  clear(): void {
    for (const entry of this.#entries.values()) entry.key.fill(0);
    this.#entries.clear();
  }
}

function sameInputs(a: ObjectKeyInputs, b: ObjectKeyInputs): boolean {
  if (a.length !== b.length) return false;
  for (let index = 0; index < a.length; index++) if (a[index] !== b[index]) return false;
  return true;
}

function wipe(_id: string, entry: Entry): void {
  entry.key.fill(0);
}
