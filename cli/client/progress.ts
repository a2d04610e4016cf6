// cp's live progress bar: bytes done / total, percentage, speed and ETA on one line, redrawn in place
// (carriage return + erase-to-end-of-line) at most 10 times per second from a timer, so a transfer of many
// small chunks costs the terminal nothing more than a slow one. Only used when stdout is a TTY; otherwise cp
// prints one summary line at the end (see cp.ts).
//
// Speed is measured over a sliding window (the last few seconds), not since the start, so it follows a
// transfer that speeds up or slows down; the ETA divides what is left by that speed.

import { humanBytesPrecise, humanDurationShort } from './common.ts';

/** Redraws at most this often: 10 per second. */
export const redrawIntervalMs = 100;
/** The speed is averaged over this much recent history. */
const speedWindowMs = 3000;
const speedSamplesMax = Math.ceil(speedWindowMs / redrawIntervalMs) + 2;
const barCellsMin = 10;
const barCellsMax = 60;
const labelCharsMax = 40;

export interface ProgressState {
  readonly label: string;
  readonly doneBytes: number;
  readonly totalBytes: number;
  /** undefined until there is enough history to say */
  readonly bytesPerSecond: number | undefined;
  /** terminal width in columns */
  readonly columns: number;
  readonly unicode: boolean;
}

function truncateLabel(label: string, charsMax: number): string {
  if (label.length <= charsMax) return label;
  return `…${label.slice(label.length - charsMax + 1)}`;
}

/** One progress line, at most `columns` wide: "label: 12.00 MiB / 200.00 MiB ┃▓▓░░┃ 6% 2.00 MiB/s ETA 1m34s". */
export function renderProgressLine(state: ProgressState): string {
  const { doneBytes, totalBytes, bytesPerSecond, columns } = state;
  const fraction = totalBytes > 0 ? Math.min(1, doneBytes / totalBytes) : doneBytes > 0 ? 1 : 0;
  const percent = `${Math.floor(fraction * 100)}%`.padStart(4);
  const amounts = `${humanBytesPrecise(doneBytes)} / ${humanBytesPrecise(totalBytes)}`;
  const speed = bytesPerSecond === undefined ? '--.-- B/s' : `${humanBytesPrecise(Math.round(bytesPerSecond))}/s`;
  const remainingSeconds = bytesPerSecond === undefined || bytesPerSecond <= 0 ? Number.NaN : (totalBytes - doneBytes) / bytesPerSecond;
  const eta = `ETA ${doneBytes >= totalBytes ? '0s' : humanDurationShort(remainingSeconds)}`;
  const tail = `${percent} ${speed.padStart(12)} ${eta}`;
  const label = truncateLabel(state.label, labelCharsMax);
  const head = label === '' ? amounts : `${label}: ${amounts}`;
  // head + ' ' + bar + ' ' + tail must fit; the bar takes what is left, or disappears when it cannot have 10 cells
  const barRoom = columns - head.length - tail.length - 4;
  if (barRoom < barCellsMin) {
    const line = `${head} ${tail}`;
    return line.length <= columns ? line : `${percent} ${speed} ${eta}`.slice(0, Math.max(0, columns));
  }
  const cells = Math.min(barCellsMax, barRoom);
  const filled = Math.floor(fraction * cells);
  const [left, full, empty, right] = state.unicode ? ['┃', '▓', '░', '┃'] : ['[', '#', '.', ']'];
  return `${head} ${left}${full.repeat(filled)}${empty.repeat(cells - filled)}${right} ${tail}`;
}

interface Sample {
  readonly atMs: number;
  readonly doneBytes: number;
}

/** Speed over the window of samples: bytes moved between the oldest kept sample and now. */
export function windowSpeed(samples: readonly Sample[], nowMs: number, doneBytes: number): number | undefined {
  const oldest = samples.find((sample) => nowMs - sample.atMs <= speedWindowMs) ?? samples[samples.length - 1];
  if (oldest === undefined || nowMs - oldest.atMs < redrawIntervalMs) return undefined;
  return ((doneBytes - oldest.doneBytes) * 1000) / (nowMs - oldest.atMs);
}

export interface ProgressOutput {
  write(text: string): unknown;
  readonly columns?: number;
}

function terminalSupportsUnicode(): boolean {
  const locale = process.env['LC_ALL'] || process.env['LC_CTYPE'] || process.env['LANG'] || '';
  return /utf-?8/i.test(locale);
}

/** A progress bar on a terminal; add() is cheap, drawing happens on a 100 ms timer. */
export class ProgressBar {
  private doneBytes = 0;
  private totalBytes: number;
  private label = '';
  private readonly output: ProgressOutput;
  private readonly samples: Sample[] = [];
  private readonly timer: NodeJS.Timeout;
  private readonly unicode: boolean;
  private drawnBytes = -1;
  private finished = false;
  readonly startedMs: number;

  constructor(totalBytes: number, output: ProgressOutput, unicode = terminalSupportsUnicode()) {
    this.totalBytes = totalBytes;
    this.output = output;
    this.unicode = unicode;
    this.startedMs = performance.now();
    this.samples.push({ atMs: this.startedMs, doneBytes: 0 });
    this.timer = setInterval(() => this.tick(), redrawIntervalMs);
    this.timer.unref();
    this.draw(this.startedMs);
  }

  add(deltaBytes: number): void {
    this.doneBytes += deltaBytes;
  }

  setLabel(label: string): void {
    this.label = label;
  }

  get transferredBytes(): number {
    return this.doneBytes;
  }

  /** Stops the timer, draws the final state and ends the line. */
  finish(): void {
    if (this.finished) return;
    this.finished = true;
    clearInterval(this.timer);
    this.draw(performance.now(), true);
    this.output.write('\n');
  }

  private tick(): void {
    const nowMs = performance.now();
    this.samples.push({ atMs: nowMs, doneBytes: this.doneBytes });
    if (this.samples.length > speedSamplesMax) this.samples.shift();
    if (this.doneBytes !== this.drawnBytes || this.samples.length % 10 === 0) this.draw(nowMs);
  }

  private draw(nowMs: number, final = false): void {
    const bytesPerSecond = final
      ? (this.doneBytes * 1000) / Math.max(1, nowMs - this.startedMs)
      : windowSpeed(this.samples, nowMs, this.doneBytes);
    const line = renderProgressLine({
      label: this.label,
      doneBytes: this.doneBytes,
      totalBytes: this.totalBytes,
      bytesPerSecond,
      columns: Math.max(20, (this.output.columns ?? 80) - 1),
      unicode: this.unicode,
    });
    this.output.write(`\r${line}\x1b[K`);
    this.drawnBytes = this.doneBytes;
  }
}

/** The one line cp prints when stdout is not a terminal (mc's summary). */
export function summaryLine(totalBytes: number, transferredBytes: number, elapsedMs: number, objects: number): string {
  const speed = (transferredBytes * 1000) / Math.max(1, elapsedMs);
  return `Total: ${humanBytesPrecise(totalBytes)}, Transferred: ${humanBytesPrecise(transferredBytes)}, ` +
    `Speed: ${humanBytesPrecise(Math.round(speed))}/s, Objects: ${objects}`;
}
