// Units and argument parsing shared by bench/load.ts, `coffer bench` and `coffer bench compare`.
// Parsers throw UsageError (exit code 2 at the command's edge) instead of exiting, so they can be reused
// in-process (runBenchCommand) and in tests.

export const kibibyte = 1024;
export const mebibyte = 1024 * 1024;
export const gibibyte = 1024 * mebibyte;

/** A mistake in the command line: the command prints it with its usage and returns 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

const sizeUnits: Readonly<Record<string, number>> = {
  '': 1, b: 1, kib: kibibyte, mib: mebibyte, gib: gibibyte, kb: 1e3, mb: 1e6, gb: 1e9, k: kibibyte, m: mebibyte, g: gibibyte,
};

/** "4KiB", "16MiB", "1.5MB", "1000000" → bytes. */
export function parseSize(text: string, name = 'size'): number {
  const match = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(text.trim());
  const unit = match ? sizeUnits[match[2]!.toLowerCase()] : undefined;
  if (!match || unit === undefined) throw new UsageError(`cannot read ${name} ${JSON.stringify(text)} (examples: 4KiB, 1MiB, 16MiB, 1000000)`);
  return Math.round(Number(match[1]) * unit);
}

const durationUnits: Readonly<Record<string, number>> = { '': 1000, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** "30s", "500ms", "2m", "10" (seconds) → milliseconds. */
export function parseDuration(text: string, name = 'duration'): number {
  const match = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(text.trim());
  const unit = match ? durationUnits[match[2]!.toLowerCase()] : undefined;
  if (!match || unit === undefined) throw new UsageError(`cannot read ${name} ${JSON.stringify(text)} (examples: 30s, 500ms, 2m)`);
  return Math.round(Number(match[1]) * unit);
}

export function parseIntegerIn(text: string, name: string, min: number, max: number): number {
  if (!/^\d+$/.test(text) || Number(text) < min || Number(text) > max) throw new UsageError(`--${name} must be an integer in ${min}..${max}`);
  return Number(text);
}

export function parseNumberIn(text: string, name: string, min: number, max: number): number {
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value) || value < min || value > max) throw new UsageError(`--${name} must be a number in ${min}..${max}`);
  return value;
}

/** 16777216 → "16 MiB", 4096 → "4 KiB", 1000 → "1000 B". */
export function formatBytes(sizeBytes: number): string {
  if (sizeBytes >= mebibyte && sizeBytes % mebibyte === 0) return `${sizeBytes / mebibyte} MiB`;
  if (sizeBytes >= kibibyte && sizeBytes % kibibyte === 0) return `${sizeBytes / kibibyte} KiB`;
  return `${sizeBytes} B`;
}

/** Same as formatBytes without the space, for labels like "put:16MiB". */
export function formatBytesCompact(sizeBytes: number): string {
  return formatBytes(sizeBytes).replace(' ', '');
}

export const bucketNamePattern = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
/** none | s3 | kms | kms:KEY | c */
export const ssePattern = /^(none|s3|c|kms(:[0-9A-Za-z_./-]+)?)$/;
