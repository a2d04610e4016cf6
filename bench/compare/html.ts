// The compare report as one self-contained HTML file: tables and inline SVG charts, no scripts, no network
// fetches (so it opens anywhere and renders headless in the test).

import { formatOverBudget } from './kms-budget.ts';
import type { PhaseResult } from '../load/phase.ts';
import { histogramBoundsMs } from '../load/phase.ts';
import { mebibyte } from '../load/units.ts';
import type { CompareReport, Spread } from './command.ts';
import { barChart, escapeHtml, lineChart, palette, svgStyle, type BarGroup, type Series } from './svg.ts';

const fmt = (value: number | undefined, digits: number): string => (value === undefined || !Number.isFinite(value) ? '–' : value.toFixed(digits));
const fmtSpread = (s: Spread | undefined, digits: number): string => (s === undefined ? '–' : `${fmt(s.median, digits)} <small>(${fmt(s.min, digits)}–${fmt(s.max, digits)})</small>`);

/** Large objects are compared in MiB/s, small ones in objects/s. */
const byBytes = (sizeBytes: number): boolean => sizeBytes >= 256 * 1024;

function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  return `<table><thead><tr>${header.map((h) => `<th>${escapeHtml(h)}</th>`).join('')}</tr></thead><tbody>` +
    rows.map((row) => `<tr>${row.map((cell) => `<td>${cell}</td>`).join('')}</tr>`).join('') + '</tbody></table>';
}

/** Points this many at most per line: coarser windows smooth out the completions of large objects. */
const timePointsMax = 30;
const completionsPerPointMin = 4;

function throughputSeries(phase: PhaseResult, useBytes: boolean): [number, number][] {
  const { intervalMs, bytes, objects } = phase.timeline;
  const series = useBytes ? bytes.map((b) => b / mebibyte) : objects;
  const wallMs = phase.wallSeconds * 1000;
  // …and at least ~4 completions per window on average, or large objects draw a comb of 0 and 1 object.
  const averageOpsPerBucket = phase.timeline.ops.reduce((sum, ops) => sum + ops, 0) / Math.max(1, series.length);
  const perWindow = Math.max(1, Math.ceil(series.length / timePointsMax), Math.ceil(completionsPerPointMin / Math.max(averageOpsPerBucket, 1e-9)));
  const points: [number, number][] = [];
  for (let first = 0; first < series.length; first += perWindow) {
    const startMs = first * intervalMs;
    const endMs = Math.min(wallMs, (first + perWindow) * intervalMs);
    if (endMs - startMs < intervalMs / 2 && points.length > 0) break; // a sliver at the end says nothing
    let sum = 0;
    for (let i = first; i < Math.min(series.length, first + perWindow); i++) sum += series[i]!;
    points.push([(startMs + endMs) / 2 / 1000, sum / ((endMs - startMs) / 1000)]);
  }
  return points;
}

function histogramSeries(phases: readonly PhaseResult[]): [number, number][] {
  const counts = new Array<number>(histogramBoundsMs.length).fill(0);
  for (const phase of phases) phase.latencyHistogram.forEach((count, bin) => { counts[bin]! += count; });
  const total = counts.reduce((sum, count) => sum + count, 0);
  if (total === 0) return [];
  const first = counts.findIndex((count) => count > 0);
  const last = counts.length - 1 - [...counts].reverse().findIndex((count) => count > 0);
  const points: [number, number][] = [];
  for (let bin = Math.max(0, first - 1); bin <= Math.min(counts.length - 1, last + 1); bin++) {
    points.push([histogramBoundsMs[bin]!, (100 * counts[bin]!) / total]);
  }
  return points;
}

export function renderCompareHtml(report: CompareReport): string {
  const colorOf = new Map<string, string>(report.cases.map((c, i) => [c.name, palette[i % palette.length]!]));
  const caseLegend = report.cases.map((c) => ({ name: c.name, color: colorOf.get(c.name)! }));
  const machine = report.machine as { cpus?: number; cpuModel?: string; loadavg?: number[]; node?: string; hostname?: string };
  const sections: string[] = [];

  // --- overview charts
  const bigSteps = report.steps.filter((s) => byBytes(s.sizeBytes));
  const smallSteps = report.steps.filter((s) => !byBytes(s.sizeBytes));
  const groupsFor = (steps: typeof report.steps, useBytes: boolean): BarGroup[] => steps.map((step) => ({
    label: step.label,
    bars: report.summary.filter((s) => s.step === step.label).map((s) => {
      const spread = useBytes ? s.mibPerSecond : s.objectsPerSecond;
      return { name: s.case, color: colorOf.get(s.case)!, value: spread.median, min: spread.min, max: spread.max };
    }),
  }));
  const overview: string[] = [];
  if (bigSteps.length > 0) overview.push(barChart({ title: 'Throughput, large objects (median; whiskers min–max over rounds)', yLabel: 'MiB/s', groups: groupsFor(bigSteps, true) }));
  if (smallSteps.length > 0) overview.push(barChart({ title: 'Throughput, small objects (median; whiskers min–max over rounds)', yLabel: 'objects/s', groups: groupsFor(smallSteps, false) }));
  if (report.ratios.length > 0) {
    const ratioCases = [...new Set(report.ratios.map((r) => r.case))];
    overview.push(barChart({
      title: `Throughput ratio to ${report.baseline} (paired per round; 1.0 = equal)`,
      yLabel: 'ratio',
      groups: report.steps.map((step) => ({
        label: step.label,
        bars: ratioCases.flatMap((name) => {
          const r = report.ratios.find((each) => each.step === step.label && each.case === name);
          return r === undefined ? [] : [{ name: `${name} / ${report.baseline}`, color: colorOf.get(name)!, value: r.pairedThroughput.median, min: r.pairedThroughput.min, max: r.pairedThroughput.max }];
        }),
      })),
    }));
  }
  const cpuGroups: BarGroup[] = report.steps.map((step) => ({
    label: step.label,
    bars: report.summary.filter((s) => s.step === step.label).flatMap((s) => {
      const cores: { name: string; color: string; value: number }[] = [{ name: `${s.case} client`, color: colorOf.get(s.case)!, value: s.clientCpuCores.median }];
      if (s.serverCpuCores !== undefined) cores.push({ name: `${s.case} server`, color: `${colorOf.get(s.case)!}88`, value: s.serverCpuCores.median });
      return cores;
    }),
  }));
  overview.push(barChart({ title: 'CPU used while measuring (cores = CPU seconds / wall seconds)', yLabel: 'cores', groups: cpuGroups }));
  sections.push(`<h2>Overview</h2><div class="charts">${overview.join('')}</div>`);

  // --- tables
  sections.push('<h2>Summary (median over rounds, min–max in brackets)</h2>' + table(
    ['step', 'case', 'MiB/s', 'objects/s', 'latency p50 ms', 'latency p99 ms', 'TTFB p50 ms', 'client CPU ms/op', 'client cores', 'server CPU ms/op', 'server cores', 'errors'],
    report.summary.map((s) => [
      escapeHtml(s.step), `<span class="swatch" style="background:${colorOf.get(s.case)}"></span>${escapeHtml(s.case)}`,
      fmtSpread(s.mibPerSecond, 1), fmtSpread(s.objectsPerSecond, 1), fmtSpread(s.latencyMsP50, 2), fmtSpread(s.latencyMsP99, 2),
      fmtSpread(s.ttfbMsP50, 2), fmtSpread(s.clientCpuMsPerOp, 3), fmt(s.clientCpuCores.median, 2), fmtSpread(s.serverCpuMsPerOp, 3),
      fmt(s.serverCpuCores?.median, 2), String(s.errors),
    ]),
  ));
  if (report.ratios.length > 0) {
    sections.push(`<h2>Ratios against ${escapeHtml(report.baseline)}</h2>` + table(
      ['step', 'case / baseline', 'throughput (median / median)', 'paired per round: median (min–max)', 'confidence interval of the paired median', 'p50 latency ×', 'server CPU per op ×'],
      report.ratios.map((r) => [
        escapeHtml(r.step), `${escapeHtml(r.case)} / ${escapeHtml(r.baseline)}`, `<b>${fmt(r.throughput, 3)}</b>`,
        `${fmt(r.pairedThroughput.median, 3)} (${fmt(r.pairedThroughput.min, 3)}–${fmt(r.pairedThroughput.max, 3)})`,
        `${fmt(r.pairedInterval.low, 3)}–${fmt(r.pairedInterval.high, 3)} (${Math.floor(r.pairedInterval.confidence * 100)}%)`, fmt(r.latencyP50, 2), fmt(r.serverCpuPerOp, 2),
      ]),
    ));
  }

  // --- per step: throughput over time, latency histogram
  for (const step of report.steps) {
    const useBytes = byBytes(step.sizeBytes);
    const stepRuns = report.runs.filter((run) => run.step === step.label);
    const timeSeries: Series[] = stepRuns.map((run) => ({
      name: `${run.case} round ${run.round}`,
      color: colorOf.get(run.case)!,
      opacity: 0.35 + 0.65 / run.round,
      dashed: run.round > 1 && run.round % 2 === 0,
      points: throughputSeries(run.measured, useBytes),
    }));
    const histogram: Series[] = report.cases.map((c) => ({
      name: c.name,
      color: colorOf.get(c.name)!,
      points: histogramSeries(stepRuns.filter((run) => run.case === c.name).map((run) => run.measured)),
    }));
    sections.push(`<h2>${escapeHtml(step.label)} <small>${step.objects} objects per case and round, concurrency ${step.concurrency}</small></h2><div class="charts">` +
      lineChart({ title: `${step.label}: throughput over time (each line one round)`, xLabel: 'seconds since the step started', yLabel: useBytes ? 'MiB/s' : 'objects/s', series: timeSeries, legend: caseLegend }) +
      lineChart({ title: `${step.label}: latency histogram (all rounds)`, xLabel: 'request latency, ms (log scale)', yLabel: '% of requests', series: histogram, xLog: true }) +
      '</div>');
  }

  // --- every run
  sections.push('<h2>Every run, in the order it ran</h2>' + table(
    ['#', 'round', 'step', 'case', 'ok', 'errors', 'wall s', 'MiB/s', 'obj/s', 'p50 / p90 / p99 / max ms', 'TTFB p50 ms', 'client CPU s', 'server CPU s (sys)', 'host steal s', 'KMS calls', 'stopped by'],
    report.runs.map((run) => {
      const p = run.measured;
      return [
        String(run.order + 1), String(run.round), escapeHtml(run.step), escapeHtml(run.case), `${p.succeeded}/${p.attempted}`, String(p.errors),
        fmt(p.wallSeconds, 2), fmt(p.mibPerSecond, 1), fmt(p.objectsPerSecond, 1),
        `${fmt(p.latencyMs.p50, 2)} / ${fmt(p.latencyMs.p90, 2)} / ${fmt(p.latencyMs.p99, 2)} / ${fmt(p.latencyMs.max, 2)}`,
        fmt(p.ttfbMs?.p50, 2), fmt(p.clientCpuSeconds, 2),
        p.serverCpuSeconds === undefined ? '–' : `${fmt(p.serverCpuSeconds, 2)} (${fmt(p.serverCpuSystemSeconds, 2)})`, fmt(p.stealSeconds, 2), run.kmsCalls === undefined ? '–' : String(run.kmsCalls), p.stopReason,
      ];
    }),
  ));
  const errorSamples = report.runs.flatMap((run) => run.measured.errorSamples.map((sample) => `${run.case} ${run.step} round ${run.round}: ${sample}`));
  if (errorSamples.length > 0) sections.push(`<h2>Errors</h2><ul>${errorSamples.map((e) => `<li>${escapeHtml(e)}</li>`).join('')}</ul>`);
  if (report.kmsOverBudget !== undefined) {
    const budget = Object.entries(report.kmsBudget ?? {}).map(([op, calls]) => `${op}=${calls}`).join(', ');
    sections.push(`<h2>KMS budget (${escapeHtml(budget)} calls per request)</h2>` + (report.kmsOverBudget.length === 0
      ? '<p>Every measured step stayed within it.</p>'
      : `<ul>${report.kmsOverBudget.map((over) => `<li><b>${escapeHtml(formatOverBudget(over))}</b></li>`).join('')}</ul>`));
  }

  const casesTable = table(['case', 'endpoint', 'SSE', 'bucket', 'server pid (CPU measured)'],
    report.cases.map((c) => [`<span class="swatch" style="background:${colorOf.get(c.name)}"></span>${escapeHtml(c.name)}`, escapeHtml(c.endpoint), escapeHtml(c.sse), escapeHtml(c.bucket), c.serverPid === undefined ? '–' : String(c.serverPid)]));

  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>coffer bench compare: ${escapeHtml(report.name)}</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; max-width: 1340px; }
h1 { font-size: 20px; } h2 { font-size: 16px; margin-top: 28px; } small { color: #666; font-weight: normal; }
table { border-collapse: collapse; margin: 8px 0; font-size: 12px; }
th, td { border: 1px solid #ddd; padding: 3px 7px; text-align: right; } th { background: #f4f4f4; }
td:nth-child(-n+2), th:nth-child(-n+2) { text-align: left; }
.charts { display: flex; flex-wrap: wrap; gap: 12px; } .charts svg { border: 1px solid #eee; }
.swatch { display: inline-block; width: 10px; height: 10px; margin-right: 5px; }
.note { color: #555; max-width: 900px; }
${svgStyle}
</style></head><body>
<h1>coffer bench compare: ${escapeHtml(report.name)}</h1>
<p class="note">${escapeHtml(report.date)} · ${machine.cpus ?? '?'} CPUs (${escapeHtml(machine.cpuModel ?? '?')}) · Node ${escapeHtml(machine.node ?? '?')} ·
load average at the end ${escapeHtml((machine.loadavg ?? []).map((v) => v.toFixed(2)).join(' '))} · ${report.rounds} rounds, cases alternating step by step (first case rotating per round) ·
GET verification: ${escapeHtml(report.verify)} · objects deleted ${report.cleanup === 'end' ? 'when the run ended' : 'after each round'} · ${report.warmupRounds} unmeasured warmup round(s) · ${report.settleMs} ms settle after each step · step time limit ${report.durationMs / 1000} s${report.interrupted ? ' · <b>interrupted</b>' : ''} · errors: <b>${report.errors}</b></p>
<p class="note">The client runs on the same machine as the server when the endpoint is local: its CPU use (below, and per run) is CPU the server did not get.
Server CPU comes from /proc/&lt;pid&gt;/stat when a pid was given. Host steal (/proc/stat) is CPU time the hypervisor gave to other guests during a run: a slow run with steal was the host.
KMS calls (cases with <code>metrics</code>) are the server's own count over the measured requests.</p>
${casesTable}
${sections.join('\n')}
</body></html>
`;
}
