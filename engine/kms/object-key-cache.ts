// Unsealed object keys of SSE-S3 and SSE-KMS objects, so a GET of a recently read object skips the key
// unwrap: a KMS-cache lookup (a SHA-256 over its inputs plus the KMS context JSON), the KEK derivation
// (HMAC-SHA256) and the AES-GCM open of the sealed key — about 50 µs of event-loop time per GET, a tenth of
// a small encrypted GET's server CPU (bench/RESULTS.md).
//
// An entry is keyed by every input of the unwrap, length-prefixed: object type, bucket, object name, KMS
// key name, IV, sealed object key, sealed data key, context, bucket-key flag. A hit therefore returns what
// the unwrap would return for byte-identical metadata; metadata that differs in any byte is a miss and is
// unwrapped (and authenticated) again. It adds no new exposure: the data key that opens the object key sits
// in the KMS cache (engine/kms/cache.ts) for the same TTL, which is why the two share it — a master key
// deleted in the KMS keeps opening cached keys for up to that long in either layer. SSE-C keys are never
// cached: the customer's key must be checked on every request.
//
// Bounded, evicting with CLOCK (engine/kms/clock-map.ts: a hit only sets a flag), with an absolute TTL; an
// evicted or expired key is zeroed. Callers get their own copy.

import { ClockMap } from './clock-map.ts';

export interface ObjectKeyCacheOptions {
  /** most cached keys (default 10,000: ~3 MB with their ids) */
  readonly maxEntries?: number;
  /** absolute lifetime from when the key was unwrapped (default 5 min, the KMS cache's default) */
  readonly ttlMs?: number;
  /** clock in ms (tests); default Date.now */
  readonly now?: () => number;
}

interface Entry {
  readonly key: Buffer;
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

  static id(parts: readonly (string | undefined)[]): string {
    let id = '';
    for (const part of parts) id += part === undefined ? '-;' : `${part.length}:${part};`;
    return id;
  }

  get size(): number {
    return this.#entries.size;
  }

  get(id: string): Buffer | undefined {
    const entry = this.#entries.get(id);
    if (entry === undefined) {
      this.misses++;
      return undefined;
    }
    if (entry.expiresAtMs <= this.#now()) {
      this.#entries.delete(id);
      entry.key.fill(0);
      this.misses++;
      return undefined;
    }
    this.hits++;
    return Buffer.from(entry.key);
  }

  set(id: string, key: Buffer): void {
    const replaced = this.#entries.set(id, { key: Buffer.from(key), expiresAtMs: this.#now() + this.#ttlMs }, wipe);
    replaced?.key.fill(0);
  }

  clear(): void {
    for (const entry of this.#entries.values()) entry.key.fill(0);
    this.#entries.clear();
  }
}

function wipe(_id: string, entry: Entry): void {
  entry.key.fill(0);
}
