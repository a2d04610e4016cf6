// Bitrot framing of shard streams (engine/erasure/bitrot.ts, docs/jbod.md §5): round trips, the index of a
// corrupted block, truncated and oversized streams, streaming in arbitrary chunks, size formulas.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  BitrotError,
  BitrotVerifier,
  BitrotWriter,
  bitrotAlgorithms,
  bitrotBlockCount,
  bitrotDigestSizeBytes,
  bitrotFrameOffsetBytes,
  bitrotFrameRange,
  bitrotShardFileSizeBytes,
  defaultBitrotAlgorithm,
  readVerifiedShard,
  verifyFramedShard,
  type BitrotAlgorithm,
} from '../engine/erasure/bitrot.ts';
import { shardFileSizeBytes, shardSizeBytes } from '../engine/erasure/distribution.ts';

const MiB = 1024 * 1024;

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

/** Frame `payload` as a writer would, block by block. */
function frame(payload: Buffer, shardSize: number, algorithm: BitrotAlgorithm): Buffer {
  const writer = new BitrotWriter(shardSize, algorithm, payload.length);
  const frames: Buffer[] = [];
  for (let offset = 0; offset < payload.length; offset += shardSize) frames.push(writer.push(payload.subarray(offset, offset + shardSize)));
  writer.finish();
  return Buffer.concat(frames);
}

function blocksOf(result: Buffer[] | BitrotError): Buffer[] {
  if (result instanceof BitrotError) assert.fail(`unexpected ${result.message}`);
  return result;
}

async function* chunked(bytes: Buffer, sizes: () => number): AsyncGenerator<Uint8Array> {
  for (let offset = 0; offset < bytes.length; ) {
    const size = Math.max(1, sizes());
    // Copies, like a file stream's fresh buffers.
    yield Uint8Array.from(bytes.subarray(offset, offset + size));
    offset += size;
  }
}

async function collect(source: AsyncIterable<Buffer>): Promise<{ blocks: Buffer[]; error?: unknown }> {
  const blocks: Buffer[] = [];
  try {
    for await (const block of source) blocks.push(Buffer.from(block));
  } catch (error) {
    return { blocks, error };
  }
  return { blocks };
}

test('bitrot: golden frames (format vectors)', () => {
  assert.equal(defaultBitrotAlgorithm, 'xxh3-128');
  // CRC32C check value: "123456789" -> e3069283, stored big-endian before the data.
  assert.equal(new BitrotWriter(9, 'crc32c').push(Buffer.from('123456789')).toString('hex'), 'e3069283313233343536373839');
  const crcWriter = new BitrotWriter(4, 'crc32c');
  assert.equal(Buffer.concat([crcWriter.push(Buffer.from('abcd')), crcWriter.push(Buffer.from('ef'))]).toString('hex'), '92c80a31616263646bb2dff56566');
  // XXH3-128 in canonical (big-endian) form, pinned from hash-wasm 4.13.0: a change here is a format change.
  assert.equal(new BitrotWriter(9, 'xxh3-128').push(Buffer.from('123456789')).toString('hex'), '33119477ede5dcd5e9716427681d5860313233343536373839');
  const xxhWriter = new BitrotWriter(4);
  assert.equal(
    Buffer.concat([xxhWriter.push(Buffer.from('abcd')), xxhWriter.push(Buffer.from('ef'))]).toString('hex'),
    '8d6b60383dfa90c21be79eecd1b1353d61626364219dae6ed6825b754076b5e9db38bf9f6566',
  );
  assert.equal(bitrotDigestSizeBytes('crc32c'), 4);
  assert.equal(bitrotDigestSizeBytes('xxh3-128'), 16);
});

for (const algorithm of bitrotAlgorithms) {
  const digestSize = bitrotDigestSizeBytes(algorithm);

  test(`bitrot ${algorithm}: round trip and size formula`, () => {
    for (const shardSize of [1, 7, 64, 4096]) {
      for (const payloadSize of [0, 1, shardSize - 1, shardSize, shardSize + 1, 5 * shardSize, 5 * shardSize + 3]) {
        if (payloadSize < 0) continue;
        const payload = randomBytes(payloadSize);
        const framed = frame(payload, shardSize, algorithm);
        assert.equal(framed.length, bitrotShardFileSizeBytes(payloadSize, shardSize, algorithm), `S=${shardSize} L=${payloadSize}`);
        assert.equal(framed.length, payloadSize + digestSize * Math.ceil(payloadSize / shardSize));
        const blocks = blocksOf(verifyFramedShard(framed, shardSize, payloadSize, algorithm));
        assert.equal(blocks.length, bitrotBlockCount(payloadSize, shardSize));
        assert.ok(Buffer.concat(blocks).equals(payload));
        // Every block but the last is S bytes.
        blocks.forEach((block, i) => assert.equal(block.length, Math.min(shardSize, payloadSize - i * shardSize)));
      }
    }
  });

  test(`bitrot ${algorithm}: a flipped byte in any block is reported with its index`, () => {
    const shardSize = 100;
    const payload = randomBytes(7 * shardSize + 37); // 8 blocks, the last one short
    const framed = frame(payload, shardSize, algorithm);
    const frameSize = shardSize + digestSize;
    const random = prng(11);
    for (let block = 0; block < 8; block++) {
      const frameStart = bitrotFrameOffsetBytes(block, shardSize, algorithm);
      const frameLength = Math.min(frameSize, framed.length - frameStart);
      // Flip in the digest, at the first and last data byte, and somewhere random.
      const positions = [frameStart, frameStart + digestSize - 1, frameStart + digestSize, frameStart + frameLength - 1, frameStart + Math.floor(random() * frameLength)];
      for (const position of positions) {
        for (const mask of [0x01, 0x80, 0xff]) {
          const damaged = Buffer.from(framed);
          damaged[position]! ^= mask;
          const result = verifyFramedShard(damaged, shardSize, payload.length, algorithm);
          assert.ok(result instanceof BitrotError, `block ${block} position ${position}`);
          assert.equal(result.kind, 'checksum');
          assert.equal(result.blockIndex, block, `position ${position}`);
        }
      }
    }
    // Two damaged blocks: the first one is reported.
    const twice = Buffer.from(framed);
    twice[bitrotFrameOffsetBytes(5, shardSize, algorithm) + digestSize + 3]! ^= 1;
    twice[bitrotFrameOffsetBytes(2, shardSize, algorithm) + digestSize + 50]! ^= 1;
    assert.equal((verifyFramedShard(twice, shardSize, payload.length, algorithm) as BitrotError).blockIndex, 2);
    // A frame whose data was replaced by another frame's data fails (whole frames moving together would
    // not: docs/jbod.md §5 lists that limit).
    const swapped = Buffer.from(framed);
    framed.copy(swapped, digestSize, frameSize + digestSize, frameSize * 2);
    assert.equal((verifyFramedShard(swapped, shardSize, payload.length, algorithm) as BitrotError).blockIndex, 0);
  });

  test(`bitrot ${algorithm}: truncated and oversized files are rejected`, () => {
    const shardSize = 64;
    const payload = randomBytes(3 * shardSize + 10); // frames: 3 full + 1 short
    const framed = frame(payload, shardSize, algorithm);
    const frameSize = shardSize + digestSize;
    const cuts: readonly (readonly [number, number])[] = [
      [0, 0],
      [1, 0],
      [digestSize, 0],
      [frameSize - 1, 0],
      [frameSize, 1],
      [frameSize + 1, 1],
      [3 * frameSize, 3],
      [framed.length - 1, 3],
    ];
    for (const [length, blockIndex] of cuts) {
      const result = verifyFramedShard(framed.subarray(0, length), shardSize, payload.length, algorithm);
      assert.ok(result instanceof BitrotError, `cut at ${length}`);
      assert.equal(result.kind, 'truncated', `cut at ${length}`);
      assert.equal(result.blockIndex, blockIndex, `cut at ${length}`);
    }
    const longer = verifyFramedShard(Buffer.concat([framed, Buffer.from([0])]), shardSize, payload.length, algorithm);
    assert.ok(longer instanceof BitrotError && longer.kind === 'oversized' && longer.blockIndex === 4);
    // A file claimed empty must be empty.
    assert.deepEqual(verifyFramedShard(Buffer.alloc(0), shardSize, 0, algorithm), []);
    assert.ok(verifyFramedShard(Buffer.alloc(1), shardSize, 0, algorithm) instanceof BitrotError);
    // A file framed with the other algorithm does not verify.
    const other = bitrotAlgorithms.find((candidate) => candidate !== algorithm)!;
    assert.ok(verifyFramedShard(framed, shardSize, payload.length, other) instanceof BitrotError);
  });

  test(`bitrot ${algorithm}: streaming reader verifies block by block in any chunking`, async () => {
    const shardSize = 1000;
    const payload = randomBytes(9 * shardSize + 123);
    const framed = frame(payload, shardSize, algorithm);
    const random = prng(5);
    const chunkings: readonly (() => number)[] = [
      () => 1,
      () => 7,
      () => shardSize + digestSize,
      () => 4096,
      () => framed.length,
      () => 1 + Math.floor(random() * 3000),
    ];
    for (const sizes of chunkings) {
      const { blocks, error } = await collect(readVerifiedShard(chunked(framed, sizes), { shardSizeBytes: shardSize, payloadSizeBytes: payload.length, algorithm }));
      assert.equal(error, undefined);
      assert.equal(blocks.length, 10);
      assert.ok(Buffer.concat(blocks).equals(payload));
    }
    // Corruption in block 6: blocks 0..5 are delivered, then the error names block 6.
    for (const sizes of chunkings) {
      const damaged = Buffer.from(framed);
      damaged[bitrotFrameOffsetBytes(6, shardSize, algorithm) + digestSize + 999]! ^= 0x10;
      const { blocks, error } = await collect(readVerifiedShard(chunked(damaged, sizes), { shardSizeBytes: shardSize, payloadSizeBytes: payload.length, algorithm }));
      assert.ok(error instanceof BitrotError);
      assert.equal(error.kind, 'checksum');
      assert.equal(error.blockIndex, 6);
      assert.equal(blocks.length, 6);
      assert.ok(Buffer.concat(blocks).equals(payload.subarray(0, 6 * shardSize)));
    }
    // Truncated stream: every whole frame is delivered, then 'truncated' at the first missing one.
    const truncated = await collect(readVerifiedShard(chunked(framed.subarray(0, framed.length - 5), () => 512), { shardSizeBytes: shardSize, payloadSizeBytes: payload.length, algorithm }));
    assert.ok(truncated.error instanceof BitrotError && truncated.error.kind === 'truncated' && truncated.error.blockIndex === 9);
    assert.equal(truncated.blocks.length, 9);
    // Extra bytes after the last frame.
    const extra = await collect(readVerifiedShard(chunked(Buffer.concat([framed, Buffer.alloc(3)]), () => 700), { shardSizeBytes: shardSize, payloadSizeBytes: payload.length, algorithm }));
    assert.ok(extra.error instanceof BitrotError && extra.error.kind === 'oversized' && extra.error.blockIndex === 10);
  });

  test(`bitrot ${algorithm}: range reads start and stop at frame boundaries`, async () => {
    const shardSize = 256;
    const payload = randomBytes(11 * shardSize + 17); // 12 frames
    const framed = frame(payload, shardSize, algorithm);
    for (const [first, end] of [[0, 12], [0, 1], [3, 7], [11, 12], [5, 5]] as const) {
      const { startBytes, endBytes } = bitrotFrameRange(payload.length, shardSize, first, end, algorithm);
      const options = { shardSizeBytes: shardSize, payloadSizeBytes: payload.length, algorithm, firstBlockIndex: first, endBlockIndex: end };
      const { blocks, error } = await collect(readVerifiedShard(chunked(framed.subarray(startBytes, endBytes), () => 300), options));
      assert.equal(error, undefined, `${first}..${end}`);
      assert.ok(Buffer.concat(blocks).equals(payload.subarray(first * shardSize, end * shardSize)), `${first}..${end}`);
    }
    assert.throws(() => bitrotFrameRange(payload.length, shardSize, 3, 13, algorithm), RangeError);
    assert.throws(() => new BitrotVerifier({ shardSizeBytes: shardSize, payloadSizeBytes: payload.length, firstBlockIndex: 5, endBlockIndex: 4 }), RangeError);
  });

  test(`bitrot ${algorithm}: whole-object shard files match the size formulas`, () => {
    // Brute force: split an object into blocks of B, each block into k shards of ceil(len/k), frame drive 0's
    // shard of every block; the file must be bitrotShardFileSizeBytes(shardFileSizeBytes(L, B, k), S).
    const random = prng(9);
    for (const blockSize of [100, 1000]) {
      for (const dataShards of [1, 2, 3, 4, 6, 8, 12]) {
        const shardSize = shardSizeBytes(blockSize, dataShards);
        for (const objectSize of [0, 1, blockSize - 1, blockSize, blockSize + 1, 4 * blockSize + Math.floor(random() * blockSize)]) {
          const writer = new BitrotWriter(shardSize, algorithm, shardFileSizeBytes(objectSize, blockSize, dataShards));
          let fileBytes = 0;
          for (let offset = 0; offset < objectSize; offset += blockSize) {
            const blockLength = Math.min(blockSize, objectSize - offset);
            fileBytes += writer.push(randomBytes(Math.ceil(blockLength / dataShards))).length;
          }
          writer.finish();
          const payloadSize = shardFileSizeBytes(objectSize, blockSize, dataShards);
          assert.equal(fileBytes, bitrotShardFileSizeBytes(payloadSize, shardSize, algorithm), `L=${objectSize} B=${blockSize} k=${dataShards}`);
          assert.equal(writer.framedBytesWritten, fileBytes);
          assert.equal(writer.blockCount, Math.ceil(objectSize / blockSize));
        }
      }
    }
    // The reference example: a 10 MiB object with D = 8 → 10 frames of 131,072 bytes.
    assert.equal(bitrotShardFileSizeBytes(shardFileSizeBytes(10 * MiB, MiB, 8), shardSizeBytes(MiB, 8), algorithm), 10 * 131_072 + 10 * digestSize);
  });
}

test('bitrot: writer refuses layouts that readers could not follow', () => {
  const writer = new BitrotWriter(8, 'crc32c');
  writer.push(Buffer.alloc(8));
  assert.throws(() => writer.push(Buffer.alloc(9)), RangeError);
  assert.throws(() => writer.push(Buffer.alloc(0)), RangeError);
  writer.push(Buffer.alloc(3)); // short: the last block
  assert.throws(() => writer.push(Buffer.alloc(8)), /after the short/);

  const sized = new BitrotWriter(8, 'xxh3-128', 20);
  assert.throws(() => sized.push(Buffer.alloc(4)), RangeError, 'a short block before the end');
  sized.push(Buffer.alloc(8));
  assert.throws(() => sized.finish(), /8 of 20/);
  sized.push(Buffer.alloc(8));
  assert.throws(() => sized.push(Buffer.alloc(8)), RangeError, 'the last block must be 4 bytes');
  sized.push(Buffer.alloc(4));
  sized.finish();
  assert.throws(() => new BitrotWriter(0), RangeError);
  assert.throws(() => new BitrotWriter(17 * MiB), RangeError);

  // pushVectored frames exactly like push.
  const block = randomBytes(8);
  const [digest, data] = new BitrotWriter(8).pushVectored(block);
  assert.ok(Buffer.concat([digest, data]).equals(new BitrotWriter(8).push(block)));
});

test('bitrot: verifier keeps failing after an error', () => {
  const framed = frame(randomBytes(30), 10, 'crc32c');
  framed[3]! ^= 1;
  const verifier = new BitrotVerifier({ shardSizeBytes: 10, payloadSizeBytes: 30, algorithm: 'crc32c' });
  assert.throws(() => verifier.push(framed), (error: unknown) => error instanceof BitrotError && error.blockIndex === 0);
  assert.throws(() => verifier.push(Buffer.alloc(1)), BitrotError);
  assert.throws(() => verifier.end(), BitrotError);
});
