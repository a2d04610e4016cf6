// `coffer bench …`: the load generator (warp-like workloads, reference/erasure-jbod.md §9.2), the A/B
// compare mode, and the CPU kernels. cli/main.ts wires `coffer bench` to runBenchCommand; until then, or
// from a checkout: `npx tsx bench/cli.ts MODE …`.
//
//   coffer bench put|get|mixed|multipart|list|delete|stat --endpoint URL [options]   (see `coffer bench --help`)
//   coffer bench compare --case NAME=URL[,sse=s3] --case … --workload put:16MiB,get:16MiB [--rounds 3]
//   coffer bench kernels [--quick] [--only=crypto,hash,meta,sigv4,pool]
//
// Every run is bounded by --objects / --ops and by --duration, touches only keys under its own run prefix,
// and deletes what it created (also after errors and Ctrl-C). Exit codes: 0 ok, 1 errors or incomplete
// cleanup, 2 usage, 130 interrupted.

import { writeFile } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { connect, parseConnection, type Connection } from './load/connection.ts';
import { deleteBatchMax, ObjectSet, objectSuffixBytes, objectsMax, partsMax, runMultipart, type PhaseCommon, type Verify } from './load/objects.ts';
import type { AutotermOptions, PhaseResult, StopSignal } from './load/phase.ts';
import { machineInfo, withInterrupt } from './load/process.ts';
import { phaseSummary, phaseTable, ProgressLine } from './load/report.ts';
import { ensureBucket } from './load/s3-client.ts';
import {
  bucketNamePattern, formatBytes, mebibyte, parseDuration, parseIntegerIn, parseNumberIn, parseSize, ssePattern, UsageError,
} from './load/units.ts';

export const modes = ['put', 'get', 'mixed', 'multipart', 'list', 'delete', 'stat'] as const;
export type Mode = (typeof modes)[number];

export const concurrencyMax = 1024;
export const objectSizeBytesMax = 5 * 1024 * mebibyte; // S3's single-PUT limit
export const durationMsMax = 24 * 60 * 60 * 1000;

/** warp's defaults, scaled down where warp's would take minutes on a 2-vCPU machine. */
const modeDefaults: Readonly<Record<Mode, { size: string; objects: number; ops: number }>> = {
  put: { size: '10MiB', objects: 1000, ops: 0 },
  get: { size: '10MiB', objects: 100, ops: 1000 },
  mixed: { size: '10MiB', objects: 100, ops: 1000 },
  multipart: { size: '5MiB', objects: 1, ops: 0 },
  list: { size: '1KiB', objects: 1000, ops: 1000 },
  delete: { size: '1KiB', objects: 2500, ops: 0 },
  stat: { size: '1KiB', objects: 1000, ops: 10_000 },
};

export const usage = `usage:
  coffer bench MODE --endpoint URL [options]      MODE: ${modes.join(' | ')}
  coffer bench compare --case NAME=URL[,sse=s3][,pid=PID] --case … --workload put:16MiB,get:16MiB [--rounds 3] [options]
  coffer bench kernels [--quick] [--only=GROUP,…] [--time=MS]

load options:
  --endpoint URL            http:// or https:// origin of the S3 server
  --insecure | --ca FILE    https: accept any certificate | trust FILE (PEM)
  --access-key K --secret-key S   default MINIO_ROOT_USER / MINIO_ROOT_PASSWORD, else minioadmin
  --region R                default us-east-1
  --bucket NAME             default coffer-bench (created if missing, left in place)
  --concurrency N           requests in flight (default 8)
  --obj.size SIZE           object size, e.g. 4KiB, 16MiB (multipart: the part size); --obj.randsize: log-uniform 128 B..SIZE
  --objects N               put: objects to PUT; get/stat/list/mixed/delete: objects prepared first
  --ops N                   get/stat/list/mixed: measured requests (default per mode)
  --duration D              bound on each phase (default 30s), e.g. 500ms, 30s, 2m
  --autoterm                stop the measured phase once throughput is stable (--autoterm.dur 10s, --autoterm.pct 7.5)
  --sse none|s3|kms[:KEY]|c server-side encryption of the objects (default none)
  --verify md5|length       GET verification (default md5: costs the client ~1.3 ms of CPU per MiB)
  --parts N                 multipart: parts (default 20)     --batch N   delete: keys per DeleteObjects (default 100)
  --max-keys N              list: keys per page (default 100)  --mix get=45,stat=30,put=15,delete=10   mixed weights
  --server-pid PID          also report that process's CPU seconds (from /proc/PID/stat)
  --json                    JSON on stdout (the table goes to stderr)   --out FILE   also write the JSON to FILE
  --no-progress             no live progress line (it is shown only when stderr is a terminal anyway)
`;

const loadOptionSpec = {
  endpoint: { type: 'string' },
  'access-key': { type: 'string' },
  'secret-key': { type: 'string' },
  region: { type: 'string' },
  insecure: { type: 'boolean', default: false },
  ca: { type: 'string' },
  bucket: { type: 'string', default: 'coffer-bench' },
  concurrency: { type: 'string', default: '8' },
  'obj.size': { type: 'string' },
  'obj.randsize': { type: 'boolean', default: false },
  objects: { type: 'string' },
  ops: { type: 'string' },
  duration: { type: 'string', default: '30s' },
  autoterm: { type: 'boolean', default: false },
  'autoterm.dur': { type: 'string', default: '10s' },
  'autoterm.pct': { type: 'string', default: '7.5' },
  sse: { type: 'string', default: 'none' },
  verify: { type: 'string', default: 'md5' },
  parts: { type: 'string', default: '20' },
  batch: { type: 'string', default: '100' },
  'max-keys': { type: 'string', default: '100' },
  mix: { type: 'string', default: 'get=45,stat=30,put=15,delete=10' },
  'server-pid': { type: 'string' },
  json: { type: 'boolean', default: false },
  out: { type: 'string' },
  'no-progress': { type: 'boolean', default: false },
  help: { type: 'boolean', default: false },
} as const;

export interface LoadModeOptions {
  readonly mode: Mode;
  readonly connection: Connection;
  readonly bucket: string;
  readonly concurrency: number;
  readonly sizeBytes: number;
  readonly randomSize: boolean;
  readonly objects: number;
  readonly ops: number;
  readonly durationMs: number;
  readonly autoterm?: AutotermOptions;
  readonly sse: string;
  readonly verify: Verify;
  readonly parts: number;
  readonly batch: number;
  readonly maxKeys: number;
  readonly mix: Readonly<Record<'get' | 'stat' | 'put' | 'delete', number>>;
  readonly serverPid?: number;
  readonly json: boolean;
  readonly outFile?: string;
  readonly progress: boolean;
}

export function parseMix(text: string): LoadModeOptions['mix'] {
  const mix = { get: 0, stat: 0, put: 0, delete: 0 };
  for (const item of text.split(',')) {
    const match = /^(get|stat|put|delete)=(\d+(?:\.\d+)?)$/.exec(item.trim());
    if (!match) throw new UsageError(`--mix: cannot read ${JSON.stringify(item)} (example: get=45,stat=30,put=15,delete=10)`);
    mix[match[1] as keyof typeof mix] = Number(match[2]);
  }
  if (mix.get + mix.stat + mix.put + mix.delete <= 0) throw new UsageError('--mix weights must add up to more than 0');
  return mix;
}

export function parseLoadMode(mode: Mode, args: readonly string[]): LoadModeOptions | 'help' {
  let values;
  try {
    values = parseArgs({ args: [...args], options: loadOptionSpec, strict: true, allowPositionals: false }).values;
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (values.help) return 'help';
  const defaults = modeDefaults[mode];
  const connection = parseConnection({
    endpoint: values.endpoint, accessKey: values['access-key'], secretKey: values['secret-key'], region: values.region, insecure: values.insecure, ca: values.ca,
  });
  if (!bucketNamePattern.test(values.bucket)) throw new UsageError(`invalid bucket name ${JSON.stringify(values.bucket)}`);
  const sizeBytes = parseSize(values['obj.size'] ?? defaults.size, '--obj.size');
  if (sizeBytes < objectSuffixBytes || sizeBytes > objectSizeBytesMax) throw new UsageError(`--obj.size must be ${objectSuffixBytes} B..5 GiB`);
  if (mode === 'multipart' && sizeBytes < 5 * mebibyte) throw new UsageError('multipart: --obj.size is the part size and must be at least 5 MiB (S3 EntityTooSmall)');
  if (!ssePattern.test(values.sse)) throw new UsageError('--sse must be none, s3, kms, kms:KEY or c');
  if (values.verify !== 'md5' && values.verify !== 'length') throw new UsageError('--verify must be md5 or length');
  const durationMs = parseDuration(values.duration, '--duration');
  if (durationMs < 1 || durationMs > durationMsMax) throw new UsageError('--duration must be between 1ms and 24h');
  const objects = values.objects === undefined ? defaults.objects : parseIntegerIn(values.objects, 'objects', 1, objectsMax);
  const ops = values.ops === undefined ? defaults.ops || objects : parseIntegerIn(values.ops, 'ops', 1, objectsMax * 10);
  const autotermDurationMs = parseDuration(values['autoterm.dur'], '--autoterm.dur');
  if (autotermDurationMs < 100 || autotermDurationMs > durationMsMax) throw new UsageError('--autoterm.dur must be 100ms..24h');
  return {
    mode,
    connection,
    bucket: values.bucket,
    concurrency: parseIntegerIn(values.concurrency, 'concurrency', 1, concurrencyMax),
    sizeBytes,
    randomSize: values['obj.randsize'],
    objects,
    ops,
    durationMs,
    ...(values.autoterm ? { autoterm: { durationMs: autotermDurationMs, percent: parseNumberIn(values['autoterm.pct'], 'autoterm.pct', 0.1, 100) } } : {}),
    sse: values.sse,
    verify: values.verify,
    parts: parseIntegerIn(values.parts, 'parts', 1, partsMax),
    batch: parseIntegerIn(values.batch, 'batch', 1, deleteBatchMax),
    maxKeys: parseIntegerIn(values['max-keys'], 'max-keys', 1, 1000),
    mix: parseMix(values.mix),
    ...(values['server-pid'] === undefined ? {} : { serverPid: parseIntegerIn(values['server-pid'], 'server-pid', 1, 2 ** 22) }),
    json: values.json,
    ...(values.out === undefined ? {} : { outFile: values.out }),
    progress: !values['no-progress'],
  };
}

export interface LoadModeResult {
  readonly phases: PhaseResult[];
  /** the phases that are the workload's result (the others prepare and clean up) */
  readonly measured: string[];
  readonly keyPrefix: string;
  readonly leftOver: number;
  readonly completeMs?: number;
}

export async function runLoadMode(options: LoadModeOptions, stop: StopSignal, progress?: ProgressLine): Promise<LoadModeResult> {
  const client = connect(options.connection, options.concurrency);
  const keyPrefix = `bench-${options.mode}-${Math.floor(Math.random() * 2 ** 32).toString(16).padStart(8, '0')}`;
  const set = new ObjectSet(client, {
    bucket: options.bucket, keyPrefix, sizeBytes: options.sizeBytes, randomSize: options.randomSize, sse: options.sse, verify: options.verify,
  });
  const common: PhaseCommon = {
    concurrency: options.concurrency,
    durationMs: options.durationMs,
    stop,
    ...(options.serverPid === undefined ? {} : { serverPid: options.serverPid }),
    ...(progress === undefined ? {} : { progress: progress.update }),
  };
  const measuredCommon: PhaseCommon = { ...common, ...(options.autoterm === undefined ? {} : { autoterm: options.autoterm }) };
  const phases: PhaseResult[] = [];
  const measured: string[] = [];
  let completeMs: number | undefined;
  let multipartLeftOver = 0;
  const measure = (phase: PhaseResult): void => {
    progress?.clear();
    phases.push(phase);
    measured.push(phase.phase);
  };
  const prepare = async (): Promise<void> => {
    phases.push(await set.fillPhase(common, 'prepare', options.objects));
    progress?.clear();
  };
  try {
    await ensureBucket(client, options.bucket);
    switch (options.mode) {
      case 'put':
        measure(await set.putPhase(measuredCommon, 'put', options.objects));
        break;
      case 'get':
        await prepare();
        if (!stop.stopped && set.stored.size > 0) measure(await set.getPhase(measuredCommon, 'get', options.ops));
        break;
      case 'stat':
        await prepare();
        if (!stop.stopped && set.stored.size > 0) measure(await set.statPhase(measuredCommon, 'stat', options.ops));
        break;
      case 'list':
        await prepare();
        if (!stop.stopped) measure(await set.listPhase(measuredCommon, 'list', options.ops, options.maxKeys));
        break;
      case 'delete':
        await prepare();
        if (!stop.stopped) measure(await set.deleteBatchPhase(measuredCommon, 'delete', options.batch));
        break;
      case 'mixed':
        await prepare();
        if (!stop.stopped && set.stored.size > 0) measure(await set.mixedPhase(measuredCommon, 'mixed', options.ops, options.mix));
        break;
      case 'multipart': {
        const result = await runMultipart(set, common, options.parts);
        for (const phase of result.phases) measure(phase);
        completeMs = result.completeMs;
        multipartLeftOver = result.cleanedUp ? 0 : 1;
        break;
      }
    }
  } finally {
    if (set.attempted > set.deleted.size) {
      phases.push(await set.cleanupPhase(common, 'cleanup'));
      progress?.clear();
    }
    client.close();
  }
  return { phases, measured, keyPrefix, leftOver: set.leftOver + multipartLeftOver, ...(completeMs === undefined ? {} : { completeMs }) };
}

async function loadCommand(mode: Mode, args: readonly string[]): Promise<number> {
  const options = parseLoadMode(mode, args);
  if (options === 'help') {
    process.stdout.write(usage);
    return 0;
  }
  const human = options.json ? (line: string) => process.stderr.write(`${line}\n`) : (line: string) => process.stdout.write(`${line}\n`);
  const progress = new ProgressLine(options.progress && process.stderr.isTTY === true);
  const date = new Date().toISOString();
  return withInterrupt('bench', async (stop) => {
    const result = await runLoadMode(options, stop, progress);
    const errors = result.phases.reduce((sum, p) => sum + p.errors, 0);
    human(`${mode}  endpoint ${options.connection.endpoint.origin}  bucket ${options.bucket}  obj.size ${formatBytes(options.sizeBytes)}${options.randomSize ? ' (randsize)' : ''}  ` +
      `concurrency ${options.concurrency}  sse ${options.sse}  duration limit ${options.durationMs / 1000}s per phase${options.autoterm ? '  autoterm' : ''}`);
    for (const line of phaseTable(result.phases)) human(line);
    for (const phase of result.phases) if (result.measured.includes(phase.phase)) human(phaseSummary(phase));
    if (result.completeMs !== undefined) human(`CompleteMultipartUpload: ${result.completeMs.toFixed(1)} ms`);
    const cleanup = result.phases.find((p) => p.phase === 'cleanup');
    if (result.leftOver > 0 || cleanup?.stoppedEarly) human(`cleanup incomplete: objects under s3://${options.bucket}/${result.keyPrefix}/ may remain`);
    const { connection, outFile: _outFile, ...shown } = options;
    const json = {
      ...shown,
      endpoint: connection.endpoint.origin,
      accessKeyId: connection.accessKeyId, // never the secret key nor the SSE-C key
      keyPrefix: result.keyPrefix,
      date,
      ...machineInfo(),
      errors,
      measured: result.measured,
      ...(result.completeMs === undefined ? {} : { completeMs: result.completeMs }),
      phases: result.phases,
    };
    const text = `${JSON.stringify(json, null, 2)}\n`;
    if (options.outFile !== undefined) {
      await writeFile(options.outFile, text);
      human(`wrote ${options.outFile}`);
    }
    if (options.json) process.stdout.write(text);
    if (errors > 0 || result.leftOver > 0 || cleanup?.stoppedEarly) return 1;
    return stop.stopped ? 130 : 0;
  });
}

/** The `coffer bench` command: returns the exit code. */
export async function runBenchCommand(args: readonly string[]): Promise<number> {
  const [sub, ...rest] = args;
  try {
    if (sub === undefined || sub === 'help' || sub === '--help' || sub === '-h') {
      process.stdout.write(usage);
      return sub === undefined ? 2 : 0;
    }
    if (sub === 'compare') {
      const { runCompareCommand } = await import('./compare/command.ts');
      return await runCompareCommand(rest);
    }
    if (sub === 'kernels') {
      const { runKernels } = await import('./kernels/suite.ts');
      return await runKernels(rest);
    }
    if ((modes as readonly string[]).includes(sub)) return await loadCommand(sub as Mode, rest);
    throw new UsageError(`unknown mode '${sub}'`);
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`coffer bench: ${error.message}\n${usage}`);
      return 2;
    }
    const code = (error as { code?: unknown }).code;
    const tlsHint = typeof code === 'string' && /CERT|SELF_SIGNED|UNABLE_TO_VERIFY/.test(code) ? ' (for a test server use --insecure, or --ca FILE)' : '';
    process.stderr.write(`coffer bench: ${(error as Error).message}${tlsHint}\n`);
    return 1;
  }
}

// `npx tsx bench/cli.ts …` until cli/main.ts wires `coffer bench`.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await runBenchCommand(process.argv.slice(2));
}
