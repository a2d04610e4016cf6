// All CPU kernels in one run: `npx tsx bench/kernels/run.ts` (also `npm run bench` and `coffer bench kernels`).
// Options: --quick (shorter rows), --only=aead,hash,keys,sigv4,meta,pool, --time=MS per row, --out=FILE.
// Prints a table and writes bench/results/kernels-<timestamp>.json.

import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { UsageError } from '../load/units.ts';
import { cryptoKernels } from './crypto.ts';
import { hashKernels } from './hashes.ts';
import { keyKernels } from './keys.ts';
import { kernelTable, runKernelSpecs, type KernelSpec } from './harness.ts';
import { poolKernels, type PoolKernels } from './pool.ts';
import { requestKernels } from './request.ts';

export const kernelGroups = ['aead', 'hash', 'keys', 'sigv4', 'meta', 'pool'] as const;
const resultsDir = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'results');
const taskTimeMsMax = 60_000;

export async function runKernels(args: readonly string[]): Promise<number> {
  let values;
  try {
    values = parseArgs({
      args: [...args],
      options: {
        quick: { type: 'boolean', default: false },
        only: { type: 'string' },
        time: { type: 'string' },
        out: { type: 'string' },
        help: { type: 'boolean', default: false },
      },
      strict: true,
    }).values;
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (values.help) {
    process.stdout.write(`usage: coffer bench kernels [--quick] [--only=${kernelGroups.join(',')}] [--time=MS] [--out=FILE]\n`);
    return 0;
  }
  const only = values.only?.split(',').map((group) => group.trim());
  for (const group of only ?? []) if (!(kernelGroups as readonly string[]).includes(group)) throw new UsageError(`--only: unknown group ${group} (${kernelGroups.join(', ')})`);
  const wanted = (group: string): boolean => only === undefined || only.includes(group);
  const timeMs = values.time === undefined ? (values.quick ? 300 : 1000) : Number(values.time);
  if (!Number.isInteger(timeMs) || timeMs < 10 || timeMs > taskTimeMsMax) throw new UsageError(`--time must be 10..${taskTimeMsMax} ms`);

  const specs: KernelSpec[] = [];
  if (wanted('aead')) specs.push(...cryptoKernels());
  if (wanted('hash')) specs.push(...(await hashKernels()));
  if (wanted('keys')) specs.push(...keyKernels());
  if (wanted('sigv4') || wanted('meta')) specs.push(...(await requestKernels()).filter((spec) => wanted(spec.group)));
  const loadAverageBefore = os.loadavg();
  const startedAt = new Date();
  const harness = { timeMs, iterationsMin: values.quick ? 16 : 64, warmupMs: values.quick ? 100 : 200 };
  const rows = specs.length === 0 ? [] : await runKernelSpecs(specs, harness);
  // The worker threads exist only while the pool rows run, so they cannot disturb the single-core rows.
  if (wanted('pool')) {
    const pool: PoolKernels = await poolKernels();
    try {
      rows.push(...(await runKernelSpecs(pool.specs, harness)));
    } finally {
      await pool.close();
    }
  }
  for (const line of kernelTable(rows)) process.stdout.write(`${line}\n`);
  const cpuModel = os.cpus()[0]?.model ?? 'unknown';
  const summary = {
    date: startedAt.toISOString(),
    node: process.version,
    cpu: cpuModel,
    cpus: os.cpus().length,
    loadAverageBefore,
    loadAverageAfter: os.loadavg(),
    taskTimeMs: timeMs,
    quick: values.quick,
    groups: only ?? kernelGroups,
    rows,
  };
  const file = values.out ?? path.join(resultsDir, `kernels-${summary.date.replace(/[:.]/g, '-')}.json`);
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, `${JSON.stringify(summary, null, 2)}\n`);
  process.stdout.write(`node ${process.version}, ${cpuModel} x${summary.cpus}, loadavg before ${loadAverageBefore.map((v) => v.toFixed(2)).join(' ')}, ` +
    `after ${summary.loadAverageAfter.map((v) => v.toFixed(2)).join(' ')}\nwrote ${path.relative(process.cwd(), file)}\n`);
  return 0;
}
