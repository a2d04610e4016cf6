// One measured phase of a load run: `operation(index)` for index 0..count-1 with `concurrency` in flight,
// bounded by the count, a deadline, a stop signal (Ctrl-C) and optionally --autoterm. Records every
// request's latency (and TTFB when the operation reports one), a throughput timeline, a fixed log-scale
// latency histogram (so runs can be merged), errors, and the CPU seconds of this process and of the server.

import { readFileSync } from 'node:fs';
import { mebibyte } from './units.ts';

/** How many error messages each phase keeps for the report. */
export const errorSamplesMax = 5;
/** The timeline never holds more buckets than this: when full, neighbouring buckets merge (interval doubles). */
export const timelineBucketsMax = 2000;
/** The live progress callback runs at most this often. */
export const progressIntervalMs = 500;

/** Latency histogram bin upper bounds: 10 per decade from 10 µs to 1000 s (fixed, so histograms add up). */
export const histogramBoundsMs: readonly number[] = Array.from({ length: 81 }, (_, k) => Number((10 ** ((k - 20) / 10)).toPrecision(3)));

export interface StopSignal {
  stopped: boolean;
}

export interface OpOutcome {
  /** payload bytes moved */
  readonly bytes: number;
  /** objects this request handled (a listing page, a DeleteObjects batch); default 1 */
  readonly objects?: number;
  /** request start → response headers */
  readonly ttfbMs?: number;
  /** operation type, for mixed phases (default: the phase name) */
  readonly op?: string;
}

export interface LatencySummary {
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
  readonly min: number;
  readonly mean: number;
}

export interface Timeline {
  readonly intervalMs: number;
  /** per interval, counted at request completion */
  readonly bytes: readonly number[];
  readonly ops: readonly number[];
  readonly objects: readonly number[];
}

export interface OpStats {
  readonly op: string;
  readonly succeeded: number;
  readonly errors: number;
  readonly bytes: number;
  readonly objects: number;
  readonly mibPerSecond: number;
  readonly opsPerSecond: number;
  readonly objectsPerSecond: number;
  readonly latencyMs: LatencySummary;
  readonly ttfbMs?: LatencySummary;
}

export type StopReason = 'count' | 'duration' | 'autoterm' | 'interrupted';

export interface PhaseResult extends OpStats {
  readonly phase: string;
  readonly attempted: number;
  readonly errorSamples: readonly string[];
  /** true when the phase stopped before its count (duration, autoterm or Ctrl-C) */
  readonly stoppedEarly: boolean;
  readonly stopReason: StopReason;
  readonly concurrency: number;
  readonly wallSeconds: number;
  readonly clientCpuSeconds: number;
  /** client CPU seconds over wall seconds (1.0 = one core busy) */
  readonly clientCpuCores: number;
  /** CLOCK_MONOTONIC seconds at the phase's start and end, to line it up with `perf record -k CLOCK_MONOTONIC` */
  readonly monotonicStartSeconds: number;
  readonly monotonicEndSeconds: number;
  /** with a server pid: the server's CPU seconds during the phase (user + system) and the system part */
  readonly serverCpuSeconds?: number;
  readonly serverCpuSystemSeconds?: number;
  /**
   * CPU seconds the hypervisor took from this machine during the phase (/proc/stat steal, all CPUs): on a
   * shared VM a slow round with steal was the host, not the server under test. Absent where unreadable.
   */
  readonly stealSeconds?: number;
  readonly timeline: Timeline;
  /** counts per bin of histogramBoundsMs (last bin also takes anything above) */
  readonly latencyHistogram: readonly number[];
  /** per operation type, when a phase mixes several */
  readonly byOp?: Readonly<Record<string, OpStats>>;
}

export interface AutotermOptions {
  /** the last `durationMs` must be stable… */
  readonly durationMs: number;
  /** …meaning 7 windows within ±percent of their mean (warp: 7 of 25 points, 7.5%, 15 s) */
  readonly percent: number;
}

export interface ProgressSnapshot {
  readonly phase: string;
  readonly done: number;
  readonly count: number;
  readonly errors: number;
  readonly bytes: number;
  readonly objects: number;
  readonly elapsedMs: number;
  /** over the last progress interval */
  readonly recentMibPerSecond: number;
  readonly recentObjectsPerSecond: number;
}

export interface PhaseOptions {
  readonly phase: string;
  readonly count: number;
  readonly concurrency: number;
  /** performance.now() time after which no new request starts */
  readonly deadlineMs: number;
  readonly stop?: StopSignal;
  readonly serverPid?: number;
  readonly autoterm?: AutotermOptions;
  /** first timeline interval (doubles when the timeline fills up); default 250 ms */
  readonly timelineIntervalMs?: number;
  readonly progress?: (snapshot: ProgressSnapshot) => void;
  readonly operation: (index: number) => Promise<OpOutcome>;
}

interface CpuSeconds {
  readonly user: number;
  readonly system: number;
}

/** CPU seconds of another process, from /proc/<pid>/stat; undefined if unreadable. */
export function processCpuSeconds(pid: number | undefined): CpuSeconds | undefined {
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

/**
 * Steal time of this machine so far, from /proc/stat (seconds, summed over its CPUs): CPU time the hypervisor
 * gave to other guests while ours were runnable. Undefined where unreadable (not Linux).
 */
export function hostStealSeconds(): number | undefined {
  try {
    const stat = readFileSync('/proc/stat', 'latin1');
    // "cpu  user nice system idle iowait irq softirq steal …", in clock ticks (100 Hz)
    const steal = Number(stat.slice(0, stat.indexOf('\n')).trim().split(/\s+/)[8]);
    return Number.isFinite(steal) ? steal / 100 : undefined;
  } catch {
    return undefined;
  }
}

export function percentile(sorted: ArrayLike<number>, fraction: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(fraction * sorted.length) - 1))]!;
}

export function summarize(values: Float64Array): LatencySummary {
  const sorted = values.slice().sort();
  let sum = 0;
  for (const value of sorted) sum += value;
  return {
    p50: percentile(sorted, 0.5),
    p90: percentile(sorted, 0.9),
    p99: percentile(sorted, 0.99),
    max: percentile(sorted, 1),
    min: sorted.length === 0 ? 0 : sorted[0]!,
    mean: sorted.length === 0 ? 0 : sum / sorted.length,
  };
}

export function histogramBin(latencyMs: number): number {
  // binary search for the first bound ≥ latency
  let low = 0;
  let high = histogramBoundsMs.length - 1;
  while (low < high) {
    const middle = (low + high) >> 1;
    if (histogramBoundsMs[middle]! >= latencyMs) high = middle;
    else low = middle + 1;
  }
  return low;
}

class TimelineRecorder {
  intervalMs: number;
  readonly bytes: number[] = [];
  readonly ops: number[] = [];
  readonly objects: number[] = [];

  constructor(intervalMs: number) {
    this.intervalMs = intervalMs;
  }

  add(elapsedMs: number, bytes: number, objects: number): void {
    let bucket = Math.floor(elapsedMs / this.intervalMs);
    while (bucket >= timelineBucketsMax) {
      this.#halve();
      bucket = Math.floor(elapsedMs / this.intervalMs);
    }
    while (this.bytes.length <= bucket) {
      this.bytes.push(0);
      this.ops.push(0);
      this.objects.push(0);
    }
    this.bytes[bucket]! += bytes;
    this.ops[bucket]! += 1;
    this.objects[bucket]! += objects;
  }

  /** extends the timeline to cover `elapsedMs` (intervals with no completion are real zeros) */
  extendTo(elapsedMs: number): void {
    this.add(elapsedMs, 0, 0);
    this.ops[this.ops.length - 1]! -= 1;
  }

  #halve(): void {
    for (const series of [this.bytes, this.ops, this.objects]) {
      const merged: number[] = [];
      for (let i = 0; i < series.length; i += 2) merged.push(series[i]! + (series[i + 1] ?? 0));
      series.length = 0;
      series.push(...merged);
    }
    this.intervalMs *= 2;
  }

  /** throughput (bytes, or objects when no bytes move) in each of `windows` windows covering the last `spanMs` */
  windowRates(nowElapsedMs: number, spanMs: number, windows: number, byBytes: boolean): number[] | undefined {
    const series = byBytes ? this.bytes : this.objects;
    const lastComplete = Math.floor(nowElapsedMs / this.intervalMs); // buckets before this one are complete
    const bucketsPerWindow = Math.max(1, Math.round(spanMs / windows / this.intervalMs));
    const firstBucket = lastComplete - bucketsPerWindow * windows;
    if (firstBucket < bucketsPerWindow) return undefined; // skip at least one window of warm-up
    const rates: number[] = [];
    for (let w = 0; w < windows; w++) {
      let sum = 0;
      for (let b = firstBucket + w * bucketsPerWindow; b < firstBucket + (w + 1) * bucketsPerWindow; b++) sum += series[b] ?? 0;
      rates.push(sum);
    }
    return rates;
  }
}

/** warp's rule: the last 7 windows all within ±percent of their mean. */
export function isStable(rates: readonly number[], percent: number): boolean {
  const mean = rates.reduce((sum, rate) => sum + rate, 0) / rates.length;
  if (mean <= 0) return false;
  return rates.every((rate) => Math.abs(rate - mean) <= (mean * percent) / 100);
}

export const autotermWindows = 7;

function opStats(op: string, latencies: Float64Array, ttfbs: Float64Array | undefined, errors: number, bytes: number, objects: number, wallSeconds: number): OpStats {
  return {
    op,
    succeeded: latencies.length,
    errors,
    bytes,
    objects,
    mibPerSecond: bytes / mebibyte / wallSeconds,
    opsPerSecond: latencies.length / wallSeconds,
    objectsPerSecond: objects / wallSeconds,
    latencyMs: summarize(latencies),
    ...(ttfbs === undefined || ttfbs.length === 0 ? {} : { ttfbMs: summarize(ttfbs) }),
  };
}

export async function runPhase(options: PhaseOptions): Promise<PhaseResult> {
  const { phase, count, concurrency, deadlineMs, stop, serverPid, autoterm, progress, operation } = options;
  if (!Number.isSafeInteger(count) || count < 0) throw new Error(`phase count must be a non-negative integer, got ${count}`);
  const latenciesMs = new Float64Array(count);
  const ttfbsMs = new Float64Array(count).fill(Number.NaN);
  const opIndexes = new Uint8Array(count);
  const opNames: string[] = [phase];
  const errorsByOp = new Map<string, number>();
  const totalsByOp = new Map<string, { bytes: number; objects: number }>();
  const histogram = new Array<number>(histogramBoundsMs.length).fill(0);
  let latencyCount = 0;
  let next = 0;
  let errors = 0;
  let bytes = 0;
  let objects = 0;
  let stopReason: StopReason = 'count';
  const errorSamples: string[] = [];
  const timeline = new TimelineRecorder(options.timelineIntervalMs ?? 250);
  const cpuStart = process.cpuUsage();
  const serverCpuStart = processCpuSeconds(serverPid);
  const stealStart = hostStealSeconds();
  const startMs = performance.now();
  const monotonicStartSeconds = Number(process.hrtime.bigint()) / 1e9;
  let autotermHit = false;

  let lastProgress = { atMs: startMs, bytes: 0, objects: 0 };
  const ticker = progress === undefined && autoterm === undefined ? undefined : setInterval(() => {
    const nowMs = performance.now();
    if (autoterm !== undefined && !autotermHit) {
      const rates = timeline.windowRates(nowMs - startMs, autoterm.durationMs, autotermWindows, bytes > 0);
      if (rates !== undefined && isStable(rates, autoterm.percent)) autotermHit = true;
    }
    if (progress !== undefined && nowMs - lastProgress.atMs >= progressIntervalMs) {
      const seconds = (nowMs - lastProgress.atMs) / 1000;
      progress({
        phase, done: latencyCount, count, errors, bytes, objects, elapsedMs: nowMs - startMs,
        recentMibPerSecond: (bytes - lastProgress.bytes) / mebibyte / seconds,
        recentObjectsPerSecond: (objects - lastProgress.objects) / seconds,
      });
      lastProgress = { atMs: nowMs, bytes, objects };
    }
  }, Math.min(progressIntervalMs, options.timelineIntervalMs ?? 250));

  const worker = async (): Promise<void> => {
    while (next < count) {
      if (stop?.stopped) {
        stopReason = 'interrupted';
        return;
      }
      if (autotermHit) {
        stopReason = 'autoterm';
        return;
      }
      if (performance.now() >= deadlineMs) {
        stopReason = 'duration';
        return;
      }
      const index = next++;
      const requestStartMs = performance.now();
      try {
        // not `bytes += await ...`: that reads `bytes` before the await and loses concurrent updates
        const outcome = await operation(index);
        const endMs = performance.now();
        const latencyMs = endMs - requestStartMs;
        const movedObjects = outcome.objects ?? 1;
        bytes += outcome.bytes;
        objects += movedObjects;
        if (outcome.ttfbMs !== undefined) ttfbsMs[latencyCount] = outcome.ttfbMs;
        if (outcome.op !== undefined && outcome.op !== phase) {
          let opIndex = opNames.indexOf(outcome.op);
          if (opIndex < 0) opIndex = opNames.push(outcome.op) - 1;
          opIndexes[latencyCount] = opIndex;
          const totals = totalsByOp.get(outcome.op) ?? { bytes: 0, objects: 0 };
          totals.bytes += outcome.bytes;
          totals.objects += movedObjects;
          totalsByOp.set(outcome.op, totals);
        }
        latenciesMs[latencyCount++] = latencyMs;
        histogram[histogramBin(latencyMs)]! += 1;
        timeline.add(endMs - startMs, outcome.bytes, movedObjects);
      } catch (error) {
        errors++;
        const op = (error as { op?: unknown }).op;
        if (typeof op === 'string') errorsByOp.set(op, (errorsByOp.get(op) ?? 0) + 1);
        if (errorSamples.length < errorSamplesMax) errorSamples.push(`#${index}: ${(error as Error).message}`);
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  } finally {
    if (ticker !== undefined) clearInterval(ticker);
  }

  const endMs = performance.now();
  const wallSeconds = Math.max(1e-9, (endMs - startMs) / 1000);
  timeline.extendTo(endMs - startMs - 1e-6);
  const cpu = process.cpuUsage(cpuStart);
  const serverCpuEnd = processCpuSeconds(serverPid);
  const stealEnd = hostStealSeconds();
  const latencies = latenciesMs.subarray(0, latencyCount);
  const ttfbs = ttfbsMs.subarray(0, latencyCount).filter((value) => !Number.isNaN(value));
  const clientCpuSeconds = (cpu.user + cpu.system) / 1e6;

  let byOp: Record<string, OpStats> | undefined;
  if (opNames.length > 1 || errorsByOp.size > 0) {
    byOp = {};
    const names = new Set([...opNames.slice(1), ...errorsByOp.keys()]);
    for (const name of names) {
      const opIndex = opNames.indexOf(name);
      const selected: number[] = [];
      for (let i = 0; i < latencyCount; i++) if (opIndex > 0 && opIndexes[i] === opIndex) selected.push(i);
      const opLatencies = Float64Array.from(selected, (i) => latenciesMs[i]!);
      const opTtfbs = Float64Array.from(selected.map((i) => ttfbsMs[i]!).filter((value) => !Number.isNaN(value)));
      const totals = totalsByOp.get(name) ?? { bytes: 0, objects: 0 };
      byOp[name] = opStats(name, opLatencies, opTtfbs, errorsByOp.get(name) ?? 0, totals.bytes, totals.objects, wallSeconds);
    }
  }

  const overall = opStats(phase, latencies, ttfbs, errors, bytes, objects, wallSeconds);
  return {
    ...overall,
    phase,
    attempted: next,
    errorSamples,
    stoppedEarly: stopReason !== 'count' && next < count,
    stopReason: next >= count ? 'count' : stopReason,
    concurrency,
    wallSeconds,
    clientCpuSeconds,
    clientCpuCores: clientCpuSeconds / wallSeconds,
    monotonicStartSeconds,
    monotonicEndSeconds: Number(process.hrtime.bigint()) / 1e9,
    ...(serverCpuStart === undefined || serverCpuEnd === undefined ? {} : {
      serverCpuSeconds: serverCpuEnd.user + serverCpuEnd.system - serverCpuStart.user - serverCpuStart.system,
      serverCpuSystemSeconds: serverCpuEnd.system - serverCpuStart.system,
    }),
    ...(stealStart === undefined || stealEnd === undefined ? {} : { stealSeconds: Math.max(0, stealEnd - stealStart) }),
    timeline: { intervalMs: timeline.intervalMs, bytes: timeline.bytes, ops: timeline.ops, objects: timeline.objects },
    latencyHistogram: histogram,
    ...(byOp === undefined ? {} : { byOp }),
  };
}
