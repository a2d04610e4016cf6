// Multipart uploads on an erasure set: the single-drive layout (engine/multipart.ts) on every drive.
// upload.meta and part.N.meta are the same on each drive; each part's data file holds that drive's framed
// shard stream, coded with the final object's layout (it depends only on bucket/key), so completion is,
// per drive, hard links plus a commit — exactly as on one drive — and needs the write quorum.

import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fsyncDir, isErrnoCode, mkdirsDurable, removeEmptyDirsUpTo, writeFileDurable } from '../drive.ts';
import { encryptedObjectEtag } from '../encrypted-body.ts';
import { agreeOnRecord, QuorumError } from '../erasure/quorum.ts';
import { bucketLockKey, uploadLockKey } from '../locks.ts';
import { encodePartMeta, encodeUploadMeta } from '../meta.ts';
import type { PartMeta, UploadMeta } from '../meta.ts';
import {
  checkCompletion, completedVersion, maxPartNumber, maxPartSizeBytes, maxPartsPerList, minPartNumber, newUploadMeta, noSuchUpload, pageParts,
  pageUploads, partMetaFileName, partMetaNamePattern, readPartMetaIn, readUploadOnDrive, scanUploadsOnDrive, storedPartOf,
  toUploadInfo, uploadIdPattern, uploadMetaFileName,
} from '../multipart.ts';
import { maxCommitAttempts, removeGarbage, toObjectInfo, toPartInfo } from '../objects.ts';
import { dataDirName, parseKey } from '../paths.ts';
import { StorageError } from '../types.ts';
import type {
  CompletePart, CreateMultipartInput, ListPartsPage, ListUploadsInput, ListUploadsPage, MultipartUploadInfo, ObjectChecksum, ObjectInfo,
  PartInfo, PutInput,
} from '../types.ts';
import type { ErasureSetEngine } from './set-engine.ts';
import { countSuccesses, FileShardSink, isNotFound, onEachDrive, quorumLost } from './set-io.ts';

export class SetMultipart {
  readonly #engine: ErasureSetEngine;

  constructor(engine: ErasureSetEngine) {
    this.#engine = engine;
  }

  #requireWriteQuorum(results: readonly unknown[], what: string): void {
    const successes = countSuccesses(results);
    if (successes < this.#engine.writeQuorum) {
      throw quorumLost(new QuorumError('write', this.#engine.writeQuorum, successes, this.#engine.set.size), what);
    }
  }

  async create(bucket: string, key: string, input: CreateMultipartInput): Promise<MultipartUploadInfo> {
    parseKey(key);
    const engine = this.#engine;
    await engine.assertBucketExists(bucket);
    const upload = newUploadMeta(bucket, key, input);
    const uploadId = upload.uploadId;
    const encoded = encodeUploadMeta(upload);
    await engine.locks.withShared(bucketLockKey(bucket), async () => {
      await engine.assertBucketExists(bucket);
      const results = await onEachDrive(engine.set, async (drive) => {
        const stagingDir = await drive.makeStagingDir();
        try {
          const stagedUploadDir = path.join(stagingDir, uploadId);
          await fs.mkdir(stagedUploadDir);
          await writeFileDurable(path.join(stagedUploadDir, uploadMetaFileName), encoded);
          await fsyncDir(stagedUploadDir);
          const uploadDir = drive.paths.uploadDir(bucket, key, uploadId);
          for (let attempt = 1; ; attempt++) {
            try {
              await mkdirsDurable(path.dirname(uploadDir), drive.paths.multipartDir);
              await fs.rename(stagedUploadDir, uploadDir);
              break;
            } catch (error) {
              if (!isErrnoCode(error, 'ENOENT') || attempt >= maxCommitAttempts) throw error;
            }
          }
          await fsyncDir(path.dirname(uploadDir));
        } finally {
          await removeGarbage(drive, [stagingDir]);
        }
      });
      this.#requireWriteQuorum(results, `create upload for ${bucket}/${key}`);
    });
    return toUploadInfo(upload);
  }

  /** The upload as a read quorum of drives has it; NoSuchUpload by quorum, else SlowDown. */
  async #readUpload(bucket: string, key: string, uploadId: string): Promise<UploadMeta> {
    if (!uploadIdPattern.test(uploadId)) throw noSuchUpload(uploadId);
    const answers = await onEachDrive(this.#engine.set, async (drive) => (await readUploadOnDrive(drive, bucket, key, uploadId)).upload);
    const agreed = agreeOnRecord(answers, this.#engine.dataShards, (upload) => JSON.stringify(upload), (upload) => upload.initiatedMs);
    if (agreed instanceof QuorumError) {
      if (agreed.errorInQuorum !== undefined && isNotFound(agreed.errorInQuorum)) throw noSuchUpload(uploadId);
      throw quorumLost(agreed, `upload ${uploadId}`);
    }
    return agreed.version;
  }

  /** A part's metadata by quorum; undefined when a quorum of drives does not have it. */
  async #readPart(bucket: string, key: string, uploadId: string, partNumber: number): Promise<PartMeta | undefined> {
    const answers = await onEachDrive(this.#engine.set, async (drive) => {
      const part = await readPartMetaIn(drive.paths.uploadDir(bucket, key, uploadId), partNumber);
      if (part === undefined) throw new StorageError('NoSuchKey');
      return part;
    });
    const agreed = agreeOnRecord(answers, this.#engine.dataShards, (part) => JSON.stringify(part), (part) => part.mtime);
    if (agreed instanceof QuorumError) {
      if (agreed.errorInQuorum !== undefined && isNotFound(agreed.errorInQuorum)) return undefined;
      throw quorumLost(agreed, `upload ${uploadId} part ${partNumber}`);
    }
    return agreed.version;
  }

  async putPart(bucket: string, key: string, uploadId: string, partNumber: number, input: PutInput): Promise<PartInfo> {
    parseKey(key);
    if (!Number.isSafeInteger(partNumber) || partNumber < minPartNumber || partNumber > maxPartNumber) {
      throw new StorageError('InvalidArgument', `part number must be an integer from ${minPartNumber} to ${maxPartNumber}`);
    }
    const engine = this.#engine;
    await engine.assertBucketExists(bucket);
    const upload = await this.#readUpload(bucket, key, uploadId);
    const encryption = input.encryption;
    if ((upload.encryption === undefined) !== (encryption === undefined)) {
      throw new StorageError('InvalidArgument', `upload ${uploadId}: part encryption does not match the upload`);
    }
    const erasure = engine.newErasure(bucket, key);
    const stageId = randomUUID();
    const dataFileName = `part.${partNumber}.${randomUUID()}`;
    const sinks: (FileShardSink | undefined)[] = new Array(engine.set.size).fill(undefined);
    try {
      const { failedShards, md5Hex, sizeBytes } = await engine.writeBody(input, {
        erasure,
        stageId,
        relativePath: dataFileName,
        sinks,
        inlineMaxSizeBytes: -1, // parts always have files: completion links them
        maxPlainSizeBytes: maxPartSizeBytes,
        what: `upload ${uploadId} part ${partNumber}`,
      });
      // A 0-byte part opens no sink; it still needs its (empty) file on every drive.
      if (sizeBytes === 0 && sinks.every((sink) => sink === undefined)) {
        await engine.openShardSinks(erasure, stageId, dataFileName, sinks);
      }
      const failed = await engine.finishSinks(sinks, failedShards, erasure);
      const checksum = input.finish?.(md5Hex, sizeBytes);
      const partMeta: PartMeta = {
        n: partNumber,
        size: sizeBytes,
        etag: encryption ? encryptedObjectEtag(encryption, md5Hex) : md5Hex,
        mtime: Date.now(),
        ...(checksum === undefined ? {} : { checksum }),
        file: dataFileName,
      };
      const encodedPartMeta = encodePartMeta(partMeta);
      await engine.locks.withShared(bucketLockKey(bucket), () =>
        engine.locks.withExclusive(uploadLockKey(uploadId), async () => {
          await this.#readUpload(bucket, key, uploadId); // completed/aborted meanwhile?
          const results = await onEachDrive(engine.set, async (drive, driveIndex) => {
            if (failed.has(driveIndex)) throw new StorageError('InternalError', 'shard not written');
            const stagingDir = path.join(drive.paths.tmpDir, stageId);
            const uploadDir = drive.paths.uploadDir(bucket, key, uploadId);
            const stagedMetaPath = path.join(stagingDir, partMetaFileName(partNumber));
            await writeFileDurable(stagedMetaPath, encodedPartMeta);
            await fsyncDir(stagingDir);
            const previous = await readPartMetaIn(uploadDir, partNumber).catch(() => undefined);
            await fs.rename(path.join(stagingDir, dataFileName), path.join(uploadDir, dataFileName));
            await fsyncDir(uploadDir);
            await fs.rename(stagedMetaPath, path.join(uploadDir, partMetaFileName(partNumber))); // commit point
            await fsyncDir(uploadDir);
            if (previous !== undefined && previous.file !== dataFileName) await fs.rm(path.join(uploadDir, previous.file), { force: true });
          });
          this.#requireWriteQuorum(results, `upload ${uploadId} part ${partNumber}`);
        }),
      );
      return toPartInfo(storedPartOf(partMeta));
    } finally {
      await engine.removeStaging(stageId);
    }
  }

  async listParts(bucket: string, key: string, uploadId: string, partNumberMarker: number, maxParts: number): Promise<ListPartsPage> {
    parseKey(key);
    const engine = this.#engine;
    await engine.assertBucketExists(bucket);
    const upload = await this.#readUpload(bucket, key, uploadId);
    const limit = Math.min(Math.max(0, Math.floor(maxParts)), maxPartsPerList);
    const numbers = new Set<number>();
    const listings = await onEachDrive(engine.set, (drive) => fs.readdir(drive.paths.uploadDir(bucket, key, uploadId)));
    for (const names of listings) {
      if (names instanceof Error) continue;
      for (const name of names) {
        const match = partMetaNamePattern.exec(name);
        if (match === null) continue;
        const partNumber = Number(match[1]);
        if (partNumber > partNumberMarker && partNumber <= maxPartNumber) numbers.add(partNumber);
      }
    }
    return pageParts(upload, [...numbers], limit, (partNumber) => this.#readPart(bucket, key, uploadId, partNumber));
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
    const engine = this.#engine;
    await engine.assertBucketExists(bucket);
    return engine.locks.withExclusive(uploadLockKey(uploadId), async () => {
      const upload = await this.#readUpload(bucket, key, uploadId);
      const { partMetas, sizeBytes, etag } = await checkCompletion(requestedParts, (partNumber) => this.#readPart(bucket, key, uploadId, partNumber));
      const storedParts = partMetas.map(storedPartOf);
      const checksum = finish?.(storedParts.map(toPartInfo));
      const stageId = randomUUID();
      const dataDir = randomUUID();
      try {
        // Per drive: hard links (not renames) of its part files into a staged data dir, so a failed
        // commit leaves the upload intact. A drive missing a part file sits this commit out (healed later).
        const linked = await onEachDrive(engine.set, async (drive) => {
          const stagedDataDir = path.join(drive.paths.tmpDir, stageId, dataDirName(dataDir));
          await mkdirsDurable(stagedDataDir, drive.paths.tmpDir, false);
          const uploadDir = drive.paths.uploadDir(bucket, key, uploadId);
          for (const part of partMetas) await fs.link(path.join(uploadDir, part.file), path.join(stagedDataDir, `part.${part.n}`));
        });
        const skip = new Set<number>();
        linked.forEach((result, index) => {
          if (result instanceof Error) skip.add(index);
        });
        const version = completedVersion(upload, { sizeBytes, etag, checksum, parts: storedParts, dataDir, erasure: engine.newErasure(bucket, key) });
        await engine.commitVersion(bucket, parsed, version, stageId, skip, undefined);
        // The object is committed; the upload (with any parts not listed) is garbage now.
        await onEachDrive(engine.set, (drive) => this.#discardUpload(drive, bucket, key, uploadId));
        return toObjectInfo(bucket, key, version);
      } finally {
        await engine.removeStaging(stageId);
      }
    });
  }

  async #discardUpload(drive: import('../drive.ts').Drive, bucket: string, key: string, uploadId: string): Promise<void> {
    const uploadDir = drive.paths.uploadDir(bucket, key, uploadId);
    const trashPath = await drive.moveToTrash(uploadDir);
    await removeEmptyDirsUpTo(path.dirname(uploadDir), drive.paths.multipartDir);
    if (trashPath !== undefined) await removeGarbage(drive, [trashPath]);
  }

  async abort(bucket: string, key: string, uploadId: string): Promise<void> {
    parseKey(key);
    if (!uploadIdPattern.test(uploadId)) throw noSuchUpload(uploadId);
    const engine = this.#engine;
    await engine.locks.withShared(bucketLockKey(bucket), async () => {
      await engine.assertBucketExists(bucket);
      await engine.locks.withExclusive(uploadLockKey(uploadId), async () => {
        await this.#readUpload(bucket, key, uploadId);
        const results = await onEachDrive(engine.set, (drive) => this.#discardUpload(drive, bucket, key, uploadId));
        this.#requireWriteQuorum(results, `abort upload ${uploadId}`);
      });
    });
  }

  /** Uploads that a quorum of drives hold (union of the drives' scans). */
  async scan(bucket: string, prefix: string, stopAtFirst: boolean): Promise<UploadMeta[]> {
    const scans = await onEachDrive(this.#engine.set, (drive) => scanUploadsOnDrive(drive, bucket, prefix, stopAtFirst));
    const byId = new Map<string, { upload: UploadMeta; count: number }>();
    for (const scan of scans) {
      if (scan instanceof Error) continue;
      for (const upload of scan) {
        const entry = byId.get(upload.uploadId);
        if (entry === undefined) byId.set(upload.uploadId, { upload, count: 1 });
        else entry.count += 1;
      }
    }
    const quorum = stopAtFirst ? 1 : this.#engine.dataShards;
    return [...byId.values()].filter((entry) => entry.count >= quorum).map((entry) => entry.upload);
  }

  async hasUploads(bucket: string): Promise<boolean> {
    return (await this.scan(bucket, '', true)).length > 0;
  }

  async listUploads(bucket: string, input: ListUploadsInput): Promise<ListUploadsPage> {
    await this.#engine.assertBucketExists(bucket);
    return pageUploads(await this.scan(bucket, input.prefix, false), input);
  }
}



