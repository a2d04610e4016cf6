// CopyObject and UploadPartCopy: read the source through the engine and write it as a new object/part.
// x-amz-copy-source-if-* conditions, x-amz-metadata-directive, copy onto itself (REPLACE only), ranges.
import type { ObjectChecksum, ObjectReader } from '../../engine/types.ts';
import { createChecksumHasher, parseChecksumAlgorithm } from '../checksum.ts';
import { sendXml, type RequestContext } from '../context.ts';
import { S3Error } from '../errors.ts';
import { maxSinglePutBytes } from '../payload.ts';
import { s3XmlNamespace, xmlDocument } from '../xml.ts';
import { assertBucketName } from './bucket.ts';
import { evaluateConditions } from './conditions.ts';
import { isoDate, metadataFromHeaders, quoteEtag, refuseUnsupportedHeaders } from './metadata.ts';
import { checksumHeaders, maxPartSizeBytes, parsePartNumber, partEncryption } from './multipart.ts';
import { createEnvelope, dataEncryptionFor, keyForPartOf, openEnvelope, parseCopySourceCustomerKey, parseSseHeaders, resolveWriteSse, sseResponseHeaders } from '../sse.ts';
import type { ChecksumAlgorithm } from '../../engine/types.ts';

interface CopySource {
  readonly bucket: string;
  readonly key: string;
}

export function parseCopySource(header: string): CopySource {
  let text = header;
  const question = text.indexOf('?');
  if (question >= 0) {
    const versionId = new URLSearchParams(text.slice(question + 1)).get('versionId');
    if (versionId !== null && versionId !== 'null') throw new S3Error('NoSuchVersion');
    text = text.slice(0, question);
  }
  try {
    text = decodeURIComponent(text);
  } catch {
    throw new S3Error('InvalidArgument', 'Copy Source is not properly encoded.', { ArgumentName: 'x-amz-copy-source' });
  }
  if (text.startsWith('/')) text = text.slice(1);
  const slash = text.indexOf('/');
  if (slash <= 0 || slash === text.length - 1) {
    throw new S3Error('InvalidArgument', 'Copy Source must mention the source bucket and key: sourcebucket/sourcekey.', { ArgumentName: 'x-amz-copy-source' });
  }
  const source = { bucket: text.slice(0, slash), key: text.slice(slash + 1) };
  assertBucketName(source.bucket);
  return source;
}

async function* emptyBody(): AsyncGenerator<Buffer> {}

/** Hash the copied bytes for the destination's checksum (S3 recomputes it; it never trusts the source's). */
function checksummed(source: AsyncIterable<Buffer>, algorithm: ChecksumAlgorithm | undefined) {
  if (!algorithm) return { body: source, finish: (): ObjectChecksum | undefined => undefined };
  const hasher = createChecksumHasher(algorithm);
  async function* body(): AsyncGenerator<Buffer> {
    for await (const chunk of source) {
      hasher.update(chunk);
      yield chunk;
    }
  }
  return { body: body(), finish: (): ObjectChecksum => ({ algorithm, value: hasher.digestBase64(), type: 'FULL_OBJECT' }) };
}

interface OpenedSource {
  readonly source: CopySource;
  readonly reader: ObjectReader;
  /** data keys of an encrypted source (from the KMS, or the x-amz-copy-source-…-customer-key headers) */
  readonly keyForPart?: (partNumber: number) => Buffer;
}

async function openSource(ctx: RequestContext): Promise<OpenedSource> {
  const source = parseCopySource(ctx.req.headers.get('x-amz-copy-source') ?? '');
  const sourceCustomer = parseCopySourceCustomerKey(ctx.req.headers);
  if (sourceCustomer && !ctx.secure && !ctx.sse.allowSseCOverHttp) {
    throw new S3Error('InvalidRequest', 'Requests specifying Server Side Encryption with Customer provided keys must be made over a secure connection.');
  }
  const reader = await ctx.engine.openObject(source.bucket, source.key);
  try {
    evaluateConditions(ctx.req.headers, reader.info, 'x-amz-copy-source-');
    const record = reader.info.encryption;
    if (!record) {
      if (sourceCustomer) throw new S3Error('InvalidRequest', 'The encryption parameters are not applicable to this object.');
      return { source, reader };
    }
    const objectKey = await openEnvelope(record, source.bucket, source.key, sourceCustomer, ctx.sse);
    return { source, reader, keyForPart: keyForPartOf(record, objectKey) };
  } catch (error) {
    await reader.close();
    throw error;
  }
}

export async function copyObject(ctx: RequestContext): Promise<void> {
  const { req } = ctx;
  assertBucketName(req.bucket);
  refuseUnsupportedHeaders(req);
  const directive = (req.headers.get('x-amz-metadata-directive') ?? 'COPY').toUpperCase();
  if (directive !== 'COPY' && directive !== 'REPLACE') {
    throw new S3Error('InvalidArgument', 'Unknown metadata directive.', { ArgumentName: 'x-amz-metadata-directive' });
  }
  const { source, reader, keyForPart } = await openSource(ctx);
  try {
    const info = reader.info;
    const algorithmText = req.headers.get('x-amz-checksum-algorithm');
    const requestedAlgorithm = algorithmText === undefined ? undefined : parseChecksumAlgorithm(algorithmText);
    if (algorithmText !== undefined && !requestedAlgorithm) throw new S3Error('InvalidRequest', 'Checksum algorithm provided is unsupported.');
    const changesEncryption = parseSseHeaders(req.headers) !== undefined;
    if (source.bucket === req.bucket && source.key === req.key && directive === 'COPY' && !requestedAlgorithm && !changesEncryption) {
      throw new S3Error(
        'InvalidRequest',
        "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.",
      );
    }
    if (info.sizeBytes > maxSinglePutBytes) {
      throw new S3Error('InvalidRequest', 'The specified copy source is larger than the maximum allowable size for a copy source: 5368709120');
    }
    const metadata =
      directive === 'REPLACE'
        ? metadataFromHeaders(req)
        : { contentType: info.contentType, userMetadata: { ...info.userMetadata }, systemHeaders: { ...info.systemHeaders } };
    // The destination is encrypted as a new object would be (its own headers, else its bucket's default).
    const sse = resolveWriteSse(req.headers, await ctx.engine.getBucketEncryption(req.bucket), ctx.secure, ctx.sse);
    const envelope = sse ? await createEnvelope(sse, req.bucket, req.key, ctx.sse, false) : undefined;
    const bytes = info.sizeBytes === 0 ? emptyBody() : reader.read(0, info.sizeBytes - 1, keyForPart);
    const { body, finish } = checksummed(bytes, requestedAlgorithm ?? info.checksum?.algorithm);
    const copied = await ctx.engine.putObject(req.bucket, req.key, {
      body,
      expectedSizeBytes: info.sizeBytes,
      ...metadata,
      finish: () => finish(),
      ...(envelope ? { encryption: dataEncryptionFor(envelope, undefined, false) } : {}),
    });
    const checksumElement = copied.checksum ? { [`Checksum${copied.checksum.algorithm}`]: copied.checksum.value } : {};
    sendXml(
      ctx,
      xmlDocument('CopyObjectResult', { ETag: quoteEtag(copied.etag), LastModified: isoDate(copied.modTimeMs), ...checksumElement }, { xmlns: s3XmlNamespace }),
      200,
      [
        ...checksumHeaders(copied.checksum).filter(([name]) => name !== 'x-amz-checksum-type'),
        ...sseResponseHeaders(copied.encryption, sse?.type === 'SSE-C' ? sse : undefined),
      ],
    );
  } finally {
    await reader.close();
  }
}

function parseCopyRange(header: string | undefined, sizeBytes: number): { start: number; endInclusive: number } | undefined {
  if (header === undefined) return undefined;
  const match = /^bytes=(\d+)-(\d+)$/.exec(header.trim());
  if (!match) {
    throw new S3Error('InvalidArgument', 'The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy', { ArgumentName: 'x-amz-copy-source-range' });
  }
  const start = Number(match[1]);
  const endInclusive = Number(match[2]);
  if (endInclusive < start || endInclusive >= sizeBytes) {
    throw new S3Error('InvalidRange', undefined, { ActualObjectSize: String(sizeBytes) });
  }
  return { start, endInclusive };
}

export async function uploadPartCopy(ctx: RequestContext): Promise<void> {
  const { req } = ctx;
  assertBucketName(req.bucket);
  refuseUnsupportedHeaders(req);
  const partNumber = parsePartNumber(req.query.get('partNumber'));
  const uploadId = req.query.get('uploadId') ?? '';
  if (uploadId === '') throw new S3Error('NoSuchUpload');
  const { reader, keyForPart } = await openSource(ctx);
  try {
    const info = reader.info;
    const range = parseCopyRange(req.headers.get('x-amz-copy-source-range'), info.sizeBytes) ?? {
      start: 0,
      endInclusive: info.sizeBytes - 1,
    };
    const lengthBytes = range.endInclusive - range.start + 1;
    if (lengthBytes > maxPartSizeBytes) throw new S3Error('EntityTooLarge');
    const { encryption, customer, record } = await partEncryption(ctx, uploadId, partNumber);
    const bytes = lengthBytes === 0 ? emptyBody() : reader.read(range.start, range.endInclusive, keyForPart);
    const part = await ctx.engine.putPart(req.bucket, req.key, uploadId, partNumber, {
      body: bytes,
      expectedSizeBytes: lengthBytes,
      ...(encryption ? { encryption } : {}),
    });
    sendXml(
      ctx,
      xmlDocument('CopyPartResult', { ETag: quoteEtag(part.etag), LastModified: isoDate(part.modTimeMs) }, { xmlns: s3XmlNamespace }),
      200,
      sseResponseHeaders(record, customer),
    );
  } finally {
    await reader.close();
  }
}
