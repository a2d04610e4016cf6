// Server-side encryption on the wire: SSE headers parsed once into one small type, bucket defaults and
// auto-encryption applied, object keys created (KMS data key or the customer's key → sealed object key)
// and recovered, and the SSE response headers. The record stored with an object uses MinIO's internal
// metadata names so data stays portable (docs/encryption.md).
import { createHash, timingSafeEqual } from 'node:crypto';
import type { BucketEncryption, DataEncryption, EncryptionRecord } from '../engine/types.ts';
import { canonicalContextJson } from '../engine/crypto/context.ts';
import {
  KeyUnsealError,
  cleanObjectPath,
  generateSealedObjectKey,
  multipartPartNonce,
  partKey,
  sealAlgorithm,
  unsealObjectKey,
  type SseDomain,
} from '../engine/crypto/keys.ts';
import { isKmsError, type Kms } from '../engine/kms/kms.ts';
import { bucketKeyContext, type BucketKeys } from '../engine/kms/bucket-keys.ts';
import type { ObjectKeyCache, ObjectKeyInputs } from '../engine/kms/object-key-cache.ts';
import { S3Error } from './errors.ts';
import type { HeaderList } from './response.ts';

export type SseRequest =
  | { readonly type: 'SSE-S3' }
  | { readonly type: 'SSE-KMS'; readonly keyId: string | undefined; readonly context: Readonly<Record<string, string>> }
  | { readonly type: 'SSE-C'; readonly key: Buffer; readonly keyMd5Base64: string };

export type CustomerKey = Extract<SseRequest, { type: 'SSE-C' }>;

export interface SseSettings {
  readonly kms: Kms | undefined;
  /** MINIO_KMS_AUTO_ENCRYPTION=on: objects without SSE headers (and no bucket default) get SSE-S3 */
  readonly autoEncryption: boolean;
  /** SSE-C over plain HTTP (loopback testing only) */
  readonly allowSseCOverHttp: boolean;
  /** opt-in shared per-bucket data keys (COFFER_KMS_BUCKET_KEYS=on); see engine/kms/bucket-keys.ts */
  readonly bucketKeys?: BucketKeys;
  /** unsealed SSE-S3/SSE-KMS object keys, reused by later reads (engine/kms/object-key-cache.ts) */
  readonly objectKeys?: ObjectKeyCache;
}

const h = {
  sse: 'x-amz-server-side-encryption',
  kmsKeyId: 'x-amz-server-side-encryption-aws-kms-key-id',
  context: 'x-amz-server-side-encryption-context',
  customerAlgorithm: 'x-amz-server-side-encryption-customer-algorithm',
  customerKey: 'x-amz-server-side-encryption-customer-key',
  customerKeyMd5: 'x-amz-server-side-encryption-customer-key-md5',
  bucketKey: 'x-amz-server-side-encryption-bucket-key-enabled',
} as const;
const copySourcePrefix = 'x-amz-copy-source-';

/** MinIO's internal metadata keys for the SSE record (lower case, as stored). */
export const recordKeys = {
  sealAlgorithm: 'x-minio-internal-server-side-encryption-seal-algorithm',
  iv: 'x-minio-internal-server-side-encryption-iv',
  s3SealedKey: 'x-minio-internal-server-side-encryption-s3-sealed-key',
  kmsSealedKey: 'x-minio-internal-server-side-encryption-kms-sealed-key',
  customerSealedKey: 'x-minio-internal-server-side-encryption-sealed-key',
  kmsKeyId: 'x-minio-internal-server-side-encryption-s3-kms-key-id',
  kmsDataKey: 'x-minio-internal-server-side-encryption-s3-kms-sealed-key',
  context: 'x-minio-internal-server-side-encryption-context',
  multipart: 'x-minio-internal-encrypted-multipart',
  /** Coffer only: the data key is a bucket key, bound to the bucket-level KMS context */
  bucketKey: 'x-coffer-internal-bucket-key',
} as const;

const arnPrefix = 'arn:aws:kms:';
const maxContextBytes = 8 * 1024;

function stripArn(keyId: string): string {
  if (!keyId.startsWith(arnPrefix)) return keyId;
  // arn:aws:kms:<region>:<account>:key/<id> — keep what follows the last ':' and an optional 'key/'.
  const tail = keyId.slice(keyId.lastIndexOf(':') + 1);
  return tail.startsWith('key/') ? tail.slice(4) : tail;
}

function parseContext(value: string | undefined): Record<string, string> {
  if (value === undefined) return {};
  const invalid = () => new S3Error('InvalidArgument', 'The encryption context must be base64-encoded UTF-8 JSON with string values.', { ArgumentName: h.context });
  if (value.length > maxContextBytes) throw invalid();
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(value, 'base64').toString('utf8'));
  } catch {
    throw invalid();
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw invalid();
  const context: Record<string, string> = {};
  for (const [name, entry] of Object.entries(parsed)) {
    if (typeof entry !== 'string') throw invalid();
    context[name] = entry;
  }
  return context;
}

/** The SSE-C header names of a request's own key and of a copy source's (x-amz-copy-source-server-side-…). */
const customerHeaders = {
  '': { algorithm: h.customerAlgorithm, key: h.customerKey, keyMd5: h.customerKeyMd5 },
  [copySourcePrefix]: {
    algorithm: h.customerAlgorithm.replace('x-amz-', copySourcePrefix),
    key: h.customerKey.replace('x-amz-', copySourcePrefix),
    keyMd5: h.customerKeyMd5.replace('x-amz-', copySourcePrefix),
  },
} as const;

/** SSE-C headers (plain or copy-source set) → the customer key, validated as AWS does. */
function parseCustomerKey(headers: ReadonlyMap<string, string>, prefix: '' | typeof copySourcePrefix): SseRequest | undefined {
  // Names looked up, not built: every GET and PUT asks, and a closure per call cost each ~1 µs.
  const names = customerHeaders[prefix];
  const algorithm = headers.get(names.algorithm);
  const keyText = headers.get(names.key);
  const md5Text = headers.get(names.keyMd5);
  if (algorithm === undefined && keyText === undefined && md5Text === undefined) return undefined;
  if (algorithm !== 'AES256') {
    throw new S3Error('InvalidArgument', 'Requests specifying Server Side Encryption with Customer provided keys must provide a valid encryption algorithm.', { ArgumentName: names.algorithm });
  }
  if (!keyText) {
    throw new S3Error('InvalidArgument', 'Requests specifying Server Side Encryption with Customer provided keys must provide an appropriate secret key.', { ArgumentName: names.key });
  }
  if (!md5Text) {
    throw new S3Error('InvalidArgument', 'Requests specifying Server Side Encryption with Customer provided keys must provide the client calculated MD5 of the secret key.', { ArgumentName: names.keyMd5 });
  }
  const key = Buffer.from(keyText, 'base64');
  if (key.length !== 32 || key.toString('base64') !== keyText) {
    throw new S3Error('InvalidArgument', 'The secret key was invalid for the specified algorithm.', { ArgumentName: names.key });
  }
  const expectedMd5 = createHash('md5').update(key).digest();
  const givenMd5 = Buffer.from(md5Text, 'base64');
  if (givenMd5.length !== expectedMd5.length || !timingSafeEqual(givenMd5, expectedMd5)) {
    throw new S3Error('InvalidArgument', 'The calculated MD5 hash of the key did not match the hash that was provided.', { ArgumentName: names.keyMd5 });
  }
  return { type: 'SSE-C', key, keyMd5Base64: expectedMd5.toString('base64') };
}

/** The SSE a write request asks for in its headers (not yet the bucket default). */
export function parseSseHeaders(headers: ReadonlyMap<string, string>): SseRequest | undefined {
  const customer = parseCustomerKey(headers, '');
  const sse = headers.get(h.sse);
  const keyId = headers.get(h.kmsKeyId);
  const context = headers.get(h.context);
  if (customer) {
    if (sse !== undefined || keyId !== undefined || context !== undefined) {
      throw new S3Error('InvalidArgument', 'Server Side Encryption with Customer provided key is incompatible with the encryption method specified.');
    }
    return customer;
  }
  if (sse === undefined) {
    if (keyId !== undefined || context !== undefined) {
      throw new S3Error('InvalidArgument', `Server Side Encryption with AWS KMS managed key requires HTTP header ${h.sse} : aws:kms`);
    }
    return undefined;
  }
  if (sse === 'AES256') {
    if (keyId !== undefined || context !== undefined) {
      throw new S3Error('InvalidArgument', 'Server Side Encryption with AES256 does not take a KMS key id or context.');
    }
    return { type: 'SSE-S3' };
  }
  if (sse === 'aws:kms') {
    if (keyId !== undefined && (keyId.trim() !== keyId || keyId === '')) {
      throw new S3Error('InvalidRequest', 'The specified KMS KeyID contains unsupported characters.');
    }
    return { type: 'SSE-KMS', keyId: keyId === undefined ? undefined : stripArn(keyId), context: parseContext(context) };
  }
  throw new S3Error('InvalidArgument', `The encryption method specified is not supported: ${sse}`, { ArgumentName: h.sse });
}

/** Copy-source SSE-C headers (CopyObject / UploadPartCopy of an SSE-C source). */
export function parseCopySourceCustomerKey(headers: ReadonlyMap<string, string>): CustomerKey | undefined {
  return parseCustomerKey(headers, copySourcePrefix) as CustomerKey | undefined;
}

function assertTransport(request: SseRequest | undefined, secure: boolean, settings: SseSettings): void {
  if (request?.type === 'SSE-C' && !secure && !settings.allowSseCOverHttp) {
    throw new S3Error('InvalidRequest', 'Requests specifying Server Side Encryption with Customer provided keys must be made over a secure connection.');
  }
}

/** Reads (GET/HEAD) must not carry SSE-S3/KMS headers; SSE-C headers name the key to decrypt with. */
export function parseReadSse(headers: ReadonlyMap<string, string>, secure: boolean, settings: SseSettings): CustomerKey | undefined {
  if (headers.has(h.sse) || headers.has(h.kmsKeyId) || headers.has(h.context)) {
    throw new S3Error('InvalidArgument', `The ${h.sse} header is not supported for this operation.`, { ArgumentName: h.sse });
  }
  const customer = parseCustomerKey(headers, '') as CustomerKey | undefined;
  assertTransport(customer, secure, settings);
  return customer;
}

/** The SSE for a new object: explicit headers win, then the bucket default, then auto-encryption. */
export function resolveWriteSse(
  headers: ReadonlyMap<string, string>,
  bucketDefault: BucketEncryption | undefined,
  secure: boolean,
  settings: SseSettings,
): SseRequest | undefined {
  const requested = parseSseHeaders(headers);
  assertTransport(requested, secure, settings);
  if (requested) return requested;
  if (bucketDefault?.algorithm === 'aws:kms') return { type: 'SSE-KMS', keyId: bucketDefault.kmsKeyId, context: {} };
  if (bucketDefault?.algorithm === 'AES256') return { type: 'SSE-S3' };
  // AWS encrypts every new object with SSE-S3 by default; MinIO's auto-encryption injects SSE-KMS with the
  // default key. We follow AWS: the object reads back as AES256 (docs/encryption.md).
  return settings.autoEncryption ? { type: 'SSE-S3' } : undefined;
}

function requireKms(settings: SseSettings): Kms {
  if (!settings.kms) throw new S3Error('NotImplemented', 'Server side encryption specified but KMS is not configured.');
  return settings.kms;
}

/** Map KMS failures to S3 errors that say what happened, without key material. */
export function kmsFailure(error: unknown, keyId: string): never {
  if (isKmsError(error, 'KeyNotFound')) throw new S3Error('KMS.NotFoundException', `The KMS key '${keyId}' does not exist.`);
  if (isKmsError(error, 'DecryptionFailed')) throw new S3Error('KMS.InvalidCiphertextException', 'The KMS could not decrypt the object\'s data key: the key or the stored metadata does not match.');
  if (isKmsError(error, 'PermissionDenied')) throw new S3Error('AccessDenied', 'The KMS refused the operation on this key.');
  if (isKmsError(error, 'Unavailable')) throw new S3Error('ServiceUnavailable', 'The KMS is unreachable; encrypted objects cannot be written or read right now.');
  if (isKmsError(error, 'NotSupported')) throw new S3Error('NotImplemented', 'The KMS does not support this operation.');
  throw error;
}

function kmsContext(bucket: string, object: string, context: Readonly<Record<string, string>>): Buffer {
  // MinIO binds every data key to its object: {"<bucket>": "<bucket>/<object>"} (plus the client's context).
  return canonicalContextJson({ ...context, [bucket]: cleanObjectPath(bucket, object) });
}

export interface Envelope {
  readonly objectKey: Buffer;
  readonly record: EncryptionRecord;
  readonly request: SseRequest;
}

/** A fresh object key for a new object (or multipart upload), sealed the MinIO way. */
export async function createEnvelope(request: SseRequest, bucket: string, object: string, settings: SseSettings, multipart: boolean): Promise<Envelope> {
  const record: Record<string, string> = { [recordKeys.sealAlgorithm]: sealAlgorithm };
  if (multipart) record[recordKeys.multipart] = '';
  let externalKey: Buffer;
  let domain: SseDomain;
  if (request.type === 'SSE-C') {
    externalKey = request.key;
    domain = 'SSE-C';
  } else {
    const kms = requireKms(settings);
    const keyId = request.type === 'SSE-KMS' ? (request.keyId ?? kms.defaultKeyName) : kms.defaultKeyName;
    const clientContext = request.type === 'SSE-KMS' ? request.context : {};
    let dataKey;
    try {
      if (settings.bucketKeys) {
        dataKey = await settings.bucketKeys.dataKey(keyId, bucket, clientContext);
      } else {
        const context = kmsContext(bucket, object, clientContext);
        // An in-process KMS answers at once: no promise, no later turn of the event loop for this PUT.
        dataKey = kms.generateKeySync?.(keyId, context) ?? (await kms.generateKey(keyId, context));
      }
    } catch (error) {
      kmsFailure(error, keyId);
    }
    if (settings.bucketKeys) record[recordKeys.bucketKey] = '';
    externalKey = dataKey.plaintext;
    domain = request.type;
    record[recordKeys.kmsKeyId] = keyId;
    record[recordKeys.kmsDataKey] = dataKey.ciphertext.toString('base64');
    if (request.type === 'SSE-KMS' && Object.keys(request.context).length > 0) {
      record[recordKeys.context] = canonicalContextJson(request.context).toString('base64');
    }
  }
  const { objectKey, iv, sealedKey } = generateSealedObjectKey(externalKey, domain, bucket, object);
  record[recordKeys.iv] = iv.toString('base64');
  record[sealedKeyFieldOf(domain)] = sealedKey.toString('base64');
  // The first read after the write finds the key (as the KMS cache holds the data key after generateKey).
  if (domain !== 'SSE-C') settings.objectKeys?.set(record[sealedKeyFieldOf(domain)]!, objectKeyInputs(domain, bucket, object, record[recordKeys.kmsKeyId]!, record), objectKey);
  return { objectKey, record, request };
}

/** The record field holding the sealed object key of each SSE type. */
function sealedKeyFieldOf(type: SseType): string {
  return type === 'SSE-C' ? recordKeys.customerSealedKey : type === 'SSE-S3' ? recordKeys.s3SealedKey : recordKeys.kmsSealedKey;
}

/** The inputs of an SSE-S3/SSE-KMS object key unwrap besides the sealed key (engine/kms/object-key-cache.ts). */
function objectKeyInputs(type: SseType, bucket: string, object: string, keyId: string, record: EncryptionRecord): ObjectKeyInputs {
  return [type, bucket, object, keyId, record[recordKeys.iv], record[recordKeys.kmsDataKey], record[recordKeys.context], record[recordKeys.bucketKey]];
}

export type SseType = 'SSE-S3' | 'SSE-KMS' | 'SSE-C';

export function sseTypeOf(record: EncryptionRecord): SseType {
  if (record[recordKeys.kmsSealedKey] !== undefined) return 'SSE-KMS';
  if (record[recordKeys.s3SealedKey] !== undefined) return 'SSE-S3';
  if (record[recordKeys.customerSealedKey] !== undefined) return 'SSE-C';
  throw new S3Error('InternalError', 'The object\'s encryption metadata is damaged.');
}

function recordBytes(record: EncryptionRecord, name: string, sizeBytes?: number): Buffer {
  const value = record[name];
  const bytes = value === undefined ? undefined : Buffer.from(value, 'base64');
  if (bytes === undefined || (sizeBytes !== undefined && bytes.length !== sizeBytes)) {
    throw new S3Error('InternalError', 'The object\'s encryption metadata is damaged.');
  }
  return bytes;
}

/**
 * Recover an object's key from its record. SSE-C needs the customer's key (wrong key → AccessDenied);
 * SSE-S3/KMS ask the KMS to decrypt the stored data key.
 */
export async function openEnvelope(
  record: EncryptionRecord,
  bucket: string,
  object: string,
  customer: CustomerKey | undefined,
  settings: SseSettings,
): Promise<Buffer> {
  const type = sseTypeOf(record);
  if (record[recordKeys.sealAlgorithm] !== sealAlgorithm) throw new S3Error('InternalError', 'The object was sealed with an unsupported algorithm.');
  let externalKey: Buffer;
  let sealedKey: Buffer;
  if (type === 'SSE-C') {
    if (!customer) {
      throw new S3Error('InvalidRequest', 'The object was stored using a form of Server Side Encryption. The correct parameters must be provided to retrieve the object.');
    }
    externalKey = customer.key;
    sealedKey = recordBytes(record, sealedKeyFieldOf(type), 64);
  } else {
    if (customer) {
      throw new S3Error('InvalidRequest', 'The encryption parameters are not applicable to this object.');
    }
    const kms = requireKms(settings);
    const keyId = record[recordKeys.kmsKeyId] ?? kms.defaultKeyName;
    const storedContext = record[recordKeys.context];
    const sealedKeyText = record[sealedKeyFieldOf(type)]!; // present: sseTypeOf found the type by it
    const cacheInputs = settings.objectKeys && objectKeyInputs(type, bucket, object, keyId, record);
    const cached = cacheInputs === undefined ? undefined : settings.objectKeys!.get(sealedKeyText, cacheInputs);
    if (cached !== undefined) return cached;
    const clientContext = storedContext === undefined ? {} : (JSON.parse(Buffer.from(storedContext, 'base64').toString('utf8')) as Record<string, string>);
    try {
      const context = record[recordKeys.bucketKey] !== undefined ? bucketKeyContext(bucket, clientContext) : kmsContext(bucket, object, clientContext);
      externalKey = await kms.decrypt(keyId, recordBytes(record, recordKeys.kmsDataKey), context);
    } catch (error) {
      kmsFailure(error, keyId);
    }
    sealedKey = recordBytes(record, sealedKeyFieldOf(type), 64);
    const objectKey = unsealOrThrow(sealedKey, recordBytes(record, recordKeys.iv, 32), externalKey, type, bucket, object);
    if (cacheInputs !== undefined) settings.objectKeys!.set(sealedKeyText, cacheInputs, objectKey);
    return objectKey;
  }
  return unsealOrThrow(sealedKey, recordBytes(record, recordKeys.iv, 32), externalKey, type, bucket, object);
}

function unsealOrThrow(sealedKey: Buffer, iv: Buffer, externalKey: Buffer, type: SseType, bucket: string, object: string): Buffer {
  try {
    return unsealObjectKey(sealedKey, iv, externalKey, type, bucket, object);
  } catch (error) {
    if (error instanceof KeyUnsealError) {
      if (type === 'SSE-C') throw new S3Error('AccessDenied', 'The SSE-C key does not match the key the object was encrypted with.');
      throw new S3Error('InternalError', 'The object\'s sealed key failed authentication: its metadata was modified.');
    }
    throw error;
  }
}

/** Key lookup for reading: part keys for multipart objects, the object key itself otherwise. */
export function keyForPartOf(record: EncryptionRecord, objectKey: Buffer): (partNumber: number) => Buffer {
  if (record[recordKeys.multipart] !== undefined) return (partNumber) => partKey(objectKey, partNumber);
  return () => objectKey;
}

/**
 * How the engine encrypts a single PUT (random nonce) or a part of an encrypted upload (deterministic nonce).
 * `contentMd5Sent`: the request carries Content-MD5, so the plaintext MD5 is needed even with a random ETag.
 */
export function dataEncryptionFor(
  envelope: { objectKey: Buffer; record: EncryptionRecord },
  part: { uploadId: string; partNumber: number } | undefined,
  contentMd5Sent: boolean,
): DataEncryption {
  const randomEtag = sseTypeOf(envelope.record) !== 'SSE-S3';
  const plaintextMd5 = !randomEtag || contentMd5Sent;
  if (part) {
    return { key: partKey(envelope.objectKey, part.partNumber), nonce: multipartPartNonce(part.uploadId, part.partNumber), randomEtag, plaintextMd5 };
  }
  return { key: envelope.objectKey, record: envelope.record, randomEtag, plaintextMd5 };
}

/** SSE response headers for an object (PUT/GET/HEAD/UploadPart/Create/Complete/Copy). */
export function sseResponseHeaders(record: EncryptionRecord | undefined, customer?: CustomerKey): HeaderList {
  if (!record) return [];
  const type = sseTypeOf(record);
  if (type === 'SSE-C') {
    return [
      [h.customerAlgorithm, 'AES256'],
      ...(customer ? ([[h.customerKeyMd5, customer.keyMd5Base64]] as const) : []),
    ];
  }
  if (type === 'SSE-S3') return [[h.sse, 'AES256']];
  const headers: Array<readonly [string, string]> = [[h.sse, 'aws:kms']];
  const keyId = record[recordKeys.kmsKeyId];
  if (keyId !== undefined) headers.push([h.kmsKeyId, `${arnPrefix}${keyId}`]);
  const context = record[recordKeys.context];
  if (context !== undefined) headers.push([h.context, context]);
  return headers;
}
