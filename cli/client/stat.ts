// coffer stat [--enc-c "ALIAS/BUCKET/PREFIX=KEY"] ALIAS/BUCKET[/OBJECT]...
//
// An object as mc shows it (HEAD):
//   Name      : test.file
//   Date      : 2026-11-27 12:39:48 UTC
//   Size      : 1.0 MiB
//   ETag      : 9b2cf535f27731c974343645a3985328
//   Type      : file
//   Metadata  :
//     Content-Type: application/octet-stream
//   Encrypted :
//     X-Amz-Server-Side-Encryption: AES256
// A bucket: its name, creation date, location and default encryption.

import type http from 'node:http';
import { CommandError, humanBytes, humanDate, remotePath, setUpCommand, UsageError, type ClientContext, type RemotePath } from './common.ts';
import { getBucketEncryption, headObjectIfExists, listBuckets } from './operations.ts';
import { S3ClientError } from './s3-client.ts';
import { sseOptions, sseReadHeaders, SseRules } from './sse.ts';

export const statUsage = 'usage: coffer stat [--enc-c "ALIAS/BUCKET/PREFIX=BASE64KEY"] [--json] ALIAS/BUCKET[/OBJECT]...';

const encryptionHeaderPrefix = 'x-amz-server-side-encryption';

/** "x-amz-server-side-encryption-aws-kms-key-id" → "X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id" (Go's canonical form). */
export function canonicalHeaderName(name: string): string {
  return name.split('-').map((word) => (word === '' ? word : word[0]!.toUpperCase() + word.slice(1).toLowerCase())).join('-');
}

export interface StatFields {
  readonly metadata: Readonly<Record<string, string>>;
  readonly encryption: Readonly<Record<string, string>>;
}

/** The metadata and encryption headers of a HEAD answer, under their canonical names, sorted. */
export function statFields(headers: http.IncomingHttpHeaders): StatFields {
  const metadata: Record<string, string> = {};
  const encryption: Record<string, string> = {};
  for (const name of Object.keys(headers).sort()) {
    const raw = headers[name];
    const value = Array.isArray(raw) ? raw.join(',') : raw ?? '';
    if (name.startsWith(encryptionHeaderPrefix)) encryption[canonicalHeaderName(name)] = value;
    else if (name === 'content-type' || name === 'content-encoding' || name === 'content-disposition' || name === 'content-language' ||
      name === 'cache-control' || name === 'expires' || name.startsWith('x-amz-meta-')) {
      metadata[canonicalHeaderName(name)] = value;
    }
  }
  return { metadata, encryption };
}

function field(label: string, value: string): string {
  return `${label.padEnd(10)}: ${value}`;
}

function block(title: string, entries: Readonly<Record<string, string>>): string[] {
  const names = Object.keys(entries);
  if (names.length === 0) return [];
  const width = Math.max(...names.map((name) => name.length));
  return [`${title.padEnd(10)}:`, ...names.map((name) => `  ${name.padEnd(width)}: ${entries[name]}`)];
}

async function statObject(ctx: ClientContext, path: RemotePath, rules: SseRules): Promise<void> {
  const headers = sseReadHeaders(rules.for(path.text));
  let head;
  try {
    head = await headObjectIfExists(path.client, path.bucket, path.key, headers);
  } catch (error) {
    if (error instanceof S3ClientError && error.status === 400 && Object.keys(headers).length === 0) {
      throw new CommandError(`\`${path.text}\` is encrypted with a customer key (SSE-C): give it with --enc-c "${path.text}=BASE64KEY"`, 'SSECustomerKeyRequired');
    }
    throw error;
  }
  if (head === undefined) throw new CommandError(`\`${path.text}\` does not exist`, 'NoSuchKey');
  const { metadata, encryption } = statFields(head.headers);
  const name = path.key.slice(path.key.lastIndexOf('/') + 1);
  const lines = [
    field('Name', name),
    field('Date', humanDate(head.lastModified)),
    field('Size', humanBytes(head.sizeBytes)),
    ...(head.etag === '' ? [] : [field('ETag', head.etag)]),
    field('Type', 'file'),
    ...block('Metadata', metadata),
    ...block('Encrypted', encryption),
  ];
  for (const line of lines) ctx.out.line(line);
  ctx.out.json({
    status: 'success', name, key: path.key, url: path.text, lastModified: head.lastModified.toISOString(), size: head.sizeBytes,
    etag: head.etag, type: 'file', metadata, encryption,
  });
}

async function statBucket(ctx: ClientContext, path: RemotePath): Promise<void> {
  const bucket = (await listBuckets(path.client)).find((candidate) => candidate.name === path.bucket);
  if (bucket === undefined) {
    await path.client.send({ method: 'HEAD', bucket: path.bucket }); // the server's own error (NoSuchBucket, AccessDenied)
    throw new CommandError(`bucket \`${path.text}\` does not exist`, 'NoSuchBucket');
  }
  const location = await path.client.sendForXml({ method: 'GET', bucket: path.bucket, query: { location: '' } });
  const region = location.text.trim() === '' ? 'us-east-1' : location.text.trim();
  const encryption = await getBucketEncryption(path.client, path.bucket);
  const keyType = encryption === undefined ? undefined : encryption.algorithm === 'aws:kms' ? 'SSE-KMS' : 'SSE-S3';
  ctx.out.line(field('Name', path.bucket));
  ctx.out.line(field('Date', humanDate(bucket.created)));
  ctx.out.line(field('Size', 'N/A'));
  ctx.out.line(field('Type', 'folder'));
  ctx.out.line(field('Location', region));
  if (keyType !== undefined) {
    ctx.out.line(`${'Encryption'.padEnd(10)}:`);
    ctx.out.line(`  Key Type: ${keyType}`);
    if (encryption?.kmsKeyId !== undefined) ctx.out.line(`  Key ID  : ${encryption.kmsKeyId}`);
  }
  ctx.out.json({
    status: 'success', name: path.bucket, url: path.text, lastModified: bucket.created.toISOString(), type: 'folder', location: region,
    encryption: encryption === undefined ? null : { algorithm: encryption.algorithm, ...(encryption.kmsKeyId === undefined ? {} : { kmsKeyId: encryption.kmsKeyId }) },
  });
}

export async function runStat(args: readonly string[]): Promise<number> {
  const setup = await setUpCommand(args, { ...sseOptions }, statUsage);
  if (setup === undefined) return 0;
  const { values, positionals, ctx } = setup;
  if (positionals.length === 0) throw new UsageError('stat needs ALIAS/BUCKET[/OBJECT]');
  const rules = new SseRules(values);
  for (const [index, text] of positionals.entries()) {
    const path = remotePath(ctx, text);
    if (path.bucket === '') throw new UsageError('stat needs ALIAS/BUCKET or ALIAS/BUCKET/OBJECT');
    if (index > 0) ctx.out.line('');
    if (path.key === '') await statBucket(ctx, path);
    else await statObject(ctx, path, rules);
  }
  return 0;
}
