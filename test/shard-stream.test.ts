// Streaming erasure writer and reader (engine/set/shard-stream.ts) over in-memory sinks and sources:
// round trips through the inline and the sink path, the framed layout (docs/jbod.md §5) checked against
// an independent split, lost and corrupted shards, sub-ranges, failing sinks and size errors.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import {
  readErasureStream, writeErasureStream,
  type ErasureReadOptions, type ErasureWriteOptions, type ErasureWriteResult, type ShardSink, type ShardSource,
} from '../engine/set/shard-stream.ts';
import {
  BitrotError, bitrotDigestSizeBytes, bitrotShardFileSizeBytes, verifyFramedShard, type BitrotAlgorithm,
} from '../engine/erasure/bitrot.ts';
import { shardFileSizeBytes, shardSizeBytes } from '../engine/erasure/distribution.ts';
import { QuorumError, writeQuorum } from '../engine/erasure/quorum.ts';
import { StorageError } from '../engine/types.ts';
import { createBlockCipherPool } from '../workers/pool.ts';

const KiB = 1024;
const MiB = 1024 * KiB;
const B = 64 * KiB;
const configs: readonly (readonly [number, number])[] = [[2, 2], [3, 1], [4, 4], [1, 1], [2, 0]];

/** deterministic PRNG so failures reproduce (mulberry32) */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomInt(random: () => number, below: number): number {
  return Math.floor(random() * below);
}

/** Patterned bytes (cheaper than randomBytes for MiBs, and position-dependent so shifts show). */
function payload(size: number, seed: number): Buffer {
  const bytes = Buffer.allocUnsafe(size);
  const random = prng(seed);
  for (let i = 0; i < size; i++) bytes[i] = ((i * 31 + (i >>> 8) * 7 + seed) & 0xff) ^ (i % 997 === 0 ? randomInt(random, 256) : 0);
  return bytes;
}

/**
 * The body as an async iterable of random-sized chunks, all views of ONE scratch buffer that is
 * overwritten as soon as the next chunk is pulled (the producer reuses its buffer: the writer must copy).
 */
function reusingBody(data: Buffer, random: () => number, maxChunk: number, counter?: { pulled: number }): AsyncIterable<Uint8Array> {
  return {
    async *[Symbol.asyncIterator]() {
      const scratch = Buffer.alloc(maxChunk);
      for (let offset = 0; offset < data.length; ) {
        const size = Math.min(data.length - offset, 1 + randomInt(random, maxChunk));
        data.copy(scratch, 0, offset, offset + size);
        if (counter) counter.pulled += 1;
        yield scratch.subarray(0, size);
        scratch.fill(0xee);
        offset += size;
      }
    },
  };
}

class MemorySink implements ShardSink {
  readonly parts: Buffer[] = [];
  writes = 0;
  constructor(readonly failOnWrite?: number, readonly random?: () => number) {}

  async write(chunks: readonly Uint8Array[]): Promise<void> {
    this.writes += 1;
    // Let other sinks (and the writer) run in between, as the thread pool would.
    if (this.random && this.random() < 0.5) await new Promise((resolve) => setImmediate(resolve));
    if (this.failOnWrite !== undefined && this.writes >= this.failOnWrite) throw new Error(`sink: injected failure at write ${this.writes}`);
    // Copied only now: the writer must not touch buffers of a write in flight.
    for (const chunk of chunks) this.parts.push(Buffer.from(chunk));
  }

  get data(): Buffer {
    return Buffer.concat(this.parts);
  }
}

class MemorySource implements ShardSource {
  reads = 0;
  constructor(readonly data: Buffer, readonly failWith?: Error) {}

  async read(position: number, length: number): Promise<Buffer> {
    this.reads += 1;
    if (this.failWith) throw this.failWith;
    return this.data.subarray(position, position + length);
  }
}

/** A source that also reads into the reader's reused buffers (as FileShardSource does). */
class MemoryIntoSource extends MemorySource {
  async readInto(position: number, target: Buffer): Promise<number> {
    this.reads += 1;
    if (this.failWith) throw this.failWith;
    return this.data.copy(target, 0, position, Math.min(this.data.length, position + target.length));
  }
}

interface Written {
  readonly result: ErasureWriteResult;
  /** per shard: the framed stream (inline buffer or sink contents); undefined when the sink was offline */
  readonly shards: (Buffer | undefined)[];
  readonly openCalls: number;
  readonly sinks: (MemorySink | undefined)[];
}

async function writeAll(
  data: Buffer,
  k: number,
  m: number,
  overrides: Partial<ErasureWriteOptions> & { blockSize?: number; seed?: number; sinks?: (MemorySink | undefined)[] } = {},
): Promise<Written> {
  const random = prng(overrides.seed ?? data.length + 17 * k + m);
  const blockSize = overrides.blockSize ?? B;
  const sinks = overrides.sinks ?? Array.from({ length: k + m }, () => new MemorySink(undefined, random));
  let openCalls = 0;
  const result = await writeErasureStream({
    body: reusingBody(data, random, Math.max(1, Math.floor(blockSize * 1.5))),
    dataShards: k,
    parityShards: m,
    blockSizeBytes: blockSize,
    algorithm: 'xxh3-128',
    writeQuorum: writeQuorum(k, m),
    inlineMaxSizeBytes: 0,
    openSinks: async () => {
      openCalls += 1;
      return sinks;
    },
    maxSizeBytes: 5 * 1024 * MiB,
    computeMd5: true,
    ...overrides,
  });
  const shards = result.inlineShards ? [...result.inlineShards] : sinks.map((sink) => sink?.data);
  return { result, shards, openCalls, sinks };
}

function readOptions(
  shards: readonly (Buffer | undefined)[],
  k: number,
  m: number,
  sizeBytes: number,
  extra: Partial<ErasureReadOptions> = {},
): ErasureReadOptions {
  return {
    dataShards: k,
    parityShards: m,
    blockSizeBytes: B,
    algorithm: 'xxh3-128',
    sizeBytes,
    sources: shards.map((shard) => (shard === undefined ? undefined : new MemorySource(shard))),
    start: 0,
    endExclusive: sizeBytes,
    ...extra,
  };
}

/** The chunks yielded before the end or an error (copied), and the error. */
async function readAll(options: ErasureReadOptions): Promise<{ data: Buffer; chunks: number[]; error?: unknown }> {
  const parts: Buffer[] = [];
  const chunks: number[] = [];
  try {
    for await (const chunk of readErasureStream(options)) {
      parts.push(Buffer.from(chunk));
      chunks.push(chunk.length);
    }
  } catch (error) {
    return { data: Buffer.concat(parts), chunks, error };
  }
  return { data: Buffer.concat(parts), chunks };
}

async function readBytes(options: ErasureReadOptions): Promise<Buffer> {
  const { data, error } = await readAll(options);
  if (error !== undefined) throw error;
  return data;
}

/** Check every shard stream against an independent split of the zero-padded blocks (systematic code). */
function assertLayout(shards: readonly (Buffer | undefined)[], data: Buffer, k: number, m: number, blockSize: number, algorithm: BitrotAlgorithm): void {
  const S = shardSizeBytes(blockSize, k);
  const shardPayload = shardFileSizeBytes(data.length, blockSize, k);
  const expectedFramed = bitrotShardFileSizeBytes(shardPayload, S, algorithm);
  const blockCount = Math.ceil(data.length / blockSize);
  shards.forEach((framed, index) => {
    assert.ok(framed !== undefined, `shard ${index} missing`);
    assert.equal(framed.length, expectedFramed, `shard ${index}: framed length`);
    const verified = verifyFramedShard(framed, S, shardPayload, algorithm);
    if (verified instanceof BitrotError) assert.fail(`shard ${index}: ${verified.message}`);
    assert.equal(verified.length, blockCount);
    if (index >= k) return; // parity: checked by the degraded reads
    for (let b = 0; b < blockCount; b++) {
      const block = data.subarray(b * blockSize, Math.min(data.length, (b + 1) * blockSize));
      const shardLength = Math.ceil(block.length / k);
      const padded = Buffer.alloc(k * shardLength);
      block.copy(padded);
      assert.ok(verified[b]!.equals(padded.subarray(index * shardLength, (index + 1) * shardLength)), `shard ${index} block ${b}`);
    }
  });
}

function combinations(n: number, r: number): number[][] {
  const out: number[][] = [];
  const walk = (from: number, picked: number[]): void => {
    if (picked.length === r) {
      out.push([...picked]);
      return;
    }
    for (let i = from; i < n; i++) walk(i + 1, [...picked, i]);
  };
  walk(0, []);
  return out;
}

function md5(data: Buffer): string {
  return createHash('md5').update(data).digest('hex');
}

// ------------------------------------------------------------------------------------ round trips

for (const [k, m] of configs) {
  test(`shard-stream ${k}+${m}: round trip through sinks and inline, layout matches an independent split`, async () => {
    const sizes = [...new Set([0, 1, k - 1, B - 1, B, B + 1, Math.floor(3.5 * B)])];
    for (const size of sizes) {
      const data = payload(size, size + k);
      const viaSinks = await writeAll(data, k, m);
      const label = `${k}+${m} size ${size}`;
      assert.equal(viaSinks.result.sizeBytes, size, label);
      assert.equal(viaSinks.result.md5Hex, md5(data), label);
      assert.deepEqual(viaSinks.result.failedShards, [], label);
      if (size === 0) {
        // inlineMaxSizeBytes 0: a 0-byte body is inline, k+m empty shards, no sink opened.
        assert.equal(viaSinks.openCalls, 0);
        assert.deepEqual(viaSinks.result.inlineShards?.map((shard) => shard.length), new Array(k + m).fill(0));
      } else {
        assert.equal(viaSinks.openCalls, 1, label);
        assert.equal(viaSinks.result.inlineShards, undefined, label);
      }
      assertLayout(viaSinks.shards, data, k, m, B, 'xxh3-128');

      const inline = await writeAll(data, k, m, { inlineMaxSizeBytes: size });
      assert.equal(inline.openCalls, 0, label);
      assert.ok(inline.result.inlineShards !== undefined, label);
      assert.equal(inline.result.inlineShards.length, k + m);
      assert.equal(inline.result.md5Hex, md5(data));
      inline.shards.forEach((shard, i) => assert.ok(shard!.equals(viaSinks.shards[i]!), `${label}: inline shard ${i} = sink shard`));

      assert.ok((await readBytes(readOptions(viaSinks.shards, k, m, size))).equals(data), label);
      assert.ok((await readBytes(readOptions(inline.shards, k, m, size))).equals(data), label);
    }
  });
}

test('shard-stream: 1 MiB blocks (production size), 3.5 blocks, 4+2 and 2+2, crc32c too', async () => {
  const size = Math.floor(3.5 * MiB) + 3;
  const data = payload(size, 5);
  for (const [k, m, algorithm] of [[4, 2, 'xxh3-128'], [2, 2, 'crc32c']] as const) {
    const written = await writeAll(data, k, m, { blockSize: MiB, algorithm });
    assertLayout(written.shards, data, k, m, MiB, algorithm);
    const options = readOptions(written.shards, k, m, size, { blockSizeBytes: MiB, algorithm });
    const whole = await readAll(options);
    assert.equal(whole.error, undefined);
    assert.ok(whole.data.equals(data));
    assert.ok(whole.chunks.every((length) => length <= MiB), 'each chunk at most one block');
    // Degraded: the first m data shards gone.
    const lost = written.shards.map((shard, i) => (i < m ? undefined : shard));
    assert.ok((await readBytes(readOptions(lost, k, m, size, { blockSizeBytes: MiB, algorithm }))).equals(data));
    const start = MiB - 5;
    const end = 3 * MiB + 7;
    assert.ok((await readBytes(readOptions(lost, k, m, size, { blockSizeBytes: MiB, algorithm, start, endExclusive: end }))).equals(data.subarray(start, end)));
  }
});

test('shard-stream: inline boundary, openSinks called once and lazily, offline sinks count as failed', async () => {
  const data = payload(3 * B + 100, 9);
  // Exactly at the limit: inline; one byte more: sinks.
  const atLimit = await writeAll(data, 2, 2, { inlineMaxSizeBytes: data.length });
  assert.equal(atLimit.openCalls, 0);
  assert.ok(atLimit.result.inlineShards);
  const over = await writeAll(data, 2, 2, { inlineMaxSizeBytes: data.length - 1 });
  assert.equal(over.openCalls, 1);
  assert.equal(over.result.inlineShards, undefined);
  over.shards.forEach((shard, i) => assert.ok(shard!.equals(atLimit.result.inlineShards![i]!)));
  // A limit of more than a block: the buffered blocks are flushed to the sinks when it is exceeded.
  const late = await writeAll(data, 3, 1, { inlineMaxSizeBytes: 2 * B + 1 });
  assert.equal(late.openCalls, 1);
  assertLayout(late.shards, data, 3, 1, B, 'xxh3-128');

  // One sink offline (2+2, write quorum 3): written to the other three, reported for healing.
  const sinks = [new MemorySink(), undefined, new MemorySink(), new MemorySink()];
  const degraded = await writeAll(data, 2, 2, { sinks });
  assert.deepEqual(degraded.result.failedShards, [1]);
  assert.ok((await readBytes(readOptions(degraded.shards, 2, 2, data.length))).equals(data));
  // Two offline: below quorum at open time, nothing written.
  const tooFew = [new MemorySink(), undefined, undefined, new MemorySink()];
  await assert.rejects(writeAll(data, 2, 2, { sinks: tooFew }), (error: unknown) => {
    assert.ok(error instanceof QuorumError);
    assert.equal(error.kind, 'write');
    assert.equal(error.quorum, 3);
    assert.equal(error.agreeing, 2);
    return true;
  });
  assert.equal(tooFew[0]!.writes, 0);

  // A 0-byte body that is not inline (negative limit): sinks opened, nothing written.
  const empty = await writeAll(Buffer.alloc(0), 2, 2, { inlineMaxSizeBytes: -1 });
  assert.equal(empty.openCalls, 1);
  assert.equal(empty.result.inlineShards, undefined);
  assert.deepEqual(empty.sinks.map((sink) => sink!.writes), [0, 0, 0, 0]);
  assert.equal(empty.result.md5Hex, md5(Buffer.alloc(0)));
  assert.equal((await readAll(readOptions(empty.shards, 2, 2, 0))).data.length, 0);

  // computeMd5 false.
  const noMd5 = await writeAll(data, 2, 2, { computeMd5: false });
  assert.equal(noMd5.result.md5Hex, '');
});

// ------------------------------------------------------------------------------------ degraded reads

for (const [k, m] of configs) {
  test(`shard-stream ${k}+${m}: any ${m} shards lost or corrupted → identical bytes; ${m + 1} → QuorumError`, async () => {
    const size = Math.floor(3.5 * B) + 11;
    const data = payload(size, 3 * k + m);
    const { shards } = await writeAll(data, k, m);
    const n = k + m;
    const random = prng(1000 + k * 10 + m);

    for (const lost of combinations(n, m)) {
      const sources = shards.map((shard, i) => (lost.includes(i) ? undefined : shard));
      const errors: number[] = [];
      const read = await readAll(readOptions(sources, k, m, size, { onShardError: (i) => errors.push(i) }));
      assert.equal(read.error, undefined, `lost ${lost}`);
      assert.ok(read.data.equals(data), `lost ${lost}`);
      assert.deepEqual(errors, [], 'unavailable sources are not reported');
    }

    for (let count = 1; count <= m; count++) {
      for (const corrupted of combinations(n, count)) {
        const damaged = shards.map((shard, i) => {
          if (!corrupted.includes(i)) return shard;
          const copy = Buffer.from(shard!);
          copy[randomInt(random, copy.length)] ^= 1 << randomInt(random, 8);
          return copy;
        });
        // Every frame is read (whole range, one window): a corrupted shard is reported iff the reader
        // reaches it: data shards first, then parity in order until k good ones.
        const expected: number[] = [];
        let good = 0;
        for (let i = 0; i < n && good < k; i++) {
          if (corrupted.includes(i)) expected.push(i);
          else good += 1;
        }
        const errors: [number, Error][] = [];
        const read = await readAll(readOptions(damaged, k, m, size, { onShardError: (i, error) => errors.push([i, error]) }));
        assert.equal(read.error, undefined, `corrupted ${corrupted}`);
        assert.ok(read.data.equals(data), `corrupted ${corrupted}`);
        assert.deepEqual(errors.map(([i]) => i).sort((a, b) => a - b), expected, `corrupted ${corrupted}`);
        for (const [, error] of errors) assert.ok(error instanceof BitrotError && error.kind === 'checksum');
      }
    }
    if (m > 0) {
      // Corrupting data shards only: exactly those are reported.
      const corrupted = combinations(k, Math.min(m, k))[0]!;
      const damaged = shards.map((shard, i) => {
        if (!corrupted.includes(i)) return shard;
        const copy = Buffer.from(shard!);
        copy[copy.length - 1] ^= 0x40;
        return copy;
      });
      const reported: number[] = [];
      assert.ok((await readBytes(readOptions(damaged, k, m, size, { onShardError: (i) => reported.push(i) }))).equals(data));
      assert.deepEqual(reported.sort((a, b) => a - b), corrupted);
    }

    for (const lost of combinations(n, m + 1).slice(0, 12)) {
      const sources = shards.map((shard, i) => (lost.includes(i) ? undefined : shard));
      const read = await readAll(readOptions(sources, k, m, size));
      assert.ok(read.error instanceof QuorumError, `lost ${lost}`);
      assert.equal(read.error.kind, 'read');
      assert.equal(read.error.quorum, k);
      assert.equal(read.data.length, 0, 'nothing yielded');
    }
  });
}

test('shard-stream: failures in later windows, read errors and short reads fall back; never wrong bytes', async () => {
  const k = 3;
  const m = 3;
  const blockSize = 1000; // S = 334, 25 blocks → 7 read windows of 4 blocks
  const size = 24 * blockSize + 555;
  const data = payload(size, 77);
  const { shards } = await writeAll(data, k, m, { blockSize });
  assertLayout(shards, data, k, m, blockSize, 'xxh3-128');
  const frame = shardSizeBytes(blockSize, k) + bitrotDigestSizeBytes('xxh3-128');
  const base = (extra: Partial<ErasureReadOptions>): ErasureReadOptions => ({ ...readOptions(shards, k, m, size), blockSizeBytes: blockSize, ...extra });

  // Shard 1 rejects (window 0), shard 0 is short (file cut in block 13, window 3), parity shard 3 is
  // corrupt in block 20 (window 5): parity 3, then 4, then 5 step in.
  const cut = Buffer.from(shards[0]!.subarray(0, 13 * frame + 10));
  const flipped = Buffer.from(shards[3]!);
  flipped[20 * frame + 40] ^= 0x01;
  const sources: MemorySource[] = [
    new MemorySource(cut),
    new MemorySource(shards[1]!, new Error('EIO')),
    new MemorySource(shards[2]!),
    new MemorySource(flipped),
    new MemorySource(shards[4]!),
    new MemorySource(shards[5]!),
  ];
  const reported: [number, Error][] = [];
  const read = await readAll(base({ sources, onShardError: (i, error) => reported.push([i, error]) }));
  assert.equal(read.error, undefined);
  assert.ok(read.data.equals(data));
  assert.deepEqual(reported.map(([i]) => i), [1, 0, 3]);
  assert.equal(reported[0]![1].message, 'EIO');
  const short = reported[1]![1];
  assert.ok(short instanceof BitrotError && short.kind === 'truncated');
  const checksum = reported[2]![1];
  assert.ok(checksum instanceof BitrotError && checksum.kind === 'checksum' && checksum.blockIndex === 20);
  // A failed shard is not read again; parity is read only from the window where it is needed.
  assert.deepEqual(sources.map((source) => source.reads), [4, 1, 7, 6, 4, 2]);
  assert.equal(read.chunks.length, 25);

  // Four shards bad from the window of blocks 16..19 on (one more than m): the first 16 blocks come out
  // right, then QuorumError; never a wrong byte.
  const bad = (i: number): Buffer => {
    const copy = Buffer.from(shards[i]!);
    copy[17 * frame + 3] ^= 0xff;
    return copy;
  };
  const failing = shards.map((shard, i) => ([0, 2, 4, 5].includes(i) ? bad(i) : shard));
  const reportedFailing: number[] = [];
  const partial = await readAll(base({ sources: failing.map((shard) => new MemorySource(shard!)), onShardError: (i) => reportedFailing.push(i) }));
  assert.ok(partial.error instanceof QuorumError);
  assert.equal(partial.error.kind, 'read');
  assert.equal(partial.error.agreeing, 2);
  assert.equal(partial.data.length, 16 * blockSize);
  assert.ok(partial.data.equals(data.subarray(0, 16 * blockSize)));
  assert.deepEqual(reportedFailing, [0, 2, 4, 5]);
});

// ------------------------------------------------------------------------------------ ranges

test('shard-stream: random sub-ranges (and block boundaries) equal the slice, healthy and degraded', async () => {
  const random = prng(4242);
  for (const [k, m] of configs) {
    const size = Math.floor(3.5 * B) + 5;
    const data = payload(size, k * 100 + m);
    const { shards } = await writeAll(data, k, m);
    const ranges: [number, number][] = [
      [0, 0], [size, size], [0, 1], [size - 1, size], [B - 1, B + 1], [B, 2 * B], [B, B], [2 * B - 1, 2 * B], [0, B], [3 * B, size], [B + 1, 3 * B - 1],
    ];
    for (let i = 0; i < 20; i++) {
      const a = randomInt(random, size + 1);
      const b = randomInt(random, size + 1);
      ranges.push([Math.min(a, b), Math.max(a, b)]);
    }
    const lost = m === 0 ? [] : [randomInt(random, k + m)];
    const degraded = shards.map((shard, i) => (lost.includes(i) ? undefined : shard));
    for (const [start, end] of ranges) {
      for (const sources of [shards, degraded]) {
        // Half the reads go through readInto: the reader's reused window and block buffers.
        const into = random() < 0.5;
        const extra = into ? { sources: sources.map((shard) => (shard === undefined ? undefined : new MemoryIntoSource(shard))) } : {};
        const read = await readAll(readOptions(sources, k, m, size, { start, endExclusive: end, ...extra }));
        assert.equal(read.error, undefined);
        assert.ok(read.data.equals(data.subarray(start, end)), `${k}+${m} [${start}, ${end}) lost ${lost}`);
        assert.ok(read.chunks.every((length) => length > 0 && length <= B));
        if (start === end) assert.equal(read.chunks.length, 0);
      }
    }
  }
  // Out-of-range requests are refused.
  const { shards } = await writeAll(payload(100, 1), 2, 2);
  await assert.rejects(readAll(readOptions(shards, 2, 2, 100, { start: 0, endExclusive: 101 })).then((r) => { throw r.error; }), RangeError);
  await assert.rejects(readAll(readOptions(shards, 2, 2, 100, { start: 5, endExclusive: 4 })).then((r) => { throw r.error; }), RangeError);
});

// ------------------------------------------------------------------------------------ failing sinks

test('shard-stream: sinks failing mid-stream: tolerated up to n - writeQuorum, then QuorumError', async () => {
  const data = payload(20 * 4096 + 77, 8);
  const blockSize = 4096;
  for (const [k, m] of configs) {
    const n = k + m;
    const quorum = writeQuorum(k, m);
    const tolerated = n - quorum;
    const random = prng(n * 7 + m);
    // Up to the tolerance: succeeds, failedShards lists them, and the rest reads back.
    for (let failures = 1; failures <= tolerated; failures++) {
      const failing = combinations(n, failures)[randomInt(random, combinations(n, failures).length)]!;
      const sinks = Array.from({ length: n }, (_, i) => new MemorySink(failing.includes(i) ? 2 + randomInt(random, 5) : undefined, random));
      const written = await writeAll(data, k, m, { blockSize, sinks });
      assert.deepEqual(written.result.failedShards, failing, `${k}+${m}`);
      const sources = written.shards.map((shard, i) => (failing.includes(i) ? undefined : shard));
      assert.ok((await readBytes({ ...readOptions(sources, k, m, data.length), blockSizeBytes: blockSize })).equals(data));
    }
    // One more: QuorumError, and the body is not consumed to the end.
    const failing = combinations(n, tolerated + 1)[0]!;
    const sinks = Array.from({ length: n }, (_, i) => new MemorySink(failing.includes(i) ? 2 : undefined, random));
    const counter = { pulled: 0 };
    await assert.rejects(
      writeErasureStream({
        body: reusingBody(data, random, 1000, counter),
        dataShards: k,
        parityShards: m,
        blockSizeBytes: blockSize,
        algorithm: 'crc32c',
        writeQuorum: quorum,
        inlineMaxSizeBytes: 0,
        openSinks: async () => sinks,
        maxSizeBytes: MiB,
        computeMd5: false,
      }),
      (error: unknown) => error instanceof QuorumError && error.kind === 'write' && error.quorum === quorum && error.driveCount === n,
      `${k}+${m}`,
    );
    assert.ok(counter.pulled < 40, `${k}+${m}: pulled ${counter.pulled} chunks of ~${Math.ceil(data.length / 500)}`);
    // The surviving sinks never got a block past the failure (writes stop at the quorum loss).
    for (const sink of sinks) assert.ok(sink.writes <= 3, `${k}+${m}: ${sink.writes} writes`);
  }
});

test('shard-stream: a sink whose write throws synchronously counts as failed', async () => {
  const data = payload(3 * B, 2);
  const thrower: ShardSink = {
    write() {
      throw new Error('sync failure');
    },
  };
  const sinks = [new MemorySink(), new MemorySink(), new MemorySink()];
  const result = await writeErasureStream({
    body: reusingBody(data, prng(3), 9000),
    dataShards: 3,
    parityShards: 1,
    blockSizeBytes: B,
    algorithm: 'xxh3-128',
    writeQuorum: 3,
    inlineMaxSizeBytes: 0,
    openSinks: async () => [sinks[0], sinks[1], thrower, sinks[2]],
    maxSizeBytes: MiB,
    computeMd5: true,
  });
  assert.deepEqual(result.failedShards, [2]);
  const shards = [sinks[0]!.data, sinks[1]!.data, undefined, sinks[2]!.data];
  assert.ok((await readBytes(readOptions(shards, 3, 1, data.length))).equals(data));
});

// ------------------------------------------------------------------------------------ size errors

test('shard-stream: size errors (IncompleteBody, InvalidArgument, EntityTooLarge) and body errors', async () => {
  const data = payload(2 * B + 10, 6);
  const kindIs = (kind: string) => (error: unknown) => error instanceof StorageError && error.kind === kind;

  await assert.rejects(writeAll(data, 2, 2, { expectedSizeBytes: data.length + 1 }), kindIs('IncompleteBody'));
  await assert.rejects(writeAll(data, 2, 2, { expectedSizeBytes: data.length + 1, inlineMaxSizeBytes: 10 * B }), kindIs('IncompleteBody'));
  await assert.rejects(writeAll(data, 2, 2, { expectedSizeBytes: data.length - 1 }), kindIs('InvalidArgument'));
  await assert.rejects(writeAll(data, 2, 2, { expectedSizeBytes: -1 }), kindIs('InvalidArgument'));
  await assert.rejects(writeAll(data, 2, 2, { expectedSizeBytes: 1.5 }), kindIs('InvalidArgument'));
  await assert.rejects(writeAll(data, 2, 2, { maxSizeBytes: data.length - 1 }), kindIs('EntityTooLarge'));
  // Announced too large: refused before the body is read or a sink opened.
  let opened = 0;
  const sinks = [new MemorySink(), new MemorySink(), new MemorySink(), new MemorySink()];
  await assert.rejects(
    writeAll(data, 2, 2, { expectedSizeBytes: data.length, maxSizeBytes: data.length - 1, openSinks: async () => { opened += 1; return sinks; } }),
    kindIs('EntityTooLarge'),
  );
  assert.equal(opened, 0);
  // Exactly the announced size and the maximum: fine.
  const exact = await writeAll(data, 2, 2, { expectedSizeBytes: data.length, maxSizeBytes: data.length });
  assert.equal(exact.result.sizeBytes, data.length);
  assertLayout(exact.shards, data, 2, 2, B, 'xxh3-128');
  // An exception from the body propagates.
  const failingBody: AsyncIterable<Uint8Array> = {
    async *[Symbol.asyncIterator]() {
      yield randomBytes(B + 5);
      throw new Error('client went away');
    },
  };
  await assert.rejects(writeAll(data, 2, 2, { body: failingBody }), /client went away/);
});

// ------------------------------------------------------------------------------------ pipelining, read-ahead

test('shard-stream: the writer encodes block n+1 while block n is being written, and goes no further', async () => {
  const blockSize = 4096;
  const data = payload(6 * blockSize, 12);
  const counter = { pulled: 0 };
  const body: AsyncIterable<Uint8Array> = {
    async *[Symbol.asyncIterator]() {
      for (let offset = 0; offset < data.length; offset += blockSize) {
        counter.pulled += 1;
        yield data.subarray(offset, offset + blockSize);
      }
    },
  };
  const pending: (() => void)[] = [];
  let concurrent = 0;
  let maxConcurrent = 0;
  const stored: Buffer[][] = [[], [], []];
  const sinks: ShardSink[] = stored.map((parts) => ({
    write(chunks) {
      concurrent += 1;
      maxConcurrent = Math.max(maxConcurrent, concurrent);
      return new Promise<void>((resolve) => {
        pending.push(() => {
          for (const chunk of chunks) parts.push(Buffer.from(chunk));
          concurrent -= 1;
          resolve();
        });
      });
    },
  }));
  const done = writeErasureStream({
    body, dataShards: 2, parityShards: 1, blockSizeBytes: blockSize, algorithm: 'xxh3-128', writeQuorum: 2,
    inlineMaxSizeBytes: 0, openSinks: async () => sinks, maxSizeBytes: MiB, computeMd5: false,
  });
  const settle = () => new Promise((resolve) => setTimeout(resolve, 5));
  for (let block = 0; block < 6; block++) {
    await settle();
    // Block `block` is being written (one write per sink); block+1 has been pulled and encoded, no more.
    assert.equal(pending.length, 3, `block ${block}`);
    assert.equal(counter.pulled, Math.min(6, block + 2), `block ${block}`);
    pending.splice(0).forEach((release) => release());
  }
  const result = await done;
  assert.deepEqual(result.failedShards, []);
  assert.equal(maxConcurrent, 3, 'one write in flight per sink');
  const shards = stored.map((parts) => Buffer.concat(parts));
  assertLayout(shards, data, 2, 1, blockSize, 'xxh3-128');
});

test('shard-stream: healthy reads touch only data shards, one read per shard per 4-block window', async () => {
  const blockSize = 2048;
  const data = payload(10 * blockSize - 1, 13); // 10 blocks → windows of 4, 4, 2
  const { shards } = await writeAll(data, 4, 2, { blockSize });
  const sources = shards.map((shard) => new MemorySource(shard!));
  const read = await readAll({ ...readOptions(shards, 4, 2, data.length), blockSizeBytes: blockSize, sources });
  assert.ok(read.data.equals(data));
  assert.deepEqual(sources.map((source) => source.reads), [3, 3, 3, 3, 0, 0]);
  // A range inside one block: one read of one frame per data shard (all k are read, as MinIO does).
  const one = shards.map((shard) => new MemorySource(shard!));
  const slice = await readAll({ ...readOptions(shards, 4, 2, data.length), blockSizeBytes: blockSize, sources: one, start: 5 * blockSize + 10, endExclusive: 5 * blockSize + 20 });
  assert.ok(slice.data.equals(data.subarray(5 * blockSize + 10, 5 * blockSize + 20)));
  assert.deepEqual(one.map((source) => source.reads), [1, 1, 1, 1, 0, 0]);
});

// ------------------------------------------------------------------------- MD5 on the pool

test('shard-stream: with a digest pool the MD5 is computed on it, identical, and the shards do not change', async () => {
  const pools = [createBlockCipherPool(0), createBlockCipherPool(1)];
  try {
    for (const pool of pools) {
      for (const size of [B + 1, 3 * B, Math.floor(3.5 * B)]) {
        const data = payload(size, size + 5);
        const plain = await writeAll(data, 2, 2);
        for (const expectedSizeBytes of [size, undefined]) {
          const viaPool = await writeAll(data, 2, 2, { digestPool: pool, ...(expectedSizeBytes === undefined ? {} : { expectedSizeBytes }) });
          const label = `threads ${pool.threads} size ${size} announced ${expectedSizeBytes !== undefined}`;
          assert.equal(viaPool.result.md5Hex, md5(data), label);
          viaPool.shards.forEach((shard, i) => assert.ok(shard!.equals(plain.shards[i]!), `${label}: shard ${i}`));
        }
      }
      // A small unannounced body that stays inline is hashed on the pool too.
      const small = payload(100, 1);
      const inline = await writeAll(small, 2, 2, { digestPool: pool, inlineMaxSizeBytes: 1000 });
      assert.equal(inline.result.md5Hex, md5(small));
    }
  } finally {
    await Promise.all(pools.map((pool) => pool.close()));
  }
});
