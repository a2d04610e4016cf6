import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import {
  createErasureCodec, erasureBlockSizeBytes, InsufficientShardsError, shardSizeBytes,
} from '../workers/erasure.ts';
import {
  encodingMatrix, gfInverse, gfMultiply, matrixInvert, matrixMultiply, parityRows, typescriptKernel,
} from '../workers/reed-solomon.ts';
import { loadNativeKernel } from '../workers/rs-native.ts';

const parameterSets: ReadonlyArray<readonly [number, number]> = [
  [1, 0], [1, 1], [2, 1], [2, 2], [3, 3], [4, 2], [6, 2], [8, 4], [12, 4],
];

/** deterministic PRNG so failures reproduce (mulberry32) */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) >>> 0;
    let t = seed;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function* combinations(n: number, size: number, start = 0, prefix: number[] = []): Generator<number[]> {
  if (prefix.length === size) {
    yield [...prefix];
    return;
  }
  for (let i = start; i < n; i++) yield* combinations(n, size, i + 1, [...prefix, i]);
}

function binomial(n: number, r: number): number {
  let result = 1;
  for (let i = 0; i < r; i++) result = (result * (n - i)) / (i + 1);
  return result;
}

function randomSubset(n: number, size: number, random: () => number): number[] {
  const indices = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [indices[i], indices[j]] = [indices[j]!, indices[i]!];
  }
  return indices.slice(0, size).sort((a, b) => a - b);
}

/** Every loss pattern of 0..m shards when there are few (or the block is small), else a random sample. */
function lossPatterns(k: number, m: number, blockLength: number, random: () => number): number[][] {
  const n = k + m;
  let total = 0;
  for (let lost = 0; lost <= m; lost++) total += binomial(n, lost);
  if (total <= 64 || blockLength <= 4096) {
    const all: number[][] = [];
    for (let lost = 0; lost <= m; lost++) all.push(...combinations(n, lost));
    return all;
  }
  const sample: number[][] = [[], Array.from({ length: m }, (_, i) => i), Array.from({ length: m }, (_, i) => k + i)];
  for (let i = 0; i < 24; i++) sample.push(randomSubset(n, 1 + Math.floor(random() * m), random));
  return sample;
}

function blockLengths(k: number, random: () => number): number[] {
  return [0, 1, k - 1, erasureBlockSizeBytes, 1 + Math.floor(random() * erasureBlockSizeBytes), 1 + Math.floor(random() * 300)];
}

test('the WASM SIMD kernel assembles, validates and is the default here', () => {
  const loaded = loadNativeKernel();
  assert.ok(loaded.kernel !== undefined, loaded.reason);
  assert.equal(createErasureCodec(4, 2).implementation, 'native');
  assert.equal(createErasureCodec(4, 2, 'typescript').implementation, 'typescript');
});

test('GF(2^8) with 0x11d: inverses, and inverse(matrix) · matrix = identity', () => {
  for (let a = 1; a < 256; a++) assert.equal(gfMultiply(a, gfInverse(a)), 1);
  assert.equal(gfMultiply(0x80, 2), 0x1d); // x^7 · x = x^8 = x^4+x^3+x^2+1
  for (const [k, m] of parameterSets) {
    const encoding = encodingMatrix(k, m);
    const rows = [...combinations(k + m, k)][Math.floor((binomial(k + m, k) - 1) / 2)]!;
    const chosen = new Uint8Array(k * k);
    rows.forEach((row, i) => chosen.set(encoding.cells.subarray(row * k, row * k + k), i * k));
    const square = { rows: k, columns: k, cells: chosen };
    const product = matrixMultiply(matrixInvert(square), square);
    for (let r = 0; r < k; r++) for (let c = 0; c < k; c++) assert.equal(product.cells[r * k + c], r === c ? 1 : 0);
  }
});

test('same matrix as klauspost/reedsolomon New(5, 5) (its TestOneEncode vector, as MinIO stores)', () => {
  const data = [[0, 1], [4, 5], [2, 3], [6, 7], [8, 9]].map((bytes) => Uint8Array.from(bytes));
  for (const kernel of [typescriptKernel, loadNativeKernel().kernel!]) {
    const parity = Array.from({ length: 5 }, () => new Uint8Array(2));
    kernel.multiplyRows(parityRows(5, 5), data, parity, 2);
    assert.deepEqual(parity.map((shard) => [...shard]), [[12, 13], [10, 11], [14, 15], [90, 91], [94, 95]], kernel.implementation);
  }
});

test('golden vectors: the shard format cannot change silently', () => {
  // block[i] = (37·i + 11) mod 256; the parity shards (hex). Data shards are the block, zero-padded.
  const golden: ReadonlyArray<readonly [number, number, number, readonly string[]]> = [
    [2, 1, 5, ['e973ff']],
    [4, 2, 23, ['08d2e8c2ac2f', 'cdbcf9e06927']],
    [3, 3, 10, ['a7acbc74', '4fae3ffc', 'db5a8388']],
    [8, 4, 29, ['743c8dbc', '66191c11', '9bfb85d1', '00181d27']],
    [12, 4, 50, ['88c2d4ca3e', '83b37a1fa9', 'e4c985160e', '08b1f86a26']],
  ];
  for (const [k, m, length, parityHex] of golden) {
    const block = Uint8Array.from({ length }, (_, i) => (i * 37 + 11) & 255);
    for (const prefer of ['native', 'typescript'] as const) {
      const shards = createErasureCodec(k, m, prefer).encode(block);
      assert.deepEqual(shards.slice(k).map((shard) => shard.toString('hex')), parityHex, `${k}+${m} ${prefer}`);
      const padded = Buffer.alloc(k * shardSizeBytes(length, k));
      padded.set(block);
      assert.deepEqual(Buffer.concat(shards.slice(0, k)), padded);
    }
  }
});

test('the kernels compute Σ row·source byte by byte (checked against gfMultiply directly)', () => {
  const random = prng(7);
  for (const [k, m] of [[5, 3], [1, 1], [9, 7], [8, 8]] as const) {
    const length = 1 + Math.floor(random() * 200);
    const sources = Array.from({ length: k }, () => randomBytes(length));
    const rows = parityRows(k, m);
    const expected = Array.from({ length: m }, (_, r) => Uint8Array.from({ length }, (_, i) => {
      let sum = 0;
      for (let j = 0; j < k; j++) sum ^= gfMultiply(rows[r * k + j]!, sources[j]![i]!);
      return sum;
    }));
    for (const kernel of [typescriptKernel, loadNativeKernel().kernel!]) {
      const targets = Array.from({ length: m }, () => new Uint8Array(length));
      kernel.multiplyRows(rows, sources, targets, length);
      assert.deepEqual(targets, expected, `${k}+${m} ${kernel.implementation}`);
    }
  }
});

function checkRoundTrips(k: number, m: number, seed: number): void {
  const random = prng(seed);
  const native = createErasureCodec(k, m, 'native');
  const typescript = createErasureCodec(k, m, 'typescript');
  for (const length of blockLengths(k, random)) {
    const block = randomBytes(length);
    const shardBytes = shardSizeBytes(length, k);
    assert.equal(shardBytes, Math.ceil(length / k));
    const shards = native.encode(block);
    const reference = typescript.encode(block);
    assert.equal(shards.length, k + m);
    for (let i = 0; i < k + m; i++) {
      assert.equal(shards[i]!.length, shardBytes);
      assert.ok(shards[i]!.equals(reference[i]!), `${k}+${m} len ${length}: native shard ${i} differs from TypeScript`);
    }
    const patterns = lossPatterns(k, m, length, random);
    patterns.forEach((lost, patternIndex) => {
      const degraded: (Buffer | undefined)[] = shards.map((shard, i) => (lost.includes(i) ? undefined : Buffer.from(shard)));
      // The TypeScript codec repeats a few patterns at 1 MiB (it is ~0.1 GB/s), all of them when small.
      const codec = length > 4096 && patternIndex % 8 !== 1 ? native : patternIndex % 2 === 0 ? native : typescript;
      const { block: rebuiltBlock, rebuilt } = codec.reconstruct(degraded, length);
      assert.deepEqual(rebuilt, lost);
      assert.ok(rebuiltBlock.equals(block), `${k}+${m} len ${length} lost [${lost}] ${codec.implementation}: block differs`);
      degraded.forEach((shard, i) => assert.ok(shard !== undefined && shard.equals(shards[i]!), `${k}+${m} lost [${lost}]: shard ${i}`));
    });
    // One more loss than parity: a clear error, never a wrong block.
    const tooMany = randomSubset(k + m, m + 1, random);
    const degraded = shards.map((shard, i) => (tooMany.includes(i) ? undefined : shard));
    assert.throws(() => native.reconstruct(degraded, length), (error: unknown) =>
      error instanceof InsufficientShardsError && error.presentShards === k - 1 && /need/.test(error.message));
    assert.throws(() => typescript.reconstruct(degraded, length), InsufficientShardsError);
  }
}

for (const [k, m] of parameterSets) {
  test(`round trips ${k}+${m}: lengths 0, 1, k-1, 1 MiB, random; every loss of ≤ m shards; > m → error`, () => {
    checkRoundTrips(k, m, 1000 * k + m);
  });
}

test('all 1..16-drive parameter sets round-trip (small blocks, random losses)', () => {
  const random = prng(99);
  for (let n = 1; n <= 16; n++) {
    for (let m = 0; m <= Math.floor(n / 2); m++) {
      const k = n - m;
      const codec = createErasureCodec(k, m);
      const reference = createErasureCodec(k, m, 'typescript');
      const block = randomBytes(Math.floor(random() * 5000));
      const shards = codec.encode(block);
      reference.encode(block).forEach((shard, i) => assert.ok(shard.equals(shards[i]!), `${k}+${m} shard ${i}`));
      const lost = randomSubset(n, m, random);
      const degraded = shards.map((shard, i) => (lost.includes(i) ? undefined : shard));
      assert.ok(codec.reconstruct(degraded, block.length).block.equals(block), `${k}+${m}`);
    }
  }
});

test('bad parameters and bad shards are refused loudly', () => {
  for (const [k, m] of [[0, 0], [4, 5], [9, 8], [17, 0], [8, 9], [1.5, 0], [2, -1]]) {
    assert.throws(() => createErasureCodec(k!, m!), /erasure: need/);
  }
  const codec = createErasureCodec(4, 2);
  assert.throws(() => codec.encode(new Uint8Array(erasureBlockSizeBytes + 1)), /block length/);
  assert.throws(() => shardSizeBytes(-1, 4), /block length/);
  const shards: (Buffer | undefined)[] = codec.encode(randomBytes(1000));
  assert.throws(() => codec.reconstruct(shards.slice(0, 5), 1000), /shard slots/);
  assert.throws(() => codec.reconstruct(shards, 1001), /expected 251/);
  shards[0] = undefined;
  shards[1] = shards[1]!.subarray(1);
  assert.throws(() => codec.reconstruct(shards, 1000), /shard 1 is 249 bytes/);
});

test('m = 0 is a plain split; encode keeps no reference to its input', () => {
  const codec = createErasureCodec(3, 0);
  const block = Buffer.from('abcdefgh');
  const shards = codec.encode(block);
  assert.deepEqual(shards.map((shard) => shard.toString('latin1')), ['abc', 'def', 'gh\0']);
  block.fill(0);
  assert.equal(shards[0]!.toString(), 'abc');
  assert.throws(() => codec.reconstruct([shards[0], undefined, shards[2]], 8), InsufficientShardsError);
  // Each shard set is one allocation that owns its ArrayBuffer (transferable), not Buffer's shared pool.
  const small = createErasureCodec(2, 1).encode(Buffer.from('xy'));
  assert.equal(small[0]!.buffer.byteLength, 3);
});

test('runs inside a worker thread (tsx loaded there as workers/crypto-task.worker.mjs does)', async () => {
  const tsxApiUrl = import.meta.resolve('tsx/esm/api');
  const erasureUrl = new URL('../workers/erasure.ts', import.meta.url).href;
  // The worker encodes a seeded block and reconstructs after losing 2 shards, with both implementations.
  const source = `
    const { parentPort, workerData } = require('node:worker_threads');
    (async () => {
      const { tsImport } = await import(workerData.tsxApiUrl);
      const { createErasureCodec } = await tsImport(workerData.erasureUrl, workerData.erasureUrl);
      const block = Buffer.from(workerData.block);
      const results = {};
      for (const prefer of ['native', 'typescript']) {
        const codec = createErasureCodec(8, 4, prefer);
        const shards = codec.encode(block);
        const parityHex = require('node:crypto').createHash('sha256').update(Buffer.concat(shards.slice(8))).digest('hex');
        shards[2] = undefined; shards[9] = undefined;
        const { block: rebuilt } = codec.reconstruct(shards, block.length);
        results[prefer] = { implementation: codec.implementation, parityHex, roundTrip: rebuilt.equals(block) };
      }
      parentPort.postMessage(results);
    })().catch((error) => parentPort.postMessage({ error: String(error && error.stack || error) }));
  `;
  const block = randomBytes(300_001);
  const worker = new Worker(source, { eval: true, workerData: { tsxApiUrl, erasureUrl, block } });
  try {
    const results = await new Promise<Record<string, unknown>>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    assert.equal(results['error'], undefined, String(results['error']));
    const expectedParity = createHash('sha256').update(Buffer.concat(createErasureCodec(8, 4).encode(block).slice(8))).digest('hex');
    for (const prefer of ['native', 'typescript']) {
      assert.deepEqual(results[prefer], { implementation: prefer, parityHex: expectedParity, roundTrip: true });
    }
  } finally {
    await worker.terminate();
  }
});
