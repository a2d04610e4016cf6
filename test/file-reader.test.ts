// Plain reads of part files (engine/reader.ts): readBlocks (engine/file-reader.ts) in 1 MiB blocks, each lent
// until the next pull, read with O_DIRECT into page-aligned pool buffers where the filesystem allows and through
// the page cache otherwise. Exact bytes for many ranges of many file sizes, chunks of at most 1 MiB that stay
// valid until the next pull, the caller's error for a file shorter than its metadata, pool buffers and the
// direct descriptor given back on every exit, unlinked and replaced files, an empty pool, concurrency.

import { after, before, describe, it } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fsSync from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { alignedBlockBuffers } from '../engine/aligned-buffers.ts';
import { blockBuffersInUse, readAheadBlocks, readBlocks } from '../engine/file-reader.ts';
import { directIoEnabled, setDirectIo } from '../engine/file-writer.ts';
import { openDescriptorsOf } from './helpers/fds.ts';

const KiB = 1024;
const MiB = 1024 * KiB;
const fileSizes = [0, 4095, 4096, MiB - 1, MiB, MiB + 1, 2 * MiB + 4097, 5 * MiB + 123];

/** One random source, sliced for every file (random bytes are the slow part). */
const source = randomBytes(5 * MiB + 123);

let rootDir: string;
let directSupported = false;
let fileCounter = 0;

/** The error the readers' `shortFile` callbacks build: recognisable by class and by message. */
class ShortFileError extends Error {
  constructor(what: string) {
    super(`test file ${what} is shorter than its metadata says`);
    this.name = 'ShortFileError';
  }
}

/**
 * Whether the temp filesystem accepts what readBlocks does — reopening an open file through /proc/self/fd
 * with O_DIRECT — probed without the code under test.
 */
function probeDirect(dirPath: string): boolean {
  const oDirect = fsSync.constants.O_DIRECT as number | undefined;
  if (oDirect === undefined) return false; // not Linux
  const probePath = path.join(dirPath, 'odirect-probe');
  fsSync.writeFileSync(probePath, Buffer.alloc(8192, 1));
  const fd = fsSync.openSync(probePath, 'r');
  try {
    const directFd = fsSync.openSync(`/proc/self/fd/${fd}`, fsSync.constants.O_RDONLY | oDirect);
    fsSync.closeSync(directFd);
    return true;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EINVAL' || code === 'ENOENT') return false;
    throw error;
  } finally {
    fsSync.closeSync(fd);
    fsSync.unlinkSync(probePath);
  }
}

async function newFile(data: Uint8Array): Promise<string> {
  fileCounter++;
  const filePath = path.join(rootDir, `part-${fileCounter}`);
  await fs.writeFile(filePath, data);
  return filePath;
}

/** 1 MiB blocks' pool (readBlocks takes its buffers there). */
const blockPool = alignedBlockBuffers(MiB);

/** What DriveStoredBytes does with readBlocks: each block yielded, then given back when the next is pulled. */
async function* chunksOf(handle: FileHandle, position: number, stopPosition: number, shortFile: () => Error): AsyncGenerator<Buffer> {
  for await (const block of readBlocks(handle, position, stopPosition, MiB, shortFile)) {
    try {
      yield block.bytes;
    } finally {
      block.release();
    }
  }
}

interface ReadResult {
  /** the concatenation of copies taken before each next pull */
  readonly data: Buffer;
  readonly chunkLengths: number[];
  /** the error the generator threw, if any */
  readonly error: unknown;
}

interface ReadOptions {
  /** Wait this long holding each chunk before copying it, so the read-ahead has surely finished meanwhile. */
  readonly holdMs?: number;
  /** Called with every chunk as it arrives (before the copy). */
  readonly onChunk?: (chunk: Buffer) => void;
}

/** Read [position, stopPosition) of the open `handle` through chunksOf, copying each chunk before the next pull. */
async function readRange(handle: FileHandle, position: number, stopPosition: number, options: ReadOptions = {}): Promise<ReadResult> {
  const shortFile = () => new ShortFileError(`${position}-${stopPosition}`);
  const copies: Buffer[] = [];
  const chunkLengths: number[] = [];
  let error: unknown;
  try {
    for await (const chunk of chunksOf(handle, position, stopPosition, shortFile)) {
      options.onChunk?.(chunk);
      chunkLengths.push(chunk.length);
      if (options.holdMs !== undefined) {
        const early = Buffer.from(chunk);
        await sleep(options.holdMs);
        assert.ok(chunk.equals(early), 'a chunk is not overwritten before the next pull, even when held a while');
      }
      copies.push(Buffer.from(chunk));
    }
  } catch (caught) {
    error = caught;
  }
  return { data: Buffer.concat(copies), chunkLengths, error };
}

/** Open `filePath`, read the range, close; checks the pool and the descriptors are back where they were. */
async function readFileRange(filePath: string, position: number, stopPosition: number, options?: ReadOptions): Promise<ReadResult> {
  const inUseBefore = blockBuffersInUse(MiB);
  const handle = await fs.open(filePath, 'r');
  let result: ReadResult;
  try {
    result = await readRange(handle, position, stopPosition, options);
    assert.equal(blockBuffersInUse(MiB), inUseBefore, `pool buffers returned after [${position}, ${stopPosition})`);
    const descriptors = openDescriptorsOf(filePath);
    if (descriptors !== undefined) assert.equal(descriptors, 1, 'only the caller\'s handle is left open (direct descriptor closed)');
  } finally {
    await handle.close();
  }
  return result;
}

function assertChunkSizes(result: ReadResult, label: string): void {
  for (const length of result.chunkLengths) {
    assert.ok(length > 0 && length <= MiB, `${label}: chunk of ${length} bytes (want 1 B … 1 MiB)`);
  }
}

/** The ranges tested on a file of `size` bytes: every one that fits, without duplicates. */
function rangesFor(size: number): Array<[number, number]> {
  const candidates: Array<[number, number]> = [
    [0, size], // whole file
    [1, size - 1], // unaligned start and stop
    [4097, size - 3],
    [4096, size], // aligned start, to the end
    [3, size], // unaligned start, to the end
    [0, size - 1], // to one byte before the end
    [size - 1, size], // the last byte
    [0, 1],
    [0, 4096],
    [4095, 4097], // across a 4 KiB boundary
    [7, 7], // empty ranges
    [size, size],
    [10, MiB - 10], // inside the first 1 MiB chunk
    [MiB + 5, MiB + 1000], // inside the second
    [MiB - 100, MiB + 100], // across a 1 MiB boundary, short
    [MiB - 1, MiB + 1],
    [1, MiB], // just under 1 MiB: buffered
    [0, MiB], // exactly 1 MiB, aligned
    [MiB, 2 * MiB],
    [3, MiB + 3], // exactly 1 MiB, unaligned: two direct chunks
    [MiB - 4097, 2 * MiB + 1], // across a boundary, unaligned both ends
    [4095, 2 * MiB + 4097],
    [2 * MiB + 1, size], // a tail starting mid-chunk
    [4097, 4 * MiB + 4097],
    [MiB + 4096, 5 * MiB + 4096], // aligned 4 MiB window, not at 1 MiB boundaries
  ];
  const seen = new Set<string>();
  const ranges: Array<[number, number]> = [];
  for (const [start, stop] of candidates) {
    if (start < 0 || stop < start || stop > size) continue;
    const key = `${start}-${stop}`;
    if (seen.has(key)) continue;
    seen.add(key);
    ranges.push([start, stop]);
  }
  return ranges;
}

before(async () => {
  rootDir = await fs.mkdtemp(path.join(os.tmpdir(), 'coffer-file-reader-'));
  directSupported = probeDirect(rootDir);
  assert.equal(directIoEnabled(), true, 'O_DIRECT is switched on by default');
});

after(async () => {
  await fs.rm(rootDir, { recursive: true, force: true });
});

describe('plain part-file reads: exact bytes', () => {
  for (const size of fileSizes) {
    it(`file of ${size} bytes: ${rangesFor(size).length} ranges`, async (t: TestContext) => {
      const data = source.subarray(0, size);
      const filePath = await newFile(data);
      let largeRanges = 0;
      for (const [start, stop] of rangesFor(size)) {
        const label = `${size} B file, [${start}, ${stop})`;
        const result = await readFileRange(filePath, start, stop);
        assert.equal(result.error, undefined, `${label}: ${String(result.error)}`);
        assert.equal(result.data.length, stop - start, `${label}: length`);
        assert.ok(result.data.equals(data.subarray(start, stop)), `${label}: exact bytes`);
        assertChunkSizes(result, label);
        // Whole 1 MiB blocks from `start` on, the last one shorter.
        assert.equal(result.chunkLengths.length, Math.ceil((stop - start) / MiB), `${label}: one chunk per 1 MiB block`);
        if (stop - start >= MiB) largeRanges++;
      }
      t.diagnostic(`${largeRanges} ranges of 1 MiB or more (${directSupported ? 'O_DIRECT' : 'O_DIRECT refused here: page cache'})`);
    });
  }
});

describe('plain part-file reads: the consumer contract', () => {
  it('a chunk held for a while (read-ahead done meanwhile) is still intact until the next pull', async () => {
    const size = 5 * MiB + 123;
    const data = source.subarray(0, size);
    const filePath = await newFile(data);
    for (const [start, stop] of [[0, size], [4097, size - 3], [MiB - 1, 4 * MiB + 1]] as const) {
      const result = await readFileRange(filePath, start, stop, { holdMs: 5 });
      assert.equal(result.error, undefined);
      assert.ok(result.data.equals(data.subarray(start, stop)), `[${start}, ${stop}) exact`);
      assertChunkSizes(result, `[${start}, ${stop})`);
    }
  });

  it(`holds at most ${readAheadBlocks} blocks read ahead plus the one lent`, async () => {
    const size = 5 * MiB + 123;
    const filePath = await newFile(source.subarray(0, size));
    const inUseBefore = blockBuffersInUse(MiB);
    let maxInUse = inUseBefore;
    const result = await readFileRange(filePath, 1, size, {
      holdMs: 2, // the read-ahead catches up while a chunk is held
      onChunk: () => {
        maxInUse = Math.max(maxInUse, blockBuffersInUse(MiB));
      },
    });
    assert.equal(result.error, undefined);
    assert.ok(result.data.equals(source.subarray(1, size)), 'exact bytes');
    assert.ok(maxInUse - inUseBefore <= readAheadBlocks + 1, `at most ${readAheadBlocks + 1} buffers (saw ${maxInUse - inUseBefore})`);
    assert.ok(maxInUse - inUseBefore >= 2, 'some read ahead');
  });
});

describe('plain part-file reads of a file shorter than its metadata', () => {
  const cases: Array<{ size: number; start: number; stop: (size: number) => number; what: string }> = [];
  for (const size of [MiB, MiB + 1, 2 * MiB + 4097, 3 * MiB - 5]) {
    cases.push({ size, start: 0, stop: (s) => s + 1, what: 'one byte past EOF' });
    cases.push({ size, start: 3, stop: (s) => s + MiB, what: '1 MiB past EOF' });
    cases.push({ size, start: size - 4096 - 7, stop: (s) => s + MiB, what: 'a range starting just before EOF' });
    cases.push({ size, start: size + 10, stop: (s) => s + 10 + MiB, what: 'a range entirely past EOF' });
  }

  for (const { size, start, stop, what } of cases) {
    it(`${size} B file, [${start}, ${stop(size)}): ${what}`, async () => {
      const data = source.subarray(0, size);
      const filePath = await newFile(data);
      const result = await readFileRange(filePath, start, stop(size)); // checks pool and descriptors too
      assert.ok(result.error instanceof ShortFileError, `the shortFile error, got ${String(result.error)}`);
      assert.match(result.error.message, /shorter than its metadata says/);
      // What was handed out before the error is exact (a prefix of the file from `start`).
      assert.ok(result.data.length < stop(size) - start, 'fewer bytes than asked before the error');
      assert.ok(result.data.equals(data.subarray(start, start + result.data.length)), 'bytes before the error are exact');
    });
  }
});

describe('plain part-file reads: pool buffers and descriptors', () => {
  it('are given back when the consumer stops after the first chunk (break), or throws, or returns', async () => {
    const size = 5 * MiB + 123;
    const filePath = await newFile(source.subarray(0, size));
    const inUseBefore = blockBuffersInUse(MiB);
    const handle = await fs.open(filePath, 'r');
    try {
      const shortFile = () => new ShortFileError('early stop');
      for (const [start, stop] of [[0, size], [4097, size - 3], [0, MiB + 1], [3, MiB + 3]] as const) {
        // break after the first chunk, while the read-ahead of the second is in flight
        let chunks = 0;
        for await (const chunk of chunksOf(handle, start, stop, shortFile)) {
          chunks++;
          assert.ok(blockBuffersInUse(MiB) > inUseBefore, 'pool buffers in use while reading');
          assert.ok(chunk.equals(source.subarray(start, start + chunk.length)), 'first chunk exact');
          break;
        }
        assert.equal(chunks, 1);
        assert.equal(blockBuffersInUse(MiB), inUseBefore, `[${start}, ${stop}): returned after break`);
        assert.equal(openDescriptorsOf(filePath) ?? 1, 1, 'direct descriptor closed after break');

        // the consumer throws
        const failure = new Error('consumer failed');
        await assert.rejects(
          (async () => {
            for await (const _chunk of chunksOf(handle, start, stop, shortFile)) {
              throw failure;
            }
          })(),
          (error: unknown) => error === failure,
        );
        assert.equal(blockBuffersInUse(MiB), inUseBefore, `[${start}, ${stop}): returned after a consumer error`);

        // explicit return() after one next(), and return() before any next()
        const generator = chunksOf(handle, start, stop, shortFile);
        const first = await generator.next();
        assert.equal(first.done, false);
        assert.deepEqual(await generator.return(undefined), { done: true, value: undefined });
        assert.equal(blockBuffersInUse(MiB), inUseBefore, `[${start}, ${stop}): returned after return()`);
        const untouched = chunksOf(handle, start, stop, shortFile);
        await untouched.return(undefined);
        assert.equal(blockBuffersInUse(MiB), inUseBefore, 'a generator never pulled takes nothing');
        assert.equal(openDescriptorsOf(filePath) ?? 1, 1);
      }
    } finally {
      await handle.close();
    }
  });

  it('buffers given back after an early stop are not written into afterwards (read-ahead settled first)', async (t: TestContext) => {
    if (!directSupported) {
      t.skip('O_DIRECT refused on the temp filesystem');
      return;
    }
    const size = 5 * MiB + 123;
    const filePath = await newFile(source.subarray(0, size));
    const handle = await fs.open(filePath, 'r');
    const shortFile = () => new ShortFileError('early stop');
    try {
      for (let round = 0; round < 5; round++) {
        for await (const _chunk of chunksOf(handle, 0, size, shortFile)) break;
        // The pool's free list hands the buffers straight out again: mark them, give the kernel time.
        const reused = [blockPool.acquire(), blockPool.acquire(), blockPool.acquire()];
        try {
          for (const buffer of reused) buffer?.fill(0xab);
          await sleep(20);
          for (const buffer of reused) {
            assert.ok(buffer === undefined || buffer.every((byte) => byte === 0xab), 'no read landed in a buffer after it went back');
          }
        } finally {
          for (const buffer of reused) if (buffer) blockPool.release(buffer);
        }
      }
    } finally {
      await handle.close();
    }
  });

  it('an empty pool still reads exact bytes (into buffers of its own) and takes nothing from it', async () => {
    const size = 2 * MiB + 4097;
    const data = source.subarray(0, size);
    const filePath = await newFile(data);
    const taken: Buffer[] = [];
    const inUseBefore = blockBuffersInUse(MiB);
    try {
      // Drain the pool (it is bounded).
      for (let i = 0; i < 2000; i++) {
        const buffer = blockPool.acquire();
        if (buffer === undefined) break;
        taken.push(buffer);
      }
      assert.ok(taken.length < 2000, 'the pool is bounded');
      const emptyInUse = blockBuffersInUse(MiB);
      const result = await readFileRange(filePath, 1, size);
      assert.equal(result.error, undefined);
      assert.ok(result.data.equals(data.subarray(1, size)), 'exact bytes without pool buffers');
      assert.equal(blockBuffersInUse(MiB), emptyInUse);
    } finally {
      for (const buffer of taken) blockPool.release(buffer);
    }
    assert.equal(blockBuffersInUse(MiB), inUseBefore);
  });
});

describe('plain part-file reads and the file behind the handle', () => {
  it('reads a file unlinked after it was opened completely', async (t: TestContext) => {
    const size = 2 * MiB + 4097;
    const data = source.subarray(0, size);
    const filePath = await newFile(data);
    const inUseBefore = blockBuffersInUse(MiB);
    const handle = await fs.open(filePath, 'r');
    try {
      await fs.unlink(filePath);
      await assert.rejects(fs.stat(filePath), { code: 'ENOENT' });
      for (const [start, stop] of [[0, size], [4097, size - 3]] as const) {
        const result = await readRange(handle, start, stop);
        assert.equal(result.error, undefined, String(result.error));
        assert.ok(result.data.equals(data.subarray(start, stop)), `[${start}, ${stop}) of the unlinked file exact`);
        if (!directSupported) t.diagnostic('O_DIRECT refused: read through the page cache');
        assert.equal(blockBuffersInUse(MiB), inUseBefore);
        assert.equal(openDescriptorsOf(filePath) ?? 1, 1, 'only the caller\'s handle on the deleted file');
      }
    } finally {
      await handle.close();
    }
  });

  it('reads the version it opened when another file is renamed over the path', async () => {
    const size = 3 * MiB + 11;
    const oldData = source.subarray(0, size);
    const newData = Buffer.from(source.subarray(1, size + 1));
    const filePath = await newFile(oldData);
    const replacement = await newFile(newData);
    const handle = await fs.open(filePath, 'r');
    try {
      await fs.rename(replacement, filePath);
      const result = await readRange(handle, 5, size);
      assert.equal(result.error, undefined);
      assert.ok(result.data.equals(oldData.subarray(5, size)), 'the opened inode, not the one now at the path');
    } finally {
      await handle.close();
    }
  });
});

describe('plain part-file reads with O_DIRECT switched off', () => {
  it('setDirectIo(false): every range through the page cache, exact, and a short file reported', async () => {
    const size = 5 * MiB + 123;
    const data = source.subarray(0, size);
    const filePath = await newFile(data);
    setDirectIo(false);
    try {
      assert.equal(directIoEnabled(), false);
      for (const [start, stop] of [[0, size], [4097, size - 3], [0, MiB], [MiB - 1, 3 * MiB + 1]] as const) {
        const result = await readFileRange(filePath, start, stop);
        assert.equal(result.error, undefined);
        assert.ok(result.data.equals(data.subarray(start, stop)), `[${start}, ${stop}) exact`);
        assert.equal(openDescriptorsOf(filePath) ?? 0, 0, 'no direct descriptor');
      }
      // and a short file is reported with the caller's error
      const short = await readFileRange(filePath, 0, size + 1);
      assert.ok(short.error instanceof ShortFileError, `the shortFile error, got ${String(short.error)}`);
    } finally {
      setDirectIo(true);
    }
    assert.equal(directIoEnabled(), true);
    const after = await readFileRange(filePath, 0, size);
    assert.ok(after.data.equals(data), 'exact bytes after switching back on');
  });
});

describe('plain part-file reads, concurrently', () => {
  it('6 readers at once over different files all return exact bytes', async () => {
    const specs = [
      { size: 5 * MiB + 123, start: 0, stopFromEnd: 0 },
      { size: 2 * MiB + 4097, start: 4097, stopFromEnd: 3 },
      { size: 3 * MiB + 1, start: 1, stopFromEnd: 1 },
      { size: MiB + 1, start: 0, stopFromEnd: 0 },
      { size: 4 * MiB, start: MiB - 1, stopFromEnd: 0 },
      { size: 4 * MiB + 4096, start: 10, stopFromEnd: 100 }, // the same pull pace, different lengths
    ];
    const files = await Promise.all(
      specs.map(async (spec, i) => {
        const data = Buffer.from(source.subarray(i * 1000, i * 1000 + spec.size));
        return { ...spec, data, filePath: await newFile(data) };
      }),
    );
    const inUseBefore = blockBuffersInUse(MiB);
    let maxInUse = inUseBefore;
    const results = await Promise.all(
      files.map(async (file, i) => {
        const stop = file.size - file.stopFromEnd;
        const handle = await fs.open(file.filePath, 'r');
        try {
          const result = await readRange(handle, file.start, stop, {
            holdMs: i % 2, // interleave the pulls differently
            onChunk: () => {
              maxInUse = Math.max(maxInUse, blockBuffersInUse(MiB));
            },
          });
          return { file, stop, result };
        } finally {
          await handle.close();
        }
      }),
    );
    for (const { file, stop, result } of results) {
      const label = `${file.size} B file, [${file.start}, ${stop})`;
      assert.equal(result.error, undefined, `${label}: ${String(result.error)}`);
      assert.ok(result.data.equals(file.data.subarray(file.start, stop)), `${label}: exact`);
      assertChunkSizes(result, label);
    }
    assert.ok(maxInUse <= inUseBefore + (readAheadBlocks + 1) * files.length, `at most ${readAheadBlocks + 1} pool buffers per reader (peak ${maxInUse - inUseBefore})`);
    assert.ok(maxInUse > inUseBefore + readAheadBlocks + 1, 'the readers really overlapped');
    assert.equal(blockBuffersInUse(MiB), inUseBefore);
  });

  it('3 readers at once over ONE handle (each opens its own direct descriptor) return exact bytes', async () => {
    const size = 3 * MiB + 77;
    const data = source.subarray(0, size);
    const filePath = await newFile(data);
    const inUseBefore = blockBuffersInUse(MiB);
    const handle = await fs.open(filePath, 'r');
    try {
      const ranges = [[0, size], [4097, size - 3], [MiB - 1, 3 * MiB]] as const;
      const results = await Promise.all(ranges.map(([start, stop], i) => readRange(handle, start, stop, { holdMs: i })));
      results.forEach((result, i) => {
        const [start, stop] = ranges[i]!;
        assert.equal(result.error, undefined, String(result.error));
        assert.ok(result.data.equals(data.subarray(start, stop)), `[${start}, ${stop}) exact`);
      });
      assert.equal(blockBuffersInUse(MiB), inUseBefore);
      assert.equal(openDescriptorsOf(filePath) ?? 1, 1, 'every direct descriptor closed');
    } finally {
      await handle.close();
    }
  });
});
