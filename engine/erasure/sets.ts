// Erasure set sizing and parity for one pool (reference/erasure-jbod.md §3.2, §3.4, §6; docs/jbod.md §2).
//
// Set size: the largest size in 2..16 that divides the pool's drive count and, when the pool came from an
// ellipsis argument, is "symmetric" with the argument's FIRST range (the fastest-varying one: hosts in
// `http://host{1...4}/d{1...16}`): one is a multiple of the other, so every host gives each set the same
// number of drives. MinIO's loop keeps only the verdict of that range (it overwrites a flag per range),
// which is why 38 hosts × 12 drives gives sets of 2 (issue #16268); we check the same range on purpose.
// One drive is single-drive mode (set of 1, parity 0).

/** MinIO's set sizes; a set of 1 exists only in single-drive mode. */
export const minSetSize = 2;
export const maxSetSize = 16;

export const envStorageClassStandard = 'MINIO_STORAGE_CLASS_STANDARD';
export const envStorageClassRrs = 'MINIO_STORAGE_CLASS_RRS';
/** MinIO's undocumented set size override (#19742); must be one of the valid sizes. */
export const envErasureSetDriveCount = 'MINIO_ERASURE_SET_DRIVE_COUNT';

export type StorageEnv = Readonly<Record<string, string | undefined>>;

export class SetPlanError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SetPlanError';
  }
}

export interface SetPlan {
  readonly setSize: number;
  readonly setCount: number;
  /** data shards D of the STANDARD storage class: setSize - parityShards */
  readonly dataShards: number;
  /** parity shards P of the STANDARD storage class */
  readonly parityShards: number;
  /** parity of REDUCED_REDUNDANCY objects */
  readonly reducedRedundancyParityShards: number;
  /** one drive: MinIO's `xl-single` */
  readonly singleDrive: boolean;
  readonly warnings: readonly string[];
}

export interface PlanSetsOptions {
  /**
   * Range lengths of the pool's ellipsis argument in textual order (DrivePool.rangeLengths); empty or absent
   * for a plain drive list, which skips the symmetry check (reference §6).
   */
  readonly rangeLengths?: readonly number[];
}

/** MinIO's default STANDARD parity for a set size (the code, not the docs table: reference §3.4). */
export function defaultParityShards(setSize: number): number {
  assertSetSize(setSize);
  if (setSize === 1) return 0;
  if (setSize <= 3) return 1;
  if (setSize <= 5) return 2;
  if (setSize <= 7) return 3;
  return 4;
}

/** Parity of REDUCED_REDUNDANCY by default: 1, or 0 on one drive. */
export function defaultReducedRedundancyParityShards(setSize: number): number {
  assertSetSize(setSize);
  return setSize === 1 ? 0 : 1;
}

function assertSetSize(setSize: number): void {
  if (!Number.isInteger(setSize) || setSize < 1 || setSize > maxSetSize) throw new RangeError(`invalid set size ${setSize}`);
}

/** Parse `EC:N`; undefined for an unset or empty variable. Throws SetPlanError for anything else. */
export function parseStorageClassParity(name: string, value: string | undefined): number | undefined {
  if (value === undefined || value === '') return undefined;
  const match = /^EC:([0-9]{1,2})$/.exec(value);
  if (match === null) throw new SetPlanError(`${name}=${JSON.stringify(value)}: expected EC:<parity>, e.g. EC:2`);
  return Number(match[1]);
}

/** Set sizes (ascending) a pool of `driveCount` drives may use; the plan takes the largest. */
export function candidateSetSizes(driveCount: number, rangeLengths: readonly number[] = []): number[] {
  const symmetryRange = rangeLengths[0];
  const sizes: number[] = [];
  for (let size = minSetSize; size <= maxSetSize; size++) {
    if (driveCount % size !== 0) continue;
    if (symmetryRange !== undefined && symmetryRange % size !== 0 && size % symmetryRange !== 0) continue;
    sizes.push(size);
  }
  return sizes;
}

function chooseSetSize(driveCount: number, env: StorageEnv, rangeLengths: readonly number[]): number {
  if (driveCount === 1) return 1;
  const divisors = candidateSetSizes(driveCount);
  if (divisors.length === 0) {
    throw new SetPlanError(
      `${driveCount} drives cannot be split into equal erasure sets of ${minSetSize}..${maxSetSize} drives`,
    );
  }
  const symmetric = candidateSetSizes(driveCount, rangeLengths);
  const override = env[envErasureSetDriveCount];
  if (override !== undefined && override !== '') {
    const size = /^[0-9]{1,2}$/.test(override) ? Number(override) : Number.NaN;
    if (!divisors.includes(size)) {
      throw new SetPlanError(`${envErasureSetDriveCount}=${override}: acceptable values for ${driveCount} drives are ${divisors.join(', ')}`);
    }
    if (!symmetric.includes(size)) {
      throw new SetPlanError(`${envErasureSetDriveCount}=${override}: ${size} does not spread the ${rangeLengths[0]} hosts symmetrically`);
    }
    return size;
  }
  if (symmetric.length === 0) {
    throw new SetPlanError(
      `${driveCount} drives from ranges of ${rangeLengths.join(' × ')} cannot be spread symmetrically over sets of ${minSetSize}..${maxSetSize} drives`,
    );
  }
  return symmetric[symmetric.length - 1]!;
}

/**
 * Plan one pool: set size and count, and the STANDARD / REDUCED_REDUNDANCY parities, honouring
 * MINIO_STORAGE_CLASS_STANDARD / _RRS (`EC:N`, 0 <= N <= setSize/2, STANDARD >= RRS) and
 * MINIO_ERASURE_SET_DRIVE_COUNT. Throws SetPlanError for an impossible layout or a bad variable.
 */
export function planSets(driveCount: number, env: StorageEnv = {}, options: PlanSetsOptions = {}): SetPlan {
  if (!Number.isInteger(driveCount) || driveCount < 1) throw new SetPlanError(`invalid drive count ${driveCount}`);
  const setSize = chooseSetSize(driveCount, env, options.rangeLengths ?? []);
  const setCount = driveCount / setSize;
  const maxParity = Math.floor(setSize / 2);

  const standard = parseStorageClassParity(envStorageClassStandard, env[envStorageClassStandard]);
  const rrs = parseStorageClassParity(envStorageClassRrs, env[envStorageClassRrs]);
  for (const [name, parity] of [[envStorageClassStandard, standard], [envStorageClassRrs, rrs]] as const) {
    if (parity !== undefined && parity > maxParity) {
      throw new SetPlanError(`${name}=EC:${parity}: parity must be at most ${maxParity} (half of the ${setSize}-drive set)`);
    }
  }
  if (standard !== undefined && rrs !== undefined && standard > 0 && rrs > 0 && standard < rrs) {
    throw new SetPlanError(`${envStorageClassStandard}=EC:${standard} must be at least ${envStorageClassRrs}=EC:${rrs}`);
  }
  const parityShards = standard ?? defaultParityShards(setSize);
  // An explicit STANDARD below the default RRS parity (EC:0) pulls the default RRS down with it: reduced
  // redundancy must never mean more parity than standard.
  const reducedRedundancyParityShards = rrs ?? Math.min(defaultReducedRedundancyParityShards(setSize), parityShards);

  const warnings: string[] = [];
  if (setSize > 1 && parityShards === 0) {
    warnings.push(`${envStorageClassStandard}=EC:0 on ${setSize}-drive sets: losing any drive loses data`);
  }
  const dataShards = setSize - parityShards;
  // Invariants the quorum arithmetic relies on.
  if (!(dataShards >= parityShards && dataShards >= 1 && setCount * setSize === driveCount)) {
    throw new Error(`set plan invariant violated: ${driveCount} drives, ${setCount} × ${setSize}, ${dataShards}+${parityShards}`);
  }
  return { setSize, setCount, dataShards, parityShards, reducedRedundancyParityShards, singleDrive: setSize === 1, warnings };
}
