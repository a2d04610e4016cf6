// ListObjects over the directory tree (the tree is the index, as in MinIO: erasure-jbod.md section 8).
//
// The walk is lazy: one directory is read at a time, entries are visited in S3 key order, and subtrees that
// cannot hold a wanted key (outside the prefix, entirely <= `after`, or inside an already returned common
// prefix) are skipped without being read. Memory is bounded by the directories on the current path.
//
// Ordering: S3 sorts keys by UTF-8 bytes. Inside one directory, an entry `name` stands for two things at
// different positions: the object `name` itself (if `name/coffer.meta` exists) and the subtree of keys
// starting with `name/`. Sorting those as the strings "name" and "name/" gives key order, e.g. "a-c" sorts
// before "a/..." because '-' (0x2d) < '/' (0x2f).

import fs from 'node:fs/promises';
import path from 'node:path';
import {
  compareUtf8,
  dataDirNamePattern,
  directoryObjectSuffix,
  maxSegmentSizeBytes,
  prefixDirSegments,
  segmentProblem,
  utf8SizeBytes,
} from './paths.ts';
import { isErrnoCode } from './drive.ts';
import type { ListObjectsInput, ListObjectsPage, ObjectInfo } from './types.ts';

/** S3's page limit; larger requests are clamped. */
export const maxKeysPerList = 1000;

/** An object key found in the tree; its directory may turn out to hold no `coffer.meta` (a bare prefix dir). */
export interface ObjectCandidate {
  readonly key: string;
  readonly objectDir: string;
}

/** Mutable bounds the walk consults before each step, so the consumer can prune while iterating. */
export interface WalkCursor {
  /** only keys strictly greater than this (UTF-8 order) */
  readonly after: string;
  /** skip every key starting with this (a common prefix already returned) */
  skipPrefix?: string;
}

interface DirEntryItem {
  /** full key of the object, or the key prefix ("name/") of the subtree */
  readonly key: string;
  readonly keyBytes: Buffer;
  readonly isSubtree: boolean;
  readonly dirPath: string;
}

/** The common prefix `key` rolls up into under `prefix`/`delimiter`, or undefined. */
export function commonPrefixOf(key: string, prefix: string, delimiter: string): string | undefined {
  if (delimiter === '') return undefined;
  const index = key.indexOf(delimiter, prefix.length);
  return index < 0 ? undefined : key.slice(0, index + delimiter.length);
}

function isSubtreeBeforeCursor(item: DirEntryItem, after: string, afterBytes: Buffer): boolean {
  // Every key in the subtree starts with item.key. If `after` is past item.key without extending it, it is
  // past every such key.
  return !after.startsWith(item.key) && Buffer.compare(afterBytes, item.keyBytes) >= 0;
}

async function readDirItems(dirPath: string, keyBase: string): Promise<DirEntryItem[]> {
  let entries;
  try {
    entries = await fs.readdir(dirPath, { withFileTypes: true });
  } catch (error) {
    // Gone (deleted concurrently) or not a directory: holds no keys.
    if (isErrnoCode(error, 'ENOENT') || isErrnoCode(error, 'ENOTDIR')) return [];
    throw error;
  }
  const items: DirEntryItem[] = [];
  const push = (key: string, isSubtree: boolean, name: string): void => {
    items.push({ key, keyBytes: Buffer.from(key, 'utf8'), isSubtree, dirPath: path.join(dirPath, name) });
  };
  for (const entry of entries) {
    if (!entry.isDirectory()) continue; // coffer.meta of the enclosing object, stray files
    const name = entry.name;
    if (dataDirNamePattern.test(name)) continue;
    if (name.endsWith(directoryObjectSuffix)) {
      const base = name.slice(0, -directoryObjectSuffix.length);
      if (segmentProblem(base) === undefined) push(`${keyBase}${base}/`, false, name);
      continue;
    }
    if (segmentProblem(name) !== undefined || utf8SizeBytes(name) > maxSegmentSizeBytes) continue;
    push(keyBase + name, false, name);
    push(`${keyBase}${name}/`, true, name);
  }
  // A directory object "x/" and the subtree "x/" compare equal: the object ("x/" itself) comes first.
  items.sort((left, right) => Buffer.compare(left.keyBytes, right.keyBytes) || Number(left.isSubtree) - Number(right.isSubtree));
  return items;
}

async function* walkDir(dirPath: string, keyBase: string, prefix: string, cursor: WalkCursor, afterBytes: Buffer): AsyncGenerator<ObjectCandidate> {
  const items = await readDirItems(dirPath, keyBase);
  for (const item of items) {
    const { skipPrefix } = cursor;
    if (item.isSubtree) {
      if (!item.key.startsWith(prefix) && !prefix.startsWith(item.key)) continue;
      if (skipPrefix !== undefined && item.key.startsWith(skipPrefix)) continue;
      if (isSubtreeBeforeCursor(item, cursor.after, afterBytes)) continue;
      yield* walkDir(item.dirPath, item.key, prefix, cursor, afterBytes);
    } else {
      if (!item.key.startsWith(prefix)) continue;
      if (skipPrefix !== undefined && item.key.startsWith(skipPrefix)) continue;
      if (Buffer.compare(item.keyBytes, afterBytes) <= 0) continue;
      yield { key: item.key, objectDir: item.dirPath };
    }
  }
}

/**
 * Object candidates under `bucketDir` whose key starts with `prefix`, in UTF-8 key order, honouring the
 * cursor. Starts at the deepest directory the prefix pins down instead of the bucket root.
 */
export async function* walkObjectCandidates(bucketDir: string, prefix: string, cursor: WalkCursor): AsyncGenerator<ObjectCandidate> {
  const dirSegments = prefixDirSegments(prefix);
  if (dirSegments === undefined) return; // no valid key can have this prefix
  if (dirSegments.length > 0 && prefix.endsWith('/')) {
    // The directory object equal to the prefix ("a/b/" -> a/b__XLDIR__) lives beside the prefix's
    // directory, not in it; it is also the smallest key with this prefix, so it goes first.
    const parentSegments = dirSegments.slice(0, -1);
    const objectDir = path.join(bucketDir, ...parentSegments, dirSegments[dirSegments.length - 1]! + directoryObjectSuffix);
    if (compareUtf8(prefix, cursor.after) > 0) yield { key: prefix, objectDir };
  }
  const keyBase = dirSegments.length > 0 ? dirSegments.join('/') + '/' : '';
  yield* walkDir(path.join(bucketDir, ...dirSegments), keyBase, prefix, cursor, Buffer.from(cursor.after, 'utf8'));
}

export interface ListObjectsSource<C extends { readonly key: string } = ObjectCandidate> {
  /** candidates in UTF-8 key order with keys starting with `prefix`, honouring the cursor */
  walk(prefix: string, cursor: WalkCursor): AsyncIterable<C>;
  /** the listed object's info, or undefined when the directory holds no (readable) object */
  loadInfo(candidate: C): Promise<ObjectInfo | undefined>;
  /** whether the candidate directory holds an object (cheaper than loadInfo) */
  hasObject(candidate: C): Promise<boolean>;
}

/**
 * One page of ListObjects. Entries (keys and common prefixes) are returned when they sort strictly after
 * `input.after`; a common prefix counts once, at the position of its first key. `nextAfter` is the last
 * entry returned, so resuming with it neither repeats nor skips anything.
 */
export async function listObjectsPage<C extends { readonly key: string }>(input: ListObjectsInput, source: ListObjectsSource<C>): Promise<ListObjectsPage> {
  const maxKeys = Math.min(Math.max(0, Math.floor(input.maxKeys)), maxKeysPerList);
  if (maxKeys === 0) return { objects: [], commonPrefixes: [], isTruncated: false };
  const { prefix, delimiter } = input;
  const cursor: WalkCursor = { after: input.after };
  const objects: ObjectInfo[] = [];
  const commonPrefixes: string[] = [];
  let lastEntry: string | undefined;
  let isTruncated = false;

  for await (const candidate of source.walk(prefix, cursor)) {
    const commonPrefix = commonPrefixOf(candidate.key, prefix, delimiter);
    if (commonPrefix !== undefined) {
      if (compareUtf8(commonPrefix, input.after) <= 0) {
        cursor.skipPrefix = commonPrefix; // returned on an earlier page
        continue;
      }
      // Only a prefix that really holds an object is shown (a bare directory left by a race is not).
      if (!(await source.hasObject(candidate))) continue;
      if (objects.length + commonPrefixes.length === maxKeys) {
        isTruncated = true;
        break;
      }
      commonPrefixes.push(commonPrefix);
      lastEntry = commonPrefix;
      cursor.skipPrefix = commonPrefix;
      continue;
    }
    const info = await source.loadInfo(candidate);
    if (info === undefined) continue;
    if (objects.length + commonPrefixes.length === maxKeys) {
      isTruncated = true;
      break;
    }
    objects.push(info);
    lastEntry = candidate.key;
  }
  return isTruncated ? { objects, commonPrefixes, isTruncated, nextAfter: lastEntry } : { objects, commonPrefixes, isTruncated };
}

/** Whether the bucket holds at least one object (stops at the first). */
export async function bucketHasObject<C extends { readonly key: string }>(source: ListObjectsSource<C>): Promise<boolean> {
  for await (const candidate of source.walk('', { after: '' })) {
    if (await source.hasObject(candidate)) return true;
  }
  return false;
}
