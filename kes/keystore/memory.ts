// The in-memory key store: what KES runs when the config names no `keystore` (reference/sse-kms-kes.md §14.6).
// Keys are lost on restart; the server warns about it at startup.

import { kesErrors } from '../errors.ts';
import { copyKeyVersion, type KeyVersion } from '../key-version.ts';
import { listNamesMax, pageOfNames, type KeyListPage, type KeyStore, type KeyStoreStatus } from './keystore.ts';

export class MemoryKeyStore implements KeyStore {
  readonly description = 'memory';
  readonly #keys = new Map<string, KeyVersion>();

  async create(name: string, version: KeyVersion): Promise<void> {
    if (this.#keys.has(name)) throw kesErrors.keyExists();
    this.#keys.set(name, copyKeyVersion(version));
  }

  async get(name: string): Promise<KeyVersion> {
    const version = this.#keys.get(name);
    if (version === undefined) throw kesErrors.keyNotFound();
    return copyKeyVersion(version);
  }

  async delete(name: string): Promise<void> {
    const version = this.#keys.get(name);
    if (version === undefined) throw kesErrors.keyNotFound();
    version.key.fill(0);
    version.hmacKey?.fill(0);
    this.#keys.delete(name);
  }

  async list(prefix: string, options: { readonly startAt?: string; readonly limit?: number } = {}): Promise<KeyListPage> {
    const names = [...this.#keys.keys()].sort();
    return pageOfNames(names, prefix, options.startAt, options.limit ?? listNamesMax);
  }

  async status(): Promise<KeyStoreStatus> {
    return { latencyMs: 0 };
  }

  async close(): Promise<void> {
    for (const version of this.#keys.values()) {
      version.key.fill(0);
      version.hmacKey?.fill(0);
    }
    this.#keys.clear();
  }
}
