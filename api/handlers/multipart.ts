// Multipart uploads: CreateMultipartUpload, UploadPart, CompleteMultipartUpload, AbortMultipartUpload,
// ListParts. (UploadPartCopy lives with CopyObject in copy.ts.)
import type { ChecksumType, ObjectChecksum, PartInfo } from '../../engine/types.ts';
import { readSmallBody } from '../body.ts';
import { checksumHeaderName, combineCrc, compositeChecksum, isCrcAlgorithm, parseChecksumAlgorithm } from '../checksum.ts';
import { sendXml, type RequestContext } from '../context.ts';
import { S3Error } from '../errors.ts';
import { checksumRequest, requestPayload, verifiedPayload } from '../payload.ts';
import type { HeaderList } from '../response.ts';
import { parseCompleteMultipartUpload, s3XmlNamespace, xmlBodySizeBytesMax, xmlDocument, type XmlObject } from '../xml.ts';
import { assertBucketName, owner } from './bucket.ts';
import { isoDate, metadataFromHeaders, quoteEtag, refuseUnsupportedHeaders } from './metadata.ts';

export const maxPartSizeBytes = 5 * 1024 * 1024 * 1024;
const maxPartsPerListing = 1000;

function uploadIdOf(ctx: RequestContext): string {
  const uploadId = ctx.req.query.get('uploadId') ?? '';
  if (uploadId === '') throw new S3Error('NoSuchUpload');
  return uploadId;
}

export function parsePartNumber(text: string | undefined): number {
  const partNumber = text !== undefined && /^\d{1,5}$/.test(text) ? Number(text) : NaN;
  if (!(partNumber >= 1 && partNumber <= 10000)) {
    throw new S3Error('InvalidArgument', 'Part number must be an integer between 1 and 10000, inclusive', { ArgumentName: 'partNumber' });
  }
  return partNumber;
}

export function checksumHeaders(checksum: ObjectChecksum | undefined): HeaderList {
  return checksum ? [[checksumHeaderName(checksum.algorithm), checksum.value], ['x-amz-checksum-type', checksum.type]] : [];
}

export async function createMultipartUpload(ctx: RequestContext): Promise<void> {
  const { req } = ctx;
  assertBucketName(req.bucket);
  refuseUnsupportedHeaders(req);
  const metadata = metadataFromHeaders(req);
  const algorithmText = req.headers.get('x-amz-checksum-algorithm');
  const checksumAlgorithm = algorithmText === undefined ? undefined : parseChecksumAlgorithm(algorithmText);
  if (algorithmText !== undefined && !checksumAlgorithm) throw new S3Error('InvalidRequest', 'Checksum algorithm provided is unsupported.');
  const typeText = req.headers.get('x-amz-checksum-type')?.toUpperCase();
  if (typeText !== undefined && typeText !== 'COMPOSITE' && typeText !== 'FULL_OBJECT') {
    throw new S3Error('InvalidRequest', 'Value for x-amz-checksum-type header is invalid.');
  }
  let checksumType: ChecksumType | undefined;
  if (checksumAlgorithm) {
    // AWS defaults: CRC64NVME is full-object only; the others default to composite.
    checksumType = (typeText as ChecksumType | undefined) ?? (checksumAlgorithm === 'CRC64NVME' ? 'FULL_OBJECT' : 'COMPOSITE');
    if (checksumType === 'FULL_OBJECT' && !isCrcAlgorithm(checksumAlgorithm)) {
      throw new S3Error('InvalidRequest', `The FULL_OBJECT checksum type cannot be used with the ${checksumAlgorithm} checksum algorithm.`);
    }
    if (checksumType === 'COMPOSITE' && checksumAlgorithm === 'CRC64NVME') {
      throw new S3Error('InvalidRequest', 'The COMPOSITE checksum type cannot be used with the CRC64NVME checksum algorithm.');
    }
  }
  const upload = await ctx.engine.createMultipartUpload(req.bucket, req.key, { ...metadata, checksumAlgorithm, checksumType });
  const headers: HeaderList = checksumAlgorithm
    ? [['x-amz-checksum-algorithm', checksumAlgorithm], ['x-amz-checksum-type', checksumType!]]
    : [];
  sendXml(
    ctx,
    xmlDocument('InitiateMultipartUploadResult', { Bucket: req.bucket, Key: req.key, UploadId: upload.uploadId }, { xmlns: s3XmlNamespace }),
    200,
    headers,
  );
}

export async function uploadPart(ctx: RequestContext): Promise<void> {
  const { req } = ctx;
  assertBucketName(req.bucket);
  refuseUnsupportedHeaders(req);
  const partNumber = parsePartNumber(req.query.get('partNumber'));
  const uploadId = uploadIdOf(ctx);
  const payload = requestPayload(ctx, maxPartSizeBytes);
  const { body, finish } = verifiedPayload(ctx, payload, checksumRequest(ctx));
  const part = await ctx.engine.putPart(req.bucket, req.key, uploadId, partNumber, {
    body,
    expectedSizeBytes: payload.sizeBytes,
    finish,
  });
  ctx.res.send(200, [['ETag', quoteEtag(part.etag)], ...checksumHeaders(part.checksum)], '');
}

export async function completeMultipartUpload(ctx: RequestContext): Promise<void> {
  const { req } = ctx;
  assertBucketName(req.bucket);
  const uploadId = uploadIdOf(ctx);
  const document = await readSmallBody(requestPayload(ctx, xmlBodySizeBytesMax).body, xmlBodySizeBytesMax, () => new S3Error('MalformedXML', 'The request body is too large.'));
  const requested = parseCompleteMultipartUpload(document);
  const { upload } = await ctx.engine.listParts(req.bucket, req.key, uploadId, 0, 1);
  const algorithm = upload.checksumAlgorithm;
  const parts = requested.map((part) => ({
    partNumber: part.partNumber,
    etag: part.etag,
    checksum: algorithm ? part.checksums[algorithm] : undefined,
  }));
  const finish = (stored: readonly PartInfo[]): ObjectChecksum | undefined => {
    if (!algorithm) return undefined;
    const values: string[] = [];
    for (const part of stored) {
      if (part.checksum?.algorithm !== algorithm) {
        throw new S3Error('InvalidPart', `Part ${part.partNumber} was uploaded without a ${algorithm} checksum.`);
      }
      values.push(part.checksum.value);
    }
    const type: ChecksumType = upload.checksumType ?? 'COMPOSITE';
    const value =
      type === 'FULL_OBJECT' && isCrcAlgorithm(algorithm)
        ? combineCrc(algorithm, stored.map((part, index) => ({ checksumBase64: values[index]!, sizeBytes: part.sizeBytes })))
        : compositeChecksum(algorithm, values);
    const expected = req.headers.get(checksumHeaderName(algorithm));
    if (expected !== undefined && expected !== value) {
      throw new S3Error('BadDigest', `The ${algorithm} you specified did not match the calculated checksum.`);
    }
    return { algorithm, value, type };
  };
  const info = await ctx.engine.completeMultipartUpload(req.bucket, req.key, uploadId, parts, finish);
  const body: XmlObject = {
    Location: `/${req.bucket}/${req.key}`,
    Bucket: req.bucket,
    Key: req.key,
    ETag: quoteEtag(info.etag),
    ...(info.checksum ? { [`Checksum${info.checksum.algorithm}`]: info.checksum.value, ChecksumType: info.checksum.type } : {}),
  };
  sendXml(ctx, xmlDocument('CompleteMultipartUploadResult', body, { xmlns: s3XmlNamespace }));
}

export async function abortMultipartUpload(ctx: RequestContext): Promise<void> {
  assertBucketName(ctx.req.bucket);
  await ctx.engine.abortMultipartUpload(ctx.req.bucket, ctx.req.key, uploadIdOf(ctx));
  ctx.res.send(204, [], '');
}

export async function listParts(ctx: RequestContext): Promise<void> {
  const { req } = ctx;
  assertBucketName(req.bucket);
  const uploadId = uploadIdOf(ctx);
  const markerText = req.query.get('part-number-marker') ?? '0';
  if (!/^\d{1,5}$/.test(markerText)) throw new S3Error('InvalidArgument', 'Invalid part-number-marker', { ArgumentName: 'part-number-marker' });
  const maxText = req.query.get('max-parts');
  if (maxText !== undefined && !/^\d{1,10}$/.test(maxText)) throw new S3Error('InvalidArgument', 'Invalid max-parts', { ArgumentName: 'max-parts' });
  const maxParts = Math.min(maxText === undefined ? maxPartsPerListing : Number(maxText), maxPartsPerListing);
  const page = await ctx.engine.listParts(req.bucket, req.key, uploadId, Number(markerText), maxParts);
  const xml = xmlDocument(
    'ListPartsResult',
    {
      Bucket: req.bucket,
      Key: req.key,
      UploadId: uploadId,
      PartNumberMarker: Number(markerText),
      NextPartNumberMarker: page.nextPartNumberMarker,
      MaxParts: maxParts,
      IsTruncated: page.isTruncated,
      Part: page.parts.map((part) => ({
        PartNumber: part.partNumber,
        LastModified: isoDate(part.modTimeMs),
        ETag: quoteEtag(part.etag),
        Size: part.sizeBytes,
        ...(part.checksum ? { [`Checksum${part.checksum.algorithm}`]: part.checksum.value } : {}),
      })),
      Initiator: owner,
      Owner: owner,
      StorageClass: 'STANDARD',
      ChecksumAlgorithm: page.upload.checksumAlgorithm,
      ChecksumType: page.upload.checksumType,
    },
    { xmlns: s3XmlNamespace },
  );
  sendXml(ctx, xml);
}
