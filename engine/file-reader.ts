// Large sequential reads of part files with O_DIRECT and our own read-ahead: the read side of
// engine/file-writer.ts. Data written with O_DIRECT is not in the page cache, and reading it through the
// cache costs what writing through it did (fresh page-cache pages, then a copy); MinIO reads large objects
// with O_DIRECT too. `readBlocks` reads a range as whole blocks, each into a buffer of its own lent to the
// consumer, with up to readAheadBlocks reads ahead of it; encrypted reads can have each block opened by the
// job that read it (BlockOpener). `readDirectInto` fills one window (erasure shards).
//
// O_DIRECT wants the file offset and length aligned to the logical block size and the memory to the DMA
// alignment: reads start at the 4 KiB boundary at or below the requested position, into page-aligned pool
// buffers (engine/aligned-buffers.ts), and the caller sees only the requested bytes. The direct descriptor
// is a second open of the *same* inode through /proc/self/fd, so a read racing an overwrite still reads
// the version whose handle it holds. Small ranges, setDirectIo(false) and a filesystem that refuses
// O_DIRECT (EINVAL, remembered for the process) read through the page cache into the same buffers.

import { constants as fsConstants } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import fs from 'node:fs/promises';
import { alignedBlockBuffers, alignedBuffers } from './aligned-buffers.ts';
import { isErrnoCode } from './drive.ts';
import { directIoEnabled, reportDirectIoRefused } from './file-writer.ts';

/** File offsets and lengths of direct reads are multiples of this. */
const directAlignBytes = 4096;
/** Smaller reads go through the page cache, where repeated small reads stay cheap. */
export const directReadMinBytes = 1024 * 1024;
let directReadsRefused = false;

function refuseDirectReads(): void {
  if (!directReadsRefused) reportDirectIoRefused('reads');
  directReadsRefused = true;
}

/**
 * A second, O_DIRECT descriptor on the inode behind `handle` (through /proc/self/fd, so a racing overwrite
 * cannot swap it), or undefined when the filesystem refuses (remembered) or /proc is missing.
 */
async function openDirect(handle: FileHandle): Promise<FileHandle | undefined> {
  try {
    return await fs.open(`/proc/self/fd/${handle.fd}`, fsConstants.O_RDONLY | fsConstants.O_DIRECT);
  } catch (error) {
    if (isErrnoCode(error, 'EINVAL')) refuseDirectReads();
    if (isErrnoCode(error, 'EINVAL') || isErrnoCode(error, 'ENOENT')) return undefined;
    throw error;
  }
}

/**
 * O_DIRECT reads of `wantBytes` (aligned) from the aligned `position` into `buffer` from its start; the bytes
 * read, fewer only at the end of the file.
 */
async function readAligned(direct: FileHandle, buffer: Buffer, position: number, wantBytes: number): Promise<number> {
  let gotBytes = 0;
  while (gotBytes < wantBytes) {
    const { bytesRead } = await direct.read(buffer, gotBytes, wantBytes - gotBytes, position + gotBytes);
    gotBytes += bytesRead;
    if (bytesRead === 0 || gotBytes % directAlignBytes !== 0) break; // the end of the file
  }
  return gotBytes;
}

function roundUp(value: number, multiple: number): number {
  return Math.ceil(value / multiple) * multiple;
}

/**
 * Fill `target` from `position` with O_DIRECT reads through one aligned pool buffer, copying out what was
 * asked (erasure shard windows are neither aligned nor a buffer's size). Resolves with the bytes read —
 * fewer only at the end of the file — or undefined when direct reads are off, refused, or `target` is
 * small: the caller then reads through the page cache.
 */
export async function readDirectInto(handle: FileHandle, position: number, target: Buffer): Promise<number | undefined> {
  if (!directIoEnabled() || directReadsRefused || target.length < directReadMinBytes / 4) return undefined;
  const buffer = alignedBuffers.acquire();
  if (buffer === undefined) return undefined;
  let direct: FileHandle | undefined;
  try {
    direct = await openDirect(handle);
    if (direct === undefined) return undefined;
    const end = position + target.length;
    let at = position;
    while (at < end) {
      const alignedStart = Math.floor(at / directAlignBytes) * directAlignBytes;
      const wantBytes = Math.min(buffer.length, roundUp(end - alignedStart, directAlignBytes));
      let gotBytes: number;
      try {
        ({ bytesRead: gotBytes } = await direct.read(buffer, 0, wantBytes, alignedStart));
      } catch (error) {
        if (!isErrnoCode(error, 'EINVAL') || at !== position) throw error;
        refuseDirectReads();
        return undefined;
      }
      const copied = Math.max(0, Math.min(end, alignedStart + gotBytes) - at);
      buffer.copy(target, at - position, at - alignedStart, at - alignedStart + copied);
      at += copied;
      if (copied === 0 || gotBytes < wantBytes) break; // the end of the file
    }
    return at - position;
  } finally {
    await direct?.close().catch(() => undefined);
    alignedBuffers.release(buffer);
  }
}

/** A block lent to the consumer: `bytes` stay valid until `release()` (idempotent; call it exactly when done). */
export interface LoanedBlock {
  readonly bytes: Buffer;
  /** with a BlockOpener: `bytes` are the opened block, and this is what the opener said about it */
  readonly opened?: OpenedBlockFacts;
  release(): void;
}

export interface OpenedBlockFacts {
  /** the block ends its stream */
  readonly final: boolean;
  /** the stream nonce the block carried (to check that every block belongs to one stream) */
  readonly nonce: Buffer;
}

/**
 * Turns each block into another as part of the job that reads it (engine/encrypted-body.ts: DARE packages into
 * plaintext, on the thread that read them), so the event loop hands nothing to another thread per block.
 */
export interface BlockOpener {
  /**
   * Unless fd is -1 (the block is in `buffer` already), read `readBytes` at `position` into `buffer`; then, if
   * buffer[blockOffset, blockOffset + blockBytes) is all there, open it into `out`. `gotBytes` is what was
   * read; `opened` is missing for a short read. Rejects with a node:fs-style error when the read fails (EINVAL:
   * the device refused the direct read) and with the opener's own error when the block does not open.
   */
  readAndOpen(
    fd: number, position: number, readBytes: number, buffer: Buffer, blockOffset: number, blockBytes: number, blockIndex: number, out: Buffer,
  ): Promise<{ gotBytes: number; opened?: OpenedBlockFacts & { readonly outBytes: number } }>;
  /** a buffer for one opened block, and back */
  takeOutput(): Buffer;
  giveOutput(buffer: Buffer): void;
}

/** One block read by readBlocks: where it starts in its buffer, and with an opener what the opener said. */
interface BlockRead {
  readonly offset: number;
  readonly opened?: OpenedBlockFacts & { readonly outBytes: number };
}

/**
 * Blocks readBlocks keeps in flight ahead of the consumer, once started: the first read goes out alone (the time to
 * first byte is one read), then one more with each block handed over, up to this many. Measured on encrypted GETs,
 * whose blocks waited for the disk and then for a pool thread: two reads ahead left the disk idle in between, and
 * five kept it busier than four (16 MiB SSE GET c=4 +5–6%, docs/decisions.md) for ~3 ms more time to first byte
 * at c=4. Plain GETs read this way since session 18 (before: a ring of three buffers, two reads ahead): 16 MiB c=1
 * 1.106× paired [1.019–1.215], 12 MiB c=4 1.056×, 10 rounds on one server.
 */
export const readAheadBlocks = 5;
/** Buffers one readBlocks stream may hold, read ahead and lent together. */
export const blockLoansMax = 8;
/** Buffers of the `blockBytes` pool in use (read ahead or lent): tests check that every exit gives them back. */
export function blockBuffersInUse(blockBytes: number): number {
  return alignedBlockBuffers(blockBytes).stats().inUse;
}

/**
 * Bytes [position, stopPosition) of the file behind `handle` as consecutive blocks of `blockBytes` (the last
 * one shorter), each read into a buffer of its own that is lent to the consumer until it calls release(): a
 * pool thread can then open a DARE block where the disk put it, with no copy on the event loop. Up to five
 * blocks are read ahead (one at first: see readAheadBlocks); at most `loansMax` buffers are held at once (read
 * ahead + lent), beyond that the stream waits for a release. Blocks are read with O_DIRECT (the page-aligned window around each block) where the filesystem
 * allows it, else through the page cache into the same buffers. The memory is shared (SharedArrayBuffer).
 * With an `opener`, each block is opened by the job that read it (through the page cache: read, then a job
 * that only opens) and the loans are the opened blocks in the opener's buffers; the read buffer goes back at once.
 */
export async function* readBlocks(
  handle: FileHandle,
  position: number,
  stopPosition: number,
  blockBytes: number,
  shortFile: () => Error,
  loansMax = blockLoansMax,
  opener?: BlockOpener,
): AsyncGenerator<LoanedBlock> {
  if (!Number.isSafeInteger(blockBytes) || blockBytes <= 0) throw new Error(`readBlocks: bad block size ${blockBytes}`);
  if (!Number.isSafeInteger(loansMax) || loansMax < 1) throw new Error(`readBlocks: bad loansMax ${loansMax}`);
  const pool = alignedBlockBuffers(blockBytes);
  const direct = directIoEnabled() && !directReadsRefused && stopPosition - position >= directReadMinBytes ? await openDirect(handle) : undefined;
  let useDirect = direct !== undefined;
  const take = (): Buffer => pool.acquire() ?? Buffer.from(new SharedArrayBuffer(pool.bufferBytes));
  const give = (buffer: Buffer): void => pool.release(buffer);

  /** Read [start, end) into `buffer` from its start, through the page cache. */
  const readBuffered = async (buffer: Buffer, start: number, end: number): Promise<void> => {
    let gotBytes = 0;
    while (gotBytes < end - start) {
      const { bytesRead } = await handle.read(buffer, gotBytes, end - start - gotBytes, start + gotBytes);
      if (bytesRead === 0) throw shortFile();
      gotBytes += bytesRead;
    }
  };
  /**
   * Read [start, end) into `buffer`, and with an opener open it into `output` in the same job. Resolves with the
   * offset of `start` in `buffer`, and what the opener said.
   */
  const readBlock = async (buffer: Buffer, start: number, end: number, blockIndex: number, output: Buffer | undefined): Promise<BlockRead> => {
    const lengthBytes = end - start;
    if (direct !== undefined && useDirect && pool.owns(buffer)) {
      const alignedStart = Math.floor(start / directAlignBytes) * directAlignBytes;
      const readBytes = roundUp(end - alignedStart, directAlignBytes);
      try {
        if (opener === undefined) {
          const gotBytes = await readAligned(direct, buffer, alignedStart, readBytes);
          if (alignedStart + gotBytes < end) throw shortFile();
          return { offset: start - alignedStart };
        }
        const result = await opener.readAndOpen(direct.fd, alignedStart, readBytes, buffer, start - alignedStart, lengthBytes, blockIndex, output!);
        if (result.opened === undefined) throw shortFile();
        return { offset: 0, opened: result.opened };
      } catch (error) {
        if (!isErrnoCode(error, 'EINVAL')) throw error;
        // The device wants a stricter alignment than we assumed: this block and the rest through the page cache.
        refuseDirectReads();
        useDirect = false;
      }
    }
    await readBuffered(buffer, start, end);
    if (opener === undefined) return { offset: 0 };
    const result = await opener.readAndOpen(-1, 0, 0, buffer, 0, lengthBytes, blockIndex, output!);
    if (result.opened === undefined) throw shortFile();
    return { offset: 0, opened: result.opened };
  };

  interface Reading {
    readonly buffer: Buffer;
    readonly lengthBytes: number;
    /** with an opener: where the block is opened to */
    readonly output: Buffer | undefined;
    readonly reading: Promise<BlockRead>;
  }
  const inFlight: Reading[] = [];
  let nextStart = position;
  let lent = 0;
  let wakeOnRelease: (() => void) | undefined;
  let handedOver = 0;
  const startReads = (): void => {
    const depth = Math.min(readAheadBlocks, 1 + handedOver);
    while (inFlight.length < depth && nextStart < stopPosition && lent + inFlight.length < loansMax) {
      const end = Math.min(stopPosition, nextStart + blockBytes);
      const buffer = take();
      const output = opener?.takeOutput();
      const reading = readBlock(buffer, nextStart, end, (nextStart - position) / blockBytes, output);
      reading.catch(() => undefined); // awaited in order below; never an unhandled rejection meanwhile
      inFlight.push({ buffer, lengthBytes: end - nextStart, output, reading });
      nextStart = end;
    }
  };
  try {
    for (;;) {
      startReads();
      const head = inFlight.shift();
      if (head === undefined) {
        if (nextStart >= stopPosition) return;
        await new Promise<void>((resolve) => { wakeOnRelease = resolve; }); // every buffer is lent out
        continue;
      }
      let read: BlockRead;
      try {
        read = await head.reading;
      } catch (error) {
        give(head.buffer);
        if (head.output !== undefined) opener!.giveOutput(head.output);
        throw error;
      }
      lent++;
      handedOver++;
      let released = false;
      const { offset, opened } = read;
      // With an opener the read buffer is done with; the loan is the opened block.
      if (opened !== undefined) give(head.buffer);
      const block: LoanedBlock = {
        bytes: opened === undefined ? head.buffer.subarray(offset, offset + head.lengthBytes) : head.output!.subarray(0, opened.outBytes),
        ...(opened === undefined ? {} : { opened: { final: opened.final, nonce: opened.nonce } }),
        release: () => {
          if (released) return;
          released = true;
          lent--;
          if (opened === undefined) give(head.buffer);
          else opener!.giveOutput(head.output!);
          const wake = wakeOnRelease;
          wakeOnRelease = undefined;
          wake?.();
        },
      };
      startReads(); // keep the disk busy while the consumer has this block
      yield block;
    }
  } finally {
    // No buffer goes back to the pool while the kernel may still be writing into it.
    await Promise.allSettled(inFlight.map((entry) => entry.reading));
    for (const entry of inFlight.splice(0)) {
      give(entry.buffer);
      if (entry.output !== undefined) opener!.giveOutput(entry.output);
    }
    await direct?.close().catch(() => undefined);
  }
}
