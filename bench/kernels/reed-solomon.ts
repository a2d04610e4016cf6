// `npx tsx bench/kernels/reed-solomon.ts [--quick] [--time=MS] [--out=FILE]`: Reed-Solomon on 1 MiB blocks
// for 4+2, 8+4 and 12+4: encode, and reconstruct with 2 data shards lost, for the WASM SIMD kernel
// ('native', workers/rs-native.ts), the pure TypeScript one, and @ronomon/reed-solomon (native C, async on
// the libuv threadpool, 1 in flight) as a reference only: its bit-matrix code is not Coffer's shard format
// (docs/erasure.md). GB/s = 10^9 bytes of block (data) per second, as in perf-primitives.md §3.
// Prints a table and writes bench/results/reed-solomon-<timestamp>.json.
//
// The server runs with GLIBC_TUNABLES (README, `npm start`): without them every fresh 1.5 MiB shard set is
// a new mmap and page-faults on first touch, which costs about as much as the coding itself. This script
// re-runs itself with the server's tunables when GLIBC_TUNABLES is unset, so the numbers match the server.

import { spawnSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createErasureCodec, type ErasureCodec } from '../../workers/erasure.ts';
import { kernelTable, mebibyte, must, runKernelSpecs, type KernelRow, type KernelSpec } from './harness.ts';

const serverMallocTunables = 'glibc.malloc.trim_threshold=268435456:glibc.malloc.mmap_threshold=4194304';
const parameterSets: ReadonlyArray<readonly [number, number]> = [[4, 2], [8, 4], [12, 4]];
const lostShards = [0, 1];
const resultsDir = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'results');

/** The part of @ronomon/reed-solomon 6.0.0 used here (README "Usage"; it ships no types). */
interface RonomonReedSolomon {
  create(dataShards: number, parityShards: number): unknown;
  encode(
    context: unknown, sources: number, targets: number, buffer: Buffer, bufferOffset: number, bufferSize: number,
    parity: Buffer, parityOffset: number, paritySize: number, callback: (error: Error | undefined) => void,
  ): void;
}

function loadRonomon(): RonomonReedSolomon | undefined {
  try {
    return createRequire(import.meta.url)('@ronomon/reed-solomon') as RonomonReedSolomon;
  } catch {
    return undefined;
  }
}

function seededBlock(lengthBytes: number): Buffer {
  const block = Buffer.alloc(lengthBytes);
  let state = 0x9e3779b9;
  for (let i = 0; i < lengthBytes; i += 4) {
    state ^= state << 13; state ^= state >>> 17; state ^= state << 5;
    block.writeUInt32LE(state >>> 0, i);
  }
  return block;
}

function codecSpecs(k: number, m: number, codec: ErasureCodec, block: Buffer): KernelSpec[] {
  const shards = codec.encode(block);
  const degraded = (): (Buffer | undefined)[] => shards.map((shard, i) => (lostShards.includes(i) ? undefined : shard));
  must(codec.reconstruct(degraded(), block.length).block.equals(block), `${k}+${m} ${codec.implementation} round trip`);
  const group = `rs ${k}+${m}`;
  return [
    { group, name: `encode ${codec.implementation}`, bytes: block.length, fn: () => codec.encode(block) },
    {
      group, name: `reconstruct-2 ${codec.implementation}`, bytes: block.length,
      fn: () => codec.reconstruct(degraded(), block.length),
      note: `shards ${lostShards.join(',')} lost; rebuilds them`,
    },
  ];
}

function ronomonSpecs(ronomon: RonomonReedSolomon, k: number, m: number, block: Buffer): KernelSpec[] {
  const context = ronomon.create(k, m);
  // Its shard size must be a multiple of 8 (and its parity depends on it): round ceil(len/k) up.
  const shardBytes = Math.ceil(Math.ceil(block.length / k) / 8) * 8;
  const data = Buffer.alloc(k * shardBytes);
  data.set(block);
  const parity = Buffer.alloc(m * shardBytes);
  let allData = 0;
  for (let i = 0; i < k; i++) allData |= 1 << i;
  let allParity = 0;
  for (let i = k; i < k + m; i++) allParity |= 1 << i;
  let lost = 0;
  for (const i of lostShards) lost |= 1 << i;
  const run = (sources: number, targets: number): Promise<void> => new Promise((resolve, reject) => {
    ronomon.encode(context, sources, targets, data, 0, data.length, parity, 0, parity.length, (error) => (error ? reject(error) : resolve()));
  });
  const group = `rs ${k}+${m}`;
  const note = `reference only (other code); shard ${shardBytes} B, async, 1 in flight`;
  return [
    { group, name: 'encode @ronomon', bytes: block.length, fn: () => run(allData, allParity), note },
    {
      group, name: 'reconstruct-2 @ronomon', bytes: block.length, note,
      // Rebuilding overwrites the lost shards with the same bytes, so the buffers stay valid across runs.
      fn: () => run((allData | allParity) & ~lost, lost),
    },
  ];
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: { quick: { type: 'boolean', default: false }, time: { type: 'string' }, out: { type: 'string' } },
    strict: true,
  });
  if (process.env['GLIBC_TUNABLES'] === undefined) {
    const child = spawnSync(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
      stdio: 'inherit', env: { ...process.env, GLIBC_TUNABLES: serverMallocTunables },
    });
    return child.status ?? 1;
  }
  const timeMs = values.time === undefined ? (values.quick ? 300 : 1000) : Number(values.time);
  if (!Number.isInteger(timeMs) || timeMs < 10 || timeMs > 60_000) throw new Error('--time must be 10..60000 ms');

  const block = seededBlock(mebibyte);
  const ronomon = loadRonomon();
  const specs: KernelSpec[] = [];
  for (const [k, m] of parameterSets) {
    const native = createErasureCodec(k, m, 'native');
    const typescript = createErasureCodec(k, m, 'typescript');
    must(native.implementation === 'native', 'WASM SIMD kernel loaded');
    const nativeShards = native.encode(block);
    must(typescript.encode(block).every((shard, i) => shard.equals(nativeShards[i]!)), `${k}+${m}: native and TypeScript shards identical`);
    specs.push(...codecSpecs(k, m, native, block), ...codecSpecs(k, m, typescript, block));
    if (ronomon !== undefined) specs.push(...ronomonSpecs(ronomon, k, m, block));
  }
  const loadAverageBefore = os.loadavg();
  const startedAt = new Date();
  const rows: KernelRow[] = await runKernelSpecs(specs, { timeMs, iterationsMin: values.quick ? 8 : 32, warmupMs: values.quick ? 100 : 200 });

  for (const line of kernelTable(rows)) process.stdout.write(`${line}\n`);
  // The summary the brief asks for: GB/s of block data, one line per (k+m, operation).
  process.stdout.write('\nGB/s (10^9 B of 1 MiB blocks per second; per CPU-second in brackets)\n');
  const gb = (row: KernelRow | undefined): string => (row?.mbPerSecond === undefined ? '—' :
    `${(row.mbPerSecond / 1000).toFixed(2)} [${((row.mbPerCpuSecond ?? 0) / 1000).toFixed(2)}]`);
  const find = (group: string, name: string): KernelRow | undefined => rows.find((row) => row.group === group && row.name === name);
  const header = ['k+m', 'operation', 'native (WASM SIMD)', 'typescript', '@ronomon (reference)'];
  const lines = [header];
  for (const [k, m] of parameterSets) {
    for (const operation of ['encode', 'reconstruct-2']) {
      const group = `rs ${k}+${m}`;
      lines.push([`${k}+${m}`, operation, gb(find(group, `${operation} native`)), gb(find(group, `${operation} typescript`)), gb(find(group, `${operation} @ronomon`))]);
    }
  }
  const widths = header.map((_, column) => Math.max(...lines.map((line) => line[column]!.length)));
  for (const line of lines) process.stdout.write(`${line.map((cell, column) => cell.padEnd(widths[column]!)).join('  ').trimEnd()}\n`);

  const cpuModel = os.cpus()[0]?.model ?? 'unknown';
  const summary = {
    date: startedAt.toISOString(),
    node: process.version,
    cpu: cpuModel,
    cpus: os.cpus().length,
    glibcTunables: process.env['GLIBC_TUNABLES'] ?? null,
    loadAverageBefore,
    loadAverageAfter: os.loadavg(),
    taskTimeMs: timeMs,
    blockBytes: mebibyte,
    lostShards,
    rows,
  };
  const file = values.out ?? path.join(resultsDir, `reed-solomon-${summary.date.replace(/[:.]/g, '-')}.json`);
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, `${JSON.stringify(summary, null, 2)}\n`);
  process.stdout.write(`node ${process.version}, ${cpuModel} x${summary.cpus}, loadavg before ${loadAverageBefore.map((v) => v.toFixed(2)).join(' ')}, ` +
    `after ${summary.loadAverageAfter.map((v) => v.toFixed(2)).join(' ')}\nwrote ${path.relative(process.cwd(), file)}\n`);
  return 0;
}

try {
  process.exitCode = await main();
} catch (error) {
  process.stderr.write(`reed-solomon bench: ${(error as Error).message}\n`);
  process.exitCode = 1;
}
