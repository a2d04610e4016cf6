// Staging a request body: stream it to a file under tmp/ with bounded memory, computing its MD5 and
// enforcing the announced size. Small bodies stay in memory so they can be stored inline (docs/format.md).

import { createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import fs from 'node:fs/promises';
import path from 'node:path';
import { mkdirsDurable } from './drive.ts';
import { StorageError } from './types.ts';

/**
 * Bytes collected before one write(2): amortizes syscalls for the small chunks HTTP delivers, and bounds a
 * PUT's memory. Chunks are copied in, so the producer may reuse its buffers once we pull the next chunk.
 */
export const writeBatchSizeBytes = 1024 * 1024;

export interface StageBodyOptions {
  readonly body: AsyncIterable<Uint8Array>;
  readonly expectedSizeBytes?: number;
  /** larger bodies fail with EntityTooLarge */
  readonly maxSizeBytes: number;
  /** bodies of at most this size are returned in memory and no file is created; absent = always a file */
  readonly inlineMaxSizeBytes?: number;
  /** the file to write otherwise (created exclusively, with its parent directories below baseDir) */
  readonly filePath: string;
  /** an existing directory above filePath (the drive's tmp/): never created, so a vanished drive fails */
  readonly baseDir: string;
  /** false when the body is ciphertext: the ETag MD5 is then taken over the plaintext upstream */
  readonly computeMd5?: boolean;
}

export interface StagedBody {
  /** '' when computeMd5 was false */
  readonly md5Hex: string;
  readonly sizeBytes: number;
  /** the whole body when it was kept in memory; undefined when it was written (and fdatasync'ed) to filePath */
  readonly inlineData?: Buffer;
}

/** Before reading a body: a valid announced length within the limit (InvalidArgument / EntityTooLarge). */
export function checkAnnouncedSize(expectedSizeBytes: number | undefined, maxSizeBytes: number): void {
  if (expectedSizeBytes === undefined) return;
  if (!Number.isSafeInteger(expectedSizeBytes) || expectedSizeBytes < 0) {
    throw new StorageError('InvalidArgument', `invalid content length ${expectedSizeBytes}`);
  }
  if (expectedSizeBytes > maxSizeBytes) {
    throw new StorageError('EntityTooLarge', `${expectedSizeBytes} bytes exceeds the maximum of ${maxSizeBytes}`);
  }
}

/** After each chunk: not longer than announced (InvalidArgument), not over the limit (EntityTooLarge). */
export function checkReceivedSize(totalBytes: number, expectedSizeBytes: number | undefined, maxSizeBytes: number): void {
  if (expectedSizeBytes !== undefined && totalBytes > expectedSizeBytes) {
    throw new StorageError('InvalidArgument', `body is longer than the announced ${expectedSizeBytes} bytes`);
  }
  if (totalBytes > maxSizeBytes) throw new StorageError('EntityTooLarge', `body exceeds the maximum of ${maxSizeBytes} bytes`);
}

/** At the end of the body: all announced bytes arrived (IncompleteBody). */
export function checkCompleteSize(totalBytes: number, expectedSizeBytes: number | undefined): void {
  if (expectedSizeBytes !== undefined && totalBytes < expectedSizeBytes) {
    throw new StorageError('IncompleteBody', `received ${totalBytes} of the announced ${expectedSizeBytes} bytes`);
  }
}

async function writeFully(handle: FileHandle, buffer: Buffer, lengthBytes: number): Promise<void> {
  let offsetBytes = 0;
  while (offsetBytes < lengthBytes) {
    const { bytesWritten } = await handle.write(buffer, offsetBytes, lengthBytes - offsetBytes);
    offsetBytes += bytesWritten;
  }
}

/**
 * Consume `body` once. On any failure (iterator exception, size violation, disk error) the partial file is
 * left for the caller to remove with its staging directory; nothing outside `filePath` is touched.
 */
export async function stageBody(options: StageBodyOptions): Promise<StagedBody> {
  const { expectedSizeBytes, maxSizeBytes, inlineMaxSizeBytes } = options;
  checkAnnouncedSize(expectedSizeBytes, maxSizeBytes);
  // A body announced as small never needs a full batch buffer.
  const batchSizeBytes = Math.max(1, Math.min(writeBatchSizeBytes, expectedSizeBytes ?? writeBatchSizeBytes));
  const batch = Buffer.allocUnsafe(batchSizeBytes);
  let batchFillBytes = 0;
  let totalBytes = 0;
  const md5 = options.computeMd5 === false ? undefined : createHash('md5');
  let handle: FileHandle | undefined;

  const openFile = async (): Promise<FileHandle> => {
    await mkdirsDurable(path.dirname(options.filePath), options.baseDir, false);
    return fs.open(options.filePath, 'wx');
  };

  try {
    for await (const chunk of options.body) {
      totalBytes += chunk.length;
      checkReceivedSize(totalBytes, expectedSizeBytes, maxSizeBytes);
      md5?.update(chunk);
      let chunkOffsetBytes = 0;
      while (chunkOffsetBytes < chunk.length) {
        if (batchFillBytes === batch.length) {
          // Flush only when more bytes must go in, so a body that exactly fills the batch can stay inline.
          // Awaiting the write before pulling more input is the backpressure.
          handle ??= await openFile();
          await writeFully(handle, batch, batchFillBytes);
          batchFillBytes = 0;
        }
        const copyBytes = Math.min(batch.length - batchFillBytes, chunk.length - chunkOffsetBytes);
        batch.set(chunk.subarray(chunkOffsetBytes, chunkOffsetBytes + copyBytes), batchFillBytes);
        batchFillBytes += copyBytes;
        chunkOffsetBytes += copyBytes;
      }
    }
    checkCompleteSize(totalBytes, expectedSizeBytes);
    const md5Hex = md5?.digest('hex') ?? '';
    if (handle === undefined && inlineMaxSizeBytes !== undefined && totalBytes <= inlineMaxSizeBytes) {
      return { md5Hex, sizeBytes: totalBytes, inlineData: Buffer.from(batch.subarray(0, batchFillBytes)) };
    }
    handle ??= await openFile();
    await writeFully(handle, batch, batchFillBytes);
    await handle.datasync();
    return { md5Hex, sizeBytes: totalBytes };
  } finally {
    await handle?.close();
  }
}
