// Block-cipher pool benchmark: `npx tsx bench/pool.bench.ts` (options: `--quick`, `--only=seal,open,hand-off,md5,erasure`).
//
// 1. Seal 16 MiB (arriving as 64 KiB chunks, like an HTTP body) through encryptStreamPooled with
//    threads 0 (inline), 1, 2, 3 and blocks of 256 KiB, 1 MiB, 4 MiB. Also open it back with 1 MiB blocks.
// 2. Hand-off of 1 MiB to a worker: structured-clone copy vs transferList vs transfer there and back.
// 3. The ETag MD5 question: MD5 (node:crypto) on the main thread while the pool seals, vs the MD5 state
//    moved between worker threads with hash-wasm save()/load().
// MB/s = 10^6 bytes per wall second (median of samples); "MB/CPU-s" = bytes per second of process CPU
// (all threads), which contention on the shared 2-vCPU machine distorts much less (perf-primitives.md §0).
// 4. Erasure: one 1 MiB block RS-encoded and its shards digested (XXH3-128) inline vs on a worker (shared
//    memory, nothing copied), one block at a time and 4 in flight: the multi-drive PUT's per-block work.
// Prints a table and writes bench/results/pool-<timestamp>.json.

import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { setImmediate as setImmediatePromise } from 'node:timers/promises';
import { Piscina } from 'piscina';
import { Bench } from 'tinybench';
import { sealPackages } from '../workers/dare.ts';
import { decryptStreamPooled, encryptStreamPooled } from '../workers/encrypt-stream.ts';
import { createBlockCipherPool, type BlockCipherPool } from '../workers/pool.ts';
import { ownedView } from '../workers/crypto-task.ts';

const quick = process.argv.includes('--quick');
/** `--only=seal,md5`: run only these groups (seal, open, hand-off, md5) */
const onlyGroups = process.argv.find((arg) => arg.startsWith('--only='))?.slice('--only='.length).split(',');
const objectBytes = 16 * 1024 * 1024;
const chunkBytes = 64 * 1024;
const mebibyte = 1024 * 1024;
const threadCounts = [0, 1, 2, 3];
const blockSizesBytes = [256 * 1024, mebibyte, 4 * mebibyte];
const maxInFlight = 4;

const key = randomBytes(32);
const nonce = randomBytes(12);
nonce[0]! &= 0x7f;
const plaintext = randomBytes(objectBytes);
const ciphertext = sealPackages(key, nonce, 0, plaintext, true);
const expectedMd5Hex = createHash('md5').update(plaintext).digest('hex');

/**
 * The body as 64 KiB chunks, one per event-loop turn like a socket delivers them. Without the turn, a
 * source that never leaves the microtask queue starves piscina, whose replies are macrotasks.
 */
async function* chunked(data: Buffer): AsyncGenerator<Buffer> {
  for (let offset = 0; offset < data.length; offset += chunkBytes) {
    await setImmediatePromise();
    yield data.subarray(offset, offset + chunkBytes);
  }
}

async function drain(stream: AsyncIterable<Buffer>): Promise<number> {
  let bytes = 0;
  for await (const piece of stream) bytes += piece.length;
  return bytes;
}

interface Row {
  readonly group: string;
  readonly name: string;
  readonly bytesPerIteration: number;
  mbPerSecond?: number;
  mbPerCpuSecond?: number;
  samples?: number;
  rmePercent?: number;
}

const rows: Row[] = [];
const cpuTotals = new Map<string, { cpuMicros: number; bytes: number }>();

/** Wrap an iteration so that its process CPU time (all threads) is accounted to `name`. */
function measured(name: string, bytes: number, fn: () => Promise<unknown>): () => Promise<void> {
  return async () => {
    const before = process.cpuUsage();
    await fn();
    const used = process.cpuUsage(before);
    const total = cpuTotals.get(name) ?? { cpuMicros: 0, bytes: 0 };
    total.cpuMicros += used.user + used.system;
    total.bytes += bytes;
    cpuTotals.set(name, total);
  };
}

const bench = new Bench({ time: quick ? 300 : 1500, warmupTime: quick ? 100 : 300, iterations: 8 });
function add(group: string, name: string, bytes: number, fn: () => Promise<unknown>): void {
  if (onlyGroups !== undefined && !onlyGroups.includes(group)) return;
  rows.push({ group, name, bytesPerIteration: bytes });
  bench.add(name, measured(name, bytes, fn));
}

// --- 1. Seal (and open) 16 MiB through the pooled streams -------------------------------------------
const pools = new Map<number, BlockCipherPool>();
for (const threads of threadCounts) pools.set(threads, createBlockCipherPool(threads));
const pool = (threads: number): BlockCipherPool => pools.get(threads)!;

add('seal', 'sealPackages(16 MiB) direct, main thread', objectBytes, async () => sealPackages(key, nonce, 0, plaintext, true));
for (const threads of threadCounts) {
  for (const blockBytes of blockSizesBytes) {
    add('seal', `seal threads=${threads} block=${blockBytes / 1024} KiB`, objectBytes, () =>
      drain(encryptStreamPooled(chunked(plaintext), key, nonce, pool(threads), { blockBytes, maxInFlight })),
    );
  }
}
for (const threads of threadCounts) {
  add('open', `open threads=${threads} block=1024 KiB`, objectBytes, () =>
    drain(decryptStreamPooled(chunked(ciphertext), key, 0, pool(threads), { blockBytes: mebibyte, maxInFlight })),
  );
}

// --- 2. Hand-off of 1 MiB -----------------------------------------------------------------------------
const benchPool = new Piscina({
  filename: new URL('./pool-bench.worker.mjs', import.meta.url).href,
  minThreads: 2,
  maxThreads: 2,
  idleTimeout: Number.POSITIVE_INFINITY,
});
const oneMiB = Buffer.allocUnsafeSlow(mebibyte).fill(1);
add('hand-off', 'hand-off 1 MiB: copy (structured clone)', mebibyte, () => benchPool.run({ data: oneMiB }, { name: 'touch' }));
add('hand-off', 'hand-off 1 MiB: transfer (fresh buffer + memcpy each time)', mebibyte, () => {
  const data = ownedView(oneMiB.subarray(0, mebibyte - 1)); // forces a copy into a fresh ArrayBuffer, as encrypt-stream's blocks are
  return benchPool.run({ data }, { name: 'touch', transferList: [data.buffer] });
});
const roundTripBuffer: { data: Uint8Array } = { data: new Uint8Array(mebibyte) };
add('hand-off', 'hand-off 1 MiB: transfer there and move back (same buffer)', mebibyte, async () => {
  const { data } = roundTripBuffer;
  roundTripBuffer.data = (await benchPool.run({ data }, { name: 'touchBack', transferList: [data.buffer as ArrayBuffer] })) as Uint8Array;
});

// --- 3. ETag MD5: main thread vs moved between threads --------------------------------------------------
function checkMd5(md5Hex: string | undefined): void {
  if (md5Hex !== expectedMd5Hex) throw new Error(`MD5 mismatch: ${md5Hex}`);
}
add('md5', 'md5 only: node:crypto, main thread', objectBytes, async () => {
  const hash = createHash('md5');
  for await (const chunk of chunked(plaintext)) hash.update(chunk);
  checkMd5(hash.digest('hex'));
});
add('md5', 'md5 only: hash-wasm chained through a worker (save/load, 1 MiB steps)', objectBytes, async () => {
  let md5State: Uint8Array | undefined;
  let md5Hex: string | undefined;
  for (let offset = 0; offset < objectBytes; offset += mebibyte) {
    const data = ownedView(plaintext.subarray(offset, offset + mebibyte));
    const digest = offset + mebibyte >= objectBytes;
    ({ md5State, md5Hex } = (await benchPool.run({ md5State, data, digest }, { name: 'md5Step', transferList: [data.buffer] })) as {
      md5State: Uint8Array;
      md5Hex?: string;
    });
  }
  checkMd5(md5Hex);
});
for (const threads of threadCounts.slice(0, 3)) {
  add('md5', `seal threads=${threads} + md5 node:crypto on the main thread`, objectBytes, async () => {
    const hash = createHash('md5');
    async function* hashed(): AsyncGenerator<Buffer> {
      for await (const chunk of chunked(plaintext)) {
        hash.update(chunk);
        yield chunk;
      }
    }
    await drain(encryptStreamPooled(hashed(), key, nonce, pool(threads), { blockBytes: mebibyte, maxInFlight }));
    checkMd5(hash.digest('hex'));
  });
}
add('md5', 'seal + md5 in one worker task, MD5 state moved block to block (2 threads)', objectBytes, async () => {
  // The MD5 chain is serial, so one block is in flight at a time; the two threads take turns.
  let md5State: Uint8Array | undefined;
  let md5Hex: string | undefined;
  for (let offset = 0, sequence = 0; offset < objectBytes; offset += mebibyte, sequence += 16) {
    const data = ownedView(plaintext.subarray(offset, offset + mebibyte));
    const final = offset + mebibyte >= objectBytes;
    ({ md5State, md5Hex } = (await benchPool.run(
      { md5State, data, digest: final, key: new Uint8Array(key), nonce: new Uint8Array(nonce), firstSequence: sequence, final },
      { name: 'sealMd5', transferList: [data.buffer] },
    )) as { md5State: Uint8Array; md5Hex?: string });
  }
  checkMd5(md5Hex);
});
add('md5', 'seal on pool (threads=1) || md5 chain on another worker (state moved)', objectBytes, async () => {
  // Sealing runs ahead on the cipher pool; the MD5 chain follows on the bench pool with its own copy.
  let md5Chain: Promise<{ md5State: Uint8Array; md5Hex?: string }> = Promise.resolve({ md5State: undefined as never });
  let first = true;
  async function* hashed(): AsyncGenerator<Buffer> {
    for (let offset = 0; offset < objectBytes; offset += mebibyte) {
      const block = plaintext.subarray(offset, offset + mebibyte);
      const data = ownedView(block.subarray(0, mebibyte)); // own copy for the MD5 worker
      const digest = offset + mebibyte >= objectBytes;
      const isFirst = first;
      first = false;
      md5Chain = md5Chain.then(({ md5State }) =>
        benchPool.run({ md5State: isFirst ? undefined : md5State, data, digest }, {
          name: 'md5Step',
          transferList: [data.buffer],
        }),
      );
      yield block;
    }
  }
  await drain(encryptStreamPooled(hashed(), key, nonce, pool(1), { blockBytes: mebibyte, maxInFlight }));
  checkMd5((await md5Chain).md5Hex);
});

// --- 4. Erasure encode + shard digests per 1 MiB block -------------------------------------------------
for (const [k, m] of [[2, 2], [4, 2], [12, 4]] as const) {
  const shardBytes = Math.ceil(mebibyte / k);
  const buffers = Array.from({ length: 4 }, () => ({
    block: Buffer.from(new SharedArrayBuffer(mebibyte)).fill(7),
    shards: Buffer.from(new SharedArrayBuffer((k + m) * shardBytes)),
    digests: Buffer.from(new SharedArrayBuffer((k + m) * 16)),
  }));
  const task = (index: number) => ({ dataShards: k, parityShards: m, algorithm: 'xxh3-128' as const, blockBytes: mebibyte, ...buffers[index]! });
  for (const threads of [0, 1, 2]) {
    add('erasure', `erasure ${k}+${m} 1 MiB threads=${threads}, 1 in flight`, mebibyte, () => pool(threads).encodeErasure(task(0)));
    add('erasure', `erasure ${k}+${m} 1 MiB threads=${threads}, 4 in flight`, 4 * mebibyte, () =>
      Promise.all([0, 1, 2, 3].map((index) => pool(threads).encodeErasure(task(index)))),
    );
  }
}

// --- run ---------------------------------------------------------------------------------------------
// Start every worker (and its tsx module load) before measuring, so no task pays for it.
for (const [threads, each] of pools) {
  await Promise.all(Array.from({ length: Math.max(1, threads) * 2 }, () => each.seal(key, nonce, 0, Buffer.alloc(mebibyte), true)));
}
await Promise.all([0, 1, 2, 3].map(() => benchPool.run({ data: new Uint8Array(1) }, { name: 'touch' })));
const startedAt = new Date();
const loadBefore = loadavg();
await bench.run();
const loadAfter = loadavg();

for (const task of bench.tasks) {
  const row = rows.find((candidate) => candidate.name === task.name)!;
  const result = task.result;
  if (result.state !== 'completed') {
    console.error(`${task.name}: ${result.state}${result.state === 'errored' ? ` ${result.error.message}` : ''}`);
    continue;
  }
  row.mbPerSecond = row.bytesPerIteration / 1e6 / (result.latency.p50 / 1000);
  row.samples = result.latency.samplesCount;
  row.rmePercent = result.latency.rme;
  const cpu = cpuTotals.get(task.name);
  if (cpu !== undefined && cpu.cpuMicros > 0) row.mbPerCpuSecond = cpu.bytes / 1e6 / (cpu.cpuMicros / 1e6);
}

const format = (value: number | undefined, digits = 0): string => (value === undefined ? '—' : value.toFixed(digits));
console.log(`\npool bench, ${startedAt.toISOString()}, ${cpus().length} vCPU, loadavg ${loadBefore[0]!.toFixed(2)} → ${loadAfter[0]!.toFixed(2)}`);
console.log(`| group | configuration | MB/s (median) | ±rme % | MB per CPU-s | samples |\n|---|---|---|---|---|---|`);
for (const row of rows) {
  console.log(`| ${row.group} | ${row.name} | ${format(row.mbPerSecond)} | ${format(row.rmePercent, 1)} | ${format(row.mbPerCpuSecond)} | ${row.samples ?? '—'} |`);
}

mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
const resultUrl = new URL(`./results/pool-${startedAt.toISOString().replace(/[:.]/g, '-')}.json`, import.meta.url);
writeFileSync(
  resultUrl,
  `${JSON.stringify(
    {
      startedAt: startedAt.toISOString(),
      node: process.version,
      vcpus: cpus().length,
      cpuModel: cpus()[0]?.model,
      loadavgBefore: loadBefore,
      loadavgAfter: loadAfter,
      glibcTunables: process.env['GLIBC_TUNABLES'] ?? null,
      objectBytes,
      chunkBytes,
      maxInFlight,
      quick,
      rows,
    },
    null,
    2,
  )}\n`,
);
console.log(`\nwrote ${resultUrl.pathname}`);

for (const each of pools.values()) await each.close();
await benchPool.close();
