// The client commands' S3 client: path-style requests signed with SigV4 by api/auth/sign.ts (the same signer
// the load generator and tests use) over keep-alive node:http / node:https connections.
//
// Bodies are Buffers, hashed into x-amz-content-sha256 (so the server checks every byte we send, whether the
// link is TLS or not) and written in 256 KiB chunks with backpressure, progress callbacks and the optional
// process-wide throttle. Large objects are sent as 16 MiB multipart parts by cp.ts, so no body is bigger than
// a part (or a 64 MiB single PUT). Downloads are streamed (open()).
//
// Retries: only what a keep-alive client must tolerate — a reused pooled socket the server closed meanwhile
// (ECONNRESET / EPIPE before any response) and 503 SlowDown — at most `attemptsMax` times; the request is
// re-signed for each attempt.

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { Readable } from 'node:stream';
import tls from 'node:tls';
import { signRequest } from '../../api/auth/sign.ts';
import { parseXml, type XmlElement } from '../../api/xml.ts';
import { clientThrottle, type Throttle } from './throttle.ts';

/** A request with no socket activity for this long fails. */
export const requestIdleTimeoutMs = 120_000;
/** Response bodies read into memory (XML, JSON) are refused past this size. */
export const bufferedBodyBytesMax = 16 * 1024 * 1024;
/** Bodies are written in chunks of this size (progress and throttle granularity). */
const writeChunkBytes = 256 * 1024;
const attemptsMax = 3;
const retryDelayMs = 200;
/** Sockets per endpoint; cp's part parallelism stays below this. */
const socketsPerEndpointMax = 16;
/** System CA bundles of the common Linux families, read in addition to Node's bundled Mozilla roots. */
const systemCaBundlePaths = ['/etc/ssl/certs/ca-certificates.crt', '/etc/pki/tls/certs/ca-bundle.crt', '/etc/ssl/cert.pem'];

export interface EndpointConfig {
  /** http(s)://host[:port][/base-path] */
  readonly url: string;
  readonly accessKey: string;
  readonly secretKey: string;
  readonly region?: string;
}

export interface TlsConfig {
  /** extra PEM files to trust (--ca, COFFER_CA_FILE) */
  readonly caFiles: readonly string[];
  /** accept any certificate (--insecure) */
  readonly insecure: boolean;
}

export type HttpMethod = 'GET' | 'HEAD' | 'PUT' | 'POST' | 'DELETE';

export interface S3Request {
  readonly method: HttpMethod;
  readonly bucket?: string;
  readonly key?: string;
  /** sub-resources and parameters; '' values are sent bare (`?encryption`) */
  readonly query?: Readonly<Record<string, string>>;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: Buffer;
  /** called with the bytes written so far each time a chunk of the body is written (negative on a retry) */
  readonly onBodyProgress?: (deltaBytes: number) => void;
}

export interface S3Response {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Buffer;
}

export interface S3StreamResponse {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly stream: Readable;
}

/** An S3 error response (or a transport failure, with status 0). */
export class S3ClientError extends Error {
  readonly status: number;
  readonly code: string;
  readonly resource: string | undefined;
  constructor(status: number, code: string, message: string, resource?: string) {
    super(message);
    this.name = 'S3ClientError';
    this.status = status;
    this.code = code;
    this.resource = resource;
  }
}

/** RFC 3986 unreserved characters stay, everything else is %XX of its UTF-8 bytes (SigV4's UriEncode). */
export function uriEncode(text: string, keepSlash: boolean): string {
  let out = '';
  for (const byte of Buffer.from(text, 'utf8')) {
    const char = String.fromCharCode(byte);
    if (/[A-Za-z0-9\-._~]/.test(char) || (keepSlash && char === '/')) out += char;
    else out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

function sha256Hex(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

const statusCodes: Readonly<Record<number, string>> = {
  400: 'BadRequest', 403: 'AccessDenied', 404: 'NotFound', 405: 'MethodNotAllowed', 409: 'Conflict',
  412: 'PreconditionFailed', 416: 'InvalidRange', 500: 'InternalError', 501: 'NotImplemented', 503: 'ServiceUnavailable',
};

/** The S3 error from a non-2xx response: <Error><Code>…</Code><Message>…</Message></Error>, else the status. */
export function errorFromResponse(status: number, body: Buffer, what: string): S3ClientError {
  let code = statusCodes[status] ?? `HTTP${status}`;
  let message = '';
  let resource: string | undefined;
  if (body.length > 0) {
    try {
      const root = parseXml(body);
      if (root.name === 'Error') {
        code = childText(root, 'Code') ?? code;
        message = childText(root, 'Message') ?? '';
        resource = childText(root, 'Resource');
      }
    } catch {
      message = body.toString('utf8', 0, Math.min(body.length, 200)).trim();
    }
  }
  return new S3ClientError(status, code, `${what}: ${message === '' ? code : `${message} (${code})`}`, resource);
}

/** The text of the first direct child called `name`, or undefined. */
export function childText(parent: XmlElement, name: string): string | undefined {
  return parent.children.find((child) => child.name === name)?.text;
}

export function childrenNamed(parent: XmlElement, name: string): XmlElement[] {
  return parent.children.filter((child) => child.name === name);
}

let systemCaCache: string[] | undefined;

function systemCas(): string[] {
  if (systemCaCache !== undefined) return systemCaCache;
  const certificates: string[] = [...tls.rootCertificates];
  const extra = process.env['SSL_CERT_FILE'];
  for (const file of extra ? [extra, ...systemCaBundlePaths] : systemCaBundlePaths) {
    try {
      certificates.push(readFileSync(file, 'utf8'));
      break; // one system bundle is the whole system store
    } catch {
      // not this distribution's path
    }
  }
  systemCaCache = certificates;
  return certificates;
}

const liveAgents = new Set<http.Agent>();

/** Close every pooled connection, so the process can exit. */
export function closeAllClients(): void {
  for (const agent of liveAgents) agent.destroy();
  liveAgents.clear();
}

export class S3Client {
  readonly endpoint: URL;
  /** the endpoint's path prefix without a trailing slash ('' for the usual root) */
  private readonly basePath: string;
  private readonly accessKey: string;
  private readonly secretKey: string;
  readonly region: string;
  private readonly agent: http.Agent;
  private readonly transport: typeof http | typeof https;
  private readonly throttle: Throttle | undefined;

  constructor(config: EndpointConfig, tlsConfig: TlsConfig) {
    const url = new URL(config.url);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`endpoint ${config.url} must be http:// or https://`);
    if (url.search !== '' || url.hash !== '') throw new Error(`endpoint ${config.url} must not have a query or fragment`);
    this.endpoint = new URL(url.origin);
    this.basePath = url.pathname.replace(/\/+$/, '');
    this.accessKey = config.accessKey;
    this.secretKey = config.secretKey;
    this.region = config.region ?? 'us-east-1';
    const agentOptions = { keepAlive: true, maxSockets: socketsPerEndpointMax, maxFreeSockets: socketsPerEndpointMax };
    if (url.protocol === 'https:') {
      const ca = [...systemCas(), ...tlsConfig.caFiles.map((file) => readFileSync(file, 'utf8'))];
      this.agent = new https.Agent({ ...agentOptions, ca, rejectUnauthorized: !tlsConfig.insecure });
      this.transport = https;
    } else {
      this.agent = new http.Agent(agentOptions);
      this.transport = http;
    }
    liveAgents.add(this.agent);
    this.throttle = clientThrottle();
  }

  /** Same server and same credentials: a server-side CopyObject between the two is possible. */
  sameServerAs(other: S3Client): boolean {
    return this.endpoint.origin === other.endpoint.origin && this.basePath === other.basePath && this.accessKey === other.accessKey;
  }

  /** The URL path + query for a request, already percent-encoded, as it is signed and sent. */
  private target(request: S3Request): URL {
    let path = this.basePath;
    if (request.bucket !== undefined) path += `/${uriEncode(request.bucket, false)}`;
    if (request.key !== undefined) path += `/${uriEncode(request.key, true)}`;
    if (path === '') path = '/';
    const query = Object.entries(request.query ?? {})
      .map(([name, value]) => (value === '' ? uriEncode(name, false) : `${uriEncode(name, false)}=${uriEncode(value, false)}`))
      .join('&');
    const url = new URL(this.endpoint.origin);
    url.pathname = path;
    url.search = query === '' ? '' : `?${query}`;
    return url;
  }

  /** A request whose whole response body is read (bounded); non-2xx statuses throw S3ClientError. */
  async send(request: S3Request): Promise<S3Response> {
    const response = await this.sendWithRetries(request);
    const body = await readBounded(response.stream, bufferedBodyBytesMax);
    if (response.status < 200 || response.status >= 300) throw errorFromResponse(response.status, body, describe(request));
    return { status: response.status, headers: response.headers, body };
  }

  /** A request whose response body is handed over as a stream (downloads); non-2xx statuses throw. */
  async open(request: S3Request): Promise<S3StreamResponse> {
    const response = await this.sendWithRetries(request);
    if (response.status < 200 || response.status >= 300) {
      const body = await readBounded(response.stream, bufferedBodyBytesMax).catch(() => Buffer.alloc(0));
      throw errorFromResponse(response.status, body, describe(request));
    }
    return response;
  }

  /** Like send(), for an XML answer: the parsed root element. */
  async sendForXml(request: S3Request): Promise<XmlElement> {
    const response = await this.send(request);
    try {
      return parseXml(response.body);
    } catch {
      throw new S3ClientError(response.status, 'MalformedResponse', `${describe(request)}: the server's answer is not valid XML`);
    }
  }

  private async sendWithRetries(request: S3Request): Promise<S3StreamResponse> {
    for (let attempt = 1; ; attempt++) {
      let sentBytes = 0;
      const counted: S3Request = request.onBodyProgress === undefined ? request : {
        ...request,
        onBodyProgress: (delta) => {
          sentBytes += delta;
          request.onBodyProgress!(delta);
        },
      };
      try {
        const response = await this.sendOnce(counted);
        if (response.status === 503 && attempt < attemptsMax) {
          response.stream.resume();
          if (sentBytes > 0) request.onBodyProgress?.(-sentBytes);
          await delay(retryDelayMs * attempt);
          continue;
        }
        return response;
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        const retriable = (error as { staleSocket?: boolean }).staleSocket === true && (code === 'ECONNRESET' || code === 'EPIPE');
        if (!retriable || attempt >= attemptsMax) {
          if (error instanceof S3ClientError) throw error;
          throw new S3ClientError(0, code ?? 'NetworkError', `${describe(request)}: ${(error as Error).message}`);
        }
        if (sentBytes > 0) request.onBodyProgress?.(-sentBytes);
        await delay(retryDelayMs * attempt);
      }
    }
  }

  private sendOnce(request: S3Request): Promise<S3StreamResponse> {
    const url = this.target(request);
    const body = request.body ?? Buffer.alloc(0);
    const extraHeaders: Record<string, string> = { ...request.headers };
    if (request.method === 'PUT' || request.method === 'POST' || body.length > 0) extraHeaders['content-length'] = String(body.length);
    const headers = signRequest({
      method: request.method,
      url,
      headers: extraHeaders,
      payloadHash: sha256Hex(body),
      accessKeyId: this.accessKey,
      secretAccessKey: this.secretKey,
      region: this.region,
      nowMs: Date.now(),
    });
    return new Promise<S3StreamResponse>((resolve, reject) => {
      let settled = false;
      let bodyWritten = false;
      const outgoing = this.transport.request(
        {
          protocol: url.protocol,
          host: url.hostname.replace(/^\[|\]$/g, ''),
          port: url.port,
          method: request.method,
          path: url.pathname + url.search,
          headers,
          agent: this.agent,
        },
        (incoming) => {
          settled = true;
          // An early answer (an error before the whole body was sent): this socket is not reusable.
          if (!bodyWritten) incoming.once('end', () => outgoing.destroy());
          resolve({ status: incoming.statusCode ?? 0, headers: incoming.headers, stream: incoming });
        },
      );
      outgoing.setTimeout(requestIdleTimeoutMs, () => outgoing.destroy(Object.assign(new Error(`no answer for ${requestIdleTimeoutMs / 1000} s`), { code: 'ETIMEDOUT' })));
      outgoing.on('error', (error) => {
        // Node's advice: a reset on a reused keep-alive socket means the server closed it while idle; the
        // request never reached it, so it is safe to send again (on a fresh socket it may have been processed).
        if (!settled) reject(Object.assign(error, { staleSocket: outgoing.reusedSocket }));
      });
      this.writeBody(outgoing, body, request.onBodyProgress, () => settled, () => (bodyWritten = true)).catch((error: unknown) => {
        outgoing.destroy(error as Error);
      });
    });
  }

  /** Writes the body in chunks, waiting for drain and the throttle; stops early if the answer came already. */
  private async writeBody(
    outgoing: http.ClientRequest,
    body: Buffer,
    onProgress: ((delta: number) => void) | undefined,
    answered: () => boolean,
    onWritten: () => void,
  ): Promise<void> {
    for (let offset = 0; offset < body.length; offset += writeChunkBytes) {
      if (answered() || outgoing.destroyed) return;
      const chunk = body.subarray(offset, offset + writeChunkBytes);
      if (this.throttle) await this.throttle.take(chunk.length);
      const flushed = outgoing.write(chunk);
      onProgress?.(chunk.length);
      if (!flushed) await waitForDrain(outgoing);
    }
    if (answered() || outgoing.destroyed) return;
    onWritten();
    outgoing.end();
  }

  /** The throttle shared by uploads and downloads (downloads call it from cp.ts / cat.ts). */
  get sharedThrottle(): Throttle | undefined {
    return this.throttle;
  }
}

function waitForDrain(outgoing: http.ClientRequest): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = (): void => {
      outgoing.off('drain', done);
      outgoing.off('close', done);
      outgoing.off('response', done);
      resolve();
    };
    outgoing.on('drain', done);
    outgoing.on('close', done);
    outgoing.on('response', done);
  });
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function describe(request: S3Request): string {
  const what = request.key !== undefined ? `${request.bucket}/${request.key}` : request.bucket ?? '';
  return `${request.method} ${what === '' ? '/' : what}${request.query && Object.keys(request.query).length > 0 ? `?${Object.keys(request.query).join('&')}` : ''}`;
}

/** The whole stream as one Buffer, failing past `bytesMax` (an answer never decides how much memory we take). */
export async function readBounded(stream: Readable, bytesMax: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > bytesMax) {
      stream.destroy();
      throw new S3ClientError(0, 'ResponseTooLarge', `the server's answer is larger than ${bytesMax} bytes`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, total);
}
