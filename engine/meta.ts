// Codecs of the engine's metadata records (docs/format.md): the per-object `coffer.meta` (header, msgpack
// body, CRC32C, inline data) and the multipart `upload.meta` / `part.N.meta`, which share the same frame.
// Pure functions over bytes, so golden vectors can pin them (test/engine-format.test.ts).

import { crc32c } from '@node-rs/crc32';
import { Packr, Unpackr } from 'msgpackr';
import { encryptedSizeBytes } from '../workers/dare.ts';
import { bitrotAlgorithms, bitrotShardFileSizeBytes, type BitrotAlgorithm } from './erasure/bitrot.ts';
import { shardFileSizeBytes, shardSizeBytes } from './erasure/distribution.ts';
import { checksumAlgorithms, StorageError } from './types.ts';
import type { ChecksumAlgorithm, ChecksumType, EncryptionRecord, ObjectChecksum } from './types.ts';

/** Frame magics: 4 ASCII bytes. */
export const objectMetaMagic = 'COF1';
export const uploadMetaMagic = 'COFU';
export const partMetaMagic = 'COFP';
export const metaMajorVersion = 1;
export const metaMinorVersion = 0;
/** Minor version 1 adds `erasure.bitrot` (multi-drive sets); frames without it are still written as 1.0. */
export const metaMinorVersionBitrot = 1;

/** magic(4) + major(2) + minor(2) + body length(4) */
export const frameHeaderSizeBytes = 12;
export const frameCrcSizeBytes = 4;
/**
 * Upper bound on a metadata body. The largest legitimate one is a 10,000-part object (~100 bytes a part);
 * anything bigger is corruption and must not make us allocate.
 */
export const maxMetaBodySizeBytes = 8 * 1024 * 1024;
/** Readers fetch this much first: enough for the header and body of nearly every object. */
export const metaProbeSizeBytes = 4096;

/** Erasure parameters of the (1-drive) set; kept so the multi-drive format needs no migration. */
export const erasureBlockSizeBytes = 1024 * 1024;

// Plain msgpack maps, no msgpackr "records" extension, so any msgpack reader can decode the body.
const packr = new Packr({ useRecords: false, variableMapSize: true });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

export interface StoredPart {
  /** part number as uploaded (1..10000) */
  readonly n: number;
  readonly size: number;
  /** hex MD5 */
  readonly etag: string;
  readonly checksum?: ObjectChecksum;
  /** modification time, ms since the epoch */
  readonly mtime: number;
}

export interface ErasureInfo {
  readonly algorithm: 'rs';
  readonly dataShards: number;
  readonly parityShards: number;
  readonly blockSizeBytes: number;
  /** 1-based shard index held by this drive */
  readonly index: number;
  /** entry i = shard index stored on the set's i-th drive */
  readonly distribution: readonly number[];
  /**
   * How shard streams are framed: absent = raw bytes (a 1-drive set), else every erasure block of every
   * shard is preceded by its digest (docs/jbod.md §5). Always present for sets of 2+ drives.
   */
  readonly bitrot?: BitrotAlgorithm;
}

export const singleDriveErasure: ErasureInfo = {
  algorithm: 'rs',
  dataShards: 1,
  parityShards: 0,
  blockSizeBytes: erasureBlockSizeBytes,
  index: 1,
  distribution: [1],
};

/** One version of an object: today always the unversioned "null" version. */
export interface ObjectVersion {
  readonly type: 'object';
  readonly versionId: null;
  readonly modTimeMs: number;
  readonly sizeBytes: number;
  readonly etag: string;
  readonly contentType: string;
  readonly userMetadata: Readonly<Record<string, string>>;
  readonly systemHeaders: Readonly<Record<string, string>>;
  readonly checksum?: ObjectChecksum;
  readonly parts: readonly StoredPart[];
  /** UUID of the data dir (`<uuid>.data/`); absent when inline */
  readonly dataDir?: string;
  readonly inline: boolean;
  /** CRC32C of the inline data (present iff inline), so bitrot in the inline section is caught */
  readonly inlineCrc32c?: number;
  readonly erasure: ErasureInfo;
  /** SSE record (sealed keys, IV, KMS key id …; docs/encryption.md); present iff the data is encrypted */
  readonly encryption?: EncryptionRecord;
}

export interface ObjectMetaFile {
  /** newest first */
  readonly versions: readonly ObjectVersion[];
  readonly inlineData: Buffer;
}

export interface UploadMeta {
  readonly bucket: string;
  readonly key: string;
  readonly uploadId: string;
  readonly initiatedMs: number;
  readonly contentType: string;
  readonly userMetadata: Readonly<Record<string, string>>;
  readonly systemHeaders: Readonly<Record<string, string>>;
  readonly checksumAlgorithm?: ChecksumAlgorithm;
  readonly checksumType?: ChecksumType;
  readonly encryption?: EncryptionRecord;
}

export interface PartMeta extends StoredPart {
  /** name of the part's data file inside the upload dir */
  readonly file: string;
}

function corrupt(what: string, reason: string): StorageError {
  return new StorageError('InternalError', `corrupt ${what}: ${reason}`);
}

// ---------------------------------------------------------------------------------------------- frame

/** Build a frame: header, msgpack body, CRC32C(body), then `trailer` (inline data) verbatim. */
export function encodeFrame(magic: string, body: unknown, trailer?: Uint8Array, minorVersion = metaMinorVersion): Buffer {
  if (magic.length !== 4) throw new Error(`frame magic must be 4 bytes: ${magic}`);
  const bodyBytes = packr.pack(body);
  if (bodyBytes.length > maxMetaBodySizeBytes) {
    throw new StorageError('InternalError', `metadata body of ${bodyBytes.length} bytes exceeds the limit`);
  }
  const trailerSizeBytes = trailer?.length ?? 0;
  const out = Buffer.allocUnsafe(frameHeaderSizeBytes + bodyBytes.length + frameCrcSizeBytes + trailerSizeBytes);
  out.write(magic, 0, 'latin1');
  out.writeUInt16LE(metaMajorVersion, 4);
  out.writeUInt16LE(minorVersion, 6);
  out.writeUInt32BE(bodyBytes.length, 8);
  bodyBytes.copy(out, frameHeaderSizeBytes);
  out.writeUInt32BE(crc32c(bodyBytes), frameHeaderSizeBytes + bodyBytes.length);
  if (trailer !== undefined) out.set(trailer, frameHeaderSizeBytes + bodyBytes.length + frameCrcSizeBytes);
  return out;
}

/**
 * Size of header + body + CRC, read from the first bytes of a frame (at least `frameHeaderSizeBytes`).
 * Validates magic and version so a caller never allocates on a garbage length.
 */
export function frameMetaSizeBytes(magic: string, what: string, head: Uint8Array): number {
  if (head.length < frameHeaderSizeBytes) throw corrupt(what, 'truncated header');
  const view = Buffer.from(head.buffer, head.byteOffset, head.length);
  if (view.toString('latin1', 0, 4) !== magic) throw corrupt(what, 'bad magic');
  const major = view.readUInt16LE(4);
  if (major !== metaMajorVersion) {
    throw new StorageError('InternalError', `${what}: unsupported format major version ${major}`);
  }
  const bodySizeBytes = view.readUInt32BE(8);
  if (bodySizeBytes > maxMetaBodySizeBytes) throw corrupt(what, `body length ${bodySizeBytes} exceeds the limit`);
  return frameHeaderSizeBytes + bodySizeBytes + frameCrcSizeBytes;
}

/** Decode a frame: checks magic, major version and CRC; returns the body value and the trailer bytes. */
export function decodeFrame(magic: string, what: string, bytes: Uint8Array): { body: unknown; trailer: Buffer } {
  const metaSizeBytes = frameMetaSizeBytes(magic, what, bytes);
  if (bytes.length < metaSizeBytes) throw corrupt(what, 'truncated body');
  const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  const bodyEnd = metaSizeBytes - frameCrcSizeBytes;
  const bodyBytes = view.subarray(frameHeaderSizeBytes, bodyEnd);
  if (crc32c(bodyBytes) !== view.readUInt32BE(bodyEnd)) throw corrupt(what, 'CRC32C mismatch');
  let body: unknown;
  try {
    body = unpackr.unpack(bodyBytes);
  } catch (error) {
    throw corrupt(what, `undecodable msgpack (${(error as Error).message})`);
  }
  return { body, trailer: view.subarray(metaSizeBytes) };
}

// ---------------------------------------------------------------------------------------- validators

type Fields = Readonly<Record<string, unknown>>;

function asFields(what: string, value: unknown): Fields {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw corrupt(what, 'expected a map');
  return value as Fields;
}

function stringField(what: string, fields: Fields, name: string): string {
  const value = fields[name];
  if (typeof value !== 'string') throw corrupt(what, `field ${name} is not a string`);
  return value;
}

function numberField(what: string, fields: Fields, name: string): number {
  const value = fields[name];
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw corrupt(what, `field ${name} is not a non-negative integer`);
  }
  return value;
}

function booleanField(what: string, fields: Fields, name: string): boolean {
  const value = fields[name];
  if (typeof value !== 'boolean') throw corrupt(what, `field ${name} is not a boolean`);
  return value;
}

function stringMapField(what: string, fields: Fields, name: string): Record<string, string> {
  const map = asFields(`${what} ${name}`, fields[name]);
  const out: Record<string, string> = {};
  for (const [entryKey, entryValue] of Object.entries(map)) {
    if (typeof entryValue !== 'string') throw corrupt(what, `${name}[${entryKey}] is not a string`);
    out[entryKey] = entryValue;
  }
  return out;
}

function isChecksumAlgorithm(value: unknown): value is ChecksumAlgorithm {
  return typeof value === 'string' && (checksumAlgorithms as readonly string[]).includes(value);
}

function isChecksumType(value: unknown): value is ChecksumType {
  return value === 'FULL_OBJECT' || value === 'COMPOSITE';
}

function checksumField(what: string, fields: Fields, name: string): ObjectChecksum | undefined {
  const value = fields[name];
  if (value === undefined) return undefined;
  const checksum = asFields(`${what} ${name}`, value);
  const algorithm = checksum['algorithm'];
  const type = checksum['type'];
  if (!isChecksumAlgorithm(algorithm)) throw corrupt(what, `${name}.algorithm is unknown`);
  if (!isChecksumType(type)) throw corrupt(what, `${name}.type is unknown`);
  return { algorithm, value: stringField(what, checksum, 'value'), type };
}

/**
 * Drop undefined fields: msgpackr would encode them as an extension, and absent reads better. A for-in copy
 * keeps the field order and costs ~0.2 µs a version, against ~1.5 µs for Object.entries → filter →
 * fromEntries (every PUT encodes and every GET or HEAD decodes at least two of these).
 */
function compact<T extends object>(record: T): T {
  const out: Partial<T> = {};
  for (const name in record) {
    const value = record[name];
    if (value !== undefined) out[name] = value;
  }
  return out as T;
}

// ------------------------------------------------------------------------------------- coffer.meta

const objectMetaWhat = 'object metadata';

function encodeStoredPart(part: StoredPart): Record<string, unknown> {
  return compact({ n: part.n, size: part.size, etag: part.etag, checksum: part.checksum, mtime: part.mtime });
}

function encodeVersion(version: ObjectVersion): Record<string, unknown> {
  // Field order is part of the golden vectors; append new fields at the end.
  return compact({
    type: version.type,
    versionId: version.versionId,
    modTimeMs: version.modTimeMs,
    sizeBytes: version.sizeBytes,
    etag: version.etag,
    contentType: version.contentType,
    userMetadata: version.userMetadata,
    systemHeaders: version.systemHeaders,
    checksum: version.checksum,
    parts: version.parts.map(encodeStoredPart),
    dataDir: version.dataDir,
    inline: version.inline,
    inlineCrc32c: version.inlineCrc32c,
    erasure: {
      algorithm: version.erasure.algorithm,
      dataShards: version.erasure.dataShards,
      parityShards: version.erasure.parityShards,
      blockSizeBytes: version.erasure.blockSizeBytes,
      index: version.erasure.index,
      distribution: [...version.erasure.distribution],
      ...(version.erasure.bitrot === undefined ? {} : { bitrot: version.erasure.bitrot }),
    },
    encryption: version.encryption,
  });
}

/** Encode `coffer.meta`. Inline data must be given iff the (single) version is inline. */
export function encodeObjectMeta(meta: ObjectMetaFile): Buffer {
  const minor = meta.versions.some((version) => version.erasure.bitrot !== undefined) ? metaMinorVersionBitrot : metaMinorVersion;
  return encodeFrame(objectMetaMagic, { versions: meta.versions.map(encodeVersion) }, meta.inlineData, minor);
}

function decodeStoredPart(what: string, value: unknown): StoredPart {
  const fields = asFields(`${what} part`, value);
  return compact({
    n: numberField(what, fields, 'n'),
    size: numberField(what, fields, 'size'),
    etag: stringField(what, fields, 'etag'),
    checksum: checksumField(what, fields, 'checksum'),
    mtime: numberField(what, fields, 'mtime'),
  });
}

function decodeErasure(what: string, value: unknown): ErasureInfo {
  const fields = asFields(`${what} erasure`, value);
  if (fields['algorithm'] !== 'rs') throw corrupt(what, 'erasure.algorithm is not "rs"');
  const distribution = fields['distribution'];
  if (!Array.isArray(distribution) || !distribution.every((entry) => Number.isSafeInteger(entry))) {
    throw corrupt(what, 'erasure.distribution is not a list of integers');
  }
  const bitrot = fields['bitrot'];
  if (bitrot !== undefined && !bitrotAlgorithms.includes(bitrot as BitrotAlgorithm)) throw corrupt(what, `unknown erasure.bitrot ${String(bitrot)}`);
  const erasure: ErasureInfo = {
    algorithm: 'rs',
    dataShards: numberField(what, fields, 'dataShards'),
    parityShards: numberField(what, fields, 'parityShards'),
    blockSizeBytes: numberField(what, fields, 'blockSizeBytes'),
    index: numberField(what, fields, 'index'),
    distribution: distribution as number[],
    ...(bitrot === undefined ? {} : { bitrot: bitrot as BitrotAlgorithm }),
  };
  const shardCount = erasure.dataShards + erasure.parityShards;
  if (erasure.dataShards < 1 || erasure.parityShards > erasure.dataShards || shardCount > 16) {
    throw corrupt(what, `erasure ${erasure.dataShards}+${erasure.parityShards} is not a valid layout`);
  }
  if (erasure.distribution.length !== shardCount || erasure.index < 1 || erasure.index > shardCount) {
    throw corrupt(what, 'erasure.index/distribution do not match the shard count');
  }
  if (erasure.blockSizeBytes < 1 || erasure.blockSizeBytes > 16 * 1024 * 1024) throw corrupt(what, 'erasure.blockSizeBytes out of range');
  if (shardCount > 1 && erasure.bitrot === undefined) throw corrupt(what, 'a multi-drive version without erasure.bitrot');
  return erasure;
}

function decodeVersion(value: unknown): ObjectVersion {
  const what = objectMetaWhat;
  const fields = asFields(`${what} version`, value);
  if (fields['type'] !== 'object') throw corrupt(what, `unsupported version type ${String(fields['type'])}`);
  if (fields['versionId'] !== null) throw corrupt(what, 'only the null version is supported');
  const partsValue = fields['parts'];
  if (!Array.isArray(partsValue) || partsValue.length === 0) throw corrupt(what, 'parts is not a non-empty list');
  const inline = booleanField(what, fields, 'inline');
  const dataDir = fields['dataDir'];
  if (inline ? dataDir !== undefined : typeof dataDir !== 'string') {
    throw corrupt(what, 'dataDir must be present iff the object is not inline');
  }
  const inlineCrc32c = fields['inlineCrc32c'];
  if (inline && typeof inlineCrc32c !== 'number') throw corrupt(what, 'inline object without inlineCrc32c');
  const version: ObjectVersion = compact({
    type: 'object' as const,
    versionId: null,
    modTimeMs: numberField(what, fields, 'modTimeMs'),
    sizeBytes: numberField(what, fields, 'sizeBytes'),
    etag: stringField(what, fields, 'etag'),
    contentType: stringField(what, fields, 'contentType'),
    userMetadata: stringMapField(what, fields, 'userMetadata'),
    systemHeaders: stringMapField(what, fields, 'systemHeaders'),
    checksum: checksumField(what, fields, 'checksum'),
    parts: partsValue.map((part) => decodeStoredPart(what, part)),
    dataDir: typeof dataDir === 'string' ? dataDir : undefined,
    inline,
    inlineCrc32c: inline ? (inlineCrc32c as number) : undefined,
    erasure: decodeErasure(what, fields['erasure']),
    encryption: fields['encryption'] === undefined ? undefined : stringMapField(what, fields, 'encryption'),
  });
  const partSizeSumBytes = version.parts.reduce((sum, part) => sum + part.size, 0);
  if (partSizeSumBytes !== version.sizeBytes) throw corrupt(what, 'part sizes do not add up to the object size');
  return version;
}

/** Bytes of a drive's inline section: the stored data, or with bitrot framing this drive's framed shard. */
export function inlineShardSizeBytes(version: ObjectVersion): number {
  const storedSizeBytes = version.encryption === undefined ? version.sizeBytes : encryptedSizeBytes(version.sizeBytes);
  const { bitrot, blockSizeBytes, dataShards } = version.erasure;
  if (bitrot === undefined) return storedSizeBytes;
  const payloadBytes = shardFileSizeBytes(storedSizeBytes, blockSizeBytes, dataShards);
  return payloadBytes === 0 ? 0 : bitrotShardFileSizeBytes(payloadBytes, shardSizeBytes(blockSizeBytes, dataShards), bitrot);
}

/**
 * Decode `coffer.meta`. With `withInline` false, `bytes` may stop right after the CRC (header-only read for
 * stat and listing) and the returned inlineData is empty.
 */
export function decodeObjectMeta(bytes: Uint8Array, withInline: boolean): ObjectMetaFile {
  const { body, trailer } = decodeFrame(objectMetaMagic, objectMetaWhat, bytes);
  const fields = asFields(objectMetaWhat, body);
  const versionsValue = fields['versions'];
  if (!Array.isArray(versionsValue) || versionsValue.length === 0) {
    throw corrupt(objectMetaWhat, 'versions is not a non-empty list');
  }
  const versions = versionsValue.map(decodeVersion);
  if (!withInline) return { versions, inlineData: Buffer.alloc(0) };
  const latest = versions[0]!;
  if (latest.inline) {
    const storedSizeBytes = inlineShardSizeBytes(latest);
    if (trailer.length !== storedSizeBytes) throw corrupt(objectMetaWhat, 'inline data has the wrong length');
    if (crc32c(trailer) !== latest.inlineCrc32c) throw corrupt(objectMetaWhat, 'inline data CRC32C mismatch');
  } else if (trailer.length !== 0) {
    throw corrupt(objectMetaWhat, 'unexpected inline data');
  }
  return { versions, inlineData: trailer };
}

// ------------------------------------------------------------------------------------ upload.meta

const uploadMetaWhat = 'upload metadata';

export function encodeUploadMeta(upload: UploadMeta): Buffer {
  return encodeFrame(
    uploadMetaMagic,
    compact({
      bucket: upload.bucket,
      key: upload.key,
      uploadId: upload.uploadId,
      initiatedMs: upload.initiatedMs,
      contentType: upload.contentType,
      userMetadata: upload.userMetadata,
      systemHeaders: upload.systemHeaders,
      checksumAlgorithm: upload.checksumAlgorithm,
      checksumType: upload.checksumType,
      encryption: upload.encryption,
    }),
  );
}

export function decodeUploadMeta(bytes: Uint8Array): UploadMeta {
  const what = uploadMetaWhat;
  const fields = asFields(what, decodeFrame(uploadMetaMagic, what, bytes).body);
  const checksumAlgorithm = fields['checksumAlgorithm'];
  const checksumType = fields['checksumType'];
  if (checksumAlgorithm !== undefined && !isChecksumAlgorithm(checksumAlgorithm)) {
    throw corrupt(what, 'unknown checksumAlgorithm');
  }
  if (checksumType !== undefined && !isChecksumType(checksumType)) throw corrupt(what, 'unknown checksumType');
  return compact({
    bucket: stringField(what, fields, 'bucket'),
    key: stringField(what, fields, 'key'),
    uploadId: stringField(what, fields, 'uploadId'),
    initiatedMs: numberField(what, fields, 'initiatedMs'),
    contentType: stringField(what, fields, 'contentType'),
    userMetadata: stringMapField(what, fields, 'userMetadata'),
    systemHeaders: stringMapField(what, fields, 'systemHeaders'),
    checksumAlgorithm,
    checksumType,
    encryption: fields['encryption'] === undefined ? undefined : stringMapField(what, fields, 'encryption'),
  });
}

// ------------------------------------------------------------------------------------ part.N.meta

const partMetaWhat = 'part metadata';

export function encodePartMeta(part: PartMeta): Buffer {
  return encodeFrame(partMetaMagic, { ...encodeStoredPart(part), file: part.file });
}

export function decodePartMeta(bytes: Uint8Array): PartMeta {
  const { body } = decodeFrame(partMetaMagic, partMetaWhat, bytes);
  const fields = asFields(partMetaWhat, body);
  return { ...decodeStoredPart(partMetaWhat, fields), file: stringField(partMetaWhat, fields, 'file') };
}
