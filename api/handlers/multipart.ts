// Multipart uploads: CreateMultipartUpload, UploadPart, CompleteMultipartUpload, AbortMultipartUpload,
// ListParts. (UploadPartCopy lives with CopyObject in copy.ts.)
import type { ChecksumType, DataEncryption, EncryptionRecord, ObjectChecksum, PartInfo } from '../../engine/types.ts';
import { createEnvelope, dataEncryptionFor, openEnvelope, parseSseHeaders, resolveWriteSse, sseResponseHeaders, sseTypeOf, type CustomerKey } from '../sse.ts';
import { checksumHeaderName, combineCrc, compositeChecksum, isCrcAlgorithm, parseChecksumAlgorithm } from '../checksum.ts';
import { sendXml, type RequestContext } from '../context.ts';
import { S3Error } from '../errors.ts';
import { checksumRequest, readVerifiedXmlBody, requestPayload, verifiedPayload } from '../payload.ts';
import type { HeaderList } from '../response.ts';
import { parseCompleteMultipartUpload, s3XmlNamespace, xmlDocument, type XmlObject } from '../xml.ts';
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
  const sse = resolveWriteSse(req.headers, await ctx.engine.getBucketEncryption(req.bucket), ctx.secure, ctx.sse);
  const envelope = sse ? await createEnvelope(sse, req.bucket, req.key, ctx.sse, true) : undefined;
  const upload = await ctx.engine.createMultipartUpload(req.bucket, req.key, {
    ...metadata,
    checksumAlgorithm,
    checksumType,
    ...(envelope ? { encryption: envelope.record } : {}),
  });
  const headers: HeaderList = [
    ...(checksumAlgorithm ? ([['x-amz-checksum-algorithm', checksumAlgorithm], ['x-amz-checksum-type', checksumType!]] as const) : []),
    ...sseResponseHeaders(envelope?.record, sse?.type === 'SSE-C' ? sse : undefined),
  ];
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
  const payload = requestPayload(ctx, { maxBytes: maxPartSizeBytes, reusableChunks: true });
  const { encryption, customer, record } = await partEncryption(ctx, uploadId, partNumber);
  const { body, finish } = verifiedPayload(ctx, payload, checksumRequest(ctx));
  const part = await ctx.engine.putPart(req.bucket, req.key, uploadId, partNumber, {
    body,
    expectedSizeBytes: payload.sizeBytes,
    finish,
    ...(encryption ? { encryption } : {}),
  });
  ctx.res.send(200, [['ETag', quoteEtag(part.etag)], ...checksumHeaders(part.checksum), ...sseResponseHeaders(record, customer)], '');
}

/**
 * The encryption of part N of an upload: the upload's object key (from the KMS, or from the SSE-C key the
 * client must send again with every part) turned into that part's key and nonce.
 */
export async function partEncryption(
  ctx: RequestContext,
  uploadId: string,
  partNumber: number,
): Promise<{ encryption?: DataEncryption; customer?: CustomerKey; record?: EncryptionRecord }> {
  const { req } = ctx;
  const { upload } = await ctx.engine.listParts(req.bucket, req.key, uploadId, 0, 1);
  const requested = parseSseHeaders(req.headers);
  if (requested && requested.type !== 'SSE-C') {
    throw new S3Error('InvalidArgument', 'Server-side encryption is chosen when the multipart upload is created, not per part.');
  }
  const record = upload.encryption;
  if (!record) {
    if (requested) throw new S3Error('InvalidRequest', 'The encryption parameters are not applicable to this object.');
    return {};
  }
  if (sseTypeOf(record) === 'SSE-C' && !requested) {
    throw new S3Error('InvalidRequest', 'The multipart upload initiate requested encryption. Subsequent part requests must include the appropriate encryption parameters.');
  }
  const customer = requested?.type === 'SSE-C' ? requested : undefined;
  if (customer && !ctx.secure && !ctx.sse.allowSseCOverHttp) {
    throw new S3Error('InvalidRequest', 'Requests specifying Server Side Encryption with Customer provided keys must be made over a secure connection.');
  }
  const objectKey = await openEnvelope(record, req.bucket, req.key, customer, ctx.sse);
  return {
    encryption: dataEncryptionFor({ objectKey, record }, { uploadId, partNumber }, req.headers.has('content-md5')),
    record,
    ...(customer ? { customer } : {}),
  };
}

export async function completeMultipartUpload(ctx: RequestContext): Promise<void> {
  const { req } = ctx;
  assertBucketName(req.bucket);
  const uploadId = uploadIdOf(ctx);
  const requested = parseCompleteMultipartUpload(await readVerifiedXmlBody(ctx, { checksumHeaders: false }));
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
  sendXml(ctx, xmlDocument('CompleteMultipartUploadResult', body, { xmlns: s3XmlNamespace }), 200, sseResponseHeaders(info.encryption));
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
