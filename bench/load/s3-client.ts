// The load generators' S3 client: SigV4-signed (api/auth/sign.ts, UNSIGNED-PAYLOAD) requests over keep-alive
// HTTP/1.1 connections (http1.ts), at most `concurrency` of them. Kept cheap on purpose: it shares the
// 2 vCPUs with the server under test, so bodies are never copied, and are hashed only when asked to.
//
// Timing: `ttfbMs` is request start → response headers (for GETs that is warp's "time to first byte";
// reference/erasure-jbod.md §9.2), the caller measures the whole request.

import { createHash, type Hash } from 'node:crypto';
import { signRequest } from '../../api/auth/sign.ts';
import { Http1Pool } from './http1.ts';

/** A request with no socket activity for this long is aborted and counted as an error. */
export const requestIdleTimeoutMs = 60_000;
/** Error response bodies are kept up to this size for the message. */
export const errorBodyBytesMax = 4096;
/** Bodies kept as text (listings, multipart XML) are cut at this size: untrusted input never decides memory. */
export const textBodyBytesMax = 8 * 1024 * 1024;

export interface ClientOptions {
  readonly endpoint: URL;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly region: string;
  readonly concurrency: number;
  /** https: accept any certificate (self-signed test servers) */
  readonly insecure?: boolean;
  /** https: trust these PEM certificates */
  readonly ca?: Buffer;
}

export interface S3Response {
  readonly status: number;
  /** lower-case names */
  readonly headers: Readonly<Record<string, string | undefined>>;
  readonly bodyBytes: number;
  /** MD5 of the body, with body: 'md5' */
  readonly md5Hex?: string;
  /** the body as text, with body: 'text' (capped at textBodyBytesMax), or the start of a non-2xx body */
  readonly text: string;
  /** request start → response headers, ms */
  readonly ttfbMs: number;
}

export type BodyHandling = 'discard' | 'md5' | 'text';

export class LoadError extends Error {
  override readonly name = 'LoadError';
}

export class S3Client {
  readonly options: ClientOptions;
  readonly #pool: Http1Pool;

  constructor(options: ClientOptions) {
    const { protocol } = options.endpoint;
    if (protocol !== 'http:' && protocol !== 'https:') throw new Error(`unsupported endpoint protocol ${protocol}`);
    this.options = options;
    this.#pool = new Http1Pool({
      protocol,
      hostname: options.endpoint.hostname.replace(/^\[|\]$/g, ''),
      port: Number(options.endpoint.port || (protocol === 'https:' ? 443 : 80)),
      ...(options.insecure === true ? { insecure: true } : {}),
      ...(options.ca === undefined ? {} : { ca: options.ca }),
    }, options.concurrency);
  }

  /** One request; resolves once the whole response body has been read (and hashed / kept as asked). */
  async send(method: string, path: string, extraHeaders: Readonly<Record<string, string>>, body: readonly Uint8Array[], handling: BodyHandling = 'discard'): Promise<S3Response> {
    const { options } = this;
    const url = new URL(path, options.endpoint);
    const bodyBytes = body.reduce((sum, piece) => sum + piece.length, 0);
    const headers = signRequest({
      method,
      url,
      headers: { ...extraHeaders, 'content-length': String(bodyBytes) },
      payloadHash: 'UNSIGNED-PAYLOAD',
      accessKeyId: options.accessKeyId,
      secretAccessKey: options.secretAccessKey,
      region: options.region,
      nowMs: Date.now(),
    });
    const startMs = performance.now();
    let ttfbMs = 0;
    let status = 0;
    let responseHeaders: Record<string, string> = {};
    let md5: Hash | undefined;
    let textLimitBytes = 0;
    const textPieces: Buffer[] = [];
    let textBytes = 0;
    let receivedBytes = 0;
    try {
      await this.#pool.request({
        method,
        target: url.pathname + url.search,
        headers,
        body,
        idleTimeoutMs: requestIdleTimeoutMs,
        onHead: (responseStatus, fields) => {
          ttfbMs = performance.now() - startMs;
          status = responseStatus;
          responseHeaders = fields;
          const ok = status >= 200 && status < 300;
          md5 = ok && handling === 'md5' ? createHash('md5') : undefined;
          textLimitBytes = ok ? (handling === 'text' ? textBodyBytesMax : 0) : errorBodyBytesMax;
        },
        onBody: (piece) => {
          receivedBytes += piece.length;
          md5?.update(piece);
          if (textBytes < textLimitBytes) {
            // The piece is a view of the connection's read buffer: keep a copy.
            const kept = Buffer.from(piece.subarray(0, textLimitBytes - textBytes));
            textPieces.push(kept);
            textBytes += kept.length;
          }
        },
      });
    } catch (error) {
      throw new LoadError((error as Error).message);
    }
    return {
      status,
      headers: responseHeaders,
      bodyBytes: receivedBytes,
      ...(md5 === undefined ? {} : { md5Hex: md5.digest('hex') }),
      text: Buffer.concat(textPieces).toString('utf8'),
      ttfbMs,
    };
  }

  close(): void {
    this.#pool.destroy();
  }
}

export function describeFailure(what: string, response: S3Response): LoadError {
  const code = /<Code>([^<]*)<\/Code>/.exec(response.text)?.[1];
  return new LoadError(`${what}: HTTP ${response.status}${code === undefined ? '' : ` ${code}`}`);
}

/** Creates the bucket unless it exists (owned by us). */
export async function ensureBucket(client: S3Client, bucket: string): Promise<'created' | 'existed'> {
  const response = await client.send('PUT', `/${bucket}`, {}, [], 'discard');
  if (response.status === 200) return 'created';
  if (response.status === 409 && /BucketAlreadyOwnedByYou/.test(response.text)) return 'existed';
  throw describeFailure(`create bucket ${bucket}`, response);
}

/** Percent-encodes an object key for a path, keeping '/' (S3 keys used by the bench are ASCII anyway). */
export function keyPath(bucket: string, key: string): string {
  return `/${bucket}/${key.split('/').map(encodeURIComponent).join('/')}`;
}
