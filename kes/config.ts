// The KES server config file (YAML; reference/sse-kms-kes.md §14.6, minio/kes kesconf):
//
//   version: v1                          # optional
//   address: 0.0.0.0:7373                # default
//   admin:
//     identity: <hex>                    # required; a non-hex value such as `disabled` turns admin off
//   tls:
//     key: server.key                    # required
//     cert: server.cert                  # required
//     password: ""                       # optional, for an encrypted key
//     ca: ca.pem                         # optional file or directory of PEM CAs (for auth: on)
//     auth: off                          # off (any client certificate) | on (verify the chain)
//   cache:
//     expiry: { any: 5m, unused: 30s, offline: 0 }   # Go durations
//   api:
//     /v1/metrics: { skip_auth: true, timeout: 15s }
//   policy:
//     <name>: { allow: [/v1/key/generate/app-*], deny: [...], identities: [<hex>, ...] }
//   keystore:
//     fs: { path: ./keys }               # absent keystore → in-memory, with a warning
//   keys:
//     - name: minio-default-key          # created at startup when missing
//   log: { error: on, audit: off }
//
// Any string value written as `${NAME}` is replaced by the environment variable NAME (which must exist).
// Fields not listed above are an error naming every one of them, so a typo never silently falls back to a default.
// Every field left out gets its own default — unlike KES's CLI, where leaving `cache.expiry.unused` out replaced
// `any` with 30 s and disabled unused-eviction (§14.6, cmd/kes/server.go `configureCache`).

import { readFile } from 'node:fs/promises';
import { parseDocument } from 'yaml';
import type { CacheExpiry } from './keystore/cache.ts';
import { isValidName } from './names.ts';

export const defaultAddress = '0.0.0.0:7373';
export const defaultCacheExpiry: CacheExpiry = { anyMs: 5 * 60_000, unusedMs: 30_000, offlineMs: 0 };
export const configSizeBytesMax = 1024 * 1024;
const hexIdentityPattern = /^[0-9a-f]{64}$/;

export interface PolicyConfig {
  readonly name: string;
  readonly allow: readonly string[];
  readonly deny: readonly string[];
  readonly identities: readonly string[];
}

export interface RouteOverride {
  readonly skipAuth: boolean;
  readonly timeoutMs?: number;
}

export type KeyStoreConfig = { readonly kind: 'memory' } | { readonly kind: 'fs'; readonly path: string };

export interface KesConfig {
  readonly address: string;
  /** lower-case hex identity, or '' when admin is disabled */
  readonly adminIdentity: string;
  readonly tls: {
    readonly keyPath: string;
    readonly certPath: string;
    readonly password?: string;
    readonly caPath?: string;
    /** `tls.auth: on`: client certificates must verify against `caPath` (or the system roots) */
    readonly verifyClientCertificates: boolean;
  };
  readonly cache: CacheExpiry;
  readonly api: ReadonlyMap<string, RouteOverride>;
  readonly policies: readonly PolicyConfig[];
  readonly keyStore: KeyStoreConfig;
  readonly keys: readonly string[];
  readonly log: { readonly error: boolean; readonly audit: boolean };
  /** things worth telling the operator at startup (in-memory key store, ignored settings) */
  readonly warnings: readonly string[];
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

const unitsMs: Readonly<Record<string, number>> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, 'μs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Go `time.ParseDuration` → milliseconds: `300ms`, `1.5h`, `2h45m`, `0`. */
export function parseGoDuration(text: string): number | undefined {
  const trimmed = text.trim();
  if (trimmed === '0' || trimmed === '+0' || trimmed === '-0') return 0;
  const match = /^([-+]?)((?:(?:\d+\.?\d*|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+)$/.exec(trimmed);
  if (!match) return undefined;
  let totalMs = 0;
  for (const part of match[2]!.matchAll(/(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)/g)) {
    totalMs += Number(part[1]) * unitsMs[part[2]!]!;
  }
  return match[1] === '-' ? -totalMs : totalMs;
}

type Env = Readonly<Record<string, string | undefined>>;

/** Reads one YAML mapping, remembering which fields were consumed so the rest can be reported as unknown. */
class Section {
  readonly #consumed = new Set<string>();
  constructor(
    readonly path: string,
    readonly fields: Readonly<Record<string, unknown>>,
    readonly unknown: string[],
    readonly env: Env,
  ) {}

  static of(value: unknown, path: string, unknown: string[], env: Env): Section {
    if (value === undefined || value === null) return new Section(path, {}, unknown, env);
    if (typeof value !== 'object' || Array.isArray(value)) throw new ConfigError(`${path || 'config'}: expected a mapping`);
    return new Section(path, value as Record<string, unknown>, unknown, env);
  }

  #name(field: string): string {
    return this.path === '' ? field : `${this.path}.${field}`;
  }

  raw(field: string): unknown {
    this.#consumed.add(field);
    return this.fields[field];
  }

  has(field: string): boolean {
    return this.fields[field] !== undefined && this.fields[field] !== null;
  }

  section(field: string): Section {
    return Section.of(this.raw(field), this.#name(field), this.unknown, this.env);
  }

  /** a scalar as a string after `${ENV}` expansion; undefined when absent */
  string(field: string): string | undefined {
    return expandScalar(this.raw(field), this.#name(field), this.env);
  }

  requiredString(field: string): string {
    const value = this.string(field);
    if (value === undefined || value === '') throw new ConfigError(`${this.#name(field)} is required`);
    return value;
  }

  duration(field: string, fallbackMs: number): number {
    const text = this.string(field);
    if (text === undefined || text === '') return fallbackMs;
    const valueMs = parseGoDuration(text);
    if (valueMs === undefined) throw new ConfigError(`${this.#name(field)}: '${text}' is not a duration like 30s, 5m or 1h30m`);
    return valueMs;
  }

  onOff(field: string, fallback: boolean): boolean {
    const value = this.raw(field);
    if (typeof value === 'boolean') return value;
    const text = expandScalar(value, this.#name(field), this.env);
    if (text === undefined || text === '') return fallback;
    const lower = text.toLowerCase();
    if (['on', 'true', 'yes'].includes(lower)) return true;
    if (['off', 'false', 'no'].includes(lower)) return false;
    throw new ConfigError(`${this.#name(field)}: expected on or off, got '${text}'`);
  }

  stringList(field: string): string[] {
    const value = this.raw(field);
    if (value === undefined || value === null) return [];
    if (!Array.isArray(value)) throw new ConfigError(`${this.#name(field)}: expected a list`);
    return value.map((item, index) => {
      const text = expandScalar(item, `${this.#name(field)}[${index}]`, this.env);
      if (text === undefined || text === '') throw new ConfigError(`${this.#name(field)}[${index}]: empty entry`);
      return text;
    });
  }

  /** every field present but never read */
  finish(): void {
    for (const field of Object.keys(this.fields)) {
      if (!this.#consumed.has(field)) this.unknown.push(this.#name(field));
    }
  }
}

function expandScalar(value: unknown, path: string, env: Env): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (typeof value !== 'string') throw new ConfigError(`${path}: expected a single value`);
  const trimmed = value.trim();
  if (trimmed.startsWith('${') && trimmed.endsWith('}')) {
    const name = trimmed.slice(2, -1).trim();
    const expanded = env[name];
    if (expanded === undefined) throw new ConfigError(`${path}: environment variable '${name}' is not set`);
    return expanded;
  }
  return value;
}

const unsupportedKeyStores = [
  'vault',
  'fortanix',
  'aws',
  'gcp',
  'azure',
  'gemalto',
  'entrust',
  'keycontrol',
  'generic',
  'openstack',
] as const;

export function parseConfig(text: string, env: Env = process.env): KesConfig {
  if (Buffer.byteLength(text) > configSizeBytesMax) throw new ConfigError(`config is larger than ${configSizeBytesMax} bytes`);
  const document = parseDocument(text, { uniqueKeys: true, prettyErrors: true });
  if (document.errors.length > 0) throw new ConfigError(`invalid YAML: ${document.errors[0]!.message}`);
  const unknown: string[] = [];
  const warnings: string[] = [];
  const root = Section.of(document.toJS({ maxAliasCount: 100 }), '', unknown, env);

  const version = root.string('version');
  if (version !== undefined && version !== 'v1') throw new ConfigError(`version: only 'v1' is supported, got '${version}'`);
  const address = root.string('address') ?? defaultAddress;

  const admin = root.section('admin');
  const adminText = admin.requiredString('identity').trim();
  admin.finish();
  // KES: a value that is not an identity (e.g. `disabled`) turns the admin off.
  const adminIdentity = hexIdentityPattern.test(adminText.toLowerCase()) ? adminText.toLowerCase() : '';
  if (adminIdentity === '') warnings.push(`admin.identity '${adminText}' is not an identity: the admin is disabled`);

  const tlsSection = root.section('tls');
  const password = tlsSection.string('password');
  const caPath = tlsSection.string('ca');
  const tls = {
    keyPath: tlsSection.requiredString('key'),
    certPath: tlsSection.requiredString('cert'),
    ...(password !== undefined && password !== '' ? { password } : {}),
    ...(caPath !== undefined && caPath !== '' ? { caPath } : {}),
    verifyClientCertificates: tlsSection.onOff('auth', false),
  };
  if (tlsSection.has('proxy')) throw new ConfigError('tls.proxy: TLS proxies are not supported by coffer kes');
  tlsSection.finish();

  const cacheSection = root.section('cache');
  const expirySection = cacheSection.section('expiry');
  const cache: CacheExpiry = {
    anyMs: expirySection.duration('any', defaultCacheExpiry.anyMs),
    unusedMs: expirySection.duration('unused', defaultCacheExpiry.unusedMs),
    offlineMs: expirySection.duration('offline', defaultCacheExpiry.offlineMs),
  };
  expirySection.finish();
  cacheSection.finish();
  let effectiveCache = cache;
  if (cache.anyMs > 0 && cache.unusedMs > cache.anyMs) {
    warnings.push('cache.expiry.unused is longer than cache.expiry.any and has no effect');
    effectiveCache = { ...cache, unusedMs: 0 };
  }

  const apiSection = root.section('api');
  const api = new Map<string, RouteOverride>();
  for (const routePath of Object.keys(apiSection.fields)) {
    const route = apiSection.section(routePath);
    const timeoutMs = route.duration('timeout', 0);
    api.set(routePath, { skipAuth: route.onOff('skip_auth', false), ...(timeoutMs > 0 ? { timeoutMs } : {}) });
    route.finish();
  }
  apiSection.finish();

  const policySection = root.section('policy');
  const policies: PolicyConfig[] = [];
  const policyOf = new Map<string, string>();
  for (const name of Object.keys(policySection.fields)) {
    if (!isValidName(name)) throw new ConfigError(`policy name '${name}' is empty, too long or contains invalid characters`);
    const section = policySection.section(name);
    const policy: PolicyConfig = {
      name,
      allow: section.stringList('allow'),
      deny: section.stringList('deny'),
      identities: section.stringList('identities').map((identity) => identity.trim().toLowerCase()),
    };
    section.finish();
    for (const pattern of [...policy.allow, ...policy.deny]) {
      if (pattern.indexOf('*') !== -1 && pattern.indexOf('*') !== pattern.length - 1) {
        throw new ConfigError(`policy.${name}: pattern '${pattern}' may only have '*' at the end`);
      }
    }
    for (const identity of policy.identities) {
      if (!isValidName(identity)) throw new ConfigError(`policy.${name}: identity '${identity}' is empty, too long or contains invalid characters`);
      if (identity === adminIdentity) throw new ConfigError(`policy.${name}: the admin identity cannot be assigned a policy`);
      const other = policyOf.get(identity);
      if (other !== undefined) throw new ConfigError(`cannot assign policy '${name}' to '${identity}': identity already has policy '${other}'`);
      policyOf.set(identity, name);
    }
    policies.push(policy);
  }
  policySection.finish();

  let keyStore: KeyStoreConfig = { kind: 'memory' };
  if (root.has('keystore')) {
    const section = root.section('keystore');
    for (const backend of unsupportedKeyStores) {
      if (section.has(backend)) throw new ConfigError(`keystore.${backend}: not supported by coffer kes (use keystore.fs)`);
    }
    if (section.has('fs')) {
      const fsSection = section.section('fs');
      keyStore = { kind: 'fs', path: fsSection.requiredString('path') };
      fsSection.finish();
    }
    section.finish();
  }
  if (keyStore.kind === 'memory') {
    warnings.push('no keystore configured: keys are kept IN MEMORY and are lost when the server stops');
  }

  const keysValue = root.raw('keys');
  const keys: string[] = [];
  if (keysValue !== undefined && keysValue !== null) {
    if (!Array.isArray(keysValue)) throw new ConfigError('keys: expected a list of {name: ...}');
    keysValue.forEach((item, index) => {
      const section = Section.of(item, `keys[${index}]`, unknown, env);
      const name = section.requiredString('name');
      section.finish();
      if (!isValidName(name)) throw new ConfigError(`keys[${index}]: key name '${name}' is empty, too long or contains invalid characters`);
      keys.push(name);
    });
  }

  const logSection = root.section('log');
  const log = { error: logSection.onOff('error', true), audit: logSection.onOff('audit', false) };
  logSection.finish();

  root.finish();
  if (unknown.length > 0) throw new ConfigError(`unknown field${unknown.length > 1 ? 's' : ''} in config: ${unknown.join(', ')}`);

  return { address, adminIdentity, tls, cache: effectiveCache, api, policies, keyStore, keys, log, warnings };
}

export async function loadConfig(filePath: string, env: Env = process.env): Promise<KesConfig> {
  let text: string;
  try {
    text = await readFile(filePath, 'utf8');
  } catch (error) {
    throw new ConfigError(`cannot read config file ${filePath}: ${(error as Error).message}`);
  }
  try {
    return parseConfig(text, env);
  } catch (error) {
    if (error instanceof ConfigError) throw new ConfigError(`${filePath}: ${error.message}`);
    throw error;
  }
}
