// The KMS interface every backend implements (built-in single key, KES, …), and its one error type.
// Shape follows MinIO's `internal/kms` and the KES API (reference/sse-kms-kes.md §3, §4, §13, §14): a named
// master key seals fresh 32-byte data keys (DEKs); the object layer stores only the sealed DEK.
// Caching, retries and metrics are separate layers that wrap any `Kms` (STYLE.md, KES `internal/cache`);
// backends stay plain.

/**
 * What went wrong, independent of the backend. The API layer maps these to S3 errors in its catalog
 * (MinIO: KeyNotFound → 404 `kms:KeyNotFound`, DecryptionFailed → object key mismatch/tampered, …).
 * - `KeyNotFound`      the named master key does not exist (KES 404 "key does not exist")
 * - `KeyExists`        createKey for a key that exists (KES 400 "key already exists")
 * - `DecryptionFailed` the sealed DEK is malformed or not authentic for this key + context (KES 400)
 * - `Unavailable`      the KMS cannot be reached or was closed; retrying later may help
 * - `NotSupported`     the backend cannot do this at all (builtin: creating other keys; KES 501)
 * - `PermissionDenied` the KMS refused our identity (KES 403)
 * - `InvalidArgument`  the caller broke the contract (e.g. an empty context); a bug, not a client error
 */
export type KmsErrorKind =
  | 'KeyNotFound'
  | 'KeyExists'
  | 'DecryptionFailed'
  | 'Unavailable'
  | 'NotSupported'
  | 'PermissionDenied'
  | 'InvalidArgument';

/** The one error a `Kms` throws. Messages never contain key material (plaintext, master key, API key). */
export class KmsError extends Error {
  constructor(
    readonly kind: KmsErrorKind,
    message: string,
  ) {
    super(message);
    this.name = 'KmsError';
  }
}

export function isKmsError(error: unknown, kind?: KmsErrorKind): error is KmsError {
  return error instanceof KmsError && (kind === undefined || error.kind === kind);
}

/** Size of every data key a `Kms` generates (AES-256 / DARE key size). */
export const dataKeySizeBytes = 32;

export interface DataKey {
  /** the fresh data key; the caller derives the object's KEK from it and then drops it */
  readonly plaintext: Buffer;
  /** the data key sealed under the master key; opaque, stored in object metadata (§7.1 `…-S3-Kms-Sealed-Key`) */
  readonly ciphertext: Buffer;
}

export interface KmsStatus {
  /** backend name, e.g. 'builtin', 'kes' */
  readonly name: string;
  readonly defaultKeyName: string;
  /** per endpoint (the builtin KMS reports '127.0.0.1', like MinIO) */
  readonly endpoints: Readonly<Record<string, 'online' | 'offline'>>;
}

export interface Kms {
  /** The key used for SSE-S3, SSE-KMS without a key id, auto-encryption and config encryption. */
  readonly defaultKeyName: string;
  /**
   * A fresh 32-byte data key, sealed under `keyName` with `context` as associated data. `context` is the
   * canonical context JSON (§7.3): at least the two bytes `{}` — an absent context and `{}` differ.
   */
  generateKey(keyName: string, context: Buffer): Promise<DataKey>;
  /**
   * generateKey answered without a promise, offered only by a KMS that runs in this process (the built-in
   * one): same result, same errors (thrown). Every await on a new object's key cost a small SSE PUT's event
   * loop microtasks and a later turn; a KMS behind a network has no such method and callers fall back.
   */
  readonly generateKeySync?: (keyName: string, context: Buffer) => DataKey;
  /** Unseal a `DataKey.ciphertext`; the same `keyName` and byte-identical `context` are required. */
  decrypt(keyName: string, ciphertext: Buffer, context: Buffer): Promise<Buffer>;
  createKey(keyName: string): Promise<void>;
  describeKey(keyName: string): Promise<{ name: string }>;
  status(): Promise<KmsStatus>;
  close(): Promise<void>;
}
