// The object engine's contract: what the S3 API layer (api/) may call. The engine knows nothing of HTTP,
// XML or SigV4; it stores buckets, objects and multipart uploads on a set of drives (one drive for now,
// with the multi-drive format, see docs/format.md).

/** Additional checksum algorithms S3 supports (x-amz-checksum-*). Values are stored base64 as S3 sends them. */
export type ChecksumAlgorithm = 'CRC32' | 'CRC32C' | 'CRC64NVME' | 'SHA1' | 'SHA256';
export const checksumAlgorithms: readonly ChecksumAlgorithm[] = ['CRC32', 'CRC32C', 'CRC64NVME', 'SHA1', 'SHA256'];
export type ChecksumType = 'FULL_OBJECT' | 'COMPOSITE';

export interface ObjectChecksum {
  readonly algorithm: ChecksumAlgorithm;
  /** base64 of the digest; for COMPOSITE multipart checksums S3's form "<base64>-<partCount>" */
  readonly value: string;
  readonly type: ChecksumType;
}

/** Engine failures. Each kind has an S3 error code of the same name in api/errors.ts. */
export type StorageErrorKind =
  | 'NoSuchBucket'
  | 'BucketAlreadyOwnedByYou'
  | 'BucketNotEmpty'
  | 'NoSuchKey'
  | 'NoSuchUpload'
  | 'InvalidPart'
  | 'InvalidPartOrder'
  | 'EntityTooSmall'
  | 'EntityTooLarge'
  | 'IncompleteBody'
  | 'KeyTooLongError'
  | 'XMinioInvalidObjectName'
  | 'InvalidArgument'
  | 'SlowDown'
  | 'InternalError';

export class StorageError extends Error {
  constructor(
    readonly kind: StorageErrorKind,
    message?: string,
  ) {
    super(message ?? kind);
    this.name = 'StorageError';
  }
}

export interface BucketInfo {
  readonly name: string;
  readonly createdMs: number;
}

export interface PartInfo {
  readonly partNumber: number;
  /** stored size of this part (== plaintext size until encryption lands) */
  readonly sizeBytes: number;
  /** hex MD5 of the part, without quotes */
  readonly etag: string;
  readonly checksum?: ObjectChecksum;
  readonly modTimeMs: number;
}

/** Metadata of one stored object (the current, "null" version). */
export interface ObjectInfo {
  readonly bucket: string;
  readonly key: string;
  readonly sizeBytes: number;
  /** S3 ETag without quotes: hex MD5 for single PUTs, "<md5-of-md5s>-<N>" for multipart */
  readonly etag: string;
  readonly modTimeMs: number;
  readonly contentType: string;
  /** user metadata: lower-cased header names *with* the `x-amz-meta-` prefix -> value */
  readonly userMetadata: Readonly<Record<string, string>>;
  /** stored standard headers: content-encoding, content-disposition, content-language, cache-control, expires */
  readonly systemHeaders: Readonly<Record<string, string>>;
  readonly checksum?: ObjectChecksum;
  /** part table; one entry for a single PUT */
  readonly parts: readonly PartInfo[];
  /** the server-side-encryption record stored with the object (opaque to the engine: api/sse.ts owns it) */
  readonly encryption?: EncryptionRecord;
}

/** SSE metadata as stored (sealed keys, IV, KMS key id …); never holds a key in the clear. */
export type EncryptionRecord = Readonly<Record<string, string>>;

/** How the engine encrypts a body it stores (DARE 2.0 packages, see docs/encryption.md). */
export interface DataEncryption {
  /** the 32-byte key that encrypts the data: the object key for a single PUT, the part key for a part */
  readonly key: Buffer;
  /** the 12-byte DARE nonce; random when absent (multipart parts use a deterministic one) */
  readonly nonce?: Buffer;
  /** stored with the object version (single PUT); parts inherit the upload's record */
  readonly record?: EncryptionRecord;
  /** store a random ETag instead of the plaintext MD5 (SSE-KMS, SSE-C: the MD5 would reveal content) */
  readonly randomEtag: boolean;
  /**
   * false: nothing needs the plaintext MD5 (a random ETag and no Content-MD5 to check), so it is not
   * computed — it is the most expensive per-byte step of a PUT. Absent = computed.
   */
  readonly plaintextMd5?: boolean;
}

/** Bucket default encryption (PutBucketEncryption). */
export interface BucketEncryption {
  readonly algorithm: 'AES256' | 'aws:kms';
  readonly kmsKeyId?: string;
}

/** What a PUT or UploadPart hands to the engine. */
export interface PutInput {
  /** the plaintext body; the engine consumes it once. An exception thrown by the iterator aborts the write. */
  readonly body: AsyncIterable<Uint8Array>;
  /** the size the client announced; fewer bytes -> IncompleteBody, more -> InvalidArgument */
  readonly expectedSizeBytes?: number;
  readonly contentType?: string;
  readonly userMetadata?: Readonly<Record<string, string>>;
  readonly systemHeaders?: Readonly<Record<string, string>>;
  /**
   * Called once the body has been consumed in full and before anything is committed: the API verifies
   * Content-MD5 / checksums here (throwing aborts the write) and returns the checksum to record.
   * `md5Hex` is the MD5 the engine computed over the body.
   */
  readonly finish?: (md5Hex: string, sizeBytes: number) => ObjectChecksum | undefined;
  /** encrypt the body at rest */
  readonly encryption?: DataEncryption;
}

export interface ObjectReader {
  readonly info: ObjectInfo;
  /**
   * Stream plaintext bytes [start, endInclusive] of the object; the reader must be closed after use.
   * An encrypted object needs `keyForPart` (the data key of part N, 1 for a single PUT); data that fails
   * authentication ends the stream with an error, never with wrong bytes. A yielded chunk is only valid
   * until the next one is pulled (buffers are reused): copy what must be kept.
   */
  read(start: number, endInclusive: number, keyForPart?: (partNumber: number) => Buffer): AsyncIterable<Buffer>;
  /** present on multi-drive engines */
  readonly erasure?: ErasureControl;

  close(): Promise<void>;
}

export interface ListObjectsInput {
  readonly prefix: string;
  /** '' for no delimiter */
  readonly delimiter: string;
  /** list keys strictly greater than this (marker / start-after / continuation) */
  readonly after: string;
  /** 1..1000; 0 returns an empty, untruncated page */
  readonly maxKeys: number;
}

export interface ListObjectsPage {
  /** sorted by UTF-8 byte order */
  readonly objects: readonly ObjectInfo[];
  readonly commonPrefixes: readonly string[];
  readonly isTruncated: boolean;
  /** the last key or common prefix returned, when truncated: resume listing after it */
  readonly nextAfter?: string;
}

export interface MultipartUploadInfo {
  readonly bucket: string;
  readonly key: string;
  readonly uploadId: string;
  readonly initiatedMs: number;
  readonly contentType: string;
  readonly userMetadata: Readonly<Record<string, string>>;
  readonly systemHeaders: Readonly<Record<string, string>>;
  readonly checksumAlgorithm?: ChecksumAlgorithm;
  readonly checksumType?: ChecksumType;
  /** the upload's SSE record; every part must then be encrypted and the object inherits it */
  readonly encryption?: EncryptionRecord;
}

export interface CreateMultipartInput {
  readonly contentType?: string;
  readonly userMetadata?: Readonly<Record<string, string>>;
  readonly systemHeaders?: Readonly<Record<string, string>>;
  readonly checksumAlgorithm?: ChecksumAlgorithm;
  readonly checksumType?: ChecksumType;
  readonly encryption?: EncryptionRecord;
}

export interface CompletePart {
  readonly partNumber: number;
  /** as the client sent it; quotes already stripped */
  readonly etag: string;
  readonly checksum?: string;
}

export interface ListUploadsInput {
  readonly prefix: string;
  readonly delimiter: string;
  readonly keyMarker: string;
  readonly uploadIdMarker: string;
  readonly maxUploads: number;
}

export interface ListUploadsPage {
  readonly uploads: readonly MultipartUploadInfo[];
  readonly commonPrefixes: readonly string[];
  readonly isTruncated: boolean;
  readonly nextKeyMarker?: string;
  readonly nextUploadIdMarker?: string;
}

export interface ListPartsPage {
  readonly upload: MultipartUploadInfo;
  readonly parts: readonly PartInfo[];
  readonly isTruncated: boolean;
  readonly nextPartNumberMarker?: number;
}

/** One object handled by a heal. */
export interface HealProgress {
  readonly scanned: number;
  readonly healed: number;
  readonly failed: number;
  /** bucket/key just handled */
  readonly current: string;
  readonly result: 'ok' | 'healed' | 'deleted' | 'failed';
}

export interface HealSummary {
  readonly scanned: number;
  readonly healed: number;
  readonly failed: number;
}

export interface DriveStatus {
  readonly path: string;
  readonly state: 'ok' | 'offline' | 'healing';
}

/** What a multi-drive (erasure-coded) engine offers operators beyond S3. */
export interface ErasureControl {
  readonly sets: number;
  readonly setSize: number;
  readonly dataShards: number;
  readonly parityShards: number;
  drives(): readonly DriveStatus[];
  /** shard or metadata copies that failed verification or could not be read, since start */
  readonly shardErrors: number;
  /** objects rebuilt on at least one drive, since start */
  readonly objectsHealed: number;
  /** heal every object under bucket/prefix ('' = all buckets), deep-verifying every shard */
  heal(bucket: string, prefix: string, onProgress?: (progress: HealProgress) => void): Promise<HealSummary>;
}

/** The engine interface. All names and keys are validated by the engine (bucket name rules are the API's). */
export interface ObjectEngine {
  makeBucket(bucket: string): Promise<void>;
  deleteBucket(bucket: string): Promise<void>;
  headBucket(bucket: string): Promise<BucketInfo>;
  listBuckets(): Promise<BucketInfo[]>;
  getBucketEncryption(bucket: string): Promise<BucketEncryption | undefined>;
  /** undefined removes the configuration */
  setBucketEncryption(bucket: string, config: BucketEncryption | undefined): Promise<void>;

  putObject(bucket: string, key: string, input: PutInput): Promise<ObjectInfo>;
  statObject(bucket: string, key: string): Promise<ObjectInfo>;
  openObject(bucket: string, key: string): Promise<ObjectReader>;
  /** S3 semantics: deleting a missing key succeeds; a missing bucket is NoSuchBucket */
  deleteObject(bucket: string, key: string): Promise<void>;
  listObjects(bucket: string, input: ListObjectsInput): Promise<ListObjectsPage>;

  createMultipartUpload(bucket: string, key: string, input: CreateMultipartInput): Promise<MultipartUploadInfo>;
  putPart(bucket: string, key: string, uploadId: string, partNumber: number, input: PutInput): Promise<PartInfo>;
  listParts(bucket: string, key: string, uploadId: string, partNumberMarker: number, maxParts: number): Promise<ListPartsPage>;
  /** the API computes the final checksum (if any) from the parts; finish receives the stored part table */
  completeMultipartUpload(
    bucket: string,
    key: string,
    uploadId: string,
    parts: readonly CompletePart[],
    finish?: (parts: readonly PartInfo[]) => ObjectChecksum | undefined,
  ): Promise<ObjectInfo>;
  abortMultipartUpload(bucket: string, key: string, uploadId: string): Promise<void>;
  listMultipartUploads(bucket: string, input: ListUploadsInput): Promise<ListUploadsPage>;

  /** present on multi-drive engines */
  readonly erasure?: ErasureControl;

  close(): Promise<void>;
}
