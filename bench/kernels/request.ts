// Request-path kernels that are not per-byte crypto: SigV4 verification (header auth as an SDK sends it, a
// presigned GET made by AWS's own presigner), the aws-chunked decoder, and the coffer.meta record codec with
// JSON as a yardstick. (Moved here from bench/kernels.bench.ts, unchanged in what they measure.)

import { createHash, randomBytes } from 'node:crypto';
import { SignatureV4 } from '@smithy/signature-v4';
import { StaticCredentialStore } from '../../api/auth/credentials.ts';
import { decodeAwsChunked, type ChunkedTrailers } from '../../api/auth/chunked.ts';
import { signRequest } from '../../api/auth/sign.ts';
import {
  emptySha256Hex, hmacSha256, sha256Hex, streamingSignedPayload, verifyRequest, type RequestToVerify, type SigningContext,
} from '../../api/auth/sigv4.ts';
import { decodeObjectMeta, encodeObjectMeta, singleDriveErasure, type ObjectMetaFile } from '../../engine/meta.ts';
import { must, mebibyte, type KernelSpec } from './harness.ts';
import { NodeSha256 } from '../../test/helpers/node-sha256.ts';

/** The SDKs' aws-chunked chunk size. */
const chunkSizeBytes = 64 * 1024;
/** What a socket hands the decoder at a time (not aligned with chunk boundaries). */
const socketReadBytes = 60 * 1024;

const accessKeyId = 'benchaccesskey';
const secretAccessKey = 'bench-secret-access-key-0123456789';
const region = 'us-east-1';
const credentials = new StaticCredentialStore([[accessKeyId, secretAccessKey]]);
const nowMs = Date.now();

// ------------------------------------------------------------------------------------------- inputs

function receivedRequest(method: string, url: URL, headers: Record<string, string>): RequestToVerify {
  return { method, rawPath: url.pathname, rawQuery: url.search.slice(1), headers: new Map(Object.entries(headers)) };
}

/** A PUT as an AWS SDK sends it over plain HTTP: SDK headers, user metadata, UNSIGNED-PAYLOAD. */
function typicalPutRequest(): RequestToVerify {
  const url = new URL('http://127.0.0.1:9000/coffer-bench/photos/2026/11/IMG_0042%20copy.jpg?x-id=PutObject');
  const headers = signRequest({
    method: 'PUT',
    url,
    headers: {
      'content-type': 'image/jpeg',
      'content-length': '1048576',
      'x-amz-meta-camera': 'X-T5',
      'x-amz-meta-album': 'autumn trip',
      'x-amz-user-agent': 'aws-sdk-js/3.1175.0',
      'amz-sdk-invocation-id': '0f5c9c3e-6c1a-4d5b-9a3e-8b1f2c7d4e60',
      'amz-sdk-request': 'attempt=1; max=3',
      'user-agent': 'aws-sdk-js/3.1175.0 ua/2.1 os/linux#6.1 lang/js md/nodejs#20.20.2 api/s3#3.1175.0',
    },
    payloadHash: 'UNSIGNED-PAYLOAD',
    accessKeyId, secretAccessKey, region, nowMs,
  });
  return receivedRequest('PUT', url, headers);
}

/** A presigned GET made by AWS's own presigner (as getSignedUrl does), with a response-* override. */
async function presignedGetRequest(): Promise<RequestToVerify> {
  const signer = new SignatureV4({ credentials: { accessKeyId, secretAccessKey }, region, service: 's3', sha256: NodeSha256, uriEscapePath: false });
  const presigned = await signer.presign(
    {
      method: 'GET', protocol: 'http:', hostname: '127.0.0.1', port: 9000,
      path: '/coffer-bench/photos/2026/11/IMG_0042%20copy.jpg',
      query: { 'response-content-disposition': 'attachment; filename="IMG_0042.jpg"', 'x-id': 'GetObject' },
      // as @aws-sdk/s3-request-presigner does: hoisted into the query as X-Amz-Content-Sha256
      headers: { host: '127.0.0.1:9000', 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' },
    },
    { expiresIn: 3600, signingDate: new Date(nowMs) },
  );
  const search = Object.entries(presigned.query ?? {})
    .map(([name, value]) => `${encodeURIComponent(name)}=${encodeURIComponent(String(value))}`)
    .join('&');
  return receivedRequest('GET', new URL(`http://127.0.0.1:9000${presigned.path}?${search}`), { host: '127.0.0.1:9000' });
}

/** A 3-part multipart object with user metadata and a checksum, as the engine stores it. */
function realisticObjectMeta(): ObjectMetaFile {
  const partSizeBytes = 8 * mebibyte;
  const modTimeMs = Date.UTC(2026, 10, 27, 12, 0, 0);
  const parts = [1, 2, 3].map((n) => ({
    n,
    size: n === 3 ? 3 * mebibyte + 12_345 : partSizeBytes,
    etag: createHash('md5').update(`part ${n}`).digest('hex'),
    checksum: { algorithm: 'CRC32C' as const, value: 'yZRlqg==', type: 'COMPOSITE' as const },
    mtime: modTimeMs - (4 - n) * 1000,
  }));
  return {
    versions: [{
      type: 'object',
      versionId: null,
      modTimeMs,
      sizeBytes: parts.reduce((sum, part) => sum + part.size, 0),
      etag: `${createHash('md5').update('parts').digest('hex')}-3`,
      contentType: 'video/mp4',
      userMetadata: {
        'x-amz-meta-camera': 'X-T5',
        'x-amz-meta-album': 'autumn trip 2026',
        'x-amz-meta-owner': 'zoë',
        'x-amz-meta-sha256': sha256Hex('original file'),
      },
      systemHeaders: { 'Cache-Control': 'max-age=86400', 'Content-Disposition': 'inline; filename="clip.mp4"' },
      checksum: { algorithm: 'CRC32C', value: 'q1w2eQ==-3', type: 'COMPOSITE' },
      parts,
      dataDir: '6f1d3c2a-8e4b-4f7a-9c1d-2b3e4f5a6b7c',
      inline: false,
      erasure: singleDriveErasure,
    }],
    inlineData: Buffer.alloc(0),
  };
}

/** A signed aws-chunked body of `data` in 64 KiB chunks, chained from the request's seed signature. */
function signedChunkedBody(data: Buffer, signing: SigningContext): Buffer {
  const pieces: Buffer[] = [];
  let previousSignature = signing.seedSignature;
  for (let offset = 0; ; offset += chunkSizeBytes) {
    const chunk = data.subarray(offset, Math.min(offset + chunkSizeBytes, data.length));
    const stringToSign = `AWS4-HMAC-SHA256-PAYLOAD\n${signing.amzDate}\n${signing.scope}\n${previousSignature}\n` +
      `${emptySha256Hex}\n${sha256Hex(chunk)}`;
    previousSignature = hmacSha256(signing.signingKey, stringToSign).toString('hex');
    pieces.push(Buffer.from(`${chunk.length.toString(16)};chunk-signature=${previousSignature}\r\n`), chunk, Buffer.from('\r\n'));
    if (chunk.length === 0) break;
  }
  return Buffer.concat(pieces);
}

function chunkedSigningContext(decodedLengthBytes: number): SigningContext {
  const url = new URL('http://127.0.0.1:9000/coffer-bench/chunked.bin');
  const headers = signRequest({
    method: 'PUT',
    url,
    headers: { 'content-encoding': 'aws-chunked', 'x-amz-decoded-content-length': String(decodedLengthBytes) },
    payloadHash: streamingSignedPayload,
    accessKeyId, secretAccessKey, region, nowMs,
  });
  const auth = verifyRequest(receivedRequest('PUT', url, headers), credentials, nowMs);
  if (auth.kind !== 'signed') throw new Error('chunked seed request did not verify');
  return auth.signing;
}

async function* socketReads(body: Buffer): AsyncGenerator<Uint8Array> {
  for (let offset = 0; offset < body.length; offset += socketReadBytes) yield body.subarray(offset, offset + socketReadBytes);
}

export async function requestKernels(): Promise<KernelSpec[]> {
  const putRequest = typicalPutRequest();
  const presignedGet = await presignedGetRequest();
  must(verifyRequest(putRequest, credentials, nowMs).kind === 'signed', 'PUT verifies');
  must(verifyRequest(presignedGet, credentials, nowMs).kind === 'signed', 'presigned GET verifies');

  const objectMeta = realisticObjectMeta();
  const encodedMeta = encodeObjectMeta(objectMeta);
  const jsonMeta = JSON.stringify(objectMeta.versions);
  must(decodeObjectMeta(encodedMeta, true).versions[0]!.parts.length === 3, 'coffer.meta round trip');

  const oneMebibyte = randomBytes(mebibyte);
  const chunkedSigning = chunkedSigningContext(mebibyte);
  const chunkedBody = signedChunkedBody(oneMebibyte, chunkedSigning);
  async function decodeChunkedOnce(): Promise<number> {
    const trailers: ChunkedTrailers = { headers: new Map() };
    let decodedBytes = 0;
    for await (const piece of decodeAwsChunked(socketReads(chunkedBody), { signing: chunkedSigning, trailer: false, decodedLengthBytes: mebibyte }, trailers)) {
      decodedBytes += piece.length;
    }
    return decodedBytes;
  }
  must((await decodeChunkedOnce()) === mebibyte, 'aws-chunked decodes to 1 MiB');

  let sink = 0;
  const specs: KernelSpec[] = [
    { group: 'sigv4', name: 'verify PUT header auth (SDK headers, key cache warm)', fn: () => verifyRequest(putRequest, credentials, nowMs) },
    { group: 'sigv4', name: 'verify presigned GET', fn: () => verifyRequest(presignedGet, credentials, nowMs) },
    { group: 'sigv4', name: 'aws-chunked decode 1 MiB signed (64 KiB chunks)', fn: decodeChunkedOnce, bytes: mebibyte },
    { group: 'meta', name: 'coffer.meta encode (3 parts + user meta)', fn: () => { sink += encodeObjectMeta(objectMeta).length; }, note: `${encodedMeta.length} B` },
    { group: 'meta', name: 'coffer.meta decode', fn: () => { sink += decodeObjectMeta(encodedMeta, true).versions.length; } },
    { group: 'meta', name: 'JSON.stringify (same record)', fn: () => { sink += JSON.stringify(objectMeta.versions).length; }, note: `${Buffer.byteLength(jsonMeta)} B` },
    { group: 'meta', name: 'JSON.parse (same record)', fn: () => { sink += (JSON.parse(jsonMeta) as unknown[]).length; } },
  ];
  if (sink < 0) throw new Error('unreachable');
  return specs;
}
