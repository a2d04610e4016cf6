// Multipart uploads (docs/format.md, "Multipart uploads"): one directory per upload under
// `.coffer.sys/multipart/<bucket>/<sha256hex(key)>/<uploadId>/` holding `upload.meta`, and per part a data
// file plus `part.N.meta`. Completion hard-links the listed parts into a new data dir and commits it
// exactly like a PUT.

import { createHash, randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fsyncDir, isErrnoCode, mkdirsDurable, readSmallFile, removeEmptyDirsUpTo, writeFileDurable } from './drive.ts';
import type { Drive } from './drive.ts';
import { bucketLockKey, objectLockKey, uploadLockKey } from './locks.ts';
import type { KeyedLock } from './locks.ts';
import { commonPrefixOf } from './list.ts';
import { decodePartMeta, decodeUploadMeta, encodePartMeta, encodeUploadMeta, maxMetaBodySizeBytes, singleDriveErasure } from './meta.ts';
import type { ErasureInfo, ObjectVersion, PartMeta, StoredPart, UploadMeta } from './meta.ts';
import { commitObject, maxCommitAttempts, removeGarbage, toObjectInfo, toPartInfo } from './objects.ts';
import { compareUtf8, dataDirName, parseKey } from './paths.ts';
import type { ParsedKey } from './paths.ts';
import { stageBody } from './stage.ts';
import type { BlockCipherPool } from '../workers/pool.ts';
import { encryptedSizeBytes } from '../workers/dare.ts';
import { encryptBody, encryptedObjectEtag, expectedCiphertextBytes, type PlaintextTally } from './encrypted-body.ts';
import { StorageError } from './types.ts';
import type {
  CompletePart,
  CreateMultipartInput,
  ListPartsPage,
  ListUploadsInput,
  ListUploadsPage,
  MultipartUploadInfo,
  ObjectChecksum,
  ObjectInfo,
  PartInfo,
  PutInput,
} from './types.ts';

/** S3 limits (Amazon S3 multipart upload limits). */
export const minPartNumber = 1;
export const maxPartNumber = 10_000;
export const minPartSizeBytes = 5 * 1024 * 1024;
export const maxPartSizeBytes = 5 * 1024 * 1024 * 1024;
export const maxMultipartObjectSizeBytes = 5 * 1024 * 1024 * 1024 * 1024;
export const maxPartsPerList = 1000;
export const maxUploadsPerList = 1000;

export const uploadMetaFileName = 'upload.meta';
/**
 * Upload IDs: 12 hex digits of the initiation time in ms, then 24 random hex digits. Sorting IDs as strings
 * sorts one key's uploads by initiation time, which is the order S3 lists them in, so upload-id-marker
 * works with plain string comparison. URL-safe, and checked against this pattern before it names a path.
 */
export const uploadIdPattern = /^[0-9a-f]{36}$/;
const uploadIdTimeHexDigits = 12;
const uploadIdRandomBytes = 12;
export const partMetaNamePattern = /^part\.([1-9][0-9]{0,4})\.meta$/;
export const defaultContentType = 'application/octet-stream';

export function newUploadId(nowMs: number): string {
  return nowMs.toString(16).padStart(uploadIdTimeHexDigits, '0').slice(-uploadIdTimeHexDigits) + randomBytes(uploadIdRandomBytes).toString('hex');
}

export function partMetaFileName(partNumber: number): string {
  return `part.${partNumber}.meta`;
}

export function normalizeEtag(etag: string): string {
  return etag.replace(/^"+|"+$/g, '').toLowerCase();
}

export function toUploadInfo(upload: UploadMeta): MultipartUploadInfo {
  const info: MultipartUploadInfo = {
    bucket: upload.bucket,
    key: upload.key,
    uploadId: upload.uploadId,
    initiatedMs: upload.initiatedMs,
    contentType: upload.contentType,
    userMetadata: upload.userMetadata,
    systemHeaders: upload.systemHeaders,
  };
  return {
    ...info,
    ...(upload.checksumAlgorithm === undefined ? {} : { checksumAlgorithm: upload.checksumAlgorithm }),
    ...(upload.checksumType === undefined ? {} : { checksumType: upload.checksumType }),
    ...(upload.encryption === undefined ? {} : { encryption: upload.encryption }),
  };
}

export function storedPartOf(part: PartMeta): StoredPart {
  const stored: StoredPart = { n: part.n, size: part.size, etag: part.etag, mtime: part.mtime };
  return part.checksum === undefined ? stored : { ...stored, checksum: part.checksum };
}

export function noSuchUpload(uploadId: string): StorageError {
  return new StorageError('NoSuchUpload', `upload ${uploadId} does not exist`);
}

/** A new upload's record (its ID carries the initiation time, see newUploadId). */
export function newUploadMeta(bucket: string, key: string, input: CreateMultipartInput): UploadMeta {
  const initiatedMs = Date.now();
  return {
    bucket,
    key,
    uploadId: newUploadId(initiatedMs),
    initiatedMs,
    contentType: input.contentType ?? defaultContentType,
    userMetadata: { ...input.userMetadata },
    systemHeaders: { ...input.systemHeaders },
    ...(input.checksumAlgorithm === undefined ? {} : { checksumAlgorithm: input.checksumAlgorithm }),
    ...(input.checksumType === undefined ? {} : { checksumType: input.checksumType }),
    ...(input.encryption === undefined ? {} : { encryption: input.encryption }),
  };
}

/** The object version a completed upload becomes (its data dir holds the listed parts as part.N). */
export function completedVersion(
  upload: UploadMeta,
  fields: { sizeBytes: number; etag: string; checksum: ObjectChecksum | undefined; parts: readonly StoredPart[]; dataDir: string; erasure: ErasureInfo },
): ObjectVersion {
  return {
    type: 'object',
    versionId: null,
    modTimeMs: Date.now(),
    sizeBytes: fields.sizeBytes,
    etag: fields.etag,
    contentType: upload.contentType,
    userMetadata: upload.userMetadata,
    systemHeaders: upload.systemHeaders,
    ...(fields.checksum === undefined ? {} : { checksum: fields.checksum }),
    parts: fields.parts,
    dataDir: fields.dataDir,
    inline: false,
    erasure: fields.erasure,
    ...(upload.encryption === undefined ? {} : { encryption: upload.encryption }),
  };
}

/** One page of ListParts: the part numbers after the marker (any order), read until `limit` are found. */
export async function pageParts(
  upload: UploadMeta,
  partNumbers: number[],
  limit: number,
  readPartMeta: (partNumber: number) => Promise<PartMeta | undefined>,
): Promise<ListPartsPage> {
  partNumbers.sort((left, right) => left - right);
  const parts: PartInfo[] = [];
  let index = 0;
  for (; index < partNumbers.length && parts.length < limit; index++) {
    const partMeta = await readPartMeta(partNumbers[index]!);
    if (partMeta !== undefined) parts.push(toPartInfo(storedPartOf(partMeta)));
  }
  const isTruncated = limit > 0 && index < partNumbers.length;
  const page: ListPartsPage = { upload: toUploadInfo(upload), parts, isTruncated };
  return isTruncated ? { ...page, nextPartNumberMarker: parts[parts.length - 1]!.partNumber } : page;
}

/**
 * S3's rules for CompleteMultipartUpload, given a way to read a stored part: ascending part numbers, every
 * part uploaded with the ETag (and checksum) the client names, all but the last >= 5 MiB, <= 5 TiB in all.
 * Returns the parts, the object size and S3's multipart ETag.
 */
export async function checkCompletion(
  requestedParts: readonly CompletePart[],
  readPartMeta: (partNumber: number) => Promise<PartMeta | undefined>,
): Promise<{ partMetas: PartMeta[]; sizeBytes: number; etag: string }> {
  if (requestedParts.length === 0) throw new StorageError('InvalidPartOrder', 'the part list is empty');
  if (requestedParts.length > maxPartNumber) throw new StorageError('InvalidArgument', `more than ${maxPartNumber} parts`);
  for (let index = 1; index < requestedParts.length; index++) {
    if (requestedParts[index]!.partNumber <= requestedParts[index - 1]!.partNumber) {
      throw new StorageError('InvalidPartOrder', 'part numbers must be strictly ascending');
    }
  }
  const partMetas: PartMeta[] = [];
  for (const requested of requestedParts) {
    const { partNumber } = requested;
    const partMeta = Number.isSafeInteger(partNumber) && partNumber >= minPartNumber && partNumber <= maxPartNumber
      ? await readPartMeta(partNumber)
      : undefined;
    if (partMeta === undefined) throw new StorageError('InvalidPart', `part ${partNumber} was not uploaded`);
    if (normalizeEtag(requested.etag) !== partMeta.etag) {
      throw new StorageError('InvalidPart', `part ${partNumber}: the ETag does not match`);
    }
    if (requested.checksum !== undefined && requested.checksum !== partMeta.checksum?.value) {
      throw new StorageError('InvalidPart', `part ${partNumber}: the checksum does not match`);
    }
    partMetas.push(partMeta);
  }
  for (let index = 0; index < partMetas.length - 1; index++) {
    if (partMetas[index]!.size < minPartSizeBytes) {
      throw new StorageError('EntityTooSmall', `part ${partMetas[index]!.n} is smaller than ${minPartSizeBytes} bytes`);
    }
  }
  const sizeBytes = partMetas.reduce((sum, part) => sum + part.size, 0);
  if (sizeBytes > maxMultipartObjectSizeBytes) throw new StorageError('EntityTooLarge', 'the object would exceed 5 TiB');

  // S3's multipart ETag: MD5 over the concatenated binary MD5s of the parts, then "-<count>".
  const etagHash = createHash('md5');
  for (const part of partMetas) etagHash.update(Buffer.from(part.etag, 'hex'));
  const etag = `${etagHash.digest('hex')}-${partMetas.length}`;
  return { partMetas, sizeBytes, etag };
}

/** One page of ListMultipartUploads over every upload of the bucket under the prefix (any order; sorted here). */
export function pageUploads(all: UploadMeta[], input: ListUploadsInput): ListUploadsPage {
  const limit = Math.min(Math.max(0, Math.floor(input.maxUploads)), maxUploadsPerList);
  if (limit === 0) return { uploads: [], commonPrefixes: [], isTruncated: false };
  const { prefix, delimiter, keyMarker, uploadIdMarker } = input;
  all.sort((left, right) => compareUtf8(left.key, right.key) || (left.uploadId < right.uploadId ? -1 : left.uploadId > right.uploadId ? 1 : 0));

  const uploads: MultipartUploadInfo[] = [];
  const commonPrefixes: string[] = [];
  let lastCommonPrefix: string | undefined;
  let lastEntry: { key: string; uploadId?: string } | undefined;
  let isTruncated = false;
  for (const upload of all) {
    if (keyMarker !== '') {
      const order = compareUtf8(upload.key, keyMarker);
      // S3: after the key marker; with an upload-id marker, also that key's later uploads.
      if (order < 0 || (order === 0 && (uploadIdMarker === '' || upload.uploadId <= uploadIdMarker))) continue;
    }
    const commonPrefix = commonPrefixOf(upload.key, prefix, delimiter);
    if (commonPrefix !== undefined) {
      if (commonPrefix === lastCommonPrefix || (keyMarker !== '' && compareUtf8(commonPrefix, keyMarker) <= 0)) continue;
      if (uploads.length + commonPrefixes.length === limit) {
        isTruncated = true;
        break;
      }
      commonPrefixes.push(commonPrefix);
      lastCommonPrefix = commonPrefix;
      lastEntry = { key: commonPrefix };
      continue;
    }
    if (uploads.length + commonPrefixes.length === limit) {
      isTruncated = true;
      break;
    }
    uploads.push(toUploadInfo(upload));
    lastEntry = { key: upload.key, uploadId: upload.uploadId };
  }
  if (!isTruncated || lastEntry === undefined) return { uploads, commonPrefixes, isTruncated: false };
  return {
    uploads,
    commonPrefixes,
    isTruncated,
    nextKeyMarker: lastEntry.key,
    ...(lastEntry.uploadId === undefined ? {} : { nextUploadIdMarker: lastEntry.uploadId }),
  };
}

/** The upload's metadata; NoSuchUpload when it does not exist (or belongs to another bucket/key). */
export async function readUploadOnDrive(drive: Drive, bucket: string, key: string, uploadId: string): Promise<{ upload: UploadMeta; uploadDir: string }> {
  if (!uploadIdPattern.test(uploadId)) throw noSuchUpload(uploadId);
  const uploadDir = drive.paths.uploadDir(bucket, key, uploadId);
  let bytes: Buffer;
  try {
    bytes = await readSmallFile(path.join(uploadDir, uploadMetaFileName), maxMetaBodySizeBytes);
  } catch (error) {
    if (isErrnoCode(error, 'ENOENT') || isErrnoCode(error, 'ENOTDIR')) throw noSuchUpload(uploadId);
    throw error;
  }
  const upload = decodeUploadMeta(bytes);
  if (upload.bucket !== bucket || upload.key !== key || upload.uploadId !== uploadId) throw noSuchUpload(uploadId);
  return { upload, uploadDir };
}

/** A part's metadata in an upload dir; undefined when the part was not uploaded. */
export async function readPartMetaIn(uploadDir: string, partNumber: number): Promise<PartMeta | undefined> {
  try {
    return decodePartMeta(await readSmallFile(path.join(uploadDir, partMetaFileName(partNumber)), maxMetaBodySizeBytes));
  } catch (error) {
    if (isErrnoCode(error, 'ENOENT')) return undefined;
    throw error;
  }
}


/**
 * Every upload of the bucket whose key starts with `prefix`, unsorted. Uploads are few and short-lived;
 * their directories are keyed by hash, so there is no order to walk lazily.
 */
export async function scanUploadsOnDrive(drive: Drive, bucket: string, prefix: string, stopAtFirst: boolean): Promise<UploadMeta[]> {
  const bucketUploadsDir = drive.paths.bucketMultipartDir(bucket);
  const found: UploadMeta[] = [];
  let hashDirNames: string[];
  try {
    hashDirNames = await fs.readdir(bucketUploadsDir);
  } catch (error) {
    if (isErrnoCode(error, 'ENOENT')) return found;
    throw error;
  }
  for (const hashDirName of hashDirNames) {
    let uploadIds: string[];
    try {
      uploadIds = await fs.readdir(path.join(bucketUploadsDir, hashDirName));
    } catch (error) {
      if (isErrnoCode(error, 'ENOENT') || isErrnoCode(error, 'ENOTDIR')) continue;
      throw error;
    }
    for (const uploadId of uploadIds) {
      if (!uploadIdPattern.test(uploadId)) continue;
      let upload: UploadMeta;
      try {
        upload = decodeUploadMeta(await readSmallFile(path.join(bucketUploadsDir, hashDirName, uploadId, uploadMetaFileName), maxMetaBodySizeBytes));
      } catch {
        continue; // completed or aborted meanwhile, or unreadable: not a listable upload
      }
      if (upload.bucket !== bucket || !upload.key.startsWith(prefix)) continue;
      found.push(upload);
      if (stopAtFirst) return found;
    }
  }
  return found;
}


export class MultipartStore {
  readonly #drive: Drive;
  readonly #locks: KeyedLock;

  readonly #cipherPool: BlockCipherPool;

  constructor(drive: Drive, locks: KeyedLock, cipherPool: BlockCipherPool) {
    this.#drive = drive;
    this.#locks = locks;
    this.#cipherPool = cipherPool;
  }

  async create(bucket: string, key: string, input: CreateMultipartInput): Promise<MultipartUploadInfo> {
    parseKey(key);
    await this.#drive.assertBucketExists(bucket);
    const upload = newUploadMeta(bucket, key, input);
    const uploadId = upload.uploadId;
    const stagingDir = await this.#drive.makeStagingDir();
    try {
      const stagedUploadDir = path.join(stagingDir, uploadId);
      await fs.mkdir(stagedUploadDir);
      await writeFileDurable(path.join(stagedUploadDir, uploadMetaFileName), encodeUploadMeta(upload));
      await fsyncDir(stagedUploadDir);
      const uploadDir = this.#drive.paths.uploadDir(bucket, key, uploadId);
      await this.#locks.withShared(bucketLockKey(bucket), async () => {
        await this.#drive.assertBucketExists(bucket);
        for (let attempt = 1; ; attempt++) {
          try {
            await mkdirsDurable(path.dirname(uploadDir), this.#drive.paths.multipartDir);
            await fs.rename(stagedUploadDir, uploadDir);
            break;
          } catch (error) {
            // A concurrent abort/complete may prune the (empty) key hash dir between our mkdir and rename.
            if (!isErrnoCode(error, 'ENOENT') || attempt >= maxCommitAttempts) throw error;
          }
        }
        await fsyncDir(path.dirname(uploadDir));
      });
    } finally {
      await removeGarbage(this.#drive, [stagingDir]);
    }
    return toUploadInfo(upload);
  }

  async putPart(bucket: string, key: string, uploadId: string, partNumber: number, input: PutInput): Promise<PartInfo> {
    parseKey(key);
    if (!Number.isSafeInteger(partNumber) || partNumber < minPartNumber || partNumber > maxPartNumber) {
      throw new StorageError('InvalidArgument', `part number must be an integer from ${minPartNumber} to ${maxPartNumber}`);
    }
    // Refuse before consuming the body.
    await this.#drive.assertBucketExists(bucket);
    const { upload } = await readUploadOnDrive(this.#drive, bucket, key, uploadId);
    const encryption = input.encryption;
    if ((upload.encryption === undefined) !== (encryption === undefined)) {
      // Every part of an encrypted upload is encrypted (and no part of a plain one): the API guarantees it.
      throw new StorageError('InvalidArgument', `upload ${uploadId}: part encryption does not match the upload`);
    }

    const stagingDir = await this.#drive.makeStagingDir();
    try {
      // A unique data file name per attempt: part.N.meta names it, so replacing a part is one atomic rename
      // of the meta, and data and meta can never disagree (not even after a crash between renames).
      const dataFileName = `part.${partNumber}.${randomUUID()}`;
      const tally: PlaintextTally = { md5Hex: '', sizeBytes: 0 };
      const expectedSizeBytes = encryption ? expectedCiphertextBytes(input.expectedSizeBytes) : input.expectedSizeBytes;
      const staged = await stageBody({
        body: encryption ? encryptBody(input.body, encryption, tally, this.#cipherPool, input.expectedSizeBytes) : input.body,
        computeMd5: encryption === undefined,
        digestPool: this.#cipherPool,
        maxSizeBytes: encryption ? encryptedSizeBytes(maxPartSizeBytes) : maxPartSizeBytes,
        filePath: path.join(stagingDir, dataFileName),
        baseDir: this.#drive.paths.tmpDir,
        ...(expectedSizeBytes === undefined ? {} : { expectedSizeBytes }),
      });
      const md5Hex = encryption ? tally.md5Hex : staged.md5Hex;
      const sizeBytes = encryption ? tally.sizeBytes : staged.sizeBytes;
      const checksum = input.finish?.(md5Hex, sizeBytes);
      const partMeta: PartMeta = {
        n: partNumber,
        size: sizeBytes,
        etag: encryption ? encryptedObjectEtag(encryption, md5Hex) : md5Hex,
        mtime: Date.now(),
        ...(checksum === undefined ? {} : { checksum }),
        file: dataFileName,
      };
      const stagedMetaPath = path.join(stagingDir, partMetaFileName(partNumber));
      await writeFileDurable(stagedMetaPath, encodePartMeta(partMeta));
      await fsyncDir(stagingDir);

      await this.#locks.withShared(bucketLockKey(bucket), () =>
        this.#locks.withExclusive(uploadLockKey(uploadId), async () => {
          const { uploadDir } = await readUploadOnDrive(this.#drive, bucket, key, uploadId); // completed/aborted meanwhile?
          const previous = await readPartMetaIn(uploadDir, partNumber).catch(() => undefined);
          await fs.rename(path.join(stagingDir, dataFileName), path.join(uploadDir, dataFileName));
          await fsyncDir(uploadDir);
          await fs.rename(stagedMetaPath, path.join(uploadDir, partMetaFileName(partNumber))); // commit point
          await fsyncDir(uploadDir);
          if (previous !== undefined && previous.file !== dataFileName) {
            await fs.rm(path.join(uploadDir, previous.file), { force: true });
          }
        }),
      );
      return toPartInfo(storedPartOf(partMeta));
    } finally {
      await removeGarbage(this.#drive, [stagingDir]);
    }
  }

  async listParts(bucket: string, key: string, uploadId: string, partNumberMarker: number, maxParts: number): Promise<ListPartsPage> {
    parseKey(key);
    await this.#drive.assertBucketExists(bucket);
    const { upload, uploadDir } = await readUploadOnDrive(this.#drive, bucket, key, uploadId);
    const limit = Math.min(Math.max(0, Math.floor(maxParts)), maxPartsPerList);
    const partNumbers: number[] = [];
    for (const name of await fs.readdir(uploadDir)) {
      const match = partMetaNamePattern.exec(name);
      if (match === null) continue;
      const partNumber = Number(match[1]);
      if (partNumber > partNumberMarker && partNumber <= maxPartNumber) partNumbers.push(partNumber);
    }
    return pageParts(upload, partNumbers, limit, (partNumber) => readPartMetaIn(uploadDir, partNumber));
  }

  async complete(
    bucket: string,
    key: string,
    uploadId: string,
    requestedParts: readonly CompletePart[],
    finish?: (parts: readonly PartInfo[]) => ObjectChecksum | undefined,
  ): Promise<ObjectInfo> {
    const parsed = parseKey(key);
    if (!uploadIdPattern.test(uploadId)) throw noSuchUpload(uploadId);
    const garbage: string[] = [];
    try {
      return await this.#locks.withShared(bucketLockKey(bucket), async () => {
        await this.#drive.assertBucketExists(bucket);
        return this.#locks.withExclusive(objectLockKey(bucket, key), () =>
          this.#locks.withExclusive(uploadLockKey(uploadId), () => this.#completeLocked(bucket, parsed, uploadId, requestedParts, finish, garbage)),
        );
      });
    } finally {
      await removeGarbage(this.#drive, garbage);
    }
  }

  async #completeLocked(
    bucket: string,
    parsed: ParsedKey,
    uploadId: string,
    requestedParts: readonly CompletePart[],
    finish: ((parts: readonly PartInfo[]) => ObjectChecksum | undefined) | undefined,
    garbage: string[],
  ): Promise<ObjectInfo> {
    const key = parsed.key;
    const { upload, uploadDir } = await readUploadOnDrive(this.#drive, bucket, key, uploadId);
    const { partMetas, sizeBytes, etag } = await checkCompletion(requestedParts, (partNumber) => readPartMetaIn(uploadDir, partNumber));
    const storedParts = partMetas.map(storedPartOf);
    const checksum = finish?.(storedParts.map(toPartInfo));

    const stagingDir = await this.#drive.makeStagingDir();
    garbage.push(stagingDir);
    const dataDir = randomUUID();
    const stagedDataDir = path.join(stagingDir, dataDirName(dataDir));
    await fs.mkdir(stagedDataDir);
    // Hard links, not renames: if the commit fails the upload is untouched and can be completed again.
    for (const part of partMetas) {
      await fs.link(path.join(uploadDir, part.file), path.join(stagedDataDir, `part.${part.n}`));
    }
    const version = completedVersion(upload, { sizeBytes, etag, checksum, parts: storedParts, dataDir, erasure: singleDriveErasure });
    const bucketDir = this.#drive.paths.bucketDir(bucket);
    garbage.push(
      ...(await commitObject(this.#drive, {
        bucketDir,
        objectDir: this.#drive.paths.objectDir(bucket, parsed),
        version,
        inlineData: Buffer.alloc(0),
        stagingDir,
      })),
    );
    // The object is committed; the upload (with any parts not listed) is garbage now.
    await this.#discardUpload(uploadDir, garbage);
    return toObjectInfo(bucket, key, version);
  }

  async #discardUpload(uploadDir: string, garbage: string[]): Promise<void> {
    const trashPath = await this.#drive.moveToTrash(uploadDir);
    if (trashPath !== undefined) garbage.push(trashPath);
    await removeEmptyDirsUpTo(path.dirname(uploadDir), this.#drive.paths.multipartDir);
  }

  async abort(bucket: string, key: string, uploadId: string): Promise<void> {
    parseKey(key);
    if (!uploadIdPattern.test(uploadId)) throw noSuchUpload(uploadId);
    const garbage: string[] = [];
    try {
      await this.#locks.withShared(bucketLockKey(bucket), async () => {
        await this.#drive.assertBucketExists(bucket);
        await this.#locks.withExclusive(uploadLockKey(uploadId), async () => {
          const { uploadDir } = await readUploadOnDrive(this.#drive, bucket, key, uploadId);
          await this.#discardUpload(uploadDir, garbage);
        });
      });
    } finally {
      await removeGarbage(this.#drive, garbage);
    }
  }

  async hasUploads(bucket: string): Promise<boolean> {
    return (await scanUploadsOnDrive(this.#drive, bucket, '', true)).length > 0;
  }

  async listUploads(bucket: string, input: ListUploadsInput): Promise<ListUploadsPage> {
    await this.#drive.assertBucketExists(bucket);
    return pageUploads(await scanUploadsOnDrive(this.#drive, bucket, input.prefix, false), input);
  }
}
