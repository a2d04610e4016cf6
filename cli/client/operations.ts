// S3 operations the commands share, over S3Client: listing (paged, bounded), HEAD, batch delete, bucket
// encryption, multipart bookkeeping. Each returns plain typed data; XML stays in this file.

import { createHash } from 'node:crypto';
import type http from 'node:http';
import { escapeXml } from '../../api/xml.ts';
import { childrenNamed, childText, S3ClientError, type S3Client } from './s3-client.ts';

/** S3's page size for listings and its limit for one DeleteObjects request. */
export const listPageKeysMax = 1000;
export const deleteBatchKeysMax = 1000;
/** A listing that returns this many pages is assumed to loop (a broken continuation token): stop loudly. */
const listPagesMax = 10_000_000;

export interface BucketInfo {
  readonly name: string;
  readonly created: Date;
}

export interface ObjectEntry {
  readonly kind: 'object';
  readonly key: string;
  readonly sizeBytes: number;
  readonly lastModified: Date;
  readonly etag: string;
  readonly storageClass: string;
}

export interface PrefixEntry {
  readonly kind: 'prefix';
  readonly key: string;
}

export type ListEntry = ObjectEntry | PrefixEntry;

export function stripQuotes(etag: string | undefined): string {
  return (etag ?? '').replace(/^"|"$/g, '');
}

export async function listBuckets(client: S3Client): Promise<BucketInfo[]> {
  const root = await client.sendForXml({ method: 'GET' });
  const buckets = root.children.find((child) => child.name === 'Buckets');
  if (!buckets) return [];
  return childrenNamed(buckets, 'Bucket').map((bucket) => ({
    name: childText(bucket, 'Name') ?? '',
    created: new Date(childText(bucket, 'CreationDate') ?? 0),
  }));
}

function decodeKey(text: string, urlEncoded: boolean): string {
  return urlEncoded ? decodeURIComponent(text.replace(/\+/g, ' ')) : text;
}

/** ListObjectsV2, every page; with a delimiter, common prefixes come as PrefixEntry. */
export async function* listObjects(client: S3Client, bucket: string, prefix: string, delimiter: string): AsyncGenerator<ListEntry> {
  let continuationToken: string | undefined;
  for (let page = 0; page < listPagesMax; page++) {
    const query: Record<string, string> = { 'list-type': '2', 'encoding-type': 'url', 'max-keys': String(listPageKeysMax) };
    if (prefix !== '') query['prefix'] = prefix;
    if (delimiter !== '') query['delimiter'] = delimiter;
    if (continuationToken !== undefined) query['continuation-token'] = continuationToken;
    const root = await client.sendForXml({ method: 'GET', bucket, query });
    const urlEncoded = (childText(root, 'EncodingType') ?? '').toLowerCase() === 'url';
    // objects and prefixes interleave in key order in what we show
    const entries: ListEntry[] = [];
    for (const item of childrenNamed(root, 'Contents')) {
      entries.push({
        kind: 'object',
        key: decodeKey(childText(item, 'Key') ?? '', urlEncoded),
        sizeBytes: Number(childText(item, 'Size') ?? 0),
        lastModified: new Date(childText(item, 'LastModified') ?? 0),
        etag: stripQuotes(childText(item, 'ETag')),
        storageClass: childText(item, 'StorageClass') ?? 'STANDARD',
      });
    }
    for (const item of childrenNamed(root, 'CommonPrefixes')) entries.push({ kind: 'prefix', key: decodeKey(childText(item, 'Prefix') ?? '', urlEncoded) });
    entries.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    yield* entries;
    const truncated = childText(root, 'IsTruncated') === 'true';
    const next = childText(root, 'NextContinuationToken');
    if (!truncated) return;
    if (next === undefined || next === '' || next === continuationToken) {
      throw new S3ClientError(0, 'MalformedResponse', `listing ${bucket}/${prefix}: truncated page without a new continuation token`);
    }
    continuationToken = next;
  }
  throw new S3ClientError(0, 'MalformedResponse', `listing ${bucket}/${prefix}: more than ${listPagesMax} pages`);
}

export interface ObjectHead {
  readonly sizeBytes: number;
  readonly lastModified: Date;
  readonly etag: string;
  readonly contentType: string | undefined;
  readonly headers: http.IncomingHttpHeaders;
}

export function headFromHeaders(headers: http.IncomingHttpHeaders): ObjectHead {
  return {
    sizeBytes: Number(headers['content-length'] ?? 0),
    lastModified: new Date(String(headers['last-modified'] ?? 0)),
    etag: stripQuotes(headers.etag),
    contentType: headers['content-type'],
    headers,
  };
}

export async function headObject(client: S3Client, bucket: string, key: string, headers: Record<string, string>): Promise<ObjectHead> {
  const response = await client.send({ method: 'HEAD', bucket, key, headers });
  return headFromHeaders(response.headers);
}

/** HEAD an object; undefined when it does not exist (404), other errors throw. */
export async function headObjectIfExists(client: S3Client, bucket: string, key: string, headers: Record<string, string>): Promise<ObjectHead | undefined> {
  try {
    return await headObject(client, bucket, key, headers);
  } catch (error) {
    if (error instanceof S3ClientError && error.status === 404) return undefined;
    throw error;
  }
}

export async function bucketExists(client: S3Client, bucket: string): Promise<boolean> {
  try {
    await client.send({ method: 'HEAD', bucket });
    return true;
  } catch (error) {
    if (error instanceof S3ClientError && error.status === 404) return false;
    throw error;
  }
}

export interface DeleteFailure {
  readonly key: string;
  readonly code: string;
  readonly message: string;
}

/** DeleteObjects for up to 1000 keys; returns the keys that failed (Quiet mode: only errors come back). */
export async function deleteObjects(client: S3Client, bucket: string, keys: readonly string[]): Promise<DeleteFailure[]> {
  if (keys.length === 0) return [];
  if (keys.length > deleteBatchKeysMax) throw new Error(`deleteObjects: ${keys.length} keys, at most ${deleteBatchKeysMax}`);
  const xml = `<?xml version="1.0" encoding="UTF-8"?><Delete><Quiet>true</Quiet>${keys.map((key) => `<Object><Key>${escapeXml(key)}</Key></Object>`).join('')}</Delete>`;
  const body = Buffer.from(xml, 'utf8');
  const root = await client.sendForXml({
    method: 'POST',
    bucket,
    query: { delete: '' },
    headers: { 'content-type': 'application/xml', 'content-md5': createHash('md5').update(body).digest('base64') },
    body,
  });
  return childrenNamed(root, 'Error').map((error) => ({
    key: childText(error, 'Key') ?? '',
    code: childText(error, 'Code') ?? 'Error',
    message: childText(error, 'Message') ?? '',
  }));
}

export interface BucketEncryption {
  readonly algorithm: 'AES256' | 'aws:kms' | string;
  readonly kmsKeyId?: string;
}

/** GetBucketEncryption; undefined when the bucket has none. */
export async function getBucketEncryption(client: S3Client, bucket: string): Promise<BucketEncryption | undefined> {
  let root;
  try {
    root = await client.sendForXml({ method: 'GET', bucket, query: { encryption: '' } });
  } catch (error) {
    if (error instanceof S3ClientError && error.code === 'ServerSideEncryptionConfigurationNotFoundError') return undefined;
    throw error;
  }
  const rule = root.children.find((child) => child.name === 'Rule');
  const byDefault = rule?.children.find((child) => child.name === 'ApplyServerSideEncryptionByDefault');
  if (!byDefault) return undefined;
  const algorithm = childText(byDefault, 'SSEAlgorithm') ?? '';
  const keyArn = childText(byDefault, 'KMSMasterKeyID');
  // mc shows the key id as given: strip an ARN down to the key name, as the server stores it
  const kmsKeyId = keyArn?.startsWith('arn:aws:kms:') ? keyArn.slice(keyArn.lastIndexOf(':') + 1).replace(/^key\//, '') : keyArn;
  return { algorithm, ...(kmsKeyId === undefined || kmsKeyId === '' ? {} : { kmsKeyId }) };
}

export async function putBucketEncryption(client: S3Client, bucket: string, config: BucketEncryption): Promise<void> {
  // mc (minio-go) sends KMSMasterKeyID before SSEAlgorithm; S3 accepts either order
  const keyElement = config.kmsKeyId === undefined ? '' : `<KMSMasterKeyID>${escapeXml(config.kmsKeyId)}</KMSMasterKeyID>`;
  const xml = '<?xml version="1.0" encoding="UTF-8"?><ServerSideEncryptionConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">' +
    `<Rule><ApplyServerSideEncryptionByDefault>${keyElement}<SSEAlgorithm>${escapeXml(config.algorithm)}</SSEAlgorithm></ApplyServerSideEncryptionByDefault></Rule>` +
    '</ServerSideEncryptionConfiguration>';
  const body = Buffer.from(xml, 'utf8');
  await client.send({
    method: 'PUT',
    bucket,
    query: { encryption: '' },
    headers: { 'content-type': 'application/xml', 'content-md5': createHash('md5').update(body).digest('base64') },
    body,
  });
}

export async function deleteBucketEncryption(client: S3Client, bucket: string): Promise<void> {
  await client.send({ method: 'DELETE', bucket, query: { encryption: '' } });
}

export interface PendingUpload {
  readonly key: string;
  readonly uploadId: string;
}

/** Multipart uploads in progress in a bucket (every page). */
export async function* listMultipartUploads(client: S3Client, bucket: string, prefix: string): AsyncGenerator<PendingUpload> {
  let keyMarker: string | undefined;
  let uploadIdMarker: string | undefined;
  for (let page = 0; page < listPagesMax; page++) {
    const query: Record<string, string> = { uploads: '', 'max-uploads': String(listPageKeysMax) };
    if (prefix !== '') query['prefix'] = prefix;
    if (keyMarker !== undefined) query['key-marker'] = keyMarker;
    if (uploadIdMarker !== undefined) query['upload-id-marker'] = uploadIdMarker;
    const root = await client.sendForXml({ method: 'GET', bucket, query });
    for (const upload of childrenNamed(root, 'Upload')) yield { key: childText(upload, 'Key') ?? '', uploadId: childText(upload, 'UploadId') ?? '' };
    if (childText(root, 'IsTruncated') !== 'true') return;
    const nextKey = childText(root, 'NextKeyMarker');
    const nextUpload = childText(root, 'NextUploadIdMarker');
    if (nextKey === undefined || (nextKey === keyMarker && nextUpload === uploadIdMarker)) return;
    keyMarker = nextKey;
    uploadIdMarker = nextUpload;
  }
}

export async function abortMultipartUpload(client: S3Client, bucket: string, key: string, uploadId: string): Promise<void> {
  await client.send({ method: 'DELETE', bucket, key, query: { uploadId } });
}
