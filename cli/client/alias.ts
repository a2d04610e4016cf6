// Aliases: named S3 endpoints with their credentials, as `mc alias` keeps them.
//
// Stored in `$COFFER_CONFIG_DIR/config.json` (default `~/.coffer/config.json`), folder mode 0700 and file mode
// 0600 because it holds secret keys; written to a temporary file and renamed, so a crash never leaves half a
// file. The layout follows mc's config.json (version, aliases → url/accessKey/secretKey/api/path), so a
// reader of one understands the other.
//
// `MC_HOST_<alias>=https://ACCESS:SECRET@host[:port]` in the environment defines (or overrides) an alias for
// one command, as in mc; `COFFER_HOST_<alias>` is the same with our own prefix and wins over MC_HOST_.

import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import path from 'node:path';
import type { EndpointConfig } from './s3-client.ts';

export const configFileName = 'config.json';
const configVersion = '1';
/** mc's rule: a letter, then letters, digits, '-' and '_'. */
const aliasNamePattern = /^[A-Za-z][A-Za-z0-9_-]{0,63}$/;
/** The config file is ours and small; refuse anything absurd rather than reading it whole. */
const configBytesMax = 4 * 1024 * 1024;
const envPrefixes = ['COFFER_HOST_', 'MC_HOST_'] as const;

export interface AliasEntry extends EndpointConfig {
  readonly url: string;
  readonly accessKey: string;
  readonly secretKey: string;
  readonly region?: string;
  readonly api: 's3v4';
  readonly path: 'auto';
}

export interface AliasConfig {
  readonly version: string;
  readonly aliases: Readonly<Record<string, AliasEntry>>;
}

export interface ResolvedAlias extends AliasEntry {
  readonly name: string;
  readonly source: 'config' | 'env';
}

export function configDir(): string {
  const fromEnv = process.env['COFFER_CONFIG_DIR'];
  return fromEnv !== undefined && fromEnv !== '' ? fromEnv : path.join(homedir(), '.coffer');
}

export function configPath(): string {
  return path.join(configDir(), configFileName);
}

export function isValidAliasName(name: string): boolean {
  return aliasNamePattern.test(name);
}

/** Checks an endpoint URL as given on the command line: http(s), a host, no credentials, no query. */
export function normalizeEndpointUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new Error(`'${text}' is not a URL (expected http://host:port or https://host)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`'${text}' must start with http:// or https://`);
  if (url.username !== '' || url.password !== '') throw new Error(`'${text}' must not carry credentials; give them as ACCESS SECRET`);
  if (url.search !== '' || url.hash !== '') throw new Error(`'${text}' must not have a query or fragment`);
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
}

export async function readConfig(): Promise<AliasConfig> {
  let text: string;
  try {
    text = await readFile(configPath(), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { version: configVersion, aliases: {} };
    throw error;
  }
  if (text.length > configBytesMax) throw new Error(`${configPath()} is larger than ${configBytesMax} bytes`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new Error(`${configPath()} is not valid JSON`);
  }
  const aliases: Record<string, AliasEntry> = {};
  const raw = (parsed as { aliases?: unknown }).aliases;
  if (raw !== undefined && (typeof raw !== 'object' || raw === null)) throw new Error(`${configPath()}: "aliases" must be an object`);
  for (const [name, value] of Object.entries((raw ?? {}) as Record<string, unknown>)) {
    const entry = value as Partial<Record<string, unknown>>;
    if (typeof entry.url !== 'string' || typeof entry.accessKey !== 'string' || typeof entry.secretKey !== 'string') {
      throw new Error(`${configPath()}: alias '${name}' needs url, accessKey and secretKey strings`);
    }
    aliases[name] = {
      url: entry.url,
      accessKey: entry.accessKey,
      secretKey: entry.secretKey,
      ...(typeof entry.region === 'string' && entry.region !== '' ? { region: entry.region } : {}),
      api: 's3v4',
      path: 'auto',
    };
  }
  return { version: configVersion, aliases };
}

export async function writeConfig(config: AliasConfig): Promise<void> {
  const dir = configDir();
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const file = configPath();
  const temporary = `${file}.${process.pid}.tmp`;
  await writeFile(temporary, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
  await chmod(temporary, 0o600); // writeFile's mode is filtered by the umask; the secret file must be 0600 whatever it is
  await rename(temporary, file);
}

/** An alias from `MC_HOST_<name>` / `COFFER_HOST_<name>`, if set. */
export function aliasFromEnv(name: string): ResolvedAlias | undefined {
  for (const prefix of envPrefixes) {
    const value = process.env[`${prefix}${name}`];
    if (value === undefined || value === '') continue;
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      throw new Error(`${prefix}${name} is not a URL (expected https://ACCESS:SECRET@host)`);
    }
    if (url.username === '' || url.password === '') throw new Error(`${prefix}${name} must carry credentials: https://ACCESS:SECRET@host`);
    const accessKey = decodeURIComponent(url.username);
    // mc allows ACCESS:SECRET:SESSION-TOKEN; session tokens are not supported here, so refuse rather than ignore one.
    const secretKey = decodeURIComponent(url.password);
    if (secretKey.includes(':')) throw new Error(`${prefix}${name}: session tokens are not supported`);
    url.username = '';
    url.password = '';
    return { name, url: normalizeEndpointUrl(url.toString()), accessKey, secretKey, api: 's3v4', path: 'auto', source: 'env' };
  }
  return undefined;
}

/** Every alias name defined in the environment. */
function envAliasNames(): string[] {
  const names = new Set<string>();
  for (const variable of Object.keys(process.env)) {
    for (const prefix of envPrefixes) {
      if (variable.startsWith(prefix) && isValidAliasName(variable.slice(prefix.length))) names.add(variable.slice(prefix.length));
    }
  }
  return [...names];
}

/** All aliases: the config file's, overridden by the environment's. */
export async function allAliases(): Promise<Map<string, ResolvedAlias>> {
  const config = await readConfig();
  const all = new Map<string, ResolvedAlias>();
  for (const [name, entry] of Object.entries(config.aliases)) all.set(name, { ...entry, name, source: 'config' });
  for (const name of envAliasNames()) {
    const entry = aliasFromEnv(name);
    if (entry) all.set(name, entry);
  }
  return all;
}

export async function setAlias(name: string, entry: Omit<AliasEntry, 'api' | 'path'>): Promise<void> {
  if (!isValidAliasName(name)) throw new Error(`invalid alias name '${name}' (a letter, then letters, digits, '-' or '_')`);
  const config = await readConfig();
  await writeConfig({ version: configVersion, aliases: { ...config.aliases, [name]: { ...entry, api: 's3v4', path: 'auto' } } });
}

/** Removes an alias from the config file; false if it was not there. */
export async function removeAlias(name: string): Promise<boolean> {
  const config = await readConfig();
  if (!(name in config.aliases)) return false;
  const aliases = { ...config.aliases };
  delete aliases[name];
  await writeConfig({ version: configVersion, aliases });
  return true;
}
