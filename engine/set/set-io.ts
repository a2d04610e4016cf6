// Fan-out over the drives of a set and the per-drive shard files: the I/O pieces that PUT, GET, multipart
// and healing share. A drive that fails an operation is asked whether it is still there (format.json);
// if not, its answer counts as "offline", never as "this object does not exist".

import type { FileHandle } from 'node:fs/promises';
import type { Drive } from '../drive.ts';
import { readDirectInto } from '../file-reader.ts';
import { StagedFileWriter } from '../file-writer.ts';
import { QuorumError } from '../erasure/quorum.ts';
import { StorageError } from '../types.ts';
import type { DriveSet } from './drive-set.ts';
import type { ShardSink, ShardSource } from './shard-stream.ts';

/** The drive was not usable for this operation (removed, unmounted, failing). */
export class DriveOfflineError extends Error {
  readonly kind = 'DriveOffline';
  constructor(readonly driveIndex: number) {
    super(`drive ${driveIndex + 1} is offline`);
    this.name = 'DriveOfflineError';
  }
}

export function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

/**
 * Run `fn` on every drive of the set at once; each entry is the result or the Error of that drive. Errors
 * from a drive that turns out to be gone become DriveOfflineError.
 */
export async function onEachDrive<T>(set: DriveSet, fn: (drive: Drive, index: number) => Promise<T>): Promise<(T | Error)[]> {
  return Promise.all(
    Array.from({ length: set.size }, async (_, index): Promise<T | Error> => {
      const drive = set.drive(index);
      if (drive === undefined) return new DriveOfflineError(index);
      try {
        return await fn(drive, index);
      } catch (error) {
        if (error instanceof QuorumError) return error;
        if (!(await set.confirmOnline(index))) return new DriveOfflineError(index);
        return asError(error);
      }
    }),
  );
}

export function countSuccesses<T>(results: readonly (T | Error)[]): number {
  return results.filter((result) => !(result instanceof Error)).length;
}

export function isNotFound(error: Error): boolean {
  return error instanceof StorageError && (error.kind === 'NoSuchKey' || error.kind === 'NoSuchUpload' || error.kind === 'NoSuchBucket');
}

/** The S3-facing error for a lost quorum: 503 SlowDown, with what was missing. */
export function quorumLost(error: QuorumError, what: string): StorageError {
  return new StorageError('SlowDown', `${what}: ${error.message}`);
}

/** A shard file being written under a drive's tmp/: created exclusively, appended with writev, fdatasync'ed. */
export class FileShardSink implements ShardSink {
  readonly #writer: StagedFileWriter;

  private constructor(writer: StagedFileWriter) {
    this.#writer = writer;
  }

  /** Create `filePath` below `baseDir` (a drive's tmp/, which must exist: a vanished drive is not rebuilt). */
  static async create(baseDir: string, filePath: string): Promise<FileShardSink> {
    return new FileShardSink(await StagedFileWriter.create(baseDir, filePath));
  }

  async write(chunks: readonly Uint8Array[]): Promise<void> {
    for (const chunk of chunks) await this.#writer.write(chunk);
  }

  async finish(): Promise<void> {
    await this.#writer.finish();
  }

  async abort(): Promise<void> {
    await this.#writer.abort();
  }
}

/** Reads of one shard file, opened lazily once. */
export class FileShardSource implements ShardSource {
  readonly #open: () => Promise<FileHandle>;

  constructor(open: () => Promise<FileHandle>) {
    this.#open = open;
  }

  async read(position: number, length: number): Promise<Buffer> {
    const buffer = Buffer.allocUnsafe(length);
    const filled = await this.readInto(position, buffer);
    if (filled < length) throw new StorageError('InternalError', `shard file ends at ${position + filled}, ${length - filled} bytes short`);
    return buffer;
  }

  async readInto(position: number, target: Buffer): Promise<number> {
    const handle = await this.#open();
    // Shards are written with O_DIRECT, so they are rarely in the page cache: read them the same way.
    const direct = await readDirectInto(handle, position, target);
    if (direct !== undefined) return direct;
    let filled = 0;
    while (filled < target.length) {
      const { bytesRead } = await handle.read(target, filled, target.length - filled, position + filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    return filled;
  }
}

/** Reads of a drive's inline shard (the trailer of its coffer.meta). */
export class BufferShardSource implements ShardSource {
  constructor(readonly bytes: Buffer) {}

  async read(position: number, length: number): Promise<Buffer> {
    if (position + length > this.bytes.length) throw new StorageError('InternalError', 'inline shard is shorter than its layout');
    return this.bytes.subarray(position, position + length);
  }
}

/** drive index holding each shard: the inverse of `distribution` (distribution[drive] = 1-based shard). */
export function drivesByShard(distribution: readonly number[]): number[] {
  const byShard = new Array<number>(distribution.length);
  distribution.forEach((shard, drive) => {
    byShard[shard - 1] = drive;
  });
  return byShard;
}
