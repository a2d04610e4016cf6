// A stored master key ("key version" in minio/kes internal/crypto/key.go) and its serialized form.
//
// Coffer writes the KES *legacy JSON* layout, extended with the HMAC key:
//   {"bytes": b64(32), "algorithm": "AES256"|"ChaCha20", "hmac_key": b64(32), "created_at": RFC 3339, "created_by": identity}
// minio/kes reads this as-is (it ignores `hmac_key`, so /hmac answers 409 there), which keeps a Coffer FS key
// store usable by a real KES. Coffer reads, in addition, the current KES format (reference/sse-kms-kes.md §14.8):
// base64 of protobuf KeyVersion{1: SecretKey{1: bytes key, 2: uint32 type}, 2: HMACKey{1: bytes key, 2: uint32 hash},
// 3: Timestamp{1: int64 seconds, 2: int32 nanos}, 4: string created_by}, type 1 = AES256, 2 = ChaCha20, hash 1 = SHA256.

import { randomBytes } from 'node:crypto';
import { decodeStandardBase64, masterKeySizeBytes, type SecretKeyType } from '../engine/kms/builtin.ts';

export type KeyAlgorithm = SecretKeyType;

export const hmacKeySizeBytes = 32;
/** KES reads at most 1 MiB per key; a real entry is ~ 200 bytes. */
export const keyVersionSizeBytesMax = 1024 * 1024;

export interface KeyVersion {
  readonly algorithm: KeyAlgorithm;
  /** 32-byte secret key */
  readonly key: Buffer;
  /** 32-byte HMAC-SHA256 key; absent for keys written before KES had HMAC support (→ 409 on /hmac) */
  readonly hmacKey?: Buffer;
  readonly createdAt: Date;
  /** identity of the creator; '' when unknown */
  readonly createdBy: string;
}

export class KeyVersionFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KeyVersionFormatError';
  }
}

/** A fresh AES256 key with its own random HMAC key, like KES `createKey`. */
export function generateKeyVersion(createdBy: string, now = new Date()): KeyVersion {
  return { algorithm: 'AES256', key: randomBytes(masterKeySizeBytes), hmacKey: randomBytes(hmacKeySizeBytes), createdAt: now, createdBy };
}

/** Import names accepted by KES `importKey`: current and legacy spellings. */
export function parseKeyAlgorithm(text: string): KeyAlgorithm | undefined {
  if (text === 'AES256' || text === 'AES256-GCM_SHA256') return 'AES256';
  if (text === 'ChaCha20' || text === 'XCHACHA20-POLY1305') return 'ChaCha20';
  return undefined;
}

export function copyKeyVersion(version: KeyVersion): KeyVersion {
  return {
    algorithm: version.algorithm,
    key: Buffer.from(version.key),
    ...(version.hmacKey !== undefined ? { hmacKey: Buffer.from(version.hmacKey) } : {}),
    createdAt: new Date(version.createdAt.getTime()),
    createdBy: version.createdBy,
  };
}

export function encodeKeyVersion(version: KeyVersion): Buffer {
  const document: Record<string, string> = {
    bytes: version.key.toString('base64'),
    algorithm: version.algorithm,
  };
  if (version.hmacKey !== undefined) document.hmac_key = version.hmacKey.toString('base64');
  document.created_at = version.createdAt.toISOString();
  document.created_by = version.createdBy;
  return Buffer.from(JSON.stringify(document) + '\n', 'utf8');
}

/** Parse a stored key: JSON (Coffer / KES legacy) or base64 protobuf (KES current). Throws KeyVersionFormatError. */
export function parseKeyVersion(bytes: Buffer): KeyVersion {
  if (bytes.length > keyVersionSizeBytesMax) throw new KeyVersionFormatError('key entry is too large');
  const text = bytes.toString('utf8').trim();
  if (text.startsWith('{')) return parseJson(text);
  const raw = decodeStandardBase64(text);
  if (raw === undefined) throw new KeyVersionFormatError('key entry is neither JSON nor base64 protobuf');
  return parseProtobuf(raw);
}

function parseJson(text: string): KeyVersion {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new KeyVersionFormatError('key entry is not valid JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new KeyVersionFormatError('key entry is not a JSON object');
  const record = value as Record<string, unknown>;
  const bytesField = (name: string): Buffer | undefined => {
    const field = record[name];
    if (field === undefined || field === null) return undefined;
    const decoded = typeof field === 'string' ? decodeStandardBase64(field) : undefined;
    if (decoded === undefined) throw new KeyVersionFormatError(`key entry: '${name}' is not base64`);
    return decoded;
  };
  const key = bytesField('bytes');
  if (key?.length !== masterKeySizeBytes) throw new KeyVersionFormatError(`key entry: 'bytes' must hold ${masterKeySizeBytes} bytes`);
  // KES: a missing algorithm means AES256 (the only type before ChaCha20 was added)
  const algorithmText = record.algorithm === undefined || record.algorithm === '' ? 'AES256' : record.algorithm;
  const algorithm = typeof algorithmText === 'string' ? parseKeyAlgorithm(algorithmText) : undefined;
  if (algorithm === undefined) throw new KeyVersionFormatError(`key entry: unsupported algorithm '${String(algorithmText)}'`);
  const hmacKey = bytesField('hmac_key');
  if (hmacKey !== undefined && hmacKey.length !== hmacKeySizeBytes) throw new KeyVersionFormatError('key entry: bad HMAC key size');
  const createdAt = typeof record.created_at === 'string' ? new Date(record.created_at) : new Date(0);
  if (Number.isNaN(createdAt.getTime())) throw new KeyVersionFormatError('key entry: bad created_at');
  const createdBy = typeof record.created_by === 'string' ? record.created_by : '';
  return { algorithm, key, ...(hmacKey !== undefined ? { hmacKey } : {}), createdAt, createdBy };
}

// --- minimal protobuf reader (wire types 0 = varint, 2 = length-delimited; others rejected) ---

interface ProtoField {
  readonly number: number;
  readonly varint?: bigint;
  readonly bytes?: Buffer;
}

function readProtoFields(buffer: Buffer): ProtoField[] {
  const fields: ProtoField[] = [];
  let offset = 0;
  const readVarint = (): bigint => {
    let result = 0n;
    for (let shift = 0n; shift < 70n; shift += 7n) {
      if (offset >= buffer.length) throw new KeyVersionFormatError('protobuf: truncated varint');
      const byte = buffer[offset++]!;
      result |= BigInt(byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) return result;
    }
    throw new KeyVersionFormatError('protobuf: varint too long');
  };
  while (offset < buffer.length) {
    const tag = readVarint();
    const number = Number(tag >> 3n);
    const wireType = Number(tag & 7n);
    if (wireType === 0) fields.push({ number, varint: readVarint() });
    else if (wireType === 2) {
      const length = Number(readVarint());
      if (offset + length > buffer.length) throw new KeyVersionFormatError('protobuf: truncated field');
      fields.push({ number, bytes: buffer.subarray(offset, offset + length) });
      offset += length;
    } else throw new KeyVersionFormatError(`protobuf: unsupported wire type ${wireType}`);
  }
  return fields;
}

function protoBytes(fields: readonly ProtoField[], number: number): Buffer | undefined {
  return fields.findLast((field) => field.number === number)?.bytes;
}

function protoVarint(fields: readonly ProtoField[], number: number): bigint {
  return fields.findLast((field) => field.number === number)?.varint ?? 0n;
}

function parseProtobuf(raw: Buffer): KeyVersion {
  const top = readProtoFields(raw);
  const secret = readProtoFields(protoBytes(top, 1) ?? Buffer.alloc(0));
  const key = protoBytes(secret, 1);
  const type = protoVarint(secret, 2);
  if (key?.length !== masterKeySizeBytes) throw new KeyVersionFormatError('key entry: bad secret key size');
  if (type !== 1n && type !== 2n) throw new KeyVersionFormatError(`key entry: unsupported secret key type ${type}`);
  const hmacBytes = protoBytes(top, 2);
  let hmacKey: Buffer | undefined;
  if (hmacBytes !== undefined && hmacBytes.length > 0) {
    const hmac = readProtoFields(hmacBytes);
    hmacKey = protoBytes(hmac, 1);
    if (hmacKey?.length !== hmacKeySizeBytes || protoVarint(hmac, 2) !== 1n) throw new KeyVersionFormatError('key entry: bad HMAC key');
  }
  const timestamp = readProtoFields(protoBytes(top, 3) ?? Buffer.alloc(0));
  const seconds = BigInt.asIntN(64, protoVarint(timestamp, 1));
  const nanos = Number(BigInt.asIntN(32, protoVarint(timestamp, 2)));
  const createdAt = new Date(Number(seconds) * 1000 + Math.floor(nanos / 1e6));
  const createdBy = (protoBytes(top, 4) ?? Buffer.alloc(0)).toString('utf8');
  return {
    algorithm: type === 1n ? 'AES256' : 'ChaCha20',
    key: Buffer.from(key),
    ...(hmacKey !== undefined ? { hmacKey: Buffer.from(hmacKey) } : {}),
    createdAt,
    createdBy,
  };
}
