// coffer cp [--recursive] [--enc-s3 …] [--enc-kms …] [--enc-c …] SRC... DST
//
// SRC and DST are local paths or ALIAS/BUCKET/KEY. Every direction works:
//   local → remote   PUT below 64 MiB; at 64 MiB and above a multipart upload of 16 MiB parts (bigger when
//                    the object would need more than 10,000 parts), 4 parts in flight, aborted on failure
//   remote → local   GET streamed into FILE.part.coffer, renamed over FILE once complete and of the right length
//   remote → remote  same server: CopyObject (UploadPartCopy above 5 GiB), no bytes through the client;
//                    different servers: GET streamed into the same upload path as local files
//   local → local    copyFile
// With --recursive a folder is copied as rsync does: `dir` copies the folder itself (DST/dir/…), `dir/` its
// content (DST/…); the same for ALIAS/BUCKET/PREFIX sources (mc's rule).
//
// Output: on a terminal a live progress bar (progress.ts); otherwise one summary line at the end; with
// --json one JSON line per object copied. The first failure stops the command (exit 1).

import { createWriteStream } from 'node:fs';
import { copyFile, mkdir, open, readdir, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import type http from 'node:http';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import {
  CommandError, humanBytesPrecise, isRemote, remotePath, setUpCommand, UsageError, type ClientContext, type RemotePath,
} from './common.ts';
import { abortMultipartUpload, headObjectIfExists, listObjects, stripQuotes } from './operations.ts';
import { ProgressBar, summaryLine } from './progress.ts';
import { childText, S3ClientError, uriEncode, type S3Client } from './s3-client.ts';
import { sseCopySourceHeaders, sseOptions, sseReadHeaders, SseRules, sseWriteHeaders, type Sse } from './sse.ts';
import { escapeXml, parseXml } from '../../api/xml.ts';

export const cpUsage = `usage: coffer cp [--recursive] [--enc-s3 ALIAS/BUCKET/PREFIX] [--enc-kms "ALIAS/BUCKET/PREFIX=KEY"]
                 [--enc-c "ALIAS/BUCKET/PREFIX=BASE64KEY"] [--json] [--quiet] SRC... DST
  SRC and DST are local paths or ALIAS/BUCKET/OBJECT; --recursive copies folders and prefixes`;

const mebibyte = 1024 * 1024;
/** Objects of this size and above are uploaded in parts (the brief's 64 MiB; S3 allows up to 5 GiB in one PUT). */
export const multipartThresholdBytes = 64 * mebibyte;
export const partSizeBytes = 16 * mebibyte;
/** Parts in flight per object: bounds memory (4 × 16 MiB) and sockets. */
export const partsInFlightMax = 4;
/** S3's limits: 10,000 parts, 5 GiB per single PUT / CopyObject. */
const partsPerUploadMax = 10_000;
const singleCopyBytesMax = 5 * 1024 * mebibyte;
const copyPartSizeBytes = 512 * mebibyte;
/** A recursive copy of more entries than this is refused rather than listed into memory. */
const jobsMax = 1_000_000;
const partFileSuffix = '.part.coffer';

/** Content types by extension for uploads (mc guesses them too); anything else is application/octet-stream. */
const contentTypes: Readonly<Record<string, string>> = {
  '.txt': 'text/plain', '.html': 'text/html', '.htm': 'text/html', '.css': 'text/css', '.csv': 'text/csv', '.md': 'text/markdown',
  '.js': 'text/javascript', '.mjs': 'text/javascript', '.json': 'application/json', '.xml': 'application/xml', '.pdf': 'application/pdf',
  '.zip': 'application/zip', '.gz': 'application/gzip', '.tar': 'application/x-tar', '.png': 'image/png', '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg', '.gif': 'image/gif', '.svg': 'image/svg+xml', '.webp': 'image/webp', '.mp4': 'video/mp4', '.mp3': 'audio/mpeg',
  '.wasm': 'application/wasm',
};

function contentTypeFor(fileName: string): string {
  return contentTypes[path.extname(fileName).toLowerCase()] ?? 'application/octet-stream';
}

// ------------------------------------------------------------------------------------------- endpoints

interface LocalEnd {
  readonly kind: 'local';
  readonly file: string;
}

interface RemoteEnd {
  readonly kind: 'remote';
  readonly base: RemotePath;
  readonly bucket: string;
  readonly key: string;
  /** ALIAS/BUCKET/KEY, for messages and encryption rules */
  readonly text: string;
}

type End = LocalEnd | RemoteEnd;

interface CopyJob {
  readonly source: End;
  readonly target: End;
  readonly sizeBytes: number;
}

function remoteEnd(base: RemotePath, key: string): RemoteEnd {
  return { kind: 'remote', base, bucket: base.bucket, key, text: `${base.alias.name}/${base.bucket}/${key}` };
}

function describeEnd(end: End): string {
  return end.kind === 'local' ? end.file : end.text;
}

/** Where `relative` lands under the target folder `target`. */
function targetFor(ctx: ClientContext, target: string, relative: string): End {
  if (isRemote(ctx, target)) {
    const base = remotePath(ctx, target);
    if (base.bucket === '') throw new UsageError(`cp needs ALIAS/BUCKET[/PREFIX] as the target, not just '${target}'`);
    const folder = base.key === '' || base.key.endsWith('/') ? base.key : `${base.key}/`;
    return remoteEnd(base, `${folder}${relative}`);
  }
  return { kind: 'local', file: path.join(target, ...relative.split('/')) };
}

async function isLocalDirectory(file: string): Promise<boolean> {
  try {
    return (await stat(file)).isDirectory();
  } catch {
    return false;
  }
}

/** Files under a local folder, depth first, as paths relative to it with '/' separators. */
async function* walkLocal(root: string, relative = ''): AsyncGenerator<{ relative: string; sizeBytes: number }> {
  const entries = await readdir(path.join(root, relative), { withFileTypes: true });
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const entry of entries) {
    const child = relative === '' ? entry.name : `${relative}/${entry.name}`;
    if (entry.isDirectory()) yield* walkLocal(root, child);
    else if (entry.isFile()) yield { relative: child, sizeBytes: (await stat(path.join(root, child))).size };
    // symlinks, sockets and devices are skipped (mc follows symlinks only with a flag)
  }
}

/** mc's rule: what follows the last '/' of the source as typed is kept ("dir" → "dir/…", "dir/" → "…"). */
function keptPart(sourceText: string, itemPath: string): string {
  const cut = sourceText.lastIndexOf('/');
  return itemPath.slice(cut + 1).replace(/^\/+/, '');
}

async function planJobs(ctx: ClientContext, sources: readonly string[], target: string, recursive: boolean, rules: SseRules): Promise<CopyJob[]> {
  const jobs: CopyJob[] = [];
  const targetIsFolder = sources.length > 1 || recursive || target.endsWith('/') ||
    (isRemote(ctx, target) ? remotePath(ctx, target).key === '' : await isLocalDirectory(target));
  const add = (job: CopyJob): void => {
    if (jobs.length >= jobsMax) throw new CommandError(`more than ${jobsMax} objects to copy: copy smaller prefixes`, 'TooManyObjects');
    jobs.push(job);
  };

  for (const source of sources) {
    if (isRemote(ctx, source)) {
      const base = remotePath(ctx, source);
      if (base.bucket === '') throw new UsageError(`cp cannot copy a whole alias ('${source}'); name a bucket`);
      const sourceText = `${base.bucket}${base.key === '' ? '' : `/${base.key}`}${source.endsWith('/') && base.key === '' ? '/' : ''}`;
      const head = base.key === '' || base.key.endsWith('/')
        ? undefined
        : await headObjectIfExists(base.client, base.bucket, base.key, sseReadHeaders(rules.for(base.text))).catch((error: unknown) => {
          if (error instanceof S3ClientError && error.status === 400) {
            throw new CommandError(`\`${base.text}\` is encrypted with a customer key (SSE-C): give it with --enc-c "${base.text}=BASE64KEY"`, 'SSECustomerKeyRequired');
          }
          throw error;
        });
      if (head !== undefined) {
        const name = base.key.slice(base.key.lastIndexOf('/') + 1);
        add({ source: remoteEnd(base, base.key), target: targetIsFolder ? targetFor(ctx, target, name) : exactTarget(ctx, target), sizeBytes: head.sizeBytes });
        continue;
      }
      if (!recursive) throw new CommandError(`\`${base.text}\` is not an object${base.key === '' ? '' : ' (a folder?)'}: use --recursive to copy a folder`, 'NoSuchKey');
      const prefix = base.key === '' || base.key.endsWith('/') ? base.key : `${base.key}/`;
      let found = 0;
      for await (const entry of listObjects(base.client, base.bucket, prefix, '')) {
        if (entry.kind !== 'object' || entry.key.endsWith('/')) continue; // folder markers carry no data
        found++;
        add({ source: remoteEnd(base, entry.key), target: targetFor(ctx, target, keptPart(sourceText, `${base.bucket}/${entry.key}`)), sizeBytes: entry.sizeBytes });
      }
      if (found === 0) throw new CommandError(`nothing to copy under \`${base.text}\``, 'NoSuchKey');
      continue;
    }

    let info;
    try {
      info = await stat(source);
    } catch {
      throw new CommandError(`'${source}' does not exist (and '${source.split('/')[0]}' is not an alias)`, 'NoSuchFile');
    }
    if (info.isDirectory()) {
      if (!recursive) throw new CommandError(`'${source}' is a folder: use --recursive`, 'IsAFolder');
      const root = source;
      for await (const file of walkLocal(root)) {
        const itemPath = root.endsWith('/') ? `${root}${file.relative}` : `${root}/${file.relative}`;
        add({ source: { kind: 'local', file: path.join(root, ...file.relative.split('/')) }, target: targetFor(ctx, target, keptPart(root, itemPath)), sizeBytes: file.sizeBytes });
      }
      continue;
    }
    if (!info.isFile()) throw new CommandError(`'${source}' is not a regular file`, 'NotAFile');
    add({ source: { kind: 'local', file: source }, target: targetIsFolder ? targetFor(ctx, target, path.basename(source)) : exactTarget(ctx, target), sizeBytes: info.size });
  }
  return jobs;
}

function exactTarget(ctx: ClientContext, target: string): End {
  if (isRemote(ctx, target)) {
    const base = remotePath(ctx, target);
    if (base.bucket === '' || base.key === '') throw new UsageError(`cp needs ALIAS/BUCKET/OBJECT or ALIAS/BUCKET/ as the target, got '${target}'`);
    return remoteEnd(base, base.key);
  }
  return { kind: 'local', file: target };
}

// ------------------------------------------------------------------------------------------- transfers

interface Transfer {
  readonly rules: SseRules;
  /** bytes moved (negative on a retried request) */
  readonly onBytes: (deltaBytes: number) => void;
  /** multipart uploads in flight, aborted on Ctrl-C */
  readonly pendingUploads: Set<{ client: S3Client; bucket: string; key: string; uploadId: string }>;
}

/** Hands out the next `length` bytes of a body: a local file (positioned reads) or a response stream (in order). */
interface BodySource {
  read(offset: number, length: number): Promise<Buffer>;
}

function fileSource(handle: FileHandle): BodySource {
  return {
    read: async (offset, length) => {
      const buffer = Buffer.allocUnsafe(length);
      let filled = 0;
      while (filled < length) {
        const { bytesRead } = await handle.read(buffer, filled, length - filled, offset + filled);
        if (bytesRead === 0) throw new CommandError(`the file shrank while being read (${offset + filled} of ${offset + length} bytes)`, 'FileChanged');
        filled += bytesRead;
      }
      return buffer;
    },
  };
}

/** Exact-size reads from a stream, in order (cp calls read() strictly sequentially for stream sources). */
function streamSource(stream: Readable, what: string): BodySource {
  const iterator = (stream as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let position = 0;
  return {
    read: async (offset, length) => {
      if (offset !== position) throw new Error(`streamSource: read at ${offset}, expected ${position}`);
      while (pendingBytes < length) {
        const next = await iterator.next();
        if (next.done) throw new CommandError(`${what}: the source ended after ${position + pendingBytes} bytes, expected more`, 'IncompleteBody');
        pending.push(next.value);
        pendingBytes += next.value.length;
      }
      const all = pending.length === 1 ? pending[0]! : Buffer.concat(pending, pendingBytes);
      const part = all.subarray(0, length);
      pending = all.length > length ? [all.subarray(length)] : [];
      pendingBytes -= length;
      position += length;
      return Buffer.from(part); // detach from the shared chunk so finished parts can be freed
    },
  };
}

export function partSizeFor(sizeBytes: number): number {
  const minimum = Math.ceil(sizeBytes / partsPerUploadMax / mebibyte) * mebibyte;
  return Math.max(partSizeBytes, minimum);
}

/** The S3 error hidden in a 200 answer (CompleteMultipartUpload, CopyObject and UploadPartCopy may do that). */
function throwIfErrorDocument(body: Buffer, what: string): ReturnType<typeof parseXml> {
  const root = parseXml(body);
  if (root.name === 'Error') {
    throw new S3ClientError(200, childText(root, 'Code') ?? 'InternalError', `${what}: ${childText(root, 'Message') ?? 'failed'}`);
  }
  return root;
}

/** Runs `task(index)` for index 0..count-1 with at most `inFlightMax` at once; the first failure stops the rest. */
async function forEachBounded(count: number, inFlightMax: number, task: (index: number) => Promise<void>): Promise<void> {
  let next = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (!failed && next < count) {
      const index = next++;
      try {
        await task(index);
      } catch (error) {
        failed = true;
        throw error;
      }
    }
  };
  const results = await Promise.allSettled(Array.from({ length: Math.min(inFlightMax, count) }, worker));
  const rejected = results.find((result): result is PromiseRejectedResult => result.status === 'rejected');
  if (rejected) throw rejected.reason;
}

async function uploadObject(
  transfer: Transfer, target: RemoteEnd, source: BodySource, sizeBytes: number, headers: Record<string, string>, sequentialSource: boolean,
): Promise<string> {
  const client = target.base.client;
  const sse = transfer.rules.for(target.text);
  const writeHeaders = { ...headers, ...sseWriteHeaders(sse) };
  if (sizeBytes < multipartThresholdBytes) {
    const body = await source.read(0, sizeBytes);
    const response = await client.send({ method: 'PUT', bucket: target.bucket, key: target.key, headers: writeHeaders, body, onBodyProgress: transfer.onBytes });
    return stripQuotes(response.headers.etag);
  }

  const partBytes = partSizeFor(sizeBytes);
  const partCount = Math.ceil(sizeBytes / partBytes);
  const created = await client.sendForXml({ method: 'POST', bucket: target.bucket, key: target.key, query: { uploads: '' }, headers: writeHeaders });
  const uploadId = childText(created, 'UploadId');
  if (uploadId === undefined || uploadId === '') throw new S3ClientError(200, 'MalformedResponse', `CreateMultipartUpload for ${target.text} returned no UploadId`);
  const pending = { client, bucket: target.bucket, key: target.key, uploadId };
  transfer.pendingUploads.add(pending);
  const partHeaders = sseReadHeaders(sse);
  const etags: string[] = new Array<string>(partCount);
  // Stream sources must be read in order: reads are chained, uploads overlap.
  let readChain: Promise<unknown> = Promise.resolve();
  try {
    await forEachBounded(partCount, partsInFlightMax, async (index) => {
      const offset = index * partBytes;
      const length = Math.min(partBytes, sizeBytes - offset);
      let body: Buffer;
      if (sequentialSource) {
        const read = readChain.then(() => source.read(offset, length));
        readChain = read.catch(() => undefined);
        body = await read;
      } else {
        body = await source.read(offset, length);
      }
      const response = await client.send({
        method: 'PUT', bucket: target.bucket, key: target.key, query: { partNumber: String(index + 1), uploadId }, headers: partHeaders, body,
        onBodyProgress: transfer.onBytes,
      });
      const etag = response.headers.etag;
      if (etag === undefined) throw new S3ClientError(response.status, 'MalformedResponse', `UploadPart ${index + 1} of ${target.text} returned no ETag`);
      etags[index] = etag;
    });
    const xml = `<?xml version="1.0" encoding="UTF-8"?><CompleteMultipartUpload>${
      etags.map((etag, index) => `<Part><PartNumber>${index + 1}</PartNumber><ETag>${escapeXml(etag)}</ETag></Part>`).join('')
    }</CompleteMultipartUpload>`;
    const completed = await client.send({
      method: 'POST', bucket: target.bucket, key: target.key, query: { uploadId }, headers: { 'content-type': 'application/xml', ...partHeaders },
      body: Buffer.from(xml, 'utf8'),
    });
    const root = throwIfErrorDocument(completed.body, `CompleteMultipartUpload ${target.text}`);
    transfer.pendingUploads.delete(pending);
    return stripQuotes(childText(root, 'ETag'));
  } catch (error) {
    transfer.pendingUploads.delete(pending);
    await abortMultipartUpload(client, target.bucket, target.key, uploadId).catch(() => undefined);
    throw error;
  }
}

/** Metadata to carry from one object to another: Content-* headers and x-amz-meta-*. */
function carriedHeaders(headers: http.IncomingHttpHeaders): Record<string, string> {
  const carried: Record<string, string> = {};
  for (const name of ['content-type', 'content-encoding', 'content-disposition', 'content-language', 'cache-control']) {
    const value = headers[name];
    if (typeof value === 'string') carried[name] = value;
  }
  for (const [name, value] of Object.entries(headers)) {
    if (name.startsWith('x-amz-meta-') && typeof value === 'string') carried[name] = value;
  }
  return carried;
}

async function downloadObject(transfer: Transfer, source: RemoteEnd, target: LocalEnd): Promise<string> {
  const client = source.base.client;
  const response = await client.open({ method: 'GET', bucket: source.bucket, key: source.key, headers: sseReadHeaders(transfer.rules.for(source.text)) });
  const expectedBytes = Number(response.headers['content-length'] ?? Number.NaN);
  await mkdir(path.dirname(target.file), { recursive: true });
  const partFile = `${target.file}${partFileSuffix}`;
  let receivedBytes = 0;
  const throttle = client.sharedThrottle;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      receivedBytes += chunk.length;
      transfer.onBytes(chunk.length);
      if (throttle) throttle.take(chunk.length).then(() => callback(null, chunk), callback);
      else callback(null, chunk);
    },
  });
  try {
    await pipeline(response.stream, counter, createWriteStream(partFile, { mode: 0o644 }));
    if (Number.isFinite(expectedBytes) && receivedBytes !== expectedBytes) {
      throw new CommandError(`${source.text}: received ${receivedBytes} bytes, expected ${expectedBytes}`, 'IncompleteBody');
    }
    await rename(partFile, target.file);
  } catch (error) {
    await rm(partFile, { force: true });
    throw error;
  }
  return stripQuotes(response.headers.etag);
}

async function serverSideCopy(transfer: Transfer, source: RemoteEnd, target: RemoteEnd, sizeBytes: number): Promise<string> {
  const client = target.base.client;
  const copySource = `/${uriEncode(source.bucket, false)}/${uriEncode(source.key, true)}`;
  const sourceSse = transfer.rules.for(source.text);
  const targetSse = transfer.rules.for(target.text);
  const headers = { 'x-amz-copy-source': copySource, ...sseCopySourceHeaders(sourceSse), ...sseWriteHeaders(targetSse) };
  if (sizeBytes <= singleCopyBytesMax) {
    const response = await client.send({ method: 'PUT', bucket: target.bucket, key: target.key, headers });
    const root = throwIfErrorDocument(response.body, `CopyObject ${source.text} → ${target.text}`);
    transfer.onBytes(sizeBytes);
    return stripQuotes(childText(root, 'ETag'));
  }
  return multipartServerCopy(transfer, source, target, sizeBytes, copySource, sourceSse, targetSse);
}

async function multipartServerCopy(
  transfer: Transfer, source: RemoteEnd, target: RemoteEnd, sizeBytes: number, copySource: string, sourceSse: Sse, targetSse: Sse,
): Promise<string> {
  const client = target.base.client;
  // content type and user metadata travel with CreateMultipartUpload (UploadPartCopy copies bytes only)
  const head = await client.send({ method: 'HEAD', bucket: source.bucket, key: source.key, headers: sseReadHeaders(sourceSse) });
  const created = await client.sendForXml({
    method: 'POST', bucket: target.bucket, key: target.key, query: { uploads: '' }, headers: { ...carriedHeaders(head.headers), ...sseWriteHeaders(targetSse) },
  });
  const uploadId = childText(created, 'UploadId') ?? '';
  const pending = { client, bucket: target.bucket, key: target.key, uploadId };
  transfer.pendingUploads.add(pending);
  const partBytes = Math.max(copyPartSizeBytes, partSizeFor(sizeBytes));
  const partCount = Math.ceil(sizeBytes / partBytes);
  const etags: string[] = new Array<string>(partCount);
  try {
    await forEachBounded(partCount, partsInFlightMax, async (index) => {
      const first = index * partBytes;
      const last = Math.min(sizeBytes, first + partBytes) - 1;
      const response = await client.send({
        method: 'PUT', bucket: target.bucket, key: target.key, query: { partNumber: String(index + 1), uploadId },
        headers: { 'x-amz-copy-source': copySource, 'x-amz-copy-source-range': `bytes=${first}-${last}`, ...sseCopySourceHeaders(sourceSse), ...sseReadHeaders(targetSse) },
      });
      const root = throwIfErrorDocument(response.body, `UploadPartCopy ${index + 1} of ${target.text}`);
      etags[index] = childText(root, 'ETag') ?? '';
      transfer.onBytes(last - first + 1);
    });
    const xml = `<CompleteMultipartUpload>${etags.map((etag, index) => `<Part><PartNumber>${index + 1}</PartNumber><ETag>${escapeXml(etag)}</ETag></Part>`).join('')}</CompleteMultipartUpload>`;
    const completed = await client.send({
      method: 'POST', bucket: target.bucket, key: target.key, query: { uploadId }, headers: { 'content-type': 'application/xml', ...sseReadHeaders(targetSse) },
      body: Buffer.from(xml, 'utf8'),
    });
    const root = throwIfErrorDocument(completed.body, `CompleteMultipartUpload ${target.text}`);
    transfer.pendingUploads.delete(pending);
    return stripQuotes(childText(root, 'ETag'));
  } catch (error) {
    transfer.pendingUploads.delete(pending);
    await abortMultipartUpload(client, target.bucket, target.key, uploadId).catch(() => undefined);
    throw error;
  }
}

async function runJob(transfer: Transfer, job: CopyJob): Promise<string> {
  const { source, target, sizeBytes } = job;
  if (source.kind === 'local' && target.kind === 'local') {
    await mkdir(path.dirname(target.file), { recursive: true });
    await copyFile(source.file, target.file);
    transfer.onBytes(sizeBytes);
    return '';
  }
  if (source.kind === 'local' && target.kind === 'remote') {
    const handle = await open(source.file, 'r');
    try {
      const size = (await handle.stat()).size;
      if (size !== sizeBytes) throw new CommandError(`'${source.file}' changed size while copying`, 'FileChanged');
      return await uploadObject(transfer, target, fileSource(handle), size, { 'content-type': contentTypeFor(source.file) }, false);
    } finally {
      await handle.close();
    }
  }
  if (source.kind === 'remote' && target.kind === 'local') return downloadObject(transfer, source, target);
  if (source.kind === 'remote' && target.kind === 'remote') {
    if (source.base.client.sameServerAs(target.base.client)) return serverSideCopy(transfer, source, target, sizeBytes);
    const response = await source.base.client.open({ method: 'GET', bucket: source.bucket, key: source.key, headers: sseReadHeaders(transfer.rules.for(source.text)) });
    const length = Number(response.headers['content-length'] ?? sizeBytes);
    try {
      return await uploadObject(transfer, target, streamSource(response.stream, source.text), length, carriedHeaders(response.headers), true);
    } finally {
      response.stream.destroy();
    }
  }
  throw new Error('unreachable copy direction');
}

// ------------------------------------------------------------------------------------------- command

export async function runCp(args: readonly string[]): Promise<number> {
  const setup = await setUpCommand(args, { recursive: { type: 'boolean', short: 'r', default: false }, ...sseOptions }, cpUsage);
  if (setup === undefined) return 0;
  const { values, positionals, ctx } = setup;
  if (positionals.length < 2) throw new UsageError('cp needs SRC... DST');
  const target = positionals[positionals.length - 1]!;
  const sources = positionals.slice(0, -1);
  const rules = new SseRules(values);
  const jobs = await planJobs(ctx, sources, target, values.recursive, rules);
  const totalBytes = jobs.reduce((sum, job) => sum + job.sizeBytes, 0);

  const showBar = process.stdout.isTTY === true && !ctx.json && !ctx.quiet;
  const bar = showBar ? new ProgressBar(totalBytes, process.stdout) : undefined;
  let transferredBytes = 0;
  const transfer: Transfer = {
    rules,
    onBytes: (delta) => {
      transferredBytes += delta;
      bar?.add(delta);
    },
    pendingUploads: new Set(),
  };
  const startedMs = performance.now();
  const onInterrupt = (): void => {
    bar?.finish();
    process.stderr.write('coffer: interrupted; aborting unfinished uploads\n');
    void Promise.allSettled([...transfer.pendingUploads].map((upload) => abortMultipartUpload(upload.client, upload.bucket, upload.key, upload.uploadId)))
      .then(() => process.exit(130));
  };
  process.once('SIGINT', onInterrupt);
  let copied = 0;
  try {
    for (const [index, job] of jobs.entries()) {
      const name = describeEnd(job.source).split('/').pop() ?? '';
      bar?.setLabel(jobs.length > 1 ? `${name} (${index + 1}/${jobs.length})` : name);
      const etag = await runJob(transfer, job);
      copied++;
      ctx.out.json({
        status: 'success', source: describeEnd(job.source), target: describeEnd(job.target), size: job.sizeBytes, etag,
        totalCount: jobs.length, totalSize: totalBytes,
      });
    }
  } finally {
    process.off('SIGINT', onInterrupt);
    bar?.finish();
  }
  const elapsedMs = performance.now() - startedMs;
  if (!showBar) ctx.out.line(summaryLine(totalBytes, transferredBytes, elapsedMs, copied));
  else if (jobs.length > 1) ctx.out.line(`Copied ${copied} objects, ${humanBytesPrecise(totalBytes)}`);
  return 0;
}
