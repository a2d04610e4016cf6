// DARE encryption and decryption of a whole stream, cut into blocks of many packages that the block-cipher
// pool (workers/pool.ts) seals or opens in parallel, yielded in order. The byte format is exactly
// workers/dare.ts's encryptStream/decryptStream (docs/encryption.md §1): a block of N × 64 KiB
// plaintext starting at package sequence s is the same bytes whether sealed in one call or per package.
//
// Memory is bounded: at most maxInFlight blocks are submitted and not yet yielded, plus one block being
// filled and (encrypting) one full block held back until we know whether it is the last. While
// maxInFlight blocks are pending, no more input is read (backpressure reaches the source).

import { DareError, darePackageBytesMax, darePayloadBytesMax, dareKeyBytes, dareNonceBytes } from './dare.ts';
import { blockBuffersFor, type BlockCipherPool, type DigestStream } from './pool.ts';

/** Plaintext per pool task: large enough to amortize a worker round trip (perf-primitives.md §4). */
export const defaultBlockBytes = 1024 * 1024;
export const blockBytesMax = 16 * 1024 * 1024;
/** Blocks submitted and not yet yielded, per stream. 4 keeps 2 threads busy while results are consumed. */
export const defaultMaxInFlightBlocks = 4;

/** The sealed size of a block of `blockBytes` plaintext (whole 64 KiB packages). */
export function cipherBlockBytesFor(blockBytes: number): number {
  return (blockBytes / darePayloadBytesMax) * darePackageBytesMax;
}
export const maxInFlightBlocksMax = 64;

export interface PooledStreamOptions {
  /** plaintext bytes per block, a multiple of 64 KiB (default 1 MiB) */
  readonly blockBytes?: number;
  /** blocks submitted to the pool and not yet yielded (default 4) */
  readonly maxInFlight?: number;
}

export interface PooledEncryptOptions extends PooledStreamOptions {
  /**
   * Reuse block buffers (plaintext blocks and sealed outputs) instead of allocating two per block: a
   * yielded chunk is then only valid until the consumer pulls the next one (every engine writer copies
   * it into its write batch at once). Spares the garbage collector ~2 MiB of external memory per MiB.
   */
  readonly recycle?: boolean;
  /**
   * Feed the plaintext to this digest stream as part of each seal (in the same task, in order) and report
   * its MD5 once the last block is sealed. Needs `recycle`.
   */
  readonly digest?: { readonly stream: DigestStream; readonly onMd5: (md5Hex: string) => void };
  /**
   * With `recycle`: where sealed blocks go (default the pool's shared block buffers). The engine passes
   * page-aligned ones, which its file writer hands to the disk with O_DIRECT as they are.
   */
  readonly outputBuffers?: BlockBuffers;
}

/** A source of reusable block buffers (workers/pool.ts BlockBufferPool has this shape). */
export interface BlockBuffers {
  take(sizeBytes: number): Buffer;
  give(buffer: Buffer): void;
}

interface SealedBlock {
  readonly ciphertext: Buffer;
  /** recycling: the output buffer holding `ciphertext`, reusable once the consumer moved on */
  readonly output?: Buffer;
  /** recycling: the plaintext block, reusable now (only blocks this stream allocated) */
  readonly plaintext?: Buffer;
}

function assertInvariant(condition: boolean, message: string): asserts condition {
  if (!condition) throw new Error(`encrypt-stream: invariant violated: ${message}`);
}

function checkOptions(options: PooledStreamOptions | undefined): { blockBytes: number; maxInFlight: number } {
  const blockBytes = options?.blockBytes ?? defaultBlockBytes;
  const maxInFlight = options?.maxInFlight ?? defaultMaxInFlightBlocks;
  assertInvariant(
    Number.isInteger(blockBytes) && blockBytes > 0 && blockBytes <= blockBytesMax && blockBytes % darePayloadBytesMax === 0,
    `blockBytes must be a multiple of ${darePayloadBytesMax} up to ${blockBytesMax}, got ${blockBytes}`,
  );
  assertInvariant(
    Number.isInteger(maxInFlight) && maxInFlight >= 1 && maxInFlight <= maxInFlightBlocksMax,
    `maxInFlight must be 1..${maxInFlightBlocksMax}, got ${maxInFlight}`,
  );
  return { blockBytes, maxInFlight };
}

/** Submitted blocks, oldest first. Every promise gets a handler at once, so a rejection that arrives
 * while we wait on an older block is not reported as unhandled; it is rethrown when its turn comes. */
class OrderedWindow<T> {
  readonly #entries: { promise: Promise<T>; settled: boolean }[] = [];

  get length(): number {
    return this.#entries.length;
  }

  get headSettled(): boolean {
    return this.#entries.length > 0 && this.#entries[0]!.settled;
  }

  push(promise: Promise<T>): void {
    const entry = { promise, settled: false };
    promise.then(
      () => { entry.settled = true; },
      () => { entry.settled = true; },
    );
    this.#entries.push(entry);
  }

  /** Settles (never rejects) when the oldest entry does. */
  headDone(): Promise<void> {
    const head = this.#entries[0];
    assertInvariant(head !== undefined, 'headDone on an empty window');
    return head.promise.then(() => undefined, () => undefined);
  }

  shift(): Promise<T> {
    const entry = this.#entries.shift();
    assertInvariant(entry !== undefined, 'shift on an empty window');
    return entry.promise;
  }

  /**
   * On early exit: let outstanding tasks finish (their buffers were transferred) and drop the results, after
   * handing each one that succeeded to `reclaim` (buffers that go back to a pool).
   */
  async abandon(reclaim?: (value: T) => void): Promise<void> {
    const entries = this.#entries.splice(0);
    const settled = await Promise.allSettled(entries.map((entry) => entry.promise));
    for (const result of settled) if (result.status === 'fulfilled') reclaim?.(result.value);
  }
}

/**
 * plaintext chunks in → DARE ciphertext out, in order, cut into blocks of blockBytes sealed on the pool
 * with at most maxInFlight blocks outstanding; the last block carries final=true (an empty stream yields
 * nothing). Sequence numbers continue across blocks (block i starts at i·blockBytes/64 KiB). Chunks are
 * copied (or, inline, sealed before the next pull), so the source may reuse its buffers.
 */
export async function* encryptStreamPooled(
  source: AsyncIterable<Uint8Array>,
  key: Buffer,
  nonce: Buffer,
  pool: BlockCipherPool,
  options?: PooledEncryptOptions,
): AsyncGenerator<Buffer> {
  const { blockBytes, maxInFlight } = checkOptions(options);
  const recycle = options?.recycle === true;
  const digest = options?.digest;
  assertInvariant(digest === undefined || recycle, 'a digest stream needs recycle');
  let digested = false;
  const cipherBlockBytes = (blockBytes / darePayloadBytesMax) * darePackageBytesMax;
  const buffers = blockBuffersFor(pool);
  const outputBuffers = options?.outputBuffers ?? buffers;
  assertInvariant(key.length === dareKeyBytes, `key must be ${dareKeyBytes} bytes`);
  assertInvariant(nonce.length === dareNonceBytes, `nonce must be ${dareNonceBytes} bytes`);
  const packagesPerBlock = blockBytes / darePayloadBytesMax;
  // Inline, a block is sealed synchronously inside pool.seal(), so a view into the source's chunk is safe
  // and saves a copy; a pool would need the bytes after we pull the next chunk, so it gets its own copy.
  const zeroCopy = pool.threads === 0;
  const window = new OrderedWindow<SealedBlock>();
  let nextSequence = 0;
  let filling: Buffer | undefined;
  let fillingBytes = 0;
  // A full block: whether it is the final one is only known at the next byte or the end of the input.
  let held: Buffer | undefined;

  const submit = (block: Buffer, final: boolean, ownsBlock = true): void => {
    assertInvariant(window.length < maxInFlight, 'window overflow');
    if (recycle) {
      const output = outputBuffers.take(cipherBlockBytes);
      const sealDigest = digest === undefined ? undefined : { stream: digest.stream, final };
      if (final) digested = true;
      window.push(
        pool.sealRecycled(key, nonce, nextSequence, block, final, output, sealDigest).then(
          (sealed) => {
            if (final && digest !== undefined) {
              assertInvariant(sealed.md5Hex !== undefined, 'final seal without the MD5');
              digest.onMd5(sealed.md5Hex);
            }
            const whole = sealed.plaintext.byteOffset === 0 && sealed.plaintext.buffer.byteLength === blockBytes;
            return { ciphertext: sealed.ciphertext, output: sealed.output, ...(ownsBlock && whole ? { plaintext: Buffer.from(sealed.plaintext.buffer as ArrayBuffer, 0, blockBytes) } : {}) };
          },
          (error: unknown) => {
            outputBuffers.give(output); // the task is over: nobody writes into it any more
            throw error;
          },
        ),
      );
    } else {
      window.push(pool.seal(key, nonce, nextSequence, block, final).then((ciphertext) => ({ ciphertext })));
    }
    nextSequence += packagesPerBlock;
  };
  /**
   * Yield one sealed block; its buffers go back to the free lists (the output once the consumer resumes, or
   * stops: output buffers may come from a bounded pool, page-aligned ones that a lost buffer never returns to).
   */
  function* emit(sealed: SealedBlock): Generator<Buffer> {
    if (sealed.plaintext !== undefined) buffers.give(sealed.plaintext);
    try {
      yield sealed.ciphertext;
    } finally {
      if (sealed.output !== undefined) outputBuffers.give(sealed.output);
    }
  }

  try {
    for await (const chunk of source) {
      let offset = 0;
      while (offset < chunk.byteLength) {
        if (held !== undefined) {
          while (window.length >= maxInFlight) yield* emit(await window.shift());
          submit(held, false);
          held = undefined;
        }
        const remainingBytes = chunk.byteLength - offset;
        if (zeroCopy && fillingBytes === 0 && remainingBytes > blockBytes) {
          // More bytes follow in this very chunk, so this block is not final: seal it now, in place.
          while (window.length >= maxInFlight) yield* emit(await window.shift());
          submit(Buffer.from(chunk.buffer, chunk.byteOffset + offset, blockBytes), false, false);
          offset += blockBytes;
          continue;
        }
        // Owns its ArrayBuffer, so it can be transferred (or is shared memory, when recycling on a pool).
        filling ??= recycle ? buffers.take(blockBytes) : Buffer.allocUnsafeSlow(blockBytes);
        const takeBytes = Math.min(blockBytes - fillingBytes, remainingBytes);
        filling.set(chunk.subarray(offset, offset + takeBytes), fillingBytes);
        fillingBytes += takeBytes;
        offset += takeBytes;
        if (fillingBytes === blockBytes) {
          held = filling;
          filling = undefined;
          fillingBytes = 0;
        }
      }
      while (window.headSettled) yield* emit(await window.shift());
      // Backpressure: do not pull more input while the window is full.
      while (window.length >= maxInFlight) yield* emit(await window.shift());
    }
    if (fillingBytes > 0) {
      assertInvariant(filling !== undefined, 'filling block');
      if (held !== undefined) {
        while (window.length >= maxInFlight) yield* emit(await window.shift());
        submit(held, false);
        held = undefined;
      }
      while (window.length >= maxInFlight) yield* emit(await window.shift());
      submit(filling.subarray(0, fillingBytes), true);
      filling = undefined;
    } else if (held !== undefined) {
      while (window.length >= maxInFlight) yield* emit(await window.shift());
      submit(held, true);
      held = undefined;
    }
    while (window.length > 0) yield* emit(await window.shift());
    if (digest !== undefined && !digested) {
      digested = true;
      digest.onMd5(await digest.stream.finish()); // the empty body
    }
  } finally {
    await window.abandon((sealed) => {
      if (sealed.output !== undefined) outputBuffers.give(sealed.output);
      if (sealed.plaintext !== undefined) buffers.give(sealed.plaintext);
    });
    if (!digested) digest?.stream.abandon();
  }
}

/**
 * Ciphertext already cut into whole cipher blocks (blockBytes / 64 KiB packages; only the last may be
 * shorter), each lent until release(), which the stream calls once the pool has opened the block.
 */
export interface LoanedCipherBlocks {
  readonly loaned: AsyncIterable<{ readonly bytes: Uint8Array; release(): void }>;
}

export interface PooledDecryptOptions extends PooledStreamOptions {
  /** false when the caller deliberately stops before the end of the stream (range reads) */
  readonly expectFinal?: boolean;
  /** reuse block buffers; a yielded chunk is valid until the next pull (as PooledEncryptOptions.recycle) */
  readonly recycle?: boolean;
}

interface OpenedBlock {
  readonly plaintext: Buffer;
  readonly final: boolean;
  readonly nonce: Buffer;
  /** recycling: the buffer behind `plaintext`, reusable once the consumer moved on */
  readonly output?: Buffer;
  /** recycling: the ciphertext block, reusable now (only blocks this stream filled) */
  readonly ciphertext?: Buffer;
}

/**
 * DARE ciphertext (starting at a package boundary with sequence firstSequence) → plaintext, in order.
 * Ciphertext is cut into blocks of blockBytes/64 KiB whole packages (every package but the final one is
 * full, so the cuts fall on package boundaries of any valid stream) and opened on the pool with at most
 * maxInFlight blocks outstanding. Blocks are opened independently, so the checks that span blocks are made
 * here, in order, before a block's plaintext is yielded: the same stream nonce in every block, nothing
 * after the final package, and (expectFinal) a final package at the end. Throws DareError on tamper.
 * Like dare.ts decryptStream, an empty stream at sequence 0 is the empty object.
 */
export async function* decryptStreamPooled(
  source: AsyncIterable<Uint8Array> | LoanedCipherBlocks,
  key: Buffer,
  firstSequence: number,
  pool: BlockCipherPool,
  options?: PooledDecryptOptions,
): AsyncGenerator<Buffer> {
  const { blockBytes, maxInFlight } = checkOptions(options);
  const expectFinal = options?.expectFinal ?? true;
  assertInvariant(key.length === dareKeyBytes, `key must be ${dareKeyBytes} bytes`);
  const packagesPerBlock = blockBytes / darePayloadBytesMax;
  const cipherBlockBytes = packagesPerBlock * darePackageBytesMax;
  const recycle = options?.recycle === true;
  const buffers = blockBuffersFor(pool);
  // Opening a block never waits for later input, so inline can always open in place.
  const zeroCopy = pool.threads === 0;
  const window = new OrderedWindow<OpenedBlock>();
  let nextSequence = firstSequence;
  let filling: Buffer | undefined;
  let fillingBytes = 0;
  let streamNonce: Buffer | undefined; // learned from the first block, checked against every later one
  let finalSeen = false;
  let sawBytes = false;
  let unsubmitted: { release(): void } | undefined;

  /** `release`: a loaned block, given back once the pool is done with it (opened or failed). */
  const submit = (block: Buffer, ownsBlock = true, release?: () => void): void => {
    assertInvariant(window.length < maxInFlight, 'window overflow');
    let opening: Promise<OpenedBlock>;
    if (recycle) {
      const output = buffers.take(blockBytes);
      opening = pool.openRecycled(key, block, nextSequence, streamNonce, output).then((opened) => ({
        ...opened,
        output,
        ...(ownsBlock && block.byteOffset === 0 && block.buffer.byteLength === cipherBlockBytes ? { ciphertext: block } : {}),
      }));
    } else {
      opening = pool.open(key, block, nextSequence, streamNonce);
    }
    window.push(release === undefined ? opening : opening.finally(release));
    nextSequence += packagesPerBlock;
  };
  /** Check and yield one opened block; its buffers go back to the free lists (the output after the pull). */
  function* emit(opened: OpenedBlock): Generator<Buffer> {
    if (opened.ciphertext !== undefined) buffers.give(Buffer.from(opened.ciphertext.buffer as ArrayBuffer, 0, cipherBlockBytes));
    yield accept(opened);
    if (opened.output !== undefined) buffers.give(opened.output);
  }
  const accept = (opened: OpenedBlock): Buffer => {
    if (finalSeen) throw new DareError('unexpected data after final package');
    if (streamNonce === undefined) {
      streamNonce = opened.nonce;
    } else if (!opened.nonce.equals(streamNonce)) {
      throw new DareError('header nonce mismatch');
    }
    finalSeen = opened.final;
    return opened.plaintext;
  };

  try {
    if ('loaned' in source) {
      // Whole cipher blocks read where the pool can open them (engine/file-reader.ts readBlocks): no copy.
      let shortBlockSeen = false;
      const blocks = source.loaned[Symbol.asyncIterator]();
      /** the next read, started while the first block was being opened and not taken yet */
      let raced: ReturnType<typeof blocks.next> | undefined;
      try {
        for (;;) {
          const next = raced ?? blocks.next();
          raced = undefined;
          if (streamNonce === undefined && window.length > 0) { // nothing handed out yet
            // A GET's status line waits for the first block: it goes out as soon as it is open, not once the
            // next read is in too. Later blocks keep the steady order (read, submit, hand out what is open).
            next.catch(() => undefined); // awaited below, or in the finally
            await Promise.race([window.headDone(), next.then(() => undefined, () => undefined)]);
            if (window.headSettled) {
              raced = next;
              yield* emit(await window.shift());
              continue;
            }
          }
          const result = await next;
          if (result.done === true) break;
          const block = result.value;
          unsubmitted = block; // released in the finally below if we never get to submit it
          if (shortBlockSeen) throw new Error('decryptStreamPooled: a loaned block after a short one');
          if (block.bytes.byteLength > cipherBlockBytes) throw new Error('decryptStreamPooled: a loaned block larger than a cipher block');
          shortBlockSeen = block.bytes.byteLength < cipherBlockBytes;
          if (block.bytes.byteLength > 0) sawBytes = true;
          while (window.length >= maxInFlight) yield* emit(await window.shift());
          unsubmitted = undefined;
          if (block.bytes.byteLength === 0) {
            block.release();
            continue;
          }
          submit(Buffer.from(block.bytes.buffer, block.bytes.byteOffset, block.bytes.byteLength), false, block.release);
          while (window.headSettled) yield* emit(await window.shift());
        }
      } finally {
        if (raced !== undefined) {
          // A read raced and never taken (the consumer stopped early): give its block back once it is in.
          const left = await raced.catch(() => undefined);
          if (left !== undefined && left.done !== true) left.value.release();
        }
        await blocks.return?.(undefined);
      }
    }
    for await (const chunk of 'loaned' in source ? [] : source) {
      if (chunk.byteLength > 0) sawBytes = true;
      let offset = 0;
      while (offset < chunk.byteLength) {
        const remainingBytes = chunk.byteLength - offset;
        if (zeroCopy && fillingBytes === 0 && remainingBytes >= cipherBlockBytes) {
          while (window.length >= maxInFlight) yield* emit(await window.shift());
          submit(Buffer.from(chunk.buffer, chunk.byteOffset + offset, cipherBlockBytes), false);
          offset += cipherBlockBytes;
          continue;
        }
        filling ??= recycle ? buffers.take(cipherBlockBytes) : Buffer.allocUnsafeSlow(cipherBlockBytes);
        const takeBytes = Math.min(cipherBlockBytes - fillingBytes, remainingBytes);
        filling.set(chunk.subarray(offset, offset + takeBytes), fillingBytes);
        fillingBytes += takeBytes;
        offset += takeBytes;
        if (fillingBytes === cipherBlockBytes) {
          while (window.length >= maxInFlight) yield* emit(await window.shift());
          submit(filling);
          filling = undefined;
          fillingBytes = 0;
        }
      }
      while (window.headSettled) yield* emit(await window.shift());
      while (window.length >= maxInFlight) yield* emit(await window.shift());
    }
    if (fillingBytes > 0) {
      assertInvariant(filling !== undefined, 'filling block');
      while (window.length >= maxInFlight) yield* emit(await window.shift());
      submit(filling.subarray(0, fillingBytes));
      filling = undefined;
    }
    while (window.length > 0) yield* emit(await window.shift());
    if (expectFinal && !finalSeen && (sawBytes || firstSequence !== 0)) throw new DareError('unexpected EOF');
  } finally {
    unsubmitted?.release();
    await window.abandon();
  }
}
