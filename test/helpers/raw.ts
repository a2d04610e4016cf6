// Hand-made S3 requests for tests that real SDKs will not send (tampered signatures, truncated bodies,
// malformed XML). Signed by AWS's own @smithy/signature-v4, an oracle independent of api/auth.
import { createHash, createHmac } from 'node:crypto';
import http from 'node:http';
import { SignatureV4 } from '@smithy/signature-v4';
import { NodeSha256 } from './node-sha256.ts';
import { accessKey, secretKey } from './server.ts';

export interface RawResponse {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
  readonly bodyBytes: number;
}

export interface RawRequest {
  readonly method: string;
  /** already percent-encoded */
  readonly path: string;
  readonly query?: Record<string, string>;
  readonly headers?: Record<string, string>;
  readonly body?: Buffer;
  /** sign with this secret instead of the right one */
  readonly secret?: string;
  readonly signingDate?: Date;
  /** value for x-amz-content-sha256; default: the real SHA-256 of the body */
  readonly payloadHash?: string;
  readonly unsigned?: boolean;
  /** build the body after signing, from the signed headers (aws-chunked bodies chain from the seed signature) */
  readonly bodyFor?: (signedHeaders: Record<string, string>) => Buffer;
}

export async function signRequest(endpoint: string, request: RawRequest): Promise<{ headers: Record<string, string>; path: string }> {
  const url = new URL(endpoint);
  const body = request.body ?? Buffer.alloc(0);
  const headers: Record<string, string> = {
    host: url.host,
    'x-amz-content-sha256': request.payloadHash ?? createHash('sha256').update(body).digest('hex'),
    ...request.headers,
  };
  const query = request.query ?? {};
  const search = new URLSearchParams(query).toString().replace(/\+/g, '%20');
  const path = request.path + (search ? `?${search}` : '');
  if (request.unsigned) return { headers, path };
  const signer = new SignatureV4({
    credentials: { accessKeyId: accessKey, secretAccessKey: request.secret ?? secretKey },
    region: 'us-east-1',
    service: 's3',
    sha256: NodeSha256,
    uriEscapePath: false,
    applyChecksum: false,
  });
  const signed = await signer.sign(
    { method: request.method, protocol: 'http:', hostname: url.hostname, port: Number(url.port), path: decodeURIComponent(request.path), query, headers, body },
    { signingDate: request.signingDate },
  );
  return { headers: signed.headers as Record<string, string>, path };
}

export async function rawRequest(endpoint: string, request: RawRequest): Promise<RawResponse> {
  const { headers, path } = await signRequest(endpoint, request);
  const body = request.bodyFor ? request.bodyFor(headers) : request.body;
  if (request.bodyFor) headers['content-length'] = String(body!.length);
  const url = new URL(endpoint);
  return new Promise<RawResponse>((resolve, reject) => {
    const req = http.request({ host: url.hostname, port: url.port, method: request.method, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: body.toString(), bodyBytes: body.length });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

export function errorCode(response: RawResponse): string | undefined {
  return /<Code>([^<]*)<\/Code>/.exec(response.body)?.[1];
}

const emptySha256 = createHash('sha256').update('').digest('hex');

/** An aws-chunked body with real chunk signatures (STREAMING-AWS4-HMAC-SHA256-PAYLOAD). */
export function signedChunkedBody(data: Buffer, chunkBytes: number, seedSignature: string, amzDate: string, secret: string = secretKey): Buffer {
  const date = amzDate.slice(0, 8);
  const scope = `${date}/us-east-1/s3/aws4_request`;
  let key: Buffer = createHmac('sha256', `AWS4${secret}`).update(date).digest();
  for (const part of ['us-east-1', 's3', 'aws4_request']) key = createHmac('sha256', key).update(part).digest();
  const pieces: Buffer[] = [];
  let previous = seedSignature;
  for (let offset = 0; ; offset += chunkBytes) {
    const chunk = data.subarray(offset, Math.min(offset + chunkBytes, data.length));
    const stringToSign = ['AWS4-HMAC-SHA256-PAYLOAD', amzDate, scope, previous, emptySha256, createHash('sha256').update(chunk).digest('hex')].join('\n');
    const signature = createHmac('sha256', key).update(stringToSign).digest('hex');
    pieces.push(Buffer.from(`${chunk.length.toString(16)};chunk-signature=${signature}\r\n`), chunk, Buffer.from('\r\n'));
    previous = signature;
    if (chunk.length === 0) break;
  }
  return Buffer.concat(pieces);
}
