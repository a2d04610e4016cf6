import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { DareError, darePackageBytesMax, darePayloadBytesMax, sealPackages } from '../workers/dare.ts';
import { createBlockCipherPool, probePoolThread, type BlockCipherPool } from '../workers/pool.ts';
import { decryptStreamPooled, encryptStreamPooled } from '../workers/encrypt-stream.ts';

const blockBytes = 128 * 1024; // 2 packages per block: many blocks for little data
const cipherBlockBytes = (blockBytes / darePayloadBytesMax) * darePackageBytesMax;
const repoRoot = fileURLToPath(new URL('..', import.meta.url));

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

/** `data` in random pieces (sometimes empty, sometimes larger than a block), each in a fresh buffer. */
async function* randomChunks(data: Uint8Array, random: () => number): AsyncGenerator<Uint8Array> {
  let offset = 0;
  while (offset < data.length) {
    const pick = random();
    const sizeBytes = pick < 0.1 ? 0 : pick < 0.3 ? Math.floor(random() * 3 * blockBytes) : Math.floor(random() * 70_000) + 1;
    yield Uint8Array.prototype.slice.call(data, offset, offset + sizeBytes);
    offset += sizeBytes;
  }
}

/** Like randomChunks, but every chunk is the same buffer, overwritten after each pull (like a socket). */
async function* reusedBufferChunks(data: Uint8Array, chunkBytes: number): AsyncGenerator<Uint8Array> {
  const scratch = Buffer.alloc(chunkBytes);
  for (let offset = 0; offset < data.length; offset += chunkBytes) {
    const piece = data.subarray(offset, offset + chunkBytes);
    scratch.set(piece);
    yield scratch.subarray(0, piece.length);
    scratch.fill(0xee);
  }
}

async function collect(stream: AsyncIterable<Buffer>): Promise<Buffer> {
  const pieces: Buffer[] = [];
  for await (const piece of stream) pieces.push(piece);
  return Buffer.concat(pieces);
}

async function* once(data: Uint8Array): AsyncGenerator<Uint8Array> {
  yield data;
}

function streamKey(): { key: Buffer; nonce: Buffer } {
  const nonce = randomBytes(12);
  nonce[0]! &= 0x7f;
  return { key: randomBytes(32), nonce };
}

async function withPool(threads: number, body: (pool: BlockCipherPool) => Promise<void>): Promise<void> {
  const pool = createBlockCipherPool(threads);
  try {
    await body(pool);
  } finally {
    await pool.close();
  }
}

const sizesBytes = [0, 1, 65_535, 65_536, blockBytes - 1, blockBytes, blockBytes + 1, 3 * blockBytes, 5 * 65_536 + 17, 700_001];

for (const threads of [0, 1, 2]) {
  test(`threads=${threads}: pooled encryption equals sealPackages of the whole input, and decrypts back`, async () => {
    await withPool(threads, async (pool) => {
      const random = prng(1000 + threads);
      for (const sizeBytes of sizesBytes) {
        for (const maxInFlight of [1, 3]) {
          const { key, nonce } = streamKey();
          const plaintext = randomBytes(sizeBytes);
          const expected = sizeBytes === 0 ? Buffer.alloc(0) : sealPackages(key, nonce, 0, plaintext, true);
          const options = { blockBytes, maxInFlight };
          const ciphertext = await collect(encryptStreamPooled(randomChunks(plaintext, random), key, nonce, pool, options));
          assert.ok(ciphertext.equals(expected), `size ${sizeBytes} maxInFlight ${maxInFlight}`);
          const decrypted = await collect(decryptStreamPooled(randomChunks(ciphertext, random), key, 0, pool, options));
          assert.ok(decrypted.equals(plaintext), `round trip size ${sizeBytes}`);
        }
      }
      assert.equal(pool.queueDepth, 0);
    });
  });

  test(`threads=${threads}: the source may reuse its buffer after each pull`, async () => {
    await withPool(threads, async (pool) => {
      const { key, nonce } = streamKey();
      const plaintext = randomBytes(4 * blockBytes + 1000);
      const expected = sealPackages(key, nonce, 0, plaintext, true);
      for (const chunkBytes of [1000, blockBytes, blockBytes + 5, 3 * blockBytes]) {
        const ciphertext = await collect(encryptStreamPooled(reusedBufferChunks(plaintext, chunkBytes), key, nonce, pool, { blockBytes }));
        assert.ok(ciphertext.equals(expected), `chunk ${chunkBytes}`);
        const decrypted = await collect(decryptStreamPooled(reusedBufferChunks(ciphertext, chunkBytes), key, 0, pool, { blockBytes }));
        assert.ok(decrypted.equals(plaintext), `decrypt chunk ${chunkBytes}`);
      }
    });
  });

  test(`threads=${threads}: recycling streams (seal and open) give the same bytes and reuse a bounded set of buffers`, async () => {
    await withPool(threads, async (pool) => {
      const random = prng(2000 + threads);
      for (const sizeBytes of [...sizesBytes, 20 * blockBytes + 5]) {
        const { key, nonce } = streamKey();
        const plaintext = randomBytes(sizeBytes);
        const expected = sizeBytes === 0 ? Buffer.alloc(0) : sealPackages(key, nonce, 0, plaintext, true);
        const maxInFlight = 3;
        // A recycled chunk is valid until the next pull: copy it at once, as the engine's writers do.
        const pieces: Buffer[] = [];
        const backings = new Set<ArrayBufferLike>();
        for await (const piece of encryptStreamPooled(randomChunks(plaintext, random), key, nonce, pool, { blockBytes, maxInFlight, recycle: true })) {
          pieces.push(Buffer.from(piece));
          backings.add(piece.buffer);
        }
        assert.ok(Buffer.concat(pieces).equals(expected), `size ${sizeBytes}`);
        const opened: Buffer[] = [];
        for await (const piece of decryptStreamPooled(randomChunks(expected, random), key, 0, pool, { blockBytes, maxInFlight, recycle: true })) {
          opened.push(Buffer.from(piece));
        }
        assert.ok(Buffer.concat(opened).equals(plaintext), `recycled decrypt, size ${sizeBytes}`);
        if (threads === 0 && sizeBytes > 10 * blockBytes) {
          // 21 blocks through at most maxInFlight + a few output buffers. (A buffer moved to a worker and
          // back is a new ArrayBuffer object over the same memory, so identity is only checked inline.)
          assert.ok(backings.size <= maxInFlight + 3, `${backings.size} distinct output buffers for ${pieces.length} blocks`);
        }
      }
    });
  });

  test(`threads=${threads}: tamper, truncation, splicing and trailing data surface as DareError`, async () => {
    await withPool(threads, async (pool) => {
      const { key, nonce } = streamKey();
      const plaintext = randomBytes(5 * blockBytes + 100);
      const ciphertext = sealPackages(key, nonce, 0, plaintext, true);
      const open = (bytes: Uint8Array, options: { expectFinal?: boolean } = {}): Promise<Buffer> =>
        collect(decryptStreamPooled(randomChunks(bytes, prng(7)), key, 0, pool, { blockBytes, maxInFlight: 3, ...options }));
      const expectDare = async (promise: Promise<unknown>, reason: string): Promise<void> => {
        await assert.rejects(promise, (error: unknown) => {
          assert.ok(error instanceof DareError, `expected a DareError, got ${String(error)}`);
          assert.equal(error.name, 'DareError');
          assert.equal(error.reason, reason);
          return true;
        });
      };

      const flipped = Buffer.from(ciphertext);
      flipped[2 * cipherBlockBytes + 1000]! ^= 1;
      await expectDare(open(flipped), 'authentication failed');

      await expectDare(open(ciphertext.subarray(0, 3 * cipherBlockBytes)), 'unexpected EOF');
      await expectDare(open(ciphertext.subarray(0, ciphertext.length - 1)), 'unexpected EOF');
      // A range read that stops early on a package boundary is fine with expectFinal: false.
      const prefix = await open(ciphertext.subarray(0, 3 * cipherBlockBytes), { expectFinal: false });
      assert.ok(prefix.equals(plaintext.subarray(0, 3 * blockBytes)));
      // ... and so is one that starts in the middle.
      const middle = await collect(
        decryptStreamPooled(once(ciphertext.subarray(2 * cipherBlockBytes)), key, (2 * blockBytes) / darePayloadBytesMax, pool, { blockBytes }),
      );
      assert.ok(middle.equals(plaintext.subarray(2 * blockBytes)));

      // Block 2 of another stream with the same key: each block authenticates alone, the nonce check spans them.
      const other = sealPackages(key, streamKey().nonce, 0, plaintext, true);
      const spliced = Buffer.concat([ciphertext.subarray(0, 2 * cipherBlockBytes), other.subarray(2 * cipherBlockBytes)]);
      await expectDare(open(spliced), 'header nonce mismatch');

      // A finished stream followed by more packages of a longer stream with the same nonce.
      const short = sealPackages(key, nonce, 0, plaintext.subarray(0, 2 * blockBytes), true);
      const trailing = Buffer.concat([short, ciphertext.subarray(2 * cipherBlockBytes, 3 * cipherBlockBytes)]);
      await expectDare(open(trailing), 'unexpected data after final package');

      // Swapped blocks: wrong sequence numbers.
      const swapped = Buffer.concat([
        ciphertext.subarray(cipherBlockBytes, 2 * cipherBlockBytes),
        ciphertext.subarray(0, cipherBlockBytes),
        ciphertext.subarray(2 * cipherBlockBytes),
      ]);
      await expectDare(open(swapped), 'authentication failed');

      // Directly on the pool too, with expectNonce.
      await expectDare(pool.open(key, Buffer.from(flipped.subarray(0, 3 * cipherBlockBytes)), 0), 'authentication failed');
      await expectDare(pool.open(key, Buffer.from(other.subarray(0, cipherBlockBytes)), 0, nonce), 'header nonce mismatch');
      assert.equal(pool.queueDepth, 0);
    });
  });

  test(`threads=${threads}: empty streams, and errors that are not DareErrors`, async () => {
    await withPool(threads, async (pool) => {
      const { key, nonce } = streamKey();
      assert.equal((await collect(encryptStreamPooled(once(new Uint8Array(0)), key, nonce, pool))).length, 0);
      assert.equal((await collect(encryptStreamPooled(randomChunks(new Uint8Array(0), prng(1)), key, nonce, pool))).length, 0);
      assert.equal((await collect(decryptStreamPooled(once(new Uint8Array(0)), key, 0, pool))).length, 0);
      // An empty range in the middle of a stream is a truncation unless the caller said it stops early.
      await assert.rejects(collect(decryptStreamPooled(once(new Uint8Array(0)), key, 4, pool)), DareError);
      assert.equal((await collect(decryptStreamPooled(once(new Uint8Array(0)), key, 4, pool, { expectFinal: false }))).length, 0);
      // An invariant violation inside the kernel (short non-final plaintext) keeps its message.
      await assert.rejects(pool.seal(key, nonce, 0, Buffer.alloc(1000), false), /invariant violated: non-final plaintext/);
    });
  });
}

test('pooled tasks run on worker threads, and transfer their input', async () => {
  await withPool(2, async (pool) => {
    const probes = await Promise.all([probePoolThread(pool), probePoolThread(pool), probePoolThread(pool)]);
    for (const probe of probes) assert.equal(probe?.isMainThread, false);
    const { key, nonce } = streamKey();
    const owned = Buffer.allocUnsafeSlow(blockBytes).fill(7);
    const expected = sealPackages(key, nonce, 0, owned, false);
    const sealed = await pool.seal(key, nonce, 0, owned, false);
    assert.ok(sealed.equals(expected));
    assert.equal(owned.buffer.byteLength, 0, 'a buffer that owns its ArrayBuffer is transferred (detached here)');
    const backing = Buffer.alloc(3 * blockBytes, 7);
    const slice = backing.subarray(blockBytes, 2 * blockBytes);
    assert.ok((await pool.seal(key, nonce, 0, slice, false)).equals(expected));
    assert.equal(backing.length, 3 * blockBytes, 'a slice is copied, never detaching its neighbours');
    assert.equal(backing[0], 7);
  });
  assert.equal(probePoolThread(createBlockCipherPool(0)), undefined);
});

test('backpressure: input is not read further ahead than maxInFlight blocks', async () => {
  await withPool(1, async (pool) => {
    const { key, nonce } = streamKey();
    const chunkBytes = 16 * 1024;
    const maxInFlight = 2;
    let pulledBytes = 0;
    async function* endless(): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < 10_000; i++) {
        pulledBytes += chunkBytes;
        yield Buffer.alloc(chunkBytes, i);
      }
    }
    const stream = encryptStreamPooled(endless(), key, nonce, pool, { blockBytes, maxInFlight });
    const first = await stream.next();
    assert.equal(first.done, false);
    await new Promise((resolve) => setTimeout(resolve, 50)); // a slow consumer: nothing may be read meanwhile
    // In flight, one block held back, one being filled, one chunk of slack.
    const boundBytes = (maxInFlight + 2) * blockBytes + chunkBytes;
    assert.ok(pulledBytes <= boundBytes, `pulled ${pulledBytes} > ${boundBytes}`);
    await stream.return(undefined);
    assert.equal(pool.queueDepth, 0);
  });
});

test('close() ends the worker threads and later tasks reject', async () => {
  const pool = createBlockCipherPool(2);
  const { key, nonce } = streamKey();
  await pool.seal(key, nonce, 0, Buffer.alloc(darePayloadBytesMax), true);
  await pool.close();
  await assert.rejects(pool.seal(key, nonce, 0, Buffer.alloc(darePayloadBytesMax), true), /closed/);

  // In a fresh process: with the pool closed nothing keeps it alive, so it exits promptly on its own.
  const script = `
    import { register } from 'tsx/esm/api';
    register();
    const { createBlockCipherPool } = await import(${JSON.stringify(pathToFileURL(`${repoRoot}workers/pool.ts`).href)});
    const pool = createBlockCipherPool(2);
    const sealed = await pool.seal(Buffer.alloc(32, 1), Buffer.alloc(12, 2), 0, Buffer.alloc(65536), true);
    await pool.close();
    process.stdout.write(String(sealed.length));
  `;
  const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], {
    cwd: repoRoot,
    timeout: 20_000,
  });
  assert.equal(stdout, String(darePackageBytesMax));
});

test('erasure encode + shard digests run inside a worker thread (WASM SIMD there too) and match the pure-TS oracle', async () => {
  const { createErasureCodec } = await import('../workers/erasure.ts');
  const { bitrotHasher } = await import('../engine/erasure/bitrot.ts');
  for (const threads of [0, 1]) {
    await withPool(threads, async (pool) => {
      for (const [k, m, blockBytes] of [[2, 2, 1024 * 1024], [4, 2, 1024 * 1024 - 3], [12, 4, 100_001], [3, 1, 1]] as const) {
        const shardBytes = Math.ceil(blockBytes / k);
        const shared = (bytes: number): Buffer => Buffer.from(new SharedArrayBuffer(bytes));
        const block = shared(1024 * 1024);
        randomBytes(blockBytes).copy(block);
        const shards = shared((k + m) * shardBytes);
        const digests = shared((k + m) * 16);
        const result = await pool.encodeErasure({ dataShards: k, parityShards: m, algorithm: 'xxh3-128', block, blockBytes, shards, digests });
        assert.equal(result.isMainThread, threads === 0, `threads=${threads}: where it ran`);
        assert.equal(result.implementation, 'native', 'the WASM SIMD kernel loads in this thread');
        const oracle = createErasureCodec(k, m, 'typescript').encode(block.subarray(0, blockBytes));
        const hasher = bitrotHasher('xxh3-128');
        oracle.forEach((expected, index) => {
          assert.ok(shards.subarray(index * shardBytes, (index + 1) * shardBytes).equals(expected), `${k}+${m} shard ${index}`);
          const digest = Buffer.alloc(16);
          hasher.digestInto(expected, digest, 0);
          assert.ok(digests.subarray(index * 16, (index + 1) * 16).equals(digest), `${k}+${m} digest ${index}`);
        });
      }
    });
  }
});
