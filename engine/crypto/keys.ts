// Key derivations and sealing, verbatim from MinIO internal/crypto/key.go and internal/etag (reference
// sse-kms-kes.md §6; byte layouts in docs/encryption.md §2). Every HMAC input is a plain concatenation:
// no separators, no length prefixes.
//
//   external key (SSE-C client key, or KMS data key) ─ KEK (per object, derived) ─ seals ─ object key (OEK)
//   OEK ─ part keys (multipart data), ETag key (sealed ETags)

import { hmacSha256, hmacSha256Into, sha256 } from './sha256.ts';
import { secureRandomBytes, secureRandomFill } from '../../workers/random-pool.ts';
import { DareError, dareKeyBytes, dareNonceBytes, openPackages, randomDareNonce, sealPackages } from '../../workers/dare.ts';
import { nativeSseKeys } from '../../workers/native-gcm.ts';

export type SseDomain = 'SSE-S3' | 'SSE-KMS' | 'SSE-C';

/** Stored as X-Minio-Internal-Server-Side-Encryption-Seal-Algorithm. */
export const sealAlgorithm = 'DAREv2-HMAC-SHA256';

export const objectKeyBytes = 32;
export const sealIvBytes = 32;
/** DARE v2 of a 32-byte key: header 16 + payload 32 + tag 16. */
export const sealedObjectKeyBytes = 64;
/** One AWS ETag (an MD5). Sealed: 16 + 32 = 48 bytes. */
export const etagBytes = 16;

const objectKeyGenerationLabel = 'object-encryption-key generation';
const etagKeyLabel = 'SSE-etag';
const partNumberMax = 0xffffffff;

/** The sealed key did not open: wrong external key, domain, bucket/object or IV, or a tampered value. */
export class KeyUnsealError extends Error {
  constructor(options?: { cause?: unknown }) {
    // MinIO's crypto.ErrSecretKeyMismatch text; the API maps this to AccessDenied for SSE-C.
    super('The secret key does not match the secret key used during upload', options);
    this.name = 'KeyUnsealError';
  }
}

function assertInvariant(condition: boolean, message: string): asserts condition {
  if (!condition) throw new Error(`keys: invariant violated: ${message}`);
}

function assertKeyBytes(name: string, key: Uint8Array): void {
  assertInvariant(key.length === dareKeyBytes, `${name} must be ${dareKeyBytes} bytes, got ${key.length}`);
}

/** A path element that Go's path.Clean would change: '//', a '.' or '..' element, a leading or trailing '/'. */
const uncleanPathPattern = /\/\/|(?:^|\/)\.{1,2}(?:\/|$)|^\/|\/$/;

/** Go's path.Clean (lexical; the result never ends in '/' except for the root). */
function goPathClean(path: string): string {
  if (path === '') return '.';
  const rooted = path[0] === '/';
  const n = path.length;
  const out: string[] = [];
  let r = 0;
  let dotdot = 0; // index in `out` past which `..` may backtrack
  if (rooted) {
    out.push('/');
    r = 1;
    dotdot = 1;
  }
  while (r < n) {
    if (path[r] === '/') {
      r += 1;
    } else if (path[r] === '.' && (r + 1 === n || path[r + 1] === '/')) {
      r += 1;
    } else if (path[r] === '.' && path[r + 1] === '.' && (r + 2 === n || path[r + 2] === '/')) {
      r += 2;
      if (out.length > dotdot) {
        // Go: w--, then keep backing up until the byte just dropped was the separator.
        let dropped = out.pop();
        while (out.length > dotdot && dropped !== '/') dropped = out.pop();
      } else if (!rooted) {
        if (out.length > 0) out.push('/');
        out.push('.', '.');
        dotdot = out.length;
      }
    } else {
      if ((rooted && out.length !== 1) || (!rooted && out.length !== 0)) out.push('/');
      while (r < n && path[r] !== '/') {
        out.push(path[r]!);
        r += 1;
      }
    }
  }
  return out.length === 0 ? '.' : out.join('');
}

/**
 * Go's path.Join(bucket, object): join the non-empty elements with '/' and Clean (collapse '//', resolve
 * '.' and '..', drop a trailing '/'). Both empty → ''. This exact string is mixed into the KEK, so an
 * object written as `a//b` unseals as `a/b` (that is MinIO's behaviour, kept for compatibility).
 */
export function cleanObjectPath(bucket: string, object: string): string {
  if (bucket !== '' && object !== '') {
    const joined = `${bucket}/${object}`;
    // Nothing for Clean to do (the usual name): no empty, '.' or '..' element and no trailing '/'.
    if (!uncleanPathPattern.test(joined)) return joined;
  }
  const elements = [bucket, object];
  const first = elements.findIndex((element) => element !== '');
  if (first === -1) return '';
  return goPathClean(elements.slice(first).join('/'));
}

/** New OEK = HMAC-SHA256(EK, "object-encryption-key generation" ‖ 32 random bytes). */
export function generateObjectKey(externalKey: Buffer, random?: Buffer): Buffer {
  assertKeyBytes('external key', externalKey);
  if (random !== undefined) {
    assertInvariant(random.length === 32, 'object key randomness must be 32 bytes');
    return hmacSha256(externalKey, objectKeyGenerationLabel, random);
  }
  try {
    return hmacSha256(externalKey, objectKeyGenerationLabel, secureRandomFill(objectKeyRandomScratch));
  } finally {
    objectKeyRandomScratch.fill(0);
  }
}

/** The random input of the object key being generated (synchronously), wiped right after. */
const objectKeyRandomScratch = Buffer.alloc(32);

/** KEK = HMAC-SHA256(EK, IV ‖ domain ‖ "DAREv2-HMAC-SHA256" ‖ path.Join(bucket, object)). */
export function deriveKek(externalKey: Buffer, iv: Buffer, domain: SseDomain, bucket: string, object: string): Buffer {
  return deriveKekInto(Buffer.allocUnsafeSlow(objectKeyBytes), externalKey, iv, domain, bucket, object);
}

function deriveKekInto(out: Buffer, externalKey: Buffer, iv: Buffer, domain: SseDomain, bucket: string, object: string): Buffer {
  assertKeyBytes('external key', externalKey);
  assertInvariant(iv.length === sealIvBytes, `seal IV must be ${sealIvBytes} bytes`);
  return hmacSha256Into(out, externalKey, iv, domain, sealAlgorithm, cleanObjectPath(bucket, object)); // the path as UTF-8
}

/** The KEK of the seal/unseal in progress (both synchronous), wiped right after: no Buffer per object key. */
const kekScratch = Buffer.alloc(objectKeyBytes);
/** The nonce of the object-key seal in progress; sealPackages copies it into the sealed key's header. */
const sealNonceScratch = Buffer.alloc(dareNonceBytes);

/** Seal the OEK under the KEK as one final DARE v2 package with a random nonce (unless given): 64 bytes. */
export function sealObjectKey(
  objectKey: Buffer,
  externalKey: Buffer,
  domain: SseDomain,
  bucket: string,
  object: string,
  iv?: Buffer,
  nonce?: Buffer,
): { iv: Buffer; sealedKey: Buffer } {
  assertKeyBytes('object key', objectKey);
  const sealIv = iv ?? secureRandomBytes(sealIvBytes);
  let sealedKey: Buffer;
  try {
    sealedKey = sealPackages(deriveKekInto(kekScratch, externalKey, sealIv, domain, bucket, object), nonce ?? randomDareNonce(sealNonceScratch), 0, objectKey, true);
  } finally {
    kekScratch.fill(0);
  }
  assertInvariant(sealedKey.length === sealedObjectKeyBytes, 'sealed key size');
  return { iv: sealIv, sealedKey };
}

/** The random inputs of generateSealedObjectKey, given only by tests: the OEK's randomness, the seal IV, the DARE nonce. */
export interface ObjectKeyRandomness {
  readonly random: Buffer;
  readonly iv: Buffer;
  readonly nonce: Buffer;
}

/**
 * A new object key and its sealed form: generateObjectKey then sealObjectKey, as one native call when the
 * addon is there (native/sse_keys.c: the two HMACs and the seal without a Buffer or a call between them, which
 * on a busy event loop cost an SSE PUT's envelope as much as the KMS's part). Same bytes either way.
 */
export function generateSealedObjectKey(
  externalKey: Buffer,
  domain: SseDomain,
  bucket: string,
  object: string,
  randomness?: ObjectKeyRandomness,
): { objectKey: Buffer; iv: Buffer; sealedKey: Buffer } {
  assertKeyBytes('external key', externalKey);
  if (randomness !== undefined) {
    assertInvariant(randomness.random.length === 32 && randomness.iv.length === sealIvBytes && randomness.nonce.length === dareNonceBytes, 'object key randomness sizes');
  }
  if (nativeSseKeys === undefined) {
    const objectKey = generateObjectKey(externalKey, randomness?.random);
    return { objectKey, ...sealObjectKey(objectKey, externalKey, domain, bucket, object, randomness?.iv, randomness?.nonce) };
  }
  // The IV and the sealed key are stored in the clear: pooled memory. The key gets memory of its own.
  const iv = randomness?.iv ?? secureRandomFill(Buffer.allocUnsafe(sealIvBytes));
  const objectKey = Buffer.allocUnsafeSlow(objectKeyBytes);
  const sealedKey = Buffer.allocUnsafe(sealedObjectKeyBytes);
  try {
    nativeSseKeys.newSealedObjectKey(
      externalKey,
      randomness?.random ?? secureRandomFill(objectKeyRandomScratch),
      iv,
      randomness?.nonce ?? randomDareNonce(sealNonceScratch),
      `${domain}${sealAlgorithm}${cleanObjectPath(bucket, object)}`, // the KEK input after the IV (deriveKek)
      objectKey,
      sealedKey,
    );
  } finally {
    objectKeyRandomScratch.fill(0);
  }
  return { objectKey, iv, sealedKey };
}

/** Inverse of sealObjectKey. Any failure (wrong key, domain, path, IV; tampering) → KeyUnsealError. */
export function unsealObjectKey(sealedKey: Buffer, iv: Buffer, externalKey: Buffer, domain: SseDomain, bucket: string, object: string): Buffer {
  if (sealedKey.length !== sealedObjectKeyBytes || iv.length !== sealIvBytes || externalKey.length !== dareKeyBytes) {
    throw new KeyUnsealError();
  }
  let opened: { plaintext: Buffer; final: boolean };
  try {
    opened = openPackages(deriveKekInto(kekScratch, externalKey, iv, domain, bucket, object), sealedKey, 0);
  } catch (error) {
    if (error instanceof DareError) throw new KeyUnsealError({ cause: error });
    throw error;
  } finally {
    kekScratch.fill(0);
  }
  if (!opened.final || opened.plaintext.length !== objectKeyBytes) throw new KeyUnsealError();
  return opened.plaintext;
}

/** Part key = HMAC-SHA256(OEK, partNumber as uint32 LE). MinIO keys multipart data by part number. */
export function partKey(objectKey: Buffer, partNumber: number): Buffer {
  assertKeyBytes('object key', objectKey);
  assertInvariant(Number.isInteger(partNumber) && partNumber >= 0 && partNumber <= partNumberMax, `bad part number ${partNumber}`);
  const encoded = Buffer.allocUnsafe(4);
  encoded.writeUInt32LE(partNumber, 0);
  return hmacSha256(objectKey, encoded);
}

function etagKey(objectKey: Buffer): Buffer {
  assertKeyBytes('object key', objectKey);
  return hmacSha256(objectKey, etagKeyLabel);
}

/**
 * Sealed ETag = DARE v2 of the ETag under HMAC-SHA256(OEK, "SSE-etag"), random nonce: 16 B → 48 B
 * (stored as 96 hex chars). As in MinIO, an empty ETag stays empty.
 */
export function sealEtag(objectKey: Buffer, etag: Buffer): Buffer {
  const key = etagKey(objectKey);
  if (etag.length === 0) return Buffer.alloc(0);
  return sealPackages(key, randomDareNonce(), 0, etag, true);
}

/**
 * Inverse of sealEtag. Like MinIO's UnsealETag, a value of ≤ 16 bytes is not sealed and is returned as is.
 * A sealed value that does not open → KeyUnsealError (wrong object key or tampered metadata).
 */
export function unsealEtag(objectKey: Buffer, sealed: Buffer): Buffer {
  const key = etagKey(objectKey);
  if (sealed.length <= etagBytes) return Buffer.from(sealed);
  try {
    const opened = openPackages(key, sealed, 0);
    if (!opened.final) throw new DareError('unexpected EOF');
    return opened.plaintext;
  } catch (error) {
    if (error instanceof DareError) throw new KeyUnsealError({ cause: error });
    throw error;
  }
}

/**
 * Deterministic DARE nonce of a multipart part: the first 12 bytes of SHA-256(uploadId ‖ decimal part
 * number), MinIO ≥ 2024-08 (#20359). Its top bit is left as hashed; sealPackages forces it per package.
 */
export function multipartPartNonce(uploadId: string, partNumber: number): Buffer {
  assertInvariant(Number.isInteger(partNumber) && partNumber >= 0 && partNumber <= partNumberMax, `bad part number ${partNumber}`);
  return Buffer.from(sha256(`${uploadId}${partNumber}`).subarray(0, dareNonceBytes));
}
