// The ETag MD5 computed on the pool (DigestStream in workers/pool.ts): inline and on worker threads it must
// equal node:crypto's MD5 of the same bytes, in order, however the blocks are fed — directly, beside the
// seals of an encrypted stream, or by the staged file writer for a large plain body.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { stageBody } from '../engine/stage.ts';
import { encryptStreamPooled } from '../workers/encrypt-stream.ts';
import { blockBuffersFor, createBlockCipherPool, type BlockCipherPool } from '../workers/pool.ts';
import { decryptStream, randomDareNonce } from '../workers/dare.ts';
import { digestUpdate } from '../workers/crypto-task.ts';

const md5 = (bytes: Uint8Array) => createHash('md5').update(bytes).digest('hex');
const MiB = 1024 * 1024;

const pools: Record<string, BlockCipherPool> = {
  inline: createBlockCipherPool(0),
  '1 thread': createBlockCipherPool(1),
  '2 threads': createBlockCipherPool(2),
};
after(async () => {
  await Promise.all(Object.values(pools).map((pool) => pool.close()));
});

async function* chunksOf(data: Buffer, sizes: readonly number[]): AsyncGenerator<Buffer> {
  // One reused buffer for every chunk, overwritten after the consumer resumes: consumers must copy.
  const scratch = Buffer.alloc(Math.max(...sizes));
  for (let at = 0, i = 0; at < data.length; i++) {
    const n = Math.min(sizes[i % sizes.length]!, data.length - at);
    data.copy(scratch, 0, at, at + n);
    yield scratch.subarray(0, n);
    scratch.fill(0xee);
    at += n;
  }
}

for (const [name, pool] of Object.entries(pools)) {
  describe(`digest streams, ${name}`, () => {
    it('equal node:crypto MD5 for shared, plain and empty input, fed in any pieces', async () => {
      const data = randomBytes(3 * MiB + 17);
      const shared = blockBuffersFor(pool).take(data.length);
      data.copy(shared);
      const a = pool.createDigest();
      await a.update(shared.subarray(0, MiB));
      await a.update(data.subarray(MiB, 2 * MiB + 5)); // not shared memory: copied for a worker
      assert.equal(await a.finish(shared.subarray(2 * MiB + 5, data.length)), md5(data));
      assert.equal(await pool.createDigest().finish(), md5(Buffer.alloc(0)));
      // The caller's plain buffer is not taken away (transferred) by the worker hand-off.
      assert.equal(data.length, 3 * MiB + 17);
    });

    it('keep many concurrent streams apart and in order', async () => {
      const inputs = Array.from({ length: 8 }, (_, i) => randomBytes(i * 300_000 + 1));
      const results = await Promise.all(
        inputs.map(async (input) => {
          const stream = pool.createDigest();
          const pending: Promise<void>[] = [];
          for (let at = 0; at < input.length; at += 100_000) pending.push(stream.update(input.subarray(at, at + 100_000)));
          await Promise.all(pending); // submitted without waiting: order is the pool's job
          return stream.finish();
        }),
      );
      assert.deepEqual(results, inputs.map(md5));
    });

    it('refuse use after finish, and abandon() is harmless', async () => {
      const stream = pool.createDigest();
      await stream.finish(Buffer.from('x'));
      await assert.rejects(stream.update(Buffer.from('y')), /already finished/);
      stream.abandon();
      const dropped = pool.createDigest();
      await dropped.update(Buffer.from('partial'));
      dropped.abandon();
      dropped.abandon();
    });

    it('encryptStreamPooled reports the plaintext MD5 and still produces the same ciphertext', async () => {
      for (const size of [0, 5, MiB, 5 * MiB + 3]) {
        const data = randomBytes(size);
        const key = randomBytes(32);
        const nonce = randomDareNonce();
        let reported: string | undefined;
        const pieces: Buffer[] = [];
        const digest = { stream: pool.createDigest(), onMd5: (hex: string) => { reported = hex; } };
        for await (const piece of encryptStreamPooled(chunksOf(data, [70_000, 1, 400_001]), key, nonce, pool, { recycle: true, digest })) {
          pieces.push(Buffer.from(piece));
        }
        assert.equal(reported, md5(data), `MD5 of ${size} bytes`);
        async function* sealed(): AsyncGenerator<Buffer> {
          yield Buffer.concat(pieces);
        }
        const opened: Buffer[] = [];
        for await (const plain of decryptStream(sealed(), key, 0)) opened.push(Buffer.from(plain));
        assert.deepEqual(Buffer.concat(opened), data);
      }
    });

    it('stageBody hashes a large body through the file writer', async () => {
      const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'coffer-digest-'));
      try {
        for (const size of [MiB + 1, 4 * MiB, 4 * MiB + 4095]) {
          const data = randomBytes(size);
          const filePath = path.join(dir, `staged-${size}`, 'part.1');
          const staged = await stageBody({ body: chunksOf(data, [65_536, 333_333]), expectedSizeBytes: size, maxSizeBytes: 8 * MiB, filePath, baseDir: dir, digestPool: pool });
          assert.equal(staged.md5Hex, md5(data));
          assert.deepEqual(await fs.readFile(filePath), data);
        }
        // Unannounced size: the writer's digest serves it too.
        const data = randomBytes(2 * MiB + 9);
        const filePath = path.join(dir, 'unannounced', 'part.1');
        const staged = await stageBody({ body: chunksOf(data, [100_000]), maxSizeBytes: 8 * MiB, inlineMaxSizeBytes: 128 * 1024, filePath, baseDir: dir, digestPool: pool });
        assert.equal(staged.md5Hex, md5(data));
      } finally {
        await fs.rm(dir, { recursive: true, force: true });
      }
    });
  });
}

describe('digest state on a thread (digestUpdate)', () => {
  it('refuses a block out of order instead of producing a wrong MD5, and forgets the stream', () => {
    const streamId = 1e9 + 7; // far from the ids the pools above hand out
    assert.equal(digestUpdate({ streamId, sequence: 0, data: Buffer.from('a'), final: false }).ok, true);
    const skipped = digestUpdate({ streamId, sequence: 2, data: Buffer.from('c'), final: true });
    assert.equal(skipped.ok, false);
    assert.match(skipped.ok ? '' : skipped.error.message, /arrived, expected 1/);
    // The failed stream is gone: the id starts afresh.
    const fresh = digestUpdate({ streamId, sequence: 0, data: Buffer.from('abc'), final: true });
    assert.deepEqual(fresh, { ok: true, md5Hex: md5(Buffer.from('abc')) });
  });
});
