// The master-key cache: wraps any KeyStore (minio/kes keystore.go `keyCache`, reference/sse-kms-kes.md §14.7).
// KES caches master keys, not data keys, so a busy MinIO costs one backend read per key per expiry period.
//
//   get      hit → mark used, return; miss → one backend read per name however many requests miss together
//            (single-flight "barrier"), then cache it.
//   create   writes through, not cached.   delete   backend first, then the cache.   list   always the backend.
//   status   while the backend is known to be offline: fails at once (→ /v1/ready 504) instead of waiting.
//
// Expiry (the `cache.expiry` config):
//   any      every `any`, drop everything (≤ 0: never).
//   unused   every `unused/2`, drop entries not used since the previous sweep, clear the flag of the rest — so an
//            idle key lives between unused/2 and unused. ≤ 0 disables it.
//   offline  a status probe every `probeIntervalMs` (KES: 10 s) marks the backend offline/online. When `offline` > 0
//            and the backend is offline, the two sweeps above pause (cached keys keep serving, MinIO keeps working)
//            and everything is dropped every `offline` instead. When `offline` ≤ 0 the sweeps never pause.
// Known trade-off (KES PR #172): a key deleted through another server stays usable here until it is evicted.

import { copyKeyVersion, type KeyVersion } from '../key-version.ts';
import { KeyStoreUnreachableError, type KeyListPage, type KeyStore, type KeyStoreStatus } from './keystore.ts';

export interface CacheExpiry {
  readonly anyMs: number;
  readonly unusedMs: number;
  readonly offlineMs: number;
}

export interface CacheOptions {
  readonly expiry: CacheExpiry;
  /** KES probes every 10 s; tests shorten it */
  readonly probeIntervalMs?: number;
  /** called on every get: whether it was served from the cache */
  readonly onLookup?: (hit: boolean) => void;
}

export const defaultProbeIntervalMs = 10_000;

interface CacheEntry {
  readonly version: KeyVersion;
  used: boolean;
}

export class CachedKeyStore implements KeyStore {
  readonly description: string;
  readonly #store: KeyStore;
  readonly #onLookup: ((hit: boolean) => void) | undefined;
  readonly #entries = new Map<string, CacheEntry>();
  readonly #inFlight = new Map<string, Promise<KeyVersion>>();
  readonly #timers: NodeJS.Timeout[] = [];
  /** bumped by every delete/clear, so a read that raced a delete does not put the deleted key back */
  #generation = 0;
  #offline = false;

  constructor(store: KeyStore, options: CacheOptions) {
    this.#store = store;
    this.#onLookup = options.onLookup;
    this.description = `${store.description} (cached)`;
    const { anyMs, unusedMs, offlineMs } = options.expiry;
    const pausedWhenOffline = (): boolean => this.#offline && offlineMs > 0;
    this.#every(anyMs, () => {
      if (!pausedWhenOffline()) this.#clear();
    });
    this.#every(unusedMs / 2, () => {
      if (pausedWhenOffline()) return;
      for (const [name, entry] of this.#entries) {
        if (entry.used) entry.used = false;
        else this.#evict(name);
      }
    });
    this.#every(offlineMs, () => {
      if (this.#offline) this.#clear();
    });
    this.#every(options.probeIntervalMs ?? defaultProbeIntervalMs, () => {
      this.#store.status().then(
        () => (this.#offline = false),
        () => (this.#offline = true),
      );
    });
  }

  #every(intervalMs: number, task: () => void): void {
    if (!(intervalMs > 0) || !Number.isFinite(intervalMs)) return;
    const timer = setInterval(task, intervalMs);
    timer.unref(); // never keeps the process alive
    this.#timers.push(timer);
  }

  #evict(name: string): void {
    const entry = this.#entries.get(name);
    if (entry === undefined) return;
    this.#entries.delete(name);
    entry.version.key.fill(0);
    entry.version.hmacKey?.fill(0);
  }

  #clear(): void {
    this.#generation++;
    for (const name of [...this.#entries.keys()]) this.#evict(name);
  }

  /** number of cached keys (metrics, tests) */
  get size(): number {
    return this.#entries.size;
  }

  get offline(): boolean {
    return this.#offline;
  }

  async create(name: string, version: KeyVersion): Promise<void> {
    await this.#store.create(name, version);
  }

  async get(name: string): Promise<KeyVersion> {
    const entry = this.#entries.get(name);
    if (entry !== undefined) {
      entry.used = true;
      this.#onLookup?.(true);
      return copyKeyVersion(entry.version);
    }
    this.#onLookup?.(false);
    let load = this.#inFlight.get(name);
    if (load === undefined) {
      const generation = this.#generation;
      load = this.#store.get(name).then((version) => {
        if (generation === this.#generation) {
          this.#evict(name);
          this.#entries.set(name, { version: copyKeyVersion(version), used: true });
        }
        return version;
      });
      const settled = (): void => void this.#inFlight.delete(name);
      load.then(settled, settled);
      this.#inFlight.set(name, load);
    }
    return copyKeyVersion(await load);
  }

  async delete(name: string): Promise<void> {
    this.#generation++;
    try {
      await this.#store.delete(name);
    } finally {
      this.#evict(name);
    }
  }

  list(prefix: string, options?: { readonly startAt?: string; readonly limit?: number }): Promise<KeyListPage> {
    return this.#store.list(prefix, options);
  }

  async status(): Promise<KeyStoreStatus> {
    if (this.#offline) throw new KeyStoreUnreachableError('key store is offline');
    return this.#store.status();
  }

  async close(): Promise<void> {
    for (const timer of this.#timers) clearInterval(timer);
    this.#timers.length = 0;
    this.#clear();
    await this.#store.close();
  }
}
