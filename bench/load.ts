// A small S3 PUT/GET load generator for Coffer (or any S3 endpoint over plain HTTP).
//
//   npx tsx bench/load.ts --endpoint http://127.0.0.1:9000 [--access-key K --secret-key S] [--region R]
//       [--bucket coffer-bench] [--size 1MiB] [--objects 200] [--concurrency 8] [--duration 30s]
//       [--op put|get|both] [--sse none|s3|kms[:KEY]|c] [--server-pid PID] [--json]
//
// Phases: PUT --objects objects (UNSIGNED-PAYLOAD, header-signed by api/auth/sign.ts), then (op get|both) GET
// each one back verifying its length and MD5 against its ETag, then DELETE them all (cleanup, always, even
// after errors, a time limit or Ctrl-C). --op get still runs the PUT phase: there is nothing to GET otherwise.
// Every phase is bounded by its object count and by --duration; cleanup by the count and cleanupTimeMs.
//
// The client is kept cheap because it shares the CPUs with the server: one random buffer is reused for every
// object, and only its last 8 bytes differ (run id + object index), so ETags differ and the client knows each
// object's MD5 from one MD5 state of the shared prefix (Hash.copy) instead of hashing every upload. GET bodies
// are hashed (that is the verification), so GET costs the client ~1.3 ms of CPU per MiB (MD5).
//
// Errors (non-2xx, network errors, timeouts, wrong length/ETag/MD5) are counted and reported, never retried
// or hidden; any error (or an unfinished cleanup) makes the exit code 1; Ctrl-C without errors gives 130.
// Credentials default to MINIO_ROOT_USER / MINIO_ROOT_PASSWORD, else minioadmin/minioadmin, as the server's.

import { createHash, randomBytes, type Hash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { parseArgs } from 'node:util';
import { signRequest } from '../api/auth/sign.ts';

const mebibyte = 1024 * 1024;
/** Per-object suffix: 4 bytes run id + 4 bytes object index. */
const objectSuffixBytes = 8;
const objectsMax = 1_000_000;
const concurrencyMax = 1024;
const objectSizeBytesMax = 5 * 1024 * mebibyte; // S3's single-PUT limit
const durationMsMax = 24 * 60 * 60 * 1000;
/** A request with no socket activity for this long is aborted and counted as an error. */
const requestIdleTimeoutMs = 60_000;
/** Cleanup gets at least this long, whatever --duration says, so a short run still removes its objects. */
const cleanupTimeMsMin = 60_000;
/** How many error messages each phase keeps for the report. */
const errorSamplesMax = 5;
/** Error response bodies are read up to this size for the message. */
const errorBodyBytesMax = 4096;

// ------------------------------------------------------------------------------------------- options

interface Options {
  readonly endpoint: URL;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly region: string;
  readonly bucket: string;
  readonly sizeBytes: number;
  readonly objects: number;
  readonly concurrency: number;
  readonly durationMs: number;
  readonly op: 'put' | 'get' | 'both';
  /** none | s3 | kms | kms:KEY | c */
  readonly sse: string;
  readonly serverPid?: number;
  readonly json: boolean;
}

const usage = 'usage: npx tsx bench/load.ts --endpoint http://127.0.0.1:9000 [--access-key K --secret-key S] [--region R] ' +
  '[--bucket coffer-bench] [--size 1MiB] [--objects 200] [--concurrency 8] [--duration 30s] [--op put|get|both] ' +
  '[--sse none|s3|kms[:KEY]|c] [--server-pid PID] [--json]';

function fail(message: string): never {
  process.stderr.write(`load: ${message}\n${usage}\n`);
  process.exit(2);
}

const sizeUnits: Readonly<Record<string, number>> = {
  '': 1, b: 1, kib: 1024, mib: mebibyte, gib: 1024 * mebibyte, kb: 1e3, mb: 1e6, gb: 1e9, k: 1024, m: mebibyte, g: 1024 * mebibyte,
};

function parseSize(text: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(text.trim());
  const unit = match ? sizeUnits[match[2]!.toLowerCase()] : undefined;
  if (!match || unit === undefined) fail(`cannot read size ${JSON.stringify(text)} (examples: 4KiB, 1MiB, 16MiB, 1000000)`);
  return Math.round(Number(match[1]) * unit);
}

const durationUnits: Readonly<Record<string, number>> = { '': 1000, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

function parseDuration(text: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(text.trim());
  const unit = match ? durationUnits[match[2]!.toLowerCase()] : undefined;
  if (!match || unit === undefined) fail(`cannot read duration ${JSON.stringify(text)} (examples: 30s, 500ms, 2m)`);
  return Math.round(Number(match[1]) * unit);
}

function integerIn(text: string, name: string, min: number, max: number): number {
  if (!/^\d+$/.test(text) || Number(text) < min || Number(text) > max) fail(`--${name} must be an integer in ${min}..${max}`);
  return Number(text);
}

function parseOptions(argv: string[]): Options {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        endpoint: { type: 'string' },
        'access-key': { type: 'string' },
        'secret-key': { type: 'string' },
        region: { type: 'string' },
        bucket: { type: 'string', default: 'coffer-bench' },
        size: { type: 'string', default: '1MiB' },
        objects: { type: 'string', default: '200' },
        concurrency: { type: 'string', default: '8' },
        duration: { type: 'string', default: '30s' },
        op: { type: 'string', default: 'both' },
        sse: { type: 'string', default: 'none' },
        'server-pid': { type: 'string' },
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', default: false },
      },
      strict: true,
    }).values;
  } catch (error) {
    fail((error as Error).message);
  }
  if (parsed.help) {
    process.stdout.write(`${usage}\n`);
    process.exit(0);
  }
  if (parsed.endpoint === undefined) fail('--endpoint is required');
  let endpoint: URL;
  try {
    endpoint = new URL(parsed.endpoint);
  } catch {
    fail(`--endpoint ${JSON.stringify(parsed.endpoint)} is not a URL`);
  }
  if (endpoint.protocol !== 'http:') fail('only http:// endpoints are supported (node:http client)');
  const op = parsed.op;
  if (op !== 'put' && op !== 'get' && op !== 'both') fail('--op must be put, get or both');
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(parsed.bucket)) fail(`invalid bucket name ${JSON.stringify(parsed.bucket)}`);
  const sizeBytes = parseSize(parsed.size);
  if (sizeBytes < objectSuffixBytes || sizeBytes > objectSizeBytesMax) {
    fail(`--size must be ${objectSuffixBytes} B..5 GiB (the last ${objectSuffixBytes} bytes make each object unique)`);
  }
  const sse = parsed.sse;
  if (!/^(none|s3|c|kms(:[0-9A-Za-z_-]+)?)$/.test(sse)) fail('--sse must be none, s3, kms, kms:KEY or c');
  const durationMs = parseDuration(parsed.duration);
  if (durationMs < 1 || durationMs > durationMsMax) fail('--duration must be between 1ms and 24h');
  const accessKeyId = parsed['access-key'] ?? process.env['MINIO_ROOT_USER'] ?? 'minioadmin';
  const secretAccessKey = parsed['secret-key'] ?? process.env['MINIO_ROOT_PASSWORD'] ?? 'minioadmin';
  return {
    endpoint,
    accessKeyId,
    secretAccessKey,
    region: parsed.region ?? process.env['MINIO_REGION'] ?? process.env['MINIO_SITE_REGION'] ?? 'us-east-1',
    bucket: parsed.bucket,
    sizeBytes,
    objects: integerIn(parsed.objects, 'objects', 1, objectsMax),
    concurrency: integerIn(parsed.concurrency, 'concurrency', 1, concurrencyMax),
    durationMs,
    op,
    sse,
    ...(parsed['server-pid'] === undefined ? {} : { serverPid: integerIn(parsed['server-pid'], 'server-pid', 1, 2 ** 22) }),
    json: parsed.json,
  };
}

// ------------------------------------------------------------------------------------------- HTTP

interface Response {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly bodyBytes: number;
  /** MD5 of the body, when asked for */
  readonly md5Hex?: string;
  /** the start of a non-2xx body, for error messages */
  readonly errorText: string;
}

class LoadError extends Error {}

interface Client {
  readonly agent: http.Agent;
  readonly options: Options;
}

/** One request; resolves once the whole response body has been read (and hashed if `hashBody`). */
function send(client: Client, method: string, path: string, extraHeaders: Record<string, string>, body: readonly Buffer[], hashBody: boolean): Promise<Response> {
  const { options } = client;
  const url = new URL(path, options.endpoint);
  const bodyBytes = body.reduce((sum, piece) => sum + piece.length, 0);
  const headers = signRequest({
    method,
    url,
    headers: { ...extraHeaders, 'content-length': String(bodyBytes) },
    payloadHash: 'UNSIGNED-PAYLOAD',
    accessKeyId: options.accessKeyId,
    secretAccessKey: options.secretAccessKey,
    region: options.region,
    nowMs: Date.now(),
  });
  return new Promise<Response>((resolve, reject) => {
    const request = http.request(
      { host: url.hostname, port: url.port, method, path: url.pathname + url.search, headers, agent: client.agent },
      (response) => {
        const status = response.statusCode ?? 0;
        const ok = status >= 200 && status < 300;
        const md5: Hash | undefined = ok && hashBody ? createHash('md5') : undefined;
        let receivedBytes = 0;
        let errorText = '';
        response.on('data', (chunk: Buffer) => {
          receivedBytes += chunk.length;
          md5?.update(chunk);
          if (!ok && errorText.length < errorBodyBytesMax) errorText += chunk.toString('utf8', 0, Math.min(chunk.length, errorBodyBytesMax));
        });
        response.on('end', () => resolve({
          status,
          headers: response.headers,
          bodyBytes: receivedBytes,
          ...(md5 === undefined ? {} : { md5Hex: md5.digest('hex') }),
          errorText,
        }));
        response.on('error', reject);
        response.on('aborted', () => reject(new LoadError('response aborted')));
      },
    );
    request.setTimeout(requestIdleTimeoutMs, () => request.destroy(new LoadError(`no activity for ${requestIdleTimeoutMs} ms`)));
    request.on('error', reject);
    for (let i = 0; i < body.length - 1; i++) request.write(body[i]);
    request.end(body[body.length - 1]);
  });
}

function describeFailure(what: string, response: Response): LoadError {
  const code = /<Code>([^<]*)<\/Code>/.exec(response.errorText)?.[1];
  return new LoadError(`${what}: HTTP ${response.status}${code === undefined ? '' : ` ${code}`}`);
}

// ------------------------------------------------------------------------------------------- phases

interface PhaseResult {
  readonly phase: string;
  readonly attempted: number;
  readonly succeeded: number;
  readonly errors: number;
  readonly errorSamples: readonly string[];
  /** true when the phase stopped at --duration (or Ctrl-C) before its count */
  readonly stoppedEarly: boolean;
  readonly wallSeconds: number;
  readonly bytes: number;
  readonly mibPerSecond: number;
  readonly objectsPerSecond: number;
  readonly latencyMs: { readonly p50: number; readonly p90: number; readonly p99: number; readonly max: number };
  readonly clientCpuSeconds: number;
  /** CLOCK_MONOTONIC seconds at the phase's start and end, to line it up with `perf record -k CLOCK_MONOTONIC` */
  readonly monotonicStartSeconds: number;
  readonly monotonicEndSeconds: number;
  /** with --server-pid: the server's CPU seconds during the phase (user + system) and the system part */
  readonly serverCpuSeconds?: number;
  readonly serverCpuSystemSeconds?: number;
}

let stopRequested = false;

interface CpuSeconds {
  readonly user: number;
  readonly system: number;
}

/** CPU seconds of another process, from /proc/<pid>/stat; undefined if unreadable. */
function processCpuSeconds(pid: number | undefined): CpuSeconds | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state); utime and stime are fields 14 and 15, in clock ticks (100 Hz on Linux)
    return { user: Number(fields[11]) / 100, system: Number(fields[12]) / 100 };
  } catch {
    return undefined;
  }
}

function percentile(sorted: Float64Array, fraction: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil(fraction * sorted.length) - 1)]!;
}

/**
 * Runs `operation(index)` for index 0..count-1 with `concurrency` in flight, until done, `deadlineMs`
 * (performance.now() time) or Ctrl-C. `operation` returns the payload bytes it moved.
 */
async function runPhase(
  phase: string,
  count: number,
  concurrency: number,
  deadlineMs: number,
  serverPid: number | undefined,
  operation: (index: number) => Promise<number>,
  honourStop = true,
): Promise<PhaseResult> {
  const latenciesMs = new Float64Array(count);
  let latencyCount = 0;
  let next = 0;
  let errors = 0;
  let bytes = 0;
  let stoppedEarly = false;
  const errorSamples: string[] = [];
  const cpuStart = process.cpuUsage();
  const serverCpuStart = processCpuSeconds(serverPid);
  const startMs = performance.now();
  const monotonicStartSeconds = Number(process.hrtime.bigint()) / 1e9;

  const worker = async (): Promise<void> => {
    while (next < count) {
      if (performance.now() >= deadlineMs || (honourStop && stopRequested)) {
        stoppedEarly = true;
        return;
      }
      const index = next++;
      const requestStartMs = performance.now();
      try {
        // not `bytes += await ...`: that reads `bytes` before the await and loses concurrent updates
        const movedBytes = await operation(index);
        bytes += movedBytes;
        latenciesMs[latencyCount++] = performance.now() - requestStartMs;
      } catch (error) {
        errors++;
        if (errorSamples.length < errorSamplesMax) errorSamples.push(`#${index}: ${(error as Error).message}`);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));

  const wallSeconds = (performance.now() - startMs) / 1000;
  const cpu = process.cpuUsage(cpuStart);
  const serverCpuEnd = processCpuSeconds(serverPid);
  const sorted = latenciesMs.subarray(0, latencyCount).sort();
  return {
    phase,
    attempted: next,
    succeeded: latencyCount,
    errors,
    errorSamples,
    stoppedEarly,
    wallSeconds,
    bytes,
    mibPerSecond: bytes / mebibyte / wallSeconds,
    objectsPerSecond: latencyCount / wallSeconds,
    latencyMs: { p50: percentile(sorted, 0.5), p90: percentile(sorted, 0.9), p99: percentile(sorted, 0.99), max: percentile(sorted, 1) },
    clientCpuSeconds: (cpu.user + cpu.system) / 1e6,
    monotonicStartSeconds,
    monotonicEndSeconds: Number(process.hrtime.bigint()) / 1e9,
    ...(serverCpuStart === undefined || serverCpuEnd === undefined ? {} : {
      serverCpuSeconds: serverCpuEnd.user + serverCpuEnd.system - serverCpuStart.user - serverCpuStart.system,
      serverCpuSystemSeconds: serverCpuEnd.system - serverCpuStart.system,
    }),
  };
}

// ------------------------------------------------------------------------------------------- main

async function ensureBucket(client: Client): Promise<'created' | 'existed'> {
  const response = await send(client, 'PUT', `/${client.options.bucket}`, {}, [Buffer.alloc(0)], false);
  if (response.status === 200) return 'created';
  if (response.status === 409 && /BucketAlreadyOwnedByYou/.test(response.errorText)) return 'existed';
  throw describeFailure(`create bucket ${client.options.bucket}`, response);
}

function formatBytes(sizeBytes: number): string {
  if (sizeBytes % mebibyte === 0) return `${sizeBytes / mebibyte} MiB`;
  if (sizeBytes % 1024 === 0) return `${sizeBytes / 1024} KiB`;
  return `${sizeBytes} B`;
}

function report(options: Options, phases: readonly PhaseResult[], out: (line: string) => void): void {
  out(`endpoint ${options.endpoint.origin}  bucket ${options.bucket}  size ${formatBytes(options.sizeBytes)}  objects ${options.objects}  ` +
    `concurrency ${options.concurrency}  sse ${options.sse}  duration limit ${options.durationMs / 1000}s per phase`);
  const header = ['phase', 'ok', 'errors', 'wall s', 'MiB/s', 'obj/s', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'client CPU s', 'server CPU s (sys)'];
  const rows = phases.map((p) => [
    p.phase + (p.stoppedEarly ? (stopRequested ? ' (interrupted)' : ' (time limit)') : ''),
    `${p.succeeded}/${p.attempted}`,
    String(p.errors),
    p.wallSeconds.toFixed(2),
    p.phase === 'delete' ? '-' : p.mibPerSecond.toFixed(1),
    p.objectsPerSecond.toFixed(0),
    p.latencyMs.p50.toFixed(2),
    p.latencyMs.p90.toFixed(2),
    p.latencyMs.p99.toFixed(2),
    p.latencyMs.max.toFixed(2),
    p.clientCpuSeconds.toFixed(2),
    p.serverCpuSeconds === undefined ? '-' : `${p.serverCpuSeconds.toFixed(2)} (${(p.serverCpuSystemSeconds ?? 0).toFixed(2)})`,
  ]);
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
  const line = (cells: readonly string[]): string => cells.map((cell, column) => (column === 0 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!))).join('  ');
  out(line(header));
  for (const row of rows) out(line(row));
  for (const p of phases) for (const sample of p.errorSamples) out(`  ${p.phase} error ${sample}`);
}

async function main(): Promise<number> {
  const options = parseOptions(process.argv.slice(2));
  const agent = new http.Agent({ keepAlive: true, maxSockets: options.concurrency, maxFreeSockets: options.concurrency });
  const client: Client = { agent, options };
  process.once('SIGINT', () => {
    stopRequested = true;
    process.stderr.write('load: interrupted, cleaning up (Ctrl-C again to abort)\n');
  });

  const bucketState = await ensureBucket(client);

  const runId = randomBytes(4);
  const keyPrefix = `load-${runId.toString('hex')}`;
  const keyOf = (index: number): string => `${keyPrefix}/${String(index).padStart(7, '0')}`;
  const sharedPrefix = randomBytes(options.sizeBytes - objectSuffixBytes);
  const prefixMd5 = createHash('md5').update(sharedPrefix);
  const suffixOf = (index: number): Buffer => {
    const suffix = Buffer.allocUnsafe(objectSuffixBytes);
    runId.copy(suffix, 0);
    suffix.writeUInt32BE(index, 4);
    return suffix;
  };
  const expectedMd5Of = (index: number): string => prefixMd5.copy().update(suffixOf(index)).digest('hex');
  const putOk = new Uint8Array(options.objects); // 1 once the object's PUT returned the expected ETag
  // SSE request headers; SSE-KMS and SSE-C objects get random ETags, so only the body MD5 is checked for them.
  const customerKey = randomBytes(32);
  const customerHeaders = {
    'x-amz-server-side-encryption-customer-algorithm': 'AES256',
    'x-amz-server-side-encryption-customer-key': customerKey.toString('base64'),
    'x-amz-server-side-encryption-customer-key-md5': createHash('md5').update(customerKey).digest('base64'),
  };
  const sseKmsKey = options.sse.startsWith('kms:') ? options.sse.slice(4) : undefined;
  const putSseHeaders: Record<string, string> =
    options.sse === 's3' ? { 'x-amz-server-side-encryption': 'AES256' }
    : options.sse.startsWith('kms') ? { 'x-amz-server-side-encryption': 'aws:kms', ...(sseKmsKey ? { 'x-amz-server-side-encryption-aws-kms-key-id': sseKmsKey } : {}) }
    : options.sse === 'c' ? customerHeaders : {};
  const getSseHeaders: Record<string, string> = options.sse === 'c' ? customerHeaders : {};
  const etagIsMd5 = options.sse === 'none' || options.sse === 's3';

  const phases: PhaseResult[] = [];
  try {
    phases.push(await runPhase('put', options.objects, options.concurrency, performance.now() + options.durationMs, options.serverPid, async (index) => {
      const response = await send(client, 'PUT', `/${options.bucket}/${keyOf(index)}`, { 'content-type': 'application/octet-stream', ...putSseHeaders },
        [sharedPrefix, suffixOf(index)], false);
      if (response.status !== 200) throw describeFailure('PUT', response);
      const etag = response.headers.etag;
      const expected = `"${expectedMd5Of(index)}"`;
      if (etagIsMd5 && etag !== expected) throw new LoadError(`PUT returned ETag ${String(etag)}, expected ${expected}`);
      putOk[index] = 1;
      return options.sizeBytes;
    }));

    if (options.op !== 'put' && !stopRequested) {
      const stored = [...putOk.keys()].filter((index) => putOk[index] === 1);
      phases.push(await runPhase('get', stored.length, options.concurrency, performance.now() + options.durationMs, options.serverPid, async (position) => {
        const index = stored[position]!;
        const response = await send(client, 'GET', `/${options.bucket}/${keyOf(index)}`, getSseHeaders, [Buffer.alloc(0)], true);
        if (response.status !== 200) throw describeFailure('GET', response);
        const expectedMd5 = expectedMd5Of(index);
        if (response.bodyBytes !== options.sizeBytes) throw new LoadError(`GET returned ${response.bodyBytes} bytes, expected ${options.sizeBytes}`);
        if (response.headers['content-length'] !== String(options.sizeBytes)) {
          throw new LoadError(`GET Content-Length ${String(response.headers['content-length'])}, expected ${options.sizeBytes}`);
        }
        if (etagIsMd5 && response.headers.etag !== `"${expectedMd5}"`) throw new LoadError(`GET ETag ${String(response.headers.etag)}, expected "${expectedMd5}"`);
        if (response.md5Hex !== expectedMd5) throw new LoadError(`GET body MD5 ${String(response.md5Hex)} does not match ETag "${expectedMd5}"`);
        return response.bodyBytes;
      }));
    }
  } finally {
    // Cleanup: every key a PUT was attempted for (a failed PUT may still have committed); not cut short by Ctrl-C.
    const attempted = phases[0]?.attempted ?? options.objects;
    const cleanupDeadlineMs = performance.now() + Math.max(options.durationMs, cleanupTimeMsMin);
    phases.push(await runPhase('delete', attempted, options.concurrency, cleanupDeadlineMs, options.serverPid, async (index) => {
      const response = await send(client, 'DELETE', `/${options.bucket}/${keyOf(index)}`, {}, [Buffer.alloc(0)], false);
      if (response.status !== 204 && response.status !== 200) throw describeFailure('DELETE', response);
      return 0;
    }, false));
    agent.destroy();
  }

  const errors = phases.reduce((sum, p) => sum + p.errors, 0);
  const cleanup = phases[phases.length - 1]!;
  const leftOver = (phases[0]?.attempted ?? options.objects) - cleanup.succeeded;
  const human = options.json ? (line: string) => process.stderr.write(`${line}\n`) : (line: string) => process.stdout.write(`${line}\n`);
  report(options, phases, human);
  if (cleanup.stoppedEarly || leftOver > 0) {
    human(`cleanup incomplete: objects under s3://${options.bucket}/${keyPrefix}/ may remain`);
  }
  if (bucketState === 'created') human(`created bucket ${options.bucket} (left in place)`);
  if (options.json) {
    const { endpoint, secretAccessKey: _secret, ...shown } = options; // the SSE-C key is never printed either
    process.stdout.write(`${JSON.stringify({ ...shown, endpoint: endpoint.origin, keyPrefix, node: process.version, date: new Date().toISOString(), errors, phases }, null, 2)}\n`);
  }
  if (errors > 0 || cleanup.stoppedEarly) return 1;
  return stopRequested ? 130 : 0;
}

try {
  process.exitCode = await main();
} catch (error) {
  process.stderr.write(`load: ${(error as Error).message}\n`);
  process.exitCode = 1;
}
