// The one key-store interface every backend implements (STYLE.md, minio/kes `KeyStore`). A backend stores named
// `KeyVersion`s and nothing else: no caching (cache.ts wraps any store), no metrics (instrumented.ts), no
// authorization (auth.ts). Adding a backend means one new file here.
//
// Errors: `create` of an existing name throws kesErrors.keyExists(); `get`/`delete` of a missing name throw
// kesErrors.keyNotFound(); a backend that cannot be reached throws KeyStoreUnreachableError. Anything else is an
// I/O failure the server answers with 502.

import type { KeyVersion } from '../key-version.ts';

/** Most names one `list` call returns (~ 8 MB of JSON); `continueAt` names the first one left out. KES itself
 * lists without a limit and always answers continue_at "" (kms-go cannot page by it), so this is only a bound. */
export const listNamesMax = 100_000;

export interface KeyStoreStatus {
  /** time the backend took to answer a status probe */
  readonly latencyMs: number;
}

export interface KeyListPage {
  /** sorted names with the prefix, at most `limit` */
  readonly names: readonly string[];
  /** the first name not returned, or '' at the end of the listing */
  readonly continueAt: string;
}

export interface KeyStore {
  /** a short description for logs, e.g. `fs:/var/kes/keys` */
  readonly description: string;
  /** Store a new key; throws kesErrors.keyExists() if the name is taken. Never overwrites. */
  create(name: string, version: KeyVersion): Promise<void>;
  /** The stored key (a copy the caller may keep); throws kesErrors.keyNotFound(). */
  get(name: string): Promise<KeyVersion>;
  /** Remove a key; throws kesErrors.keyNotFound(). */
  delete(name: string): Promise<void>;
  /** Names starting with `prefix`, sorted, beginning at `startAt` (inclusive) when given. */
  list(prefix: string, options?: { readonly startAt?: string; readonly limit?: number }): Promise<KeyListPage>;
  /** Probe the backend; throws KeyStoreUnreachableError when it cannot be reached. */
  status(): Promise<KeyStoreStatus>;
  close(): Promise<void>;
}

export class KeyStoreUnreachableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'KeyStoreUnreachableError';
  }
}

/** Shared by backends that hold a full sorted name list: one page of it. */
export function pageOfNames(sortedNames: readonly string[], prefix: string, startAt: string | undefined, limit: number): KeyListPage {
  const names: string[] = [];
  for (const name of sortedNames) {
    if (!name.startsWith(prefix)) continue;
    if (startAt !== undefined && name < startAt) continue;
    if (names.length === limit) return { names, continueAt: name };
    names.push(name);
  }
  return { names, continueAt: '' };
}
