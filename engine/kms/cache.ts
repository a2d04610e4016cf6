// A caching layer that wraps any `Kms` (STYLE.md: KES `internal/cache` — caching is a separate layer, not code in
// the callers; reference/sse-kms-kes.md §15). MinIO itself caches nothing and pays one KMS Decrypt per GET, per
// UploadPart, per listed SSE-S3 object (§15.1; minio/minio#9214, #10261, #16475). This layer:
//
//   - caches unsealed data keys by (key name, sealed data key, context) in a bounded map with an absolute TTL,
//     evicting with CLOCK (an LRU approximation in which a hit only sets a flag: engine/kms/clock-map.ts).
//     A hit returns exactly what the KMS returned for byte-identical inputs, so serving it is as correct as asking
//     again — except that a master key deleted or disabled in the KMS keeps opening cached data keys for up to
//     `ttlMs` (KES's own cache has the same window, §16 #14). Entries are keyed by a SHA-256 of the
//     length-prefixed inputs: a different context or key name is a different entry and goes to the KMS, which
//     decides.
//   - generateKey results go into the decrypt cache too (their sealed form is known), so the first GET after a
//     PUT is a hit — unless `cacheGeneratedKeys` is off because a cache in front (the server's object-key cache)
//     already holds what that GET needs. generateKey itself is never cached: every call yields a fresh data key.
//   - concurrent misses for one entry make one inner call (singleflight, KES's "barrier").
//   - distinct misses within `batchWindowMs` are dispatched together: the inner Kms has no bulk API, so a batch is
//     a group of parallel calls, but at most `maxBatch` per group and `maxConcurrentCalls` in flight in total, so a
//     burst of 1,000 listings queues here instead of opening 1,000 KMS connections (minio/minio#16475). The queue
//     itself is bounded (`maxQueuedCalls`): beyond it calls fail fast as Unavailable (→ 503) instead of growing
//     memory without limit. generateKey/createKey/describeKey share the concurrency bound but skip the window.
//   - when the inner KMS is Unavailable, cached entries keep serving until their TTL (like KES's offline cache);
//     misses fail with the inner KmsError. Failures are never cached, so recovery needs nothing.
//
// Plaintext data keys live only in this process's memory: every caller gets its own Buffer copy; the cache's copy
// is zeroed when it is evicted, expires, or the cache is cleared/closed. (JavaScript cannot promise that no other
// copy exists — the inner Kms or the GC may have made one — so "zeroed where possible".)

import { sha256 } from '../crypto/sha256.ts';
import { ClockMap } from './clock-map.ts';
import { KmsError, type DataKey, type Kms, type KmsStatus } from './kms.ts';

export interface KeyCacheOptions {
  /** most cached data keys; beyond it one not used recently is evicted (default 10,000 ≈ 1 MB) */
  maxEntries?: number;
  /** absolute lifetime of a cached data key from when the KMS returned it (default 5 min) */
  ttlMs?: number;
  /** how long a decrypt miss waits for others to join its batch (default 2 ms; 0 = next timer tick) */
  batchWindowMs?: number;
  /** most inner calls dispatched together (default 32) */
  maxBatch?: number;
  /** most inner calls in flight at once, over all operations (default 16) */
  maxConcurrentCalls?: number;
  /** most calls waiting for a slot; beyond it calls fail as Unavailable (default 65,536) */
  maxQueuedCalls?: number;
  /** the clock for TTL decisions, in ms (tests); default Date.now */
  now?: () => number;
  /**
   * put generateKey results into the decrypt cache (default true). The server turns it off: its object-key cache
   * (engine/kms/object-key-cache.ts) is filled by every SSE write and answers the reads before this cache is
   * asked, so a second copy of each new data key only cost an SSE PUT ~5 µs (a SHA-256, a copy, an insert).
   */
  cacheGeneratedKeys?: boolean;
}

export interface KeyCacheStats {
  /** calls made to the inner Kms */
  kmsCalls: { generate: number; decrypt: number; create: number; describe: number };
  /** decrypts served from the cache */
  hits: number;
  /** decrypts not served from the cache (each either started an inner call or joined one) */
  misses: number;
  /** misses that joined an inner call already in flight for the same entry */
  singleflightJoins: number;
  /** groups of inner calls dispatched together */
  batches: number;
  batchSizeMax: number;
  /** entries dropped for capacity or expiry (not by clear/close) */
  evictions: number;
  /** live entries now */
  entries: number;
}

export const keyCacheDefaults = {
  maxEntries: 10_000,
  ttlMs: 5 * 60_000,
  batchWindowMs: 2,
  maxBatch: 32,
  maxConcurrentCalls: 16,
  maxQueuedCalls: 65_536,
} as const;

const limits = {
  maxEntries: 10_000_000,
  ttlMs: 24 * 60 * 60_000,
  batchWindowMs: 1_000,
  maxBatch: 4_096,
  maxConcurrentCalls: 4_096,
  maxQueuedCalls: 10_000_000,
} as const;

/** Expired entries are also swept in the background at least this often, so an idle cache drops its keys. */
const sweepIntervalMsMax = 60_000;

function option(name: keyof typeof limits, value: number | undefined, minimum: number): number {
  const chosen = value ?? keyCacheDefaults[name];
  if (!Number.isSafeInteger(chosen) || chosen < minimum || chosen > limits[name]) {
    throw new RangeError(`KeyCacheOptions.${name} must be an integer in ${minimum}..${limits[name]}, got ${String(value)}`);
  }
  return chosen;
}

function lengthPrefix(length: number): Buffer {
  const prefix = Buffer.alloc(4);
  prefix.writeUInt32BE(length);
  return prefix;
}

/** SHA-256 over length-prefixed (key name, ciphertext, context): unambiguous, and bounded in size whatever the inputs. */
function entryId(keyName: string, ciphertext: Buffer, context: Buffer): string {
  return sha256(lengthPrefix(Buffer.byteLength(keyName, 'utf8')), keyName, lengthPrefix(ciphertext.length), ciphertext, context).toString('base64');
}

/** A copy that never lives in Buffer's shared allocation pool, so zeroing it leaves nothing behind. */
function privateCopy(bytes: Uint8Array): Buffer {
  const copy = Buffer.alloc(bytes.length);
  copy.set(bytes);
  return copy;
}

interface Entry {
  readonly plaintext: Buffer;
  readonly expiresAtMs: number;
}

/** One inner decrypt shared by every concurrent miss of an entry; the last waiter zeroes the shared result. */
interface Flight {
  readonly promise: Promise<Buffer>;
  waiters: number;
}

interface Job {
  readonly start: () => Promise<void>;
}

export class CachingKms implements Kms {
  readonly #inner: Kms;
  readonly #ttlMs: number;
  readonly #batchWindowMs: number;
  readonly #maxBatch: number;
  readonly #maxConcurrentCalls: number;
  readonly #maxQueuedCalls: number;
  readonly #now: () => number;

  readonly #entries: ClockMap<Entry>;
  readonly #flights = new Map<string, Flight>();
  /** bumped by clear/close: inner results that started before are handed out but not cached */
  #epoch = 0;
  #closed = false;
  #sweepTimer: NodeJS.Timeout | undefined;
  #nextSweepAtMs = 0;

  // dispatcher: a FIFO (array + head index) of calls waiting for a slot
  #queue: Job[] = [];
  #queueHead = 0;
  #inFlight = 0;
  /** the batch window has elapsed (or an urgent call arrived): dispatch whenever a slot is free */
  #ready = false;
  #windowTimer: NodeJS.Timeout | undefined;

  readonly #cacheGeneratedKeys: boolean;

  readonly #stats = {
    kmsCalls: { generate: 0, decrypt: 0, create: 0, describe: 0 },
    hits: 0,
    misses: 0,
    singleflightJoins: 0,
    batches: 0,
    batchSizeMax: 0,
    evictions: 0,
  };

  constructor(inner: Kms, options: KeyCacheOptions = {}) {
    this.#inner = inner;
    this.#entries = new ClockMap<Entry>(option('maxEntries', options.maxEntries, 1));
    this.#ttlMs = option('ttlMs', options.ttlMs, 1);
    this.#batchWindowMs = option('batchWindowMs', options.batchWindowMs, 0);
    this.#maxBatch = option('maxBatch', options.maxBatch, 1);
    this.#maxConcurrentCalls = option('maxConcurrentCalls', options.maxConcurrentCalls, 1);
    this.#maxQueuedCalls = option('maxQueuedCalls', options.maxQueuedCalls, 1);
    this.#now = options.now ?? Date.now;
    this.#cacheGeneratedKeys = options.cacheGeneratedKeys ?? true;
    const innerSync = inner.generateKeySync;
    if (innerSync !== undefined) {
      // An in-process KMS has no round trip to bound, so there is no slot to wait for: the call is made at once,
      // counted and (when generated keys are cached) cached as generateKey does.
      this.generateKeySync = (keyName, context) => {
        this.#assertOpen();
        this.#stats.kmsCalls.generate++;
        this.#stats.batches++;
        this.#stats.batchSizeMax = Math.max(this.#stats.batchSizeMax, 1);
        const dataKey = innerSync(keyName, context);
        if (this.#cacheGeneratedKeys && Buffer.isBuffer(context) && Buffer.isBuffer(dataKey.ciphertext)) {
          this.#insert(entryId(keyName, dataKey.ciphertext, context), dataKey.plaintext);
        }
        return dataKey;
      };
    }
  }

  /** Present when the inner KMS has it (an in-process KMS): see Kms.generateKeySync. */
  readonly generateKeySync?: (keyName: string, context: Buffer) => DataKey;

  get defaultKeyName(): string {
    return this.#inner.defaultKeyName;
  }

  stats(): KeyCacheStats {
    this.#sweep(this.#now());
    const s = this.#stats;
    return {
      kmsCalls: { ...s.kmsCalls },
      hits: s.hits,
      misses: s.misses,
      singleflightJoins: s.singleflightJoins,
      batches: s.batches,
      batchSizeMax: s.batchSizeMax,
      evictions: s.evictions,
      entries: this.#entries.size,
    };
  }

  async generateKey(keyName: string, context: Buffer): Promise<DataKey> {
    this.#assertOpen();
    if (!Buffer.isBuffer(context)) return this.#inner.generateKey(keyName, context); // the inner Kms rejects it
    const contextCopy = Buffer.from(context); // the caller may reuse its buffer while we wait for a slot
    const epoch = this.#epoch;
    const dataKey = await this.#schedule(() => {
      this.#stats.kmsCalls.generate++;
      return this.#inner.generateKey(keyName, contextCopy);
    }, true);
    if (this.#cacheGeneratedKeys && epoch === this.#epoch && Buffer.isBuffer(dataKey.ciphertext)) {
      this.#insert(entryId(keyName, dataKey.ciphertext, contextCopy), dataKey.plaintext);
    }
    return dataKey;
  }

  async decrypt(keyName: string, ciphertext: Buffer, context: Buffer): Promise<Buffer> {
    this.#assertOpen();
    if (!Buffer.isBuffer(ciphertext) || !Buffer.isBuffer(context)) {
      this.#stats.kmsCalls.decrypt++;
      return this.#inner.decrypt(keyName, ciphertext, context); // the inner Kms rejects it
    }
    const id = entryId(keyName, ciphertext, context);
    const nowMs = this.#now();
    this.#maybeSweep(nowMs);
    const entry = this.#entries.get(id);
    if (entry !== undefined) {
      if (entry.expiresAtMs > nowMs) {
        this.#stats.hits++;
        return privateCopy(entry.plaintext);
      }
      this.#drop(id, entry, true);
    }
    this.#stats.misses++;
    let flight = this.#flights.get(id);
    if (flight !== undefined) {
      this.#stats.singleflightJoins++;
      flight.waiters++;
    } else {
      flight = this.#startFlight(id, keyName, ciphertext, context);
    }
    return this.#await(flight);
  }

  async createKey(keyName: string): Promise<void> {
    this.#assertOpen();
    await this.#schedule(() => {
      this.#stats.kmsCalls.create++;
      return this.#inner.createKey(keyName);
    }, true);
  }

  async describeKey(keyName: string): Promise<{ name: string }> {
    this.#assertOpen();
    // Not cached: MinIO's periodic DescribeKey exists to keep the key warm *in the KMS* (§15.1).
    return this.#schedule(() => {
      this.#stats.kmsCalls.describe++;
      return this.#inner.describeKey(keyName);
    }, true);
  }

  /** Health of the inner KMS; deliberately not queued behind key operations, and not cached. */
  status(): Promise<KmsStatus> {
    return this.#inner.status();
  }

  /** Drop (and zero) every cached key, e.g. after a master key was deleted or rotated in the KMS. */
  clear(): void {
    this.#epoch++;
    for (const entry of this.#entries.values()) entry.plaintext.fill(0);
    this.#entries.clear();
    this.#stopSweeper();
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.clear();
    await this.#inner.close();
  }

  #assertOpen(): void {
    if (this.#closed) throw new KmsError('Unavailable', 'the KMS key cache is closed');
  }

  #startFlight(id: string, keyName: string, ciphertext: Buffer, context: Buffer): Flight {
    const epoch = this.#epoch;
    const ciphertextCopy = Buffer.from(ciphertext);
    const contextCopy = Buffer.from(context);
    const promise = (async () => {
      try {
        const plaintext = await this.#schedule(() => {
          this.#stats.kmsCalls.decrypt++;
          return this.#inner.decrypt(keyName, ciphertextCopy, contextCopy);
        }, false);
        if (epoch === this.#epoch) this.#insert(id, plaintext);
        return plaintext;
      } finally {
        this.#flights.delete(id); // before any waiter resumes: later misses start a new call or hit the cache
      }
    })();
    const flight: Flight = { promise, waiters: 1 };
    this.#flights.set(id, flight);
    return flight;
  }

  async #await(flight: Flight): Promise<Buffer> {
    let shared: Buffer | undefined;
    try {
      shared = await flight.promise;
      return privateCopy(shared);
    } finally {
      flight.waiters--;
      if (flight.waiters === 0) shared?.fill(0);
    }
  }

  #insert(id: string, plaintext: Uint8Array): void {
    if (this.#closed) return;
    const nowMs = this.#now();
    const replaced = this.#entries.set(id, { plaintext: privateCopy(plaintext), expiresAtMs: nowMs + this.#ttlMs }, this.#evicted);
    replaced?.plaintext.fill(0);
    this.#startSweeper();
  }

  /** ClockMap's eviction callback: the entry has left the map already. */
  readonly #evicted = (_id: string, entry: Entry): void => {
    entry.plaintext.fill(0);
    this.#stats.evictions++;
  };

  #drop(id: string, entry: Entry, counted: boolean): void {
    entry.plaintext.fill(0);
    this.#entries.delete(id);
    if (counted) this.#stats.evictions++;
  }

  #sweep(nowMs: number): void {
    for (const [id, entry] of this.#entries.entries()) {
      if (entry.expiresAtMs <= nowMs) this.#drop(id, entry, true);
    }
    this.#nextSweepAtMs = nowMs + Math.min(this.#ttlMs, sweepIntervalMsMax);
    if (this.#entries.size === 0) this.#stopSweeper();
  }

  /** A full sweep at most once per sweep interval of the (possibly fake) clock: O(entries) amortised to O(1). */
  #maybeSweep(nowMs: number): void {
    if (nowMs >= this.#nextSweepAtMs) this.#sweep(nowMs);
  }

  #startSweeper(): void {
    if (this.#sweepTimer !== undefined) return;
    this.#sweepTimer = setInterval(() => this.#sweep(this.#now()), Math.min(this.#ttlMs, sweepIntervalMsMax));
    this.#sweepTimer.unref(); // never keeps the process alive
  }

  #stopSweeper(): void {
    if (this.#sweepTimer === undefined) return;
    clearInterval(this.#sweepTimer);
    this.#sweepTimer = undefined;
  }

  // ---- dispatcher: bounded batches, bounded concurrency, bounded queue ----

  /** Run `call` when a slot is free. `urgent` calls (generate/create/describe) do not wait for the batch window. */
  #schedule<T>(call: () => Promise<T>, urgent: boolean): Promise<T> {
    if (urgent && this.#queue.length === this.#queueHead && this.#inFlight < this.#maxConcurrentCalls) {
      // Nothing waits and a slot is free: start now, without the queue's promise and closure (an SSE PUT's
      // generateKey paid ~7 µs for them).
      this.#inFlight++;
      this.#stats.batches++;
      this.#stats.batchSizeMax = Math.max(this.#stats.batchSizeMax, 1);
      let running: Promise<T>;
      try {
        running = call();
      } catch (error) {
        running = Promise.reject(error); // an inner Kms that throws instead of rejecting
      }
      void running.then(this.#callDone, this.#callDone);
      return running;
    }
    if (this.#queue.length - this.#queueHead >= this.#maxQueuedCalls) {
      return Promise.reject(new KmsError('Unavailable', `too many KMS calls queued (${this.#maxQueuedCalls})`));
    }
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({
        start: async () => {
          try {
            resolve(await call());
          } catch (error) {
            reject(error);
          }
        },
      });
      if (urgent) this.#ready = true;
      this.#pump();
    });
  }

  readonly #callDone = (): void => {
    this.#inFlight--;
    this.#pump();
  };

  #pump(): void {
    const queued = () => this.#queue.length - this.#queueHead;
    if (queued() === 0) return;
    if (!this.#ready && queued() < this.#maxBatch) {
      // Wait for the window to fill a batch (a full batch goes at once).
      this.#windowTimer ??= setTimeout(() => {
        this.#windowTimer = undefined;
        this.#ready = true;
        this.#pump();
      }, this.#batchWindowMs);
      return;
    }
    while (queued() > 0 && this.#inFlight < this.#maxConcurrentCalls) {
      const size = Math.min(queued(), this.#maxBatch, this.#maxConcurrentCalls - this.#inFlight);
      const batch = this.#queue.slice(this.#queueHead, this.#queueHead + size);
      this.#queueHead += size;
      this.#stats.batches++;
      this.#stats.batchSizeMax = Math.max(this.#stats.batchSizeMax, size);
      for (const job of batch) {
        this.#inFlight++;
        void job.start().finally(() => {
          this.#inFlight--;
          this.#pump();
        });
      }
    }
    if (this.#queueHead > 1024 && this.#queueHead * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#queueHead);
      this.#queueHead = 0;
    }
    if (queued() === 0) {
      // Everything waiting went out; the next miss opens a new window.
      this.#queue = [];
      this.#queueHead = 0;
      this.#ready = false;
      if (this.#windowTimer !== undefined) {
        clearTimeout(this.#windowTimer);
        this.#windowTimer = undefined;
      }
    }
  }
}
