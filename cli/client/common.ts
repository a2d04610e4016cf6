// What every client command shares: option parsing (node:util parseArgs plus the global flags), resolving
// `ALIAS/BUCKET/KEY` to an S3 client, mc-style output (human lines, or one JSON object per line with --json),
// and the human formats of sizes and dates.

import { parseArgs, type ParseArgsConfig } from 'node:util';
import { allAliases, type ResolvedAlias } from './alias.ts';
import { S3Client, S3ClientError, type TlsConfig } from './s3-client.ts';

/** A wrong command line: exit code 2 and the command's usage. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** A failure the user should read plainly (not a bug): exit code 1. */
export class CommandError extends Error {
  readonly code: string;
  constructor(message: string, code = 'CommandFailed') {
    super(message);
    this.name = 'CommandError';
    this.code = code;
  }
}

type OptionSpec = NonNullable<ParseArgsConfig['options']>;

/** Flags every client command takes. */
export const globalOptions = {
  json: { type: 'boolean', default: false },
  quiet: { type: 'boolean', short: 'q', default: false },
  insecure: { type: 'boolean', default: false },
  ca: { type: 'string', multiple: true },
  help: { type: 'boolean', short: 'h', default: false },
} as const satisfies OptionSpec;

export interface Output {
  /** a human line on stdout (suppressed by --json and --quiet) */
  line(text: string): void;
  /** one JSON object on its own line on stdout (only with --json) */
  json(value: Record<string, unknown>): void;
  /** a warning on stderr */
  warn(text: string): void;
}

export interface ClientContext {
  readonly json: boolean;
  readonly quiet: boolean;
  readonly tls: TlsConfig;
  readonly out: Output;
  /** the alias called `name`, or undefined */
  alias(name: string): ResolvedAlias | undefined;
  /** the S3 client of an alias (one per alias per command, so connections are reused) */
  client(alias: ResolvedAlias): S3Client;
}

export interface ParsedCommand<Values> {
  readonly values: Values;
  readonly positionals: string[];
}

/** parseArgs with the global flags added; unknown flags are usage errors. */
export function parseCommand<const Options extends OptionSpec>(args: readonly string[], options: Options) {
  try {
    return parseArgs({ args: [...args], options: { ...globalOptions, ...options }, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

/** Parses a command's flags, prints its usage for --help (undefined then), and builds the context. */
export async function setUpCommand<const Options extends OptionSpec>(args: readonly string[], options: Options, usage: string) {
  const parsed = parseCommand(args, options);
  const flags = parsed.values as { help?: boolean; json?: boolean; quiet?: boolean; insecure?: boolean; ca?: string[] };
  if (flags.help === true) {
    process.stdout.write(`${usage}\n`);
    return undefined;
  }
  return { values: parsed.values, positionals: parsed.positionals, ctx: await makeContext(flags) };
}

export async function makeContext(flags: { json?: boolean; quiet?: boolean; insecure?: boolean; ca?: string[] }): Promise<ClientContext> {
  const aliases = await allAliases();
  const caFiles = [...(flags.ca ?? [])];
  const envCa = process.env['COFFER_CA_FILE'];
  if (envCa !== undefined && envCa !== '') caFiles.push(envCa);
  const tls: TlsConfig = { caFiles, insecure: flags.insecure === true };
  const json = flags.json === true;
  const quiet = flags.quiet === true;
  const clients = new Map<string, S3Client>();
  const out: Output = {
    line: (text) => {
      if (!json && !quiet) process.stdout.write(`${text}\n`);
    },
    json: (value) => {
      if (json) process.stdout.write(`${JSON.stringify(value)}\n`);
    },
    warn: (text) => {
      process.stderr.write(`coffer: ${text}\n`);
    },
  };
  return {
    json,
    quiet,
    tls,
    out,
    alias: (name) => aliases.get(name),
    client: (alias) => {
      let client = clients.get(alias.name);
      if (client === undefined) {
        client = new S3Client(alias, tls);
        clients.set(alias.name, client);
      }
      return client;
    },
  };
}

/** `ALIAS[/BUCKET[/KEY]]` on a known alias. */
export interface RemotePath {
  readonly alias: ResolvedAlias;
  readonly client: S3Client;
  /** '' when only the alias was given */
  readonly bucket: string;
  /** the object key or prefix, '' for the bucket itself; keeps a trailing '/' as typed */
  readonly key: string;
  /** as the user typed it, normalised (ALIAS/BUCKET/KEY) */
  readonly text: string;
}

/** The alias part of a path, if that alias exists; local paths are everything else (as in mc). */
export function remoteAliasOf(ctx: ClientContext, text: string): ResolvedAlias | undefined {
  const slash = text.indexOf('/');
  const name = slash < 0 ? text : text.slice(0, slash);
  if (name === '' || name === '.' || name === '..') return undefined;
  return ctx.alias(name);
}

export function isRemote(ctx: ClientContext, text: string): boolean {
  return remoteAliasOf(ctx, text) !== undefined;
}

export function remotePath(ctx: ClientContext, text: string): RemotePath {
  const alias = remoteAliasOf(ctx, text);
  if (alias === undefined) {
    const name = text.split('/')[0] ?? text;
    throw new CommandError(`'${name}' is not an alias: add it with 'coffer alias set ${name} URL ACCESS SECRET'`, 'NoSuchAlias');
  }
  const rest = text.slice(alias.name.length).replace(/^\/+/, '');
  const slash = rest.indexOf('/');
  const bucket = slash < 0 ? rest : rest.slice(0, slash);
  const key = slash < 0 ? '' : rest.slice(slash + 1);
  return { alias, client: ctx.client(alias), bucket, key, text: `${alias.name}${bucket === '' ? '' : `/${bucket}`}${key === '' ? '' : `/${key}`}` };
}

export function requireBucket(path: RemotePath, command: string): void {
  if (path.bucket === '') throw new UsageError(`${command} needs ALIAS/BUCKET, not just the alias '${path.alias.name}'`);
}

export function requireObject(path: RemotePath, command: string): void {
  if (path.bucket === '' || path.key === '' || path.key.endsWith('/')) throw new UsageError(`${command} needs ALIAS/BUCKET/OBJECT, got '${path.text}'`);
}

// --------------------------------------------------------------------------------------- human formats

const binaryUnits = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'];

/** The power of 1024 to show `bytes` in (exact integer arithmetic, no floating-point logarithms). */
function binaryExponent(bytes: number): number {
  let exponent = 0;
  while (exponent < binaryUnits.length - 1 && bytes >= 1024 ** (exponent + 1)) exponent++;
  return exponent;
}

/** Bytes as mc (go-humanize IBytes) prints them: "512 B", "1.0 MiB", "70 MiB". */
export function humanBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const exponent = binaryExponent(bytes);
  // go-humanize rounds to one decimal, then shows one decimal below 10 and none above
  const value = Math.floor((bytes / 1024 ** exponent) * 10 + 0.5) / 10;
  return `${value < 10 ? value.toFixed(1) : value.toFixed(0)} ${binaryUnits[exponent]}`;
}

/** Bytes with two decimals ("12.00 MiB"), as mc's progress bar and summaries show them. */
export function humanBytesPrecise(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const exponent = binaryExponent(bytes);
  return `${(bytes / 1024 ** exponent).toFixed(2)} ${binaryUnits[exponent]}`;
}

/** A date as mc prints it: "2026-11-27 12:39:48 UTC". */
export function humanDate(date: Date): string {
  return `${date.toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}

/** A duration as "1h02m", "3m07s", "12s". */
export function humanDurationShort(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--';
  const whole = Math.round(seconds);
  const hours = Math.floor(whole / 3600);
  const minutes = Math.floor((whole % 3600) / 60);
  const secs = whole % 60;
  if (hours > 0) return `${hours}h${String(minutes).padStart(2, '0')}m`;
  if (minutes > 0) return `${minutes}m${String(secs).padStart(2, '0')}s`;
  return `${secs}s`;
}

/** An error as one line for stderr, or as mc's JSON error object. */
export function describeError(error: unknown): { message: string; code: string } {
  if (error instanceof S3ClientError) return { message: error.message, code: error.code };
  if (error instanceof CommandError) return { message: error.message, code: error.code };
  const errno = error as NodeJS.ErrnoException;
  if (typeof errno?.code === 'string') return { message: errno.message, code: errno.code };
  return { message: error instanceof Error ? error.message : String(error), code: 'Error' };
}
