// The S3 front end on uWebSockets.js: capture the request, authenticate, route to a handler, and render
// every failure as an S3 XML error from the one catalog (api/errors.ts).
import { createRequire } from 'node:module';
import type { HttpRequest, HttpResponse, TemplatedApp, us_listen_socket } from '@trufflesuite/uws-js-unofficial';
import type { ObjectEngine } from '../engine/types.ts';
import { StorageError } from '../engine/types.ts';
import { verifyRequest } from './auth/sigv4.ts';
import type { CredentialStore } from './auth/credentials.ts';
import { ClientAbortedError, RequestBody } from './body.ts';
import type { ServerSettings } from './config.ts';
import type { Handler, Observability, RequestContext } from './context.ts';
import { ServerMetrics } from './metrics.ts';
import { S3Error, isS3ErrorCode } from './errors.ts';
import { handlers } from './handlers/index.ts';
import { captureRequest, maxHeaderSectionBytes, newRequestId, type S3Request } from './request.ts';
import { ResponseWriter } from './response.ts';
import { route, type Operation } from './router.ts';
import { renderError } from './handlers/error-xml.ts';
import { log } from './log.ts';
import type { SseSettings } from './sse.ts';

const require = createRequire(import.meta.url);
const uws = require('@trufflesuite/uws-js-unofficial') as typeof import('@trufflesuite/uws-js-unofficial');

export interface ServerOptions {
  readonly engine: ObjectEngine;
  readonly settings: ServerSettings;
  readonly host: string;
  /** 0 picks a free port */
  readonly port: number;
  /** serve HTTPS with this PEM certificate chain and private key */
  readonly tls?: { readonly certFile: string; readonly keyFile: string };
  readonly sse: SseSettings;
  readonly observe: Observability;
}

export interface RunningServer {
  readonly host: string;
  readonly port: number;
  readonly endpoint: string;
  close(): Promise<void>;
}

/** The uWS package silently falls back to a pure-JS server on node:http when its binary fails to load. */
export function assertNativeUws(): void {
  if (typeof uws.SSLApp !== 'function') {
    throw new Error('uWebSockets.js native binary did not load (pure-JS fallback detected); refusing to start');
  }
}

function toS3Error(error: unknown, req: S3Request | undefined): S3Error | undefined {
  if (error instanceof S3Error) return error;
  if (error instanceof StorageError) {
    const details: Record<string, string> = {};
    if (req?.bucket) details.BucketName = req.bucket;
    if (req?.key) details.Key = req.key;
    if (error.kind === 'InternalError') return new S3Error('InternalError', undefined, details);
    return isS3ErrorCode(error.kind) ? new S3Error(error.kind, error.message === error.kind ? undefined : error.message, details) : undefined;
  }
  return undefined;
}

export class S3Server {
  private readonly credentials: CredentialStore;
  private listenSocket: us_listen_socket | undefined;
  readonly metrics = new ServerMetrics();
  private readonly inFlight = new Set<Promise<void>>();

  constructor(private readonly options: ServerOptions) {
    const { accessKey, secretKey } = options.settings;
    this.credentials = { secretFor: (id) => (id === accessKey ? secretKey : undefined) };
  }

  async listen(): Promise<RunningServer> {
    assertNativeUws();
    const tls = this.options.tls;
    const app: TemplatedApp = tls ? uws.SSLApp({ cert_file_name: tls.certFile, key_file_name: tls.keyFile }) : uws.App();
    app.any('/*', (res, req) => this.onRequest(res, req));
    const { host, port } = this.options;
    const socket = await new Promise<us_listen_socket>((resolve, reject) => {
      app.listen(host, port, (listenSocket) => {
        if (listenSocket) resolve(listenSocket);
        else reject(new Error(`cannot listen on ${host}:${port}`));
      });
    });
    this.listenSocket = socket;
    const boundPort = uws.us_socket_local_port(socket);
    const shownHost = host.includes(':') ? `[${host}]` : host;
    return {
      host,
      port: boundPort,
      endpoint: `${tls ? 'https' : 'http'}://${shownHost}:${boundPort}`,
      close: () => this.close(),
    };
  }

  private async close(): Promise<void> {
    if (this.listenSocket) uws.us_listen_socket_close(this.listenSocket);
    this.listenSocket = undefined;
    await Promise.allSettled([...this.inFlight]);
    await this.options.engine.close();
  }

  private onRequest(res: HttpResponse, httpRequest: HttpRequest): void {
    const requestId = newRequestId();
    const writer = new ResponseWriter(res, [
      ['Server', 'Coffer'],
      ['x-amz-request-id', requestId],
      ['x-amz-id-2', requestId],
      ['Accept-Ranges', 'bytes'],
    ]);
    let body: RequestBody | undefined;
    res.onAborted(() => {
      writer.markAborted();
      body?.abort();
    });
    let req: S3Request | undefined;
    try {
      req = captureRequest(httpRequest, requestId, this.options.settings.domains);
      const headers = req.headers;
      const hasBody =
        headers.has('transfer-encoding') || (headers.has('content-length') && headers.get('content-length') !== '0');
      body = new RequestBody(res, hasBody, () => writer.isOpen);
    } catch (error) {
      // A malformed request line: nothing was registered to read a body, so close after answering.
      body = new RequestBody(res, false, () => writer.isOpen);
      this.fail(writer, error, req, body);
      return;
    }
    const task = this.serve(req, body, writer);
    this.inFlight.add(task);
    void task.finally(() => this.inFlight.delete(task));
  }

  private async serve(req: S3Request, body: RequestBody, res: ResponseWriter): Promise<void> {
    const startedMs = performance.now();
    let operation: Operation | 'Unknown' = 'Unknown';
    try {
      if (req.headerBytes > maxHeaderSectionBytes) throw new S3Error('RequestHeaderSectionTooLarge');
      operation = route(req);
      if (operation === 'HealthLive' || operation === 'HealthReady') {
        res.send(200, [], '');
        return;
      }
      const auth = verifyRequest({ ...req, virtualHostBucket: req.virtualHost ? req.bucket : undefined }, this.credentials, Date.now());
      if (auth.kind === 'anonymous') throw new S3Error('AccessDenied');
      const handler: Handler = handlers[operation];
      const ctx: RequestContext = {
        req,
        res,
        body,
        auth,
        engine: this.options.engine,
        settings: this.options.settings,
        secure: this.options.tls !== undefined,
        sse: this.options.sse,
        metrics: this.metrics,
        observe: this.options.observe,
      };
      await handler(ctx);
      if (res.isOpen) throw new Error(`handler for ${operation} returned without responding`);
    } catch (error) {
      this.fail(res, error, req, body);
    } finally {
      const durationMs = performance.now() - startedMs;
      this.metrics.record(operation, res.aborted && !res.hasStarted ? 499 : res.status, durationMs, body.receivedBytes, res.bytesSent, res.errorCode);
      log.request({
        requestId: req.requestId,
        operation,
        method: req.method,
        bucket: req.bucket,
        status: res.aborted && !res.hasStarted ? 499 : res.status,
        durationMs: Math.round(durationMs * 100) / 100,
        bytesIn: body.receivedBytes,
        bytesOut: res.bytesSent,
      });
    }
  }

  private fail(res: ResponseWriter, error: unknown, req: S3Request | undefined, body: RequestBody): void {
    if (error instanceof ClientAbortedError || res.aborted) return;
    let s3Error = toS3Error(error, req);
    if (!s3Error) {
      log.error('unexpected failure', { requestId: req?.requestId, error: error instanceof Error ? error.stack ?? error.message : String(error) });
      s3Error = new S3Error('InternalError');
    }
    res.errorCode = s3Error.code;
    if (res.hasStarted) {
      // Mid-stream: the status line is out; cutting the connection is the only signal left.
      res.closeConnection();
      return;
    }
    const headers: Array<readonly [string, string]> = [];
    if (s3Error.code === 'InvalidRange' && s3Error.details.ActualObjectSize !== undefined) {
      headers.push(['Content-Range', `bytes */${s3Error.details.ActualObjectSize}`]);
    }
    // An unread request body is still on the socket: close the connection rather than drain it.
    const closeConnection = !body.isComplete;
    if (req?.method === 'HEAD' || s3Error.status === 304) {
      res.sendWithoutBody(s3Error.status, headers);
      return;
    }
    headers.push(['Content-Type', 'application/xml']);
    res.send(s3Error.status, headers, renderError(s3Error, req), closeConnection);
  }
}
