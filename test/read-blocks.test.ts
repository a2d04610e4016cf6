// readBlocks (engine/file-reader.ts): a file range as whole blocks, each read (O_DIRECT where possible, the
// page cache otherwise) into a shared-memory buffer of its own that stays valid until the consumer releases
// it; and decryptStreamPooled opening such loaned blocks with no copy. Exact bytes at every block boundary
// and alignment, the loan bound, every buffer back on every exit, a short file, tampering; and with a DARE
// opener, blocks opened by the job that read them (native/dare_open.c) with the same guarantees.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { blockBuffersInUse, readAheadBlocks, readBlocks, type LoanedBlock } from '../engine/file-reader.ts';
import { directIoEnabled, setDirectIo } from '../engine/file-writer.ts';
import { DareError, darePayloadBytesMax, randomDareNonce, sealPackages } from '../workers/dare.ts';
import { dareBlockOpener } from '../engine/encrypted-body.ts';
import { nativeOpenBlock } from '../workers/native-gcm.ts';
import { cipherBlockBytesFor, decryptStreamPooled, defaultBlockBytes } from '../workers/encrypt-stream.ts';
import { createBlockCipherPool, type BlockCipherPool } from '../workers/pool.ts';
import { openDescriptorsOf } from './helpers/fds.ts';

const KiB = 1024;
const MiB = 1024 * KiB;
const cipherBlockBytes = cipherBlockBytesFor(defaultBlockBytes); // 1,049,088: not a multiple of 4 KiB
const source = randomBytes(6 * MiB + 777);

class ShortFileError extends Error {
  constructor() {
    super('test file is shorter than its metadata says');
    this.name = 'ShortFileError';
  }
}

let rootDir: string;
let fileCounter = 0;
async function newFile(data: Uint8Array): Promise<string> {
  const filePath = path.join(rootDir, `blocks-${++fileCounter}`);
  await fs.writeFile(filePath, data);
  return filePath;
}

/** Reads every block (releasing each at once unless `hold`), checking each is shared memory. */
async function collect(handle: FileHandle, start: number, stop: number, blockBytes: number): Promise<{ data: Buffer; sizes: number[] }> {
  const pieces: Buffer[] = [];
  const sizes: number[] = [];
  for await (const block of readBlocks(handle, start, stop, blockBytes, () => new ShortFileError())) {
    assert.ok(block.bytes.buffer instanceof SharedArrayBuffer, 'a block lives in shared memory (a pool thread opens it in place)');
    pieces.push(Buffer.from(block.bytes));
    sizes.push(block.bytes.length);
    block.release();
    block.release(); // idempotent
  }
  return { data: Buffer.concat(pieces), sizes };
}

describe('readBlocks', () => {
  const directBefore = directIoEnabled();
  before(async () => {
    rootDir = await fs.mkdtemp(path.join(os.tmpdir(), 'coffer-read-blocks-'));
  });
  after(async () => {
    setDirectIo(directBefore);
    await fs.rm(rootDir, { recursive: true, force: true });
  });

  for (const direct of [true, false]) {
    it(`returns exact bytes in whole blocks for many ranges (${direct ? 'O_DIRECT' : 'page cache'})`, async () => {
      setDirectIo(direct);
      try {
        const size = source.length;
        const filePath = await newFile(source);
        const handle = await fs.open(filePath, 'r');
        try {
          const inUseBefore = blockBuffersInUse(cipherBlockBytes);
          const ranges: Array<[number, number]> = [
            [0, size], [1, size], [4095, size - 1], [cipherBlockBytes, size], [65568 * 3, 65568 * 40],
            [0, cipherBlockBytes], [0, cipherBlockBytes + 1], [size - 10, size], [12345, 12345 + 2 * cipherBlockBytes],
          ];
          for (const [start, stop] of ranges) {
            const { data, sizes } = await collect(handle, start, stop, cipherBlockBytes);
            assert.ok(data.equals(source.subarray(start, stop)), `[${start}, ${stop}): exact bytes`);
            assert.ok(sizes.slice(0, -1).every((bytes) => bytes === cipherBlockBytes), `[${start}, ${stop}): whole blocks but the last`);
            assert.equal(sizes.length, Math.ceil((stop - start) / cipherBlockBytes), `[${start}, ${stop}): block count`);
          }
          assert.equal(blockBuffersInUse(cipherBlockBytes), inUseBefore, 'every buffer given back');
        } finally {
          await handle.close();
        }
        assert.equal(openDescriptorsOf(filePath) ?? 0, 0, 'no descriptor left open');
      } finally {
        setDirectIo(directBefore);
      }
    });
  }

  it('lends at most loansMax buffers and resumes when one is released', async () => {
    const filePath = await newFile(source);
    const handle = await fs.open(filePath, 'r');
    try {
      const inUseBefore = blockBuffersInUse(cipherBlockBytes);
      const iterator = readBlocks(handle, 0, source.length, cipherBlockBytes, () => new ShortFileError(), 3)[Symbol.asyncIterator]();
      const held: LoanedBlock[] = [];
      for (let i = 0; i < 3; i++) {
        const next = await iterator.next();
        assert.equal(next.done, false, `block ${i}`);
        held.push(next.value as LoanedBlock);
      }
      assert.ok(blockBuffersInUse(cipherBlockBytes) - inUseBefore <= 3, `at most 3 buffers held (${blockBuffersInUse(cipherBlockBytes) - inUseBefore})`);
      const pulled: { fourth?: IteratorResult<LoanedBlock> } = {};
      const pulling = iterator.next().then((next) => { pulled.fourth = next; });
      await sleep(50);
      assert.equal(pulled.fourth, undefined, 'the fourth block waits while three are lent');
      held.shift()!.release();
      await pulling;
      const fourth = pulled.fourth as IteratorResult<LoanedBlock> | undefined; // set by the pull (TS narrowed it above)
      assert.ok(fourth !== undefined && fourth.done === false, 'a release lets the stream go on');
      assert.ok(fourth.value.bytes.equals(source.subarray(3 * cipherBlockBytes, 4 * cipherBlockBytes)), 'the fourth block is exact');
      held.push(fourth.value);
      await iterator.return?.(undefined);
      // Lent blocks stay valid after the stream ended, until released.
      assert.ok(held[0]!.bytes.equals(source.subarray(cipherBlockBytes, 2 * cipherBlockBytes)), 'a lent block survives the end of its stream');
      for (const block of held) block.release();
      assert.equal(blockBuffersInUse(cipherBlockBytes), inUseBefore, 'every buffer given back after return()');
    } finally {
      await handle.close();
    }
  });

  it(`reads ahead one block at first (the first byte waits for one read), one more per block handed over, up to ${readAheadBlocks}`, async () => {
    const large = Buffer.concat([source, source]); // 12 MiB: more blocks than read-ahead and loans together
    const filePath = await newFile(large);
    const handle = await fs.open(filePath, 'r');
    try {
      const inUseBefore = blockBuffersInUse(cipherBlockBytes);
      const iterator = readBlocks(handle, 0, large.length, cipherBlockBytes, () => new ShortFileError())[Symbol.asyncIterator]();
      const held: LoanedBlock[] = [];
      const inUse: number[] = [];
      for (let i = 0; i < 5; i++) {
        const next = await iterator.next();
        assert.equal(next.done, false);
        held.push(next.value as LoanedBlock);
        inUse.push(blockBuffersInUse(cipherBlockBytes) - inUseBefore);
      }
      // lent + reading: 1+2, 2+3, 3+4, then the 8-buffer loan cap: 4+4, 5+3
      assert.deepEqual(inUse, [3, 5, 7, 8, 8]);
      held.forEach((block, i) => assert.ok(block.bytes.equals(large.subarray(i * cipherBlockBytes, (i + 1) * cipherBlockBytes)), `block ${i}`));
      for (const block of held) block.release();
      await iterator.return?.(undefined);
      assert.equal(blockBuffersInUse(cipherBlockBytes), inUseBefore, 'every buffer given back');
      // A consumer that gives each block back before the next: 1 lent + 2, 3, 4, … reads, up to the read-ahead.
      const prompt = readBlocks(handle, 0, large.length, cipherBlockBytes, () => new ShortFileError())[Symbol.asyncIterator]();
      const promptInUse: number[] = [];
      let previous: LoanedBlock | undefined;
      for (let i = 0; i < readAheadBlocks + 2; i++) {
        const next = await prompt.next();
        assert.equal(next.done, false);
        previous?.release();
        previous = next.value as LoanedBlock;
        promptInUse.push(blockBuffersInUse(cipherBlockBytes) - inUseBefore);
      }
      previous?.release();
      await prompt.return?.(undefined);
      assert.deepEqual(promptInUse, Array.from({ length: readAheadBlocks + 2 }, (_, i) => 1 + Math.min(readAheadBlocks, i + 2)));
      assert.equal(blockBuffersInUse(cipherBlockBytes), inUseBefore, 'every buffer given back');
    } finally {
      await handle.close();
    }
  });

  it('gives buffers back when the consumer stops early or throws, and reports a short file', async () => {
    const filePath = await newFile(source.subarray(0, 3 * MiB));
    const handle = await fs.open(filePath, 'r');
    try {
      const inUseBefore = blockBuffersInUse(cipherBlockBytes);
      for await (const block of readBlocks(handle, 0, 3 * MiB, cipherBlockBytes, () => new ShortFileError())) {
        block.release();
        break;
      }
      assert.equal(blockBuffersInUse(cipherBlockBytes), inUseBefore, 'given back after break');
      await assert.rejects(
        (async () => {
          for await (const block of readBlocks(handle, 0, 3 * MiB, cipherBlockBytes, () => new ShortFileError())) {
            block.release();
            throw new Error('consumer failed');
          }
        })(),
        /consumer failed/,
      );
      assert.equal(blockBuffersInUse(cipherBlockBytes), inUseBefore, 'given back after a consumer error');
      for (const direct of [true, false]) {
        setDirectIo(direct);
        try {
          const got: number[] = [];
          await assert.rejects(
            (async () => {
              for await (const block of readBlocks(handle, 0, 3 * MiB + 5000, cipherBlockBytes, () => new ShortFileError())) {
                got.push(block.bytes.length);
                block.release();
              }
            })(),
            ShortFileError,
          );
          assert.deepEqual(got, [cipherBlockBytes, cipherBlockBytes], `${direct ? 'direct' : 'buffered'}: whole blocks before the short one`);
        } finally {
          setDirectIo(directBefore);
        }
      }
      assert.equal(blockBuffersInUse(cipherBlockBytes), inUseBefore, 'given back after a short file');
    } finally {
      await handle.close();
    }
  });
});

describe('decryptStreamPooled over loaned blocks', () => {
  let pool: BlockCipherPool;
  before(() => {
    pool = createBlockCipherPool(2);
  });
  after(async () => {
    await pool.close();
  });

  const key = randomBytes(32);
  const plaintext = randomBytes(5 * MiB + 3 * darePayloadBytesMax + 99);
  const sealed = sealPackages(key, randomDareNonce(), 0, plaintext, true);

  /** Loaned blocks over `ciphertext` in shared memory, counting releases. */
  function loan(ciphertext: Buffer): { loaned: AsyncIterable<LoanedBlock>; released: () => number; blocks: () => number } {
    let released = 0;
    let blocks = 0;
    async function* generate(): AsyncGenerator<LoanedBlock> {
      for (let offset = 0; offset < ciphertext.length; offset += cipherBlockBytes) {
        const piece = ciphertext.subarray(offset, offset + cipherBlockBytes);
        const shared = Buffer.from(new SharedArrayBuffer(piece.length + 64), 32, piece.length); // not at offset 0
        piece.copy(shared);
        blocks++;
        let done = false;
        yield { bytes: shared, release: () => { if (!done) { done = true; released++; } } };
      }
    }
    return { loaned: generate(), released: () => released, blocks: () => blocks };
  }

  it('opens them in order, and releases every block once the pool is done with it', async () => {
    const { loaned, released, blocks } = loan(sealed);
    const pieces: Buffer[] = [];
    for await (const piece of decryptStreamPooled({ loaned }, key, 0, pool, { recycle: true })) pieces.push(Buffer.from(piece));
    assert.ok(Buffer.concat(pieces).equals(plaintext), 'the plaintext');
    assert.equal(released(), blocks(), `every block released (${released()} of ${blocks()})`);
  });

  /** Loaned blocks of `sealed` whose reads after the first wait until open() is called, counting releases. */
  function slowAfterFirst(): { loaned: AsyncIterable<LoanedBlock>; open: () => void; taken: () => number; released: () => number } {
    let open!: () => void;
    const gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    let taken = 0;
    let released = 0;
    async function* generate(): AsyncGenerator<LoanedBlock> {
      for (let offset = 0; offset < sealed.length; offset += cipherBlockBytes) {
        if (offset > 0) await gate; // the disk is slow for every read after the first
        const piece = sealed.subarray(offset, offset + cipherBlockBytes);
        const shared = Buffer.from(new SharedArrayBuffer(piece.length));
        piece.copy(shared);
        taken++;
        yield { bytes: shared, release: () => void released++ };
      }
    }
    return { loaned: generate(), open, taken: () => taken, released: () => released };
  }

  it('hands out the first block once it is open, before the next read is in (the time to first byte)', async () => {
    const slow = slowAfterFirst();
    const pieces = decryptStreamPooled({ loaned: slow.loaned }, key, 0, pool, { recycle: true });
    const first = await Promise.race([pieces.next(), sleep(5_000).then(() => 'stuck' as const)]);
    if (first === 'stuck' || first.done === true) assert.fail('the first block waited for the second read');
    assert.ok(first.value.equals(plaintext.subarray(0, defaultBlockBytes)), 'the first block\'s plaintext');
    assert.equal(slow.taken(), 1, 'only the first read was in');
    const collected = [Buffer.from(first.value)];
    slow.open();
    for await (const piece of pieces) collected.push(Buffer.from(piece));
    assert.ok(Buffer.concat(collected).equals(plaintext), 'the rest in order after it');
    assert.equal(slow.released(), slow.taken(), 'every block released');
    assert.equal(slow.taken(), Math.ceil(sealed.length / cipherBlockBytes));
  });

  it('a consumer that stops after the first block, with the next read still out, gets that block released too', async () => {
    const slow = slowAfterFirst();
    const pieces = decryptStreamPooled({ loaned: slow.loaned }, key, 0, pool, { recycle: true });
    const first = await pieces.next();
    assert.equal(first.done, false);
    const stopping = pieces.return(undefined); // waits for the raced read
    slow.open();
    await stopping;
    assert.equal(slow.taken(), 2, 'the raced read came in');
    assert.equal(slow.released(), 2, 'and both blocks were released');
  });

  it('fails on a tampered block and still releases every block it took, also when the consumer stops early', async () => {
    const tampered = Buffer.from(sealed);
    tampered[3 * cipherBlockBytes + 100]! ^= 1;
    const first = loan(tampered);
    await assert.rejects(
      (async () => {
        for await (const piece of decryptStreamPooled({ loaned: first.loaned }, key, 0, pool, { recycle: true })) void piece;
      })(),
      /authentication failed/,
    );
    assert.equal(first.released(), first.blocks(), `tampered: every block taken was released (${first.released()} of ${first.blocks()})`);
    const second = loan(sealed);
    for await (const piece of decryptStreamPooled({ loaned: second.loaned }, key, 0, pool, { recycle: true })) {
      void piece;
      break;
    }
    assert.equal(second.released(), second.blocks(), `early stop: every block taken was released (${second.released()} of ${second.blocks()})`);
  });
});

describe('readBlocks with a DARE opener (each block opened by the job that reads it)', { skip: nativeOpenBlock === undefined ? 'the native AES-GCM addon is not loaded' : false }, () => {
  let dir: string;
  const directBefore = directIoEnabled();
  const key = randomBytes(32);
  const plaintext = randomBytes(5 * MiB + 3 * darePayloadBytesMax + 99);
  const sealed = sealPackages(key, randomDareNonce(), 0, plaintext, true);
  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'coffer-read-opened-'));
  });
  after(async () => {
    setDirectIo(directBefore);
    await fs.rm(dir, { recursive: true, force: true });
  });

  /** The opened blocks of [start, stop) of the file (from sequence start / cipherBlockBytes × 16). */
  async function openedBlocks(filePath: string, start: number, stop: number): Promise<{ data: Buffer; finals: boolean[]; nonces: Set<string> }> {
    const handle = await fs.open(filePath, 'r');
    try {
      const pieces: Buffer[] = [];
      const finals: boolean[] = [];
      const nonces = new Set<string>();
      const opener = dareBlockOpener(key, (start / cipherBlockBytes) * 16, cipherBlockBytes);
      for await (const block of readBlocks(handle, start, stop, cipherBlockBytes, () => new ShortFileError(), 8, opener)) {
        assert.ok(block.opened !== undefined, 'every block is opened');
        pieces.push(Buffer.from(block.bytes));
        finals.push(block.opened.final);
        nonces.add(block.opened.nonce.toString('hex'));
        block.release();
      }
      return { data: Buffer.concat(pieces), finals, nonces };
    } finally {
      await handle.close();
    }
  }

  for (const direct of [true, false]) {
    it(`returns the plaintext of whole streams and of streams from a later block (${direct ? 'O_DIRECT' : 'page cache'})`, async () => {
      setDirectIo(direct);
      try {
        const filePath = await newFileIn(dir, sealed);
        const inUseBefore = blockBuffersInUse(cipherBlockBytes);
        const whole = await openedBlocks(filePath, 0, sealed.length);
        assert.ok(whole.data.equals(plaintext), 'the plaintext');
        assert.deepEqual(whole.finals, [false, false, false, false, false, true], 'only the last block is final');
        assert.equal(whole.nonces.size, 1, 'one stream nonce');
        const later = await openedBlocks(filePath, 2 * cipherBlockBytes, sealed.length);
        assert.ok(later.data.equals(plaintext.subarray(2 * defaultBlockBytes)), 'from block 2');
        assert.equal(blockBuffersInUse(cipherBlockBytes), inUseBefore, 'every read buffer given back');
      } finally {
        setDirectIo(directBefore);
      }
    });

    it(`fails on a tampered block and on a short file, giving every buffer back (${direct ? 'O_DIRECT' : 'page cache'})`, async () => {
      setDirectIo(direct);
      try {
        const inUseBefore = blockBuffersInUse(cipherBlockBytes);
        const tampered = Buffer.from(sealed);
        tampered[3 * cipherBlockBytes + 100]! ^= 1;
        const tamperedPath = await newFileIn(dir, tampered);
        await assert.rejects(openedBlocks(tamperedPath, 0, tampered.length), (error: unknown) => error instanceof DareError && error.reason === 'authentication failed');
        const shortPath = await newFileIn(dir, sealed.subarray(0, sealed.length - 10));
        await assert.rejects(openedBlocks(shortPath, 0, sealed.length), ShortFileError);
        assert.equal(blockBuffersInUse(cipherBlockBytes), inUseBefore, 'every read buffer given back');
      } finally {
        setDirectIo(directBefore);
      }
    });
  }
});

let openedFileCounter = 0;
async function newFileIn(dir: string, data: Uint8Array): Promise<string> {
  const filePath = path.join(dir, `sealed-${++openedFileCounter}`);
  await fs.writeFile(filePath, data);
  return filePath;
}
