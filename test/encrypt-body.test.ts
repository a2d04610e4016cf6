// encryptBody (engine/encrypted-body.ts): small announced bodies are sealed in one call, larger ones go
// through the block pipeline; both give the same DARE bytes, the plaintext MD5 and size, and the same
// answers to bodies that are longer or shorter than announced.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { holdableBlockBuffers } from '../engine/aligned-buffers.ts';
import { encryptBody, type PlaintextTally } from '../engine/encrypted-body.ts';
import { StorageError } from '../engine/types.ts';
import { decryptStream, encryptedSizeBytes, randomDareNonce } from '../workers/dare.ts';
import { cipherBlockBytesFor, defaultBlockBytes } from '../workers/encrypt-stream.ts';
import { createBlockCipherPool } from '../workers/pool.ts';

const pool = createBlockCipherPool(1);
after(() => pool.close());
const MiB = 1024 * 1024;

async function* reusedChunks(data: Buffer, size: number): AsyncGenerator<Buffer> {
  const scratch = Buffer.alloc(size);
  for (let at = 0; at < data.length; at += size) {
    const n = Math.min(size, data.length - at);
    data.copy(scratch, 0, at, at + n);
    yield scratch.subarray(0, n);
    scratch.fill(0xee); // the producer reuses its buffer after each pull
  }
}

async function encrypt(data: Buffer, announced: number | undefined, key: Buffer, nonce: Buffer): Promise<{ sealed: Buffer; tally: PlaintextTally }> {
  const tally: PlaintextTally = { md5Hex: '', sizeBytes: 0 };
  const pieces: Buffer[] = [];
  for await (const piece of encryptBody(reusedChunks(data, 70_000), { key, nonce, randomEtag: false }, tally, pool, announced)) pieces.push(Buffer.from(piece));
  return { sealed: Buffer.concat(pieces), tally };
}

async function decrypt(sealed: Buffer, key: Buffer): Promise<Buffer> {
  async function* one(): AsyncGenerator<Buffer> {
    yield sealed;
  }
  const parts: Buffer[] = [];
  for await (const part of decryptStream(one(), key, 0)) parts.push(Buffer.from(part));
  return Buffer.concat(parts);
}

describe('encryptBody', () => {
  for (const size of [0, 1, 4096, 65_536, 65_537, MiB, MiB + 1, 3 * MiB + 5]) {
    it(`${size} bytes: the same ciphertext announced (one call or pipeline) and unannounced (pipeline)`, async () => {
      const data = randomBytes(size);
      const key = randomBytes(32);
      const nonce = randomDareNonce();
      const announced = await encrypt(data, size, key, nonce);
      const unannounced = await encrypt(data, undefined, key, nonce);
      assert.deepEqual(announced.sealed, unannounced.sealed);
      assert.equal(announced.sealed.length, encryptedSizeBytes(size));
      assert.deepEqual(announced.tally, { md5Hex: createHash('md5').update(data).digest('hex'), sizeBytes: size });
      assert.deepEqual(unannounced.tally, announced.tally);
      assert.deepEqual(await decrypt(announced.sealed, key), data);
    });
  }

  it('a small body longer than announced fails with InvalidArgument; a shorter one seals what came', async () => {
    const key = randomBytes(32);
    await assert.rejects(encrypt(randomBytes(5000), 4096, key, randomDareNonce()), (error: unknown) => error instanceof StorageError && error.kind === 'InvalidArgument');
    const short = await encrypt(randomBytes(3000), 4096, key, randomDareNonce());
    assert.equal(short.tally.sizeBytes, 3000);
    assert.equal(short.sealed.length, encryptedSizeBytes(3000)); // fewer than announced: the engine says IncompleteBody
  });
});

describe('small bodies in reused buffers', () => {
  it('a sealed chunk stays intact while the consumer holds it, though other bodies are sealed meanwhile and earlier ones gave theirs back', async () => {
    const key = randomBytes(32);
    const bodies = Array.from({ length: 12 }, (_, i) => randomBytes(1000 + 700 * i));
    const nonces = bodies.map(() => randomDareNonce());
    const expected = await Promise.all(bodies.map(async (data, i) => (await encrypt(data, data.length, key, nonces[i]!)).sealed));
    // Hold the first chunk of every stream at once (none pulled again), then check each against its own bytes.
    const streams = bodies.map((data, i) => encryptBody(reusedChunks(data, 500), { key, nonce: nonces[i]!, randomEtag: false }, { md5Hex: '', sizeBytes: 0 }, pool, data.length)[Symbol.asyncIterator]());
    const held: Buffer[] = [];
    for (const stream of streams) {
      const first = await stream.next();
      assert.equal(first.done, false);
      held.push(first.value as Buffer);
    }
    assert.equal(new Set(held.map((chunk) => chunk.buffer)).size, held.length, 'no two held chunks share memory');
    held.forEach((chunk, i) => assert.ok(chunk.equals(expected[i]!), `body ${i} intact while held`));
    for (const stream of streams) assert.equal((await stream.next()).done, true);
    // Buffers given back are reused, and what they held before does not leak into the next body's output.
    for (let round = 0; round < 3; round++) {
      for (const [i, data] of bodies.entries()) assert.deepEqual((await encrypt(data, data.length, key, nonces[i]!)).sealed, expected[i]);
    }
  });
});

describe('encryptBody without the plaintext MD5', () => {
  for (const size of [4096, 3 * MiB + 5]) {
    it(`${size} bytes: plaintextMd5 false computes no MD5 and seals the same bytes`, async () => {
      const data = randomBytes(size);
      const key = randomBytes(32);
      const nonce = randomDareNonce();
      const tally: PlaintextTally = { md5Hex: 'unset', sizeBytes: 0 };
      const pieces: Buffer[] = [];
      for await (const piece of encryptBody(reusedChunks(data, 70_000), { key, nonce, randomEtag: true, plaintextMd5: false }, tally, pool, size)) {
        pieces.push(Buffer.from(piece));
      }
      assert.deepEqual(tally, { md5Hex: '', sizeBytes: size });
      assert.deepEqual(Buffer.concat(pieces), (await encrypt(data, size, key, nonce)).sealed);
    });
  }
});

describe('sealed-block buffers after an upload fails', () => {
  // The sealed blocks of large bodies live in a bounded pool of page-aligned buffers (written from with
  // O_DIRECT): one lost per failed upload would, after enough of them, leave every SSE PUT on the copy path.
  const aligned = holdableBlockBuffers(cipherBlockBytesFor(defaultBlockBytes));
  const data = randomBytes(8 * MiB);
  const key = randomBytes(32);

  async function* failingAt(failAtBytes: number): AsyncGenerator<Buffer> {
    for (let at = 0; at < data.length; at += 256 * 1024) {
      if (at >= failAtBytes) throw new Error('client went away');
      yield data.subarray(at, at + 256 * 1024);
    }
  }

  it('a body that fails mid-stream gives every sealed block buffer back', async () => {
    const inUseBefore = aligned.stats().inUse;
    for (const failAt of [MiB, 5 * MiB, 7.5 * MiB]) {
      await assert.rejects(
        (async () => {
          for await (const piece of encryptBody(failingAt(failAt), { key, randomEtag: false }, { md5Hex: '', sizeBytes: 0 }, pool, data.length)) void piece;
        })(),
        /client went away/,
      );
      assert.equal(aligned.stats().inUse, inUseBefore, `failing after ${failAt} bytes: sealed blocks in flight were reclaimed`);
    }
  });

  it('a consumer that fails (a disk error) or stops gives back the block it held and those in flight', async () => {
    const inUseBefore = aligned.stats().inUse;
    for (const stopAfter of [1, 3]) {
      await assert.rejects(
        (async () => {
          let pieces = 0;
          for await (const piece of encryptBody(reusedChunks(data, 1_000_000), { key, randomEtag: false }, { md5Hex: '', sizeBytes: 0 }, pool, data.length)) {
            void piece;
            if (++pieces === stopAfter) throw new Error('disk failed');
          }
        })(),
        /disk failed/,
      );
      assert.equal(aligned.stats().inUse, inUseBefore, `failing after ${stopAfter} blocks`);
      for await (const piece of encryptBody(reusedChunks(data, 1_000_000), { key, randomEtag: false }, { md5Hex: '', sizeBytes: 0 }, pool, data.length)) {
        void piece;
        break;
      }
      assert.equal(aligned.stats().inUse, inUseBefore, 'after a break');
    }
  });
});
