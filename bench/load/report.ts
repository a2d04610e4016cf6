// Text output of load runs: the live progress line (stderr, TTY only) and the per-phase table.

import type { PhaseResult, ProgressSnapshot } from './phase.ts';

/** A one-line live status on a TTY's stderr, rewritten in place; silent when stderr is not a terminal. */
export class ProgressLine {
  readonly #enabled: boolean;
  #shown = false;

  constructor(enabled: boolean = process.stderr.isTTY === true) {
    this.#enabled = enabled;
  }

  readonly update = (snapshot: ProgressSnapshot): void => {
    if (!this.#enabled) return;
    const rate = snapshot.bytes > 0 ? `${snapshot.recentMibPerSecond.toFixed(1)} MiB/s  ` : '';
    const line = `${snapshot.phase}  ${snapshot.done}/${snapshot.count}  ${rate}${snapshot.recentObjectsPerSecond.toFixed(0)} obj/s  ` +
      `errors ${snapshot.errors}  ${(snapshot.elapsedMs / 1000).toFixed(1)} s`;
    process.stderr.write(`\r\x1b[2K${line}`);
    this.#shown = true;
  };

  clear(): void {
    if (this.#shown) process.stderr.write('\r\x1b[2K');
    this.#shown = false;
  }
}

const fixed = (value: number | undefined, digits: number): string => (value === undefined ? '-' : value.toFixed(digits));

/** The phase table: throughput, latency, TTFB, errors and CPU of client and server. */
export function phaseTable(phases: readonly PhaseResult[]): string[] {
  const header = ['phase', 'ok', 'err', 'wall s', 'MiB/s', 'obj/s', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'TTFB p50/p99 ms', 'client CPU s (cores)', 'server CPU s (sys)'];
  const rows: string[][] = [];
  for (const p of phases) {
    const stopped = p.stoppedEarly ? ` (${p.stopReason})` : '';
    const row = (name: string, s: PhaseResult | NonNullable<PhaseResult['byOp']>[string], whole: boolean): string[] => [
      name,
      whole ? `${s.succeeded}/${(s as PhaseResult).attempted}` : String(s.succeeded),
      String(s.errors),
      whole ? p.wallSeconds.toFixed(2) : '',
      s.bytes > 0 ? s.mibPerSecond.toFixed(1) : '-',
      s.objectsPerSecond.toFixed(0),
      fixed(s.latencyMs.p50, 2),
      fixed(s.latencyMs.p90, 2),
      fixed(s.latencyMs.p99, 2),
      fixed(s.latencyMs.max, 2),
      s.ttfbMs === undefined ? '-' : `${s.ttfbMs.p50.toFixed(2)} / ${s.ttfbMs.p99.toFixed(2)}`,
      whole ? `${p.clientCpuSeconds.toFixed(2)} (${p.clientCpuCores.toFixed(2)})` : '',
      whole ? (p.serverCpuSeconds === undefined ? '-' : `${p.serverCpuSeconds.toFixed(2)} (${(p.serverCpuSystemSeconds ?? 0).toFixed(2)})`) : '',
    ];
    rows.push(row(p.phase + stopped, p, true));
    for (const [name, stats] of Object.entries(p.byOp ?? {})) rows.push(row(`  ${name}`, stats, false));
  }
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
  const line = (cells: readonly string[]): string => cells.map((cell, column) => (column === 0 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!))).join('  ');
  const lines = [line(header), ...rows.map(line)];
  for (const p of phases) for (const sample of p.errorSamples) lines.push(`  ${p.phase} error ${sample}`);
  return lines;
}

/** "put: 231.4 MiB/s, 14 obj/s, p50 255 ms …" — the one line a person reads first. */
export function phaseSummary(p: PhaseResult): string {
  const parts = [
    ...(p.bytes > 0 ? [`${p.mibPerSecond.toFixed(1)} MiB/s`] : []),
    `${p.objectsPerSecond.toFixed(p.objectsPerSecond < 100 ? 1 : 0)} obj/s`,
    `latency p50 ${p.latencyMs.p50.toFixed(2)} / p90 ${p.latencyMs.p90.toFixed(2)} / p99 ${p.latencyMs.p99.toFixed(2)} / max ${p.latencyMs.max.toFixed(2)} ms`,
    ...(p.ttfbMs === undefined ? [] : [`TTFB p50 ${p.ttfbMs.p50.toFixed(2)} / p99 ${p.ttfbMs.p99.toFixed(2)} ms`]),
    `errors ${p.errors}`,
    `client CPU ${p.clientCpuSeconds.toFixed(2)} s (${p.clientCpuCores.toFixed(2)} cores)`,
    ...(p.serverCpuSeconds === undefined ? [] : [`server CPU ${p.serverCpuSeconds.toFixed(2)} s (${(p.serverCpuSeconds / p.wallSeconds).toFixed(2)} cores)`]),
    ...stealNote(p),
  ];
  return `${p.phase}: ${parts.join(', ')}`;
}

/** "host steal 1.20 s" when the hypervisor took a noticeable share of the phase (≥ 1% of one CPU), else nothing. */
export function stealNote(p: Pick<PhaseResult, 'stealSeconds' | 'wallSeconds'>): string[] {
  return p.stealSeconds !== undefined && p.stealSeconds >= 0.01 * p.wallSeconds ? [`host steal ${p.stealSeconds.toFixed(2)} s`] : [];
}
