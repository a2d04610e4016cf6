// A small S3 PUT/GET load generator for Coffer (or any S3 endpoint). The building blocks live in bench/load/
// and are shared with `coffer bench` (bench/cli.ts), which has more workloads and the compare mode.
//
//   npx tsx bench/load.ts --endpoint http://127.0.0.1:9000 [--access-key K --secret-key S] [--region R]
//       [--bucket coffer-bench] [--size 1MiB] [--objects 200] [--concurrency 8] [--duration 30s]
//       [--op put|get|both] [--sse none|s3|kms[:KEY]|c] [--server-pid PID] [--json] [--insecure] [--ca FILE]
//
// Phases: PUT --objects objects (UNSIGNED-PAYLOAD, header-signed by api/auth/sign.ts), then (op get|both) GET
// each one back verifying its length and MD5 against its ETag, then DELETE them all (cleanup, always, even
// after errors, a time limit or Ctrl-C). --op get still runs the PUT phase: there is nothing to GET otherwise.
// Every phase is bounded by its object count and by --duration; cleanup by the count and cleanupTimeMsMin.
//
// The client is kept cheap because it shares the CPUs with the server (bench/load/objects.ts): one random
// buffer is reused for every object, and only its last 8 bytes differ, so the client knows each object's MD5
// from one MD5 state (Hash.copy). GET bodies are hashed (that is the verification): ~1.3 ms of CPU per MiB.
//
// Errors (non-2xx, network errors, timeouts, wrong length/ETag/MD5) are counted and reported, never retried
// or hidden; any error (or an unfinished cleanup) makes the exit code 1; Ctrl-C without errors gives 130.
// Credentials default to MINIO_ROOT_USER / MINIO_ROOT_PASSWORD, else minioadmin/minioadmin, as the server's.

import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ObjectSet, objectSuffixBytes, objectsMax, type PhaseCommon } from './load/objects.ts';
import type { PhaseResult, StopSignal } from './load/phase.ts';
import { ensureBucket, S3Client } from './load/s3-client.ts';
import {
  bucketNamePattern, formatBytes, mebibyte, parseDuration, parseIntegerIn, parseSize, ssePattern, UsageError,
} from './load/units.ts';

const concurrencyMax = 1024;
const objectSizeBytesMax = 5 * 1024 * mebibyte; // S3's single-PUT limit
const durationMsMax = 24 * 60 * 60 * 1000;

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
  readonly insecure: boolean;
  readonly caFile?: string;
}

const usage = 'usage: npx tsx bench/load.ts --endpoint http://127.0.0.1:9000 [--access-key K --secret-key S] [--region R] ' +
  '[--bucket coffer-bench] [--size 1MiB] [--objects 200] [--concurrency 8] [--duration 30s] [--op put|get|both] ' +
  '[--sse none|s3|kms[:KEY]|c] [--server-pid PID] [--json] [--insecure] [--ca FILE]';

function parseOptions(argv: string[]): Options | 'help' {
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
        insecure: { type: 'boolean', default: false },
        ca: { type: 'string' },
        help: { type: 'boolean', default: false },
      },
      strict: true,
    }).values;
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (parsed.help) return 'help';
  if (parsed.endpoint === undefined) throw new UsageError('--endpoint is required');
  let endpoint: URL;
  try {
    endpoint = new URL(parsed.endpoint);
  } catch {
    throw new UsageError(`--endpoint ${JSON.stringify(parsed.endpoint)} is not a URL`);
  }
  if (endpoint.protocol !== 'http:' && endpoint.protocol !== 'https:') throw new UsageError('--endpoint must be http:// or https://');
  const op = parsed.op;
  if (op !== 'put' && op !== 'get' && op !== 'both') throw new UsageError('--op must be put, get or both');
  if (!bucketNamePattern.test(parsed.bucket)) throw new UsageError(`invalid bucket name ${JSON.stringify(parsed.bucket)}`);
  const sizeBytes = parseSize(parsed.size);
  if (sizeBytes < objectSuffixBytes || sizeBytes > objectSizeBytesMax) {
    throw new UsageError(`--size must be ${objectSuffixBytes} B..5 GiB (the last ${objectSuffixBytes} bytes make each object unique)`);
  }
  const sse = parsed.sse;
  if (!ssePattern.test(sse)) throw new UsageError('--sse must be none, s3, kms, kms:KEY or c');
  const durationMs = parseDuration(parsed.duration);
  if (durationMs < 1 || durationMs > durationMsMax) throw new UsageError('--duration must be between 1ms and 24h');
  return {
    endpoint,
    accessKeyId: parsed['access-key'] ?? process.env['MINIO_ROOT_USER'] ?? 'minioadmin',
    secretAccessKey: parsed['secret-key'] ?? process.env['MINIO_ROOT_PASSWORD'] ?? 'minioadmin',
    region: parsed.region ?? process.env['MINIO_REGION'] ?? process.env['MINIO_SITE_REGION'] ?? 'us-east-1',
    bucket: parsed.bucket,
    sizeBytes,
    objects: parseIntegerIn(parsed.objects, 'objects', 1, objectsMax),
    concurrency: parseIntegerIn(parsed.concurrency, 'concurrency', 1, concurrencyMax),
    durationMs,
    op,
    sse,
    ...(parsed['server-pid'] === undefined ? {} : { serverPid: parseIntegerIn(parsed['server-pid'], 'server-pid', 1, 2 ** 22) }),
    json: parsed.json,
    insecure: parsed.insecure,
    ...(parsed.ca === undefined ? {} : { caFile: parsed.ca }),
  };
}

/** The phase as load.ts has always reported it (bench/RESULTS.md and test/load-generator.test.ts read this shape). */
function legacyPhase(p: PhaseResult): Record<string, unknown> {
  return {
    phase: p.phase,
    attempted: p.attempted,
    succeeded: p.succeeded,
    errors: p.errors,
    errorSamples: p.errorSamples,
    stoppedEarly: p.stoppedEarly,
    wallSeconds: p.wallSeconds,
    bytes: p.bytes,
    mibPerSecond: p.mibPerSecond,
    objectsPerSecond: p.objectsPerSecond,
    latencyMs: { p50: p.latencyMs.p50, p90: p.latencyMs.p90, p99: p.latencyMs.p99, max: p.latencyMs.max },
    clientCpuSeconds: p.clientCpuSeconds,
    monotonicStartSeconds: p.monotonicStartSeconds,
    monotonicEndSeconds: p.monotonicEndSeconds,
    ...(p.serverCpuSeconds === undefined ? {} : { serverCpuSeconds: p.serverCpuSeconds, serverCpuSystemSeconds: p.serverCpuSystemSeconds }),
    ...(p.stealSeconds === undefined ? {} : { stealSeconds: p.stealSeconds }),
  };
}

function report(options: Options, phases: readonly PhaseResult[], interrupted: boolean, out: (line: string) => void): void {
  out(`endpoint ${options.endpoint.origin}  bucket ${options.bucket}  size ${formatBytes(options.sizeBytes)}  objects ${options.objects}  ` +
    `concurrency ${options.concurrency}  sse ${options.sse}  duration limit ${options.durationMs / 1000}s per phase`);
  const header = ['phase', 'ok', 'errors', 'wall s', 'MiB/s', 'obj/s', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'client CPU s', 'server CPU s (sys)'];
  const rows = phases.map((p) => [
    p.phase + (p.stoppedEarly ? (interrupted ? ' (interrupted)' : ' (time limit)') : ''),
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
  let options: Options;
  try {
    const parsed = parseOptions(process.argv.slice(2));
    if (parsed === 'help') {
      process.stdout.write(`${usage}\n`);
      return 0;
    }
    options = parsed;
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`load: ${error.message}\n${usage}\n`);
    return 2;
  }
  const client = new S3Client({
    endpoint: options.endpoint,
    accessKeyId: options.accessKeyId,
    secretAccessKey: options.secretAccessKey,
    region: options.region,
    concurrency: options.concurrency,
    insecure: options.insecure,
    ...(options.caFile === undefined ? {} : { ca: readFileSync(options.caFile) }),
  });
  const stop: StopSignal = { stopped: false };
  process.once('SIGINT', () => {
    stop.stopped = true;
    process.stderr.write('load: interrupted, cleaning up (Ctrl-C again to abort)\n');
  });

  let bucketState: 'created' | 'existed';
  try {
    bucketState = await ensureBucket(client, options.bucket);
  } catch (error) {
    client.close();
    throw error;
  }

  const runId = Math.floor(Math.random() * 2 ** 32).toString(16).padStart(8, '0');
  const keyPrefix = `load-${runId}`;
  const set = new ObjectSet(client, { bucket: options.bucket, keyPrefix, sizeBytes: options.sizeBytes, randomSize: false, sse: options.sse, verify: 'md5' });
  const common: PhaseCommon = {
    concurrency: options.concurrency,
    durationMs: options.durationMs,
    stop,
    ...(options.serverPid === undefined ? {} : { serverPid: options.serverPid }),
  };

  const phases: PhaseResult[] = [];
  try {
    phases.push(await set.putPhase(common, 'put', options.objects));
    if (options.op !== 'put' && !stop.stopped && set.stored.size > 0) {
      phases.push(await set.getPhase(common, 'get', set.stored.size));
    }
  } finally {
    // Cleanup: every key a PUT was attempted for (a failed PUT may still have committed); not cut short by Ctrl-C.
    phases.push(await set.cleanupPhase(common, 'delete'));
    client.close();
  }

  const errors = phases.reduce((sum, p) => sum + p.errors, 0);
  const cleanup = phases[phases.length - 1]!;
  const human = options.json ? (line: string) => process.stderr.write(`${line}\n`) : (line: string) => process.stdout.write(`${line}\n`);
  report(options, phases, stop.stopped, human);
  if (cleanup.stoppedEarly || set.leftOver > 0) {
    human(`cleanup incomplete: objects under s3://${options.bucket}/${keyPrefix}/ may remain`);
  }
  if (bucketState === 'created') human(`created bucket ${options.bucket} (left in place)`);
  if (options.json) {
    const { endpoint, secretAccessKey: _secret, insecure: _insecure, caFile: _caFile, ...shown } = options; // the SSE-C key is never printed either
    process.stdout.write(`${JSON.stringify({ ...shown, endpoint: endpoint.origin, keyPrefix, node: process.version, date: new Date().toISOString(), errors, phases: phases.map(legacyPhase) }, null, 2)}\n`);
  }
  if (errors > 0 || cleanup.stoppedEarly) return 1;
  return stop.stopped ? 130 : 0;
}

try {
  process.exitCode = await main();
} catch (error) {
  process.stderr.write(`load: ${(error as Error).message}\n`);
  process.exitCode = 1;
}
