// ListObjects (V1 and V2), ListObjectVersions (current objects only, VersionId "null") and
// ListMultipartUploads.
import type { ListObjectsPage, ObjectInfo } from '../../engine/types.ts';
import { sendXml, type RequestContext } from '../context.ts';
import { S3Error } from '../errors.ts';
import { s3XmlNamespace, xmlDocument, xmlSeq, type XmlObject } from '../xml.ts';
import { assertBucketName, owner } from './bucket.ts';
import { isoDate, quoteEtag } from './metadata.ts';

export const maxKeysPerList = 1000;

/** S3's encoding-type=url: percent-encode everything but unreserved characters and '/'. */
function urlEncode(text: string): string {
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`).replace(/%2F/g, '/');
}

function encoder(ctx: RequestContext): (text: string) => string {
  const encodingType = ctx.req.query.get('encoding-type');
  if (encodingType === undefined || encodingType === '') return (text) => text;
  if (encodingType.toLowerCase() !== 'url') throw new S3Error('InvalidArgument', 'Invalid Encoding Method specified in Request', { ArgumentName: 'encoding-type' });
  return urlEncode;
}

function parseMax(text: string | undefined, name: string, limit: number): number {
  if (text === undefined) return limit;
  if (!/^\d{1,10}$/.test(text)) throw new S3Error('InvalidArgument', `Provided ${name} not an integer or within integer range`, { ArgumentName: name });
  return Math.min(Number(text), limit);
}

function contents(info: ObjectInfo, encode: (text: string) => string, withOwner: boolean): XmlObject {
  return {
    Key: encode(info.key),
    LastModified: isoDate(info.modTimeMs),
    ETag: quoteEtag(info.etag),
    ChecksumAlgorithm: info.checksum?.algorithm,
    ChecksumType: info.checksum?.type,
    Size: info.sizeBytes,
    Owner: withOwner ? owner : undefined,
    StorageClass: 'STANDARD',
  };
}

async function listPage(ctx: RequestContext, after: string, maxKeys: number): Promise<ListObjectsPage> {
  const { req } = ctx;
  assertBucketName(req.bucket);
  const prefix = req.query.get('prefix') ?? '';
  const delimiter = req.query.get('delimiter') ?? '';
  if (maxKeys === 0) {
    await ctx.engine.headBucket(req.bucket);
    return { objects: [], commonPrefixes: [], isTruncated: false };
  }
  return ctx.engine.listObjects(req.bucket, { prefix, delimiter, after, maxKeys });
}

export async function listObjectsV1(ctx: RequestContext): Promise<void> {
  const { query } = ctx.req;
  const encode = encoder(ctx);
  const maxKeys = parseMax(query.get('max-keys'), 'max-keys', maxKeysPerList);
  const marker = query.get('marker') ?? '';
  const page = await listPage(ctx, marker, maxKeys);
  const delimiter = query.get('delimiter') ?? '';
  const xml = xmlDocument(
    'ListBucketResult',
    {
      Name: ctx.req.bucket,
      Prefix: encode(query.get('prefix') ?? ''),
      Marker: encode(marker),
      NextMarker: page.isTruncated && page.nextAfter !== undefined ? encode(page.nextAfter) : undefined,
      MaxKeys: maxKeys,
      Delimiter: delimiter === '' ? undefined : encode(delimiter),
      IsTruncated: page.isTruncated,
      EncodingType: query.has('encoding-type') ? 'url' : undefined,
      Contents: page.objects.map((info) => contents(info, encode, true)),
      CommonPrefixes: page.commonPrefixes.map((prefix) => ({ Prefix: encode(prefix) })),
    },
    { xmlns: s3XmlNamespace },
  );
  sendXml(ctx, xml);
}

/** Continuation tokens are opaque to clients: the key to resume after, base64url-encoded. */
function encodeToken(key: string): string {
  return Buffer.from(key, 'utf8').toString('base64url');
}

function decodeToken(token: string): string {
  if (!/^[A-Za-z0-9_-]*$/.test(token)) throw new S3Error('InvalidArgument', 'The continuation token provided is incorrect', { ArgumentName: 'continuation-token' });
  return Buffer.from(token, 'base64url').toString('utf8');
}

export async function listObjectsV2(ctx: RequestContext): Promise<void> {
  const { query } = ctx.req;
  const encode = encoder(ctx);
  const maxKeys = parseMax(query.get('max-keys'), 'max-keys', maxKeysPerList);
  const token = query.get('continuation-token');
  const startAfter = query.get('start-after') ?? '';
  let after = startAfter;
  if (token !== undefined) {
    const fromToken = decodeToken(token);
    if (Buffer.compare(Buffer.from(fromToken), Buffer.from(after)) > 0) after = fromToken;
  }
  const page = await listPage(ctx, after, maxKeys);
  const fetchOwner = query.get('fetch-owner') === 'true';
  const delimiter = query.get('delimiter') ?? '';
  const xml = xmlDocument(
    'ListBucketResult',
    {
      Name: ctx.req.bucket,
      Prefix: encode(query.get('prefix') ?? ''),
      ContinuationToken: token,
      NextContinuationToken: page.isTruncated && page.nextAfter !== undefined ? encodeToken(page.nextAfter) : undefined,
      StartAfter: startAfter === '' ? undefined : encode(startAfter),
      KeyCount: page.objects.length + page.commonPrefixes.length,
      MaxKeys: maxKeys,
      Delimiter: delimiter === '' ? undefined : encode(delimiter),
      IsTruncated: page.isTruncated,
      EncodingType: query.has('encoding-type') ? 'url' : undefined,
      Contents: page.objects.map((info) => contents(info, encode, fetchOwner)),
      CommonPrefixes: page.commonPrefixes.map((prefix) => ({ Prefix: encode(prefix) })),
    },
    { xmlns: s3XmlNamespace },
  );
  sendXml(ctx, xml);
}

export async function listObjectVersions(ctx: RequestContext): Promise<void> {
  const { query } = ctx.req;
  const encode = encoder(ctx);
  const maxKeys = parseMax(query.get('max-keys'), 'max-keys', maxKeysPerList);
  const keyMarker = query.get('key-marker') ?? '';
  const page = await listPage(ctx, keyMarker, maxKeys);
  const delimiter = query.get('delimiter') ?? '';
  const entries: Array<readonly [string, XmlObject | string | number | boolean | undefined]> = [
    ['Name', ctx.req.bucket],
    ['Prefix', encode(query.get('prefix') ?? '')],
    ['KeyMarker', encode(keyMarker)],
    ['VersionIdMarker', query.get('version-id-marker') ?? ''],
    ['NextKeyMarker', page.isTruncated && page.nextAfter !== undefined ? encode(page.nextAfter) : undefined],
    ['NextVersionIdMarker', page.isTruncated ? 'null' : undefined],
    ['MaxKeys', maxKeys],
    ['Delimiter', delimiter === '' ? undefined : encode(delimiter)],
    ['IsTruncated', page.isTruncated],
    ['EncodingType', query.has('encoding-type') ? 'url' : undefined],
  ];
  for (const info of page.objects) {
    entries.push([
      'Version',
      {
        Key: encode(info.key),
        VersionId: 'null',
        IsLatest: true,
        LastModified: isoDate(info.modTimeMs),
        ETag: quoteEtag(info.etag),
        Size: info.sizeBytes,
        Owner: owner,
        StorageClass: 'STANDARD',
      },
    ]);
  }
  for (const prefix of page.commonPrefixes) entries.push(['CommonPrefixes', { Prefix: encode(prefix) }]);
  sendXml(ctx, xmlDocument('ListVersionsResult', xmlSeq(entries), { xmlns: s3XmlNamespace }));
}

export async function listMultipartUploads(ctx: RequestContext): Promise<void> {
  const { req } = ctx;
  const { query } = req;
  assertBucketName(req.bucket);
  const encode = encoder(ctx);
  const maxUploads = parseMax(query.get('max-uploads'), 'max-uploads', maxKeysPerList);
  const prefix = query.get('prefix') ?? '';
  const delimiter = query.get('delimiter') ?? '';
  const keyMarker = query.get('key-marker') ?? '';
  const uploadIdMarker = query.get('upload-id-marker') ?? '';
  const page =
    maxUploads === 0
      ? { uploads: [], commonPrefixes: [], isTruncated: false, nextKeyMarker: undefined, nextUploadIdMarker: undefined }
      : await ctx.engine.listMultipartUploads(req.bucket, { prefix, delimiter, keyMarker, uploadIdMarker, maxUploads });
  const xml = xmlDocument(
    'ListMultipartUploadsResult',
    {
      Bucket: req.bucket,
      KeyMarker: encode(keyMarker),
      UploadIdMarker: uploadIdMarker,
      NextKeyMarker: page.nextKeyMarker === undefined ? undefined : encode(page.nextKeyMarker),
      NextUploadIdMarker: page.nextUploadIdMarker,
      Prefix: encode(prefix),
      Delimiter: delimiter === '' ? undefined : encode(delimiter),
      MaxUploads: maxUploads,
      IsTruncated: page.isTruncated,
      EncodingType: query.has('encoding-type') ? 'url' : undefined,
      Upload: page.uploads.map((upload) => ({
        Key: encode(upload.key),
        UploadId: upload.uploadId,
        Initiator: owner,
        Owner: owner,
        StorageClass: 'STANDARD',
        Initiated: isoDate(upload.initiatedMs),
        ChecksumAlgorithm: upload.checksumAlgorithm,
        ChecksumType: upload.checksumType,
      })),
      CommonPrefixes: page.commonPrefixes.map((p) => ({ Prefix: encode(p) })),
    },
    { xmlns: s3XmlNamespace },
  );
  sendXml(ctx, xml);
}
