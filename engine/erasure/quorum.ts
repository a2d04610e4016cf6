// Quorum arithmetic and agreement (reference/erasure-jbod.md §3.7, §3.8; docs/jbod.md §4).
//
// * Read quorum = D. Write quorum = D, or D+1 when D == P: with exactly half the drives on each side of a
//   partition, two writers could otherwise both "win".
// * Metadata agreement: each drive's copy of a version gets a signature (SHA-256 of its canonical JSON
//   without the per-drive fields); the version whose signature ≥ quorum drives share wins. Drives with
//   another signature are outdated (stale or torn) and must not serve the read.
// * Errors reduce like MinIO's reduceErrs: group by kind, the biggest group wins, success wins ties; it
//   counts only when it reaches the quorum, else the result is a QuorumError.

import { createHash } from 'node:crypto';
import type { ObjectVersion } from '../meta.ts';

export type QuorumKind = 'read' | 'write';

/**
 * Not enough drives agree. The S3 layer answers 503 SlowDown (MinIO: InsufficientReadQuorum /
 * InsufficientWriteQuorum). `errorInQuorum` is set when a quorum of drives reported the same error
 * (e.g. "not found" on most drives: the object does not exist, which is not a quorum failure to report).
 */
export class QuorumError extends Error {
  constructor(
    readonly kind: QuorumKind,
    /** drives that had to agree */
    readonly quorum: number,
    /** drives in the largest agreeing group */
    readonly agreeing: number,
    readonly driveCount: number,
    readonly errorInQuorum?: Error,
  ) {
    super(`insufficient ${kind} quorum: ${agreeing} of ${driveCount} drives agree, ${quorum} needed`);
    this.name = 'QuorumError';
  }
}

function assertShardCounts(dataShards: number, parityShards: number): void {
  if (!Number.isInteger(dataShards) || !Number.isInteger(parityShards) || dataShards < 1 || parityShards < 0 || dataShards < parityShards) {
    throw new RangeError(`invalid erasure ${dataShards}+${parityShards}: need D >= 1, P >= 0, D >= P`);
  }
}

/** Shards (drives) that must answer for a read: D. */
export function readQuorum(dataShards: number, parityShards: number): number {
  assertShardCounts(dataShards, parityShards);
  return dataShards;
}

/** Drives that must commit a write: D, plus one when D == P. */
export function writeQuorum(dataShards: number, parityShards: number): number {
  assertShardCounts(dataShards, parityShards);
  return dataShards === parityShards ? dataShards + 1 : dataShards;
}

/**
 * Drives that must return metadata without error before the object's own parity is even looked at:
 * half the set, or all of it when the default parity is 0 (reference §3.7).
 */
export function metadataPrecheckQuorum(setSize: number, defaultParityShards: number): number {
  if (!Number.isInteger(setSize) || setSize < 1) throw new RangeError(`invalid set size ${setSize}`);
  return defaultParityShards === 0 ? setSize : Math.floor(setSize / 2);
}

// ------------------------------------------------------------------------------------ error reduction

/**
 * The grouping key of an error: errors with a `kind` (StorageError, QuorumError, BitrotError) group by
 * name and kind, errno errors by code, anything else by name and message.
 */
export function errorKind(error: Error): string {
  const fields = error as Error & { kind?: unknown; code?: unknown };
  if (typeof fields.kind === 'string') return `${error.name}:${fields.kind}`;
  if (typeof fields.code === 'string') return `code:${fields.code}`;
  return `${error.name}:${error.message}`;
}

/** One answer per drive: an Error, or null/undefined for success. */
export type DriveResult = Error | null | undefined;

export interface ReducedErrors {
  /** drives in the largest group */
  readonly count: number;
  /** that group's error (its first occurrence), or undefined when success is the largest group */
  readonly error: Error | undefined;
}

/** Group answers by errorKind (success is a group too); the largest group wins, success wins ties. */
export function reduceErrs(results: readonly DriveResult[], ignoredKinds: readonly string[] = []): ReducedErrors {
  const groups = new Map<string, { count: number; error: Error | undefined }>();
  for (const result of results) {
    const kind = result == null ? '' : errorKind(result);
    if (result != null && ignoredKinds.includes(kind)) continue;
    const group = groups.get(kind);
    if (group === undefined) groups.set(kind, { count: 1, error: result ?? undefined });
    else group.count += 1;
  }
  let best: { count: number; error: Error | undefined } = { count: 0, error: undefined };
  for (const [kind, group] of groups) {
    if (group.count > best.count || (group.count === best.count && kind === '')) best = group;
  }
  return best;
}

/**
 * MinIO's reduceQuorumErrs: the largest group's outcome if it reaches `quorum` (undefined = success, else
 * that error), otherwise a QuorumError.
 */
export function reduceQuorumErrs(
  results: readonly DriveResult[],
  quorum: number,
  kind: QuorumKind,
  ignoredKinds: readonly string[] = [],
): Error | undefined {
  const reduced = reduceErrs(results, ignoredKinds);
  if (reduced.count >= quorum) return reduced.error;
  return new QuorumError(kind, quorum, reduced.count, results.length);
}

// ------------------------------------------------------------------------------------------ signature

/** JSON with object keys sorted at every level; throws on values JSON cannot represent exactly. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new TypeError(`canonicalJson: ${value} is not finite`);
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map((item) => (item === undefined ? 'null' : canonicalJson(item))).join(',')}]`;
  if (typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, item]) => item !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([key, item]) => `${JSON.stringify(key)}:${canonicalJson(item)}`).join(',')}}`;
  }
  throw new TypeError(`canonicalJson: unsupported value of type ${typeof value}`);
}

/**
 * The signature of one drive's copy of a version: hex SHA-256 of its canonical JSON without the fields
 * that legitimately differ between drives: `erasure.index` (the shard this drive holds) and `inlineCrc32c`
 * (the CRC of this drive's own inline shard). Everything else (mod time, size, ETag, parts, erasure layout
 * and distribution, data dir, metadata, encryption record) must match.
 */
export function versionSignature(version: ObjectVersion): string {
  const { inlineCrc32c: _perDriveCrc, erasure, ...shared } = version;
  const { index: _perDriveIndex, ...sharedErasure } = erasure;
  return createHash('sha256').update(canonicalJson({ ...shared, erasure: sharedErasure }), 'utf8').digest('hex');
}

// ------------------------------------------------------------------------------------------ agreement

export interface VersionAgreement<T> {
  /** the copy from the first agreeing drive (its per-drive fields are that drive's) */
  readonly version: T;
  readonly signature: string;
  /** drive positions (indexes into the candidates) holding the agreed version */
  readonly agreeingDrives: readonly number[];
  /** drives that answered with a different version: stale, torn or bit-flipped metadata */
  readonly outdatedDrives: readonly number[];
  /** drives that answered with an error (missing, corrupt, offline) */
  readonly failedDrives: readonly number[];
}

/**
 * The record held by ≥ quorum drives, compared by `signatureOf`. When two groups both reach the quorum
 * (possible only with quorum ≤ N/2), the bigger one wins, then the newer modification time, then the
 * smaller signature, so every caller picks the same one.
 */
export function agreeOnRecord<T>(
  candidates: readonly (T | Error)[],
  quorum: number,
  signatureOf: (record: T) => string,
  modTimeMsOf: (record: T) => number,
  kind: QuorumKind = 'read',
): VersionAgreement<T> | QuorumError {
  if (!Number.isInteger(quorum) || quorum < 1 || quorum > candidates.length) {
    throw new RangeError(`quorum ${quorum} is impossible with ${candidates.length} drives`);
  }
  const groups = new Map<string, { drives: number[]; record: T }>();
  const failedDrives: number[] = [];
  candidates.forEach((candidate, drive) => {
    if (candidate instanceof Error) {
      failedDrives.push(drive);
      return;
    }
    const signature = signatureOf(candidate);
    const group = groups.get(signature);
    if (group === undefined) groups.set(signature, { drives: [drive], record: candidate });
    else group.drives.push(drive);
  });
  let best: { signature: string; drives: number[]; record: T } | undefined;
  for (const [signature, group] of groups) {
    if (best === undefined) {
      best = { signature, ...group };
      continue;
    }
    const byCount = group.drives.length - best.drives.length;
    const byTime = modTimeMsOf(group.record) - modTimeMsOf(best.record);
    if (byCount > 0 || (byCount === 0 && (byTime > 0 || (byTime === 0 && signature < best.signature)))) {
      best = { signature, ...group };
    }
  }
  const agreeing = best?.drives.length ?? 0;
  if (best === undefined || agreeing < quorum) {
    const errors = candidates.filter((candidate): candidate is Error => candidate instanceof Error);
    const reduced = reduceErrs(errors);
    const errorInQuorum = reduced.error !== undefined && reduced.count >= quorum ? reduced.error : undefined;
    return new QuorumError(kind, quorum, agreeing, candidates.length, errorInQuorum);
  }
  const outdatedDrives: number[] = [];
  for (const [signature, group] of groups) if (signature !== best.signature) outdatedDrives.push(...group.drives);
  outdatedDrives.sort((a, b) => a - b);
  return { version: best.record, signature: best.signature, agreeingDrives: best.drives, outdatedDrives, failedDrives };
}

/** agreeOnRecord for `coffer.meta` versions (signature: versionSignature). */
export function agreeOnVersion(
  candidates: readonly (ObjectVersion | Error)[],
  quorum: number,
  kind: QuorumKind = 'read',
): VersionAgreement<ObjectVersion> | QuorumError {
  return agreeOnRecord(candidates, quorum, versionSignature, (version) => version.modTimeMs, kind);
}

export interface ObjectQuorum {
  readonly dataShards: number;
  readonly parityShards: number;
  readonly readQuorum: number;
  readonly writeQuorum: number;
}

/** The parity a version's quorum is computed with: 0-byte objects count as N/2 (reference §3.7). */
function quorumParity(version: ObjectVersion, setSize: number): number {
  return version.sizeBytes === 0 ? Math.floor(setSize / 2) : version.erasure.parityShards;
}

/**
 * Read and write quorum of an object from its drives' metadata (MinIO's objectQuorumFromMeta):
 * first at least metadataPrecheckQuorum drives must answer without error, then the most common parity
 * (ties: the lower parity, i.e. the stricter quorum) must itself be reported by ≥ D drives.
 */
export function quorumFromVersions(
  candidates: readonly (ObjectVersion | Error)[],
  defaultParityShards: number,
): ObjectQuorum | QuorumError {
  const setSize = candidates.length;
  const precheck = metadataPrecheckQuorum(setSize, defaultParityShards);
  const reduced = reduceQuorumErrs(
    candidates.map((candidate) => (candidate instanceof Error ? candidate : undefined)),
    precheck,
    'read',
  );
  if (reduced instanceof QuorumError) return reduced;
  if (reduced !== undefined) return new QuorumError('read', precheck, 0, setSize, reduced);
  const parityCounts = new Map<number, number>();
  for (const candidate of candidates) {
    if (candidate instanceof Error) continue;
    const parity = quorumParity(candidate, setSize);
    parityCounts.set(parity, (parityCounts.get(parity) ?? 0) + 1);
  }
  let bestParity = -1;
  let bestCount = 0;
  for (const [parity, count] of parityCounts) {
    if (count > bestCount || (count === bestCount && parity < bestParity)) {
      bestParity = parity;
      bestCount = count;
    }
  }
  const dataShards = setSize - bestParity;
  if (bestParity < 0 || bestParity > dataShards || bestCount < dataShards) {
    return new QuorumError('read', Math.max(dataShards, 1), bestCount, setSize);
  }
  return {
    dataShards,
    parityShards: bestParity,
    readQuorum: readQuorum(dataShards, bestParity),
    writeQuorum: writeQuorum(dataShards, bestParity),
  };
}
