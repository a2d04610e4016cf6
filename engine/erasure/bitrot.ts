// Bitrot framing of shard files and inline shards (reference/erasure-jbod.md §4; docs/jbod.md §5).
//
// A shard stream is a sequence of frames, one per erasure block: `digest ‖ shard block`. Every block is
// S = ceil(blockSize / D) bytes except the last, which may be shorter; the digest covers exactly the
// block's bytes. MinIO uses HighwayHash-256 (32 bytes); we use XXH3-128 (16 bytes) by default, with
// CRC32C (4 bytes, uint32 BE) as the alternative: the algorithm is recorded per object version, so either
// can be read back. Why XXH3-128: docs/jbod.md §5 (measured numbers).
//
// Readers hash every frame and compare *before* its bytes are used, and report the index of the first
// bad block so the caller can fall back to parity and queue a heal.

import { crc32c } from '@node-rs/crc32';
import { createXXHash128, type IHasher } from 'hash-wasm';
import { maxErasureBlockSizeBytes } from './distribution.ts';

export type BitrotAlgorithm = 'xxh3-128' | 'crc32c';
export const bitrotAlgorithms: readonly BitrotAlgorithm[] = ['xxh3-128', 'crc32c'];
export const defaultBitrotAlgorithm: BitrotAlgorithm = 'xxh3-128';

/** A shard block is at most one erasure block (D = 1). */
export const maxShardSizeBytes = maxErasureBlockSizeBytes;

export function bitrotDigestSizeBytes(algorithm: BitrotAlgorithm): number {
  return algorithm === 'crc32c' ? 4 : 16;
}

/** Writes the digest of `data` into `out` at `offset` (digestSizeBytes bytes). Synchronous, stateless. */
export interface BitrotHasher {
  readonly algorithm: BitrotAlgorithm;
  readonly digestSizeBytes: number;
  digestInto(data: Uint8Array, out: Uint8Array, offset: number): void;
}

const crc32cHasher: BitrotHasher = {
  algorithm: 'crc32c',
  digestSizeBytes: 4,
  digestInto(data, out, offset) {
    const crc = crc32c(data);
    out[offset] = crc >>> 24;
    out[offset + 1] = (crc >>> 16) & 0xff;
    out[offset + 2] = (crc >>> 8) & 0xff;
    out[offset + 3] = crc & 0xff;
  },
};

// One WASM instance, created at module load (as api/checksum.ts does for CRC-64). Each digest is one
// synchronous init/update/digest sequence, so callers can never interleave inside it.
const xxh3Wasm: IHasher = await createXXHash128();

const xxh3Hasher: BitrotHasher = {
  algorithm: 'xxh3-128',
  digestSizeBytes: 16,
  digestInto(data, out, offset) {
    // digest('binary') is XXH128's canonical (big-endian) form.
    out.set(xxh3Wasm.init().update(data).digest('binary'), offset);
  },
};

export function bitrotHasher(algorithm: BitrotAlgorithm = defaultBitrotAlgorithm): BitrotHasher {
  switch (algorithm) {
    case 'xxh3-128':
      return xxh3Hasher;
    case 'crc32c':
      return crc32cHasher;
  }
}

// -------------------------------------------------------------------------------------------- sizes

function assertShardSize(shardSizeBytes: number): void {
  if (!Number.isSafeInteger(shardSizeBytes) || shardSizeBytes < 1 || shardSizeBytes > maxShardSizeBytes) {
    throw new RangeError(`shard size ${shardSizeBytes} is not an integer in 1..${maxShardSizeBytes}`);
  }
}

function assertPayloadSize(payloadSizeBytes: number): void {
  if (!Number.isSafeInteger(payloadSizeBytes) || payloadSizeBytes < 0) throw new RangeError(`invalid shard payload size ${payloadSizeBytes}`);
}

/** Frames in a shard stream of `payloadSizeBytes` (= erasure blocks of the object). */
export function bitrotBlockCount(payloadSizeBytes: number, shardSizeBytes: number): number {
  assertPayloadSize(payloadSizeBytes);
  assertShardSize(shardSizeBytes);
  return Math.ceil(payloadSizeBytes / shardSizeBytes);
}

/**
 * On-disk size of a framed shard file (or inline shard): payload + digest · ceil(payload / S). `payload` is
 * distribution.ts shardFileSizeBytes(objectSize, blockSize, D) and S is shardSizeBytes(blockSize, D).
 */
export function bitrotShardFileSizeBytes(
  payloadSizeBytes: number,
  shardSizeBytes: number,
  algorithm: BitrotAlgorithm = defaultBitrotAlgorithm,
): number {
  return payloadSizeBytes + bitrotDigestSizeBytes(algorithm) * bitrotBlockCount(payloadSizeBytes, shardSizeBytes);
}

/** Offset of frame `blockIndex` in the framed stream (MinIO: (o/S)·digest + o for shard offset o = index·S). */
export function bitrotFrameOffsetBytes(
  blockIndex: number,
  shardSizeBytes: number,
  algorithm: BitrotAlgorithm = defaultBitrotAlgorithm,
): number {
  assertShardSize(shardSizeBytes);
  if (!Number.isSafeInteger(blockIndex) || blockIndex < 0) throw new RangeError(`invalid block index ${blockIndex}`);
  return blockIndex * (shardSizeBytes + bitrotDigestSizeBytes(algorithm));
}

/** Byte range [start, end) of the framed stream holding frames firstBlockIndex .. endBlockIndex-1. */
export function bitrotFrameRange(
  payloadSizeBytes: number,
  shardSizeBytes: number,
  firstBlockIndex: number,
  endBlockIndex: number,
  algorithm: BitrotAlgorithm = defaultBitrotAlgorithm,
): { readonly startBytes: number; readonly endBytes: number } {
  const blockCount = bitrotBlockCount(payloadSizeBytes, shardSizeBytes);
  if (!(Number.isSafeInteger(firstBlockIndex) && Number.isSafeInteger(endBlockIndex) && 0 <= firstBlockIndex && firstBlockIndex <= endBlockIndex && endBlockIndex <= blockCount)) {
    throw new RangeError(`block range ${firstBlockIndex}..${endBlockIndex} outside 0..${blockCount}`);
  }
  const startBytes = bitrotFrameOffsetBytes(firstBlockIndex, shardSizeBytes, algorithm);
  const endBytes =
    endBlockIndex === blockCount
      ? bitrotShardFileSizeBytes(payloadSizeBytes, shardSizeBytes, algorithm)
      : bitrotFrameOffsetBytes(endBlockIndex, shardSizeBytes, algorithm);
  return { startBytes, endBytes };
}

// -------------------------------------------------------------------------------------------- errors

/**
 * checksum: a frame's digest does not match its data. truncated: the stream ends inside or before frame
 * `blockIndex`. oversized: bytes follow the last frame (`blockIndex` = the frame count).
 */
export type BitrotErrorKind = 'checksum' | 'truncated' | 'oversized';

export class BitrotError extends Error {
  constructor(
    readonly kind: BitrotErrorKind,
    /** 0-based erasure block (frame) index of the first bad block */
    readonly blockIndex: number,
    detail: string,
  ) {
    super(`bitrot: ${kind} at block ${blockIndex}: ${detail}`);
    this.name = 'BitrotError';
  }
}

// -------------------------------------------------------------------------------------------- writer

/**
 * Frames the shard blocks of one shard stream. Every block but the last must be exactly S bytes; after a
 * shorter block nothing more may come (and with `payloadSizeBytes` given, each block must be exactly the
 * size the layout expects). Violations are bugs in the caller and throw.
 */
export class BitrotWriter {
  readonly hasher: BitrotHasher;
  #blockCount = 0;
  #payloadBytes = 0;
  #closedByShortBlock = false;

  constructor(
    readonly shardSizeBytes: number,
    algorithm: BitrotAlgorithm = defaultBitrotAlgorithm,
    /** when known: the stream's total payload; pushes must add up to exactly this */
    readonly payloadSizeBytes?: number,
  ) {
    assertShardSize(shardSizeBytes);
    if (payloadSizeBytes !== undefined) assertPayloadSize(payloadSizeBytes);
    this.hasher = bitrotHasher(algorithm);
  }

  get blockCount(): number {
    return this.#blockCount;
  }

  get payloadBytesWritten(): number {
    return this.#payloadBytes;
  }

  get framedBytesWritten(): number {
    return this.#payloadBytes + this.#blockCount * this.hasher.digestSizeBytes;
  }

  #accept(shardBlock: Uint8Array): void {
    const length = shardBlock.length;
    if (length < 1 || length > this.shardSizeBytes) throw new RangeError(`shard block of ${length} bytes, expected 1..${this.shardSizeBytes}`);
    if (this.#closedByShortBlock) throw new Error('bitrot writer: a block after the short (last) block');
    if (this.payloadSizeBytes !== undefined) {
      const expected = Math.min(this.shardSizeBytes, this.payloadSizeBytes - this.#payloadBytes);
      if (length !== expected) throw new RangeError(`shard block ${this.#blockCount} is ${length} bytes, the layout needs ${expected}`);
    }
    if (length < this.shardSizeBytes) this.#closedByShortBlock = true;
    this.#blockCount += 1;
    this.#payloadBytes += length;
  }

  /** One frame as a fresh buffer: digest ‖ shardBlock. */
  push(shardBlock: Uint8Array): Buffer {
    this.#accept(shardBlock);
    const digestSize = this.hasher.digestSizeBytes;
    const frame = Buffer.allocUnsafe(digestSize + shardBlock.length);
    this.hasher.digestInto(shardBlock, frame, 0);
    frame.set(shardBlock, digestSize);
    return frame;
  }

  /** The same frame as [digest, shardBlock] for a vectored write, without copying the block. */
  pushVectored(shardBlock: Uint8Array): [Buffer, Uint8Array] {
    this.#accept(shardBlock);
    const digest = Buffer.allocUnsafe(this.hasher.digestSizeBytes);
    this.hasher.digestInto(shardBlock, digest, 0);
    return [digest, shardBlock];
  }

  /** Assert the stream is complete (all of payloadSizeBytes pushed); a short stream is a caller bug. */
  finish(): void {
    if (this.payloadSizeBytes !== undefined && this.#payloadBytes !== this.payloadSizeBytes) {
      throw new Error(`bitrot writer finished after ${this.#payloadBytes} of ${this.payloadSizeBytes} payload bytes`);
    }
  }
}

// -------------------------------------------------------------------------------------------- readers

export interface BitrotVerifierOptions {
  readonly shardSizeBytes: number;
  /** total payload of the shard stream (not the framed size) */
  readonly payloadSizeBytes: number;
  readonly algorithm?: BitrotAlgorithm;
  /** first frame the input starts with (range reads: the stream from bitrotFrameRange().startBytes) */
  readonly firstBlockIndex?: number;
  /** frame after the last one expected; default: to the end of the stream */
  readonly endBlockIndex?: number;
}

/**
 * Incremental verifier: push the framed bytes in chunks of any size, get back each verified shard block
 * as soon as its frame is complete. Throws BitrotError for the first bad frame, for bytes past the last
 * frame, and (from end()) for a stream that stopped early. A push that verified some blocks before
 * hitting a bad frame returns those blocks, and the next call throws; after an error every call throws.
 * Returned blocks are views of the pushed chunks when a frame lies inside one chunk: do not reuse them.
 * Memory held: at most one frame plus one chunk.
 */
export class BitrotVerifier {
  readonly hasher: BitrotHasher;
  readonly shardSizeBytes: number;
  readonly payloadSizeBytes: number;
  readonly endBlockIndex: number;
  #blockIndex: number;
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  #failure: BitrotError | undefined;
  readonly #digest: Buffer;

  constructor(options: BitrotVerifierOptions) {
    this.shardSizeBytes = options.shardSizeBytes;
    this.payloadSizeBytes = options.payloadSizeBytes;
    const blockCount = bitrotBlockCount(options.payloadSizeBytes, options.shardSizeBytes);
    this.#blockIndex = options.firstBlockIndex ?? 0;
    this.endBlockIndex = options.endBlockIndex ?? blockCount;
    if (!(Number.isSafeInteger(this.#blockIndex) && Number.isSafeInteger(this.endBlockIndex) && 0 <= this.#blockIndex && this.#blockIndex <= this.endBlockIndex && this.endBlockIndex <= blockCount)) {
      throw new RangeError(`block range ${this.#blockIndex}..${this.endBlockIndex} outside 0..${blockCount}`);
    }
    this.hasher = bitrotHasher(options.algorithm ?? defaultBitrotAlgorithm);
    this.#digest = Buffer.alloc(this.hasher.digestSizeBytes);
  }

  /** Index of the next frame expected. */
  get nextBlockIndex(): number {
    return this.#blockIndex;
  }

  #frameSizeBytes(blockIndex: number): number {
    return this.hasher.digestSizeBytes + Math.min(this.shardSizeBytes, this.payloadSizeBytes - blockIndex * this.shardSizeBytes);
  }

  /**
   * Record the failure. Blocks already verified in this push are still returned (they are good data);
   * the error is then thrown by the next push() or end().
   */
  #fail(error: BitrotError, verified: Buffer[]): Buffer[] {
    this.#failure = error;
    this.#pending = [];
    this.#pendingBytes = 0;
    if (verified.length === 0) throw error;
    return verified;
  }

  /** Remove and return the first `size` pending bytes (a view when they lie in one chunk). */
  #take(size: number): Buffer {
    const head = this.#pending[0]!;
    if (head.length >= size) {
      if (head.length === size) this.#pending.shift();
      else this.#pending[0] = head.subarray(size);
      this.#pendingBytes -= size;
      return head.subarray(0, size);
    }
    const frame = Buffer.allocUnsafe(size);
    let filled = 0;
    while (filled < size) {
      const chunk = this.#pending[0]!;
      const used = Math.min(chunk.length, size - filled);
      frame.set(chunk.subarray(0, used), filled);
      filled += used;
      if (used === chunk.length) this.#pending.shift();
      else this.#pending[0] = chunk.subarray(used);
    }
    this.#pendingBytes -= size;
    return frame;
  }

  push(chunk: Uint8Array): Buffer[] {
    if (this.#failure !== undefined) throw this.#failure;
    const verified: Buffer[] = [];
    if (chunk.length === 0) return verified;
    this.#pending.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    this.#pendingBytes += chunk.length;
    const digestSize = this.hasher.digestSizeBytes;
    while (this.#blockIndex < this.endBlockIndex) {
      const frameSize = this.#frameSizeBytes(this.#blockIndex);
      if (this.#pendingBytes < frameSize) break;
      const frame = this.#take(frameSize);
      const data = frame.subarray(digestSize);
      this.hasher.digestInto(data, this.#digest, 0);
      if (!this.#digest.equals(frame.subarray(0, digestSize))) {
        const stored = frame.subarray(0, digestSize).toString('hex');
        return this.#fail(new BitrotError('checksum', this.#blockIndex,
          `${this.hasher.algorithm} ${stored} stored, ${this.#digest.toString('hex')} computed`), verified);
      }
      verified.push(data);
      this.#blockIndex += 1;
    }
    if (this.#blockIndex === this.endBlockIndex && this.#pendingBytes > 0) {
      return this.#fail(new BitrotError('oversized', this.#blockIndex, `${this.#pendingBytes} bytes after the last frame`), verified);
    }
    return verified;
  }

  /** The input is over: throws BitrotError('truncated') unless every expected frame arrived. */
  end(): void {
    if (this.#failure !== undefined) throw this.#failure;
    if (this.#blockIndex < this.endBlockIndex) {
      this.#fail(new BitrotError('truncated', this.#blockIndex,
        `stream ended ${this.#pendingBytes} bytes into a ${this.#frameSizeBytes(this.#blockIndex)}-byte frame, ${this.endBlockIndex - this.#blockIndex} frame(s) missing`), []);
    }
  }
}

/**
 * Verify a whole framed shard held in memory (inline data, or a small part file). The length is checked
 * first (a wrong length never gets hashed), then every frame. Returns the verified blocks (views of
 * `framed`) or the BitrotError of the first bad block.
 */
export function verifyFramedShard(
  framed: Uint8Array,
  shardSizeBytes: number,
  payloadSizeBytes: number,
  algorithm: BitrotAlgorithm = defaultBitrotAlgorithm,
): Buffer[] | BitrotError {
  const expectedBytes = bitrotShardFileSizeBytes(payloadSizeBytes, shardSizeBytes, algorithm);
  const blockCount = bitrotBlockCount(payloadSizeBytes, shardSizeBytes);
  if (framed.length > expectedBytes) {
    return new BitrotError('oversized', blockCount, `${framed.length} bytes, the layout needs ${expectedBytes}`);
  }
  if (framed.length < expectedBytes) {
    const frameBytes = shardSizeBytes + bitrotDigestSizeBytes(algorithm);
    return new BitrotError('truncated', Math.floor(framed.length / frameBytes), `${framed.length} bytes, the layout needs ${expectedBytes}`);
  }
  const verifier = new BitrotVerifier({ shardSizeBytes, payloadSizeBytes, algorithm });
  try {
    const blocks = verifier.push(framed);
    verifier.end();
    return blocks;
  } catch (error) {
    if (error instanceof BitrotError) return error;
    throw error;
  }
}

/**
 * Streaming reader: verifies a framed shard stream (e.g. a part file read from bitrotFrameRange) block
 * by block and yields each verified block; throws BitrotError at the first bad, missing or extra frame.
 */
export async function* readVerifiedShard(
  source: AsyncIterable<Uint8Array>,
  options: BitrotVerifierOptions,
): AsyncGenerator<Buffer, void, undefined> {
  const verifier = new BitrotVerifier(options);
  for await (const chunk of source) yield* verifier.push(chunk);
  verifier.end();
}
