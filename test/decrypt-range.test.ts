// decryptRange (engine/encrypted-body.ts): plaintext ranges of encrypted parts, through the one-package
// fast path (small objects, small ranges) and the block pipeline, against workers/dare.ts's encryptStream
// (itself checked against @noble/ciphers in dare.test.ts); tampering and truncation fail instead of yielding bytes.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { decryptRange } from '../engine/encrypted-body.ts';
import type { BlockOpener, LoanedBlock } from '../engine/file-reader.ts';
import { DareError, darePayloadBytesMax, encryptStream, randomDareNonce } from '../workers/dare.ts';
import { cipherBlockBytesFor, defaultBlockBytes } from '../workers/encrypt-stream.ts';
import { createBlockCipherPool } from '../workers/pool.ts';

async function collect(source: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of source) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

async function sealed(plaintext: Buffer, key: Buffer): Promise<Buffer> {
  async function* one(): AsyncGenerator<Uint8Array> {
    yield plaintext;
  }
  return collect(encryptStream(one(), key, randomDareNonce()));
}

/** A source over `ciphertext` that hands out 1000-byte chunks from one reused buffer, like the drive readers. */
function sourceOver(ciphertext: Buffer) {
  return async function* (_part: number, start: number, endExclusive: number): AsyncGenerator<Uint8Array> {
    const scratch = Buffer.alloc(1000);
    for (let at = start; at < endExclusive; at += scratch.length) {
      const n = Math.min(scratch.length, endExclusive - at);
      ciphertext.copy(scratch, 0, at, at + n);
      yield scratch.subarray(0, n);
    }
  };
}

const pool = createBlockCipherPool(0);

describe('decryptRange', () => {
  for (const size of [1, 4096, darePayloadBytesMax, darePayloadBytesMax + 1, 3 * darePayloadBytesMax + 5]) {
    it(`returns every range of a ${size}-byte object exactly`, async () => {
      const key = randomBytes(32);
      const plaintext = randomBytes(size);
      const ciphertext = await sealed(plaintext, key);
      const ranges: [number, number][] = [[0, size - 1], [0, 0], [size - 1, size - 1], [Math.floor(size / 3), Math.floor((2 * size) / 3)]];
      for (const [start, end] of ranges) {
        const got = await collect(decryptRange([size], [1], start, end, () => key, sourceOver(ciphertext), pool));
        assert.deepEqual(got, plaintext.subarray(start, end + 1), `range ${start}-${end}`);
      }
    });
  }

  it('a flipped byte in a one-package object fails with DareError', async () => {
    const key = randomBytes(32);
    const ciphertext = await sealed(randomBytes(4096), key);
    ciphertext[100]! ^= 1;
    await assert.rejects(collect(decryptRange([4096], [1], 0, 4095, () => key, sourceOver(ciphertext), pool)), DareError);
  });

  it('a stored part cut after a whole non-final package fails instead of passing as the end', async () => {
    const key = randomBytes(32);
    const size = 2 * darePayloadBytesMax;
    const ciphertext = await sealed(randomBytes(size), key);
    const firstPackage = ciphertext.subarray(0, ciphertext.length / 2);
    // The metadata says one package of plaintext, so the plan reads one package and expects it to be final.
    await assert.rejects(
      collect(decryptRange([darePayloadBytesMax], [1], 0, darePayloadBytesMax - 1, () => key, sourceOver(firstPackage), pool)),
      DareError,
    );
  });

  it('one-package reads held at once do not share memory, and a buffer given back never shows its old bytes', async () => {
    const key = randomBytes(32);
    const objects = await Promise.all(Array.from({ length: 10 }, async (_, i) => {
      const plaintext = randomBytes(500 + 900 * i);
      return { plaintext, ciphertext: await sealed(plaintext, key) };
    }));
    const readers = objects.map(({ plaintext, ciphertext }) =>
      decryptRange([plaintext.length], [1], 0, plaintext.length - 1, () => key, sourceOver(ciphertext), pool, undefined, () => ciphertext)[Symbol.asyncIterator]());
    const held: Buffer[] = [];
    for (const reader of readers) held.push((await reader.next()).value as Buffer);
    assert.equal(new Set(held.map((chunk) => chunk.buffer)).size, held.length, 'each held chunk has its own memory');
    held.forEach((chunk, i) => assert.ok(chunk.equals(objects[i]!.plaintext), `object ${i} intact while held`));
    for (const reader of readers) assert.equal((await reader.next()).done, true);
    // Reused buffers: ranges of all sizes come back exact, with nothing left from an earlier, longer object.
    for (const { plaintext, ciphertext } of [...objects].reverse()) {
      const got = await collect(decryptRange([plaintext.length], [1], 3, plaintext.length - 2, () => key, sourceOver(ciphertext), pool, undefined, () => ciphertext));
      assert.deepEqual(got, plaintext.subarray(3, plaintext.length - 1));
    }
  });

  it('the wrong key fails', async () => {
    const ciphertext = await sealed(randomBytes(10), randomBytes(32));
    await assert.rejects(collect(decryptRange([10], [1], 0, 9, () => randomBytes(32), sourceOver(ciphertext), pool)), DareError);
  });

  describe('whole blocks read into shared memory, opened inline or on a worker pool', () => {
    /**
     * Loaned 1 MiB cipher blocks in shared memory (like readBlocks), counting the ones not given back. Asked
     * for opened blocks: undefined (a source that cannot), or with `opens`, blocks opened by the opener's job.
     */
    function loanedOver(ciphertext: Buffer, outstanding: { count: number }, opens = false) {
      return (_part: number, start: number, endExclusive: number, blockBytes: number, opener?: BlockOpener): AsyncIterable<LoanedBlock> | undefined => {
        if (opener !== undefined && !opens) return undefined;
        return (async function* (): AsyncGenerator<LoanedBlock> {
          for (let at = start, index = 0; at < endExclusive; at += blockBytes, index++) {
            const bytes = Buffer.from(new SharedArrayBuffer(Math.min(blockBytes, endExclusive - at)));
            ciphertext.copy(bytes, 0, at, at + bytes.length);
            outstanding.count += 1;
            let released = false;
            if (opener === undefined) {
              yield { bytes, release: () => { if (!released) outstanding.count -= 1; released = true; } };
              continue;
            }
            const out = opener.takeOutput();
            let opened;
            try {
              ({ opened } = await opener.readAndOpen(-1, 0, 0, bytes, 0, bytes.length, index, out));
            } catch (error) {
              outstanding.count -= 1;
              throw error;
            }
            assert.ok(opened !== undefined);
            yield { bytes: out.subarray(0, opened.outBytes), opened, release: () => { if (!released) outstanding.count -= 1; released = true; opener.giveOutput(out); } };
          }
        })();
      };
    }
    const plaintext = randomBytes(3 * defaultBlockBytes + 5);
    const key = randomBytes(32);

    for (const [inline, opens] of [[true, false], [false, false], [false, true]] as const) {
      const how = opens ? 'opened by the read job (native/dare_open.c)' : inline ? 'inline' : '1 worker thread';
      it(`returns the same bytes for ranges across blocks (${how})`, async () => {
        const ciphertext = await sealed(plaintext, key);
        assert.equal(cipherBlockBytesFor(defaultBlockBytes) < ciphertext.length, true);
        const workers = createBlockCipherPool(1);
        try {
          for (const [start, end] of [[0, plaintext.length - 1], [defaultBlockBytes - 3, 2 * defaultBlockBytes + 7], [2 * defaultBlockBytes + 1, plaintext.length - 1]] as const) {
            const outstanding = { count: 0 };
            const got = await collect(decryptRange([plaintext.length], [1], start, end, () => key, sourceOver(ciphertext), workers, loanedOver(ciphertext, outstanding, opens), undefined, inline));
            assert.ok(got.equals(plaintext.subarray(start, end + 1)), `range ${start}-${end}`);
            assert.equal(outstanding.count, 0, 'every loaned block given back');
          }
        } finally {
          await workers.close();
        }
      });

      it(`rejects a tampered later block and gives every block back (${how})`, async () => {
        const ciphertext = await sealed(plaintext, key);
        ciphertext[cipherBlockBytesFor(defaultBlockBytes) * 2 + 100]! ^= 1;
        const workers = createBlockCipherPool(1);
        try {
          const outstanding = { count: 0 };
          await assert.rejects(collect(decryptRange([plaintext.length], [1], 0, plaintext.length - 1, () => key, sourceOver(ciphertext), workers, loanedOver(ciphertext, outstanding, opens), undefined, inline)), DareError);
          assert.equal(outstanding.count, 0);
        } finally {
          await workers.close();
        }
      });
    }
  });
});
