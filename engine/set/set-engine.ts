// The multi-drive engine: one erasure set of 2–16 drives (docs/jbod.md). Every drive keeps the single-drive
// layout (docs/format.md); an object's coffer.meta is on every drive, its data is Reed-Solomon coded into
// k data + m parity shards, one per drive, each framed with bitrot digests. Writes commit on each drive
// with the same tmp+fsync+rename as one drive and need a write quorum; reads need k drives that agree on
// the metadata. Healing (heal.ts) rebuilds what a drive missed or lost.

import { crc32c } from '@node-rs/crc32';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { Drive } from '../drive.ts';
import { encryptBody, encryptedObjectEtag, expectedCiphertextBytes, type PlaintextTally } from '../encrypted-body.ts';
import { defaultBitrotAlgorithm } from '../erasure/bitrot.ts';
import type { BitrotAlgorithm } from '../erasure/bitrot.ts';
import { distributionKey, shardDistribution } from '../erasure/distribution.ts';
import { agreeOnRecord, agreeOnVersion, QuorumError, quorumFromVersions, writeQuorum } from '../erasure/quorum.ts';
import type { VersionAgreement } from '../erasure/quorum.ts';
import { bucketHasObject, listObjectsPage, walkObjectCandidates } from '../list.ts';
import type { ListObjectsSource, ObjectCandidate, WalkCursor } from '../list.ts';
import { bucketLockKey, KeyedLock, objectLockKey } from '../locks.ts';
import type { ErasureInfo, ObjectMetaFile, ObjectVersion } from '../meta.ts';
import { commitObject, deleteObjectFiles, objectExists, readObjectMeta, removeGarbage, toObjectInfo } from '../objects.ts';
import { compareUtf8, dataDirName, isSafeBucketName, parseKey } from '../paths.ts';
import type { ParsedKey } from '../paths.ts';
import { StoredObjectReader } from '../reader.ts';
import type { StoredBytes } from '../reader.ts';
import { StorageError } from '../types.ts';
import type {
  BucketEncryption,
  BucketInfo,
  ErasureControl,
  HealProgress,
  HealSummary,
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
} from '../types.ts';
import { createBlockCipherPool, type BlockCipherPool } from '../../workers/pool.ts';
import { encryptedSizeBytes } from '../../workers/dare.ts';
import { DriveSet } from './drive-set.ts';
import { Healer } from './heal.ts';
import {
  BufferShardSource, countSuccesses, DriveOfflineError, drivesByShard, FileShardSink, FileShardSource, isNotFound, onEachDrive, quorumLost,
} from './set-io.ts';
import { SetMultipart } from './set-multipart.ts';
import { readErasureStream, writeErasureStream } from './shard-stream.ts';
import type { ShardSource } from './shard-stream.ts';

/** S3's limit for a single PUT. */
const maxSinglePutSizeBytes = 5 * 1024 * 1024 * 1024;
const defaultContentType = 'application/octet-stream';
/** MinIO's inline rule: a drive's shard payload of at most 128 KiB is kept in coffer.meta. */
const inlineShardMaxBytes = 128 * 1024;
export const setBlockSizeBytes = 1024 * 1024;

export interface SetEngineOptions {
  readonly cipherPool?: BlockCipherPool;
  /** parity shards of new objects (the STANDARD storage class) */
  readonly parityShards: number;
  /** called when a shard or a drive's metadata fails a read (corruption, a missing file) */
  readonly onShardError?: (where: string, error: Error) => void;
  /** background scanner pace: one object per this many ms (0 = no scanner) */
  readonly scannerIntervalMs?: number;
}

/** A version as one drive stores it: its own shard index and inline shard. */
export function versionForDrive(base: ObjectVersion, driveIndex: number, inlineShard: Buffer | undefined): ObjectVersion {
  const erasure: ErasureInfo = { ...base.erasure, index: base.erasure.distribution[driveIndex]! };
  const { inlineCrc32c: _shared, ...rest } = base;
  return inlineShard === undefined ? { ...rest, erasure } : { ...rest, erasure, inlineCrc32c: crc32c(inlineShard) };
}

/** One drive's answer for an object: its metadata file (with inline data when asked for). */
export type DriveMeta = ObjectMetaFile | Error;

export interface ReadVersionResult {
  readonly version: ObjectVersion;
  readonly agreement: VersionAgreement<ObjectVersion>;
  readonly metas: readonly DriveMeta[];
}

export class ErasureSetEngine implements ObjectEngine {
  readonly set: DriveSet;
  readonly dataShards: number;
  readonly parityShards: number;
  readonly blockSizeBytes = setBlockSizeBytes;
  readonly bitrot: BitrotAlgorithm = defaultBitrotAlgorithm;
  readonly locks = new KeyedLock();
  readonly cipherPool: BlockCipherPool;
  readonly #ownsCipherPool: boolean;
  readonly #onShardError: (where: string, error: Error) => void;
  readonly multipart: SetMultipart;
  readonly healer: Healer;

  private constructor(set: DriveSet, options: SetEngineOptions) {
    this.set = set;
    this.parityShards = options.parityShards;
    this.dataShards = set.size - options.parityShards;
    this.cipherPool = options.cipherPool ?? createBlockCipherPool(0);
    this.#ownsCipherPool = options.cipherPool === undefined;
    this.#onShardError = options.onShardError ?? (() => undefined);
    this.multipart = new SetMultipart(this);
    this.healer = new Healer(this, { onObjectHealed: () => this.objectHealed(), scannerIntervalMs: options.scannerIntervalMs ?? 0 });
  }

  /** Open the set on its drives (command-line order), healing fresh or returning drives in the background. */
  static async open(drivePaths: readonly string[], options: SetEngineOptions): Promise<ErasureSetEngine> {
    const [set] = await DriveSet.openAll(drivePaths, drivePaths.length, drivePaths.length - options.parityShards);
    return ErasureSetEngine.start(set!, options);
  }

  /**
   * Serve an opened drive set: start its drive monitor, the heal of fresh drives, the saved heal queue of
   * the previous run, and the scanner.
   */
  static async start(set: DriveSet, options: SetEngineOptions): Promise<ErasureSetEngine> {
    const engine = new ErasureSetEngine(set, options);
    set.startMonitor((index) => engine.healer.healDriveInBackground(index));
    for (let index = 0; index < set.size; index++) if (set.isHealing(index)) engine.healer.healDriveInBackground(index);
    await engine.healer.startQueue();
    engine.healer.startScanner();
    return engine;
  }

  get deploymentId(): string {
    return this.set.deploymentId;
  }

  get writeQuorum(): number {
    return writeQuorum(this.dataShards, this.parityShards);
  }

  #shardErrors = 0;
  #objectsHealed = 0;

  reportShardError(where: string, error: Error): void {
    this.#shardErrors += 1;
    this.#onShardError(where, error);
  }

  objectHealed(): void {
    this.#objectsHealed += 1;
  }

  get erasure(): ErasureControl {
    const engine = this;
    return {
      sets: 1,
      setSize: this.set.size,
      dataShards: this.dataShards,
      parityShards: this.parityShards,
      drives: () => this.set.status(),
      get shardErrors() {
        return engine.#shardErrors;
      },
      get objectsHealed() {
        return engine.#objectsHealed;
      },
      heal: (bucket: string, prefix: string, onProgress?: (progress: HealProgress) => void): Promise<HealSummary> =>
        this.healer.healNamespace(bucket, prefix, onProgress),
    };
  }

  // ------------------------------------------------------------------------------------------ buckets

  /** Whether the bucket exists by quorum: k drives saying yes, or k saying no; else SlowDown. */
  async bucketExists(bucket: string): Promise<boolean> {
    if (!isSafeBucketName(bucket)) return false;
    const answers = await onEachDrive(this.set, async (drive) => {
      if (await drive.bucketExists(bucket)) return true;
      throw new StorageError('NoSuchBucket');
    });
    // A "no" from a drive that has just vanished is not a no: onEachDrive re-checked those.
    const yes = countSuccesses(answers);
    const no = answers.filter((answer) => answer instanceof Error && isNotFound(answer)).length;
    if (yes >= this.dataShards) return true;
    if (no >= this.dataShards) return false;
    throw new StorageError('SlowDown', `bucket ${bucket}: insufficient read quorum (${yes} of ${this.set.size} drives have it, ${no} do not, ${this.dataShards} needed)`);
  }

  async assertBucketExists(bucket: string): Promise<void> {
    if (!(await this.bucketExists(bucket))) throw new StorageError('NoSuchBucket', `bucket ${bucket} does not exist`);
  }

  async makeBucket(bucket: string): Promise<void> {
    if (!isSafeBucketName(bucket)) throw new StorageError('InvalidArgument', `invalid bucket name ${JSON.stringify(bucket)}`);
    await this.locks.withExclusive(bucketLockKey(bucket), async () => {
      if (await this.bucketExists(bucket)) throw new StorageError('BucketAlreadyOwnedByYou', `bucket ${bucket} exists`);
      const createdMs = Date.now();
      const results = await onEachDrive(this.set, async (drive) => {
        try {
          await drive.createBucket(bucket, createdMs);
        } catch (error) {
          // a leftover of an earlier partial create on this drive: fine
          if (!(error instanceof StorageError && error.kind === 'BucketAlreadyOwnedByYou')) throw error;
        }
      });
      this.#requireWriteQuorum(results, `create bucket ${bucket}`);
    });
  }

  async deleteBucket(bucket: string): Promise<void> {
    await this.locks.withExclusive(bucketLockKey(bucket), async () => {
      await this.assertBucketExists(bucket);
      if (await bucketHasObject(this.#listSource(bucket))) throw new StorageError('BucketNotEmpty', `bucket ${bucket} holds objects`);
      if (await this.multipart.hasUploads(bucket)) throw new StorageError('BucketNotEmpty', `bucket ${bucket} has multipart uploads in progress`);
      const results = await onEachDrive(this.set, async (drive) => {
        const garbage = await drive.deleteBucketDirs(bucket);
        await removeGarbage(drive, garbage);
      });
      this.#requireWriteQuorum(results, `delete bucket ${bucket}`);
    });
  }

  async headBucket(bucket: string): Promise<BucketInfo> {
    await this.assertBucketExists(bucket);
    const infos = await onEachDrive(this.set, (drive) => drive.bucketInfo(bucket));
    const info = infos.find((entry): entry is BucketInfo => !(entry instanceof Error));
    if (info === undefined) throw new StorageError('SlowDown', `bucket ${bucket}: no drive answered`);
    return info;
  }

  async listBuckets(): Promise<BucketInfo[]> {
    const names = await onEachDrive(this.set, (drive) => drive.bucketNames());
    const counts = new Map<string, number>();
    for (const list of names) if (!(list instanceof Error)) for (const name of list) counts.set(name, (counts.get(name) ?? 0) + 1);
    const online = countSuccesses(names);
    if (online < this.dataShards) throw new StorageError('SlowDown', `list buckets: only ${online} drives answered, ${this.dataShards} needed`);
    const buckets: BucketInfo[] = [];
    for (const [name, count] of counts) {
      if (count < this.dataShards) continue; // a half-created or half-deleted bucket
      try {
        buckets.push(await this.headBucket(name));
      } catch (error) {
        if (!(error instanceof StorageError && error.kind === 'NoSuchBucket')) throw error;
      }
    }
    return buckets.sort((left, right) => compareUtf8(left.name, right.name));
  }

  async getBucketEncryption(bucket: string): Promise<BucketEncryption | undefined> {
    if (!isSafeBucketName(bucket)) throw new StorageError('NoSuchBucket', `bucket ${bucket} does not exist`);
    const answers = await onEachDrive(this.set, async (drive) => ({ config: await drive.bucketEncryption(bucket) }));
    const agreed = agreeOnRecord(answers, Math.min(this.dataShards, this.set.size), (entry) => JSON.stringify(entry.config ?? null), () => 0);
    if (agreed instanceof QuorumError) {
      if (agreed.errorInQuorum instanceof StorageError && agreed.errorInQuorum.kind === 'NoSuchBucket') throw agreed.errorInQuorum;
      throw quorumLost(agreed, `bucket ${bucket} encryption`);
    }
    return agreed.version.config;
  }

  async setBucketEncryption(bucket: string, config: BucketEncryption | undefined): Promise<void> {
    if (!isSafeBucketName(bucket)) throw new StorageError('NoSuchBucket', `bucket ${bucket} does not exist`);
    await this.locks.withExclusive(bucketLockKey(bucket), async () => {
      await this.assertBucketExists(bucket);
      const results = await onEachDrive(this.set, (drive) => drive.setBucketEncryption(bucket, config));
      this.#requireWriteQuorum(results, `bucket ${bucket} encryption`);
    });
  }

  #requireWriteQuorum(results: readonly unknown[], what: string): void {
    const successes = countSuccesses(results);
    if (successes < this.writeQuorum) {
      throw quorumLost(new QuorumError('write', this.writeQuorum, successes, this.set.size), what);
    }
  }

  // ------------------------------------------------------------------------------------------ objects

  /** The erasure layout of a new object at bucket/key. */
  newErasure(bucket: string, key: string): ErasureInfo {
    return {
      algorithm: 'rs',
      dataShards: this.dataShards,
      parityShards: this.parityShards,
      blockSizeBytes: this.blockSizeBytes,
      index: 1,
      distribution: shardDistribution(distributionKey(bucket, key), this.set.size),
      bitrot: this.bitrot,
    };
  }

  /**
   * Open one shard file per drive under each drive's tmp/<stageId>/ at `relativePath`; entry undefined for
   * an offline drive or one that refuses the file. `sinks` (by drive) receives them for cleanup.
   */
  openShardSinks(erasure: ErasureInfo, stageId: string, relativePath: string, sinks: (FileShardSink | undefined)[], onlyDrives?: ReadonlySet<number>) {
    const byShard = drivesByShard(erasure.distribution);
    return Promise.all(
      byShard.map(async (driveIndex) => {
        if (onlyDrives !== undefined && !onlyDrives.has(driveIndex)) return undefined;
        const drive = this.set.drive(driveIndex);
        if (drive === undefined) return undefined;
        try {
          const sink = await FileShardSink.create(drive.paths.tmpDir, path.join(drive.paths.tmpDir, stageId, relativePath));
          sinks[driveIndex] = sink;
          return sink;
        } catch {
          void this.set.confirmOnline(driveIndex);
          return undefined;
        }
      }),
    );
  }

  /**
   * Encrypt (when asked) and erasure-code a PUT or part body into tmp/<stageId>/<relativePath> on every
   * drive (or inline shards). md5Hex and sizeBytes are the plaintext's; a lost write quorum is SlowDown.
   */
  async writeBody(
    input: PutInput,
    target: {
      readonly erasure: ErasureInfo;
      readonly stageId: string;
      readonly relativePath: string;
      readonly sinks: (FileShardSink | undefined)[];
      readonly inlineMaxSizeBytes: number;
      readonly maxPlainSizeBytes: number;
      readonly what: string;
    },
  ): Promise<{ inlineShards?: readonly Buffer[]; failedShards: readonly number[]; md5Hex: string; sizeBytes: number }> {
    const encryption = input.encryption;
    const tally: PlaintextTally = { md5Hex: '', sizeBytes: 0 };
    const expectedSizeBytes = encryption ? expectedCiphertextBytes(input.expectedSizeBytes) : input.expectedSizeBytes;
    try {
      const written = await writeErasureStream({
        body: encryption ? encryptBody(input.body, encryption, tally, this.cipherPool, input.expectedSizeBytes) : input.body,
        dataShards: this.dataShards,
        parityShards: this.parityShards,
        blockSizeBytes: this.blockSizeBytes,
        algorithm: this.bitrot,
        writeQuorum: this.writeQuorum,
        inlineMaxSizeBytes: target.inlineMaxSizeBytes,
        openSinks: () => this.openShardSinks(target.erasure, target.stageId, target.relativePath, target.sinks),
        maxSizeBytes: encryption ? encryptedSizeBytes(target.maxPlainSizeBytes) : target.maxPlainSizeBytes,
        computeMd5: encryption === undefined,
        digestPool: this.cipherPool,
        ...(expectedSizeBytes === undefined ? {} : { expectedSizeBytes }),
      });
      return {
        ...(written.inlineShards === undefined ? {} : { inlineShards: written.inlineShards }),
        failedShards: written.failedShards,
        md5Hex: encryption ? tally.md5Hex : written.md5Hex,
        sizeBytes: encryption ? tally.sizeBytes : written.sizeBytes,
      };
    } catch (error) {
      await Promise.all(target.sinks.map((sink) => sink?.abort()));
      if (error instanceof QuorumError) throw quorumLost(error, target.what);
      throw error;
    }
  }

  /** fdatasync and close the sinks; returns the drives whose shard is not safely on disk. */
  async finishSinks(sinks: readonly (FileShardSink | undefined)[], failedShards: readonly number[], erasure: ErasureInfo): Promise<Set<number>> {
    const byShard = drivesByShard(erasure.distribution);
    const failed = new Set(failedShards.map((shard) => byShard[shard]!));
    await Promise.all(
      sinks.map(async (sink, driveIndex) => {
        if (sink === undefined) {
          failed.add(driveIndex);
          return;
        }
        if (failed.has(driveIndex)) return sink.abort();
        try {
          await sink.finish();
        } catch {
          failed.add(driveIndex);
        }
      }),
    );
    return failed;
  }

  async removeStaging(stageId: string, committedInline = false): Promise<void> {
    if (committedInline) return; // every drive's staged meta was renamed into place; nothing is left in tmp/
    await Promise.all(
      Array.from({ length: this.set.size }, async (_, index) => {
        const drive = this.set.drive(index);
        if (drive === undefined) return;
        await removeGarbage(drive, [path.join(drive.paths.tmpDir, stageId), path.join(drive.paths.tmpDir, `${stageId}.meta`)]);
      }),
    );
  }

  async putObject(bucket: string, key: string, input: PutInput): Promise<ObjectInfo> {
    const parsed = parseKey(key);
    await this.assertBucketExists(bucket); // before consuming the body
    const erasure = this.newErasure(bucket, key);
    const stageId = randomUUID();
    const dataDir = randomUUID();
    const sinks: (FileShardSink | undefined)[] = new Array(this.set.size).fill(undefined);
    let committedInline = false;
    try {
      const encryption = input.encryption;
      const { inlineShards, failedShards, md5Hex, sizeBytes } = await this.writeBody(input, {
        erasure,
        stageId,
        relativePath: path.join(dataDirName(dataDir), 'part.1'),
        sinks,
        inlineMaxSizeBytes: Math.min(this.dataShards * inlineShardMaxBytes, this.blockSizeBytes),
        maxPlainSizeBytes: maxSinglePutSizeBytes,
        what: `PUT ${bucket}/${key}`,
      });
      const failed = inlineShards === undefined ? await this.finishSinks(sinks, failedShards, erasure) : new Set<number>();
      const checksum = input.finish?.(md5Hex, sizeBytes);
      const etag = encryption ? encryptedObjectEtag(encryption, md5Hex) : md5Hex;
      const modTimeMs = Date.now();
      const base: ObjectVersion = {
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
        ...(inlineShards === undefined ? { dataDir } : {}),
        inline: inlineShards !== undefined,
        erasure,
        ...(encryption?.record === undefined ? {} : { encryption: encryption.record }),
      };
      const committed = await this.commitVersion(bucket, parsed, base, stageId, failed, inlineShards);
      committedInline = inlineShards !== undefined && committed === this.set.size;
      return toObjectInfo(bucket, key, base);
    } finally {
      await this.removeStaging(stageId, committedInline);
    }
  }

  /**
   * Commit `base` on every drive not in `skip` (its staged data dir, if any, is in tmp/<stageId>/); needs
   * the write quorum, else the drives that did commit are rolled back and the PUT fails with SlowDown.
   * Returns the number of drives that committed.
   */
  async commitVersion(
    bucket: string,
    parsed: ParsedKey,
    base: ObjectVersion,
    stageId: string,
    skip: ReadonlySet<number>,
    inlineShards: readonly Buffer[] | undefined,
  ): Promise<number> {
    const byShard = drivesByShard(base.erasure.distribution);
    const shardOfDrive = new Array<number>(this.set.size);
    byShard.forEach((driveIndex, shard) => {
      shardOfDrive[driveIndex] = shard;
    });
    return this.locks.withShared(bucketLockKey(bucket), async () => {
      await this.assertBucketExists(bucket);
      return this.locks.withExclusive(objectLockKey(bucket, parsed.key), async () => {
        const results = await onEachDrive(this.set, async (drive, driveIndex) => {
          if (skip.has(driveIndex)) throw new DriveOfflineError(driveIndex);
          const inlineShard = inlineShards?.[shardOfDrive[driveIndex]!];
          const stagingDir = path.join(drive.paths.tmpDir, stageId);
          const garbage = await commitObject(drive, {
            bucketDir: drive.paths.bucketDir(bucket),
            objectDir: drive.paths.objectDir(bucket, parsed),
            version: versionForDrive(base, driveIndex, inlineShard),
            inlineData: inlineShard ?? Buffer.alloc(0),
            stagingDir,
            ...(inlineShards === undefined ? {} : { stagedMetaPath: `${stagingDir}.meta` }),
          });
          await removeGarbage(drive, garbage);
        });
        const successes = countSuccesses(results);
        if (successes < this.writeQuorum) {
          // Undo where it landed: a version on too few drives must not become readable later.
          await onEachDrive(this.set, async (drive, driveIndex) => {
            if (results[driveIndex] instanceof Error) return;
            await removeGarbage(drive, await deleteObjectFiles(drive, drive.paths.bucketDir(bucket), drive.paths.objectDir(bucket, parsed)));
          });
          throw quorumLost(new QuorumError('write', this.writeQuorum, successes, this.set.size), `PUT ${bucket}/${parsed.key}`);
        }
        if (successes < this.set.size) this.healer.enqueue(bucket, parsed.key);
        return successes;
      });
    });
  }

  /**
   * Every drive's metadata for bucket/key and the version a read quorum agrees on. NoSuchKey when a quorum
   * of drives lacks it, SlowDown when neither side reaches a quorum.
   */
  async readVersion(bucket: string, parsed: ParsedKey, withInline: boolean): Promise<ReadVersionResult> {
    const metas = await this.readDriveMetas(bucket, parsed, withInline);
    const agreement = this.agree(metas);
    if (agreement instanceof QuorumError) {
      if (agreement.errorInQuorum !== undefined && isNotFound(agreement.errorInQuorum)) {
        await this.assertBucketExists(bucket);
        throw new StorageError('NoSuchKey', `${bucket}/${parsed.key} does not exist`);
      }
      throw quorumLost(agreement, `${bucket}/${parsed.key}`);
    }
    const damaged = [...agreement.outdatedDrives, ...agreement.failedDrives.filter((index) => {
      const error = metas[index] as Error;
      return !(error instanceof DriveOfflineError);
    })];
    for (const index of agreement.failedDrives) {
      const error = metas[index] as Error;
      if (!(error instanceof DriveOfflineError) && !isNotFound(error)) this.reportShardError(`${bucket}/${parsed.key} on drive ${index + 1}`, error);
    }
    if (damaged.length > 0) this.healer.enqueue(bucket, parsed.key);
    return { version: agreement.version, agreement, metas };
  }

  async readDriveMetas(bucket: string, parsed: ParsedKey, withInline: boolean): Promise<DriveMeta[]> {
    return onEachDrive(this.set, async (drive) => {
      const meta = await readObjectMeta(drive.paths.objectDir(bucket, parsed), withInline);
      if (meta === undefined) throw new StorageError('NoSuchKey');
      return meta;
    });
  }

  /** The agreed version of per-drive metadata (quorum from the versions' own parity). */
  agree(metas: readonly DriveMeta[]): VersionAgreement<ObjectVersion> | QuorumError {
    const candidates = metas.map((meta) => (meta instanceof Error ? meta : meta.versions[0]!));
    const quorum = quorumFromVersions(candidates, this.parityShards);
    if (quorum instanceof QuorumError) return quorum;
    return agreeOnVersion(candidates, quorum.readQuorum);
  }

  async statObject(bucket: string, key: string): Promise<ObjectInfo> {
    const parsed = parseKey(key);
    if (!isSafeBucketName(bucket)) throw new StorageError('NoSuchBucket', `bucket ${bucket} does not exist`);
    const { version } = await this.readVersion(bucket, parsed, false);
    return toObjectInfo(bucket, key, version);
  }

  async openObject(bucket: string, key: string): Promise<ObjectReader> {
    const parsed = parseKey(key);
    if (!isSafeBucketName(bucket)) throw new StorageError('NoSuchBucket', `bucket ${bucket} does not exist`);
    // Shared key lock while the metadata is read and the first part's shard files are opened: a commit
    // cannot retire the data dir in between; afterwards open descriptors keep the data readable.
    return this.locks.withShared(objectLockKey(bucket, key), async () => {
      const { version, agreement, metas } = await this.readVersion(bucket, parsed, true);
      const bytes = new ErasureStoredBytes(this, bucket, parsed, version, agreement.agreeingDrives, metas);
      if (!version.inline && version.parts.length > 0) await bytes.openFirstPart();
      return new StoredObjectReader(toObjectInfo(bucket, key, version), version, bytes, this.cipherPool);
    });
  }

  async deleteObject(bucket: string, key: string): Promise<void> {
    const parsed = parseKey(key);
    await this.locks.withShared(bucketLockKey(bucket), async () => {
      await this.assertBucketExists(bucket);
      await this.locks.withExclusive(objectLockKey(bucket, key), async () => {
        const results = await onEachDrive(this.set, async (drive) => {
          const garbage = await deleteObjectFiles(drive, drive.paths.bucketDir(bucket), drive.paths.objectDir(bucket, parsed));
          await removeGarbage(drive, garbage);
        });
        this.#requireWriteQuorum(results, `DELETE ${bucket}/${key}`);
        if (countSuccesses(results) < this.set.size) this.healer.enqueue(bucket, key);
      });
    });
  }

  // ------------------------------------------------------------------------------------------ listing

  /** Object candidates of every online drive, merged in key order (each key once, with its drives). */
  walkMerged(bucket: string, prefix: string, cursor: WalkCursor): AsyncGenerator<MergedCandidate> {
    const streams: AsyncIterable<MergedCandidate>[] = [];
    for (let index = 0; index < this.set.size; index++) {
      const drive = this.set.drive(index);
      if (drive === undefined) continue;
      streams.push(driveCandidates(walkObjectCandidates(drive.paths.bucketDir(bucket), prefix, cursor)));
    }
    return mergeCandidates(streams);
  }

  /** What a listing shows for a key found by a walk: its info, or undefined (absent by quorum, unreadable). */
  async infoForListing(bucket: string, key: string): Promise<ObjectInfo | undefined> {
    try {
      const { version } = await this.readVersion(bucket, parseKey(key), false);
      return toObjectInfo(bucket, key, version);
    } catch (error) {
      // Absent by quorum, or unreadable: GET/HEAD report it; one object must not break the listing.
      if (error instanceof StorageError && (error.kind === 'NoSuchKey' || error.kind === 'SlowDown' || error.kind === 'InternalError')) return undefined;
      throw error;
    }
  }

  #listSource(bucket: string): ListObjectsSource<MergedCandidate> {
    return {
      walk: (prefix, cursor) => this.walkMerged(bucket, prefix, cursor),
      loadInfo: (candidate) => this.infoForListing(bucket, candidate.key),
      hasObject: (candidate) => candidateHasObject(candidate),
    };
  }

  async listObjects(bucket: string, input: ListObjectsInput): Promise<ListObjectsPage> {
    await this.assertBucketExists(bucket);
    return listObjectsPage(input, this.#listSource(bucket));
  }

  /** Every key in bucket/prefix that some drive holds an object for, in order (healing and the scanner). */
  async *keys(bucket: string, prefix: string): AsyncGenerator<string> {
    for await (const candidate of this.walkMerged(bucket, prefix, { after: '' })) {
      if (await candidateHasObject(candidate)) yield candidate.key; // not bare prefix directories
    }
  }

  // ---------------------------------------------------------------------------------------- multipart

  createMultipartUpload(bucket: string, key: string, input: CreateMultipartInput): Promise<MultipartUploadInfo> {
    return this.multipart.create(bucket, key, input);
  }

  putPart(bucket: string, key: string, uploadId: string, partNumber: number, input: PutInput): Promise<PartInfo> {
    return this.multipart.putPart(bucket, key, uploadId, partNumber, input);
  }

  listParts(bucket: string, key: string, uploadId: string, partNumberMarker: number, maxParts: number): Promise<ListPartsPage> {
    return this.multipart.listParts(bucket, key, uploadId, partNumberMarker, maxParts);
  }

  completeMultipartUpload(
    bucket: string,
    key: string,
    uploadId: string,
    parts: readonly CompletePart[],
    finish?: (parts: readonly PartInfo[]) => ObjectChecksum | undefined,
  ): Promise<ObjectInfo> {
    return this.multipart.complete(bucket, key, uploadId, parts, finish);
  }

  abortMultipartUpload(bucket: string, key: string, uploadId: string): Promise<void> {
    return this.multipart.abort(bucket, key, uploadId);
  }

  listMultipartUploads(bucket: string, input: ListUploadsInput): Promise<ListUploadsPage> {
    return this.multipart.listUploads(bucket, input);
  }

  async close(): Promise<void> {
    await this.healer.close();
    await this.set.close();
    if (this.#ownsCipherPool) await this.cipherPool.close();
  }
}

export interface MergedCandidate {
  readonly key: string;
  /** the object dir on each drive that listed the key */
  readonly objectDirs: readonly string[];
}

async function* driveCandidates(walk: AsyncIterable<ObjectCandidate>): AsyncGenerator<MergedCandidate> {
  for await (const candidate of walk) yield { key: candidate.key, objectDirs: [candidate.objectDir] };
}

/** Whether any drive that listed the candidate holds an object there (not just a prefix directory). */
export async function candidateHasObject(candidate: MergedCandidate): Promise<boolean> {
  for (const objectDir of candidate.objectDirs) if (await objectExists(objectDir)) return true;
  return false;
}

/**
 * Merge sorted candidate streams (drives of a set, or sets of a deployment) into one sorted stream with
 * each key once, its object dirs combined. Pulls one item per stream at a time: memory stays bounded.
 */
export async function* mergeCandidates(streams: readonly AsyncIterable<MergedCandidate>[]): AsyncGenerator<MergedCandidate> {
  const heads = streams.map((stream) => ({ iterator: stream[Symbol.asyncIterator](), head: undefined as MergedCandidate | undefined }));
  const advance = async (entry: (typeof heads)[number]): Promise<void> => {
    try {
      const next = await entry.iterator.next();
      entry.head = next.done ? undefined : next.value;
    } catch {
      entry.head = undefined; // this stream failed mid-walk; the others still list
    }
  };
  await Promise.all(heads.map(advance));
  for (;;) {
    let smallest: string | undefined;
    for (const entry of heads) {
      if (entry.head !== undefined && (smallest === undefined || compareUtf8(entry.head.key, smallest) < 0)) smallest = entry.head.key;
    }
    if (smallest === undefined) return;
    const holders = heads.filter((entry) => entry.head?.key === smallest);
    yield { key: smallest, objectDirs: holders.flatMap((entry) => entry.head!.objectDirs) };
    await Promise.all(holders.map(advance));
  }
}

/** Stored bytes of an erasure-coded version: decoded from the shards of the agreeing drives. */
export class ErasureStoredBytes implements StoredBytes {
  readonly #engine: ErasureSetEngine;
  readonly #what: string;
  readonly #version: ObjectVersion;
  /** per drive: where its shards are, or undefined when the drive does not serve this read */
  readonly #drives: ({ drive: Drive; objectDir: string; inline: Buffer } | undefined)[];
  readonly #handles = new Map<string, Promise<FileHandle>>();
  readonly #failedDrives = new Set<number>();
  readonly #bucket: string;
  readonly #key: string;

  constructor(engine: ErasureSetEngine, bucket: string, parsed: ParsedKey, version: ObjectVersion, agreeing: readonly number[], metas: readonly DriveMeta[]) {
    this.#engine = engine;
    this.#bucket = bucket;
    this.#key = parsed.key;
    this.#what = `${bucket}/${parsed.key}`;
    this.#version = version;
    this.#drives = Array.from({ length: engine.set.size }, () => undefined);
    for (const index of agreeing) {
      const drive = engine.set.drive(index);
      const meta = metas[index];
      if (drive === undefined || meta === undefined || meta instanceof Error) continue;
      this.#drives[index] = { drive, objectDir: drive.paths.objectDir(bucket, parsed), inline: meta.inlineData };
    }
  }

  #open(driveIndex: number, partNumber: number) {
    const key = `${driveIndex}:${partNumber}`;
    let handle = this.#handles.get(key);
    if (handle === undefined) {
      const entry = this.#drives[driveIndex]!;
      handle = fs.open(path.join(entry.objectDir, dataDirName(this.#version.dataDir!), `part.${partNumber}`), 'r');
      handle.catch(() => undefined);
      this.#handles.set(key, handle);
    }
    return handle;
  }

  /** Open the first part on every serving drive now (see openObject); failures surface as shard errors. */
  async openFirstPart(): Promise<void> {
    const partNumber = this.#version.parts[0]!.n;
    await Promise.all(this.#drives.map((entry, index) => (entry === undefined ? undefined : this.#open(index, partNumber).catch(() => undefined))));
  }

  read(partIndex: number, partNumber: number, from: number, to: number): AsyncIterable<Buffer> {
    const version = this.#version;
    const part = version.parts[partIndex]!;
    const storedSizeBytes = version.encryption === undefined ? part.size : encryptedSizeBytes(part.size);
    const { dataShards, parityShards, blockSizeBytes, distribution } = version.erasure;
    const sources: (ShardSource | undefined)[] = new Array(dataShards + parityShards).fill(undefined);
    const byShard = drivesByShard(distribution);
    byShard.forEach((driveIndex, shard) => {
      const entry = this.#drives[driveIndex];
      if (entry === undefined || this.#failedDrives.has(driveIndex)) return;
      sources[shard] = version.inline ? new BufferShardSource(entry.inline) : new FileShardSource(() => this.#open(driveIndex, partNumber));
    });
    return readErasureStream({
      dataShards,
      parityShards,
      blockSizeBytes,
      algorithm: version.erasure.bitrot ?? defaultBitrotAlgorithm,
      sizeBytes: storedSizeBytes,
      sources,
      start: from,
      endExclusive: to,
      onShardError: (shard, error) => {
        const driveIndex = byShard[shard]!;
        this.#failedDrives.add(driveIndex);
        this.#engine.reportShardError(`${this.#what} part ${partNumber} on drive ${driveIndex + 1}`, error);
        this.#engine.healer.enqueue(this.#bucket, this.#key);
      },
    });
  }

  async close(): Promise<void> {
    const handles = [...this.#handles.values()];
    this.#handles.clear();
    await Promise.all(handles.map(async (pending) => (await pending.catch(() => undefined))?.close().catch(() => undefined)));
  }
}
