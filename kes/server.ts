// `coffer kes server`: a KES-compatible key server over HTTPS with mutual TLS (reference/sse-kms-kes.md §14).
// This file is the HTTP plumbing: TLS setup, routing a request to its route (api.ts), the method check
// (POST is accepted where PUT is expected, as kms-go sends POST), authentication and authorization (auth.ts),
// the per-route body limit and timeout, error rendering (errors.ts), metrics and the audit log.
//
// Order per request: route → method → identity + policy → body (bounded) → handler. Nothing is read from an
// unauthenticated client beyond the request head.

import { promises as fs } from 'node:fs';
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { TLSSocket } from 'node:tls';
import { createRoutes, type ApiContext, type ApiRequest, type ApiResponse, type Route } from './api.ts';
import { Authorizer, identify, type Caller } from './auth.ts';
import type { KesConfig } from './config.ts';
import { isKesError, kesErrors, type KesError } from './errors.ts';
import { generateKeyVersion } from './key-version.ts';
import { CachedKeyStore } from './keystore/cache.ts';
import { FsKeyStore } from './keystore/fs.ts';
import { InstrumentedKeyStore } from './keystore/instrumented.ts';
import type { KeyStore } from './keystore/keystore.ts';
import { MemoryKeyStore } from './keystore/memory.ts';
import { KesMetrics } from './metrics.ts';

/** KES `ReadHeaderTimeout`. */
export const headersTimeoutMs = 5_000;
export const idleTimeoutMs = 90_000;
/** PEM files (key, certificate, CA bundle) larger than this are refused. */
export const pemFileSizeBytesMax = 1024 * 1024;
export const caFilesMax = 1000;

export interface KesLog {
  error(line: string): void;
  audit(line: string): void;
}

export interface KesServerOptions {
  readonly config: KesConfig;
  /** overrides `config.address` (the `--addr` flag) */
  readonly address?: string;
  /** replaces the configured key-store backend (tests) */
  readonly keyStore?: KeyStore;
  /** the cache's backend status probe (KES: 10 s) */
  readonly cacheProbeIntervalMs?: number;
  readonly log?: Partial<KesLog>;
}

async function readPem(filePath: string, what: string): Promise<Buffer> {
  const stat = await fs.stat(filePath).catch((error: Error) => {
    throw new Error(`${what} ${filePath}: ${error.message}`);
  });
  if (stat.size > pemFileSizeBytesMax) throw new Error(`${what} ${filePath} is larger than ${pemFileSizeBytesMax} bytes`);
  return fs.readFile(filePath);
}

/** `tls.ca`: a PEM file or a directory of PEM files. */
async function readCaBundle(caPath: string): Promise<Buffer[]> {
  const stat = await fs.stat(caPath);
  if (!stat.isDirectory()) return [await readPem(caPath, 'tls.ca')];
  const names = (await fs.readdir(caPath)).filter((name) => !name.startsWith('.')).sort().slice(0, caFilesMax);
  const bundle: Buffer[] = [];
  for (const name of names) {
    const filePath = path.join(caPath, name);
    if ((await fs.stat(filePath)).isFile()) bundle.push(await readPem(filePath, 'tls.ca'));
  }
  return bundle;
}

async function openKeyStore(config: KesConfig, warn: (line: string) => void): Promise<KeyStore> {
  if (config.keyStore.kind === 'memory') return new MemoryKeyStore();
  const store = await FsKeyStore.open(config.keyStore.path);
  const mode = await store.directoryMode();
  if ((mode & 0o077) !== 0) warn(`WARNING: key directory ${config.keyStore.path} has mode ${mode.toString(8)}; others may read the keys (chmod 700)`);
  return store;
}

/** `HOST:PORT`, `[IPv6]:PORT` or `:PORT` (all interfaces). */
export function parseListenAddress(address: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(address.trim());
  const port = Number(match?.[3]);
  if (!match || port > 65535) throw new Error(`invalid address '${address}': expected HOST:PORT, [IPv6]:PORT or :PORT`);
  return { host: match[1] ?? (match[2] === '' ? '0.0.0.0' : match[2]!), port };
}

/** Route lookup: exact paths first, then the longest prefix route (paths ending in '/'). */
function findRoute(routes: readonly Route[], urlPath: string): Route | undefined {
  let best: Route | undefined;
  for (const route of routes) {
    if (route.path.endsWith('/')) {
      if (urlPath.startsWith(route.path) && (best === undefined || route.path.length > best.path.length)) best = route;
    } else if (route.path === urlPath) return route;
  }
  return best;
}

/** The decoded URL path (what policies match and what the resource is cut from), or undefined if malformed. */
function decodePath(url: string | undefined): string | undefined {
  if (url === undefined || !url.startsWith('/')) return undefined;
  const queryIndex = url.indexOf('?');
  const rawPath = queryIndex < 0 ? url : url.slice(0, queryIndex);
  try {
    return decodeURIComponent(rawPath);
  } catch {
    return undefined;
  }
}

async function readBody(request: IncomingMessage, maxBodyBytes: number): Promise<Buffer> {
  const declared = request.headers['content-length'];
  if (declared !== undefined && Number(declared) > maxBodyBytes) throw kesErrors.bodyTooLarge(maxBodyBytes);
  const chunks: Buffer[] = [];
  let totalBytes = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    totalBytes += chunk.length;
    if (totalBytes > maxBodyBytes) throw kesErrors.bodyTooLarge(maxBodyBytes);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, totalBytes);
}

export class KesServer {
  readonly adminIdentity: string;
  readonly keyStoreDescription: string;
  readonly #server: https.Server;
  readonly #keys: CachedKeyStore;
  readonly #metrics: KesMetrics;
  readonly #authorizer: Authorizer;
  readonly #routes: readonly Route[];
  readonly #verifyClientCertificates: boolean;
  readonly #log: KesLog;
  #closed = false;

  private constructor(
    server: https.Server,
    keys: CachedKeyStore,
    metrics: KesMetrics,
    authorizer: Authorizer,
    routes: readonly Route[],
    verifyClientCertificates: boolean,
    log: KesLog,
  ) {
    this.#server = server;
    this.#keys = keys;
    this.#metrics = metrics;
    this.#authorizer = authorizer;
    this.#routes = routes;
    this.#verifyClientCertificates = verifyClientCertificates;
    this.#log = log;
    this.adminIdentity = authorizer.adminIdentity;
    this.keyStoreDescription = keys.description;
  }

  static async start(options: KesServerOptions): Promise<KesServer> {
    const { config } = options;
    const log: KesLog = {
      error: options.log?.error ?? (config.log.error ? (line) => process.stderr.write(line + '\n') : () => {}),
      audit: options.log?.audit ?? (config.log.audit ? (line) => process.stdout.write(line + '\n') : () => {}),
    };
    const { host, port } = parseListenAddress(options.address ?? config.address);
    const key = await readPem(config.tls.keyPath, 'tls.key');
    const cert = await readPem(config.tls.certPath, 'tls.cert');
    const ca = config.tls.caPath !== undefined ? await readCaBundle(config.tls.caPath) : undefined;

    const metrics = new KesMetrics();
    const backend = options.keyStore ?? (await openKeyStore(config, log.error));
    const keys = new CachedKeyStore(
      new InstrumentedKeyStore(backend, (operation, result) => metrics.keyStoreOperation(operation, result)),
      {
        expiry: config.cache,
        ...(options.cacheProbeIntervalMs !== undefined ? { probeIntervalMs: options.cacheProbeIntervalMs } : {}),
        onLookup: (hit) => metrics.cacheLookup(hit),
      },
    );
    try {
      const authorizer = new Authorizer(config.adminIdentity, config.policies);

      // `keys:` — created when missing; an existing key is left alone (KES startup semantics).
      for (const name of config.keys) {
        const version = generateKeyVersion(config.adminIdentity);
        try {
          await keys.create(name, version);
        } catch (error) {
          if (!(isKesError(error) && error.status === 400)) throw error;
        } finally {
          version.key.fill(0);
          version.hmacKey?.fill(0);
        }
      }

      let routes: Route[] = [];
      const context: ApiContext = {
        keys,
        authorizer,
        metrics,
        startedAt: new Date(),
        cachedKeyCount: () => keys.size,
        routes: () => routes,
        logError: log.error,
      };
      routes = createRoutes(context);
      let anySkipAuth = false;
      for (const [routePath, override] of config.api) {
        const index = routes.findIndex((route) => route.path === routePath);
        if (index < 0) throw new Error(`api: '${routePath}' is not an API path (see GET /v1/api)`);
        const route = routes[index]!;
        if (override.skipAuth && route.auth === 'policy') anySkipAuth = true;
        routes[index] = {
          ...route,
          ...(override.skipAuth && route.auth === 'policy' ? { auth: 'none' as const } : {}),
          ...(override.timeoutMs !== undefined ? { timeoutMs: override.timeoutMs } : {}),
        };
      }

      const server = https.createServer({
        key,
        cert,
        ...(config.tls.password !== undefined ? { passphrase: config.tls.password } : {}),
        ...(ca !== undefined ? { ca } : {}),
        minVersion: 'TLSv1.2',
        // KES default RequireAnyClientCert: ask for a certificate, accept any (identity + policy decide).
        // `tls.auth: on` is RequireAndVerifyClientCert — done by node in the handshake — unless some route skips
        // auth, which (as in KES) downgrades to "verify if given" and leaves the check to each request.
        requestCert: true,
        rejectUnauthorized: config.tls.verifyClientCertificates && !anySkipAuth,
      });
      server.headersTimeout = headersTimeoutMs;
      server.requestTimeout = 60_000;
      server.keepAliveTimeout = idleTimeoutMs;
      const kes = new KesServer(server, keys, metrics, authorizer, routes, config.tls.verifyClientCertificates, log);
      server.on('request', (request: IncomingMessage, response: ServerResponse) => void kes.#handle(request, response));
      server.on('tlsClientError', () => {}); // a failed handshake is the client's problem, not a server error

      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          resolve();
        });
      });
      return kes;
    } catch (error) {
      await keys.close();
      throw error;
    }
  }

  get port(): number {
    return (this.#server.address() as AddressInfo).port;
  }

  get host(): string {
    return (this.#server.address() as AddressInfo).address;
  }

  get url(): string {
    const host = this.host.includes(':') ? `[${this.host}]` : this.host;
    return `https://${host === '0.0.0.0' ? '127.0.0.1' : host === '[::]' ? '[::1]' : host}:${this.port}`;
  }

  /** The cached key store (tests inspect its size). */
  get keys(): CachedKeyStore {
    return this.#keys;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await new Promise<void>((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
    await this.#keys.close();
  }

  async #handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const startedNs = process.hrtime.bigint();
    this.#metrics.requestStarted();
    let routeLabel = 'unknown';
    let identity = '';
    const urlPath = decodePath(request.url);
    response.once('close', () => {
      const latencySeconds = Number(process.hrtime.bigint() - startedNs) / 1e9;
      this.#metrics.requestFinished(routeLabel, response.statusCode, latencySeconds);
      this.#log.audit(
        JSON.stringify({
          time: new Date().toISOString(),
          request: { ip: request.socket.remoteAddress ?? '', path: urlPath ?? '', identity },
          response: { code: response.statusCode, time: Math.round(latencySeconds * 1e9) },
        }),
      );
    });

    let timer: NodeJS.Timeout | undefined;
    try {
      if (urlPath === undefined) throw kesErrors.invalidPath();
      const route = findRoute(this.#routes, urlPath);
      if (route === undefined) throw kesErrors.routeNotFound();
      routeLabel = route.path;
      if (request.method !== route.method && !(request.method === 'POST' && route.method === 'PUT')) {
        throw kesErrors.methodNotAllowed(request.method ?? '', route.method);
      }
      const timedOut = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(kesErrors.timeout(route.timeoutMs)), route.timeoutMs);
      });

      let caller: Caller | undefined;
      const socket = request.socket as TLSSocket;
      if (route.auth !== 'none') {
        identity = identify(socket, this.#verifyClientCertificates);
        if (route.auth === 'policy') caller = this.#authorizer.authorize(identity, urlPath);
      }
      const work = (async (): Promise<ApiResponse> => {
        const body = await readBody(request, route.maxBodyBytes);
        const apiRequest: ApiRequest = { resource: urlPath.slice(route.path.length), identity, body, ...(caller !== undefined ? { caller } : {}) };
        return route.handler(apiRequest);
      })();
      work.catch(() => {}); // a late failure after a timeout has nowhere to go
      const result = await Promise.race([work, timedOut]);
      this.#send(response, result);
    } catch (error) {
      this.#sendError(response, request, error);
    } finally {
      clearTimeout(timer);
    }
  }

  #send(response: ServerResponse, result: ApiResponse): void {
    if (response.headersSent || response.destroyed) return;
    if ('json' in result) {
      const body = Buffer.from(JSON.stringify(result.json) + '\n', 'utf8');
      response.writeHead(result.status, { 'Content-Type': 'application/json', 'Content-Length': body.length });
      response.end(body);
    } else if ('text' in result) {
      const body = Buffer.from(result.text, 'utf8');
      response.writeHead(result.status, { 'Content-Type': result.contentType, 'Content-Length': body.length });
      response.end(body);
    } else {
      response.writeHead(result.status, { 'Content-Length': 0 });
      response.end();
    }
  }

  #sendError(response: ServerResponse, request: IncomingMessage, error: unknown): void {
    let kesError: KesError;
    if (isKesError(error)) kesError = error;
    else {
      this.#log.error(`kes: ${request.method} ${decodePath(request.url) ?? '?'}: ${(error as Error)?.stack ?? String(error)}`);
      kesError = kesErrors.internal('internal server error');
    }
    if (response.headersSent || response.destroyed) return;
    const body = Buffer.from(JSON.stringify({ message: kesError.message }) + '\n', 'utf8');
    const headers: Record<string, string | number> = { 'Content-Type': 'application/json', 'Content-Length': body.length, ...kesError.headers };
    // The request body may be unread (413, timeout, auth failure): do not parse its rest as the next request.
    if (!request.complete) headers.Connection = 'close';
    response.writeHead(kesError.status, headers);
    response.end(body);
    if (!request.complete) response.once('finish', () => request.socket.destroySoon());
  }
}
