// Drive arguments with MinIO's ellipsis syntax (reference/erasure-jbod.md §6, §3.2; docs/jbod.md §1):
// `/mnt/disk{1...4}`, `/mnt/controller{1...4}/data{01...16}`, `http://host{1...4}/export{a...f}`.
//
// Rules (our own implementation of the documented behaviour):
// * `{A...B}` with exactly three dots. A and B are decimal, or lower-case hex when either is not decimal
//   (`{a...f}`, `{0...1f}`); A <= B. Two dots (`{1..4}`) are refused: a shell expands those itself.
// * Zero padding: when A or B is written with a leading zero (`{01...16}`, `{001...100}`), every value is
//   padded to the width of the longer literal.
// * Several ellipses in one argument multiply; the FIRST ellipsis varies fastest, so
//   `host{1...2}/d{1...2}` is host1/d1, host2/d1, host1/d2, host2/d2 and consecutive runs (sets) span hosts.
// * Arguments: all with ellipses -> one pool per argument; none with ellipses -> one pool of all of them
//   (one argument = single-drive mode); a mix is refused. A drive named twice anywhere is refused.

import path from 'node:path';

/** Longest single range, `{1...N}`. */
export const maxEllipsisRangeLength = 4096;
/** Drives all arguments together may expand to. Bounds memory whatever the command line says. */
export const maxDriveCount = 16 * 1024;
/** Ellipses in one argument. */
export const maxEllipsesPerArg = 8;
/** Length of one argument, in UTF-16 code units. */
export const maxDriveArgLength = 4096;

export class EllipsisError extends Error {
  constructor(
    readonly arg: string,
    reason: string,
  ) {
    super(`drive argument ${JSON.stringify(arg)}: ${reason}`);
    this.name = 'EllipsisError';
  }
}

/** One `{A...B}` range of an argument, in textual order. */
export interface EllipsisRange {
  readonly values: readonly string[];
}

/** One parsed argument: literal text between ranges; `literals.length === ranges.length + 1`. */
export interface DriveArgPattern {
  readonly arg: string;
  readonly literals: readonly string[];
  readonly ranges: readonly EllipsisRange[];
}

/** One pool of drives: the expanded list and the lengths of the ranges it came from (for set symmetry). */
export interface DrivePool {
  readonly drives: readonly string[];
  /**
   * Range lengths of the pool's argument in textual order (`host{1...4}/d{1...16}` -> [4, 16]); empty for a
   * pool given as a plain list, which skips the set-size symmetry check (reference §6).
   */
  readonly rangeLengths: readonly number[];
}

const decimalPattern = /^[0-9]+$/;
const hexPattern = /^[0-9a-f]+$/;
// `{` + anything without braces + `}`: every such group must be a valid range.
const bracePattern = /\{([^{}]*)\}/g;

/** True when an argument uses (or tries to use) the ellipsis syntax. */
export function hasEllipsis(arg: string): boolean {
  return arg.includes('...') || arg.includes('{') || arg.includes('}');
}

function parseRange(arg: string, body: string): EllipsisRange {
  const bounds = body.split('...');
  if (bounds.length !== 2) {
    const hint = body.includes('..') ? ' (use three dots: {1...4}; {1..4} is expanded by the shell)' : '';
    throw new EllipsisError(arg, `{${body}} is not a range {N...M}${hint}`);
  }
  const [startText, endText] = bounds as [string, string];
  if (startText === '' || endText === '') throw new EllipsisError(arg, `{${body}} needs both a start and an end`);
  const bothDecimal = decimalPattern.test(startText) && decimalPattern.test(endText);
  if (!bothDecimal && !(hexPattern.test(startText) && hexPattern.test(endText))) {
    throw new EllipsisError(arg, `{${body}}: bounds must be decimal or lower-case hexadecimal`);
  }
  const radix = bothDecimal ? 10 : 16;
  // Bounds longer than this could not be exact in a double and would make absurd ranges anyway.
  if (startText.length > 12 || endText.length > 12) throw new EllipsisError(arg, `{${body}}: bound too long`);
  const start = Number.parseInt(startText, radix);
  const end = Number.parseInt(endText, radix);
  if (start > end) throw new EllipsisError(arg, `{${body}}: start ${startText} is greater than end ${endText}`);
  const length = end - start + 1;
  if (length > maxEllipsisRangeLength) {
    throw new EllipsisError(arg, `{${body}} has ${length} values, more than ${maxEllipsisRangeLength}`);
  }
  const padded = (startText.length > 1 && startText.startsWith('0')) || (endText.length > 1 && endText.startsWith('0'));
  const width = padded ? Math.max(startText.length, endText.length) : 0;
  const values: string[] = [];
  for (let value = start; value <= end; value++) values.push(value.toString(radix).padStart(width, '0'));
  return { values };
}

/** Parse one argument that uses the ellipsis syntax. Throws EllipsisError. */
export function parseDriveArgPattern(arg: string): DriveArgPattern {
  if (arg.length > maxDriveArgLength) throw new EllipsisError(arg.slice(0, 64) + '…', `longer than ${maxDriveArgLength} characters`);
  const literals: string[] = [];
  const ranges: EllipsisRange[] = [];
  let literalStart = 0;
  for (const match of arg.matchAll(bracePattern)) {
    literals.push(arg.slice(literalStart, match.index));
    ranges.push(parseRange(arg, match[1]!));
    literalStart = match.index + match[0].length;
    if (ranges.length > maxEllipsesPerArg) throw new EllipsisError(arg, `more than ${maxEllipsesPerArg} ellipses`);
  }
  literals.push(arg.slice(literalStart));
  for (const literal of literals) {
    if (literal.includes('{') || literal.includes('}') || literal.includes('...')) {
      throw new EllipsisError(arg, 'malformed ellipsis: expected {N...M} with matching braces');
    }
  }
  if (ranges.length === 0) throw new EllipsisError(arg, 'no ellipsis range');
  let count = 1;
  for (const range of ranges) count *= range.values.length;
  if (count > maxDriveCount) throw new EllipsisError(arg, `expands to ${count} drives, more than ${maxDriveCount}`);
  return { arg, literals, ranges };
}

/** Expand one pattern; the first range varies fastest. */
export function expandDriveArgPattern(pattern: DriveArgPattern): string[] {
  const { literals, ranges } = pattern;
  const counters = new Array<number>(ranges.length).fill(0);
  const drives: string[] = [];
  for (;;) {
    let drive = literals[0]!;
    for (let i = 0; i < ranges.length; i++) drive += ranges[i]!.values[counters[i]!]! + literals[i + 1]!;
    drives.push(drive);
    let digit = 0;
    while (digit < ranges.length) {
      counters[digit] += 1;
      if (counters[digit]! < ranges[digit]!.values.length) break;
      counters[digit] = 0;
      digit++;
    }
    if (digit === ranges.length) return drives;
  }
}

/**
 * What makes two arguments "the same drive": URLs compare by their normalised href, paths by
 * path.posix.normalize without trailing slashes (`/a/b/` == `/a//b`). Relative paths are not resolved
 * against the working directory.
 */
export function driveIdentity(drive: string): string {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(drive)) {
    try {
      return new URL(drive).href.replace(/\/+$/, '');
    } catch {
      return drive;
    }
  }
  const normalized = path.posix.normalize(drive);
  return normalized.length > 1 ? normalized.replace(/\/+$/, '') : normalized;
}

/** Expand the server's drive arguments into pools (see the file comment for the rules). Throws EllipsisError. */
export function expandDrivePools(args: readonly string[]): DrivePool[] {
  if (args.length === 0) throw new EllipsisError('', 'no drives given');
  for (const arg of args) if (arg === '') throw new EllipsisError(arg, 'empty drive argument');
  const withEllipsis = args.filter(hasEllipsis).length;
  let pools: DrivePool[];
  if (withEllipsis === 0) {
    if (args.length > maxDriveCount) throw new EllipsisError(args[0]!, `more than ${maxDriveCount} drives`);
    pools = [{ drives: [...args], rangeLengths: [] }];
  } else if (withEllipsis === args.length) {
    pools = [];
    let total = 0;
    for (const arg of args) {
      const pattern = parseDriveArgPattern(arg);
      const drives = expandDriveArgPattern(pattern);
      total += drives.length;
      if (total > maxDriveCount) throw new EllipsisError(arg, `all arguments expand to more than ${maxDriveCount} drives`);
      pools.push({ drives, rangeLengths: pattern.ranges.map((range) => range.values.length) });
    }
  } else {
    const plain = args.find((arg) => !hasEllipsis(arg))!;
    throw new EllipsisError(plain, 'mixes plain drives with ellipsis arguments: either every argument uses {N...M} (one pool each) or none does');
  }
  const seen = new Map<string, string>();
  for (const pool of pools) {
    for (const drive of pool.drives) {
      const identity = driveIdentity(drive);
      const first = seen.get(identity);
      if (first !== undefined) {
        throw new EllipsisError(drive, first === drive ? 'drive given more than once' : `same drive as ${JSON.stringify(first)}`);
      }
      seen.set(identity, drive);
    }
  }
  return pools;
}

/** All drives of all pools, in pool order. Throws EllipsisError for malformed patterns or duplicate drives. */
export function expandDriveArgs(args: readonly string[]): string[] {
  return expandDrivePools(args).flatMap((pool) => pool.drives);
}
