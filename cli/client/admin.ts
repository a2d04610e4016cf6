// coffer admin info ALIAS
//
// GET <endpoint>/coffer/admin/v1/info, SigV4-signed with the alias's keys (service s3) like any S3 request,
// answered with JSON: { version, uptimeSeconds, drives: [{ path, state, totalBytes, freeBytes }],
// kms: { name, defaultKey, status, endpoints }, buckets }. Printed as mc admin info prints a server:
//   ●  127.0.0.1:9000
//      Uptime: 5 minutes
//      Version: 0.1.0
//      Drives: 1/1 OK
//      KMS: builtin (default key: my-key) online
//
//   11 GiB Used of 50 GiB, 2 Buckets
//   1 drive online, 0 drives offline
// --json prints the server's document (plus "status": "success").
//
// coffer admin heal ALIAS[/BUCKET[/PREFIX]]
//
// POST <endpoint>/coffer/admin/v1/heal?bucket=&prefix=, answered with newline-delimited JSON progress; prints
// a progress line per update and a summary `healed: N objects scanned, N healed, N failed`. Exit 1 when
// any object could not be healed.

import { CommandError, humanBytes, remotePath, setUpCommand, UsageError } from './common.ts';
import { S3ClientError } from './s3-client.ts';

export const adminUsage = 'usage: coffer admin info [--json] ALIAS | coffer admin heal [--json] ALIAS[/BUCKET[/PREFIX]]';

export interface AdminDrive {
  readonly path: string;
  readonly state: 'ok' | 'offline' | string;
  readonly totalBytes: number;
  readonly freeBytes: number;
}

export interface AdminInfo {
  readonly version: string;
  readonly uptimeSeconds: number;
  readonly drives: readonly AdminDrive[];
  readonly kms: { readonly name: string; readonly defaultKey: string; readonly status: 'online' | 'offline' | string; readonly endpoints: Readonly<Record<string, unknown>> };
  readonly buckets: number;
  /** multi-drive deployments: the erasure layout */
  readonly erasure?: { readonly sets: number; readonly setSize: number; readonly dataShards: number; readonly parityShards: number };
}

/** The document, checked field by field: a server that answers something else gets a clear error, not NaN. */
export function parseAdminInfo(text: string): AdminInfo {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new CommandError('admin info: the server did not answer JSON', 'MalformedResponse');
  }
  const fail = (what: string): never => {
    throw new CommandError(`admin info: unexpected answer (${what})`, 'MalformedResponse');
  };
  const doc = (typeof value === 'object' && value !== null ? value : fail('not an object')) as Record<string, unknown>;
  if (typeof doc['version'] !== 'string') fail('version');
  if (typeof doc['uptimeSeconds'] !== 'number') fail('uptimeSeconds');
  if (typeof doc['buckets'] !== 'number') fail('buckets');
  if (!Array.isArray(doc['drives'])) fail('drives');
  const drives = (doc['drives'] as unknown[]).map((drive, index) => {
    const d = (typeof drive === 'object' && drive !== null ? drive : fail(`drives[${index}]`)) as Record<string, unknown>;
    if (typeof d['path'] !== 'string' || typeof d['state'] !== 'string' || typeof d['totalBytes'] !== 'number' || typeof d['freeBytes'] !== 'number') {
      fail(`drives[${index}]`);
    }
    return { path: d['path'] as string, state: d['state'] as string, totalBytes: d['totalBytes'] as number, freeBytes: d['freeBytes'] as number };
  });
  const kms = (typeof doc['kms'] === 'object' && doc['kms'] !== null ? doc['kms'] : fail('kms')) as Record<string, unknown>;
  const endpoints = typeof kms['endpoints'] === 'object' && kms['endpoints'] !== null ? kms['endpoints'] as Record<string, unknown> : {};
  return {
    version: doc['version'] as string,
    uptimeSeconds: doc['uptimeSeconds'] as number,
    drives,
    kms: { name: String(kms['name'] ?? 'unknown'), defaultKey: String(kms['defaultKey'] ?? ''), status: String(kms['status'] ?? 'offline'), endpoints },
    buckets: doc['buckets'] as number,
    ...(erasureOf(doc['erasure']) ?? {}),
  };
}

function erasureOf(value: unknown): Pick<AdminInfo, 'erasure'> | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const e = value as Record<string, unknown>;
  const numbers = ['sets', 'setSize', 'dataShards', 'parityShards'].map((name) => e[name]);
  if (!numbers.every((n) => typeof n === 'number')) return undefined;
  const [sets, setSize, dataShards, parityShards] = numbers as number[];
  return { erasure: { sets: sets!, setSize: setSize!, dataShards: dataShards!, parityShards: parityShards! } };
}

function plural(count: number, word: string): string {
  return `${count} ${word}${count === 1 ? '' : 's'}`;
}

/** "42 seconds", "5 minutes", "3 hours", "12 days" (go-humanize's coarse style, as mc shows uptime). */
export function humanUptime(seconds: number): string {
  if (seconds < 60) return plural(Math.floor(seconds), 'second');
  if (seconds < 3600) return plural(Math.floor(seconds / 60), 'minute');
  if (seconds < 86_400) return plural(Math.floor(seconds / 3600), 'hour');
  return plural(Math.floor(seconds / 86_400), 'day');
}

export function formatAdminInfo(host: string, info: AdminInfo): string[] {
  // A healing drive is online (it takes writes and serves what it has); only `offline` is missing.
  const online = info.drives.filter((drive) => drive.state !== 'offline');
  const offline = info.drives.length - online.length;
  const healing = info.drives.filter((drive) => drive.state === 'healing');
  const totalBytes = online.reduce((sum, drive) => sum + drive.totalBytes, 0);
  const usedBytes = online.reduce((sum, drive) => sum + Math.max(0, drive.totalBytes - drive.freeBytes), 0);
  const lines = [
    `${offline === 0 ? '●' : '◍'}  ${host}`,
    `   Uptime: ${humanUptime(info.uptimeSeconds)}`,
    `   Version: ${info.version}`,
    `   Drives: ${online.length}/${info.drives.length} ${offline === 0 ? (healing.length === 0 ? 'OK' : 'healing') : 'degraded'}`,
    ...(info.erasure === undefined
      ? []
      : [`   Erasure: ${info.erasure.sets} ${info.erasure.sets === 1 ? 'set' : 'sets'} of ${info.erasure.setSize} drives (${info.erasure.dataShards} data + ${info.erasure.parityShards} parity)`]),
    `   KMS: ${info.kms.name}${info.kms.defaultKey === '' ? '' : ` (default key: ${info.kms.defaultKey})`} ${info.kms.status}`,
  ];
  for (const [endpoint, state] of Object.entries(info.kms.endpoints)) lines.push(`      ${endpoint}: ${String(state)}`);
  for (const drive of info.drives.filter((d) => d.state === 'offline')) lines.push(`   Drive offline: ${drive.path}`);
  for (const drive of healing) lines.push(`   Drive healing: ${drive.path}`);
  lines.push(
    '',
    `${humanBytes(usedBytes)} Used of ${humanBytes(totalBytes)}, ${plural(info.buckets, 'Bucket')}`,
    `${plural(online.length, 'drive')} online, ${plural(offline, 'drive')} offline`,
  );
  return lines;
}

export async function runAdmin(args: readonly string[]): Promise<number> {
  const setup = await setUpCommand(args, {}, adminUsage);
  if (setup === undefined) return 0;
  const { positionals, ctx } = setup;
  const [subcommand, target, ...extra] = positionals;
  if (subcommand === 'heal') return runHeal(ctx, target, extra);
  if (subcommand !== 'info') throw new UsageError(subcommand === undefined ? 'admin needs a subcommand: info or heal' : `unknown admin subcommand '${subcommand}' (info or heal)`);
  if (target === undefined || extra.length > 0) throw new UsageError('admin info takes exactly ALIAS');
  const path = remotePath(ctx, target);
  if (path.bucket !== '') throw new UsageError(`admin info takes an alias, not a bucket ('${target}')`);
  let body: Buffer;
  try {
    // the admin path sits beside the buckets, as if it were bucket "coffer", key "admin/v1/info"
    body = (await path.client.send({ method: 'GET', bucket: 'coffer', key: 'admin/v1/info' })).body;
  } catch (error) {
    if (error instanceof S3ClientError && (error.status === 404 || error.status === 501)) {
      throw new CommandError(`${path.alias.name} (${path.client.endpoint.host}) does not serve /coffer/admin/v1/info: it is not a Coffer server, or an older one`, 'NotCoffer');
    }
    throw error;
  }
  const info = parseAdminInfo(body.toString('utf8'));
  for (const line of formatAdminInfo(path.client.endpoint.host, info)) ctx.out.line(line);
  ctx.out.json({ status: 'success', endpoint: path.client.endpoint.origin, ...info });
  return 0;
}

interface HealLine {
  readonly type: 'progress' | 'done' | 'error';
  readonly scanned?: number;
  readonly healed?: number;
  readonly failed?: number;
  readonly current?: string;
  readonly message?: string;
}

async function runHeal(ctx: Parameters<typeof remotePath>[0], target: string | undefined, extra: readonly string[]): Promise<number> {
  if (target === undefined || extra.length > 0) throw new UsageError('admin heal takes exactly ALIAS[/BUCKET[/PREFIX]]');
  const path = remotePath(ctx, target);
  const query: Record<string, string> = {};
  if (path.bucket !== '') query['bucket'] = path.bucket;
  if (path.key !== '') query['prefix'] = path.key;
  let response;
  try {
    response = await path.client.open({ method: 'POST', bucket: 'coffer', key: 'admin/v1/heal', query });
  } catch (error) {
    if (error instanceof S3ClientError && (error.status === 404 || error.status === 501)) {
      throw new CommandError(`${path.alias.name} (${path.client.endpoint.host}) cannot heal: ${error.message}`, 'NotSupported');
    }
    throw error;
  }
  let buffered = '';
  let last: HealLine | undefined;
  const handle = (text: string): void => {
    if (text.trim() === '') return;
    let line: HealLine;
    try {
      line = JSON.parse(text) as HealLine;
    } catch {
      throw new CommandError('admin heal: the server sent a malformed progress line', 'MalformedResponse');
    }
    last = line;
    if (line.type === 'progress') ctx.out.line(`scanned ${line.scanned}, healed ${line.healed}, failed ${line.failed}: ${line.current ?? ''}`);
  };
  for await (const chunk of response.stream) {
    buffered += (chunk as Buffer).toString('utf8');
    let newline: number;
    while ((newline = buffered.indexOf('\n')) >= 0) {
      handle(buffered.slice(0, newline));
      buffered = buffered.slice(newline + 1);
    }
  }
  handle(buffered);
  const final = last as HealLine | undefined;
  if (final === undefined || final.type === 'progress') throw new CommandError('admin heal: the server stopped before the heal finished', 'IncompleteHeal');
  if (final.type === 'error') throw new CommandError(`admin heal: ${final.message ?? 'failed'}`, 'HealFailed');
  const noun = final.scanned === 1 ? 'object' : 'objects';
  ctx.out.line(`healed: ${final.scanned} ${noun} scanned, ${final.healed} healed, ${final.failed} failed`);
  ctx.out.json({ status: final.failed === 0 ? 'success' : 'error', scanned: final.scanned, healed: final.healed, failed: final.failed });
  return final.failed === 0 ? 0 : 1;
}
