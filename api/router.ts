// Request -> a typed S3 operation, decided before any handler runs (method, bucket/key presence and the
// S3 subresource query parameters). Subresources we do not serve yet answer NotImplemented rather than
// being mistaken for a plain GET/PUT; unknown non-subresource parameters (e.g. the SDK's `x-id`) are ignored.
import { S3Error } from './errors.ts';
import type { S3Request } from './request.ts';

export type Operation =
  | 'HealthLive'
  | 'HealthReady'
  | 'ListBuckets'
  | 'CreateBucket'
  | 'DeleteBucket'
  | 'HeadBucket'
  | 'GetBucketLocation'
  | 'GetBucketVersioning'
  | 'PutBucketEncryption'
  | 'GetBucketEncryption'
  | 'DeleteBucketEncryption'
  | 'ListObjectsV1'
  | 'ListObjectsV2'
  | 'ListObjectVersions'
  | 'ListMultipartUploads'
  | 'DeleteObjects'
  | 'PutObject'
  | 'CopyObject'
  | 'GetObject'
  | 'HeadObject'
  | 'DeleteObject'
  | 'CreateMultipartUpload'
  | 'UploadPart'
  | 'UploadPartCopy'
  | 'CompleteMultipartUpload'
  | 'AbortMultipartUpload'
  | 'ListParts'
  | 'Metrics'
  | 'AdminInfo'
  | 'AdminHeal';

/** S3 subresources (query parameters that select an operation) this server does not implement yet. */
const unimplementedSubresources = [
  'accelerate', 'acl', 'analytics', 'attributes', 'cors', 'intelligent-tiering', 'inventory',
  'legal-hold', 'lifecycle', 'logging', 'metadata-table', 'metrics', 'notification', 'object-lock',
  'ownershipControls', 'policy', 'policyStatus', 'publicAccessBlock', 'replication', 'requestPayment',
  'restore', 'retention', 'select', 'session', 'tagging', 'torrent', 'website', 'renameObject',
];

function notImplemented(what: string): never {
  throw new S3Error('NotImplemented', `${what} is not implemented.`);
}

export function route(req: S3Request): Operation {
  const { method, query, bucket, key } = req;
  if (!req.virtualHost && (req.rawPath === '/minio/health/live' || req.rawPath === '/minio/health/ready')) {
    if (method === 'GET' || method === 'HEAD') return req.rawPath.endsWith('live') ? 'HealthLive' : 'HealthReady';
  }
  // Operator endpoints live beside S3, as MinIO's /minio/… paths do (a bucket named `minio` or `coffer` would
  // shadow them, so both names are effectively reserved).
  if (!req.virtualHost && method === 'GET') {
    if (req.rawPath === '/minio/v2/metrics/cluster') return 'Metrics';
    if (req.rawPath === '/coffer/admin/v1/info') return 'AdminInfo';
  }
  if (!req.virtualHost && method === 'POST' && req.rawPath === '/coffer/admin/v1/heal') return 'AdminHeal';
  for (const name of unimplementedSubresources) {
    if (query.has(name)) notImplemented(`The '${name}' subresource`);
  }
  if (bucket === '') {
    if (method === 'GET') return 'ListBuckets';
    throw new S3Error('MethodNotAllowed');
  }
  if (key === '' && query.has('encryption')) {
    if (method === 'PUT') return 'PutBucketEncryption';
    if (method === 'GET') return 'GetBucketEncryption';
    if (method === 'DELETE') return 'DeleteBucketEncryption';
    throw new S3Error('MethodNotAllowed');
  }
  if (query.has('encryption')) notImplemented(`The 'encryption' subresource on objects`);
  if (key === '') {
    switch (method) {
      case 'GET':
        if (query.has('location')) return 'GetBucketLocation';
        if (query.has('versioning')) return 'GetBucketVersioning';
        if (query.has('versions')) return 'ListObjectVersions';
        if (query.has('uploads')) return 'ListMultipartUploads';
        if (query.get('list-type') === '2') return 'ListObjectsV2';
        return 'ListObjectsV1';
      case 'HEAD':
        return 'HeadBucket';
      case 'PUT':
        if (query.has('versioning')) notImplemented('PutBucketVersioning');
        return 'CreateBucket';
      case 'DELETE':
        return 'DeleteBucket';
      case 'POST':
        if (query.has('delete')) return 'DeleteObjects';
        notImplemented('POST object upload (browser forms)');
      default:
        throw new S3Error('MethodNotAllowed');
    }
  }
  switch (method) {
    case 'GET':
      if (query.has('uploadId')) return 'ListParts';
      return 'GetObject';
    case 'HEAD':
      return 'HeadObject';
    case 'PUT':
      if (query.has('partNumber') || query.has('uploadId')) {
        return req.headers.has('x-amz-copy-source') ? 'UploadPartCopy' : 'UploadPart';
      }
      return req.headers.has('x-amz-copy-source') ? 'CopyObject' : 'PutObject';
    case 'DELETE':
      if (query.has('uploadId')) return 'AbortMultipartUpload';
      return 'DeleteObject';
    case 'POST':
      if (query.has('uploads')) return 'CreateMultipartUpload';
      if (query.has('uploadId')) return 'CompleteMultipartUpload';
      notImplemented('This POST operation');
    default:
      throw new S3Error('MethodNotAllowed');
  }
}
