// Reading object bytes: inline data from coffer.meta, or part files in the object's data dir. Part files
// are read through open descriptors, so a concurrent overwrite (which deletes the old data dir) cannot
// break a read that has started: on Linux an open fd keeps an unlinked file readable.

import type { FileHandle } from 'node:fs/promises';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { ObjectVersion } from './meta.ts';
import { dataDirName } from './paths.ts';
import { isErrnoCode } from './drive.ts';
import { decryptRange } from './encrypted-body.ts';
import type { BlockCipherPool } from '../workers/pool.ts';
import { StorageError } from './types.ts';

async function* emptyStream(): AsyncGenerator<Buffer> {}
import type { ObjectInfo, ObjectReader } from './types.ts';

/** Largest chunk a read yields: bounds memory per in-flight GET. */
export const readChunkSizeBytes = 1024 * 1024;

interface PartExtent {
  readonly partNumber: number;
  readonly startBytes: number;
  readonly sizeBytes: number;
}

export class FsObjectReader implements ObjectReader {
  readonly info: ObjectInfo;
  readonly #version: ObjectVersion;
  readonly #inlineData: Buffer;
  readonly #dataDirPath: string | undefined;
  readonly #extents: readonly PartExtent[];
  readonly #handles = new Map<number, Promise<FileHandle>>();
  #closed = false;

  readonly #cipherPool: BlockCipherPool;

  private constructor(info: ObjectInfo, version: ObjectVersion, objectDir: string, inlineData: Buffer, cipherPool: BlockCipherPool) {
    this.#cipherPool = cipherPool;
    this.info = info;
    this.#version = version;
    this.#inlineData = inlineData;
    this.#dataDirPath = version.dataDir === undefined ? undefined : path.join(objectDir, dataDirName(version.dataDir));
    let startBytes = 0;
    this.#extents = version.parts.map((part) => {
      const extent = { partNumber: part.n, startBytes, sizeBytes: part.size };
      startBytes += part.size;
      return extent;
    });
  }

  /**
   * Build a reader and open the first part's file right away, so that a GET racing an overwrite reads the
   * version whose metadata it saw. Later parts are opened when reached (descriptor count stays bounded).
   */
  static async open(info: ObjectInfo, version: ObjectVersion, objectDir: string, inlineData: Buffer, cipherPool: BlockCipherPool): Promise<FsObjectReader> {
    const reader = new FsObjectReader(info, version, objectDir, inlineData, cipherPool);
    if (!version.inline && reader.#extents.length > 0) {
      try {
        await reader.#handle(reader.#extents[0]!.partNumber);
      } catch (error) {
        await reader.close();
        throw error;
      }
    }
    return reader;
  }

  #handle(partNumber: number): Promise<FileHandle> {
    let handle = this.#handles.get(partNumber);
    if (handle === undefined) {
      const filePath = path.join(this.#dataDirPath!, `part.${partNumber}`);
      handle = fs.open(filePath, 'r').catch((error: unknown) => {
        if (isErrnoCode(error, 'ENOENT')) {
          throw new StorageError('InternalError', `part ${partNumber} of ${this.info.bucket}/${this.info.key} is missing (overwritten or deleted during the read?)`);
        }
        throw error;
      });
      // Avoid an unhandled rejection if nobody awaits this promise again; callers still see the error.
      handle.catch(() => undefined);
      this.#handles.set(partNumber, handle);
    }
    return handle;
  }

  read(start: number, endInclusive: number, keyForPart?: (partNumber: number) => Buffer): AsyncIterable<Buffer> {
    const sizeBytes = this.#version.sizeBytes;
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(endInclusive) || start < 0 || endInclusive < start - 1 || endInclusive >= sizeBytes) {
      throw new StorageError('InvalidArgument', `invalid range ${start}-${endInclusive} for an object of ${sizeBytes} bytes`);
    }
    if (this.#closed) throw new StorageError('InternalError', 'read from a closed object reader');
    if (this.#version.encryption !== undefined) {
      // Ciphertext is never served as plaintext: an encrypted object can only be read with its keys.
      if (keyForPart === undefined) throw new StorageError('InternalError', `${this.info.bucket}/${this.info.key} is encrypted; no key was given`);
      if (endInclusive < start) return emptyStream();
      return decryptRange(
        this.#extents.map((extent) => extent.sizeBytes),
        this.#extents.map((extent) => extent.partNumber),
        start,
        endInclusive,
        keyForPart,
        (partIndex, from, to) =>
          this.#version.inline ? this.#readInline(from, to - 1) : this.#readFile(this.#extents[partIndex]!.partNumber, from, to),
        this.#cipherPool,
      );
    }
    return this.#version.inline ? this.#readInline(start, endInclusive) : this.#readParts(start, endInclusive);
  }

  async *#readInline(start: number, endInclusive: number): AsyncGenerator<Buffer> {
    for (let offset = start; offset <= endInclusive; offset += readChunkSizeBytes) {
      yield this.#inlineData.subarray(offset, Math.min(endInclusive + 1, offset + readChunkSizeBytes));
    }
  }

  async *#readParts(start: number, endInclusive: number): AsyncGenerator<Buffer> {
    for (const extent of this.#extents) {
      const extentEnd = extent.startBytes + extent.sizeBytes; // exclusive
      if (extentEnd <= start || extent.sizeBytes === 0) continue;
      if (extent.startBytes > endInclusive) break;
      const position = Math.max(start, extent.startBytes) - extent.startBytes;
      const stopPosition = Math.min(endInclusive + 1, extentEnd) - extent.startBytes;
      yield* this.#readFile(extent.partNumber, position, stopPosition);
    }
  }

  /** Bytes [position, stopPosition) of a part file, in chunks of at most readChunkSizeBytes. */
  async *#readFile(partNumber: number, position: number, stopPosition: number): AsyncGenerator<Buffer> {
    const handle = await this.#handle(partNumber);
    while (position < stopPosition) {
      const chunk = Buffer.allocUnsafe(Math.min(readChunkSizeBytes, stopPosition - position));
      let fillBytes = 0;
      while (fillBytes < chunk.length) {
        const { bytesRead } = await handle.read(chunk, fillBytes, chunk.length - fillBytes, position + fillBytes);
        if (bytesRead === 0) {
          throw new StorageError('InternalError', `part ${partNumber} of ${this.info.bucket}/${this.info.key} is shorter than its metadata says`);
        }
        fillBytes += bytesRead;
      }
      position += fillBytes;
      yield chunk;
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const handles = [...this.#handles.values()];
    this.#handles.clear();
    for (const pending of handles) {
      try {
        await (await pending).close();
      } catch {
        // a part that failed to open has nothing to close
      }
    }
  }
}
