// The request payload as the engine receives it: the socket body decoded per the SigV4 payload mode
// (aws-chunked with per-chunk signatures or trailers, or verified against x-amz-content-sha256), with
// Content-MD5 and the S3 additional checksum (header or trailer) verified before the engine commits.
import { createHash } from 'node:crypto';
import type { ChecksumAlgorithm, ObjectChecksum } from '../engine/types.ts';
import { checksumAlgorithms } from '../engine/types.ts';
import { decodeAwsChunked, type ChunkedTrailers } from './auth/chunked.ts';
import { createChecksumHasher, checksumHeaderName, parseChecksumAlgorithm, validateChecksumValue, type ChecksumHasher } from './checksum.ts';
import type { RequestContext } from './context.ts';
import { S3Error } from './errors.ts';
import { readSmallBody } from './body.ts';
import { xmlBodySizeBytesMax } from './xml.ts';

/** AWS's limit for a single PUT. */
export const maxSinglePutBytes = 5 * 1024 * 1024 * 1024;

export interface Payload {
  readonly body: AsyncIterable<Buffer>;
  /** the plaintext size the client announced (Content-Length or x-amz-decoded-content-length) */
  readonly sizeBytes: number | undefined;
  readonly trailers: ChunkedTrailers;
}

function parseLength(text: string | undefined, header: string): number | undefined {
  if (text === undefined) return undefined;
  if (!/^[0-9]{1,16}$/.test(text)) throw new S3Error('InvalidArgument', `Invalid ${header} header.`, { ArgumentName: header });
  return Number(text);
}

async function* verifySha256(source: AsyncIterable<Buffer>, expectedHex: string): AsyncGenerator<Buffer> {
  const hash = createHash('sha256');
  for await (const chunk of source) {
    hash.update(chunk);
    yield chunk;
  }
  if (hash.digest('hex') !== expectedHex.toLowerCase()) throw new S3Error('XAmzContentSHA256Mismatch');
}

export interface PayloadOptions {
  /** what the operation accepts (default: a single PUT's 5 GiB) */
  readonly maxBytes?: number;
  /**
   * The consumer copies or finishes with each chunk before pulling the next (the engine's writers): the
   * body may then reuse its receive buffers (api/body.ts). Not for aws-chunked bodies, whose decoder holds
   * views across pulls while it verifies a chunk signature.
   */
  readonly reusableChunks?: boolean;
}

/** The decoded request body. */
export function requestPayload(ctx: RequestContext, options: PayloadOptions = {}): Payload {
  const maxBytes = options.maxBytes ?? maxSinglePutBytes;
  const { req, auth } = ctx;
  const trailers: ChunkedTrailers = { headers: new Map() };
  const contentLength = parseLength(req.headers.get('content-length'), 'Content-Length');
  const payload = auth.payload;
  const streaming = payload.kind === 'streaming-signed' || payload.kind === 'streaming-unsigned-trailer';
  let sizeBytes: number | undefined;
  let body: AsyncIterable<Buffer>;
  if (streaming) {
    sizeBytes = parseLength(req.headers.get('x-amz-decoded-content-length'), 'x-amz-decoded-content-length');
    if (sizeBytes === undefined) throw new S3Error('MissingContentLength');
    body = decodeAwsChunked(
      ctx.body,
      {
        signing: payload.kind === 'streaming-signed' ? auth.signing : undefined,
        trailer: payload.kind === 'streaming-unsigned-trailer' || (payload.kind === 'streaming-signed' && payload.trailer),
        decodedLengthBytes: sizeBytes,
      },
      trailers,
    );
  } else {
    sizeBytes = contentLength;
    if (sizeBytes === undefined && !req.headers.has('transfer-encoding')) sizeBytes = 0;
    if (options.reusableChunks === true) ctx.body.reuseChunks();
    body = payload.kind === 'sha256' ? verifySha256(ctx.body, payload.hex) : ctx.body;
  }
  if (sizeBytes !== undefined && sizeBytes > maxBytes) throw new S3Error('EntityTooLarge');
  return { body, sizeBytes, trailers };
}

/** What the client asked of the S3 additional checksum for this upload. */
export interface ChecksumRequest {
  readonly algorithm: ChecksumAlgorithm;
  /** the value from a header, or 'trailer' when it comes in the aws-chunked trailer */
  readonly expected: string | 'trailer' | undefined;
}

export function checksumRequest(ctx: RequestContext, defaultAlgorithm?: ChecksumAlgorithm): ChecksumRequest | undefined {
  const headers = ctx.req.headers;
  const found: ChecksumRequest[] = [];
  for (const algorithm of checksumAlgorithms) {
    const value = headers.get(checksumHeaderName(algorithm));
    if (value !== undefined) {
      validateChecksumValue(algorithm, value);
      found.push({ algorithm, expected: value });
    }
  }
  const trailerNames = (headers.get('x-amz-trailer') ?? '').split(',').map((name) => name.trim().toLowerCase()).filter(Boolean);
  for (const name of trailerNames) {
    const algorithm = checksumAlgorithms.find((candidate) => checksumHeaderName(candidate) === name);
    if (!algorithm) throw new S3Error('InvalidRequest', `Unsupported trailer ${name}.`);
    found.push({ algorithm, expected: 'trailer' });
  }
  if (found.length > 1) throw new S3Error('InvalidRequest', 'Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.');
  const sdkAlgorithmText = headers.get('x-amz-sdk-checksum-algorithm') ?? headers.get('x-amz-checksum-algorithm');
  const sdkAlgorithm = sdkAlgorithmText === undefined ? undefined : parseChecksumAlgorithm(sdkAlgorithmText);
  if (sdkAlgorithmText !== undefined && !sdkAlgorithm) {
    throw new S3Error('InvalidRequest', 'Checksum algorithm provided is unsupported. Please try again with any of the valid types: [CRC32, CRC32C, CRC64NVME, SHA1, SHA256]');
  }
  if (found[0]) {
    if (sdkAlgorithm && sdkAlgorithm !== found[0].algorithm) {
      throw new S3Error('InvalidRequest', 'Value for x-amz-sdk-checksum-algorithm header is invalid.');
    }
    return found[0];
  }
  const algorithm = sdkAlgorithm ?? defaultAlgorithm;
  return algorithm ? { algorithm, expected: undefined } : undefined;
}

function contentMd5Expected(ctx: RequestContext): string | undefined {
  const value = ctx.req.headers.get('content-md5');
  if (value === undefined) return undefined;
  const digest = Buffer.from(value, 'base64');
  if (digest.length !== 16 || digest.toString('base64') !== value.trim()) throw new S3Error('InvalidDigest');
  return digest.toString('hex');
}

/**
 * The verified payload for PutObject/UploadPart: the body (hashed on the way through for the additional
 * checksum) and the `finish` callback the engine runs before committing.
 */
export function verifiedPayload(
  ctx: RequestContext,
  payload: Payload,
  checksum: ChecksumRequest | undefined,
): { body: AsyncIterable<Buffer>; finish: (md5Hex: string) => ObjectChecksum | undefined } {
  const md5Expected = contentMd5Expected(ctx);
  const hasher: ChecksumHasher | undefined = checksum ? createChecksumHasher(checksum.algorithm) : undefined;
  // Module-level functions bound here rather than closures: tsx names every closure it creates, ~1 µs per PUT.
  return {
    body: hasher ? hashedChunks(payload.body, hasher) : payload.body,
    finish: finishVerification.bind(undefined, payload, checksum, hasher, md5Expected),
  };
}

async function* hashedChunks(source: AsyncIterable<Buffer>, hasher: ChecksumHasher): AsyncGenerator<Buffer> {
  for await (const chunk of source) {
    hasher.update(chunk);
    yield chunk;
  }
}

/** verifiedPayload's `finish`: Content-MD5 against the engine's MD5, then the x-amz-checksum-* (header or trailer). */
function finishVerification(
  payload: Payload,
  checksum: ChecksumRequest | undefined,
  hasher: ChecksumHasher | undefined,
  md5Expected: string | undefined,
  md5Hex: string,
): ObjectChecksum | undefined {
  if (md5Expected !== undefined && md5Expected !== md5Hex) throw new S3Error('BadDigest');
  if (!checksum || !hasher) return undefined;
  const actual = hasher.digestBase64();
  let expected = checksum.expected;
  if (expected === 'trailer') {
    expected = payload.trailers.headers.get(checksumHeaderName(checksum.algorithm));
    if (expected === undefined) throw new S3Error('InvalidRequest', `The trailer ${checksumHeaderName(checksum.algorithm)} was declared but not sent.`);
    validateChecksumValue(checksum.algorithm, expected);
  }
  if (expected !== undefined && expected !== actual) {
    throw new S3Error('BadDigest', `The ${checksum.algorithm} you specified did not match the calculated checksum.`);
  }
  return { algorithm: checksum.algorithm, value: actual, type: 'FULL_OBJECT' };
}

/**
 * A small XML request body (DeleteObjects, CompleteMultipartUpload, PutBucketEncryption, CreateBucket …),
 * read whole up to `xmlBodySizeBytesMax` and verified like any payload: SigV4 hash or chunk signatures,
 * Content-MD5, x-amz-checksum-*.
 */
export async function readVerifiedXmlBody(ctx: RequestContext, options: { checksumHeaders: boolean } = { checksumHeaders: true }): Promise<Buffer> {
  const payload = requestPayload(ctx, { maxBytes: xmlBodySizeBytesMax });
  // On CompleteMultipartUpload an x-amz-checksum-* header names the whole object's checksum, not the body's.
  const { body, finish } = verifiedPayload(ctx, payload, options.checksumHeaders ? checksumRequest(ctx) : undefined);
  const document = await readSmallBody(body, xmlBodySizeBytesMax, () => new S3Error('MalformedXML', 'The request body is too large.'));
  finish(createHash('md5').update(document).digest('hex'));
  return document;
}
