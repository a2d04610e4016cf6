// Encryption at rest on the write and read paths: a plaintext body becomes DARE 2.0 ciphertext (after the
// ETag MD5 and the size were taken over the plaintext), and a stored ciphertext range becomes plaintext,
// reading only the packages the range needs (docs/encryption.md).
import { createHash } from 'node:crypto';
import { DareError, darePackageBytesMax, darePayloadBytesMax, encryptedSizeBytes, openPackagesInto, randomDareNonce, sealPackagesInto, type DareErrorReason } from '../workers/dare.ts';
import { cipherBlockBytesFor, decryptStreamPooled, defaultBlockBytes, encryptStreamPooled, type BlockBuffers } from '../workers/encrypt-stream.ts';
import { holdableBlockBuffers } from './aligned-buffers.ts';
import { secureRandomBytes } from '../workers/random-pool.ts';
import type { BlockOpener, LoanedBlock } from './file-reader.ts';
import { nativeGcm, nativeOpenBlock } from '../workers/native-gcm.ts';
import { BlockBufferPool, blockBuffersFor, createBlockCipherPool, localBlockBuffers, type BlockCipherPool } from '../workers/pool.ts';
import { planEncryptedRange } from './crypto/range.ts';
import type { DataEncryption } from './types.ts';
import { StorageError } from './types.ts';
import { checkReceivedSize } from './stage.ts';

/**
 * At or below one pool block the hand-off to a worker (a message round trip and a thread wake-up, tens of
 * µs) costs more than sealing in place, so small bodies and small ranges stay on the calling thread.
 */
const inlineMaxBytes = 1024 * 1024;
const inlinePool = createBlockCipherPool(0);

function poolFor(pool: BlockCipherPool, sizeBytes: number | undefined): BlockCipherPool {
  return sizeBytes !== undefined && sizeBytes <= inlineMaxBytes ? inlinePool : pool;
}

/**
 * Where single-drive reads open their 1 MiB blocks when not in their read job (COFFER_OPEN_IN_READ=off): on the
 * calling thread where native/vaes_gcm.c runs. Any hand-off to another thread here (a piscina task, even a
 * libuv pool job) costs the event loop 55–130 µs to wake a sleeping thread and take its answer (the wake-ups
 * of a 2-vCPU VM), and VAES opens a whole block in ~115 µs (session 18, one server, 16 MiB SSE-S3 GET c=4,
 * 8 rounds alternating with the pool: server CPU 11.7 → 8.75 ms per GET, first byte 12.6 → 5.9 ms, 1,649 →
 * 1,702 MiB/s). With OpenSSL (~250 µs per block) the event loop became the bound instead (6 rounds: 1,594 →
 * 1,473 MiB/s), so slower kernels keep the pool. Erasure-coded reads always use the pool: their event loop
 * also decodes and verifies shards (4 drives EC:2, 8 rounds: inline 773 vs pool 844 MiB/s).
 */
export const openInline: boolean = nativeGcm?.implementation === 'vaes-avx512';

export interface PlaintextTally {
  /** '' when the encryption said no one needs it (DataEncryption.plaintextMd5 false) */
  md5Hex: string;
  sizeBytes: number;
}

/**
 * Encrypt `body` in 1 MiB blocks on the cipher pool; the ETag MD5 of the plaintext is computed in the same
 * task as each seal (workers/md5-batcher.ts, batched with other uploads' blocks), so neither leaves work on
 * the event loop. `tally` is filled once the body has been consumed.
 */
export function encryptBody(
  body: AsyncIterable<Uint8Array>,
  encryption: DataEncryption,
  tally: PlaintextTally,
  pool: BlockCipherPool,
  expectedSizeBytes: number | undefined,
): AsyncIterable<Buffer> {
  if (expectedSizeBytes !== undefined && expectedSizeBytes <= inlineMaxBytes) return sealSmallBody(body, encryption, tally, expectedSizeBytes);
  async function* plaintext(): AsyncGenerator<Uint8Array> {
    let sizeBytes = 0;
    for await (const chunk of body) {
      sizeBytes += chunk.length;
      yield chunk;
    }
    tally.sizeBytes = sizeBytes;
    if (encryption.plaintextMd5 === false) tally.md5Hex = '';
  }
  const sealingPool = poolFor(pool, expectedSizeBytes);
  const nonce = encryption.nonce ?? randomDareNonce();
  async function* sealed(): AsyncGenerator<Buffer> {
    // Created on the first pull: a body refused before it is read (EntityTooLarge) leaves no digest state
    // behind; once started, encryptStreamPooled finishes or abandons it.
    const digest = encryption.plaintextMd5 === false
      ? undefined
      : { stream: sealingPool.createDigest(), onMd5: (md5Hex: string) => { tally.md5Hex = md5Hex; } };
    // recycle: every engine writer (stageBody, the erasure writer) copies each chunk before pulling the next.
    yield* encryptStreamPooled(plaintext(), encryption.key, nonce, sealingPool, {
      recycle: true,
      outputBuffers: pageAlignedOutputs(blockBuffersFor(sealingPool)),
      ...(digest ? { digest } : {}),
    });
  }
  return sealed();
}

/**
 * Sealed blocks go into page-aligned buffers, which the file writer hands to the disk with O_DIRECT as they
 * are (engine/file-writer.ts): no copy of the ciphertext on the event loop. `fallback` once those run out.
 */
function pageAlignedOutputs(fallback: BlockBuffers): BlockBuffers {
  const aligned = holdableBlockBuffers(cipherBlockBytesFor(defaultBlockBytes));
  return {
    take: (sizeBytes) => (sizeBytes <= aligned.bufferBytes ? aligned.acquire() : undefined) ?? fallback.take(sizeBytes),
    give: (buffer) => (aligned.owns(buffer) ? aligned.release(buffer) : fallback.give(buffer)),
  };
}

/**
 * A body announced at ≤ 1 MiB: gathered (bounded by the announcement), hashed and sealed in one call here,
 * with the same bytes as the block pipeline — which for a 4 KiB PUT cost ~190 µs of generators, windows and
 * 1 MiB block buffers against ~40 µs for the MD5 and the seal. Longer than announced → InvalidArgument at
 * once; shorter → fewer ciphertext bytes, which the engine's size check reports as IncompleteBody.
 */
async function* sealSmallBody(body: AsyncIterable<Uint8Array>, encryption: DataEncryption, tally: PlaintextTally, expectedSizeBytes: number): AsyncGenerator<Buffer> {
  const plaintext = smallBuffers.take(sizeClassBytes(expectedSizeBytes));
  let ciphertext: Buffer | undefined;
  try {
    const md5 = encryption.plaintextMd5 === false ? undefined : createHash('md5');
    let sizeBytes = 0;
    for await (const chunk of body) {
      checkReceivedSize(sizeBytes + chunk.length, expectedSizeBytes, inlineMaxBytes);
      plaintext.set(chunk, sizeBytes); // copied: the producer may reuse its chunk after the next pull
      md5?.update(chunk);
      sizeBytes += chunk.length;
    }
    tally.md5Hex = md5?.digest('hex') ?? '';
    tally.sizeBytes = sizeBytes;
    if (sizeBytes === 0) return;
    const sealedBytes = encryptedSizeBytes(sizeBytes);
    ciphertext = smallBuffers.take(sizeClassBytes(sealedBytes));
    sealPackagesInto(encryption.key, encryption.nonce ?? randomDareNonce(), 0, plaintext.subarray(0, sizeBytes), true, ciphertext);
    // recycle: the engine's writers copy a chunk before they pull the next (see encryptBody)
    yield ciphertext.subarray(0, sealedBytes);
  } finally {
    smallBuffers.give(plaintext);
    if (ciphertext !== undefined) smallBuffers.give(ciphertext);
  }
}

/**
 * Gather and seal buffers of small bodies, reused: a 4 KiB SSE PUT allocated two fresh ArrayBuffers (malloc,
 * external memory for the GC to track and sweep) for ~40 µs of hashing and sealing. Power-of-two sizes from
 * 8 KiB, at most 4 MiB kept free per size.
 */
const smallBuffers = new BlockBufferPool(false, 64, 4 * 1024 * 1024);
const sizeClassMinBytes = 8 * 1024;

function sizeClassBytes(sizeBytes: number): number {
  return sizeBytes <= sizeClassMinBytes ? sizeClassMinBytes : 2 ** Math.ceil(Math.log2(sizeBytes));
}

/** The ETag of an encrypted object: the plaintext MD5, or a random one where the MD5 would reveal content. */
export function encryptedObjectEtag(encryption: DataEncryption, md5Hex: string): string {
  if (encryption.randomEtag) return secureRandomBytes(16).toString('hex');
  if (md5Hex === '') throw new StorageError('InternalError', 'the plaintext MD5 of an object with an MD5 ETag was not computed');
  return md5Hex;
}

export function expectedCiphertextBytes(plaintextBytes: number | undefined): number | undefined {
  return plaintextBytes === undefined ? undefined : encryptedSizeBytes(plaintextBytes);
}

async function readWhole(source: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of source) chunks.push(Buffer.from(chunk)); // a reader may reuse its buffer
  return chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
}

/**
 * Whether encrypted reads of part files open each block in the thread-pool job that reads it (native/dare_open.c):
 * the event loop then neither opens blocks nor hands them to another thread. Needs the addon;
 * COFFER_OPEN_IN_READ=off turns it off (then openInline decides where they are opened).
 */
export const readsOpenInJob: boolean = nativeOpenBlock !== undefined && process.env.COFFER_OPEN_IN_READ?.trim().toLowerCase() !== 'off';

/**
 * The BlockOpener of one part's DARE stream from `firstSequence` on: blocks of `cipherBlockBytes` (whole
 * packages) opened by native/dare_open.c, or here for ChaCha20-Poly1305 packages, which only node:crypto opens.
 */
export function dareBlockOpener(key: Buffer, firstSequence: number, cipherBlockBytes: number): BlockOpener {
  const packagesPerBlock = cipherBlockBytes / darePackageBytesMax;
  if (!Number.isInteger(packagesPerBlock)) throw new Error(`dareBlockOpener: ${cipherBlockBytes} bytes is not whole packages`);
  const outputBytes = packagesPerBlock * darePayloadBytesMax;
  return {
    async readAndOpen(fd, position, readBytes, buffer, blockOffset, blockBytes, blockIndex, out) {
      const sequence = firstSequence + blockIndex * packagesPerBlock;
      const result = await nativeOpenBlock!(fd, position, readBytes, buffer, blockOffset, blockBytes, key, sequence, out);
      if (result.gotBytes < blockOffset + blockBytes) return { gotBytes: result.gotBytes };
      if (!result.opened) {
        const opened = openPackagesInto(key, buffer.subarray(blockOffset, blockOffset + blockBytes), sequence, undefined, out);
        return { gotBytes: result.gotBytes, opened: { outBytes: opened.plaintextBytes, final: opened.final, nonce: opened.nonce } };
      }
      if (result.error !== undefined) throw new DareError(result.error as DareErrorReason);
      return { gotBytes: result.gotBytes, opened: { outBytes: result.plaintextBytes, final: result.final, nonce: result.nonce! } };
    },
    takeOutput: () => localBlockBuffers.take(outputBytes),
    giveOutput: (buffer) => localBlockBuffers.give(buffer),
  };
}

/** Reads ciphertext bytes [start, endExclusive) of one part's stored stream. */
export type CiphertextSource = (partIndex: number, start: number, endExclusive: number) => AsyncIterable<Uint8Array>;
/**
 * The same bytes as whole cipher blocks of `blockBytes`, each lent until released (engine/file-reader.ts
 * readBlocks), or undefined where the stored bytes cannot be read that way (inline data, erasure decoding).
 */
export type CiphertextBlockSource = (partIndex: number, start: number, endExclusive: number, blockBytes: number, opener?: BlockOpener) => AsyncIterable<LoanedBlock> | undefined;
/** A part's whole stored stream when it is already in memory (inline data), else undefined. */
export type CiphertextInMemory = (partIndex: number) => Buffer | undefined;

/**
 * Plaintext bytes [start, endInclusive] of an encrypted object whose parts have the given plaintext sizes:
 * only the packages covering the range are read and authenticated. `opensInline`: whether whole blocks read
 * into memory, when not opened in their read job, are opened on this thread (see openInline; tests set it).
 */
export async function* decryptRange(
  partPlainSizes: readonly number[],
  partNumbers: readonly number[],
  start: number,
  endInclusive: number,
  keyForPart: (partNumber: number) => Buffer,
  source: CiphertextSource,
  pool: BlockCipherPool,
  blockSource?: CiphertextBlockSource,
  inMemory?: CiphertextInMemory,
  opensInline: boolean = openInline,
): AsyncGenerator<Buffer> {
  for (const span of planEncryptedRange(partPlainSizes, start, endInclusive)) {
    const key = keyForPart(partNumbers[span.partIndex]!);
    let skipBytes = span.skipBytes;
    let takeBytes = span.takeBytes;
    if (span.encryptedEndExclusive - span.encryptedStart <= darePackageBytesMax) {
      // One package (every small object): open it here, without the block pipeline and its generators, and
      // straight from inline data (openPackages only reads its input) without a copy.
      const stored = inMemory?.(span.partIndex);
      const ciphertext = stored !== undefined && stored.length >= span.encryptedEndExclusive
        ? stored.subarray(span.encryptedStart, span.encryptedEndExclusive)
        : await readWhole(source(span.partIndex, span.encryptedStart, span.encryptedEndExclusive));
      // Into a reused buffer (as sealSmallBody): the consumer is done with a chunk when it pulls the next.
      const plaintext = smallBuffers.take(sizeClassBytes(ciphertext.length));
      try {
        const opened = openPackagesInto(key, ciphertext, span.firstSequence, undefined, plaintext);
        if (span.finalIncluded && !opened.final) throw new DareError('unexpected EOF');
        const piece = plaintext.subarray(skipBytes, Math.min(opened.plaintextBytes, skipBytes + takeBytes));
        if (piece.length !== takeBytes) throw new StorageError('InternalError', 'encrypted part ended before the requested range');
        if (piece.length > 0) yield piece;
      } finally {
        smallBuffers.give(plaintext);
      }
      continue;
    }
    /**
     * The part of a plaintext chunk the range wants (counting it off skipBytes and takeBytes). Made past the
     * one-package path: tsx names every closure it creates, which cost each small GET ~0.5 µs for nothing.
     */
    const wanted = (chunk: Buffer): Buffer => {
      let piece = chunk;
      if (skipBytes > 0) {
        const dropped = Math.min(skipBytes, piece.length);
        piece = piece.subarray(dropped);
        skipBytes -= dropped;
      }
      if (piece.length > takeBytes) piece = piece.subarray(0, takeBytes);
      takeBytes -= piece.length;
      return piece;
    };
    const cipherBlockBytes = cipherBlockBytesFor(defaultBlockBytes);
    // Single-drive part files: each block is opened by the thread-pool job that reads it.
    const openedBlocks = !readsOpenInJob
      ? undefined
      : blockSource?.(span.partIndex, span.encryptedStart, span.encryptedEndExclusive, cipherBlockBytes, dareBlockOpener(key, span.firstSequence, cipherBlockBytes));
    if (openedBlocks !== undefined) {
      let streamNonce: Buffer | undefined;
      let finalSeen = false;
      for await (const block of openedBlocks) {
        try {
          const facts = block.opened;
          if (facts === undefined) throw new Error('decryptRange: a block the opener did not open');
          if (finalSeen) throw new DareError('unexpected data after final package');
          if (streamNonce === undefined) streamNonce = facts.nonce;
          else if (!facts.nonce.equals(streamNonce)) throw new DareError('header nonce mismatch');
          finalSeen = facts.final;
          const piece = wanted(block.bytes);
          // The consumer is done with a chunk when it pulls the next: the block goes back then (finally).
          if (piece.length > 0) yield piece;
        } finally {
          block.release();
        }
        if (takeBytes === 0) break;
      }
      if (takeBytes !== 0) throw new StorageError('InternalError', 'encrypted part ended before the requested range');
      if (span.finalIncluded && !finalSeen) throw new DareError('unexpected EOF');
      continue;
    }
    // Whole cipher blocks read straight into memory the pool opens from, where the bytes allow it; else chunks
    // the stream gathers into blocks (a copy on the event loop: ~15% of an SSE GET's server CPU).
    const loaned = blockSource?.(span.partIndex, span.encryptedStart, span.encryptedEndExclusive, cipherBlockBytes);
    const spanPool = loaned !== undefined && opensInline ? inlinePool : poolFor(pool, span.encryptedEndExclusive - span.encryptedStart);
    const ciphertext = loaned === undefined ? source(span.partIndex, span.encryptedStart, span.encryptedEndExclusive) : { loaned };
    // recycle: GET streams each chunk out (and copies write it) before pulling the next.
    for await (const plain of decryptStreamPooled(ciphertext, key, span.firstSequence, spanPool, { expectFinal: span.finalIncluded, recycle: true })) {
      if (takeBytes === 0) break;
      const piece = wanted(plain);
      if (piece.length > 0) yield piece;
    }
    if (takeBytes !== 0) {
      throw new StorageError('InternalError', 'encrypted part ended before the requested range');
    }
  }
}
