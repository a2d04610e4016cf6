// A deployment of several erasure sets (more drives than one set holds: 17+, or MINIO_ERASURE_SET_DRIVE_COUNT).
// Each object lives in exactly one set, chosen as MinIO does (SipHash-2-4 of the key, keyed with the
// deployment ID, mod the set count: docs/jbod.md §3); buckets exist in every set; listings merge the
// sets' sorted walks. Everything else is the set's own business (engine/set/set-engine.ts).

import { setIndexForObject } from '../erasure/distribution.ts';
import { listObjectsPage } from '../list.ts';
import type { ListObjectsSource } from '../list.ts';
import { pageUploads } from '../multipart.ts';
import { isSafeBucketName, parseKey } from '../paths.ts';
import { StorageError } from '../types.ts';
import type {
  BucketEncryption, BucketInfo, CompletePart, CreateMultipartInput, ErasureControl, HealProgress, HealSummary, ListObjectsInput,
  ListObjectsPage, ListPartsPage, ListUploadsInput, ListUploadsPage, MultipartUploadInfo, ObjectChecksum, ObjectEngine, ObjectInfo,
  ObjectReader, PartInfo, PutInput,
} from '../types.ts';
import { DriveSet } from './drive-set.ts';
import { candidateHasObject, ErasureSetEngine, mergeCandidates } from './set-engine.ts';
import type { MergedCandidate, SetEngineOptions } from './set-engine.ts';

export class ErasureSetsEngine implements ObjectEngine {
  readonly #sets: readonly ErasureSetEngine[];
  readonly deploymentId: string;

  private constructor(sets: readonly ErasureSetEngine[]) {
    this.#sets = sets;
    this.deploymentId = sets[0]!.deploymentId;
  }

  /** Open `drivePaths` (command-line order) as consecutive sets of `setSize` drives. */
  static async open(drivePaths: readonly string[], setSize: number, options: SetEngineOptions): Promise<ErasureSetsEngine> {
    const driveSets = await DriveSet.openAll(drivePaths, setSize, setSize - options.parityShards);
    return new ErasureSetsEngine(await Promise.all(driveSets.map((set) => ErasureSetEngine.start(set, options))));
  }

  /** The set that holds bucket/key. */
  #setFor(key: string): ErasureSetEngine {
    parseKey(key);
    return this.#sets[setIndexForObject(key, this.#sets.length, this.deploymentId)]!;
  }

  // ------------------------------------------------------------------------------------------ buckets

  async makeBucket(bucket: string): Promise<void> {
    if (!isSafeBucketName(bucket)) throw new StorageError('InvalidArgument', `invalid bucket name ${JSON.stringify(bucket)}`);
    const exists = await Promise.all(this.#sets.map((set) => set.bucketExists(bucket)));
    if (exists.every(Boolean)) throw new StorageError('BucketAlreadyOwnedByYou', `bucket ${bucket} exists`);
    // Sets that already have it are left as they are: this completes an earlier, partly failed create.
    for (const [index, set] of this.#sets.entries()) if (!exists[index]) await set.makeBucket(bucket);
  }

  async deleteBucket(bucket: string): Promise<void> {
    await this.headBucket(bucket);
    for (const set of this.#sets) {
      const page = await set.listObjects(bucket, { prefix: '', delimiter: '', after: '', maxKeys: 1 });
      if (page.objects.length > 0) throw new StorageError('BucketNotEmpty', `bucket ${bucket} holds objects`);
      if (await set.multipart.hasUploads(bucket)) throw new StorageError('BucketNotEmpty', `bucket ${bucket} has multipart uploads in progress`);
    }
    for (const set of this.#sets) await set.deleteBucket(bucket);
  }

  /** A bucket exists when every set has it (a set without it could not take its objects). */
  async headBucket(bucket: string): Promise<BucketInfo> {
    const exists = await Promise.all(this.#sets.map((set) => set.bucketExists(bucket)));
    if (!exists.every(Boolean)) throw new StorageError('NoSuchBucket', `bucket ${bucket} does not exist`);
    return this.#sets[0]!.headBucket(bucket);
  }

  async listBuckets(): Promise<BucketInfo[]> {
    const perSet = await Promise.all(this.#sets.map((set) => set.listBuckets()));
    const everywhere = new Set(perSet[0]!.map((bucket) => bucket.name));
    for (const list of perSet.slice(1)) {
      const names = new Set(list.map((bucket) => bucket.name));
      for (const name of everywhere) if (!names.has(name)) everywhere.delete(name);
    }
    return perSet[0]!.filter((bucket) => everywhere.has(bucket.name));
  }

  async getBucketEncryption(bucket: string): Promise<BucketEncryption | undefined> {
    await this.headBucket(bucket);
    return this.#sets[0]!.getBucketEncryption(bucket);
  }

  async setBucketEncryption(bucket: string, config: BucketEncryption | undefined): Promise<void> {
    await this.headBucket(bucket);
    for (const set of this.#sets) await set.setBucketEncryption(bucket, config);
  }

  // ------------------------------------------------------------------------------------------ objects

  async putObject(bucket: string, key: string, input: PutInput): Promise<ObjectInfo> {
    return this.#setFor(key).putObject(bucket, key, input);
  }

  statObject(bucket: string, key: string): Promise<ObjectInfo> {
    return this.#setFor(key).statObject(bucket, key);
  }

  openObject(bucket: string, key: string): Promise<ObjectReader> {
    return this.#setFor(key).openObject(bucket, key);
  }

  deleteObject(bucket: string, key: string): Promise<void> {
    return this.#setFor(key).deleteObject(bucket, key);
  }

  #listSource(bucket: string): ListObjectsSource<MergedCandidate> {
    return {
      walk: (prefix, cursor) => mergeCandidates(this.#sets.map((set) => set.walkMerged(bucket, prefix, cursor))),
      loadInfo: (candidate) => this.#setFor(candidate.key).infoForListing(bucket, candidate.key),
      hasObject: (candidate) => candidateHasObject(candidate),
    };
  }

  async listObjects(bucket: string, input: ListObjectsInput): Promise<ListObjectsPage> {
    await this.headBucket(bucket);
    return listObjectsPage(input, this.#listSource(bucket));
  }

  // ---------------------------------------------------------------------------------------- multipart

  createMultipartUpload(bucket: string, key: string, input: CreateMultipartInput): Promise<MultipartUploadInfo> {
    return this.#setFor(key).createMultipartUpload(bucket, key, input);
  }

  putPart(bucket: string, key: string, uploadId: string, partNumber: number, input: PutInput): Promise<PartInfo> {
    return this.#setFor(key).putPart(bucket, key, uploadId, partNumber, input);
  }

  listParts(bucket: string, key: string, uploadId: string, partNumberMarker: number, maxParts: number): Promise<ListPartsPage> {
    return this.#setFor(key).listParts(bucket, key, uploadId, partNumberMarker, maxParts);
  }

  completeMultipartUpload(
    bucket: string,
    key: string,
    uploadId: string,
    parts: readonly CompletePart[],
    finish?: (parts: readonly PartInfo[]) => ObjectChecksum | undefined,
  ): Promise<ObjectInfo> {
    return this.#setFor(key).completeMultipartUpload(bucket, key, uploadId, parts, finish);
  }

  abortMultipartUpload(bucket: string, key: string, uploadId: string): Promise<void> {
    return this.#setFor(key).abortMultipartUpload(bucket, key, uploadId);
  }

  async listMultipartUploads(bucket: string, input: ListUploadsInput): Promise<ListUploadsPage> {
    await this.headBucket(bucket);
    const perSet = await Promise.all(this.#sets.map((set) => set.multipart.scan(bucket, input.prefix, false)));
    return pageUploads(perSet.flat(), input);
  }

  // ----------------------------------------------------------------------------------------- operators

  get erasure(): ErasureControl {
    const controls = this.#sets.map((set) => set.erasure);
    const first = controls[0]!;
    return {
      sets: controls.length,
      setSize: first.setSize,
      dataShards: first.dataShards,
      parityShards: first.parityShards,
      drives: () => controls.flatMap((control) => control.drives()),
      get shardErrors() {
        return controls.reduce((sum, control) => sum + control.shardErrors, 0);
      },
      get objectsHealed() {
        return controls.reduce((sum, control) => sum + control.objectsHealed, 0);
      },
      heal: async (bucket: string, prefix: string, onProgress?: (progress: HealProgress) => void): Promise<HealSummary> => {
        let total: HealSummary = { scanned: 0, healed: 0, failed: 0 };
        for (const control of controls) {
          const base = total;
          const summary = await control.heal(bucket, prefix, (progress) =>
            onProgress?.({ ...progress, scanned: base.scanned + progress.scanned, healed: base.healed + progress.healed, failed: base.failed + progress.failed }),
          );
          total = { scanned: base.scanned + summary.scanned, healed: base.healed + summary.healed, failed: base.failed + summary.failed };
        }
        return total;
      },
    };
  }

  async close(): Promise<void> {
    await Promise.all(this.#sets.map((set) => set.close()));
  }
}
