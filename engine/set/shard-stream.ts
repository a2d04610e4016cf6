// Streaming erasure coding of one object (or part) over abstract per-drive sinks and sources
// (docs/jbod.md §3, §5). The writer cuts the body into erasure blocks, encodes each block into k data + m
// parity shards and appends every shard as one bitrot frame (digest ‖ shard block) to its drive's
// stream; the reader reads whole frames back, verifies them, falls back to parity for shards that fail,
// and yields the payload bytes of a range.
//
// Layout (what readers rely on): shard i's stream is frame 0 ‖ frame 1 ‖ …, frame b = digest ‖ shard i of
// block b. Every block is blockSizeBytes except the last; a shard block is S = ceil(blockSize / k) bytes,
// the last block's is ceil(lastLength / k). The data shards are the block zero-padded to k·shardLength and
// split in k (the code is systematic), so a healthy read needs no decoding at all.
//
// Neither side knows about files: a ShardSink is "append these buffers", a ShardSource is "read these
// bytes". The set layer maps them to part files, or to inline buffers in the metadata.

import { createHash } from 'node:crypto';
import {
  BitrotError, BitrotWriter, bitrotFrameRange, bitrotHasher, type BitrotAlgorithm,
} from '../erasure/bitrot.ts';
import { shardFileSizeBytes } from '../erasure/distribution.ts';
import { QuorumError } from '../erasure/quorum.ts';
import { checkAnnouncedSize, checkCompleteSize, checkReceivedSize } from '../stage.ts';
import { blockBuffersFor, localBlockBuffers, type BlockCipherPool } from '../../workers/pool.ts';
import {
  createErasureCodec, erasureBlockSizeBytes, shardSizeBytes as blockShardSizeBytes, type ErasureCodec,
} from '../../workers/erasure.ts';

// -------------------------------------------------------------------------------------------- shared

/** One codec per (k, m) for the whole process: codecs are synchronous and keep their own caches. */
const codecs = new Map<string, ErasureCodec>();

function codecFor(dataShards: number, parityShards: number): ErasureCodec {
  const key = `${dataShards}+${parityShards}`;
  let codec = codecs.get(key);
  if (codec === undefined) {
    codec = createErasureCodec(dataShards, parityShards); // validates k and m
    codecs.set(key, codec);
  }
  return codec;
}

function assertBlockSize(blockSizeBytes: number): void {
  if (!Number.isSafeInteger(blockSizeBytes) || blockSizeBytes < 1 || blockSizeBytes > erasureBlockSizeBytes) {
    throw new RangeError(`erasure block size ${blockSizeBytes} is not an integer in 1..${erasureBlockSizeBytes}`);
  }
}

function asError(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value));
}

// -------------------------------------------------------------------------------------------- writer

/** Where one shard's framed stream goes (one per drive of the set, in SHARD order: index i = shard i, 0-based). */
export interface ShardSink {
  /** append these bytes (one or more buffers, written in order); resolves when the caller may reuse them */
  write(chunks: readonly Uint8Array[]): Promise<void>;
}

export interface ErasureWriteOptions {
  /** consumed once; chunks of any size; the producer may reuse a chunk after the next pull, so it is copied */
  readonly body: AsyncIterable<Uint8Array>;
  /** k >= 1 */
  readonly dataShards: number;
  /** m >= 0, m <= k, k+m <= 16 */
  readonly parityShards: number;
  /** erasure block, 1 MiB in production (smaller in tests); at most workers/erasure.ts erasureBlockSizeBytes */
  readonly blockSizeBytes: number;
  readonly algorithm: BitrotAlgorithm;
  /** shards whose sink must survive (k, or k+1 when k == m) */
  readonly writeQuorum: number;
  /** bodies whose total size is <= this are returned in memory (inline); no sink is opened. */
  readonly inlineMaxSizeBytes: number;
  /** opened lazily, once, when the body first exceeds inlineMaxSizeBytes; entry undefined = that drive is offline */
  readonly openSinks: () => Promise<readonly (ShardSink | undefined)[]>;
  /** fewer bytes -> StorageError('IncompleteBody'), more -> StorageError('InvalidArgument') */
  readonly expectedSizeBytes?: number;
  /** more -> StorageError('EntityTooLarge') */
  readonly maxSizeBytes: number;
  /** MD5 of the body bytes (hex) when true, '' otherwise */
  readonly computeMd5: boolean;
  /**
   * Where the MD5 of a body larger than one block is computed: a digest stream on this pool, fed each
   * block in shared memory while the block is encoded here. Absent (or smaller bodies): on this thread.
   */
  readonly digestPool?: BlockCipherPool;
}

export interface ErasureWriteResult {
  readonly md5Hex: string;
  readonly sizeBytes: number;
  /** present iff inline: per shard (shard order) the whole framed shard stream (bitrot frames), k+m buffers */
  readonly inlineShards?: readonly Buffer[];
  /** shard indexes whose sink was undefined or failed (their drives need healing), ascending */
  readonly failedShards: readonly number[];
}

/** A sink's write, with a synchronous throw turned into a rejection. */
async function sinkWrite(sink: ShardSink, chunks: readonly Uint8Array[]): Promise<void> {
  await sink.write(chunks);
}

/**
 * Consume `body` once and erasure-code it. Memory: one block being filled, plus the encoded shards of at
 * most two blocks (the one whose writes are in flight and the one just encoded), plus, before the inline
 * decision is made, the framed shards of at most inlineMaxSizeBytes of body.
 *
 * On a failure (body error, size violation, lost write quorum) the writes already issued are awaited
 * before the error is thrown, so the caller may remove what was written as soon as this settles.
 */
export async function writeErasureStream(options: ErasureWriteOptions): Promise<ErasureWriteResult> {
  const {
    dataShards: k, parityShards: m, blockSizeBytes, algorithm, writeQuorum, inlineMaxSizeBytes, expectedSizeBytes,
    maxSizeBytes,
  } = options;
  const codec = codecFor(k, m);
  const shardCount = k + m;
  assertBlockSize(blockSizeBytes);
  if (!Number.isInteger(writeQuorum) || writeQuorum < 1 || writeQuorum > shardCount) {
    throw new RangeError(`write quorum ${writeQuorum} is impossible with ${shardCount} shards`);
  }
  if (Number.isNaN(inlineMaxSizeBytes)) throw new RangeError('inline maximum is NaN');
  checkAnnouncedSize(expectedSizeBytes, maxSizeBytes);

  const shardBytes = blockShardSizeBytes(blockSizeBytes, k);
  const writers = Array.from({ length: shardCount }, () => new BitrotWriter(shardBytes, algorithm));
  const digestPool = options.computeMd5 && (expectedSizeBytes === undefined || expectedSizeBytes > blockSizeBytes) ? options.digestPool : undefined;
  const digest = digestPool?.createDigest();
  const md5 = options.computeMd5 && digest === undefined ? createHash('md5') : undefined;
  /** the digest of the block buffer's previous contents: awaited before the buffer is filled again */
  let digesting: Promise<void> | undefined;
  let tailDigest: Promise<string> | undefined;
  // A body announced as smaller than a block never needs a whole block buffer. The codec copies the block
  // on encode, so this one buffer is reused for every block (shared memory when a pool thread hashes it).
  const blockBuffers = digestPool === undefined ? undefined : blockBuffersFor(digestPool);
  const block = blockBuffers?.take(blockSizeBytes) ?? Buffer.allocUnsafe(Math.max(1, Math.min(blockSizeBytes, expectedSizeBytes ?? blockSizeBytes)));
  let blockFillBytes = 0;
  let totalBytes = 0;

  /** Frames per shard while the body may still be inline; undefined once the sinks are open. */
  let inlineFrames: Uint8Array[][] | undefined = Array.from({ length: shardCount }, () => []);
  let sinks: (ShardSink | undefined)[] = [];
  const failed = new Array<boolean>(shardCount).fill(false);
  let liveSinks = 0;
  /** The writes of the last dispatched block; never rejects (failures are recorded per sink). */
  let inFlight: Promise<void> | undefined;

  const markFailed = (shard: number): void => {
    if (!failed[shard]) {
      failed[shard] = true;
      liveSinks -= 1;
    }
  };

  const assertQuorum = (): void => {
    if (liveSinks < writeQuorum) throw new QuorumError('write', writeQuorum, liveSinks, shardCount);
  };

  /** Start one write per live sink (in order after the previous one: callers await inFlight first). */
  const dispatch = (chunksPerShard: readonly (readonly Uint8Array[] | undefined)[]): void => {
    const writes: Promise<void>[] = [];
    for (let shard = 0; shard < shardCount; shard++) {
      const sink = sinks[shard];
      const chunks = chunksPerShard[shard];
      if (sink === undefined || failed[shard] || chunks === undefined || chunks.length === 0) continue;
      writes.push(sinkWrite(sink, chunks).then(undefined, () => markFailed(shard)));
    }
    inFlight = writes.length === 0 ? undefined : Promise.all(writes).then(() => undefined);
  };

  const settleInFlight = async (): Promise<void> => {
    const pending = inFlight;
    inFlight = undefined;
    if (pending !== undefined) await pending;
  };

  const openSinks = async (): Promise<void> => {
    const opened = await options.openSinks();
    if (opened.length !== shardCount) throw new RangeError(`openSinks returned ${opened.length} entries for ${shardCount} shards`);
    sinks = [...opened];
    liveSinks = 0;
    sinks.forEach((sink, shard) => {
      if (sink === undefined) failed[shard] = true;
      else liveSinks += 1;
    });
    assertQuorum();
    const buffered = inlineFrames!;
    inlineFrames = undefined;
    dispatch(buffered);
  };

  // Two shard buffers, alternating: block n's shards may still be being written while n+1 is encoded
  // (dispatch waits for n's writes before sending n+1), so one is always free. Inline frames keep theirs.
  const ring: (Buffer | undefined)[] = [undefined, undefined];
  let ringTurn = 0;
  const shardBufferBytes = shardCount * shardBytes;

  /** Encode one block (full, or the short last one) and frame it; store it or send it to the sinks. */
  const emitBlock = async (data: Uint8Array): Promise<void> => {
    if (inlineFrames !== undefined) {
      const shards = codec.encode(data);
      shards.forEach((shard, index) => inlineFrames![index]!.push(...writers[index]!.pushVectored(shard)));
      return;
    }
    ringTurn ^= 1;
    const out = (ring[ringTurn] ??= Buffer.allocUnsafeSlow(shardBufferBytes));
    const shards = codec.encodeInto(data, out);
    // Frame only the shards that still have a sink; hashing runs while the previous block is being written.
    const frames = shards.map((shard, index) => (failed[index] ? undefined : writers[index]!.pushVectored(shard)));
    await settleInFlight();
    assertQuorum();
    dispatch(frames);
  };

  try {
    for await (const chunk of options.body) {
      totalBytes += chunk.length;
      checkReceivedSize(totalBytes, expectedSizeBytes, maxSizeBytes);
      md5?.update(chunk);
      if (inlineFrames !== undefined && totalBytes > inlineMaxSizeBytes) await openSinks();
      let chunkOffsetBytes = 0;
      while (chunkOffsetBytes < chunk.length) {
        if (blockFillBytes === 0 && digesting !== undefined) {
          const previous = digesting;
          digesting = undefined;
          await previous;
        }
        const copyBytes = Math.min(block.length - blockFillBytes, chunk.length - chunkOffsetBytes);
        block.set(chunk.subarray(chunkOffsetBytes, chunkOffsetBytes + copyBytes), blockFillBytes);
        blockFillBytes += copyBytes;
        chunkOffsetBytes += copyBytes;
        if (blockFillBytes === blockSizeBytes) {
          if (digest !== undefined) {
            digesting = digest.update(block); // hashed on the pool while the block is encoded here
            digesting.catch(() => undefined); // awaited before the next fill
          }
          await emitBlock(block);
          blockFillBytes = 0;
        }
      }
      // A write that failed while this chunk was pulled: stop before consuming more of the body.
      if (inlineFrames === undefined) assertQuorum();
    }
    checkCompleteSize(totalBytes, expectedSizeBytes);
    // Only a 0-byte body with a negative inline maximum gets here with the sinks still closed.
    if (inlineFrames !== undefined && totalBytes > inlineMaxSizeBytes) await openSinks();
    if (digesting !== undefined) await digesting;
    digesting = undefined;
    tailDigest = digest?.finish(block.subarray(0, blockFillBytes));
    tailDigest?.catch(() => undefined);
    if (blockFillBytes > 0) await emitBlock(block.subarray(0, blockFillBytes));
    await settleInFlight();
    const md5Hex = md5?.digest('hex') ?? (await tailDigest) ?? '';
    if (inlineFrames !== undefined) {
      return { md5Hex, sizeBytes: totalBytes, inlineShards: inlineFrames.map((frames) => Buffer.concat(frames)), failedShards: [] };
    }
    assertQuorum();
    const failedShards: number[] = [];
    failed.forEach((isFailed, shard) => {
      if (isFailed) failedShards.push(shard);
    });
    return { md5Hex, sizeBytes: totalBytes, failedShards };
  } finally {
    // No block goes back to the pool while a pool thread may still be hashing it.
    await Promise.all([digesting?.catch(() => undefined), tailDigest?.catch(() => undefined)]);
    digest?.abandon(); // a no-op once finished
    if (blockBuffers !== undefined) blockBuffers.give(block);
    await settleInFlight();
  }
}

// -------------------------------------------------------------------------------------------- reader

/** Reads `length` bytes at `position` of one shard's framed stream (a part file or an inline buffer). May reject. */
export interface ShardSource {
  read(position: number, length: number): Promise<Buffer>;
  /**
   * Optional: read `target.length` bytes at `position` into `target` (reused by the reader across
   * windows); resolves with the bytes read, fewer only at the end of the stream.
   */
  readInto?(position: number, target: Buffer): Promise<number>;
}

export interface ErasureReadOptions {
  readonly dataShards: number;
  readonly parityShards: number;
  readonly blockSizeBytes: number;
  readonly algorithm: BitrotAlgorithm;
  /** bytes of (possibly encrypted) data stored for this part: the erasure-coded payload length */
  readonly sizeBytes: number;
  /** shard order; undefined = that shard is unavailable (drive offline / file missing) */
  readonly sources: readonly (ShardSource | undefined)[];
  /** byte range [start, endExclusive) of the part's payload to return */
  readonly start: number;
  readonly endExclusive: number;
  /** called once per shard that failed (read error, short read, bitrot mismatch); used to schedule healing */
  readonly onShardError?: (shardIndex: number, error: Error) => void;
}

/** Erasure blocks fetched by one read call per shard (the read-ahead window). */
const readAheadBlocks = 4;

/**
 * Yields the payload bytes of [start, endExclusive) in order, each chunk at most one block.
 *
 * Per window of up to readAheadBlocks blocks, one read per shard covers the window's frames: first the
 * k data shards in parallel, then, for each one that fails (rejects, returns the wrong length, or has a
 * frame whose digest does not match), the next parity shard, until k shards verified. A failed shard is
 * reported once and not read again for the rest of the stream. Fewer than k good shards → QuorumError,
 * before anything of that window is yielded. Unavailable (undefined) sources are skipped, not reported.
 * Chunks yielded may be views of the buffers the sources returned.
 */
export async function* readErasureStream(options: ErasureReadOptions): AsyncGenerator<Buffer> {
  const {
    dataShards: k, parityShards: m, blockSizeBytes, algorithm, sizeBytes, sources, start, endExclusive,
  } = options;
  const codec = codecFor(k, m);
  const shardCount = k + m;
  assertBlockSize(blockSizeBytes);
  if (sources.length !== shardCount) throw new RangeError(`${sources.length} shard sources for ${shardCount} shards`);
  if (!Number.isSafeInteger(sizeBytes) || sizeBytes < 0) throw new RangeError(`invalid payload size ${sizeBytes}`);
  if (!(Number.isSafeInteger(start) && Number.isSafeInteger(endExclusive) && 0 <= start && start <= endExclusive && endExclusive <= sizeBytes)) {
    throw new RangeError(`range ${start}..${endExclusive} outside the payload of ${sizeBytes} bytes`);
  }
  if (start === endExclusive) return;

  const shardBytes = blockShardSizeBytes(blockSizeBytes, k);
  const shardPayloadBytes = shardFileSizeBytes(sizeBytes, blockSizeBytes, k);
  const hasher = bitrotHasher(algorithm);
  const digestBytes = hasher.digestSizeBytes;
  const frameStrideBytes = shardBytes + digestBytes;
  /** shards that failed once: never read again in this stream */
  const bad = new Array<boolean>(shardCount).fill(false);

  const firstBlock = Math.floor(start / blockSizeBytes);
  const endBlock = Math.ceil(endExclusive / blockSizeBytes);
  // Reused across windows (a yielded chunk is valid until the next pull): per shard one window buffer,
  // and one block buffer to join a block's data shards in. A GET then allocates nothing per MiB.
  const windowBytesMax = readAheadBlocks * frameStrideBytes;
  const scratch = new Array<Buffer | undefined>(shardCount).fill(undefined);
  let joined: Buffer | undefined;

  try {
    for (let windowFirst = firstBlock; windowFirst < endBlock; windowFirst += readAheadBlocks) {
      const windowEnd = Math.min(windowFirst + readAheadBlocks, endBlock);
      const { startBytes, endBytes } = bitrotFrameRange(shardPayloadBytes, shardBytes, windowFirst, windowEnd, algorithm);
      const windowBytes = endBytes - startBytes;

      /** Read the window's frames of one shard and verify every frame: the buffer, or why it is unusable. */
      const readWindow = async (shard: number, source: ShardSource): Promise<Buffer | Error> => {
        let framed: Buffer;
        try {
          if (source.readInto !== undefined) {
            const target = (scratch[shard] ??= localBlockBuffers.take(windowBytesMax)).subarray(0, windowBytes);
            framed = target.subarray(0, await source.readInto(startBytes, target));
          } else {
            framed = await source.read(startBytes, windowBytes);
          }
        } catch (error) {
          return asError(error);
        }
        if (framed.length !== windowBytes) {
          const kind = framed.length < windowBytes ? 'truncated' : 'oversized';
          const blockIndex = windowFirst + Math.min(Math.floor(framed.length / frameStrideBytes), windowEnd - windowFirst);
          return new BitrotError(kind, blockIndex, `shard ${shard}: read ${framed.length} bytes at ${startBytes}, expected ${windowBytes}`);
        }
        const digest = Buffer.allocUnsafe(digestBytes);
        for (let blockIndex = windowFirst; blockIndex < windowEnd; blockIndex++) {
          const frameOffset = (blockIndex - windowFirst) * frameStrideBytes;
          const dataBytes = Math.min(shardBytes, shardPayloadBytes - blockIndex * shardBytes);
          const data = framed.subarray(frameOffset + digestBytes, frameOffset + digestBytes + dataBytes);
          hasher.digestInto(data, digest, 0);
          const stored = framed.subarray(frameOffset, frameOffset + digestBytes);
          if (!digest.equals(stored)) {
            return new BitrotError('checksum', blockIndex,
              `shard ${shard}: ${algorithm} ${stored.toString('hex')} stored, ${digest.toString('hex')} computed`);
          }
        }
        return framed;
      };

      // Data shards first (no decoding when they are all good), then parity in index order as replacements.
      const windowShards = new Array<Buffer | undefined>(shardCount).fill(undefined);
      let good = 0;
      let nextCandidate = 0;
      while (good < k) {
        const batch: number[] = [];
        while (batch.length < k - good && nextCandidate < shardCount) {
          if (sources[nextCandidate] !== undefined && !bad[nextCandidate]) batch.push(nextCandidate);
          nextCandidate += 1;
        }
        if (batch.length === 0) throw new QuorumError('read', k, good, shardCount);
        const results = await Promise.all(batch.map((shard) => readWindow(shard, sources[shard]!)));
        results.forEach((result, i) => {
          const shard = batch[i]!;
          if (result instanceof Error) {
            bad[shard] = true;
            options.onShardError?.(shard, result);
          } else {
            windowShards[shard] = result;
            good += 1;
          }
        });
      }

      let allData = true;
      for (let shard = 0; shard < k; shard++) if (windowShards[shard] === undefined) allData = false;

      for (let blockIndex = windowFirst; blockIndex < windowEnd; blockIndex++) {
        const blockStart = blockIndex * blockSizeBytes;
        const blockLength = Math.min(blockSizeBytes, sizeBytes - blockStart);
        const blockShardBytes = Math.ceil(blockLength / k);
        const dataOffset = (blockIndex - windowFirst) * frameStrideBytes + digestBytes;
        // The part of this block inside the range, relative to the block.
        const low = Math.max(start, blockStart) - blockStart;
        const high = Math.min(endExclusive, blockStart + blockLength) - blockStart;

        if (allData) {
          // Systematic code: the block is the data shards one after the other (the padding is past `high`).
          const pieces: Buffer[] = [];
          for (let shard = Math.floor(low / blockShardBytes); shard * blockShardBytes < high; shard++) {
            const shardStart = shard * blockShardBytes;
            const from = Math.max(low, shardStart) - shardStart;
            const to = Math.min(high, shardStart + blockShardBytes) - shardStart;
            pieces.push(windowShards[shard]!.subarray(dataOffset + from, dataOffset + to));
          }
          if (pieces.length === 1) {
            yield pieces[0]!;
          } else {
            joined ??= localBlockBuffers.take(blockSizeBytes);
            let offset = 0;
            for (const piece of pieces) offset += piece.copy(joined, offset);
            yield joined.subarray(0, offset);
          }
        } else {
          const shards = windowShards.map((framed) => framed?.subarray(dataOffset, dataOffset + blockShardBytes));
          const { block } = codec.reconstruct(shards, blockLength);
          yield low === 0 && high === blockLength ? block : block.subarray(low, high);
        }
      }
    }
  } finally {
    for (const buffer of scratch) if (buffer !== undefined) localBlockBuffers.give(buffer);
    if (joined !== undefined) localBlockBuffers.give(joined);
  }
}
