// Names on a drive: object key validation and the key -> directory mapping (docs/format.md, "Drive layout").
// Every path the engine builds from client input goes through this file, so that no key, bucket name or
// upload ID can reach outside its directory.

import { createHash } from 'node:crypto';
import path from 'node:path';
import { StorageError } from './types.ts';

/** S3's limit on a key: 1024 bytes of UTF-8. */
export const maxKeySizeBytes = 1024;
/** Most filesystems (ext4, xfs, btrfs) refuse longer names. */
export const maxSegmentSizeBytes = 255;
/** Bucket names are validated by the API; this is only the engine's own guard (S3 allows 3..63). */
export const maxBucketNameSizeBytes = 63;

export const systemDirName = '.coffer.sys';
export const formatFileName = 'format.json';
export const tmpDirName = 'tmp';
export const tmpOldDirName = 'tmp-old';
export const multipartDirName = 'multipart';
export const bucketMetaDirName = 'buckets';
/** The per-object metadata file (the commit point of every write). */
export const objectMetaFileName = 'coffer.meta';
/** A key ending in '/' ("directory object") is stored in a directory with this suffix (MinIO's `__XLDIR__`). */
export const directoryObjectSuffix = '__XLDIR__';
export const dataDirSuffix = '.data';
/** Data dir names: `<uuid>.data`. Key segments of this shape are refused so they can never collide. */
export const dataDirNamePattern = /^[0-9a-f-]{36}\.data$/;
/** Lower-case UUID (node:crypto randomUUID). */
export const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const loneSurrogatePattern = /[\uD800-\uDFFF]/u;
const bucketNamePattern = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

export function dataDirName(dataDirId: string): string {
  return dataDirId + dataDirSuffix;
}

export function utf8SizeBytes(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}

/** S3 order: compare by UTF-8 bytes (JS string order is UTF-16 and differs above U+FFFF). */
export function compareUtf8(left: string, right: string): number {
  return Buffer.compare(Buffer.from(left, 'utf8'), Buffer.from(right, 'utf8'));
}

/** The bucket name guard: refuse anything that could be a path trick or hit `.coffer.sys`. */
export function isSafeBucketName(bucket: string): boolean {
  return bucket.length > 0 && utf8SizeBytes(bucket) <= maxBucketNameSizeBytes && bucketNamePattern.test(bucket);
}

export interface ParsedKey {
  readonly key: string;
  /** directory segments below the bucket dir; the last one carries the `__XLDIR__` suffix for directory objects */
  readonly dirSegments: readonly string[];
  readonly isDirectoryObject: boolean;
}

/** Why a single path segment is not allowed, or undefined when it is fine. */
export function segmentProblem(segment: string): string | undefined {
  if (segment.length === 0) return 'empty path segment';
  if (segment === '.' || segment === '..') return `segment "${segment}"`;
  if (segment === objectMetaFileName) return `segment "${objectMetaFileName}" is reserved`;
  if (dataDirNamePattern.test(segment)) return 'segment looks like a data directory';
  if (segment.endsWith(directoryObjectSuffix)) return `segment ends with reserved "${directoryObjectSuffix}"`;
  return undefined;
}

/** Validate an object key and map it to directory segments (throws StorageError). */
export function parseKey(key: string): ParsedKey {
  if (key.length === 0) throw new StorageError('XMinioInvalidObjectName', 'empty object key');
  if (utf8SizeBytes(key) > maxKeySizeBytes) {
    throw new StorageError('KeyTooLongError', `object key is longer than ${maxKeySizeBytes} bytes`);
  }
  if (key.includes('\0')) throw new StorageError('XMinioInvalidObjectName', 'object key contains a NUL byte');
  if (key.startsWith('/')) throw new StorageError('XMinioInvalidObjectName', 'object key starts with "/"');
  if (loneSurrogatePattern.test(key)) {
    throw new StorageError('XMinioInvalidObjectName', 'object key is not valid Unicode');
  }
  const isDirectoryObject = key.endsWith('/');
  const segments = (isDirectoryObject ? key.slice(0, -1) : key).split('/');
  for (const segment of segments) {
    const problem = segmentProblem(segment);
    if (problem !== undefined) throw new StorageError('XMinioInvalidObjectName', `invalid object key: ${problem}`);
    if (utf8SizeBytes(segment) > maxSegmentSizeBytes) {
      throw new StorageError('KeyTooLongError', `object key segment is longer than ${maxSegmentSizeBytes} bytes`);
    }
  }
  if (isDirectoryObject) {
    const last = segments[segments.length - 1]! + directoryObjectSuffix;
    if (utf8SizeBytes(last) > maxSegmentSizeBytes) {
      throw new StorageError('KeyTooLongError', `object key segment is longer than ${maxSegmentSizeBytes} bytes`);
    }
    segments[segments.length - 1] = last;
  }
  return { key, dirSegments: segments, isDirectoryObject };
}

/**
 * The directory segments a listing prefix pins down: for "a/b/c" that is ["a","b"] (keys under "a/b/"),
 * or undefined when no valid key can start with the prefix (e.g. "a//" or "../"), so listing it is empty.
 */
export function prefixDirSegments(prefix: string): string[] | undefined {
  const lastSlash = prefix.lastIndexOf('/');
  if (lastSlash < 0) return [];
  const segments = prefix.slice(0, lastSlash).split('/');
  for (const segment of segments) {
    if (segmentProblem(segment) !== undefined || utf8SizeBytes(segment) > maxSegmentSizeBytes) return undefined;
  }
  return segments;
}

/** The multipart directory name of a key: sha256 hex, so any key maps to a fixed-size, safe name. */
export function multipartKeyHash(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

/** Absolute layout of one drive (docs/format.md). */
export class DrivePaths {
  readonly root: string;
  readonly systemDir: string;
  readonly formatFile: string;
  readonly tmpDir: string;
  readonly tmpOldDir: string;
  readonly multipartDir: string;
  readonly bucketMetaDir: string;

  constructor(root: string) {
    this.root = path.resolve(root);
    this.systemDir = path.join(this.root, systemDirName);
    this.formatFile = path.join(this.systemDir, formatFileName);
    this.tmpDir = path.join(this.systemDir, tmpDirName);
    this.tmpOldDir = path.join(this.systemDir, tmpOldDirName);
    this.multipartDir = path.join(this.systemDir, multipartDirName);
    this.bucketMetaDir = path.join(this.systemDir, bucketMetaDirName);
  }

  bucketDir(bucket: string): string {
    return path.join(this.root, bucket);
  }

  bucketMetaFile(bucket: string): string {
    return path.join(this.bucketMetaDir, `${bucket}.json`);
  }

  objectDir(bucket: string, parsed: ParsedKey): string {
    return path.join(this.root, bucket, ...parsed.dirSegments);
  }

  bucketMultipartDir(bucket: string): string {
    return path.join(this.multipartDir, bucket);
  }

  uploadDir(bucket: string, key: string, uploadId: string): string {
    return path.join(this.multipartDir, bucket, multipartKeyHash(key), uploadId);
  }
}
