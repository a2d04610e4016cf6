// Every error the KES server sends, declared once (reference/sse-kms-kes.md §14.4; texts from minio/kes server.go
// and kms-go `kes/error.go`). kms-go identifies errors by HTTP status AND message, so the texts are part of the
// wire contract: change one and MinIO stops recognising "key already exists" at startup (minio/minio#14716).
// Handlers throw a `KesError`; server.ts renders it as `{"message": "..."}`.

export class KesError extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** extra response headers, e.g. `Accept` on 405 */
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
    this.name = 'KesError';
  }
}

export function isKesError(error: unknown): error is KesError {
  return error instanceof KesError;
}

export const kesErrors = {
  // kms-go catalogue
  notAllowed: () => new KesError(403, 'not authorized: insufficient permissions'),
  keyNotFound: () => new KesError(404, 'key does not exist'),
  keyExists: () => new KesError(400, 'key already exists'),
  decryptionFailed: () => new KesError(400, 'decryption failed: ciphertext is not authentic'),
  policyNotFound: () => new KesError(404, 'policy does not exist'),
  identityNotFound: () => new KesError(404, 'identity does not exist'),

  // transport / authentication (minio/kes auth.go)
  tlsRequired: () => new KesError(400, 'insecure connection: TLS is required'),
  clientCertificateRequired: () => new KesError(400, 'tls: client certificate is required'),
  clientCertificateNotVerified: (reason: string) => new KesError(400, `tls: failed to verify client certificate: ${reason}`),

  // routing and request shape (minio/kes internal/api/api.go, server.go)
  routeNotFound: () => new KesError(404, 'not found'),
  methodNotAllowed: (received: string, expected: string) =>
    new KesError(405, `received method '${received}' expected '${expected}'`, { Accept: expected }),
  invalidPath: () => new KesError(400, 'invalid request path'),
  invalidName: (kind: 'key' | 'policy' | 'identity', name: string) =>
    new KesError(
      400,
      kind === 'identity'
        ? `identity '${name}' is empty, too long or contains invalid characters`
        : `${kind} name '${name}' is empty, too long or contains invalid characters`,
    ),
  invalidPattern: (pattern: string) => new KesError(400, `listing pattern '${pattern}' is empty, too long or is invalid`),
  invalidBody: () => new KesError(400, 'invalid request body'),
  bodyTooLarge: (maxBodyBytes: number) => new KesError(413, `request body too large: at most ${maxBodyBytes} bytes allowed`),
  timeout: (timeoutMs: number) => new KesError(503, `request timed out after ${timeoutMs / 1000} s`),

  // key operations
  importCipherUnsupported: (cipher: string) => new KesError(406, `algorithm '${cipher}' is not supported`),
  importKeySize: (cipher: string) => new KesError(406, `invalid key size for '${cipher}'`),
  hmacUnsupported: () => new KesError(409, 'key does not support HMAC'),

  // key store
  keyStoreUnreachable: () => new KesError(504, 'key store is not reachable'),
  keyStoreUnavailable: () => new KesError(502, 'key store is unavailable'),
  keyStoreFailed: (what: 'create' | 'read' | 'delete' | 'list') => new KesError(502, `failed to ${what} key${what === 'list' ? 's' : ''}`),
  internal: (what: string) => new KesError(500, what),
} as const;
