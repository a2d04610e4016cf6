// The load generators' S3 client: SigV4-signed (api/auth/sign.ts, UNSIGNED-PAYLOAD) requests over keep-alive
// node:http or node:https connections, at most `concurrency` sockets. Kept cheap on purpose: it shares the
// 2 vCPUs with the server under test, so bodies are never copied, and are hashed only when asked to.
//
// Timing: `ttfbMs` is request start → response headers (for GETs that is warp's "time to first byte";
// reference/erasure-jbod.md §9.2), the caller measures the whole request.

import { createHash, type Hash } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { signRequest } from '../../api/auth/sign.ts';

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
  readonly headers: http.IncomingHttpHeaders;
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
  readonly #agent: http.Agent;
  readonly #request: typeof http.request;

  constructor(options: ClientOptions) {
    if (options.endpoint.protocol !== 'http:' && options.endpoint.protocol !== 'https:') {
      throw new Error(`unsupported endpoint protocol ${options.endpoint.protocol}`);
    }
    this.options = options;
    const agentOptions = { keepAlive: true, maxSockets: options.concurrency, maxFreeSockets: options.concurrency };
    if (options.endpoint.protocol === 'https:') {
      this.#agent = new https.Agent({
        ...agentOptions,
        rejectUnauthorized: options.insecure !== true,
        ...(options.ca === undefined ? {} : { ca: options.ca }),
      });
      this.#request = https.request as unknown as typeof http.request;
    } else {
      this.#agent = new http.Agent(agentOptions);
      this.#request = http.request;
    }
  }

  /** One request; resolves once the whole response body has been read (and hashed / kept as asked). */
  send(method: string, path: string, extraHeaders: Readonly<Record<string, string>>, body: readonly Uint8Array[], handling: BodyHandling = 'discard'): Promise<S3Response> {
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
    return new Promise<S3Response>((resolve, reject) => {
      const request = this.#request(
        { host: url.hostname, port: url.port, method, path: url.pathname + url.search, headers, agent: this.#agent },
        (response) => {
          const ttfbMs = performance.now() - startMs;
          const status = response.statusCode ?? 0;
          const ok = status >= 200 && status < 300;
          const md5: Hash | undefined = ok && handling === 'md5' ? createHash('md5') : undefined;
          const textLimitBytes = ok ? (handling === 'text' ? textBodyBytesMax : 0) : errorBodyBytesMax;
          const textPieces: Buffer[] = [];
          let textBytes = 0;
          let receivedBytes = 0;
          response.on('data', (chunk: Buffer) => {
            receivedBytes += chunk.length;
            md5?.update(chunk);
            if (textBytes < textLimitBytes) {
              const piece = chunk.subarray(0, textLimitBytes - textBytes);
              textPieces.push(piece);
              textBytes += piece.length;
            }
          });
          response.on('end', () => resolve({
            status,
            headers: response.headers,
            bodyBytes: receivedBytes,
            ...(md5 === undefined ? {} : { md5Hex: md5.digest('hex') }),
            text: Buffer.concat(textPieces).toString('utf8'),
            ttfbMs,
          }));
          response.on('error', reject);
          response.on('aborted', () => reject(new LoadError('response aborted')));
        },
      );
      request.setTimeout(requestIdleTimeoutMs, () => request.destroy(new LoadError(`no activity for ${requestIdleTimeoutMs} ms`)));
      request.on('error', reject);
      for (let i = 0; i < body.length - 1; i++) request.write(body[i]);
      request.end(body.length === 0 ? undefined : body[body.length - 1]);
    });
  }

  close(): void {
    this.#agent.destroy();
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
