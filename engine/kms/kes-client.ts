// The KES client: a `Kms` backed by one or more KES servers over mutual TLS (reference/sse-kms-kes.md §13.2, §13.3,
// §14.1–14.5; kms-go `kes/client.go`, `kes/retry.go`, `kes/error.go`; MinIO `internal/kms/kes.go`, `handleKMSConfig`).
//
// Wire: POST /v1/key/generate/{name} {"context": b64} → {"plaintext": b64(32 B), "ciphertext": b64}
//       POST /v1/key/decrypt/{name}  {"ciphertext": b64, "context": b64} → {"plaintext": b64}
//       POST /v1/key/create/{name}, GET /v1/key/describe/{name}, GET /v1/status; errors {"message"} + status.
// Authentication is the client certificate: its SPKI hash is the KES identity a policy must list (§14.2). An API key
// (`kes:v1:…`) becomes an Ed25519 key and a self-signed certificate, exactly as kms-go does.
//
// Load balancing follows kms-go's `loadBalancer.Send` (§13.3): endpoints sorted localhost → local network → remote; a
// localhost endpoint first in that order is always tried first; otherwise start at a random index and walk the ring
// skipping benched endpoints; an endpoint is benched for `benchMs` on a transport error or a 5xx other than 501, then
// exactly one probe request is let through; if every endpoint was skipped, one more pass ignores the benches. Per
// endpoint, kms-go's retrying HTTP client retries network errors and 503 twice after 200 ms + 0–800 ms.
//
// Nothing secret is ever put in an error or log line: not the API key, the client key, a data key or a ciphertext.
// Key names and endpoints are not secret and are named, so an operator can act on the message.

import { createPrivateKey, randomInt, X509Certificate } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import { promises as fs } from 'node:fs';
import https from 'node:https';
import { BlockList, isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import path from 'node:path';
import { ciphertextSizeBytesMax, contextSizeBytesMax, decodeStandardBase64 } from './builtin.ts';
import type { KesClientConfig } from './from-env.ts';
import { dataKeySizeBytes, isKmsError, KmsError, type DataKey, type Kms, type KmsErrorKind, type KmsStatus } from './kms.ts';
import { certificateFromApiKey, certificatePemSizeBytesMax, identityOfCertificate } from './x509.ts';

export interface KesClientOptions {
  /** one HTTP exchange (connect + TLS + request + response body); default 15000 (KES' own default route timeout) */
  readonly requestTimeoutMs?: number;
  /** how long an endpoint is skipped after a transport error or 5xx≠501; default 30000 (kms-go) */
  readonly benchMs?: number;
  /** retries per endpoint on a network error or 503; default 2 (kms-go) */
  readonly retries?: number;
  /** DescribeKey(default) period that keeps the key in KES' cache; default 10000, 0 = off (MinIO) */
  readonly keepWarmMs?: number;
  /** retry sleep = retryDelayMs + random [0, retryJitterMs); defaults 200 and 800 (kms-go) */
  readonly retryDelayMs?: number;
  readonly retryJitterMs?: number;
  /** no new attempt starts after this much time in one operation (a bound kms-go leaves to the caller); default 60000 */
  readonly operationDeadlineMs?: number;
}

export interface KesClientStats {
  /** operations sent (generate, decrypt, create, describe, status), and per route */
  readonly requests: number;
  readonly requestsByRoute: Readonly<Record<string, number>>;
  /** operations that ended in an error (any kind, including KeyNotFound) */
  readonly errors: number;
  /** times an endpoint failed and the request moved on to another endpoint */
  readonly failovers: number;
  readonly latencyMsTotal: number;
  /** endpoints currently benched */
  readonly benchedEndpoints: readonly string[];
}

/** Bodies KES sends back are tiny (a 32-byte key, a 76-byte ciphertext, a short message); kms-go reads ≤ 1 MiB. */
export const responseSizeBytesMax = 1024 * 1024;
/** Error messages from KES are echoed (sanitized) into ours, up to this length. */
const serverMessageLengthMax = 200;
const caFilesMax = 1000;
const keyFileSizeBytesMax = 1024 * 1024;
const socketsPerEndpointMax = 100; // Go transport MaxIdleConns 100
const idleSocketTimeoutMs = 60_000;
const dnsLookupTimeoutMs = 2_000; // kms-go prepareLoadBalancer
const classifyTimeoutMs = 10_000;
const optionTimeMsMax = 24 * 60 * 60 * 1000;
const retriesMax = 10;

const defaults = {
  requestTimeoutMs: 15_000,
  benchMs: 30_000,
  retries: 2,
  keepWarmMs: 10_000,
  retryDelayMs: 200,
  retryJitterMs: 800,
  operationDeadlineMs: 60_000,
} as const satisfies Required<KesClientOptions>;

/** KES resource names (§14.1): 1–80 of [0-9A-Za-z_-], '-' not first or last, not exactly '_'. */
const kesKeyNamePattern = /^(?!-)[0-9A-Za-z_-]{1,80}(?<!-)$/;

/** kms-go error identities (§14.4): status AND message, plus its two legacy spellings. */
const kesMessages = {
  keyNotFound: 'key does not exist',
  keyExists: 'key already exists',
  keyExistsLegacy: 'key does already exist',
  decryptFailed: 'decryption failed: ciphertext is not authentic',
} as const;

/** Certificate verification and TLS alerts: retrying the same endpoint cannot help (kms-go does not either). */
const tlsVerifyErrorCodes = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'INVALID_CA',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

type Route = 'generate' | 'decrypt' | 'create' | 'describe' | 'status';
const routePaths: Record<Route, string> = {
  generate: '/v1/key/generate/',
  decrypt: '/v1/key/decrypt/',
  create: '/v1/key/create/',
  describe: '/v1/key/describe/',
  status: '/v1/status',
};

interface HttpResponse {
  readonly status: number;
  readonly contentType: string;
  readonly body: Buffer;
}

/** The exchange with one endpoint failed below HTTP (connect, TLS, reset, timeout, oversized body). */
class TransportError extends Error {
  constructor(
    readonly endpoint: string,
    readonly code: string | undefined,
    message: string,
    /** kms-go retries network errors (incl. timeouts and resets), not certificate failures */
    readonly retryable: boolean,
  ) {
    super(message);
    this.name = 'TransportError';
  }

  get isTls(): boolean {
    return this.code !== undefined && (tlsVerifyErrorCodes.has(this.code) || this.code.startsWith('ERR_SSL_') || this.code.startsWith('ERR_TLS_'));
  }
}

function toTransportError(endpoint: string, error: unknown): TransportError {
  if (error instanceof TransportError) return error;
  const code = typeof (error as { code?: unknown })?.code === 'string' ? (error as { code: string }).code : undefined;
  const message = error instanceof Error ? error.message : String(error);
  const tls = code !== undefined && (tlsVerifyErrorCodes.has(code) || code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_'));
  return new TransportError(endpoint, code, tls ? `TLS: ${message}${code && !message.includes(code) ? ` (${code})` : ''}` : message, !tls);
}

/** One endpoint: its agent and the kms-go bench ("timeout") state. */
class Endpoint {
  readonly url: string;
  readonly base: URL;
  readonly agent: https.Agent;
  readonly locality: 'localhost' | 'local' | 'remote';
  /** when the current bench started; undefined = healthy */
  benchedAtMs: number | undefined;
  probing = false;

  constructor(url: string, agent: https.Agent, locality: Endpoint['locality']) {
    this.url = url;
    this.base = new URL(url);
    this.agent = agent;
    this.locality = locality;
  }

  /** kms-go `isInTimeout`: after the bench, exactly one caller gets `shouldProbe`. */
  checkBench(nowMs: number, benchMs: number): { benched: boolean; shouldProbe: boolean } {
    if (this.benchedAtMs === undefined) return { benched: false, shouldProbe: false };
    if (nowMs - this.benchedAtMs < benchMs) return { benched: true, shouldProbe: false };
    if (!this.probing) {
      this.probing = true;
      return { benched: false, shouldProbe: true };
    }
    return { benched: true, shouldProbe: false };
  }

  /** kms-go `setTimeout`: a failed probe restarts the bench; a failure while benched does not extend it. */
  bench(nowMs: number, asProbe: boolean): void {
    if (this.benchedAtMs === undefined) this.benchedAtMs = nowMs;
    if (asProbe) {
      this.probing = false;
      this.benchedAtMs = nowMs;
    }
  }

  clearBench(): void {
    this.benchedAtMs = undefined;
    this.probing = false;
  }
}

function benchWorthy(status: number): boolean {
  return status >= 500 && status !== 501;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function checkedOption(name: keyof KesClientOptions, value: number | undefined, fallback: number, min: number, max: number): number {
  const chosen = value ?? fallback;
  if (!Number.isInteger(chosen) || chosen < min || chosen > max) throw new Error(`KES client: option ${name} must be an integer in ${min}..${max}`);
  return chosen;
}

function sanitizeServerMessage(text: string): string {
  const cleaned = text.replace(/[\x00-\x1f\x7f]+/g, ' ').trim();
  return cleaned.length > serverMessageLengthMax ? `${cleaned.slice(0, serverMessageLengthMax)}…` : cleaned;
}

/** kms-go `parseErrorResponse`: JSON {"message"} or {"error"}, else the text body. Never throws. */
function serverMessage(response: HttpResponse): string {
  const text = response.body.toString('utf8');
  if (response.contentType.startsWith('application/json')) {
    try {
      const parsed: unknown = JSON.parse(text);
      if (typeof parsed === 'object' && parsed !== null) {
        const { message, error } = parsed as { message?: unknown; error?: unknown };
        if (typeof error === 'string' && error !== '') return sanitizeServerMessage(error);
        if (typeof message === 'string') return sanitizeServerMessage(message);
      }
    } catch {
      // fall through to the raw text
    }
  }
  return sanitizeServerMessage(text);
}

function parseJsonObject(response: HttpResponse, what: string, endpoints: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(response.body.toString('utf8'));
  } catch {
    throw new KmsError('Unavailable', `KES at ${endpoints}: ${what}: response is not JSON`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new KmsError('Unavailable', `KES at ${endpoints}: ${what}: response is not a JSON object`);
  }
  return parsed as Record<string, unknown>;
}

function base64Field(object: Record<string, unknown>, field: string, what: string, endpoints: string): Buffer {
  const value = object[field];
  const decoded = typeof value === 'string' ? decodeStandardBase64(value) : undefined;
  if (decoded === undefined) throw new KmsError('Unavailable', `KES at ${endpoints}: ${what}: response field '${field}' is missing or not base64`);
  return decoded;
}

function validateContext(context: Buffer): void {
  // §7.3: canonical context JSON, at least `{}` (same contract as the builtin KMS).
  if (!Buffer.isBuffer(context) || context.length < 2 || context[0] !== 0x7b || context[context.length - 1] !== 0x7d) {
    throw new KmsError('InvalidArgument', 'KMS context must be canonical context JSON (at least "{}")');
  }
  if (context.length > contextSizeBytesMax) throw new KmsError('InvalidArgument', `KMS context is ${context.length} bytes, over ${contextSizeBytesMax}`);
}

// ---- TLS material ----

async function readBoundedFile(filePath: string, sizeBytesMax: number, what: string): Promise<Buffer> {
  const handle = await fs.open(filePath, 'r').catch((error: unknown) => {
    throw new Error(`KES client: cannot open ${what} ${filePath}: ${(error as Error).message}`);
  });
  try {
    const { size } = await handle.stat();
    if (size > sizeBytesMax) throw new Error(`KES client: ${what} ${filePath} is larger than ${sizeBytesMax} bytes`);
    const buffer = Buffer.alloc(size);
    let offsetBytes = 0;
    while (offsetBytes < size) {
      const { bytesRead } = await handle.read(buffer, offsetBytes, size - offsetBytes, offsetBytes);
      if (bytesRead === 0) break;
      offsetBytes += bytesRead;
    }
    return buffer.subarray(0, offsetBytes);
  } finally {
    await handle.close();
  }
}

const pemCertificatePattern = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** PEM certificates from a CA file, or from every regular file of a CA directory (MinIO `certs/CAs` semantics). */
async function loadCaCertificates(caPath: string): Promise<string[]> {
  const stat = await fs.stat(caPath).catch((error: unknown) => {
    throw new Error(`KES client: MINIO_KMS_KES_CAPATH ${caPath}: ${(error as Error).message}`);
  });
  const files: string[] = [];
  if (stat.isDirectory()) {
    const entries = await fs.readdir(caPath, { withFileTypes: true });
    for (const entry of entries.slice(0, caFilesMax)) {
      const entryPath = path.join(caPath, entry.name);
      if (entry.isFile() || (entry.isSymbolicLink() && (await fs.stat(entryPath).catch(() => undefined))?.isFile())) files.push(entryPath);
    }
  } else {
    files.push(caPath);
  }
  const certificates: string[] = [];
  for (const file of files) {
    const text = (await readBoundedFile(file, certificatePemSizeBytesMax, 'CA file')).toString('utf8');
    for (const pem of text.match(pemCertificatePattern) ?? []) {
      try {
        new X509Certificate(pem);
        certificates.push(pem);
      } catch {
        // not a certificate we can use; MinIO skips what it cannot parse as well
      }
    }
  }
  if (certificates.length === 0) throw new Error(`KES client: MINIO_KMS_KES_CAPATH ${caPath}: no PEM certificates found`);
  return certificates;
}

interface ClientTls {
  readonly certPem: string;
  readonly keyPem: string;
  readonly identity: string;
}

async function loadClientTls(config: KesClientConfig): Promise<ClientTls> {
  if (config.apiKey !== undefined) {
    const { certPem, privateKey, identity } = certificateFromApiKey(config.apiKey);
    return { certPem, keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, identity };
  }
  if (config.certFile === undefined || config.keyFile === undefined) {
    throw new Error('KES client: a client certificate and key (MINIO_KMS_KES_CERT_FILE, MINIO_KMS_KES_KEY_FILE) or an API key is required');
  }
  const certPem = (await readBoundedFile(config.certFile, certificatePemSizeBytesMax, 'client certificate')).toString('utf8');
  const keyBytes = await readBoundedFile(config.keyFile, keyFileSizeBytesMax, 'client key');
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(certPem);
  } catch {
    throw new Error(`KES client: ${config.certFile} is not a PEM certificate`);
  }
  let keyPem: string;
  try {
    // Decrypt a password-protected (legacy PEM or PKCS#8) key once; the agent then gets plain PKCS#8.
    const privateKey = createPrivateKey({ key: keyBytes, format: 'pem', ...(config.keyPassword !== undefined && { passphrase: config.keyPassword }) });
    if (!certificate.checkPrivateKey(privateKey)) throw new Error(`KES client: the key in ${config.keyFile} does not belong to the certificate ${config.certFile}`);
    keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  } catch (error) {
    if (error instanceof Error && error.message.startsWith('KES client:')) throw error;
    const hint = config.keyPassword === undefined ? ' (encrypted? set MINIO_KMS_KES_KEY_PASSWORD)' : ' (or the password is wrong)';
    throw new Error(`KES client: cannot read the private key ${config.keyFile}${hint}`);
  } finally {
    keyBytes.fill(0);
  }
  return { certPem, keyPem, identity: identityOfCertificate(certPem) };
}

// ---- endpoint classification (kms-go prepareLoadBalancer) ----

function localNetworks(): { addresses: Set<string>; subnets: BlockList } {
  const addresses = new Set<string>();
  const subnets = new BlockList();
  for (const infos of Object.values(networkInterfaces())) {
    for (const info of infos ?? []) {
      addresses.add(info.address);
      const prefix = Number.parseInt(info.cidr?.split('/')[1] ?? '', 10);
      if (Number.isInteger(prefix)) subnets.addSubnet(info.address, prefix, info.family === 'IPv6' ? 'ipv6' : 'ipv4');
    }
  }
  return { addresses, subnets };
}

async function classifyEndpoint(url: string, networks: ReturnType<typeof localNetworks>): Promise<Endpoint['locality']> {
  const host = new URL(url).hostname.replace(/^\[|\]$/g, '');
  if (host === 'localhost' || host === '127.0.0.1') return 'localhost';
  let address = isIP(host) !== 0 ? host : undefined;
  if (address === undefined) {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), dnsLookupTimeoutMs);
      timer.unref();
    });
    address = await Promise.race([lookup(host).then((result) => result.address, () => undefined), timeout]);
    clearTimeout(timer);
  }
  if (address === undefined) return 'remote';
  if (networks.addresses.has(address)) return 'localhost';
  return networks.subnets.check(address, isIP(address) === 6 ? 'ipv6' : 'ipv4') ? 'local' : 'remote';
}

async function classifyEndpoints(urls: readonly string[]): Promise<Endpoint['locality'][]> {
  if (urls.length === 1) return ['remote']; // a single endpoint is never balanced
  const networks = localNetworks();
  const results: Endpoint['locality'][] = urls.map(() => 'remote');
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, classifyTimeoutMs);
    timer.unref();
  });
  await Promise.race([
    Promise.all(
      urls.map(async (url, i) => {
        results[i] = await classifyEndpoint(url, networks);
      }),
    ),
    deadline,
  ]);
  clearTimeout(timer);
  return [...results];
}

const localityRank: Record<Endpoint['locality'], number> = { localhost: 0, local: 1, remote: 2 };

// ---- the client ----

export class KesKms implements Kms {
  readonly defaultKeyName: string;
  /** this client's KES identity (public: the SPKI hash of its certificate) */
  readonly identity: string;
  readonly #endpoints: readonly Endpoint[];
  readonly #endpointList: string;
  readonly #options: Required<KesClientOptions>;
  #keepWarmTimer: NodeJS.Timeout | undefined;
  #keepWarmInFlight = false;
  #closed = false;
  #stats = { requests: 0, errors: 0, failovers: 0, latencyMsTotal: 0 };
  readonly #requestsByRoute: Record<Route, number> = { generate: 0, decrypt: 0, create: 0, describe: 0, status: 0 };

  private constructor(defaultKeyName: string, identity: string, endpoints: readonly Endpoint[], options: Required<KesClientOptions>) {
    this.defaultKeyName = defaultKeyName;
    this.identity = identity;
    this.#endpoints = endpoints;
    this.#endpointList = endpoints.map((endpoint) => endpoint.url).join(', ');
    this.#options = options;
  }

  /**
   * Load the client key/cert (or derive them from the API key), the CA (file or dir; when absent, Node's default
   * trust store), build one keep-alive https agent per endpoint, then run MinIO's startup: GenerateKey(default, '{}')
   * → on KeyNotFound CreateKey (KeyExists and PermissionDenied tolerated) → keep-warm DescribeKey every keepWarmMs.
   * Throws a clear Error when KES is unreachable, the TLS setup is wrong or the identity is not authorized.
   */
  static async connect(config: KesClientConfig, options: KesClientOptions = {}): Promise<KesKms> {
    const resolved: Required<KesClientOptions> = {
      requestTimeoutMs: checkedOption('requestTimeoutMs', options.requestTimeoutMs, defaults.requestTimeoutMs, 1, optionTimeMsMax),
      benchMs: checkedOption('benchMs', options.benchMs, defaults.benchMs, 0, optionTimeMsMax),
      retries: checkedOption('retries', options.retries, defaults.retries, 0, retriesMax),
      keepWarmMs: checkedOption('keepWarmMs', options.keepWarmMs, defaults.keepWarmMs, 0, optionTimeMsMax),
      retryDelayMs: checkedOption('retryDelayMs', options.retryDelayMs, defaults.retryDelayMs, 0, optionTimeMsMax),
      retryJitterMs: checkedOption('retryJitterMs', options.retryJitterMs, defaults.retryJitterMs, 0, optionTimeMsMax),
      operationDeadlineMs: checkedOption('operationDeadlineMs', options.operationDeadlineMs, defaults.operationDeadlineMs, 1, optionTimeMsMax),
    };
    if (config.endpoints.length === 0) throw new Error('KES client: no KES endpoint configured');
    for (const url of config.endpoints) {
      let parsed: URL;
      try {
        parsed = new URL(url);
      } catch {
        throw new Error(`KES client: invalid endpoint '${url}'`);
      }
      if (parsed.protocol !== 'https:') throw new Error(`KES client: endpoint ${url}: KES is HTTPS only`);
    }
    if (!kesKeyNamePattern.test(config.keyName) || config.keyName === '_') throw new Error(`KES client: invalid key name '${config.keyName}'`);

    const clientTls = await loadClientTls(config);
    const ca = config.caPath !== undefined ? await loadCaCertificates(config.caPath) : undefined;
    const localities = await classifyEndpoints(config.endpoints);
    const endpoints = config.endpoints
      .map((url, i) => {
        const agent = new https.Agent({
          keepAlive: true,
          maxSockets: socketsPerEndpointMax,
          maxFreeSockets: socketsPerEndpointMax,
          timeout: idleSocketTimeoutMs,
          maxCachedSessions: 100, // MinIO: client session cache of 100
          minVersion: 'TLSv1.2',
          cert: clientTls.certPem,
          key: clientTls.keyPem,
          ...(ca !== undefined && { ca }),
        });
        return new Endpoint(url, agent, localities[i]!);
      })
      .sort((a, b) => localityRank[a.locality] - localityRank[b.locality]); // stable: config order within a class

    const kms = new KesKms(config.keyName, clientTls.identity, endpoints, resolved);
    try {
      await kms.#startup();
    } catch (error) {
      await kms.close();
      throw error;
    }
    kms.#startKeepWarm();
    return kms;
  }

  /** MinIO `handleKMSConfig` (§13.2). */
  async #startup(): Promise<void> {
    const keyName = this.defaultKeyName;
    try {
      const dataKey = await this.generateKey(keyName, Buffer.from('{}'));
      dataKey.plaintext.fill(0);
      return;
    } catch (error) {
      if (!isKmsError(error, 'KeyNotFound')) throw this.#startupError(error, `/v1/key/generate/${keyName}`);
    }
    try {
      await this.createKey(keyName);
    } catch (error) {
      // Another node created it meanwhile, or this identity may only generate/decrypt: both are fine (MinIO).
      if (!isKmsError(error, 'KeyExists') && !isKmsError(error, 'PermissionDenied')) throw this.#startupError(error, `/v1/key/create/${keyName}`);
    }
  }

  #startupError(error: unknown, apiPath: string): Error {
    const where = `KES at ${this.#endpointList}`;
    if (isKmsError(error, 'PermissionDenied')) {
      return new Error(
        `${where}: not authorized (403) — is this client's identity ${this.identity} in a KES policy that allows ${apiPath}?`,
        { cause: error },
      );
    }
    if (isKmsError(error, 'Unavailable')) {
      const tlsHint = /TLS:/.test(error.message) ? ' — check MINIO_KMS_KES_CAPATH and the server certificate (host/IP names, expiry)' : '';
      const detail = error.message.startsWith(`${where}: `) ? error.message.slice(where.length + 2) : error.message;
      return new Error(`${where}: not reachable: ${detail}${tlsHint}`, { cause: error });
    }
    const message = error instanceof Error ? error.message : String(error);
    return new Error(`${where}: startup check (generate a data key with '${this.defaultKeyName}') failed: ${message}`, { cause: error });
  }

  #startKeepWarm(): void {
    if (this.#options.keepWarmMs === 0) return;
    this.#keepWarmTimer = setInterval(() => {
      if (this.#keepWarmInFlight || this.#closed) return;
      this.#keepWarmInFlight = true;
      this.describeKey(this.defaultKeyName)
        .catch(() => undefined) // failures are expected during outages; the next tick tries again
        .finally(() => {
          this.#keepWarmInFlight = false;
        });
    }, this.#options.keepWarmMs);
    this.#keepWarmTimer.unref();
  }

  // ---- Kms ----

  async generateKey(keyName: string, context: Buffer): Promise<DataKey> {
    this.#checkOpen();
    validateContext(context);
    this.#checkKeyName(keyName, 'KeyNotFound');
    const body = Buffer.from(JSON.stringify({ context: context.toString('base64') }));
    const response = await this.#call('generate', 'POST', keyName, body);
    const object = parseJsonObject(response, 'generate', this.#endpointList);
    const plaintext = base64Field(object, 'plaintext', 'generate', this.#endpointList);
    const ciphertext = base64Field(object, 'ciphertext', 'generate', this.#endpointList);
    response.body.fill(0);
    if (plaintext.length !== dataKeySizeBytes || ciphertext.length === 0 || ciphertext.length > ciphertextSizeBytesMax) {
      plaintext.fill(0);
      throw new KmsError('Unavailable', `KES at ${this.#endpointList}: generate: unexpected data key or ciphertext size`);
    }
    return { plaintext, ciphertext };
  }

  async decrypt(keyName: string, ciphertext: Buffer, context: Buffer): Promise<Buffer> {
    this.#checkOpen();
    validateContext(context);
    this.#checkKeyName(keyName, 'KeyNotFound');
    if (!Buffer.isBuffer(ciphertext) || ciphertext.length === 0 || ciphertext.length > ciphertextSizeBytesMax) {
      throw new KmsError('DecryptionFailed', kesMessages.decryptFailed);
    }
    const body = Buffer.from(JSON.stringify({ ciphertext: ciphertext.toString('base64'), context: context.toString('base64') }));
    const response = await this.#call('decrypt', 'POST', keyName, body);
    const object = parseJsonObject(response, 'decrypt', this.#endpointList);
    const plaintext = base64Field(object, 'plaintext', 'decrypt', this.#endpointList);
    response.body.fill(0);
    return plaintext;
  }

  async createKey(keyName: string): Promise<void> {
    this.#checkOpen();
    this.#checkKeyName(keyName, 'InvalidArgument');
    await this.#call('create', 'POST', keyName, undefined);
  }

  async describeKey(keyName: string): Promise<{ name: string }> {
    this.#checkOpen();
    this.#checkKeyName(keyName, 'KeyNotFound');
    const response = await this.#call('describe', 'GET', keyName, undefined);
    const object = parseJsonObject(response, 'describe', this.#endpointList);
    return { name: typeof object['name'] === 'string' && object['name'] !== '' ? object['name'] : keyName };
  }

  /** GET /v1/status on every endpoint, one attempt each, no balancing (MinIO `kesConn.Status`): 200 = online. */
  async status(): Promise<KmsStatus> {
    this.#checkOpen();
    this.#requestsByRoute.status++;
    this.#stats.requests++;
    const startMs = performance.now();
    const states = await Promise.all(
      this.#endpoints.map(async (endpoint) => {
        try {
          const response = await this.#exchange(endpoint, 'GET', routePaths.status, undefined, this.#options.requestTimeoutMs);
          return [endpoint.url, response.status === 200 ? 'online' : 'offline'] as const;
        } catch {
          return [endpoint.url, 'offline'] as const;
        }
      }),
    );
    this.#stats.latencyMsTotal += performance.now() - startMs;
    const endpoints: Record<string, 'online' | 'offline'> = {};
    for (const [url, state] of states) endpoints[url] = state;
    return { name: 'kes', defaultKeyName: this.defaultKeyName, endpoints };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#keepWarmTimer !== undefined) clearInterval(this.#keepWarmTimer);
    this.#keepWarmTimer = undefined;
    for (const endpoint of this.#endpoints) endpoint.agent.destroy();
  }

  stats(): KesClientStats {
    const nowMs = Date.now();
    return {
      ...this.#stats,
      requestsByRoute: { ...this.#requestsByRoute },
      benchedEndpoints: this.#endpoints
        .filter((endpoint) => endpoint.benchedAtMs !== undefined && nowMs - endpoint.benchedAtMs < this.#options.benchMs)
        .map((endpoint) => endpoint.url),
    };
  }

  // ---- internals ----

  #checkOpen(): void {
    if (this.#closed) throw new KmsError('Unavailable', 'KES client is closed');
  }

  #checkKeyName(keyName: string, kind: KmsErrorKind): void {
    // Also keeps arbitrary bytes out of the URL path. No KES key can have another name, hence KeyNotFound for lookups.
    if (typeof keyName !== 'string' || !kesKeyNamePattern.test(keyName) || keyName === '_') {
      throw new KmsError(kind, kind === 'KeyNotFound' ? `key '${sanitizeServerMessage(String(keyName))}' does not exist (not a valid KES key name)` : 'invalid KES key name: 1-80 characters of [0-9A-Za-z_-], not starting or ending with \'-\'');
    }
  }

  /** One operation: balance + retries, counted, with the response mapped to KmsError unless it is a 200. */
  async #call(route: Route, method: 'GET' | 'POST', keyName: string, body: Buffer | undefined): Promise<HttpResponse> {
    this.#requestsByRoute[route]++;
    this.#stats.requests++;
    const startMs = performance.now();
    try {
      const { response, endpoint } = await this.#balance(method, routePaths[route] + keyName, body);
      if (response.status === 200) return response;
      throw this.#errorFromResponse(response, endpoint, keyName);
    } catch (error) {
      this.#stats.errors++;
      if (error instanceof KmsError) throw error;
      if (error instanceof TransportError) {
        throw new KmsError('Unavailable', `KES at ${this.#endpointList}: unavailable (last error from ${error.endpoint}: ${error.message})`);
      }
      throw new KmsError('Unavailable', `KES at ${this.#endpointList}: ${error instanceof Error ? error.message : String(error)}`);
    } finally {
      this.#stats.latencyMsTotal += performance.now() - startMs;
    }
  }

  #errorFromResponse(response: HttpResponse, endpoint: string, keyName: string): KmsError {
    const message = serverMessage(response);
    const where = `KES at ${endpoint}`;
    switch (response.status) {
      case 400:
        if (message === kesMessages.keyExists || message === kesMessages.keyExistsLegacy) return new KmsError('KeyExists', `key '${keyName}' already exists`);
        if (message === kesMessages.decryptFailed) return new KmsError('DecryptionFailed', kesMessages.decryptFailed);
        return new KmsError('InvalidArgument', `${where}: bad request (400): ${message}`);
      case 403:
        return new KmsError('PermissionDenied', `${where}: not authorized (403): ${message} — identity ${this.identity}`);
      case 404:
        if (message === kesMessages.keyNotFound) return new KmsError('KeyNotFound', `key '${keyName}' does not exist`);
        return new KmsError('NotSupported', `${where}: not found (404): ${message}`);
      case 405:
      case 501:
        return new KmsError('NotSupported', `${where}: not supported (${response.status}): ${message}`);
    }
    if (response.status >= 500) return new KmsError('Unavailable', `KES at ${this.#endpointList}: unavailable (last: ${endpoint} answered ${response.status}: ${message})`);
    return new KmsError('InvalidArgument', `${where}: unexpected status ${response.status}: ${message}`);
  }

  /** kms-go `loadBalancer.Send`. Returns the response (possibly a 5xx when every endpoint failed) or throws TransportError. */
  async #balance(method: string, apiPath: string, body: Buffer | undefined): Promise<{ response: HttpResponse; endpoint: string }> {
    const endpoints = this.#endpoints;
    const deadlineMs = performance.now() + this.#options.operationDeadlineMs;
    if (endpoints.length === 1) {
      const only = endpoints[0]!;
      return { response: await this.#sendWithRetries(only, method, apiPath, body, deadlineMs), endpoint: only.url };
    }

    const { benchMs } = this.#options;
    // The last outcome, as kms-go's `resp, err` pair.
    const last: { response?: HttpResponse; endpoint: string; error?: TransportError } = { endpoint: '' };
    // Returns the response when the request is done (success or a non-benching error), undefined to move on.
    const attempt = async (endpoint: Endpoint, shouldProbe: boolean, clearOnSuccess: boolean): Promise<HttpResponse | undefined> => {
      let response: HttpResponse;
      try {
        response = await this.#sendWithRetries(endpoint, method, apiPath, body, deadlineMs);
      } catch (caught) {
        if (this.#closed) throw new KmsError('Unavailable', 'KES client is closed');
        last.error = toTransportError(endpoint.url, caught);
        last.response = undefined;
        endpoint.bench(Date.now(), shouldProbe);
        this.#stats.failovers++;
        return undefined;
      }
      last.response = response;
      last.endpoint = endpoint.url;
      last.error = undefined;
      if (benchWorthy(response.status)) {
        endpoint.bench(Date.now(), shouldProbe);
        this.#stats.failovers++;
        return undefined;
      }
      if (clearOnSuccess) endpoint.clearBench();
      return response;
    };

    const first = endpoints[0]!;
    if (first.locality === 'localhost') {
      const { benched, shouldProbe } = first.checkBench(Date.now(), benchMs);
      if (!benched || shouldProbe) {
        const done = await attempt(first, shouldProbe, shouldProbe);
        if (done !== undefined) return { response: done, endpoint: first.url };
      }
    }

    const count = endpoints.length;
    const start = randomInt(count);
    for (const fullPass of [false, true]) {
      for (let tryCount = 1; tryCount <= count; tryCount++) {
        if (performance.now() >= deadlineMs) break;
        const endpoint = endpoints[(tryCount + start) % count]!;
        const { benched, shouldProbe } = endpoint.checkBench(Date.now(), benchMs);
        if (!fullPass && benched && !shouldProbe) continue;
        const done = await attempt(endpoint, shouldProbe, shouldProbe || fullPass);
        if (done !== undefined) return { response: done, endpoint: endpoint.url };
      }
      // kms-go: only when nothing was tried at all (every endpoint skipped) does it ignore the benches once.
      if (last.response !== undefined || last.error !== undefined) break;
    }
    if (last.response !== undefined) return { response: last.response, endpoint: last.endpoint };
    throw last.error ?? new TransportError(this.#endpointList, 'ETIMEDOUT', `operation deadline of ${this.#options.operationDeadlineMs} ms exceeded`, false);
  }

  /** kms-go `retry.Do`: up to `retries` more attempts on a network error or a 503, sleeping 200 ms + 0–800 ms. */
  async #sendWithRetries(endpoint: Endpoint, method: string, apiPath: string, body: Buffer | undefined, deadlineMs: number): Promise<HttpResponse> {
    const { retries, retryDelayMs, retryJitterMs, requestTimeoutMs } = this.#options;
    for (let attempt = 0; ; attempt++) {
      const remainingMs = Math.floor(deadlineMs - performance.now());
      if (remainingMs <= 0) throw new TransportError(endpoint.url, 'ETIMEDOUT', `operation deadline of ${this.#options.operationDeadlineMs} ms exceeded`, false);
      try {
        const response = await this.#exchange(endpoint, method, apiPath, body, Math.min(requestTimeoutMs, remainingMs));
        if (response.status !== 503 || attempt >= retries) return response;
      } catch (caught) {
        const error = toTransportError(endpoint.url, caught);
        if (!error.retryable || attempt >= retries || this.#closed) throw error;
      }
      await sleep(retryDelayMs + (retryJitterMs > 0 ? randomInt(retryJitterMs) : 0));
      if (this.#closed) throw new TransportError(endpoint.url, 'ECANCELED', 'client closed', false);
    }
  }

  /** One HTTP exchange, bounded in time (connect through the last body byte) and in response size. */
  #exchange(endpoint: Endpoint, method: string, apiPath: string, body: Buffer | undefined, timeoutMs: number): Promise<HttpResponse> {
    return new Promise<HttpResponse>((resolve, reject) => {
      let settled = false;
      const settle = (outcome: () => void): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        outcome();
      };
      const fail = (error: TransportError): void => {
        settle(() => reject(error));
        request.destroy();
      };
      const headers: Record<string, string | number> = { Accept: 'application/json', 'User-Agent': 'Coffer-KES-client' };
      if (body !== undefined) {
        headers['Content-Type'] = 'application/json';
        headers['Content-Length'] = body.length;
      }
      const request = https.request(new URL(apiPath, endpoint.base), { method, agent: endpoint.agent, headers }, (response) => {
        const declaredBytes = Number.parseInt(response.headers['content-length'] ?? '', 10);
        if (declaredBytes > responseSizeBytesMax) {
          fail(new TransportError(endpoint.url, 'ERESPONSETOOLARGE', `response larger than ${responseSizeBytesMax} bytes`, false));
          return;
        }
        const chunks: Buffer[] = [];
        let receivedBytes = 0;
        response.on('data', (chunk: Buffer) => {
          receivedBytes += chunk.length;
          if (receivedBytes > responseSizeBytesMax) {
            fail(new TransportError(endpoint.url, 'ERESPONSETOOLARGE', `response larger than ${responseSizeBytesMax} bytes`, false));
            return;
          }
          chunks.push(chunk);
        });
        response.on('end', () => {
          const contentType = String(response.headers['content-type'] ?? '').trim().toLowerCase();
          settle(() => resolve({ status: response.statusCode ?? 0, contentType, body: Buffer.concat(chunks) }));
        });
        response.on('error', (error) => fail(toTransportError(endpoint.url, error)));
        response.on('close', () => {
          if (!response.complete) fail(new TransportError(endpoint.url, 'ECONNRESET', 'connection closed before the response was complete', true));
        });
      });
      const timer = setTimeout(() => fail(new TransportError(endpoint.url, 'ETIMEDOUT', `no complete response within ${timeoutMs} ms`, true)), timeoutMs);
      request.on('error', (error) => fail(toTransportError(endpoint.url, error)));
      request.end(body);
    });
  }
}
