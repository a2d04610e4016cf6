// A small KES client for the `coffer kes key …` commands and the tests: mTLS with a client certificate (or a
// `kes:v1:` API key turned into one, like kms-go), JSON bodies with base64 []byte fields, POST for mutating
// routes (what kms-go sends), `{"message"}` errors surfaced as KesClientError(status, message).

import https from 'node:https';
import type { KeyObject } from 'node:crypto';
import { certificateFromApiKey } from '../engine/kms/x509.ts';

export const clientTimeoutMs = 15_000;
export const responseSizeBytesMax = 16 * 1024 * 1024;

export interface KesClientOptions {
  /** `https://host:port` */
  readonly server: string;
  /** client private key (PEM or KeyObject) and certificate (PEM) */
  readonly key?: string | Buffer | KeyObject;
  readonly cert?: string | Buffer;
  /** alternative to key + cert */
  readonly apiKey?: string;
  /** trusted CA(s) for the server certificate */
  readonly ca?: string | Buffer;
  /** skip server certificate verification (`--insecure`) */
  readonly insecure?: boolean;
}

export class KesClientError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'KesClientError';
  }
}

export interface KeyDescription {
  readonly name: string;
  readonly algorithm: string;
  readonly created_at: string;
  readonly created_by: string;
}

export class KesClient {
  readonly #url: URL;
  readonly #tls: https.RequestOptions;

  constructor(options: KesClientOptions) {
    this.#url = new URL(options.server);
    if (this.#url.protocol !== 'https:') throw new Error(`KES server must be an https:// URL, got '${options.server}'`);
    let key = options.key;
    let cert = options.cert;
    if (options.apiKey !== undefined) {
      const derived = certificateFromApiKey(options.apiKey);
      key = derived.privateKey.export({ type: 'pkcs8', format: 'pem' });
      cert = derived.certPem;
    }
    const pemKey = key !== undefined && typeof key === 'object' && !Buffer.isBuffer(key) ? key.export({ type: 'pkcs8', format: 'pem' }) : key;
    this.#tls = {
      ...(pemKey !== undefined ? { key: pemKey } : {}),
      ...(cert !== undefined ? { cert } : {}),
      ...(options.ca !== undefined ? { ca: options.ca } : {}),
      rejectUnauthorized: options.insecure !== true,
      minVersion: 'TLSv1.2',
      agent: false,
    };
  }

  /** One request; resolves with the raw response for any status. */
  request(method: string, path: string, body?: unknown): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body), 'utf8');
    return new Promise((resolve, reject) => {
      const request = https.request(
        {
          ...this.#tls,
          method,
          host: this.#url.hostname.replace(/^\[|\]$/g, ''),
          port: this.#url.port === '' ? 443 : Number(this.#url.port),
          path,
          headers: payload === undefined ? {} : { 'Content-Type': 'application/json', 'Content-Length': payload.length },
          timeout: clientTimeoutMs,
        },
        (response) => {
          const chunks: Buffer[] = [];
          let totalBytes = 0;
          response.on('data', (chunk: Buffer) => {
            totalBytes += chunk.length;
            if (totalBytes > responseSizeBytesMax) request.destroy(new Error('KES response too large'));
            else chunks.push(chunk);
          });
          response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks) }));
          response.on('error', reject);
        },
      );
      request.on('timeout', () => request.destroy(new Error(`KES request timed out after ${clientTimeoutMs / 1000} s`)));
      request.on('error', reject);
      request.end(payload);
    });
  }

  /** A request that must answer 200; otherwise throws KesClientError with the server's message. */
  async call(method: string, path: string, body?: unknown): Promise<unknown> {
    const response = await this.request(method, path, body);
    const text = response.body.toString('utf8');
    if (response.status !== 200) {
      let message = text.trim();
      try {
        const parsed = JSON.parse(text) as { message?: unknown; error?: unknown };
        if (typeof parsed.message === 'string') message = parsed.message;
        else if (typeof parsed.error === 'string') message = parsed.error;
      } catch {
        // not JSON: keep the text
      }
      throw new KesClientError(response.status, message || `HTTP ${response.status}`);
    }
    return text.trim() === '' ? undefined : JSON.parse(text);
  }

  async version(): Promise<{ version: string; commit: string }> {
    return (await this.call('GET', '/version')) as { version: string; commit: string };
  }

  async createKey(name: string): Promise<void> {
    await this.call('POST', `/v1/key/create/${encodeURIComponent(name)}`);
  }

  async importKey(name: string, key: Buffer, cipher = 'AES256'): Promise<void> {
    await this.call('POST', `/v1/key/import/${encodeURIComponent(name)}`, { key: key.toString('base64'), cipher });
  }

  async describeKey(name: string): Promise<KeyDescription> {
    return (await this.call('GET', `/v1/key/describe/${encodeURIComponent(name)}`)) as KeyDescription;
  }

  async deleteKey(name: string): Promise<void> {
    await this.call('DELETE', `/v1/key/delete/${encodeURIComponent(name)}`);
  }

  async listKeys(pattern = '*'): Promise<string[]> {
    const result = (await this.call('GET', `/v1/key/list/${encodeURIComponent(pattern).replace(/%2A/g, '*')}`)) as { names: string[] | null };
    return result.names ?? [];
  }

  async generateKey(name: string, context?: Buffer): Promise<{ plaintext: Buffer; ciphertext: Buffer }> {
    const body = context === undefined ? undefined : { context: context.toString('base64') };
    const result = (await this.call('POST', `/v1/key/generate/${encodeURIComponent(name)}`, body)) as { plaintext: string; ciphertext: string };
    return { plaintext: Buffer.from(result.plaintext, 'base64'), ciphertext: Buffer.from(result.ciphertext, 'base64') };
  }

  async decrypt(name: string, ciphertext: Buffer, context?: Buffer): Promise<Buffer> {
    const body = { ciphertext: ciphertext.toString('base64'), ...(context !== undefined ? { context: context.toString('base64') } : {}) };
    const result = (await this.call('POST', `/v1/key/decrypt/${encodeURIComponent(name)}`, body)) as { plaintext: string };
    return Buffer.from(result.plaintext, 'base64');
  }
}
