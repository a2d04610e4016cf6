// A pool of worker threads that seal and open DARE packages (workers/dare.ts) in blocks of many
// packages, or the same kernels inline when threads = 0.
//
// Why blocks: a piscina round trip costs 18–80 µs plus about 70–100 µs per transferred MiB, against about
// 22 µs to seal one 64 KiB package (perf-primitives.md §1, §4), so a task must carry ≥ 1 MiB to be worth
// sending. Why threads = 0 exists: on the 2-vCPU machine kind the main thread alone seals faster and with
// less CPU than a pool when it has nothing else to do; bench/pool.bench.ts measures it and
// `measuredPoolThreads` records the decision (2 threads: they also compute the ETag MD5 of large uploads).

import { Piscina } from 'piscina';
import { openPackages, openPackagesInto, sealPackages, sealPackagesInto } from './dare.ts';
import type {
  ErasureEncodeResult, ErasureEncodeTask, Md5Result, OpenResult, OpenTask, ProbeResult, SealResult, SealTask,
} from './crypto-task.ts';
import { asBuffer, erasureEncodeInto, md5Update, ownedView, rebuildError } from './crypto-task.ts';
import { BatchedDigestStream, Md5Batcher, type DigestStream } from './md5-batcher.ts';

export type { DigestStream } from './md5-batcher.ts';

/** Where a seal also feeds the plaintext to a digest stream (sealRecycled). */
export interface SealDigest {
  readonly stream: DigestStream;
  /** the stream's last block: the result carries the MD5 */
  readonly final: boolean;
}

export interface BlockCipherPool {
  /** 0 = run the same kernels inline on the calling thread */
  readonly threads: number;
  /**
   * `plaintext` is transferred to the worker: the caller must not touch it afterwards. A Buffer that does
   * not own its whole ArrayBuffer (a slice, a pooled small Buffer) is copied first instead.
   */
  seal(key: Buffer, nonce: Buffer, firstSequence: number, plaintext: Buffer, final: boolean): Promise<Buffer>;
  /**
   * seal() into `output` (which must own its ArrayBuffer and hold the sealed size); both buffers are
   * handed back for reuse, so a stream allocates no new block per block. `ciphertext` is a view of `output`.
   */
  sealRecycled(key: Buffer, nonce: Buffer, firstSequence: number, plaintext: Buffer, final: boolean, output: Buffer, digest?: SealDigest): Promise<RecycledSeal>;
  /** a new running MD5 on this pool (see DigestStream) */
  createDigest(): DigestStream;
  /** `ciphertext` is transferred like `plaintext` in seal(). Tamper → rejects with the DareError. */
  open(
    key: Buffer,
    ciphertext: Buffer,
    firstSequence: number,
    expectNonce?: Buffer,
  ): Promise<{ plaintext: Buffer; final: boolean; nonce: Buffer }>;
  /**
   * open() into `output` (recycling, like sealRecycled): `plaintext` is a view of `output`. With a worker
   * pool both buffers must be shared memory (blockBuffersFor); `ciphertext` is then read in place.
   */
  openRecycled(key: Buffer, ciphertext: Buffer, firstSequence: number, expectNonce: Buffer | undefined, output: Buffer): Promise<RecycledOpen>;
  /**
   * Erasure-code a block and digest its shards (ErasureEncodeTask). With threads the buffers must be shared
   * memory (blockBuffersFor). Measured for the multi-drive PUT, which runs it inline (docs/decisions.md).
   */
  encodeErasure(task: ErasureEncodeTask): Promise<{ implementation: 'native' | 'typescript'; isMainThread: boolean }>;
  /** tasks submitted and not yet settled (queued + running); always 0 inline */
  readonly queueDepth: number;
  /** MD5 batches sent and the uploads' blocks (lanes) they carried, since start */
  readonly md5Counters: { readonly batches: number; readonly lanes: number };
  /** waits for the tasks already submitted, then ends the worker threads; later calls reject */
  close(): Promise<void>;
}

export interface RecycledSeal {
  readonly ciphertext: Buffer;
  /** the plaintext block, back for reuse (the same buffer inline; moved back from the worker otherwise) */
  readonly plaintext: Buffer;
  /** the whole output buffer, for reuse once `ciphertext` has been consumed */
  readonly output: Buffer;
  /** the plaintext MD5, when the seal carried the digest stream's final block */
  readonly md5Hex?: string;
}

export interface RecycledOpen {
  readonly plaintext: Buffer;
  readonly final: boolean;
  readonly nonce: Buffer;
}

/** Upper bound on pool threads (and on COFFER_POOL_THREADS): more than the cores only adds switching. */
export const poolThreadsMax = 64;

/**
 * Tasks that may wait in piscina's queue before seal()/open() reject. Each stream bounds its own blocks
 * in flight (workers/encrypt-stream.ts); this only stops runaway callers from queueing without limit.
 */
export const poolQueuedTasksMax = 1024;

/**
 * Chosen by measurement on the 2-vCPU machine kind:
 * - Sealing alone never paid for a pool (bench/pool.bench.ts, 2026-11-27: inline 1.4–1.8 GB per CPU-second
 *   vs 1.26–1.40 on 1–3 threads), and while the ETag MD5 ran on the event loop one thread was best (seal +
 *   MD5: inline 513–526 MB/s, 1 thread 560–654, 2 threads 642–654 at more CPU per byte).
 * - Since the MD5 runs on the pool too (DigestStream; since session 15 batched across uploads,
 *   workers/md5-batcher.ts) and large writes skip the page
 *   cache, the event loop only moves bytes and 2 threads win: `coffer bench compare` of 16 MiB PUTs, c=4,
 *   3 rounds alternating (bench/RESULTS.md): plain 463 (MD5 on the event loop) / 484 (1 thread) / 539 MiB/s
 *   (2 threads), SSE-S3 337 / 387 / 441 MiB/s; GETs and 4 KiB requests within noise.
 */
export const measuredPoolThreads = 2;

function parsePoolThreads(value: string | undefined): number {
  if (value === undefined || value.trim() === '') return measuredPoolThreads;
  const threads = Number(value);
  if (!Number.isInteger(threads) || threads < 0 || threads > poolThreadsMax) {
    // A misconfiguration: crash loudly at startup rather than run with a surprising pool.
    throw new Error(`COFFER_POOL_THREADS must be an integer 0..${poolThreadsMax}, got ${JSON.stringify(value)}`);
  }
  return threads;
}

/** Threads for the server's pool: COFFER_POOL_THREADS if set, else the benchmarked choice. */
export const defaultPoolThreads: number = parsePoolThreads(process.env['COFFER_POOL_THREADS']);

const workerModuleUrl = new URL('./crypto-task.worker.mjs', import.meta.url);


/** A 12- or 32-byte parameter as a Uint8Array of its own, so cloning it never copies a whole Buffer pool. */
function smallCopy(bytes: Buffer): Uint8Array {
  return new Uint8Array(bytes);
}

/**
 * A seal whose plaintext also goes to a digest stream, as one task with that stream's MD5 (the batch it joins
 * hashes and then seals); undefined without a digest, or when the buffers cannot ride along as they are
 * (a worker pool's blocks that are not shared memory).
 */
function sealWithDigest(key: Uint8Array, nonce: Uint8Array, firstSequence: number, plaintext: Buffer, final: boolean, output: Buffer, digest: SealDigest | undefined): Promise<RecycledSeal> | undefined {
  const stream = digest?.stream;
  if (stream === undefined) return undefined;
  if (!(stream instanceof BatchedDigestStream)) throw new Error('a digest stream this pool did not make');
  if (!stream.sealsRideAlong(plaintext, output)) return undefined;
  return stream.sealAndUpdate(plaintext, digest!.final, { key, nonce, firstSequence, final, output }).then(({ sealedBytes, md5Hex }) => ({
    ciphertext: output.subarray(0, sealedBytes),
    plaintext,
    output,
    ...(md5Hex === undefined ? {} : { md5Hex }),
  }));
}

/** Feed a seal's plaintext to its digest stream; the MD5 once the stream's last block is hashed. */
function hashSealed(digest: SealDigest | undefined, plaintext: Buffer): Promise<string | undefined> | undefined {
  if (digest === undefined) return undefined;
  return digest.final ? digest.stream.finish(plaintext) : digest.stream.update(plaintext).then(() => undefined);
}

/** The seal and the MD5 of one block both done (the block is the caller's again), failures reported once. */
async function withDigest(sealing: Promise<RecycledSeal>, hashing: Promise<string | undefined> | undefined): Promise<RecycledSeal> {
  if (hashing === undefined) return sealing;
  const [sealed, md5Hex] = await Promise.allSettled([sealing, hashing]);
  if (sealed.status === 'rejected') {
    hashing.catch(() => undefined);
    throw sealed.reason;
  }
  if (md5Hex.status === 'rejected') throw md5Hex.reason;
  return md5Hex.value === undefined ? sealed.value : { ...sealed.value, md5Hex: md5Hex.value };
}

class InlineBlockCipherPool implements BlockCipherPool {
  readonly threads = 0;
  readonly queueDepth = 0;
  #closed = false;
  readonly #md5 = new Md5Batcher((task) => ({ thread: 0, done: Promise.resolve(md5Update(task)) }), false, 1);

  get md5Counters(): { readonly batches: number; readonly lanes: number } {
    return this.#md5.counters;
  }

  seal(key: Buffer, nonce: Buffer, firstSequence: number, plaintext: Buffer, final: boolean): Promise<Buffer> {
    if (this.#closed) return Promise.reject(new Error('block cipher pool is closed'));
    try {
      return Promise.resolve(sealPackages(key, nonce, firstSequence, plaintext, final));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  sealRecycled(key: Buffer, nonce: Buffer, firstSequence: number, plaintext: Buffer, final: boolean, output: Buffer, digest?: SealDigest): Promise<RecycledSeal> {
    if (this.#closed) return Promise.reject(new Error('block cipher pool is closed'));
    try {
      // Inline every buffer rides along: with a digest, its batch hashes and seals.
      const together = sealWithDigest(key, nonce, firstSequence, plaintext, final, output, digest);
      if (together !== undefined) return together;
      const sealedBytes = sealPackagesInto(key, nonce, firstSequence, plaintext, final, output);
      return Promise.resolve({ ciphertext: output.subarray(0, sealedBytes), plaintext, output });
    } catch (error) {
      return Promise.reject(error);
    }
  }

  createDigest(): DigestStream {
    return this.#md5.createStream();
  }

  open(key: Buffer, ciphertext: Buffer, firstSequence: number, expectNonce?: Buffer): Promise<{ plaintext: Buffer; final: boolean; nonce: Buffer }> {
    if (this.#closed) return Promise.reject(new Error('block cipher pool is closed'));
    try {
      return Promise.resolve(openPackages(key, ciphertext, firstSequence, expectNonce));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  encodeErasure(task: ErasureEncodeTask): Promise<{ implementation: 'native' | 'typescript'; isMainThread: boolean }> {
    if (this.#closed) return Promise.reject(new Error('block cipher pool is closed'));
    const result = erasureEncodeInto(task);
    return result.ok ? Promise.resolve(result) : Promise.reject(rebuildError(result.error));
  }

  openRecycled(key: Buffer, ciphertext: Buffer, firstSequence: number, expectNonce: Buffer | undefined, output: Buffer): Promise<RecycledOpen> {
    if (this.#closed) return Promise.reject(new Error('block cipher pool is closed'));
    try {
      const opened = openPackagesInto(key, ciphertext, firstSequence, expectNonce, output);
      return Promise.resolve({ plaintext: output.subarray(0, opened.plaintextBytes), final: opened.final, nonce: opened.nonce });
    } catch (error) {
      return Promise.reject(error);
    }
  }

  close(): Promise<void> {
    this.#closed = true;
    return Promise.resolve();
  }
}

/** One worker thread and its FIFO queue. */
interface Lane {
  readonly piscina: Piscina;
  /** tasks submitted and not settled */
  queued: number;
}

class WorkerBlockCipherPool implements BlockCipherPool {
  readonly threads: number;
  /** one single-thread piscina per thread; a task goes to the least busy */
  readonly #lanes: Lane[];
  #closed = false;
  /** the ETag MD5s of large uploads, several uploads per task */
  readonly #md5: Md5Batcher;

  constructor(threads: number) {
    this.threads = threads;
    this.#lanes = Array.from({ length: threads }, () => ({
      piscina: new Piscina({
        filename: workerModuleUrl.href,
        minThreads: 1,
        maxThreads: 1,
        maxQueue: poolQueuedTasksMax,
        concurrentTasksPerWorker: 1,
        // Tasks run in submission order per thread; by default piscina puts a task it could not dispatch at
        // once at the *back* of the queue.
        stricterFIFO: true,
        // Keep the threads for the pool's lifetime: a new worker costs the tsx module load again.
        idleTimeout: Number.POSITIVE_INFINITY,
      }),
      queued: 0,
    }));
    this.#md5 = new Md5Batcher(
      (task, transferList, thread) => {
        const lane = thread === undefined ? this.#leastBusy() : this.#lanes[thread]!;
        return { thread: this.#lanes.indexOf(lane), done: this.#run<Md5Result>(task, 'md5', transferList, lane) };
      },
      true,
      threads,
    );
  }

  get queueDepth(): number {
    return this.#lanes.reduce((sum, lane) => sum + lane.queued, 0);
  }

  get md5Counters(): { readonly batches: number; readonly lanes: number } {
    return this.#md5.counters;
  }

  #leastBusy(): Lane {
    let best = this.#lanes[0]!;
    for (const lane of this.#lanes) if (lane.queued < best.queued) best = lane;
    return best;
  }

  async #run<T>(task: object, name: string, transferList: ArrayBuffer[], lane: Lane = this.#leastBusy()): Promise<T> {
    if (this.#closed) throw new Error('block cipher pool is closed');
    lane.queued += 1;
    try {
      return (await lane.piscina.run(task, { name, transferList })) as T;
    } finally {
      lane.queued -= 1;
    }
  }

  createDigest(): DigestStream {
    return this.#md5.createStream();
  }

  async seal(key: Buffer, nonce: Buffer, firstSequence: number, plaintext: Buffer, final: boolean): Promise<Buffer> {
    const owned = ownedView(plaintext);
    const task: SealTask = { key: smallCopy(key), nonce: smallCopy(nonce), firstSequence, plaintext: owned, final };
    const result = await this.#run<SealResult>(task, 'seal', [owned.buffer]);
    if (!result.ok) throw rebuildError(result.error);
    return asBuffer(result.ciphertext!);
  }

  sealRecycled(key: Buffer, nonce: Buffer, firstSequence: number, plaintext: Buffer, final: boolean, output: Buffer, digest?: SealDigest): Promise<RecycledSeal> {
    if (this.#closed) return Promise.reject(new Error('block cipher pool is closed'));
    // Shared blocks: one task hashes and seals. Else the MD5 is handed its block first: a block that is not
    // shared memory is copied for it now, before the seal below moves the block to its worker.
    let together: Promise<RecycledSeal> | undefined;
    try {
      together = sealWithDigest(smallCopy(key), smallCopy(nonce), firstSequence, plaintext, final, output, digest);
    } catch (error) {
      return Promise.reject(error);
    }
    if (together !== undefined) return together;
    const hashing = hashSealed(digest, plaintext);
    return withDigest(this.#sealRecycled(key, nonce, firstSequence, plaintext, final, output), hashing);
  }

  async #sealRecycled(key: Buffer, nonce: Buffer, firstSequence: number, plaintext: Buffer, final: boolean, output: Buffer): Promise<RecycledSeal> {
    if (plaintext.buffer instanceof SharedArrayBuffer && output.buffer instanceof SharedArrayBuffer) {
      // Shared blocks (sharedBlocks below): the worker reads and writes them in place; nothing is moved.
      const task: SealTask = { key: smallCopy(key), nonce: smallCopy(nonce), firstSequence, plaintext, final, output };
      const result = await this.#run<SealResult>(task, 'seal', []);
      if (!result.ok) throw rebuildError(result.error);
      return { ciphertext: output.subarray(0, result.sealedBytes), plaintext, output };
    }
    const ownedPlaintext = ownedView(plaintext);
    const ownedOutput = ownedView(output);
    const task: SealTask = { key: smallCopy(key), nonce: smallCopy(nonce), firstSequence, plaintext: ownedPlaintext, final, output: ownedOutput };
    const result = await this.#run<SealResult>(task, 'seal', [ownedPlaintext.buffer, ownedOutput.buffer]);
    if (!result.ok) throw rebuildError(result.error);
    const returnedOutput = asBuffer(result.ciphertext!);
    return { ciphertext: returnedOutput.subarray(0, result.sealedBytes), plaintext: asBuffer(result.plaintext!), output: returnedOutput };
  }

  async open(key: Buffer, ciphertext: Buffer, firstSequence: number, expectNonce?: Buffer): Promise<{ plaintext: Buffer; final: boolean; nonce: Buffer }> {
    const owned = ownedView(ciphertext);
    const task: OpenTask = {
      key: smallCopy(key),
      ciphertext: owned,
      firstSequence,
      ...(expectNonce === undefined ? {} : { expectNonce: smallCopy(expectNonce) }),
    };
    const result = await this.#run<OpenResult>(task, 'open', [owned.buffer]);
    if (!result.ok) throw rebuildError(result.error);
    return { plaintext: asBuffer(result.plaintext!), final: result.final, nonce: asBuffer(result.nonce) };
  }

  async openRecycled(key: Buffer, ciphertext: Buffer, firstSequence: number, expectNonce: Buffer | undefined, output: Buffer): Promise<RecycledOpen> {
    if (!(ciphertext.buffer instanceof SharedArrayBuffer && output.buffer instanceof SharedArrayBuffer)) {
      const opened = await this.open(key, ciphertext, firstSequence, expectNonce);
      opened.plaintext.copy(output);
      return { plaintext: output.subarray(0, opened.plaintext.length), final: opened.final, nonce: opened.nonce };
    }
    const task: OpenTask = {
      key: smallCopy(key),
      ciphertext,
      firstSequence,
      ...(expectNonce === undefined ? {} : { expectNonce: smallCopy(expectNonce) }),
      output,
    };
    const result = await this.#run<OpenResult>(task, 'open', []);
    if (!result.ok) throw rebuildError(result.error);
    return { plaintext: output.subarray(0, result.plaintextBytes), final: result.final, nonce: asBuffer(result.nonce) };
  }

  async encodeErasure(task: ErasureEncodeTask): Promise<{ implementation: 'native' | 'typescript'; isMainThread: boolean }> {
    for (const view of [task.block, task.shards, task.digests]) {
      if (!(view.buffer instanceof SharedArrayBuffer)) throw new Error('encodeErasure on a worker needs shared-memory buffers');
    }
    const result = await this.#run<ErasureEncodeResult>(task, 'erasureEncode', []);
    if (!result.ok) throw rebuildError(result.error);
    return result;
  }

  /** Where tasks run (for tests): must report isMainThread false. */
  probe(): Promise<ProbeResult> {
    return this.#run<ProbeResult>({}, 'probe', []);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all(this.#lanes.map((lane) => lane.piscina.close()));
  }
}

export function createBlockCipherPool(threads: number): BlockCipherPool {
  if (!Number.isInteger(threads) || threads < 0 || threads > poolThreadsMax) {
    throw new Error(`block cipher pool threads must be an integer 0..${poolThreadsMax}, got ${threads}`);
  }
  return threads === 0 ? new InlineBlockCipherPool() : new WorkerBlockCipherPool(threads);
}

/** Test hook: the thread a pooled task runs on (undefined inline). */
export function probePoolThread(pool: BlockCipherPool): Promise<ProbeResult> | undefined {
  return pool instanceof WorkerBlockCipherPool ? pool.probe() : undefined;
}

/**
 * Process-wide free lists of equal-sized block buffers for recycling streams. With a worker pool they are
 * SharedArrayBuffers, so a block goes to a worker and back without a transfer: every ArrayBuffer that
 * arrives on the main thread counts as new external memory for V8 and, at ~2 per MiB sealed, triggered a
 * full Mark-Compact every 64 MB (--trace-gc). Bounded: beyond `maxFree` per size, returned blocks are dropped.
 */
export class BlockBufferPool {
  readonly #free = new Map<number, Buffer[]>();
  /** `maxFreeBytes`: also keep at most this many bytes free per size (so large sizes keep fewer buffers) */
  constructor(readonly shared: boolean, readonly maxFree = 64, readonly maxFreeBytes = Number.POSITIVE_INFINITY) {}

  take(sizeBytes: number): Buffer {
    const reused = this.#free.get(sizeBytes)?.pop();
    if (reused !== undefined) return reused;
    return this.shared ? Buffer.from(new SharedArrayBuffer(sizeBytes)) : Buffer.allocUnsafeSlow(sizeBytes);
  }

  give(buffer: Buffer): void {
    if (buffer.byteOffset !== 0 || buffer.buffer.byteLength !== buffer.length) return;
    if (this.shared !== buffer.buffer instanceof SharedArrayBuffer) return;
    let list = this.#free.get(buffer.length);
    if (list === undefined) this.#free.set(buffer.length, (list = []));
    if (list.length < this.maxFree && (list.length + 1) * buffer.length <= this.maxFreeBytes) list.push(buffer);
  }
}

const sharedBlocks = new BlockBufferPool(true);
/** Reusable buffers for one thread's own use (reads, inline sealing): never shared with a worker. */
export const localBlockBuffers = new BlockBufferPool(false);

/** The block buffers a recycling stream on `pool` should use: shared memory when blocks cross threads. */
export function blockBuffersFor(pool: BlockCipherPool): BlockBufferPool {
  return pool.threads > 0 && process.env.COFFER_NO_SAB === undefined ? sharedBlocks : localBlockBuffers;
}
