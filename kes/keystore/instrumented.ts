// Counts every operation that reaches the key-store backend (metrics.ts), by outcome. It sits between the cache
// and the backend, so cache hits are not counted: the numbers are what the backend actually served.

import { isKesError } from '../errors.ts';
import type { KeyVersion } from '../key-version.ts';
import type { KeyStoreOperation, KeyStoreResult } from '../metrics.ts';
import type { KeyListPage, KeyStore, KeyStoreStatus } from './keystore.ts';

export type OperationObserver = (operation: KeyStoreOperation, result: KeyStoreResult) => void;

export class InstrumentedKeyStore implements KeyStore {
  readonly description: string;
  readonly #store: KeyStore;
  readonly #observe: OperationObserver;

  constructor(store: KeyStore, observe: OperationObserver) {
    this.#store = store;
    this.#observe = observe;
    this.description = store.description;
  }

  async #count<T>(operation: KeyStoreOperation, run: () => Promise<T>): Promise<T> {
    try {
      const result = await run();
      this.#observe(operation, 'ok');
      return result;
    } catch (error) {
      const status = isKesError(error) ? error.status : 0;
      this.#observe(operation, status === 404 ? 'not_found' : status === 400 ? 'exists' : 'error');
      throw error;
    }
  }

  create(name: string, version: KeyVersion): Promise<void> {
    return this.#count('create', () => this.#store.create(name, version));
  }

  get(name: string): Promise<KeyVersion> {
    return this.#count('get', () => this.#store.get(name));
  }

  delete(name: string): Promise<void> {
    return this.#count('delete', () => this.#store.delete(name));
  }

  list(prefix: string, options?: { readonly startAt?: string; readonly limit?: number }): Promise<KeyListPage> {
    return this.#count('list', () => this.#store.list(prefix, options));
  }

  status(): Promise<KeyStoreStatus> {
    return this.#count('status', () => this.#store.status());
  }

  close(): Promise<void> {
    return this.#store.close();
  }
}
