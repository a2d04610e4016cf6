// Minimal inline-SVG charts for the compare report: no scripts, no fonts or styles from the network, so the
// HTML file is self-contained. Every input is numbers and escaped text; sizes are fixed.

export interface Series {
  readonly name: string;
  readonly color: string;
  readonly points: readonly (readonly [number, number])[];
  readonly opacity?: number;
  readonly dashed?: boolean;
}

export interface Bar {
  readonly name: string;
  readonly color: string;
  readonly value: number;
  readonly min?: number;
  readonly max?: number;
}

export interface BarGroup {
  readonly label: string;
  readonly bars: readonly Bar[];
}

export const palette = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf'] as const;

export function escapeHtml(text: string): string {
  return text.replace(/[<>&'"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&#39;', '"': '&quot;' })[c]!);
}

const width = 640;
const height = 300;
const margin = { left: 64, right: 16, top: 28, bottom: 44 };
const plotWidth = width - margin.left - margin.right;
const plotHeight = height - margin.top - margin.bottom;

/** 1, 2, 5 × 10^k ticks covering [0, max]. */
function linearTicks(max: number): number[] {
  if (!(max > 0)) return [0, 1];
  const rough = max / 5;
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 5, 10].map((m) => m * power).find((candidate) => candidate >= rough) ?? 10 * power;
  const ticks: number[] = [];
  for (let tick = 0; tick <= max * 1.0001 + step; tick += step) {
    ticks.push(Number(tick.toPrecision(12)));
    if (tick >= max) break;
  }
  return ticks;
}

export function formatTick(value: number): string {
  if (value === 0) return '0';
  const magnitude = Math.abs(value);
  if (magnitude >= 1e6) return `${(value / 1e6).toPrecision(3).replace(/\.?0+$/, '')}M`;
  if (magnitude >= 1e4) return `${(value / 1e3).toPrecision(3).replace(/\.?0+$/, '')}k`;
  if (magnitude >= 1) return String(Number(value.toPrecision(4)));
  return String(Number(value.toPrecision(2)));
}

function frame(title: string, body: string, xLabel: string, yLabel: string, legend: readonly { name: string; color: string }[]): string {
  const legendItems = legend.map((item, i) => {
    const x = margin.left + 8 + (i % 4) * 140;
    const y = margin.top + 12 + Math.floor(i / 4) * 14;
    return `<rect x="${x}" y="${y - 8}" width="10" height="10" fill="${item.color}"/><text x="${x + 14}" y="${y + 1}" class="legend">${escapeHtml(item.name)}</text>`;
  }).join('');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${escapeHtml(title)}">` +
    `<rect width="${width}" height="${height}" fill="#fff"/>` +
    `<text x="${width / 2}" y="16" text-anchor="middle" class="title">${escapeHtml(title)}</text>` +
    body +
    `<text x="${margin.left + plotWidth / 2}" y="${height - 6}" text-anchor="middle" class="axis-label">${escapeHtml(xLabel)}</text>` +
    `<text transform="translate(14 ${margin.top + plotHeight / 2}) rotate(-90)" text-anchor="middle" class="axis-label">${escapeHtml(yLabel)}</text>` +
    legendItems +
    '</svg>';
}

function yAxis(ticks: readonly number[], yOf: (value: number) => number): string {
  return ticks.map((tick) => {
    const y = yOf(tick).toFixed(1);
    return `<line x1="${margin.left}" x2="${margin.left + plotWidth}" y1="${y}" y2="${y}" class="grid"/>` +
      `<text x="${margin.left - 6}" y="${Number(y) + 4}" text-anchor="end" class="tick">${formatTick(tick)}</text>`;
  }).join('');
}

/** Lines over a linear or log-10 x axis; y is linear from 0. */
export function lineChart(options: { title: string; xLabel: string; yLabel: string; series: readonly Series[]; xLog?: boolean; legend?: readonly { name: string; color: string }[] }): string {
  const { series, xLog = false } = options;
  const all = series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y) && (!xLog || x > 0));
  const xs = all.map(([x]) => (xLog ? Math.log10(x) : x));
  let xMin = xs.length === 0 ? 0 : Math.min(...xs);
  let xMax = xs.length === 0 ? 1 : Math.max(...xs);
  if (!xLog) xMin = Math.min(0, xMin);
  if (xLog) {
    xMin = Math.floor(xMin);
    xMax = Math.ceil(xMax);
  }
  if (xMax <= xMin) xMax = xMin + 1;
  const yTicks = linearTicks(Math.max(0, ...all.map(([, y]) => y)));
  const yMax = yTicks[yTicks.length - 1]!;
  const xOf = (x: number): number => margin.left + ((((xLog ? Math.log10(x) : x) - xMin) / (xMax - xMin)) * plotWidth);
  const yOf = (y: number): number => margin.top + plotHeight - (y / yMax) * plotHeight;
  const xTicks = xLog
    ? Array.from({ length: xMax - xMin + 1 }, (_, i) => 10 ** (xMin + i))
    : linearTicks(xMax).filter((tick) => tick <= xMax * 1.0001);
  const xAxis = xTicks.map((tick) => {
    const x = xOf(tick).toFixed(1);
    return `<line x1="${x}" x2="${x}" y1="${margin.top}" y2="${margin.top + plotHeight}" class="grid"/>` +
      `<text x="${x}" y="${margin.top + plotHeight + 14}" text-anchor="middle" class="tick">${formatTick(tick)}</text>`;
  }).join('');
  const lines = series.map((s) => {
    const points = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y) && (!xLog || x > 0))
      .map(([x, y]) => `${xOf(x).toFixed(1)},${yOf(y).toFixed(1)}`).join(' ');
    if (points === '') return '';
    // a line of one to three points is hard to see: mark its points too
    const markers = s.points.length > 3 ? '' : points.split(' ').map((point) => {
      const [cx, cy] = point.split(',');
      return `<circle cx="${cx}" cy="${cy}" r="2.5" fill="${s.color}" fill-opacity="${s.opacity ?? 1}"/>`;
    }).join('');
    return markers + `<polyline points="${points}" fill="none" stroke="${s.color}" stroke-width="1.6" stroke-opacity="${s.opacity ?? 1}"${s.dashed ? ' stroke-dasharray="4 3"' : ''}><title>${escapeHtml(s.name)}</title></polyline>`;
  }).join('');
  const legend = options.legend ?? series.map((s) => ({ name: s.name, color: s.color }));
  const axes = `<line x1="${margin.left}" x2="${margin.left}" y1="${margin.top}" y2="${margin.top + plotHeight}" class="axis"/>` +
    `<line x1="${margin.left}" x2="${margin.left + plotWidth}" y1="${margin.top + plotHeight}" y2="${margin.top + plotHeight}" class="axis"/>`;
  return frame(options.title, yAxis(yTicks, yOf) + xAxis + axes + lines, options.xLabel, options.yLabel, legend);
}

/** Grouped bars from 0 with optional min–max whiskers. */
export function barChart(options: { title: string; yLabel: string; groups: readonly BarGroup[] }): string {
  const { groups } = options;
  const values = groups.flatMap((g) => g.bars.flatMap((b) => [b.value, b.max ?? b.value]));
  const yTicks = linearTicks(Math.max(0, ...values.filter(Number.isFinite)));
  const yMax = yTicks[yTicks.length - 1]!;
  const yOf = (y: number): number => margin.top + plotHeight - (Math.max(0, y) / yMax) * plotHeight;
  const groupWidth = plotWidth / Math.max(1, groups.length);
  const legendMap = new Map<string, string>();
  let body = '';
  groups.forEach((group, g) => {
    const barWidth = Math.min(48, (groupWidth * 0.8) / Math.max(1, group.bars.length));
    const start = margin.left + g * groupWidth + (groupWidth - barWidth * group.bars.length) / 2;
    group.bars.forEach((bar, b) => {
      legendMap.set(bar.name, bar.color);
      const x = start + b * barWidth;
      const y = yOf(bar.value);
      body += `<rect x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${(barWidth - 3).toFixed(1)}" height="${(margin.top + plotHeight - y).toFixed(1)}" fill="${bar.color}">` +
        `<title>${escapeHtml(`${group.label} ${bar.name}: ${formatTick(bar.value)}`)}</title></rect>`;
      if (bar.min !== undefined && bar.max !== undefined) {
        const cx = (x + (barWidth - 3) / 2).toFixed(1);
        body += `<line x1="${cx}" x2="${cx}" y1="${yOf(bar.min).toFixed(1)}" y2="${yOf(bar.max).toFixed(1)}" class="whisker"/>` +
          `<line x1="${(Number(cx) - 4).toFixed(1)}" x2="${(Number(cx) + 4).toFixed(1)}" y1="${yOf(bar.min).toFixed(1)}" y2="${yOf(bar.min).toFixed(1)}" class="whisker"/>` +
          `<line x1="${(Number(cx) - 4).toFixed(1)}" x2="${(Number(cx) + 4).toFixed(1)}" y1="${yOf(bar.max).toFixed(1)}" y2="${yOf(bar.max).toFixed(1)}" class="whisker"/>`;
      }
      body += `<text x="${(x + (barWidth - 3) / 2).toFixed(1)}" y="${(y - 4).toFixed(1)}" text-anchor="middle" class="value">${formatTick(bar.value)}</text>`;
    });
    body += `<text x="${(margin.left + g * groupWidth + groupWidth / 2).toFixed(1)}" y="${margin.top + plotHeight + 14}" text-anchor="middle" class="tick">${escapeHtml(group.label)}</text>`;
  });
  const axes = `<line x1="${margin.left}" x2="${margin.left + plotWidth}" y1="${margin.top + plotHeight}" y2="${margin.top + plotHeight}" class="axis"/>`;
  return frame(options.title, yAxis(yTicks, yOf) + axes + body, '', options.yLabel, [...legendMap].map(([name, color]) => ({ name, color })));
}

export const svgStyle = `
svg .title { font: 600 13px sans-serif; fill: #222; }
svg .tick, svg .legend, svg .value { font: 10px sans-serif; fill: #444; }
svg .axis-label { font: 11px sans-serif; fill: #333; }
svg .grid { stroke: #e4e4e4; stroke-width: 1; }
svg .axis { stroke: #888; stroke-width: 1; }
svg .whisker { stroke: #222; stroke-width: 1.2; }
`;
