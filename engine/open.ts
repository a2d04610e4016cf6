// Which engine serves the drives on the command line: one drive is the single-drive FsEngine (MinIO's
// xl-single), 2–16 drives one erasure set, more drives several sets of equal size (engine/set/). Drive
// arguments use MinIO's ellipsis syntax.

import { expandDrivePools } from './erasure/ellipsis.ts';
import { planSets, SetPlanError } from './erasure/sets.ts';
import type { SetPlan, StorageEnv } from './erasure/sets.ts';
import { FsEngine } from './fs-engine.ts';
import { ErasureSetEngine } from './set/set-engine.ts';
import { ErasureSetsEngine } from './set/sets-engine.ts';
import type { ObjectEngine } from './types.ts';
import type { BlockCipherPool } from '../workers/pool.ts';

/** The background scanner deep-heals one object per second by default: a bounded, steady cost. */
export const defaultScannerIntervalMs = 1000;

export interface OpenEngineOptions {
  readonly cipherPool: BlockCipherPool;
  readonly env: StorageEnv;
  readonly onShardError?: (where: string, error: Error) => void;
  /** background scanner pace, ms per object; 0 turns it off */
  readonly scannerIntervalMs?: number;
}

export interface OpenedEngine {
  readonly engine: ObjectEngine;
  /** the expanded drive paths, in set order */
  readonly drives: readonly string[];
  readonly plan: SetPlan;
}

export async function openEngine(driveArgs: readonly string[], options: OpenEngineOptions): Promise<OpenedEngine> {
  const pools = expandDrivePools(driveArgs);
  if (pools.length > 1) throw new SetPlanError(`${pools.length} server pools were given; this build serves one pool`);
  const pool = pools[0]!;
  const plan = planSets(pool.drives.length, options.env, { rangeLengths: pool.rangeLengths });
  const drives = pool.drives;
  if (plan.singleDrive) return { engine: await FsEngine.open([drives[0]!], { cipherPool: options.cipherPool }), drives, plan };
  const setOptions = {
    cipherPool: options.cipherPool,
    parityShards: plan.parityShards,
    ...(options.onShardError === undefined ? {} : { onShardError: options.onShardError }),
    scannerIntervalMs: options.scannerIntervalMs ?? defaultScannerIntervalMs,
  };
  const engine = plan.setCount === 1
    ? await ErasureSetEngine.open(drives, setOptions)
    : await ErasureSetsEngine.open(drives, plan.setSize, setOptions);
  return { engine, drives, plan };
}
