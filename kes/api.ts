// The KES v1 API: the route table and one handler per route (reference/sse-kms-kes.md §14.3; minio/kes
// state.go `initRoutes` and server.go). Handlers receive an already authenticated and authorized request (auth.ts,
// server.ts) with its body read under the route's limit; they return a response or throw a KesError (errors.ts).

import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { dataKeySizeBytes } from '../engine/kms/kms.ts';
import { masterKeySizeBytes, decodeStandardBase64 } from '../engine/kms/builtin.ts';
import type { Authorizer, Caller, Policy } from './auth.ts';
import { decryptWithKey, encryptWithKey, hmacWithKey } from './crypto.ts';
import { isKesError, kesErrors, type KesError } from './errors.ts';
import { generateKeyVersion, parseKeyAlgorithm, type KeyVersion } from './key-version.ts';
import { KeyStoreUnreachableError, type KeyStore } from './keystore/keystore.ts';
import type { KesMetrics } from './metrics.ts';
import { isValidName, isValidPattern, patternPrefix } from './names.ts';

export const serverVersion = '0.1.0-coffer';
export const oneMegabyte = 1024 * 1024;
export const defaultTimeoutMs = 15_000;

/** 'none': no client certificate needed; 'identify': any client certificate; 'policy': admin or an allowing policy. */
export type RouteAuth = 'none' | 'identify' | 'policy';
export type RouteMethod = 'GET' | 'PUT' | 'DELETE';

export interface ApiRequest {
  /** the URL path after the route prefix (a key, policy or identity name, or a pattern) */
  readonly resource: string;
  /** '' on a route that needs no certificate */
  readonly identity: string;
  readonly caller?: Caller;
  readonly body: Buffer;
}

export type ApiResponse =
  | { readonly status: number; readonly json: unknown }
  | { readonly status: number; readonly empty: true }
  | { readonly status: number; readonly text: string; readonly contentType: string };

export interface Route {
  readonly method: RouteMethod;
  /** ends in '/' for routes with a resource; others match exactly */
  readonly path: string;
  readonly maxBodyBytes: number;
  readonly timeoutMs: number;
  readonly auth: RouteAuth;
  readonly handler: (request: ApiRequest) => Promise<ApiResponse>;
}

export interface ApiContext {
  /** the cached key store */
  readonly keys: KeyStore;
  readonly authorizer: Authorizer;
  readonly metrics: KesMetrics;
  readonly startedAt: Date;
  /** master keys in the cache, for /v1/metrics */
  readonly cachedKeyCount: () => number;
  /** the final route table, for /v1/api */
  readonly routes: () => readonly Route[];
  readonly logError: (message: string) => void;
}

const ok = (): ApiResponse => ({ status: 200, empty: true });
const json = (value: unknown): ApiResponse => ({ status: 200, json: value });

// ---- request bodies: JSON objects whose []byte fields are standard base64 (Go encoding/json) ----

function parseJsonBody(body: Buffer, optional = false): Record<string, unknown> {
  if (body.length === 0 && optional) return {};
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch {
    throw kesErrors.invalidBody();
  }
  if (value === null && optional) return {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw kesErrors.invalidBody();
  return value as Record<string, unknown>;
}

function bytesField(record: Record<string, unknown>, name: string): Buffer {
  const value = record[name];
  if (value === undefined || value === null) return Buffer.alloc(0);
  if (typeof value !== 'string') throw kesErrors.invalidBody();
  const decoded = decodeStandardBase64(value.replace(/[\r\n]/g, '')); // Go's decoder skips newlines
  if (decoded === undefined) throw kesErrors.invalidBody();
  return decoded;
}

function stringField(record: Record<string, unknown>, name: string): string {
  const value = record[name];
  if (value === undefined || value === null) return '';
  if (typeof value !== 'string') throw kesErrors.invalidBody();
  return value;
}

// ---- helpers ----

function requireName(kind: 'key' | 'policy' | 'identity', name: string): string {
  if (!isValidName(name)) throw kesErrors.invalidName(kind, name);
  return name;
}

function requirePattern(pattern: string): string {
  if (!isValidPattern(pattern)) throw kesErrors.invalidPattern(pattern);
  return patternPrefix(pattern);
}

/** Key-store failures that are not KES errors become 502 (and are logged without key material). */
async function keyStoreCall<T>(context: ApiContext, what: 'create' | 'read' | 'delete' | 'list', run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    if (isKesError(error)) throw error;
    if (error instanceof KeyStoreUnreachableError) throw kesErrors.keyStoreUnreachable();
    context.logError(`key store: failed to ${what}: ${(error as Error).message}`);
    throw kesErrors.keyStoreFailed(what);
  }
}

function policyDocument(policy: Policy, context: ApiContext): Record<string, unknown> {
  return {
    name: policy.name,
    allow: Object.fromEntries(policy.allow.map((pattern) => [pattern, {}])),
    deny: Object.fromEntries(policy.deny.map((pattern) => [pattern, {}])),
    created_at: context.startedAt.toISOString(),
    created_by: context.authorizer.adminIdentity,
  };
}

function goOs(): string {
  return process.platform === 'win32' ? 'windows' : process.platform;
}

function goArch(): string {
  return ({ x64: 'amd64', ia32: '386', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x' } as Record<string, string>)[process.arch] ?? process.arch;
}

// ---- handlers ----

async function createKey(context: ApiContext, request: ApiRequest): Promise<ApiResponse> {
  const name = requireName('key', request.resource);
  const version = generateKeyVersion(request.identity);
  try {
    await keyStoreCall(context, 'create', () => context.keys.create(name, version));
  } finally {
    version.key.fill(0);
    version.hmacKey?.fill(0);
  }
  return ok();
}

async function importKey(context: ApiContext, request: ApiRequest): Promise<ApiResponse> {
  const name = requireName('key', request.resource);
  const body = parseJsonBody(request.body);
  const cipher = stringField(body, 'cipher');
  const algorithm = parseKeyAlgorithm(cipher);
  if (algorithm === undefined) throw kesErrors.importCipherUnsupported(cipher);
  const key = bytesField(body, 'key');
  if (key.length !== masterKeySizeBytes) throw kesErrors.importKeySize(cipher);
  const version: KeyVersion = { ...generateKeyVersion(request.identity), algorithm, key };
  try {
    await keyStoreCall(context, 'create', () => context.keys.create(name, version));
  } finally {
    version.key.fill(0);
    version.hmacKey?.fill(0);
  }
  return ok();
}

async function getKey(context: ApiContext, name: string): Promise<KeyVersion> {
  return keyStoreCall(context, 'read', () => context.keys.get(name));
}

async function describeKey(context: ApiContext, request: ApiRequest): Promise<ApiResponse> {
  const name = requireName('key', request.resource);
  const version = await getKey(context, name);
  version.key.fill(0);
  version.hmacKey?.fill(0);
  return json({ name, algorithm: version.algorithm, created_at: version.createdAt.toISOString(), created_by: version.createdBy });
}

async function deleteKey(context: ApiContext, request: ApiRequest): Promise<ApiResponse> {
  const name = requireName('key', request.resource);
  await keyStoreCall(context, 'delete', () => context.keys.delete(name));
  return ok();
}

async function listKeys(context: ApiContext, request: ApiRequest): Promise<ApiResponse> {
  const prefix = requirePattern(request.resource);
  const page = await keyStoreCall(context, 'list', () => context.keys.list(prefix));
  return json({ names: page.names, continue_at: page.continueAt });
}

async function generateKey(context: ApiContext, request: ApiRequest): Promise<ApiResponse> {
  const name = requireName('key', request.resource);
  const body = parseJsonBody(request.body, true); // the body is optional: no context = empty associated data
  const associatedData = bytesField(body, 'context');
  const version = await getKey(context, name);
  const plaintext = randomBytes(dataKeySizeBytes);
  try {
    const ciphertext = encryptWithKey(version, plaintext, associatedData);
    return json({ plaintext: plaintext.toString('base64'), ciphertext: ciphertext.toString('base64') });
  } finally {
    plaintext.fill(0);
    version.key.fill(0);
    version.hmacKey?.fill(0);
  }
}

async function encryptKey(context: ApiContext, request: ApiRequest): Promise<ApiResponse> {
  const name = requireName('key', request.resource);
  const body = parseJsonBody(request.body);
  const plaintext = bytesField(body, 'plaintext');
  const associatedData = bytesField(body, 'context');
  const version = await getKey(context, name);
  try {
    return json({ ciphertext: encryptWithKey(version, plaintext, associatedData).toString('base64') });
  } finally {
    plaintext.fill(0);
    version.key.fill(0);
    version.hmacKey?.fill(0);
  }
}

async function decryptKey(context: ApiContext, request: ApiRequest): Promise<ApiResponse> {
  const name = requireName('key', request.resource);
  const body = parseJsonBody(request.body);
  const ciphertext = bytesField(body, 'ciphertext');
  const associatedData = bytesField(body, 'context');
  const version = await getKey(context, name);
  try {
    const plaintext = decryptWithKey(version, ciphertext, associatedData);
    if (plaintext === undefined) throw kesErrors.decryptionFailed();
    const encoded = plaintext.toString('base64');
    plaintext.fill(0);
    return json({ plaintext: encoded });
  } finally {
    version.key.fill(0);
    version.hmacKey?.fill(0);
  }
}

async function hmacKey(context: ApiContext, request: ApiRequest): Promise<ApiResponse> {
  const name = requireName('key', request.resource);
  const body = parseJsonBody(request.body);
  const message = bytesField(body, 'message');
  const version = await getKey(context, name);
  try {
    const sum = hmacWithKey(version, message);
    if (sum === undefined) throw kesErrors.hmacUnsupported();
    return json({ hmac: sum.toString('base64') });
  } finally {
    version.key.fill(0);
    version.hmacKey?.fill(0);
  }
}

async function describePolicy(context: ApiContext, request: ApiRequest): Promise<ApiResponse> {
  const name = requireName('policy', request.resource);
  if (!context.authorizer.policies.has(name)) throw kesErrors.policyNotFound();
  return json({ name, created_at: context.startedAt.toISOString(), created_by: context.authorizer.adminIdentity });
}

async function readPolicy(context: ApiContext, request: ApiRequest): Promise<ApiResponse> {
  const name = requireName('policy', request.resource);
  const policy = context.authorizer.policies.get(name);
  if (policy === undefined) throw kesErrors.policyNotFound();
  return json(policyDocument(policy, context));
}

async function listPolicies(context: ApiContext, request: ApiRequest): Promise<ApiResponse> {
  const prefix = requirePattern(request.resource);
  const names = [...context.authorizer.policies.keys()].filter((name) => name.startsWith(prefix)).sort();
  return json({ names, continue_at: '' });
}

async function describeIdentity(context: ApiContext, request: ApiRequest): Promise<ApiResponse> {
  const identity = requireName('identity', request.resource);
  const caller = context.authorizer.caller(identity);
  if (caller === undefined) throw kesErrors.identityNotFound();
  const createdAt = context.startedAt.toISOString();
  if (caller.kind === 'admin') return json({ admin: true, created_at: createdAt });
  return json({ policy: caller.policy.name, created_at: createdAt, created_by: context.authorizer.adminIdentity });
}

async function listIdentities(context: ApiContext, request: ApiRequest): Promise<ApiResponse> {
  const prefix = requirePattern(request.resource);
  const all = [...context.authorizer.identities.keys()];
  if (context.authorizer.adminIdentity !== '') all.push(context.authorizer.adminIdentity);
  return json({ identities: all.filter((identity) => identity.startsWith(prefix)).sort(), continue_at: '' });
}

async function selfDescribeIdentity(context: ApiContext, request: ApiRequest): Promise<ApiResponse> {
  const caller = context.authorizer.caller(request.identity);
  if (caller === undefined) throw kesErrors.identityNotFound();
  const createdAt = context.startedAt.toISOString();
  if (caller.kind === 'admin') return json({ identity: request.identity, admin: true, created_at: createdAt });
  return json({
    identity: request.identity,
    created_at: createdAt,
    created_by: context.authorizer.adminIdentity,
    policy: policyDocument(caller.policy, context),
  });
}

async function version(): Promise<ApiResponse> {
  return json({ version: serverVersion, commit: '' });
}

async function keyStoreState(context: ApiContext): Promise<{ latencyMs: number } | KesError> {
  try {
    return await context.keys.status();
  } catch (error) {
    if (error instanceof KeyStoreUnreachableError) return kesErrors.keyStoreUnreachable();
    context.logError(`key store status: ${(error as Error).message}`);
    return kesErrors.keyStoreUnavailable();
  }
}

async function ready(context: ApiContext): Promise<ApiResponse> {
  const state = await keyStoreState(context);
  if (isKesError(state)) throw state;
  return ok();
}

async function status(context: ApiContext): Promise<ApiResponse> {
  const state = await keyStoreState(context);
  const memory = process.memoryUsage();
  const cpus = os.availableParallelism();
  return json({
    version: serverVersion,
    os: goOs(),
    arch: goArch(),
    uptime: Math.round((Date.now() - context.startedAt.getTime()) / 1000),
    num_cpu: cpus,
    num_cpu_used: cpus,
    mem_heap_used: memory.heapUsed,
    mem_stack_used: 0, // not observable in node
    keystore_latency: isKesError(state) ? 0 : Math.max(1, Math.round(state.latencyMs)), // ms, at least 1 like KES
    keystore_unreachable: isKesError(state),
  });
}

async function metricsText(context: ApiContext): Promise<ApiResponse> {
  return { status: 200, text: context.metrics.render({ cachedKeys: context.cachedKeyCount() }), contentType: 'text/plain; version=0.0.4; charset=utf-8' };
}

async function listApis(context: ApiContext): Promise<ApiResponse> {
  return json(
    context.routes().map((route) => ({
      method: route.method,
      path: route.path,
      max_body: route.maxBodyBytes,
      timeout: Math.floor(route.timeoutMs / 1000),
    })),
  );
}

/** The KES v1 route table with KES's default limits (§14.3, /v1/api). */
export function createRoutes(context: ApiContext): Route[] {
  const route = (
    method: RouteMethod,
    path: string,
    handler: (context: ApiContext, request: ApiRequest) => Promise<ApiResponse>,
    limits: { maxBodyBytes?: number; timeoutMs?: number; auth?: RouteAuth } = {},
  ): Route => ({
    method,
    path,
    maxBodyBytes: limits.maxBodyBytes ?? 0,
    timeoutMs: limits.timeoutMs ?? defaultTimeoutMs,
    auth: limits.auth ?? 'policy',
    handler: (request) => handler(context, request),
  });
  const withBody = { maxBodyBytes: oneMegabyte };
  return [
    route('GET', '/version', version, { timeoutMs: 10_000, auth: 'none' }),
    route('GET', '/v1/ready', ready),
    route('GET', '/v1/status', status),
    route('GET', '/v1/metrics', metricsText),
    route('GET', '/v1/api', listApis, { timeoutMs: 10_000 }),

    route('PUT', '/v1/key/create/', createKey),
    route('PUT', '/v1/key/import/', importKey, withBody),
    route('GET', '/v1/key/describe/', describeKey),
    route('DELETE', '/v1/key/delete/', deleteKey),
    route('GET', '/v1/key/list/', listKeys),
    route('PUT', '/v1/key/generate/', generateKey, withBody),
    route('PUT', '/v1/key/encrypt/', encryptKey, withBody),
    route('PUT', '/v1/key/decrypt/', decryptKey, withBody),
    route('PUT', '/v1/key/hmac/', hmacKey, withBody),

    route('GET', '/v1/policy/describe/', describePolicy),
    route('GET', '/v1/policy/read/', readPolicy),
    route('GET', '/v1/policy/list/', listPolicies),

    route('GET', '/v1/identity/describe/', describeIdentity),
    route('GET', '/v1/identity/list/', listIdentities),
    route('GET', '/v1/identity/self/describe', selfDescribeIdentity, { auth: 'identify' }),
  ];
}
