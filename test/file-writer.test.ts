// Staged data files (engine/file-writer.ts) over the aligned buffer pool (engine/aligned-buffers.ts), and
// stageBody (engine/stage.ts) on top of them: exact round trips with callers that reuse their buffers,
// O_DIRECT for whole 1 MiB buffers where the filesystem allows it, pool buffers returned on every exit,
// exclusive creation below an existing base directory, inline bodies and the size checks.

import { after, before, describe, it } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import fsSync from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { AlignedBufferPool, alignedBlockBuffers, alignedBufferBytes, alignedBuffers, holdWhileWriting, holdableBlockBuffers, isPageAligned } from '../engine/aligned-buffers.ts';
import { createBlockCipherPool } from '../workers/pool.ts';
import { StagedFileWriter, directWritesActive, fileWriteCounters, setDirectIo } from '../engine/file-writer.ts';
import { stageBody, type StageBodyOptions } from '../engine/stage.ts';
import { StorageError, type StorageErrorKind } from '../engine/types.ts';
import { openDescriptorsOf } from './helpers/fds.ts';

const KiB = 1024;
const MiB = 1024 * KiB;
const roundTripSizes = [0, 1, 4095, MiB - 1, MiB, MiB + 1, 2 * MiB, 3.5 * MiB + 17];
const chunkSizes = [1, 7, 65537, 300000, MiB + 3];

/** One random source, sliced for every test (random bytes are the slow part). */
const source = randomBytes(3.5 * MiB + 17);

let rootDir: string;
/** the base directory of the writers (a drive's tmp/): exists, and is probed for O_DIRECT once */
let baseDir: string;
let directSupported = false;
let fileCounter = 0;

/** Whether this filesystem accepts an O_DIRECT open, probed without the code under test. */
function probeDirect(dirPath: string): boolean {
  const oDirect = fsSync.constants.O_DIRECT as number | undefined;
  if (oDirect === undefined) return false; // not Linux
  const probePath = path.join(dirPath, 'odirect-probe');
  let fd: number;
  try {
    fd = fsSync.openSync(probePath, fsSync.constants.O_WRONLY | fsSync.constants.O_CREAT | oDirect);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EINVAL') return false;
    throw error;
  }
  fsSync.closeSync(fd);
  fsSync.unlinkSync(probePath);
  return true;
}

/** a fresh path in a not-yet-existing directory two levels below baseDir */
function newFilePath(): string {
  fileCounter++;
  return path.join(baseDir, `upload-${fileCounter}`, 'part', 'data');
}

/** Write `data` in chunks of cycling odd sizes from ONE scratch buffer, overwritten after each write resolves. */
async function writeInChunks(writer: StagedFileWriter, data: Buffer, sizes: readonly number[] = chunkSizes): Promise<void> {
  const scratch = Buffer.alloc(Math.max(...sizes));
  let offset = 0;
  for (let i = 0; offset < data.length; i++) {
    const size = Math.min(sizes[i % sizes.length]!, data.length - offset);
    data.copy(scratch, 0, offset, offset + size);
    await writer.write(scratch.subarray(0, size));
    scratch.fill(0xee, 0, size); // the writer must have copied it already
    offset += size;
    assert.equal(writer.sizeBytes, offset);
  }
}

function counterSnapshot(): { directBytes: number; bufferedBytes: number } {
  return { ...fileWriteCounters };
}

function counterDelta(before: { directBytes: number; bufferedBytes: number }): { directBytes: number; bufferedBytes: number } {
  return {
    directBytes: fileWriteCounters.directBytes - before.directBytes,
    bufferedBytes: fileWriteCounters.bufferedBytes - before.bufferedBytes,
  };
}

before(async () => {
  rootDir = await fs.mkdtemp(path.join(os.tmpdir(), 'coffer-file-writer-'));
  baseDir = path.join(rootDir, 'tmp');
  await fs.mkdir(baseDir);
  directSupported = probeDirect(baseDir);
});

after(async () => {
  await fs.rm(rootDir, { recursive: true, force: true });
});

describe('StagedFileWriter round trip', () => {
  for (const size of roundTripSizes) {
    it(`${size} bytes in reused chunks of ${chunkSizes.join('/')} bytes`, async (t: TestContext) => {
      const data = source.subarray(0, size);
      const filePath = newFilePath();
      const countersBefore = counterSnapshot();
      const inUseBefore = alignedBuffers.stats().inUse;

      const writer = await StagedFileWriter.create(baseDir, filePath);
      await writeInChunks(writer, data);
      await writer.finish();

      const written = await fs.readFile(filePath);
      assert.equal(written.length, size);
      assert.ok(written.equals(data), 'file bytes equal the input');
      assert.equal(alignedBuffers.stats().inUse, inUseBefore, 'pool buffers returned after finish()');

      const delta = counterDelta(countersBefore);
      assert.equal(delta.directBytes + delta.bufferedBytes, size, 'every byte counted once');
      if (!directSupported) {
        t.diagnostic('O_DIRECT refused by this filesystem: direct byte counts not checked');
        return;
      }
      const wholeBytes = Math.floor(size / MiB) * MiB;
      assert.equal(delta.directBytes, wholeBytes, 'whole 1 MiB buffers go to the disk with O_DIRECT');
      assert.equal(delta.bufferedBytes, size - wholeBytes, 'only the tail goes through the page cache');
    });
  }
});

describe('direct writes', () => {
  it('are active for the probed base directory and use page-aligned pool buffers', (t: TestContext) => {
    if (!directSupported) {
      t.skip('O_DIRECT refused by this filesystem');
      return;
    }
    assert.equal(directWritesActive(baseDir), true);
    assert.equal(alignedBufferBytes, MiB);
    const buffer = alignedBuffers.acquire();
    assert.ok(buffer !== undefined, 'the pool hands out buffers');
    try {
      assert.equal(buffer.length, MiB);
      assert.ok(alignedBuffers.owns(buffer));
      assert.ok(alignedBuffers.stats().slabs > 0);
    } finally {
      alignedBuffers.release(buffer);
    }
    assert.equal(alignedBuffers.owns(Buffer.alloc(MiB)), false, 'an ordinary buffer is not the pool\'s');
  });

  it('setDirectIo(false) sends every byte through the page cache, content still exact', async () => {
    setDirectIo(false);
    try {
      assert.equal(directWritesActive(baseDir), false);
      for (const size of [MiB, 2 * MiB, 3.5 * MiB + 17]) {
        const data = source.subarray(0, size);
        const filePath = newFilePath();
        const countersBefore = counterSnapshot();
        const writer = await StagedFileWriter.create(baseDir, filePath);
        await writeInChunks(writer, data);
        await writer.finish();
        assert.ok((await fs.readFile(filePath)).equals(data), `${size} bytes written exactly`);
        assert.deepEqual(counterDelta(countersBefore), { directBytes: 0, bufferedBytes: size });
      }
    } finally {
      setDirectIo(true);
    }
    assert.equal(directWritesActive(baseDir), directSupported, 'switched back on');
  });

  it('whole-buffer writes straight from the caller (1 MiB chunks) go direct as well', async (t: TestContext) => {
    const size = 3 * MiB;
    const data = source.subarray(0, size);
    const filePath = newFilePath();
    const countersBefore = counterSnapshot();
    const writer = await StagedFileWriter.create(baseDir, filePath);
    await writeInChunks(writer, data, [MiB]);
    await writer.finish();
    assert.ok((await fs.readFile(filePath)).equals(data));
    const delta = counterDelta(countersBefore);
    if (!directSupported) {
      t.diagnostic('O_DIRECT refused by this filesystem: direct byte counts not checked');
      assert.equal(delta.directBytes + delta.bufferedBytes, size);
      return;
    }
    assert.deepEqual(delta, { directBytes: size, bufferedBytes: 0 }, 'no tail left for the page cache');
  });

  it('sealed blocks in page-aligned block buffers go to the disk from the caller, no copy; others are copied', async (t: TestContext) => {
    const blockBytes = 1_049_088; // one DARE cipher block: 2,049 sectors, not a multiple of 4 KiB
    const blocks = alignedBlockBuffers(blockBytes);
    const first = blocks.acquire();
    const second = blocks.acquire();
    assert.ok(first !== undefined && second !== undefined, 'the block pool has buffers');
    const digestPool = createBlockCipherPool(1); // hashes the caller's shared memory in place on a worker
    try {
      assert.ok(isPageAligned(first.subarray(0, blockBytes)) && !isPageAligned(first.subarray(512)), 'alignment is recognised');
      const data = source.subarray(0, 3 * blockBytes + 999);
      const filePath = newFilePath();
      const countersBefore = counterSnapshot();
      const digest = digestPool.createDigest();
      const writer = await StagedFileWriter.create(baseDir, filePath, digest);
      // block, block (the caller reuses one buffer: write() must be done with it when it resolves), then a
      // page-aligned piece that is not whole sectors, and the tail.
      for (const [index, buffer] of [first, second, first].entries()) {
        buffer.set(data.subarray(index * blockBytes, (index + 1) * blockBytes));
        await writer.write(buffer.subarray(0, blockBytes));
        buffer.fill(0xee); // a writer still reading the caller's memory would now write garbage
      }
      second.set(data.subarray(3 * blockBytes));
      await writer.write(second.subarray(0, 999));
      const { md5Hex } = await writer.finish();
      assert.ok((await fs.readFile(filePath)).equals(data), 'exact content');
      assert.equal(md5Hex, createHash('md5').update(data).digest('hex'), 'the digest saw every byte in order');
      const delta = counterDelta(countersBefore);
      if (!directSupported) {
        t.diagnostic('O_DIRECT refused by this filesystem: direct byte counts not checked');
        assert.equal(delta.directBytes + delta.bufferedBytes, data.length);
        return;
      }
      assert.deepEqual(delta, { directBytes: 3 * blockBytes, bufferedBytes: 999 }, 'the blocks went direct from the caller, the tail buffered');
    } finally {
      blocks.release(first);
      blocks.release(second);
      await digestPool.close();
    }
  });

  it('a page-aligned buffer after staged bytes is copied (the file offset is no longer sector-aligned)', async (t: TestContext) => {
    const blockBytes = 1_049_088;
    const blocks = alignedBlockBuffers(blockBytes);
    const buffer = blocks.acquire();
    assert.ok(buffer !== undefined, 'the block pool has a buffer');
    try {
      const data = source.subarray(0, 7 + blockBytes);
      buffer.set(data.subarray(7, 7 + blockBytes));
      const filePath = newFilePath();
      const countersBefore = counterSnapshot();
      const writer = await StagedFileWriter.create(baseDir, filePath);
      await writer.write(data.subarray(0, 7));
      await writer.write(buffer.subarray(0, blockBytes));
      await writer.finish();
      assert.ok((await fs.readFile(filePath)).equals(data), 'exact content');
      const delta = counterDelta(countersBefore);
      if (!directSupported) {
        t.diagnostic('O_DIRECT refused by this filesystem: direct byte counts not checked');
        return;
      }
      // Copied into 1 MiB staging buffers: one whole buffer direct, the rest buffered.
      assert.deepEqual(delta, { directBytes: MiB, bufferedBytes: data.length - MiB }, 'copied through the staging buffers');
    } finally {
      blocks.release(buffer);
    }
  });
});

describe('holdable buffers (a writer still writing one the caller released)', () => {
  /** A promise settled from outside. */
  function gate(): { promise: Promise<void>; open(): void; fail(): void } {
    let open!: () => void;
    let fail!: () => void;
    const promise = new Promise<void>((resolve, reject) => {
      open = resolve;
      fail = () => reject(new Error('write failed'));
    });
    promise.catch(() => undefined);
    return { promise, open, fail };
  }

  it('a held buffer released meanwhile goes back to the free list only once its write settles', async () => {
    const pool = new AlignedBufferPool(64 * KiB, 1, true);
    const buffer = pool.acquire()!;
    const write = gate();
    assert.equal(pool.hold(buffer.subarray(4096, 8192), write.promise), true, 'a view inside the buffer holds it');
    assert.equal(pool.hold(buffer, gate().promise), false, 'one hold at a time');
    pool.release(buffer);
    assert.equal(pool.stats().inUse, 1, 'still the kernel\'s');
    const others = Array.from({ length: 15 }, () => pool.acquire()!);
    assert.ok(others.every((other) => other !== buffer), 'never handed out while held');
    assert.equal(pool.acquire(), undefined, 'the one slab is used up');
    write.open();
    await write.promise;
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(pool.acquire(), buffer, 'free again after the write');
    pool.release(buffer);
    // A hold that ends before the release leaves the release as it was; a failed write frees it too.
    const failing = gate();
    assert.equal(pool.hold(others[0]!, failing.promise), true);
    failing.fail();
    await new Promise((resolve) => setImmediate(resolve));
    for (const other of others) pool.release(other);
    assert.deepEqual(pool.stats(), { slabs: 1, free: 16, inUse: 0 });
  });

  it('only holdable pools hold, and only views inside one buffer', () => {
    const until = gate().promise;
    const plainPool = new AlignedBufferPool(64 * KiB, 1);
    const plainBuffer = plainPool.acquire()!;
    assert.equal(plainPool.hold(plainBuffer, until), false, 'a pool lending by reuse cannot hold');
    assert.equal(holdWhileWriting(plainBuffer, until), false);
    assert.equal(holdWhileWriting(Buffer.alloc(4096), until), false, 'ordinary memory');
    const pool = new AlignedBufferPool(64 * KiB, 1, true);
    const buffer = pool.acquire()!;
    const whole = Buffer.from(buffer.buffer, buffer.byteOffset, 2 * 64 * KiB);
    assert.equal(pool.hold(whole, until), false, 'a view across two buffers');
    plainPool.release(plainBuffer);
    pool.release(buffer);
  });

  it('a writer keeps writing a sealed block after write() returns; reusing released buffers cannot touch it', async (t: TestContext) => {
    const blockBytes = 1_049_088;
    const blocks = holdableBlockBuffers(blockBytes);
    const inUseBefore = blocks.stats().inUse;
    const data = source.subarray(0, 3 * blockBytes);
    const filePath = newFilePath();
    const countersBefore = counterSnapshot();
    const writer = await StagedFileWriter.create(baseDir, filePath);
    let heldAfterReturn = 0;
    for (let index = 0; index < 3; index++) {
      const buffer = blocks.acquire()!;
      buffer.set(data.subarray(index * blockBytes, (index + 1) * blockBytes));
      await writer.write(buffer.subarray(0, blockBytes));
      blocks.release(buffer); // as the encrypt stream does when the writer pulls the next block
      if (blocks.stats().inUse > inUseBefore) heldAfterReturn++;
      // Whoever takes a buffer now may overwrite it: never the one still being written.
      const reused = blocks.acquire()!;
      reused.fill(0xee);
      blocks.release(reused);
    }
    await writer.finish();
    assert.ok((await fs.readFile(filePath)).equals(data), 'exact content');
    assert.equal(blocks.stats().inUse, inUseBefore, 'every buffer back once the writes are done');
    if (!directSupported) {
      t.diagnostic('O_DIRECT refused by this filesystem: the background write not checked');
      return;
    }
    assert.deepEqual(counterDelta(countersBefore), { directBytes: 3 * blockBytes, bufferedBytes: 0 }, 'straight from the sealed blocks');
    assert.equal(heldAfterReturn, 3, 'write() returned while the block was still being written');
  });

  it('abort() with a background write in flight waits for it, and the buffer comes back', async () => {
    const blockBytes = 1_049_088;
    const blocks = holdableBlockBuffers(blockBytes);
    const inUseBefore = blocks.stats().inUse;
    const writer = await StagedFileWriter.create(baseDir, newFilePath());
    const buffer = blocks.acquire()!;
    buffer.fill(1);
    await writer.write(buffer.subarray(0, blockBytes));
    blocks.release(buffer);
    await writer.abort(); // closes the descriptors only once the write is done
    assert.equal(blocks.stats().inUse, inUseBefore, 'released once the write settled');
  });
});

describe('StagedFileWriter abort and pool buffers', () => {
  it('abort() mid-stream closes the file and returns both buffers to the pool', async () => {
    const filePath = newFilePath();
    const inUseBefore = alignedBuffers.stats().inUse;
    const writer = await StagedFileWriter.create(baseDir, filePath);
    const writtenBytes = 2.5 * MiB + 3;
    await writeInChunks(writer, source.subarray(0, writtenBytes));
    // One buffer being filled, one written (or just written): both are held until the writer closes.
    assert.equal(alignedBuffers.stats().inUse, inUseBefore + 2, 'the writer holds two pool buffers');
    const descriptors = openDescriptorsOf(filePath);
    if (descriptors !== undefined) assert.ok(descriptors >= 1, 'the file is open while writing');

    await writer.abort();
    assert.equal(alignedBuffers.stats().inUse, inUseBefore, 'pool buffers returned after abort()');
    if (descriptors !== undefined) assert.equal(openDescriptorsOf(filePath), 0, 'no descriptor left open on the file');
    // The partial file stays for the caller (it removes the staging directory); whole buffers may be in it.
    const stat = await fs.stat(filePath);
    assert.ok(stat.size <= writtenBytes);
    const partial = await fs.readFile(filePath);
    assert.ok(partial.equals(source.subarray(0, partial.length)), 'what reached the file is a prefix of the input');

    await writer.abort(); // a second abort is a no-op
    assert.equal(alignedBuffers.stats().inUse, inUseBefore);
  });

  it('abort() right after create() or after a few bytes, and after finish(), is harmless', async () => {
    const inUseBefore = alignedBuffers.stats().inUse;

    const untouchedPath = newFilePath();
    const untouched = await StagedFileWriter.create(baseDir, untouchedPath);
    await untouched.abort();
    assert.equal((await fs.stat(untouchedPath)).size, 0);
    assert.equal(openDescriptorsOf(untouchedPath) ?? 0, 0);

    const fewPath = newFilePath();
    const few = await StagedFileWriter.create(baseDir, fewPath);
    await few.write(Buffer.from('hello'));
    assert.equal(alignedBuffers.stats().inUse, inUseBefore + 1, 'one buffer being filled');
    await few.abort();
    assert.equal(alignedBuffers.stats().inUse, inUseBefore);
    assert.equal(openDescriptorsOf(fewPath) ?? 0, 0);

    const finishedPath = newFilePath();
    const finished = await StagedFileWriter.create(baseDir, finishedPath);
    await writeInChunks(finished, source.subarray(0, MiB + 5));
    await finished.finish();
    assert.equal(alignedBuffers.stats().inUse, inUseBefore);
    assert.equal(openDescriptorsOf(finishedPath) ?? 0, 0, 'finish() closed the file');
    await finished.abort(); // after finish: nothing left to close, the file stays complete
    assert.equal(alignedBuffers.stats().inUse, inUseBefore);
    assert.ok((await fs.readFile(finishedPath)).equals(source.subarray(0, MiB + 5)));
  });

  it('many writers in a row leave the pool where it was', async () => {
    const inUseBefore = alignedBuffers.stats().inUse;
    const writers = await Promise.all([0, 1, 2, 3].map(() => StagedFileWriter.create(baseDir, newFilePath())));
    await Promise.all(writers.map((writer) => writeInChunks(writer, source.subarray(0, 1.5 * MiB))));
    assert.equal(alignedBuffers.stats().inUse, inUseBefore + 8);
    await Promise.all(writers.map((writer, i) => (i % 2 === 0 ? writer.finish() : writer.abort())));
    assert.equal(alignedBuffers.stats().inUse, inUseBefore);
  });
  it('refuses writes after abort() and takes no pool buffers for them', async () => {
    const base = await fs.mkdtemp(path.join(os.tmpdir(), 'coffer-fw-closed-'));
    try {
      const before = alignedBuffers.stats().inUse;
      const writer = await StagedFileWriter.create(base, path.join(base, 'closed', 'data'));
      await writer.write(Buffer.alloc(10, 1));
      await writer.abort();
      await assert.rejects(writer.write(Buffer.alloc(2 * 1024 * 1024, 2)), /already closed/);
      assert.equal(alignedBuffers.stats().inUse, before);
    } finally {
      await fs.rm(base, { recursive: true, force: true });
    }
  });
});

describe('StagedFileWriter.create', () => {
  it('refuses an existing file and leaves it alone', async () => {
    const filePath = newFilePath();
    await fs.mkdir(path.dirname(filePath), { recursive: true });
    await fs.writeFile(filePath, 'precious');
    const inUseBefore = alignedBuffers.stats().inUse;
    await assert.rejects(StagedFileWriter.create(baseDir, filePath), { code: 'EEXIST' });
    assert.equal(await fs.readFile(filePath, 'utf8'), 'precious');
    assert.equal(alignedBuffers.stats().inUse, inUseBefore);

    // also a file this writer made itself
    const ownPath = newFilePath();
    const writer = await StagedFileWriter.create(baseDir, ownPath);
    await writer.finish();
    await assert.rejects(StagedFileWriter.create(baseDir, ownPath), { code: 'EEXIST' });
  });

  it('creates missing parent directories below an existing base', async () => {
    const filePath = path.join(baseDir, 'a', 'b', 'c', 'd', 'file');
    const writer = await StagedFileWriter.create(baseDir, filePath);
    await writer.write(Buffer.from('x'));
    await writer.finish();
    assert.equal(await fs.readFile(filePath, 'utf8'), 'x');
  });

  it('fails when the base directory does not exist, and never creates it', async () => {
    const missingBase = path.join(rootDir, 'vanished-drive', 'tmp');
    for (const filePath of [
      path.join(missingBase, 'file'),
      path.join(missingBase, 'upload', 'file'),
      path.join(missingBase, 'upload', 'part', 'file'),
    ]) {
      await assert.rejects(StagedFileWriter.create(missingBase, filePath), { code: 'ENOENT' }, filePath);
      await assert.rejects(fs.stat(missingBase), { code: 'ENOENT' }, `${missingBase} must not be created`);
      await assert.rejects(fs.stat(path.dirname(missingBase)), { code: 'ENOENT' });
    }
  });
});

/** Every chunk is a view of ONE scratch buffer, overwritten (0xEE) as soon as the consumer pulls again. */
function reusingBody(data: Buffer, sizes: readonly number[] = chunkSizes, pulls?: { count: number }): AsyncIterable<Uint8Array> {
  return {
    async *[Symbol.asyncIterator]() {
      const scratch = Buffer.alloc(Math.max(1, ...sizes));
      let offset = 0;
      for (let i = 0; offset < data.length; i++) {
        const size = Math.min(sizes[i % sizes.length]!, data.length - offset);
        data.copy(scratch, 0, offset, offset + size);
        if (pulls) pulls.count++;
        yield scratch.subarray(0, size);
        scratch.fill(0xee);
        offset += size;
      }
    },
  };
}

function md5Hex(data: Uint8Array): string {
  return createHash('md5').update(data).digest('hex');
}

async function rejectsKind(promise: Promise<unknown>, kind: StorageErrorKind): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof StorageError, `expected StorageError ${kind}, got ${String(error)}`);
    assert.equal(error.kind, kind, error.message);
    return true;
  });
}

async function exists(filePath: string): Promise<boolean> {
  try {
    await fs.stat(filePath);
    return true;
  } catch {
    return false;
  }
}

describe('stageBody', () => {
  const maxSizeBytes = 8 * MiB;
  const inlineMaxSizeBytes = 128 * KiB;

  function options(data: Buffer, extra: Partial<StageBodyOptions> = {}): StageBodyOptions {
    return { body: reusingBody(data), maxSizeBytes, filePath: newFilePath(), baseDir, ...extra };
  }

  it('keeps a body within the inline limit in memory and creates no file', async () => {
    for (const size of [0, 1, 7, 4095, inlineMaxSizeBytes - 1, inlineMaxSizeBytes]) {
      const data = source.subarray(0, size);
      for (const expectedSizeBytes of [size, undefined]) {
        const opts = options(data, { inlineMaxSizeBytes, expectedSizeBytes });
        const staged = await stageBody(opts);
        assert.ok(staged.inlineData !== undefined, `${size} bytes (announced ${expectedSizeBytes}) inline`);
        assert.ok(staged.inlineData.equals(data));
        assert.equal(staged.sizeBytes, size);
        assert.equal(staged.md5Hex, md5Hex(data));
        assert.equal(await exists(opts.filePath), false, 'no file');
        assert.equal(await exists(path.dirname(opts.filePath)), false, 'no directory either');
      }
    }
  });

  it('writes a larger body to filePath with its MD5 and size', async () => {
    const inUseBefore = alignedBuffers.stats().inUse;
    for (const size of [inlineMaxSizeBytes + 1, MiB, 3.5 * MiB + 17]) {
      const data = source.subarray(0, size);
      for (const expectedSizeBytes of [size, undefined]) {
        // Announced: written from the start. Unannounced: held in memory first, then flushed to the file.
        const opts = options(data, { inlineMaxSizeBytes, expectedSizeBytes });
        const staged = await stageBody(opts);
        assert.equal(staged.inlineData, undefined, `${size} bytes (announced ${expectedSizeBytes}) go to a file`);
        assert.equal(staged.sizeBytes, size);
        assert.equal(staged.md5Hex, md5Hex(data));
        assert.ok((await fs.readFile(opts.filePath)).equals(data), 'file bytes equal the body');
      }
    }
    assert.equal(alignedBuffers.stats().inUse, inUseBefore);
  });

  it('without an inline limit always writes a file, even for an empty body', async () => {
    for (const size of [0, 1, 1000]) {
      const data = source.subarray(0, size);
      const opts = options(data, { expectedSizeBytes: size });
      const staged = await stageBody(opts);
      assert.equal(staged.inlineData, undefined);
      assert.equal(staged.sizeBytes, size);
      assert.equal(staged.md5Hex, md5Hex(data));
      assert.ok((await fs.readFile(opts.filePath)).equals(data));
    }
  });

  it('computeMd5: false gives an empty md5Hex', async () => {
    const data = source.subarray(0, MiB + 1);
    const opts = options(data, { computeMd5: false, inlineMaxSizeBytes });
    const staged = await stageBody(opts);
    assert.equal(staged.md5Hex, '');
    assert.ok((await fs.readFile(opts.filePath)).equals(data));
    const inline = await stageBody(options(source.subarray(0, 10), { computeMd5: false, inlineMaxSizeBytes }));
    assert.equal(inline.md5Hex, '');
    assert.ok(inline.inlineData?.equals(source.subarray(0, 10)));
  });

  it('a body shorter than announced is IncompleteBody', async () => {
    const inUseBefore = alignedBuffers.stats().inUse;
    for (const size of [0, 100, 2 * MiB + 9]) {
      await rejectsKind(stageBody(options(source.subarray(0, size), { expectedSizeBytes: size + 1, inlineMaxSizeBytes })), 'IncompleteBody');
      await rejectsKind(stageBody(options(source.subarray(0, size), { expectedSizeBytes: size + 1 })), 'IncompleteBody');
    }
    assert.equal(alignedBuffers.stats().inUse, inUseBefore, 'pool buffers returned after a failed stage');
  });

  it('a body longer than announced is InvalidArgument, found without reading the whole body', async () => {
    const inUseBefore = alignedBuffers.stats().inUse;
    for (const [announced, size] of [[0, 1], [100, 101], [100, 3 * MiB], [2 * MiB, 3 * MiB]] as const) {
      const pulls = { count: 0 };
      const body = reusingBody(source.subarray(0, size), [1000], pulls);
      await rejectsKind(stageBody(options(source, { body, expectedSizeBytes: announced, inlineMaxSizeBytes })), 'InvalidArgument');
      assert.ok(pulls.count <= Math.ceil((announced + 1) / 1000), `stopped at the first excess chunk (${pulls.count} pulls)`);
    }
    assert.equal(alignedBuffers.stats().inUse, inUseBefore);
  });

  it('over maxSizeBytes is EntityTooLarge, announced or not', async () => {
    const inUseBefore = alignedBuffers.stats().inUse;
    const small = 2 * MiB;
    // announced too large: refused before the body is read at all
    const pulls = { count: 0 };
    const announcedOpts = options(source, { body: reusingBody(source, chunkSizes, pulls), expectedSizeBytes: small + 1, maxSizeBytes: small });
    await rejectsKind(stageBody(announcedOpts), 'EntityTooLarge');
    assert.equal(pulls.count, 0, 'the body was not read');
    assert.equal(await exists(announcedOpts.filePath), false);
    // unannounced: found while reading
    await rejectsKind(stageBody(options(source.subarray(0, small + 1), { maxSizeBytes: small })), 'EntityTooLarge');
    await rejectsKind(stageBody(options(source.subarray(0, small + 1), { maxSizeBytes: small, inlineMaxSizeBytes })), 'EntityTooLarge');
    // exactly the maximum is fine
    const exact = await stageBody(options(source.subarray(0, small), { maxSizeBytes: small, expectedSizeBytes: small }));
    assert.equal(exact.sizeBytes, small);
    assert.equal(alignedBuffers.stats().inUse, inUseBefore);
  });

  it('an invalid announced size is InvalidArgument', async () => {
    for (const expectedSizeBytes of [-1, 1.5, Number.NaN, 2 ** 53]) {
      await rejectsKind(stageBody(options(source.subarray(0, 10), { expectedSizeBytes, maxSizeBytes: 2 ** 60 })), 'InvalidArgument');
    }
  });

  it('a failing body iterator fails the stage and returns the pool buffers', async () => {
    const inUseBefore = alignedBuffers.stats().inUse;
    const failure = new Error('client went away');
    const body: AsyncIterable<Uint8Array> = {
      async *[Symbol.asyncIterator]() {
        yield* reusingBody(source.subarray(0, 2 * MiB + 100));
        throw failure;
      },
    };
    await assert.rejects(stageBody(options(source, { body, inlineMaxSizeBytes })), (error: unknown) => error === failure);
    assert.equal(alignedBuffers.stats().inUse, inUseBefore);
  });
});
