// `coffer bench compare`: the same workload against several endpoints / SSE modes in one run, the cases
// taking turns (round 1: step 1 A, step 1 B, step 2 A, step 2 B, …; round 2 the same), so slow drift on a
// shared machine (reference/perf-primitives.md §0) hits every case alike. Prints medians, min–max and
// ratios against the baseline case (the first, or --baseline), and writes JSON and a self-contained HTML
// report (inline SVG: throughput over time, latency histograms, CPU) into --out (default bench/results).
//
//   coffer bench compare --case 'plain=http://127.0.0.1:9000' --case 'sse-s3=http://127.0.0.1:9000,sse=s3' \
//       --workload 'put:16MiB,get:16MiB,put:4KiB,get:4KiB' --rounds 3 [--server-pid PID]
//
// Workload steps are OP:SIZE[*OBJECTS][@CONCURRENCY][/REQUESTS] with OP put | get | stat. A put step PUTs
// OBJECTS new objects; get and stat steps make REQUESTS requests (default OBJECTS) over the OBJECTS objects
// the case stored at that size in this round (uploading the missing ones first, unmeasured). More requests
// than objects lengthen a step whose objects are read in a fraction of a second, where one burst of the
// machine's background work would otherwise decide the round. Every round ends by deleting what it created, or
// with --cleanup end the whole run does, once: then no step runs in the wake of a mass delete (on ext4 without
// a journal, new inodes skip the ones deleted in the last 30 s, which cost a small PUT up to a fifth of its
// CPU, bench/RESULTS.md), at the price of disk space for every round's objects. --warmup N runs N unmeasured
// rounds first (a fresh server's first steps pay for JIT and cold caches), and --settle pauses after every step
// and cleanup, so that what one step leaves running in the background (writeback, GC) is not the next one's.

import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { connect, parseConnection, type Connection } from '../load/connection.ts';
import { ObjectSet, objectSuffixBytes, type PhaseCommon, type Verify } from '../load/objects.ts';
import type { PhaseResult, StopSignal } from '../load/phase.ts';
import { machineInfo, withInterrupt } from '../load/process.ts';
import { ProgressLine, stealNote } from '../load/report.ts';
import { counterChanges, kmsCallsIn, scrapeCounters, type Counters } from './server-counters.ts';
import { formatOverBudget, kmsOverBudget, parseKmsBudget, type KmsBudget, type KmsOverBudget } from './kms-budget.ts';
import { ensureBucket, type S3Client } from '../load/s3-client.ts';
import {
  bucketNamePattern, formatBytesCompact, mebibyte, parseDuration, parseIntegerIn, parseSize, ssePattern, UsageError,
} from '../load/units.ts';
import { renderCompareHtml } from './html.ts';

export const casesMax = 8;
export const stepsMax = 32;
export const roundsMax = 100;
export const warmupRoundsMax = 10;
export const settleMsMax = 60_000;
/** A step without *OBJECTS moves about this many bytes, within the object bounds below. */
export const stepBytesDefault = 512 * mebibyte;
export const stepObjectsMin = 16;
export const stepObjectsMax = 2000;
export const stepObjectsLimit = 100_000;
export const stepRequestsLimit = 10_000_000;
/** Steps are short (seconds), so the throughput timeline starts finer than a single run's. */
export const compareTimelineIntervalMs = 100;
const stepOps = ['put', 'get', 'stat'] as const;
type StepOp = (typeof stepOps)[number];

const resultsDir = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'results');

export const compareUsage = `usage: coffer bench compare --case NAME=URL[,sse=none|s3|kms[:KEY]|c][,pid=PID][,metrics][,bucket=B][,access-key=K][,secret-key=S][,insecure][,ca=FILE]
         --case … --workload OP:SIZE[*OBJECTS][@CONCURRENCY][/REQUESTS],… [--rounds 3] [--concurrency 8] [--duration 30s]
         [--cleanup round|end] [--warmup 0] [--settle 0s]
         [--baseline NAME] [--server-pid PID] [--verify md5|length] [--bucket coffer-bench] [--access-key K --secret-key S]
         [--kms-budget OP=CALLS,…] [--out DIR] [--name LABEL] [--json] [--no-progress]
  OP is put, get or stat; OBJECTS defaults to ~512 MiB per step (${stepObjectsMin}..${stepObjectsMax} objects);
  get and stat steps make REQUESTS requests over those objects (default: one per object).
  Cases take turns step by step in every round, the first case rotating each round (A B, B A, …), so no
  case always runs right after another; ratios are against the baseline (first case), the paired ratio with
  a distribution-free confidence interval of its median. --cleanup end keeps every round's objects until the
  run ends (no step measures the previous round's deletions; needs rounds × the per-round bytes of disk).
  --warmup N runs N unmeasured rounds first; --settle pauses that long after every step and cleanup.
  metrics: read the server's Prometheus counters (/minio/v2/metrics/cluster, signed) around every measured
  step and report what changed, e.g. the KMS calls a Coffer server made.
  --kms-budget get=0,put=1: KMS calls allowed per request of each operation, checked on every measured step
  of the metrics cases; a step over budget is listed and the command exits 3.
`;

export type CleanupTiming = 'round' | 'end';

export interface CompareCase {
  readonly name: string;
  readonly connection: Connection;
  readonly sse: string;
  readonly bucket: string;
  readonly serverPid?: number;
  /** scrape the server's counters around every measured step (StepRun.serverCounters) */
  readonly metrics?: boolean;
}

export interface CompareStep {
  readonly label: string;
  readonly op: StepOp;
  readonly sizeBytes: number;
  readonly objects: number;
  /** requests of a get or stat step (OBJECTS unless /REQUESTS); a put step's equals `objects` */
  readonly requests: number;
  readonly concurrency: number;
}

export interface CompareOptions {
  readonly cases: readonly CompareCase[];
  readonly steps: readonly CompareStep[];
  readonly rounds: number;
  readonly durationMs: number;
  readonly baseline: string;
  readonly verify: Verify;
  readonly cleanup: CleanupTiming;
  readonly warmupRounds: number;
  readonly settleMs: number;
  readonly outDir: string;
  readonly name: string;
  readonly json: boolean;
  readonly progress: boolean;
  /** --kms-budget: KMS calls allowed per request, by step operation */
  readonly kmsBudget?: KmsBudget;
}

export interface StepRun {
  /** 1, 2, …; warmup rounds are 0, −1, … (CompareReport.warmups) */
  readonly round: number;
  readonly step: string;
  readonly case: string;
  /** position in the run (0, 1, 2, …): the alternation order */
  readonly order: number;
  readonly measured: PhaseResult;
  /** unmeasured phases that ran for this step (prepare) */
  readonly other: readonly PhaseResult[];
  /** with `metrics`: the server counters that changed during the measured phase, by series (name{labels}) */
  readonly serverCounters?: Readonly<Record<string, number>>;
  /** with `metrics`, against a Coffer server: its KMS calls during the measured phase */
  readonly kmsCalls?: number;
}

export interface Spread {
  readonly median: number;
  readonly min: number;
  readonly max: number;
}

/** Order statistics bracketing a median (see medianInterval); NaN bounds when there are no values. */
export interface MedianInterval {
  readonly low: number;
  readonly high: number;
  /** the probability that [low, high] holds the true median: ≥ the level asked, or less when n is too small */
  readonly confidence: number;
}

export interface CaseSummary {
  readonly step: string;
  readonly case: string;
  readonly rounds: number;
  readonly errors: number;
  readonly mibPerSecond: Spread;
  readonly objectsPerSecond: Spread;
  readonly latencyMsP50: Spread;
  readonly latencyMsP99: Spread;
  readonly ttfbMsP50?: Spread;
  /** client CPU milliseconds per request, and client CPU seconds over wall seconds */
  readonly clientCpuMsPerOp: Spread;
  readonly clientCpuCores: Spread;
  readonly serverCpuMsPerOp?: Spread;
  readonly serverCpuCores?: Spread;
}

export interface Ratio {
  readonly step: string;
  readonly case: string;
  readonly baseline: string;
  /** median throughput of the case over median throughput of the baseline */
  readonly throughput: number;
  /** per round: case / baseline of the same round (they ran back to back) */
  readonly pairedThroughput: Spread;
  /** a ~95% confidence interval of the paired ratio's median */
  readonly pairedInterval: MedianInterval;
  readonly latencyP50: number;
  readonly serverCpuPerOp?: number;
}

export interface CompareReport {
  readonly kind: 'coffer-bench-compare';
  readonly version: 1;
  readonly name: string;
  readonly date: string;
  readonly machine: Record<string, unknown>;
  readonly rounds: number;
  readonly durationMs: number;
  readonly verify: Verify;
  readonly cleanup: CleanupTiming;
  readonly warmupRounds: number;
  readonly settleMs: number;
  readonly baseline: string;
  readonly cases: readonly { name: string; endpoint: string; sse: string; bucket: string; serverPid?: number; metrics?: boolean }[];
  readonly steps: readonly CompareStep[];
  readonly runs: readonly StepRun[];
  /** the unmeasured warmup rounds' steps: in no summary or ratio, their errors still counted */
  readonly warmups: readonly StepRun[];
  readonly cleanups: readonly { round: number; case: string; phase: PhaseResult }[];
  readonly summary: readonly CaseSummary[];
  readonly ratios: readonly Ratio[];
  readonly errors: number;
  readonly interrupted: boolean;
  /** with --kms-budget: the budget, and every measured run that exceeded it */
  readonly kmsBudget?: KmsBudget;
  readonly kmsOverBudget?: readonly KmsOverBudget[];
}

// ------------------------------------------------------------------------------------------- parsing

function parseCase(text: string, defaults: { accessKey?: string; secretKey?: string; bucket: string; serverPid?: number }): CompareCase {
  const [head, ...rest] = text.split(',');
  const equals = head!.indexOf('=');
  if (equals <= 0) throw new UsageError(`--case ${JSON.stringify(text)}: expected NAME=URL[,sse=s3]…`);
  const name = head!.slice(0, equals);
  if (!/^[A-Za-z0-9._-]{1,40}$/.test(name)) throw new UsageError(`--case name ${JSON.stringify(name)}: use letters, digits, . _ - (≤ 40)`);
  const settings = new Map<string, string>();
  for (const item of rest) {
    const at = item.indexOf('=');
    const key = at < 0 ? item : item.slice(0, at);
    if (!['sse', 'pid', 'metrics', 'bucket', 'access-key', 'secret-key', 'region', 'insecure', 'ca'].includes(key)) throw new UsageError(`--case ${name}: unknown setting ${JSON.stringify(key)}`);
    settings.set(key, at < 0 ? 'true' : item.slice(at + 1));
  }
  const sse = settings.get('sse') ?? 'none';
  if (!ssePattern.test(sse)) throw new UsageError(`--case ${name}: sse must be none, s3, kms, kms:KEY or c`);
  const bucket = settings.get('bucket') ?? defaults.bucket;
  if (!bucketNamePattern.test(bucket)) throw new UsageError(`--case ${name}: invalid bucket ${JSON.stringify(bucket)}`);
  const pidText = settings.get('pid');
  const serverPid = pidText === undefined ? defaults.serverPid : parseIntegerIn(pidText, `case ${name} pid`, 1, 2 ** 22);
  return {
    name,
    connection: parseConnection({
      endpoint: head!.slice(equals + 1),
      accessKey: settings.get('access-key') ?? defaults.accessKey,
      secretKey: settings.get('secret-key') ?? defaults.secretKey,
      region: settings.get('region'),
      insecure: settings.has('insecure'),
      ca: settings.get('ca'),
    }, `--case ${name} endpoint`),
    sse,
    bucket,
    ...(serverPid === undefined ? {} : { serverPid }),
    ...(settings.has('metrics') ? { metrics: true } : {}),
  };
}

export function parseWorkload(text: string, concurrency: number): CompareStep[] {
  const steps = text.split(',').map((item) => item.trim()).filter((item) => item !== '').map((item): CompareStep => {
    const match = /^(put|get|stat):([0-9.]+[A-Za-z]*)(?:\*(\d+))?(?:@(\d+))?(?:\/(\d+))?$/.exec(item);
    if (!match) throw new UsageError(`--workload: cannot read ${JSON.stringify(item)} (examples: put:16MiB, get:4KiB*2000@16, get:4KiB*2000@16/20000)`);
    if (match[1] === 'put' && match[5] !== undefined) throw new UsageError(`--workload ${item}: /REQUESTS is for get and stat steps (a put step PUTs OBJECTS objects)`);
    const sizeBytes = parseSize(match[2]!, '--workload size');
    if (sizeBytes < objectSuffixBytes || sizeBytes > 5 * 1024 * mebibyte) throw new UsageError(`--workload ${item}: size must be ${objectSuffixBytes} B..5 GiB`);
    const objects = match[3] === undefined
      ? Math.min(stepObjectsMax, Math.max(stepObjectsMin, Math.round(stepBytesDefault / sizeBytes)))
      : parseIntegerIn(match[3], `workload ${item} objects`, 1, stepObjectsLimit);
    const stepConcurrency = match[4] === undefined ? concurrency : parseIntegerIn(match[4], `workload ${item} concurrency`, 1, 1024);
    const requests = match[5] === undefined ? objects : parseIntegerIn(match[5], `workload ${item} requests`, 1, stepRequestsLimit);
    return { label: `${match[1]}:${formatBytesCompact(sizeBytes)}`, op: match[1] as StepOp, sizeBytes, objects, requests, concurrency: stepConcurrency };
  });
  if (steps.length === 0 || steps.length > stepsMax) throw new UsageError(`--workload needs 1..${stepsMax} steps`);
  const labels = new Set<string>();
  for (const step of steps) {
    if (labels.has(step.label)) throw new UsageError(`--workload lists ${step.label} twice`);
    labels.add(step.label);
  }
  return steps;
}

export function parseCompare(args: readonly string[]): CompareOptions | 'help' {
  let values;
  try {
    values = parseArgs({
      args: [...args],
      options: {
        case: { type: 'string', multiple: true },
        workload: { type: 'string', default: 'put:16MiB,get:16MiB,put:4KiB,get:4KiB' },
        rounds: { type: 'string', default: '3' },
        concurrency: { type: 'string', default: '8' },
        duration: { type: 'string', default: '30s' },
        baseline: { type: 'string' },
        'server-pid': { type: 'string' },
        verify: { type: 'string', default: 'md5' },
        cleanup: { type: 'string', default: 'round' },
        warmup: { type: 'string', default: '0' },
        settle: { type: 'string', default: '0s' },
        bucket: { type: 'string', default: 'coffer-bench' },
        'access-key': { type: 'string' },
        'secret-key': { type: 'string' },
        out: { type: 'string' },
        name: { type: 'string' },
        json: { type: 'boolean', default: false },
        'no-progress': { type: 'boolean', default: false },
        'kms-budget': { type: 'string' },
        help: { type: 'boolean', default: false },
      },
      strict: true,
    }).values;
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (values.help) return 'help';
  const caseTexts = values.case ?? [];
  if (caseTexts.length < 1 || caseTexts.length > casesMax) throw new UsageError(`give 1..${casesMax} --case NAME=URL`);
  const serverPid = values['server-pid'] === undefined ? undefined : parseIntegerIn(values['server-pid'], 'server-pid', 1, 2 ** 22);
  const cases = caseTexts.map((text) => parseCase(text, {
    ...(values['access-key'] === undefined ? {} : { accessKey: values['access-key'] }),
    ...(values['secret-key'] === undefined ? {} : { secretKey: values['secret-key'] }),
    bucket: values.bucket,
    ...(serverPid === undefined ? {} : { serverPid }),
  }));
  if (new Set(cases.map((c) => c.name)).size !== cases.length) throw new UsageError('case names must differ');
  const baseline = values.baseline ?? cases[0]!.name;
  if (!cases.some((c) => c.name === baseline)) throw new UsageError(`--baseline ${baseline} is not a case`);
  if (values.verify !== 'md5' && values.verify !== 'length') throw new UsageError('--verify must be md5 or length');
  if (values.cleanup !== 'round' && values.cleanup !== 'end') throw new UsageError('--cleanup must be round or end');
  const settleMs = parseDuration(values.settle, '--settle');
  if (settleMs < 0 || settleMs > settleMsMax) throw new UsageError(`--settle must be between 0s and ${settleMsMax / 1000}s`);
  const durationMs = parseDuration(values.duration, '--duration');
  if (durationMs < 1 || durationMs > 24 * 3_600_000) throw new UsageError('--duration must be between 1ms and 24h');
  const concurrency = parseIntegerIn(values.concurrency, 'concurrency', 1, 1024);
  const kmsBudget = values['kms-budget'] === undefined ? undefined : parseKmsBudget(values['kms-budget'], stepOps);
  if (kmsBudget !== undefined && !cases.some((c) => c.metrics === true)) throw new UsageError('--kms-budget needs a case with metrics (its counters are where the KMS calls come from)');
  return {
    cases,
    steps: parseWorkload(values.workload, concurrency),
    rounds: parseIntegerIn(values.rounds, 'rounds', 1, roundsMax),
    durationMs,
    baseline,
    verify: values.verify,
    cleanup: values.cleanup,
    warmupRounds: parseIntegerIn(values.warmup, 'warmup', 0, warmupRoundsMax),
    settleMs,
    outDir: values.out ?? resultsDir,
    name: values.name ?? cases.map((c) => c.name).join('-vs-'),
    json: values.json,
    progress: !values['no-progress'],
    ...(kmsBudget === undefined ? {} : { kmsBudget }),
  };
}

// ------------------------------------------------------------------------------------------- running

function spread(values: readonly number[]): Spread {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return { median: Number.NaN, min: Number.NaN, max: Number.NaN };
  const middle = sorted.length >> 1;
  const median = sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
  return { median, min: sorted[0]!, max: sorted[sorted.length - 1]! };
}

/**
 * A distribution-free confidence interval of the median of `values`: the k-th smallest and k-th largest,
 * with k the largest rank whose binomial tail P(Bin(n, ½) < k) stays within (1 − level)/2 on each side. It
 * assumes only that the values are independent draws (rounds), not that they are normal. n = 10 gives the
 * 2nd and 9th values at 97.9%; below n = 6 no pair reaches 95%, and the range min–max is given with the
 * confidence it does have (n = 5: 93.8%).
 */
export function medianInterval(values: readonly number[], level = 0.95): MedianInterval {
  const sorted = [...values].sort((a, b) => a - b);
  const n = sorted.length;
  if (n === 0) return { low: Number.NaN, high: Number.NaN, confidence: 0 };
  let k = 1;
  let pmf = 0.5 ** n; // P(X = 0), X ~ Bin(n, ½): values below the true median
  let cdf = pmf; // P(X < next)
  let outside = cdf; // P(X < k): the chance the median lies below the k-th smallest (and, alike, above)
  for (let next = 2; next <= (n + 1) >> 1; next++) {
    pmf = (pmf * (n - next + 2)) / (next - 1); // P(X = next - 1)
    cdf += pmf;
    if (2 * cdf > 1 - level) break;
    k = next;
    outside = cdf;
  }
  return { low: sorted[k - 1]!, high: sorted[n - k]!, confidence: 1 - 2 * outside };
}

export function summarizeRuns(options: Pick<CompareOptions, 'cases' | 'steps' | 'baseline'>, runs: readonly StepRun[]): { summary: CaseSummary[]; ratios: Ratio[] } {
  const summary: CaseSummary[] = [];
  for (const step of options.steps) {
    for (const c of options.cases) {
      const mine = runs.filter((run) => run.step === step.label && run.case === c.name).map((run) => run.measured);
      if (mine.length === 0) continue;
      const perOp = (seconds: number, p: PhaseResult): number => (p.succeeded === 0 ? Number.NaN : (seconds * 1000) / p.succeeded);
      const withServer = mine.filter((p) => p.serverCpuSeconds !== undefined);
      const withTtfb = mine.filter((p) => p.ttfbMs !== undefined);
      summary.push({
        step: step.label,
        case: c.name,
        rounds: mine.length,
        errors: mine.reduce((sum, p) => sum + p.errors, 0),
        mibPerSecond: spread(mine.map((p) => p.mibPerSecond)),
        objectsPerSecond: spread(mine.map((p) => p.objectsPerSecond)),
        latencyMsP50: spread(mine.map((p) => p.latencyMs.p50)),
        latencyMsP99: spread(mine.map((p) => p.latencyMs.p99)),
        ...(withTtfb.length === 0 ? {} : { ttfbMsP50: spread(withTtfb.map((p) => p.ttfbMs!.p50)) }),
        clientCpuMsPerOp: spread(mine.map((p) => perOp(p.clientCpuSeconds, p))),
        clientCpuCores: spread(mine.map((p) => p.clientCpuCores)),
        ...(withServer.length === 0 ? {} : {
          serverCpuMsPerOp: spread(withServer.map((p) => perOp(p.serverCpuSeconds!, p))),
          serverCpuCores: spread(withServer.map((p) => p.serverCpuSeconds! / p.wallSeconds)),
        }),
      });
    }
  }
  const ratios: Ratio[] = [];
  for (const step of options.steps) {
    const base = summary.find((s) => s.step === step.label && s.case === options.baseline);
    if (base === undefined) continue;
    for (const s of summary.filter((each) => each.step === step.label && each.case !== options.baseline)) {
      const paired: number[] = [];
      for (const run of runs.filter((r) => r.step === step.label && r.case === s.case)) {
        const partner = runs.find((r) => r.step === step.label && r.case === options.baseline && r.round === run.round);
        if (partner !== undefined && partner.measured.objectsPerSecond > 0) paired.push(run.measured.objectsPerSecond / partner.measured.objectsPerSecond);
      }
      ratios.push({
        step: step.label,
        case: s.case,
        baseline: options.baseline,
        throughput: s.objectsPerSecond.median / base.objectsPerSecond.median,
        pairedThroughput: spread(paired),
        pairedInterval: medianInterval(paired),
        latencyP50: s.latencyMsP50.median / base.latencyMsP50.median,
        ...(s.serverCpuMsPerOp === undefined || base.serverCpuMsPerOp === undefined ? {} : { serverCpuPerOp: s.serverCpuMsPerOp.median / base.serverCpuMsPerOp.median }),
      });
    }
  }
  return { summary, ratios };
}

interface CaseState {
  readonly spec: CompareCase;
  readonly client: S3Client;
  /** this round's objects, per step size */
  sets: Map<number, ObjectSet>;
}

export async function runCompare(options: CompareOptions, stop: StopSignal, progress?: ProgressLine, log: (line: string) => void = () => {}): Promise<CompareReport> {
  const date = new Date().toISOString();
  const runId = Math.floor(Math.random() * 2 ** 32).toString(16).padStart(8, '0');
  const concurrencyMax = Math.max(...options.steps.map((s) => s.concurrency));
  const states: CaseState[] = options.cases.map((spec) => ({ spec, client: connect(spec.connection, concurrencyMax), sets: new Map() }));
  const runs: StepRun[] = [];
  const warmups: StepRun[] = [];
  const cleanups: { round: number; case: string; phase: PhaseResult }[] = [];
  let order = 0;
  const settle = (): Promise<void> => (options.settleMs > 0 && !stop.stopped ? sleep(options.settleMs) : Promise.resolve());
  /** cases asked for `metrics` whose server would not give them (reported once, then no longer asked) */
  const noMetrics = new Set<string>();
  const countersOf = async (state: CaseState): Promise<Counters | undefined> => {
    if (state.spec.metrics !== true || noMetrics.has(state.spec.name)) return undefined;
    const counters = await scrapeCounters(state.client);
    if (!(counters instanceof Error)) return counters;
    noMetrics.add(state.spec.name);
    log(`${state.spec.name}: no server counters (${counters.message}); running without them`);
    return undefined;
  };
  const common = (state: CaseState, concurrency: number): PhaseCommon => ({
    concurrency,
    durationMs: options.durationMs,
    stop,
    timelineIntervalMs: compareTimelineIntervalMs,
    ...(state.spec.serverPid === undefined ? {} : { serverPid: state.spec.serverPid }),
    ...(progress === undefined ? {} : { progress: progress.update }),
  });
  const setFor = (state: CaseState, round: number, sizeBytes: number): ObjectSet => {
    let set = state.sets.get(sizeBytes);
    if (set === undefined) {
      set = new ObjectSet(state.client, {
        bucket: state.spec.bucket,
        keyPrefix: `compare-${runId}/${state.spec.name}/${round > 0 ? `r${round}` : `w${1 - round}`}/${formatBytesCompact(sizeBytes)}`,
        sizeBytes,
        randomSize: false,
        sse: state.spec.sse,
        verify: options.verify,
      });
      state.sets.set(sizeBytes, set);
    }
    return set;
  };
  /** with --cleanup end: the sets of finished rounds, deleted when the run ends */
  const kept: Array<{ round: number; state: CaseState; set: ObjectSet }> = [];
  const clean = async (round: number, state: CaseState, set: ObjectSet): Promise<void> => {
    const phase = await set.cleanupPhase({ ...common(state, concurrencyMax), stop: { stopped: false } }, 'cleanup');
    progress?.clear();
    cleanups.push({ round, case: state.spec.name, phase });
    await settle();
  };
  const endRound = async (round: number): Promise<void> => {
    for (const state of states) {
      for (const set of state.sets.values()) {
        if (options.cleanup === 'end') kept.push({ round, state, set });
        else await clean(round, state, set);
      }
      state.sets = new Map();
    }
  };
  try {
    for (const state of states) await ensureBucket(state.client, state.spec.bucket);
    for (let round = 1 - options.warmupRounds; round <= options.rounds && !stop.stopped; round++) {
      const label = round > 0 ? `round ${round}` : `warmup ${1 - round}`;
      try {
        // Rotate who goes first each round (A B, then B A, …): a case that runs right after another pays
        // for that one's background work (dirty-page writeback, freed memory), measured at up to 25% on
        // 16 MiB PUTs of two identical cases here. Over an even number of rounds the position evens out.
        const shift = (((round - 1) % states.length) + states.length) % states.length;
        const ordered = [...states.slice(shift), ...states.slice(0, shift)];
        for (const step of options.steps) {
          for (const state of ordered) {
            if (stop.stopped) break;
            const set = setFor(state, round, step.sizeBytes);
            const other: PhaseResult[] = [];
            const stepCommon = common(state, step.concurrency);
            let measured: PhaseResult;
            let countersBefore: Counters | undefined;
            if (step.op === 'put') {
              countersBefore = await countersOf(state);
              measured = await set.putPhase(stepCommon, step.label, step.objects);
            } else {
              if (set.stored.size < step.objects) other.push(await set.fillPhase(stepCommon, 'prepare', step.objects));
              progress?.clear();
              if (set.stored.size === 0) throw new Error(`${state.spec.name} ${step.label}: no object could be stored to read`);
              countersBefore = await countersOf(state);
              measured = step.op === 'get'
                ? await set.getPhase(stepCommon, step.label, step.requests)
                : await set.statPhase(stepCommon, step.label, step.requests);
            }
            progress?.clear();
            const countersAfter = countersBefore === undefined ? undefined : await countersOf(state);
            const serverCounters = countersBefore === undefined || countersAfter === undefined ? undefined : counterChanges(countersBefore, countersAfter);
            const kmsCalls = serverCounters === undefined ? undefined : kmsCallsIn(serverCounters, countersAfter!);
            (round > 0 ? runs : warmups).push({
              round, step: step.label, case: state.spec.name, order: order++, measured, other,
              ...(serverCounters === undefined ? {} : { serverCounters }),
              ...(kmsCalls === undefined ? {} : { kmsCalls }),
            });
            const rate = measured.bytes > 0 ? `${measured.mibPerSecond.toFixed(1)} MiB/s, ` : '';
            log(`${label}  ${step.label.padEnd(12)} ${state.spec.name.padEnd(12)} ${rate}${measured.objectsPerSecond.toFixed(1)} obj/s, ` +
              `p50 ${measured.latencyMs.p50.toFixed(2)} ms, errors ${measured.errors}, client CPU ${measured.clientCpuSeconds.toFixed(2)} s` +
              (measured.serverCpuSeconds === undefined ? '' : `, server CPU ${measured.serverCpuSeconds.toFixed(2)} s`) +
              stealNote(measured).map((note) => `, ${note}`).join('') +
              (kmsCalls === undefined ? '' : `, KMS calls ${kmsCalls}`));
            await settle();
          }
        }
      } finally {
        await endRound(round);
      }
    }
  } finally {
    try {
      for (const { round, state, set } of kept.splice(0)) await clean(round, state, set);
    } finally {
      for (const state of states) state.client.close();
    }
  }
  const { summary, ratios } = summarizeRuns(options, runs);
  const errors = [...runs, ...warmups].reduce((sum, run) => sum + run.measured.errors + run.other.reduce((s, p) => s + p.errors, 0), 0) +
    cleanups.reduce((sum, c) => sum + c.phase.errors + (c.phase.stoppedEarly ? 1 : 0), 0);
  return {
    kind: 'coffer-bench-compare',
    version: 1,
    name: options.name,
    date,
    machine: machineInfo(),
    rounds: options.rounds,
    durationMs: options.durationMs,
    verify: options.verify,
    cleanup: options.cleanup,
    warmupRounds: options.warmupRounds,
    settleMs: options.settleMs,
    baseline: options.baseline,
    cases: options.cases.map((c) => ({
      name: c.name, endpoint: c.connection.endpoint.origin, sse: c.sse, bucket: c.bucket, ...(c.serverPid === undefined ? {} : { serverPid: c.serverPid }),
      ...(c.metrics === true ? { metrics: true } : {}),
    })),
    steps: options.steps,
    runs,
    warmups,
    cleanups,
    summary,
    ratios,
    errors,
    interrupted: stop.stopped,
    ...(options.kmsBudget === undefined ? {} : {
      kmsBudget: options.kmsBudget,
      kmsOverBudget: kmsOverBudget(runs, (label) => options.steps.find((s) => s.label === label)?.op, options.kmsBudget),
    }),
  };
}

// ------------------------------------------------------------------------------------------- output

const fmt = (value: number | undefined, digits: number): string => (value === undefined || !Number.isFinite(value) ? '-' : value.toFixed(digits));

/** `[0.850–0.950 @98%]` */
export function formatInterval(interval: MedianInterval): string {
  return `[${fmt(interval.low, 3)}–${fmt(interval.high, 3)} @${Math.floor(interval.confidence * 100)}%]`;
}

export function compareTable(report: CompareReport): string[] {
  const lines: string[] = [];
  const header = ['step', 'case', 'MiB/s median (min–max)', 'obj/s median', 'p50 ms', 'p99 ms', 'TTFB p50 ms', 'client CPU ms/op (cores)', 'server CPU ms/op (cores)', 'errors'];
  const rows = report.summary.map((s) => [
    s.step,
    s.case,
    `${fmt(s.mibPerSecond.median, 1)} (${fmt(s.mibPerSecond.min, 1)}–${fmt(s.mibPerSecond.max, 1)})`,
    fmt(s.objectsPerSecond.median, s.objectsPerSecond.median < 100 ? 1 : 0),
    fmt(s.latencyMsP50.median, 2),
    fmt(s.latencyMsP99.median, 2),
    fmt(s.ttfbMsP50?.median, 2),
    `${fmt(s.clientCpuMsPerOp.median, 3)} (${fmt(s.clientCpuCores.median, 2)})`,
    s.serverCpuMsPerOp === undefined ? '-' : `${fmt(s.serverCpuMsPerOp.median, 3)} (${fmt(s.serverCpuCores?.median, 2)})`,
    String(s.errors),
  ]);
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
  const line = (cells: readonly string[]): string => cells.map((cell, column) => (column < 2 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!))).join('  ');
  lines.push(line(header), ...rows.map(line));
  if (report.ratios.length > 0) {
    lines.push('');
    lines.push(`ratios against ${report.baseline} (throughput: median/median; paired: per round, median (min–max) [confidence interval of that median]):`);
    for (const r of report.ratios) {
      lines.push(`  ${r.step.padEnd(12)} ${r.case} / ${r.baseline}: throughput ${fmt(r.throughput, 3)}  paired ${fmt(r.pairedThroughput.median, 3)} ` +
        `(${fmt(r.pairedThroughput.min, 3)}–${fmt(r.pairedThroughput.max, 3)}) ${formatInterval(r.pairedInterval)}  p50 latency ×${fmt(r.latencyP50, 2)}` +
        (r.serverCpuPerOp === undefined ? '' : `  server CPU/op ×${fmt(r.serverCpuPerOp, 2)}`));
    }
  }
  return lines;
}

export async function writeCompareFiles(report: CompareReport, outDir: string): Promise<{ jsonFile: string; htmlFile: string }> {
  await mkdir(outDir, { recursive: true });
  const base = path.join(outDir, `compare-${report.name.replace(/[^A-Za-z0-9._-]/g, '_')}-${report.date.replace(/[:.]/g, '-')}`);
  const jsonFile = `${base}.json`;
  const htmlFile = `${base}.html`;
  await writeFile(jsonFile, `${JSON.stringify(report, null, 2)}\n`);
  await writeFile(htmlFile, renderCompareHtml(report));
  return { jsonFile, htmlFile };
}

export async function runCompareCommand(args: readonly string[]): Promise<number> {
  const options = parseCompare(args);
  if (options === 'help') {
    process.stdout.write(compareUsage);
    return 0;
  }
  const human = options.json ? (line: string) => process.stderr.write(`${line}\n`) : (line: string) => process.stdout.write(`${line}\n`);
  const progress = new ProgressLine(options.progress && process.stderr.isTTY === true);
  return withInterrupt('bench compare', async (stop) => {
    human(`compare ${options.cases.map((c) => `${c.name}=${c.connection.endpoint.origin} sse=${c.sse}`).join(' | ')}; ` +
      `${options.rounds} rounds of ${options.steps.map((s) => `${s.label}×${s.objects}@${s.concurrency}${s.requests === s.objects ? '' : `/${s.requests}`}`).join(', ')}`);
    const report = await runCompare(options, stop, progress, human);
    for (const line of compareTable(report)) human(line);
    const { jsonFile, htmlFile } = await writeCompareFiles(report, options.outDir);
    human(`wrote ${jsonFile}\nwrote ${htmlFile}`);
    if (options.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    if (report.kmsOverBudget !== undefined) {
      human(report.kmsOverBudget.length === 0
        ? `KMS budget ${Object.entries(report.kmsBudget!).map(([op, calls]) => `${op}=${calls}`).join(',')}: every step within it`
        : `KMS budget exceeded:\n${report.kmsOverBudget.map((over) => `  ${formatOverBudget(over)}`).join('\n')}`);
    }
    if (report.errors > 0) return 1;
    if (stop.stopped) return 130;
    return report.kmsOverBudget !== undefined && report.kmsOverBudget.length > 0 ? 3 : 0;
  });
}
