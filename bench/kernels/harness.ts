// The kernel benchmarks' harness: tinybench, one core, every row also reports its CPU time over wall time
// and bytes per CPU-second, because the 2-vCPU machine is shared (reference/perf-primitives.md §0): a
// cpu/wall well below 1 means another process took the core and the wall numbers are pessimistic.
// Pool rows use several threads, so their cpu/wall can exceed 1 (process CPU counts every thread).

import { Bench, type Task } from 'tinybench';

export const mebibyte = 1024 * 1024;

export interface KernelSpec {
  readonly group: string;
  readonly name: string;
  readonly fn: () => unknown;
  /** payload bytes per operation, for the MB/s columns */
  readonly bytes?: number;
  readonly note?: string;
}

export interface KernelRow {
  readonly group: string;
  readonly name: string;
  readonly opsPerSecond: number;
  readonly meanMicros: number;
  readonly p99Micros: number;
  readonly samples: number;
  /** 10^6 bytes per wall second (1 / mean latency) */
  readonly mbPerSecond?: number;
  readonly mibPerSecond?: number;
  /** 10^6 bytes per CPU second of this process (all threads) */
  readonly mbPerCpuSecond?: number;
  /** CPU time of this process over wall time while the row ran (1.0 = one core busy) */
  readonly cpuOverWall: number;
  readonly note?: string;
}

export interface HarnessOptions {
  /** per task: at least this long… */
  readonly timeMs: number;
  /** …and this many iterations */
  readonly iterationsMin: number;
  readonly warmupMs: number;
}

export async function runKernelSpecs(specs: readonly KernelSpec[], options: HarnessOptions): Promise<KernelRow[]> {
  const cpuMicrosByTask = new Map<string, number>();
  const wallMsByTask = new Map<string, number>();
  const bench = new Bench({ time: options.timeMs, iterations: options.iterationsMin, warmupTime: options.warmupMs, throws: true });
  const keyOf = (spec: KernelSpec): string => `${spec.group}: ${spec.name}`;
  for (const spec of specs) {
    let cpuStart: NodeJS.CpuUsage | undefined;
    let wallStartMs = 0;
    bench.add(keyOf(spec), spec.fn, {
      beforeAll(mode) {
        if (mode !== 'run') return;
        cpuStart = process.cpuUsage();
        wallStartMs = performance.now();
      },
      afterAll(mode) {
        if (mode !== 'run' || cpuStart === undefined) return;
        const cpu = process.cpuUsage(cpuStart);
        cpuMicrosByTask.set(keyOf(spec), cpu.user + cpu.system);
        wallMsByTask.set(keyOf(spec), performance.now() - wallStartMs);
      },
    });
  }
  await bench.run();
  return bench.tasks.map((task: Task, index) => {
    const spec = specs[index]!;
    const result = task.result;
    if (result.state !== 'completed') throw new Error(`kernel ${keyOf(spec)} ended in state ${result.state}`);
    const meanMs = result.latency.mean;
    const cpuMicros = cpuMicrosByTask.get(keyOf(spec)) ?? 0;
    const wallMs = wallMsByTask.get(keyOf(spec)) ?? 1;
    const iterations = result.latency.samplesCount;
    return {
      group: spec.group,
      name: spec.name,
      // 1/mean latency: tinybench's throughput.mean is a mean of per-sample rates, which overstates it.
      opsPerSecond: 1000 / meanMs,
      meanMicros: meanMs * 1000,
      p99Micros: result.latency.p99 * 1000,
      samples: iterations,
      ...(spec.bytes === undefined ? {} : {
        mbPerSecond: spec.bytes / 1e6 / (meanMs / 1000),
        mibPerSecond: spec.bytes / mebibyte / (meanMs / 1000),
        ...(cpuMicros > 0 ? { mbPerCpuSecond: (spec.bytes * iterations) / 1e6 / (cpuMicros / 1e6) } : {}),
      }),
      cpuOverWall: cpuMicros / 1000 / wallMs,
      ...(spec.note === undefined ? {} : { note: spec.note }),
    };
  });
}

const format = (value: number | undefined, digits: number): string =>
  value === undefined ? '' : value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

export function kernelTable(rows: readonly KernelRow[]): string[] {
  const header = ['group', 'kernel', 'ops/s', 'mean µs', 'p99 µs', 'samples', 'MB/s', 'MB/CPU-s', 'cpu/wall', 'note'];
  const cells = rows.map((row) => [
    row.group, row.name, format(row.opsPerSecond, 0), format(row.meanMicros, 2), format(row.p99Micros, 2), String(row.samples),
    format(row.mbPerSecond, 0), format(row.mbPerCpuSecond, 0), format(row.cpuOverWall, 2), row.note ?? '',
  ]);
  const widths = header.map((title, column) => Math.max(title.length, ...cells.map((row) => row[column]!.length)));
  const line = (row: readonly string[]): string =>
    row.map((cell, column) => (column < 2 || column === row.length - 1 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!))).join('  ').trimEnd();
  return [line(header), ...cells.map(line)];
}

export function must(condition: boolean, what: string): void {
  if (!condition) throw new Error(`bench self-check failed: ${what}`);
}
