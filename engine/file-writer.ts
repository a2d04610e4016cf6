// A staged data file written sequentially, with bounded memory: whole 1 MiB buffers go to the disk with
// O_DIRECT (MinIO does the same for object data), the last partial buffer through the page cache, then one
// fdatasync makes both durable before the caller renames the file into place.
//
// Why O_DIRECT: a buffered write copies every byte into freshly allocated page-cache pages, and on this
// kind of VM that copy (copy_folio_from_iter_atomic) was a third of a large PUT's server CPU — 1.3–2.2 ms
// per MiB, more than MD5. A direct write hands our already-mapped buffer to the device instead, and the
// fdatasync afterwards has only the tail and the metadata left to flush. Object data is rarely re-read
// soon after it is written, so skipping the page cache also keeps it for metadata and hot reads.
//
// Two buffers alternate: one is filled while the other is on its way to the disk, so one writer holds at
// most 2 MiB and `write` resolves only when there is room (backpressure). A filesystem that refuses
// O_DIRECT (EINVAL: tmpfs on older kernels, some FUSE and network filesystems) is remembered and written
// through the page cache from then on; MINIO_API_ODIRECT=off turns direct writes off altogether.
//
// With a digest stream (the ETag MD5 on a pool thread), each full buffer is hashed there in place while it
// is being written — the buffers are shared memory — so the event loop only copies bytes.

import { constants as fsConstants } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import fs from 'node:fs/promises';
import path from 'node:path';
import { alignedBufferBytes, alignedBuffers, holdWhileWriting, isPageAligned } from './aligned-buffers.ts';
import { isErrnoCode, mkdirsDurable } from './drive.ts';
import type { DigestStream } from '../workers/pool.ts';

/** Bytes of staged files written each way since start (the tests check which path large files take). */
export const fileWriteCounters = { directBytes: 0, bufferedBytes: 0 };

let directWritesEnabled = true;
/** base directories (drive tmp dirs) whose filesystem refused an O_DIRECT open or write */
const directRefused = new Set<string>();
/** base directories whose device refused a direct write aligned to 512 B but not 4 KiB (a 4Kn disk) */
const sectorWritesRefused = new Set<string>();
/** The alignment of a caller's block written as it is (writeFromCaller): a 512 B logical sector. */
const sectorBytes = 512;

/** Process-wide switch for O_DIRECT writes and reads (engine/file-reader.ts), set at startup from MINIO_API_ODIRECT. */
export function setDirectIo(enabled: boolean): void {
  directWritesEnabled = enabled;
}

/** Whether O_DIRECT is switched on at all. */
export function directIoEnabled(): boolean {
  return directWritesEnabled;
}

let refusalListener: ((what: string) => void) | undefined;

/** Told once per refusal (a drive's writes, or reads) that O_DIRECT fell back to the page cache. */
export function onDirectIoRefused(listener: ((what: string) => void) | undefined): void {
  refusalListener = listener;
}

/** A filesystem refused O_DIRECT: slower from now on, never wrong, but an operator should hear of it. */
export function reportDirectIoRefused(what: string): void {
  refusalListener?.(what);
}

/** Whether new large files below `baseDir` will be written with O_DIRECT. */
export function directWritesActive(baseDir: string): boolean {
  return directWritesEnabled && !directRefused.has(baseDir);
}

async function writeAllAt(handle: FileHandle, buffer: Uint8Array, lengthBytes: number, positionBytes: number): Promise<void> {
  let doneBytes = 0;
  while (doneBytes < lengthBytes) {
    const { bytesWritten } = await handle.write(buffer, doneBytes, lengthBytes - doneBytes, positionBytes + doneBytes);
    doneBytes += bytesWritten;
  }
}

/** Both results once both have settled (neither may still be reading a buffer), or the first failure. */
async function bothSettled<A, B>(a: Promise<A>, b: Promise<B> | undefined): Promise<[A, B | undefined]> {
  const [ra, rb] = await Promise.allSettled([a, b]);
  if (ra.status === 'rejected') throw ra.reason;
  if (rb.status === 'rejected') throw rb.reason;
  return [ra.value, rb.value];
}

/** Smaller caller buffers are copied (direct writes of small pieces would not pay for themselves). */
const directFromCallerMinBytes = 256 * 1024;

function takeBuffer(): Buffer {
  return alignedBuffers.acquire() ?? Buffer.allocUnsafe(alignedBufferBytes);
}

export class StagedFileWriter {
  readonly #baseDir: string;
  readonly #filePath: string;
  readonly #handle: FileHandle;
  readonly #digest: DigestStream | undefined;
  /** the O_DIRECT handle: undefined until the first whole buffer, null when direct writes are not used */
  #direct: FileHandle | null | undefined;
  #fill: Buffer | undefined;
  #fillBytes = 0;
  /** the other buffer: being written while #inflight is pending, free after */
  #spare: Buffer | undefined;
  #inflight: Promise<void> | undefined;
  #failure: unknown;
  /** file offset of #fill's first byte */
  #positionBytes = 0;
  #closed = false;

  private constructor(baseDir: string, filePath: string, handle: FileHandle, digest: DigestStream | undefined) {
    this.#baseDir = baseDir;
    this.#filePath = filePath;
    this.#handle = handle;
    this.#digest = digest;
  }

  /**
   * Create `filePath` exclusively, with its parent directories below `baseDir` (which must exist). With
   * `digest`, every byte written is hashed into it and finish() returns the MD5; the writer owns the stream.
   */
  static async create(baseDir: string, filePath: string, digest?: DigestStream): Promise<StagedFileWriter> {
    try {
      await mkdirsDurable(path.dirname(filePath), baseDir, false);
      return new StagedFileWriter(baseDir, filePath, await fs.open(filePath, 'wx'), digest);
    } catch (error) {
      digest?.abandon();
      throw error;
    }
  }

  /** bytes accepted so far */
  get sizeBytes(): number {
    return this.#positionBytes + this.#fillBytes;
  }

  /** Copy `data` in; resolves when the caller may reuse `data` and send more. */
  async write(data: Uint8Array): Promise<void> {
    if (this.#fillBytes === 0 && data.length >= directFromCallerMinBytes && isPageAligned(data) && (await this.#writeFromCaller(data))) return;
    let offsetBytes = 0;
    while (offsetBytes < data.length) {
      if (this.#closed) throw new Error(`staged file ${this.#filePath} is already closed`);
      const fill = (this.#fill ??= takeBuffer());
      const copyBytes = Math.min(fill.length - this.#fillBytes, data.length - offsetBytes);
      fill.set(data.subarray(offsetBytes, offsetBytes + copyBytes), this.#fillBytes);
      this.#fillBytes += copyBytes;
      offsetBytes += copyBytes;
      if (this.#fillBytes === fill.length) await this.#flushFull();
    }
  }

  /** Write what is left, fdatasync, close. The file is then complete and durable. The MD5 with a digest. */
  async finish(): Promise<{ readonly md5Hex?: string }> {
    try {
      await this.#settle();
      const tail = this.#fill?.subarray(0, this.#fillBytes);
      const writeTail = async (): Promise<void> => {
        if (tail === undefined || tail.length === 0) return;
        await writeAllAt(this.#handle, tail, tail.length, this.#positionBytes);
        fileWriteCounters.bufferedBytes += tail.length;
      };
      const [, md5Hex] = await bothSettled(writeTail(), this.#digest?.finish(tail));
      await this.#handle.datasync();
      return md5Hex === undefined ? {} : { md5Hex };
    } finally {
      await this.#close();
    }
  }

  /** Stop and close; the partial file stays for the caller to remove with its staging directory. */
  async abort(): Promise<void> {
    await this.#close();
  }

  async #flushFull(): Promise<void> {
    await this.#settle(); // the spare buffer is free once the previous write is done
    const full = this.#fill!;
    const positionBytes = this.#positionBytes;
    this.#positionBytes += full.length;
    this.#fill = this.#spare ?? takeBuffer();
    this.#spare = full;
    this.#fillBytes = 0;
    this.#inflight = bothSettled(this.#writeWhole(full, positionBytes), this.#digest?.update(full)).then(
      () => undefined,
      (error: unknown) => {
        this.#failure = error;
      },
    );
  }

  /**
   * Write `data` from the caller's own memory with O_DIRECT, no copy: an SSE PUT seals each block into a
   * page-aligned buffer (engine/aligned-buffers.ts holdableBlockBuffers), and a sealed block (1,049,088 bytes,
   * 2,049 sectors) lands at a sector-aligned offset. Needs a whole number of 512 B sectors at a sector offset,
   * nothing staged before it, and a device that takes sector (not only 4 KiB) alignment; false → the caller
   * copies as usual. A buffer of a holdable pool is written in the background, like a full staged buffer:
   * write() returns at once, so the caller seals the next block meanwhile, and the buffer's release waits for
   * the write. Any other memory is the caller's again only once the write (and the digest of it) is done.
   */
  async #writeFromCaller(data: Uint8Array): Promise<boolean> {
    if (data.length % sectorBytes !== 0 || this.#positionBytes % sectorBytes !== 0) return false;
    const direct = await this.#directHandle();
    if (!direct) return false;
    await this.#settle(); // an earlier write, so failures are reported in order and one write is in flight
    if (sectorWritesRefused.has(this.#baseDir)) return false;
    const positionBytes = this.#positionBytes;
    const writing = this.#writeSectors(direct, data, positionBytes);
    this.#positionBytes += data.length;
    if (holdWhileWriting(data, writing)) {
      this.#inflight = writing.then(
        () => undefined,
        (error: unknown) => {
          this.#failure = error;
        },
      );
    } else {
      await writing;
    }
    return true;
  }

  async #writeSectors(direct: FileHandle, data: Uint8Array, positionBytes: number): Promise<void> {
    try {
      await bothSettled(this.#writeDirect(direct, data, positionBytes), this.#digest?.update(data));
    } catch (error) {
      if (!isErrnoCode(error, 'EINVAL')) throw error;
      // Sector alignment is not enough for this device (4 KiB logical sectors): this block through the page
      // cache (the digest has it already), later ones copied into the 4 KiB-aligned buffers.
      sectorWritesRefused.add(this.#baseDir);
      await this.#writeBuffered(data, positionBytes);
    }
  }

  async #settle(): Promise<void> {
    const inflight = this.#inflight;
    this.#inflight = undefined;
    if (inflight) await inflight;
    if (this.#failure !== undefined) throw this.#failure;
  }

  async #writeWhole(buffer: Buffer, positionBytes: number): Promise<void> {
    const direct = alignedBuffers.owns(buffer) ? await this.#directHandle() : null;
    if (direct) {
      try {
        await this.#writeDirect(direct, buffer, positionBytes);
        return;
      } catch (error) {
        if (!isErrnoCode(error, 'EINVAL')) throw error;
        this.#refuseDirect(); // misaligned for this device after all: buffered from now on
      }
    }
    await this.#writeBuffered(buffer, positionBytes);
  }

  /** One O_DIRECT write; a short one (a full disk can do that) is finished through the page cache. */
  async #writeDirect(direct: FileHandle, data: Uint8Array, positionBytes: number): Promise<void> {
    const { bytesWritten } = await direct.write(data, 0, data.length, positionBytes);
    fileWriteCounters.directBytes += bytesWritten;
    if (bytesWritten < data.length) await this.#writeBuffered(data.subarray(bytesWritten), positionBytes + bytesWritten);
  }

  async #writeBuffered(data: Uint8Array, positionBytes: number): Promise<void> {
    await writeAllAt(this.#handle, data, data.length, positionBytes);
    fileWriteCounters.bufferedBytes += data.length;
  }

  async #directHandle(): Promise<FileHandle | null> {
    if (this.#direct !== undefined) return this.#direct;
    if (!directWritesActive(this.#baseDir)) return (this.#direct = null);
    try {
      this.#direct = await fs.open(this.#filePath, fsConstants.O_WRONLY | fsConstants.O_DIRECT);
    } catch (error) {
      if (!isErrnoCode(error, 'EINVAL')) throw error;
      this.#refuseDirect();
    }
    return this.#direct ?? null;
  }

  #refuseDirect(): void {
    if (!directRefused.has(this.#baseDir)) reportDirectIoRefused(`writes below ${this.#baseDir}`);
    directRefused.add(this.#baseDir);
    const direct = this.#direct;
    this.#direct = null;
    void direct?.close().catch(() => undefined);
  }

  async #close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#digest?.abandon(); // a no-op once finished
    // No buffer may go back to the pool while the kernel could still be reading it.
    await this.#inflight?.catch(() => undefined);
    this.#inflight = undefined;
    await Promise.all([this.#handle.close().catch(() => undefined), this.#direct?.close().catch(() => undefined)]);
    for (const buffer of [this.#fill, this.#spare]) if (buffer) alignedBuffers.release(buffer);
    this.#fill = this.#spare = undefined;
  }
}
