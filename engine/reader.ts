// Reading object bytes. `StoredObjectReader` turns a version's stored part streams into the plaintext range a
// GET asks for (decrypting when the object is encrypted); where the stored bytes come from is a
// `StoredBytes`: here one drive's inline data or part files, in engine/set/ the erasure decoder.
// Part files are read through open descriptors, so a concurrent overwrite (which deletes the old data dir)
// cannot break a read that has started: on Linux an open fd keeps an unlinked file readable.

import type { FileHandle } from 'node:fs/promises';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { ObjectVersion } from './meta.ts';
import { dataDirName } from './paths.ts';
import { isErrnoCode } from './drive.ts';
import { decryptRange } from './encrypted-body.ts';
import { blockLoansMax, readBlocks, type BlockOpener, type LoanedBlock } from './file-reader.ts';
import type { BlockCipherPool } from '../workers/pool.ts';
import { StorageError } from './types.ts';
import type { ObjectInfo, ObjectReader } from './types.ts';

async function* emptyStream(): AsyncGenerator<Buffer> {}

/** Largest chunk a read yields: bounds memory per in-flight GET. */
export const readChunkSizeBytes = 1024 * 1024;

/** The stored (possibly encrypted) bytes of one version, part by part. */
export interface StoredBytes {
  /** bytes [from, to) of the stored stream of part `partNumber` (`partIndex` in the version's part list) */
  read(partIndex: number, partNumber: number, from: number, to: number): AsyncIterable<Buffer>;
  /** the same bytes as whole blocks lent until released (file-reader.ts readBlocks), where supported */
  readBlocks?(partIndex: number, partNumber: number, from: number, to: number, blockBytes: number, opener?: BlockOpener): AsyncIterable<LoanedBlock> | undefined;
  /** the whole stored stream of a part when it is in memory already (inline data), where supported */
  inMemory?(partIndex: number): Buffer | undefined;
  close(): Promise<void>;
}

interface PartExtent {
  readonly partNumber: number;
  readonly startBytes: number;
  readonly sizeBytes: number;
}

/** An ObjectReader over any StoredBytes: range checks, part extents and decryption. */
export class StoredObjectReader implements ObjectReader {
  readonly info: ObjectInfo;
  readonly #version: ObjectVersion;
  readonly #extents: readonly PartExtent[];
  readonly #bytes: StoredBytes;
  readonly #cipherPool: BlockCipherPool;
  #closed = false;

  constructor(info: ObjectInfo, version: ObjectVersion, bytes: StoredBytes, cipherPool: BlockCipherPool) {
    this.info = info;
    this.#version = version;
    this.#bytes = bytes;
    this.#cipherPool = cipherPool;
    let startBytes = 0;
    this.#extents = version.parts.map((part) => {
      const extent = { partNumber: part.n, startBytes, sizeBytes: part.size };
      startBytes += part.size;
      return extent;
    });
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
        (partIndex, from, to) => this.#bytes.read(partIndex, this.#extents[partIndex]!.partNumber, from, to),
        this.#cipherPool,
        (partIndex, from, to, blockBytes, opener) => this.#bytes.readBlocks?.(partIndex, this.#extents[partIndex]!.partNumber, from, to, blockBytes, opener),
        (partIndex) => this.#bytes.inMemory?.(partIndex),
      );
    }
    return this.#readParts(start, endInclusive);
  }

  async *#readParts(start: number, endInclusive: number): AsyncGenerator<Buffer> {
    for (const [partIndex, extent] of this.#extents.entries()) {
      const extentEnd = extent.startBytes + extent.sizeBytes; // exclusive
      if (extentEnd <= start || extent.sizeBytes === 0) continue;
      if (extent.startBytes > endInclusive) break;
      const position = Math.max(start, extent.startBytes) - extent.startBytes;
      const stopPosition = Math.min(endInclusive + 1, extentEnd) - extent.startBytes;
      yield* this.#bytes.read(partIndex, extent.partNumber, position, stopPosition);
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#bytes.close();
  }
}

/** One drive's stored bytes: the inline section of coffer.meta, or the part files of the data dir. */
export class DriveStoredBytes implements StoredBytes {
  readonly #inlineData: Buffer | undefined;
  readonly #dataDirPath: string | undefined;
  readonly #what: string;
  readonly #handles = new Map<number, Promise<FileHandle>>();

  constructor(version: ObjectVersion, objectDir: string, inlineData: Buffer, what: string) {
    this.#inlineData = version.inline ? inlineData : undefined;
    this.#dataDirPath = version.dataDir === undefined ? undefined : path.join(objectDir, dataDirName(version.dataDir));
    this.#what = what;
  }

  read(_partIndex: number, partNumber: number, from: number, to: number): AsyncIterable<Buffer> {
    return this.#inlineData !== undefined ? this.#readInline(from, to) : this.#readFile(partNumber, from, to);
  }

  inMemory(): Buffer | undefined {
    return this.#inlineData; // an inline version has one part
  }

  readBlocks(_partIndex: number, partNumber: number, from: number, to: number, blockBytes: number, opener?: BlockOpener): AsyncIterable<LoanedBlock> | undefined {
    return this.#inlineData !== undefined ? undefined : this.#readFileBlocks(partNumber, from, to, blockBytes, opener);
  }

  async *#readFileBlocks(partNumber: number, from: number, to: number, blockBytes: number, opener: BlockOpener | undefined): AsyncGenerator<LoanedBlock> {
    const handle = await this.openPart(partNumber);
    yield* readBlocks(handle, from, to, blockBytes, () => this.#shortFile(partNumber), blockLoansMax, opener);
  }

  #shortFile(partNumber: number): Error {
    return new StorageError('InternalError', `part ${partNumber} of ${this.#what} is shorter than its metadata says`);
  }

  async *#readInline(from: number, to: number): AsyncGenerator<Buffer> {
    for (let offset = from; offset < to; offset += readChunkSizeBytes) {
      yield this.#inlineData!.subarray(offset, Math.min(to, offset + readChunkSizeBytes));
    }
  }

  /** Open part `partNumber`'s file now (a GET racing an overwrite then reads the version it saw). */
  openPart(partNumber: number): Promise<FileHandle> {
    let handle = this.#handles.get(partNumber);
    if (handle === undefined) {
      const filePath = path.join(this.#dataDirPath!, `part.${partNumber}`);
      handle = fs.open(filePath, 'r').catch((error: unknown) => {
        if (isErrnoCode(error, 'ENOENT')) {
          throw new StorageError('InternalError', `part ${partNumber} of ${this.#what} is missing (overwritten or deleted during the read?)`);
        }
        throw error;
      });
      // Avoid an unhandled rejection if nobody awaits this promise again; callers still see the error.
      handle.catch(() => undefined);
      this.#handles.set(partNumber, handle);
    }
    return handle;
  }

  /**
   * Bytes [position, stopPosition) of a part file, in chunks of at most readChunkSizeBytes that stay valid until
   * the next pull (ObjectReader.read's contract): readBlocks's loans, each given back when the next is pulled.
   * Large ranges bypass the page cache, and the read-ahead ramps up to readAheadBlocks (engine/file-reader.ts).
   */
  async *#readFile(partNumber: number, position: number, stopPosition: number): AsyncGenerator<Buffer> {
    const handle = await this.openPart(partNumber);
    for await (const block of readBlocks(handle, position, stopPosition, readChunkSizeBytes, () => this.#shortFile(partNumber))) {
      try {
        yield block.bytes;
      } finally {
        block.release();
      }
    }
  }

  async close(): Promise<void> {
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

/**
 * A reader of one drive's copy of a version, with the first part opened right away, so that a GET racing
 * an overwrite reads the version whose metadata it saw. Later parts are opened when reached.
 */
export async function openDriveObject(
  info: ObjectInfo,
  version: ObjectVersion,
  objectDir: string,
  inlineData: Buffer,
  cipherPool: BlockCipherPool,
): Promise<StoredObjectReader> {
  const bytes = new DriveStoredBytes(version, objectDir, inlineData, `${info.bucket}/${info.key}`);
  if (!version.inline && version.parts.length > 0) {
    try {
      await bytes.openPart(version.parts[0]!.n);
    } catch (error) {
      await bytes.close();
      throw error;
    }
  }
  return new StoredObjectReader(info, version, bytes, cipherPool);
}
