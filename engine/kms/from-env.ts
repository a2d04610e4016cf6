// Choose the KMS from MinIO's environment variables (reference/sse-kms-kes.md §13.1, §12.5; MinIO
// `internal/kms/config.go` `IsPresent`/`Connect`). Exactly one of {KES, static key} may be configured; a partial or
// mixed configuration is an Error at startup, never a silent fallback to "no KMS".
//
// Presence follows MinIO: a variable counts when it is defined (even empty), except that an empty
// MINIO_KMS_SECRET_KEY, and a MINIO_KMS_SECRET_KEY_FILE that is empty or names a missing file, count as unset
// (MinIO's container image always sets the _FILE variable).
// MinIO KMS ("MinKMS", MINIO_KMS_SERVER…) is a different protocol that Coffer does not speak: configuring it is an Error.

import { closeSync, fstatSync, openSync, readSync, statSync } from 'node:fs';
import { BuiltinKms, secretKeySizeBytesMax } from './builtin.ts';
import type { Kms } from './kms.ts';

/** Parsed KES client settings; the client itself (mTLS, load balancing, §13.3, §14) consumes this. */
export interface KesClientConfig {
  /** `https://host:port` URLs after comma splitting, trimming and `{N...M}` expansion; at least one */
  readonly endpoints: readonly string[];
  /** MINIO_KMS_KES_KEY_NAME: the default key (required) */
  readonly keyName: string;
  /** MINIO_KMS_KES_API_KEY `kes:v1:…` — a secret; never log it. Exclusive with certFile/keyFile. */
  readonly apiKey?: string;
  /** MINIO_KMS_KES_CERT_FILE / MINIO_KMS_KES_KEY_FILE: mTLS client cert and key (both or neither) */
  readonly certFile?: string;
  readonly keyFile?: string;
  /** MINIO_KMS_KES_KEY_PASSWORD: for a legacy PEM-encrypted keyFile — a secret */
  readonly keyPassword?: string;
  /** MINIO_KMS_KES_CAPATH: CA file or directory to verify KES; undefined = the server's default CA set */
  readonly caPath?: string;
}

export type KmsChoice =
  | { readonly kind: 'none' }
  | { readonly kind: 'builtin'; readonly kms: Kms }
  | { readonly kind: 'kes'; readonly config: KesClientConfig };

export const envKesEndpoint = 'MINIO_KMS_KES_ENDPOINT';
export const envKesKeyName = 'MINIO_KMS_KES_KEY_NAME';
export const envKesApiKey = 'MINIO_KMS_KES_API_KEY';
export const envKesKeyFile = 'MINIO_KMS_KES_KEY_FILE';
export const envKesCertFile = 'MINIO_KMS_KES_CERT_FILE';
export const envKesKeyPassword = 'MINIO_KMS_KES_KEY_PASSWORD';
export const envKesCaPath = 'MINIO_KMS_KES_CAPATH';
export const envSecretKey = 'MINIO_KMS_SECRET_KEY';
export const envSecretKeyFile = 'MINIO_KMS_SECRET_KEY_FILE';
export const envAutoEncryption = 'MINIO_KMS_AUTO_ENCRYPTION';
const minKmsVars = ['MINIO_KMS_SERVER', 'MINIO_KMS_ENCLAVE', 'MINIO_KMS_API_KEY', 'MINIO_KMS_SSE_KEY'] as const;
const kesVars = [envKesEndpoint, envKesKeyName, envKesApiKey, envKesKeyFile, envKesCertFile, envKesKeyPassword, envKesCaPath] as const;

/** No deployment needs more KES nodes than this; an ellipsis typo like `{1...100000}` must not allocate. */
export const kesEndpointsMax = 64;
/** KES key names (§14.1): 1–80 of [0-9A-Za-z_-], '-' not first or last, not exactly '_'. */
const kesKeyNamePattern = /^(?!-)[0-9A-Za-z_-]{1,80}(?<!-)$/;
const ellipsisRangePattern = /\{(\d+)\.\.\.(\d+)\}/g;

function isPresent(env: NodeJS.ProcessEnv, ...names: readonly string[]): boolean {
  return names.some((name) => env[name] !== undefined);
}

function nonEmpty(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const value = env[name];
  return value === undefined || value === '' ? undefined : value;
}

function fileExists(filePath: string): boolean {
  try {
    statSync(filePath);
    return true;
  } catch {
    return false;
  }
}

type PresentKms = 'none' | 'static' | 'kes';

/** MinIO's `IsPresent`: which KMS is configured, or an Error for mixed/incomplete configurations. */
function presentKms(env: NodeJS.ProcessEnv): PresentKms {
  const minKmsPresent = isPresent(env, ...minKmsVars);
  const kesPresent = isPresent(env, ...kesVars);
  const secretKeyFile = nonEmpty(env, envSecretKeyFile);
  const secretKeyPresent = nonEmpty(env, envSecretKey) !== undefined;
  const secretKeyFilePresent = secretKeyFile !== undefined && fileExists(secretKeyFile);
  const staticPresent = secretKeyPresent || secretKeyFilePresent;

  if (minKmsPresent) {
    throw new Error(
      `kms: MinIO KMS (${minKmsVars.join(', ')}) is not supported; configure KES (${envKesEndpoint}) or a static key (${envSecretKey})`,
    );
  }
  if (kesPresent && staticPresent) {
    throw new Error(`kms: configuration for MinIO KES and static KMS key is present; set only one of ${envKesEndpoint} and ${envSecretKey}`);
  }
  if (staticPresent) {
    if (secretKeyPresent && secretKeyFilePresent) {
      throw new Error(`kms: invalid configuration for static KMS key: '${envSecretKey}' and '${envSecretKeyFile}' are present`);
    }
    return 'static';
  }
  if (!kesPresent) return 'none';
  if (!isPresent(env, envKesEndpoint)) throw new Error(`kms: incomplete configuration for MinIO KES: missing '${envKesEndpoint}'`);
  if (!isPresent(env, envKesKeyName)) throw new Error(`kms: incomplete configuration for MinIO KES: missing '${envKesKeyName}'`);
  if (isPresent(env, envKesKeyFile, envKesCertFile, envKesKeyPassword)) {
    if (isPresent(env, envKesApiKey)) {
      throw new Error(`kms: invalid configuration for MinIO KES: '${envKesApiKey}' and client certificate is present`);
    }
    if (!isPresent(env, envKesCertFile)) throw new Error(`kms: incomplete configuration for MinIO KES: missing '${envKesCertFile}'`);
    if (!isPresent(env, envKesKeyFile)) throw new Error(`kms: incomplete configuration for MinIO KES: missing '${envKesKeyFile}'`);
  } else if (!isPresent(env, envKesApiKey)) {
    throw new Error('kms: incomplete configuration for MinIO KES: missing authentication method');
  }
  return 'kes';
}

/**
 * MinIO's endpoint ellipses (`minio/pkg` ellipses): `https://kes{1...3}.example.net:7373` → 3 URLs. A range with a
 * zero-padded bound (`{01...10}`) pads every number to the width of the end. Several ranges multiply.
 */
export function expandEndpointEllipses(endpoint: string): string[] {
  const hasEllipses = endpoint.includes('...') || (endpoint.includes('{') && endpoint.includes('}'));
  if (!hasEllipses) return [endpoint];
  const literals: string[] = [];
  const ranges: string[][] = [];
  let last = 0;
  for (const match of endpoint.matchAll(ellipsisRangePattern)) {
    const [whole, startText, endText] = match as unknown as [string, string, string];
    literals.push(endpoint.slice(last, match.index));
    last = match.index + whole.length;
    const start = Number.parseInt(startText, 10);
    const end = Number.parseInt(endText, 10);
    if (start > end) throw new Error(`kms: invalid endpoint '${endpoint}': range start ${start} is bigger than end ${end}`);
    if (end - start + 1 > kesEndpointsMax) throw new Error(`kms: invalid endpoint '${endpoint}': more than ${kesEndpointsMax} endpoints`);
    const padded = (startText.startsWith('0') && startText.length > 1) || endText.startsWith('0');
    const sequence: string[] = [];
    for (let n = start; n <= end; n++) sequence.push(padded ? String(n).padStart(endText.length, '0') : String(n));
    ranges.push(sequence);
  }
  literals.push(endpoint.slice(last));
  if (ranges.length === 0 || literals.some((literal) => /[{}]|\.\.\./.test(literal))) {
    throw new Error(`kms: invalid endpoint '${endpoint}': ellipsis ranges must look like {N...M}`);
  }
  let expanded = [literals[0]!];
  for (let i = 0; i < ranges.length; i++) {
    const next: string[] = [];
    for (const prefix of expanded) for (const value of ranges[i]!) next.push(prefix + value + literals[i + 1]!);
    if (next.length > kesEndpointsMax) throw new Error(`kms: invalid endpoint '${endpoint}': more than ${kesEndpointsMax} endpoints`);
    expanded = next;
  }
  return expanded;
}

export function parseKesEndpoints(raw: string): string[] {
  const endpoints: string[] = [];
  for (const part of raw.split(',')) {
    const trimmed = part.trim();
    if (trimmed === '') continue;
    for (const endpoint of expandEndpointEllipses(trimmed)) {
      let url: URL;
      try {
        url = new URL(endpoint);
      } catch {
        throw new Error(`kms: invalid ${envKesEndpoint} entry '${endpoint}': expected a URL like https://kes.example.net:7373`);
      }
      if (url.protocol !== 'https:' && url.protocol !== 'http:') {
        throw new Error(`kms: invalid ${envKesEndpoint} entry '${endpoint}': scheme must be https`);
      }
      endpoints.push(endpoint.replace(/\/+$/, ''));
      if (endpoints.length > kesEndpointsMax) throw new Error(`kms: ${envKesEndpoint} lists more than ${kesEndpointsMax} endpoints`);
    }
  }
  if (endpoints.length === 0) throw new Error('kms: no KES server endpoint provided');
  return endpoints;
}

function readSecretKeyFile(filePath: string): string {
  const fd = openSync(filePath, 'r');
  try {
    const sizeBytes = fstatSync(fd).size;
    if (sizeBytes > secretKeySizeBytesMax) throw new Error(`kms: ${envSecretKeyFile} ${filePath} is larger than ${secretKeySizeBytesMax} bytes`);
    const buffer = Buffer.alloc(sizeBytes);
    let offsetBytes = 0;
    while (offsetBytes < sizeBytes) {
      const bytesRead = readSync(fd, buffer, offsetBytes, sizeBytes - offsetBytes, offsetBytes);
      if (bytesRead === 0) break;
      offsetBytes += bytesRead;
    }
    const text = buffer.subarray(0, offsetBytes).toString('utf8');
    buffer.fill(0);
    return text;
  } finally {
    closeSync(fd);
  }
}

/**
 * MINIO_KMS_SECRET_KEY(_FILE) → builtin; MINIO_KMS_KES_ENDPOINT (+ _KEY_NAME, _API_KEY | _CERT_FILE + _KEY_FILE
 * [+ _KEY_PASSWORD], _CAPATH) → KES config; nothing → none; mixed or incomplete → Error (message never echoes a
 * secret). Reads MINIO_KMS_SECRET_KEY_FILE synchronously: this runs once at startup.
 */
export function kmsFromEnv(env: NodeJS.ProcessEnv): KmsChoice {
  switch (presentKms(env)) {
    case 'none':
      return { kind: 'none' };
    case 'static': {
      const secretKey = nonEmpty(env, envSecretKey);
      if (secretKey !== undefined) return { kind: 'builtin', kms: BuiltinKms.fromSecretKey(secretKey, envSecretKey) };
      const filePath = env[envSecretKeyFile]!;
      return { kind: 'builtin', kms: BuiltinKms.fromSecretKey(readSecretKeyFile(filePath), `${envSecretKeyFile} (${filePath})`) };
    }
    case 'kes':
      return { kind: 'kes', config: parseKesConfig(env) };
  }
}

function parseKesConfig(env: NodeJS.ProcessEnv): KesClientConfig {
  const endpoints = parseKesEndpoints(env[envKesEndpoint] ?? '');
  const keyName = env[envKesKeyName] ?? '';
  if (!kesKeyNamePattern.test(keyName) || keyName === '_') {
    throw new Error(`kms: invalid ${envKesKeyName} '${keyName}': 1-80 characters of [0-9A-Za-z_-], not starting or ending with '-'`);
  }
  const apiKey = nonEmpty(env, envKesApiKey);
  const caPath = nonEmpty(env, envKesCaPath);
  if (apiKey !== undefined) {
    if (!apiKey.startsWith('kes:v1:')) throw new Error(`kms: invalid ${envKesApiKey}: expected an API key starting with 'kes:v1:'`);
    return { endpoints, keyName, apiKey, ...(caPath !== undefined && { caPath }) };
  }
  const certFile = nonEmpty(env, envKesCertFile);
  const keyFile = nonEmpty(env, envKesKeyFile);
  if (certFile === undefined || keyFile === undefined) {
    throw new Error(`kms: incomplete configuration for MinIO KES: ${envKesCertFile} and ${envKesKeyFile} must both be set, or ${envKesApiKey}`);
  }
  const keyPassword = nonEmpty(env, envKesKeyPassword);
  return {
    endpoints,
    keyName,
    certFile,
    keyFile,
    ...(keyPassword !== undefined && { keyPassword }),
    ...(caPath !== undefined && { caPath }),
  };
}

/** MinIO's `config.ParseBool`: 1/t/true/on (three casings), 0/f/false/off, and enabled/disabled in any case. */
function parseMinioBool(name: string, value: string): boolean {
  switch (value) {
    case '1': case 't': case 'T': case 'true': case 'TRUE': case 'True': case 'on': case 'ON': case 'On':
      return true;
    case '0': case 'f': case 'F': case 'false': case 'FALSE': case 'False': case 'off': case 'OFF': case 'Off':
      return false;
  }
  if (value.toLowerCase() === 'enabled') return true;
  if (value.toLowerCase() === 'disabled') return false;
  throw new Error(`${name}: expected on or off, got '${value}'`);
}

/**
 * MINIO_KMS_AUTO_ENCRYPTION (§12.5), default off. When on, a request without SSE headers on a bucket without an
 * SSE configuration becomes SSE-KMS with the default key (MinIO injects `aws:kms`, not SSE-S3); SSE-C is never
 * affected. `on` without a KMS configuration is a startup Error, as in MinIO.
 */
export function autoEncryption(env: NodeJS.ProcessEnv, kmsAvailable = presentKms(env) !== 'none'): boolean {
  const value = env[envAutoEncryption];
  if (value === undefined || value === '') return false;
  const enabled = parseMinioBool(envAutoEncryption, value);
  if (enabled && !kmsAvailable) {
    throw new Error(`${envAutoEncryption} requires a valid KMS configuration (${envKesEndpoint} or ${envSecretKey})`);
  }
  return enabled;
}
