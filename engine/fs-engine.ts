// The filesystem object engine: buckets, objects and multipart uploads on one drive, in the multi-drive
// format scaled down to a 1-drive erasure set (docs/format.md). This file orchestrates; the format lives in
// meta.ts/paths.ts, the crash-safe commit in objects.ts, listing in list.ts, multipart in multipart.ts.

import { crc32c } from '@node-rs/crc32';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { Drive } from './drive.ts';
import { bucketHasObject, listObjectsPage, walkObjectCandidates } from './list.ts';
import type { ListObjectsSource } from './list.ts';
import { bucketLockKey, KeyedLock, objectLockKey } from './locks.ts';
import { singleDriveErasure } from './meta.ts';
import type { ObjectVersion } from './meta.ts';
import { MultipartStore } from './multipart.ts';
import {
  commitObject,
  deleteObjectFiles,
  inlineMaxSizeBytes,
  objectExists,
  readObjectMeta,
  removeGarbage,
  toObjectInfo,
} from './objects.ts';
import { compareUtf8, dataDirName, isSafeBucketName, parseKey } from './paths.ts';
import { openDriveObject } from './reader.ts';
import { stageBody } from './stage.ts';
import { createBlockCipherPool, type BlockCipherPool } from '../workers/pool.ts';
import { encryptedSizeBytes } from '../workers/dare.ts';
import { encryptBody, encryptedObjectEtag, expectedCiphertextBytes, type PlaintextTally } from './encrypted-body.ts';
import { StorageError } from './types.ts';
import type {
  BucketEncryption,
  BucketInfo,
  CompletePart,
  CreateMultipartInput,
  ListObjectsInput,
  ListObjectsPage,
  ListPartsPage,
  ListUploadsInput,
  ListUploadsPage,
  MultipartUploadInfo,
  ObjectChecksum,
  ObjectEngine,
  ObjectInfo,
  ObjectReader,
  PartInfo,
  PutInput,
} from './types.ts';

export interface FsEngineOptions {
  /** where DARE blocks are sealed and opened; default: inline on the calling thread (size 0) */
  readonly cipherPool?: BlockCipherPool;
}

/** S3's limit for a single PUT; larger objects must use multipart. */
export const maxSinglePutSizeBytes = 5 * 1024 * 1024 * 1024;
const defaultContentType = 'application/octet-stream';

export class FsEngine implements ObjectEngine {
  readonly #drive: Drive;
  readonly #locks = new KeyedLock();
  readonly #multipart: MultipartStore;
  readonly #listSource: (bucket: string) => ListObjectsSource;

  readonly #cipherPool: BlockCipherPool;
  readonly #ownsCipherPool: boolean;

  private constructor(drive: Drive, cipherPool: BlockCipherPool | undefined) {
    this.#drive = drive;
    this.#cipherPool = cipherPool ?? createBlockCipherPool(0);
    this.#ownsCipherPool = cipherPool === undefined;
    this.#multipart = new MultipartStore(drive, this.#locks, this.#cipherPool);
    this.#listSource = (bucket) => ({
      walk: (prefix, cursor) => walkObjectCandidates(drive.paths.bucketDir(bucket), prefix, cursor),
      loadInfo: async (candidate) => {
        let meta;
        try {
          meta = await readObjectMeta(candidate.objectDir, false);
        } catch (error) {
          // One corrupt object must not make the whole bucket unlistable; GET/HEAD report it.
          if (error instanceof StorageError) return undefined;
          throw error;
        }
        return meta === undefined ? undefined : toObjectInfo(bucket, candidate.key, meta.versions[0]!);
      },
      hasObject: (candidate) => objectExists(candidate.objectDir),
    });
  }

  /** Open the engine on its drives (exactly one for now), formatting a fresh drive. */
  static async open(driveDirs: string[], options: FsEngineOptions = {}): Promise<FsEngine> {
    if (driveDirs.length !== 1) {
      throw new Error(`FsEngine supports exactly one drive for now, got ${driveDirs.length}`);
    }
    return new FsEngine(await Drive.open(driveDirs[0]!), options.cipherPool);
  }

  /** The deployment UUID from format.json. */
  get deploymentId(): string {
    return this.#drive.format.deploymentId;
  }

  // ------------------------------------------------------------------------------------------ buckets

  async makeBucket(bucket: string): Promise<void> {
    if (!isSafeBucketName(bucket)) throw new StorageError('InvalidArgument', `invalid bucket name ${JSON.stringify(bucket)}`);
    await this.#locks.withExclusive(bucketLockKey(bucket), () => this.#drive.createBucket(bucket, Date.now()));
  }

  async deleteBucket(bucket: string): Promise<void> {
    const garbage: string[] = [];
    try {
      await this.#locks.withExclusive(bucketLockKey(bucket), async () => {
        await this.#drive.assertBucketExists(bucket);
        if (await bucketHasObject(this.#listSource(bucket))) {
          throw new StorageError('BucketNotEmpty', `bucket ${bucket} holds objects`);
        }
        if (await this.#multipart.hasUploads(bucket)) {
          throw new StorageError('BucketNotEmpty', `bucket ${bucket} has multipart uploads in progress`);
        }
        garbage.push(...(await this.#drive.deleteBucketDirs(bucket)));
      });
    } finally {
      await removeGarbage(this.#drive, garbage);
    }
  }

  async headBucket(bucket: string): Promise<BucketInfo> {
    if (!isSafeBucketName(bucket)) throw new StorageError('NoSuchBucket', `bucket ${bucket} does not exist`);
    return this.#drive.bucketInfo(bucket);
  }

  async listBuckets(): Promise<BucketInfo[]> {
    const buckets: BucketInfo[] = [];
    for (const name of await this.#drive.bucketNames()) {
      try {
        buckets.push(await this.#drive.bucketInfo(name));
      } catch (error) {
        if (!(error instanceof StorageError && error.kind === 'NoSuchBucket')) throw error; // deleted meanwhile
      }
    }
    return buckets.sort((left, right) => compareUtf8(left.name, right.name));
  }

  async getBucketEncryption(bucket: string): Promise<BucketEncryption | undefined> {
    if (!isSafeBucketName(bucket)) throw new StorageError('NoSuchBucket', `bucket ${bucket} does not exist`);
    return this.#drive.bucketEncryption(bucket);
  }

  async setBucketEncryption(bucket: string, config: BucketEncryption | undefined): Promise<void> {
    if (!isSafeBucketName(bucket)) throw new StorageError('NoSuchBucket', `bucket ${bucket} does not exist`);
    await this.#locks.withExclusive(bucketLockKey(bucket), async () => {
      await this.#drive.assertBucketExists(bucket);
      await this.#drive.setBucketEncryption(bucket, config);
    });
  }

  // ------------------------------------------------------------------------------------------ objects

  async putObject(bucket: string, key: string, input: PutInput): Promise<ObjectInfo> {
    const parsed = parseKey(key);
    await this.#drive.assertBucketExists(bucket); // before consuming the body
    // Created by stageBody only when the body is too big to inline; an inline PUT stages just its metadata
    // file, beside the (absent) dir.
    const stagingDir = this.#drive.stagingPath();
    const stagedInlineMetaPath = `${stagingDir}.meta`;
    const garbage: string[] = [];
    let committedInline = false;
    try {
      const dataDir = randomUUID();
      const encryption = input.encryption;
      const tally: PlaintextTally = { md5Hex: '', sizeBytes: 0 };
      const expectedSizeBytes = encryption ? expectedCiphertextBytes(input.expectedSizeBytes) : input.expectedSizeBytes;
      const staged = await stageBody({
        body: encryption ? encryptBody(input.body, encryption, tally, this.#cipherPool, input.expectedSizeBytes) : input.body,
        computeMd5: encryption === undefined,
        digestPool: this.#cipherPool,
        maxSizeBytes: encryption ? encryptedSizeBytes(maxSinglePutSizeBytes) : maxSinglePutSizeBytes,
        inlineMaxSizeBytes,
        filePath: path.join(stagingDir, dataDirName(dataDir), 'part.1'),
        baseDir: this.#drive.paths.tmpDir,
        ...(expectedSizeBytes === undefined ? {} : { expectedSizeBytes }),
      });
      const md5Hex = encryption ? tally.md5Hex : staged.md5Hex;
      const sizeBytes = encryption ? tally.sizeBytes : staged.sizeBytes;
      const checksum = input.finish?.(md5Hex, sizeBytes);
      const etag = encryption ? encryptedObjectEtag(encryption, md5Hex) : md5Hex;
      const modTimeMs = Date.now();
      const inlineData = staged.inlineData;
      const version: ObjectVersion = {
        type: 'object',
        versionId: null,
        modTimeMs,
        sizeBytes,
        etag,
        contentType: input.contentType ?? defaultContentType,
        userMetadata: { ...input.userMetadata },
        systemHeaders: { ...input.systemHeaders },
        ...(checksum === undefined ? {} : { checksum }),
        parts: [{ n: 1, size: sizeBytes, etag, mtime: modTimeMs, ...(checksum === undefined ? {} : { checksum }) }],
        ...(inlineData === undefined ? { dataDir } : { inlineCrc32c: crc32c(inlineData) }),
        inline: inlineData !== undefined,
        erasure: singleDriveErasure,
        ...(encryption?.record === undefined ? {} : { encryption: encryption.record }),
      };
      await this.#locks.withShared(bucketLockKey(bucket), async () => {
        await this.#drive.assertBucketExists(bucket);
        await this.#locks.withExclusive(objectLockKey(bucket, key), async () => {
          garbage.push(
            ...(await commitObject(this.#drive, {
              bucketDir: this.#drive.paths.bucketDir(bucket),
              objectDir: this.#drive.paths.objectDir(bucket, parsed),
              version,
              inlineData: inlineData ?? Buffer.alloc(0),
              stagingDir,
              ...(inlineData === undefined ? {} : { stagedMetaPath: stagedInlineMetaPath }),
            })),
          );
          committedInline = inlineData !== undefined;
        });
      });
      return toObjectInfo(bucket, key, version);
    } finally {
      // A committed inline PUT created nothing in tmp/ that is left (its staged meta was renamed into place):
      // skip the two removal attempts, which cost a small PUT ~10% of its CPU (lstat, errors, rmdir).
      if (!committedInline) garbage.push(stagingDir, stagedInlineMetaPath);
      await removeGarbage(this.#drive, garbage);
    }
  }

  async #missingObject(bucket: string, key: string): Promise<never> {
    await this.#drive.assertBucketExists(bucket);
    throw new StorageError('NoSuchKey', `${bucket}/${key} does not exist`);
  }

  async statObject(bucket: string, key: string): Promise<ObjectInfo> {
    const parsed = parseKey(key);
    if (!isSafeBucketName(bucket)) return this.#missingObject(bucket, key);
    const meta = await readObjectMeta(this.#drive.paths.objectDir(bucket, parsed), false);
    if (meta === undefined) return this.#missingObject(bucket, key);
    return toObjectInfo(bucket, key, meta.versions[0]!);
  }

  async openObject(bucket: string, key: string): Promise<ObjectReader> {
    const parsed = parseKey(key);
    if (!isSafeBucketName(bucket)) return this.#missingObject(bucket, key);
    const objectDir = this.#drive.paths.objectDir(bucket, parsed);
    // Shared key lock while reading the metadata and opening the first part: a commit (exclusive) cannot
    // retire the data dir in between. Afterwards the open descriptor keeps the data readable.
    const reader = await this.#locks.withShared(objectLockKey(bucket, key), async () => {
      const meta = await readObjectMeta(objectDir, true);
      if (meta === undefined) return undefined;
      const version = meta.versions[0]!;
      return openDriveObject(toObjectInfo(bucket, key, version), version, objectDir, meta.inlineData, this.#cipherPool);
    });
    return reader ?? this.#missingObject(bucket, key);
  }

  async deleteObject(bucket: string, key: string): Promise<void> {
    const parsed = parseKey(key);
    const garbage: string[] = [];
    try {
      await this.#locks.withShared(bucketLockKey(bucket), async () => {
        await this.#drive.assertBucketExists(bucket);
        await this.#locks.withExclusive(objectLockKey(bucket, key), async () => {
          const bucketDir = this.#drive.paths.bucketDir(bucket);
          garbage.push(...(await deleteObjectFiles(this.#drive, bucketDir, this.#drive.paths.objectDir(bucket, parsed))));
        });
      });
    } finally {
      await removeGarbage(this.#drive, garbage);
    }
  }

  async listObjects(bucket: string, input: ListObjectsInput): Promise<ListObjectsPage> {
    await this.#drive.assertBucketExists(bucket);
    return listObjectsPage(input, this.#listSource(bucket));
  }

  // ---------------------------------------------------------------------------------------- multipart

  createMultipartUpload(bucket: string, key: string, input: CreateMultipartInput): Promise<MultipartUploadInfo> {
    return this.#multipart.create(bucket, key, input);
  }

  putPart(bucket: string, key: string, uploadId: string, partNumber: number, input: PutInput): Promise<PartInfo> {
    return this.#multipart.putPart(bucket, key, uploadId, partNumber, input);
  }

  listParts(bucket: string, key: string, uploadId: string, partNumberMarker: number, maxParts: number): Promise<ListPartsPage> {
    return this.#multipart.listParts(bucket, key, uploadId, partNumberMarker, maxParts);
  }

  completeMultipartUpload(
    bucket: string,
    key: string,
    uploadId: string,
    parts: readonly CompletePart[],
    finish?: (parts: readonly PartInfo[]) => ObjectChecksum | undefined,
  ): Promise<ObjectInfo> {
    return this.#multipart.complete(bucket, key, uploadId, parts, finish);
  }

  abortMultipartUpload(bucket: string, key: string, uploadId: string): Promise<void> {
    return this.#multipart.abort(bucket, key, uploadId);
  }

  listMultipartUploads(bucket: string, input: ListUploadsInput): Promise<ListUploadsPage> {
    return this.#multipart.listUploads(bucket, input);
  }

  async close(): Promise<void> {
    await this.#drive.close();
    if (this.#ownsCipherPool) await this.#cipherPool.close();
  }
}
