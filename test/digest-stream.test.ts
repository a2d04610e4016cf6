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
import { decryptStream, randomDareNonce, sealPackagesInto } from '../workers/dare.ts';
import { md5Update, type Md5Result, type Md5Task } from '../workers/crypto-task.ts';
import { Md5Batcher } from '../workers/md5-batcher.ts';
import { allMd5Kernels } from '../workers/md5-kernel.ts';

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

describe('md5 batcher', () => {
  /** a runner on "thread 0" */
  const onThread0 = (run: (task: Md5Task) => Promise<Md5Result>) => (task: Md5Task) => ({ thread: 0, done: run(task) });

  it('fills each batch with the next waiting block of every open upload, each upload in order', async () => {
    const batches: number[] = [];
    let release: (() => void) | undefined;
    const gate = new Promise<void>((resolve) => { release = resolve; });
    const batcher = new Md5Batcher(onThread0(async (task) => {
      batches.push(task.states.length);
      if (batches.length === 1) await gate; // hold the first batch while the next blocks queue up
      return md5Update(task);
    }), false, 1, 8);
    const inputs = Array.from({ length: 5 }, (_, i) => randomBytes(3 * 64 * 1024 + i * 100));
    const streams = inputs.map(() => batcher.createStream());
    const done = inputs.map(async (input, i) => {
      const stream = streams[i]!;
      const pending = [stream.update(input.subarray(0, 64 * 1024)), stream.update(input.subarray(64 * 1024, 3 * 64 * 1024))];
      const md5Hex = stream.finish(input.subarray(3 * 64 * 1024));
      await Promise.all(pending);
      return md5Hex;
    });
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(batches, [5], 'one batch with the first block of each of the five uploads');
    assert.equal(batcher.running, 1);
    release!();
    assert.deepEqual(await Promise.all(done), inputs.map(md5));
    assert.deepEqual(batches, [5, 5, 5]);
    assert.deepEqual(batcher.counters, { batches: 3, lanes: 15 });
  });

  it('sends a lone upload\'s blocks one behind another to its thread, without waiting for each', async () => {
    const sent: (number | undefined)[] = [];
    const releases: (() => void)[] = [];
    const batcher = new Md5Batcher((task, _transfer, thread) => {
      sent.push(thread);
      return { thread: 1, done: new Promise<void>((resolve) => releases.push(resolve)).then(() => md5Update(task)) };
    }, false, 2, 8);
    const stream = batcher.createStream();
    const input = randomBytes(7 * 1000);
    const pending = Array.from({ length: 6 }, (_, i) => stream.update(input.subarray(i * 1000, (i + 1) * 1000)));
    const result = stream.finish(input.subarray(6000));
    assert.deepEqual(sent, [undefined, 1, 1, 1], 'the first anywhere, the next three behind it on its thread; the rest wait');
    while (releases.length > 0) {
      releases.shift()!();
      await new Promise((resolve) => setImmediate(resolve));
    }
    await Promise.all(pending);
    assert.equal(await result, md5(input));
    assert.equal(sent.length, 7);
  });

  it('gives open uploads one turn of the event loop to fill a batch, and starts a second batch only when full', async () => {
    const started: number[] = [];
    const releases: (() => void)[] = [];
    const batcher = new Md5Batcher(onThread0(async (task) => {
      started.push(task.states.length);
      await new Promise<void>((resolve) => releases.push(resolve));
      return md5Update(task);
    }), false, 2, 2);
    const streams = Array.from({ length: 3 }, () => batcher.createStream());
    const results = streams.map((stream, i) => stream.finish(Buffer.from(`upload ${i}`)));
    assert.deepEqual(started, [], 'three uploads open, one block waiting: wait for the turn to end');
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(started, [2], 'a full batch; the third block waits, as a second batch would run part-empty');
    releases.shift()!();
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(started, [2, 1], 'the only open upload left goes alone, without waiting');
    releases.shift()!();
    assert.deepEqual(await Promise.all(results), streams.map((_, i) => md5(Buffer.from(`upload ${i}`))));
  });

  it('fails every later block of an upload whose batch failed, and only that upload', async () => {
    let calls = 0;
    const batcher = new Md5Batcher(onThread0(async (task) => {
      calls += 1;
      if (calls === 1) throw new Error('worker gone');
      return md5Update(task);
    }), false, 1, 8);
    const failing = batcher.createStream();
    const first = failing.update(Buffer.from('a'));
    const second = failing.finish(Buffer.from('b'));
    await assert.rejects(first, /worker gone/);
    await assert.rejects(second, /worker gone/);
    await assert.rejects(failing.update(Buffer.from('c')), /already finished|worker gone/);
    assert.equal(await batcher.createStream().finish(Buffer.from('fine')), md5(Buffer.from('fine')));
  });
});

describe('seals riding along with the MD5', () => {
  for (const [name, pool] of Object.entries(pools)) {
    it(`${name}: one task hashes and seals; a failing seal fails that block only`, async () => {
      const buffers = blockBuffersFor(pool);
      const key = randomBytes(32);
      const nonce = randomDareNonce();
      const good = buffers.take(MiB);
      randomBytes(MiB).copy(good);
      const expected = Buffer.alloc(MiB + 32 * 16);
      const expectedBytes = sealPackagesInto(key, nonce, 0, good, true, expected);
      const output = buffers.take(MiB + 32 * 16);
      const other = buffers.take(MiB);
      other.fill(7);
      const otherOutput = buffers.take(MiB + 32 * 16);
      // Taken before the hand-off: without shared memory the pool moves the blocks to its threads.
      const goodMd5 = md5(good);
      const otherAndMore = Buffer.concat([other, Buffer.from('!')]);
      const a = pool.createDigest();
      const b = pool.createDigest();
      const [sealed, refused] = await Promise.allSettled([
        pool.sealRecycled(key, nonce, 0, good, true, output, { stream: a, final: true }),
        pool.sealRecycled(key.subarray(0, 5), nonce, 0, other, true, otherOutput, { stream: b, final: false }), // a 5-byte key
      ]);
      assert.equal(sealed.status, 'fulfilled');
      assert.deepEqual(sealed.status === 'fulfilled' ? Buffer.from(sealed.value.ciphertext) : undefined, expected.subarray(0, expectedBytes));
      assert.equal(sealed.status === 'fulfilled' ? sealed.value.md5Hex : undefined, goodMd5);
      assert.equal(refused.status, 'rejected');
      assert.match(String(refused.status === 'rejected' ? refused.reason : ''), /key must be 32 bytes/);
      // The refused block was still hashed: its stream goes on.
      assert.equal(await b.finish(Buffer.from('!')), md5(otherAndMore));
    });
  }
});

describe('md5 kernels', () => {
  it('every kernel on this machine equals node:crypto, lanes of unequal lengths continued across calls', async () => {
    const kernels = await allMd5Kernels();
    assert.ok(kernels.length >= 1);
    for (const kernel of kernels) {
      const messages = [0, 1, 55, 56, 63, 64, 65, 127, 1000, 64 * 1024 + 3, 300_001].map((length) => randomBytes(length));
      const memory = new Uint8Array(new SharedArrayBuffer(messages.length * (kernel.stateBytes + 5)));
      const states = messages.map((_, i) => memory.subarray(i * (kernel.stateBytes + 5) + 3, (i + 1) * (kernel.stateBytes + 5)));
      states.forEach((state) => kernel.init(state));
      let from = messages.map(() => 0);
      for (const cut of [0.01, 0.5, 0.51, 1]) {
        const to = messages.map((message) => Math.floor(message.length * cut));
        // Lanes in a different order each call: a state is bound to its message, not to its position.
        const order = messages.map((_, i) => i).reverse();
        kernel.update(order.map((i) => states[i]!), order.map((i) => messages[i]!.subarray(from[i], to[i])));
        from = to;
      }
      assert.deepEqual(states.map((state) => kernel.final(state)), messages.map(md5), kernel.status);
    }
  });

  it('refuses the same state twice in one call (native)', async () => {
    const native = (await allMd5Kernels()).filter((kernel) => kernel.status.startsWith('native'));
    for (const kernel of native) {
      const state = new Uint8Array(kernel.stateBytes);
      kernel.init(state);
      assert.throws(() => kernel.update([state, state], [Buffer.alloc(64), Buffer.alloc(64)]), /twice/);
    }
  });
});
