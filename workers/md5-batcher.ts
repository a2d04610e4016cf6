// Running MD5s (DigestStream, the ETags of large uploads) whose blocks are hashed on the worker pool, the
// next blocks of several uploads in one task, across the SIMD lanes of workers/md5-kernel.ts.
//
// MD5 is serial within an upload and, at ~1.4 ms per MiB, the most expensive per-byte step of a PUT; eight
// uploads' blocks go through the lanes in about the time of one. So blocks wait here, one queue per upload,
// and a batch takes the oldest waiting block of up to `lanes` uploads at once:
// - an upload's blocks are hashed in order: its state is updated in place, and a block goes to the pool only
//   when none of the upload's is there, or behind it on the same thread (a thread runs its tasks in order);
// - a batch leaves when no batch is running, after one turn of the event loop if other uploads are open
//   (their next blocks are usually in that turn's I/O callbacks); while one runs, another leaves only with
//   every lane filled, and never more than `maxBatches` run. Meanwhile blocks pile up, and the next batch
//   takes them all: the busier the server, the fuller the lanes;
// - a lone upload does not wait for company, nor for each block's round trip: its blocks go one after
//   another to its thread (up to `soloDepth` there), as the pinned per-thread MD5 before batching did.
// With one lane (no SIMD kernel) every waiting upload can have its own batch, up to `maxBatches` at once.
//
// An upload's state lives in its own memory (shared with the worker threads), not on a thread, so nothing
// is left behind on a worker when an upload is dropped halfway.

import { rebuildError, type Md5LaneSeal, type Md5Result, type Md5Task } from './crypto-task.ts';
import { md5Kernel } from './md5-kernel.ts';

/**
 * A running MD5 (the S3 ETag) computed on the pool: blocks are hashed in order, so a large upload's MD5 —
 * serial by nature and the most expensive per-byte step of a PUT — leaves the event loop.
 */
export interface DigestStream {
  /** Hash `data` next. With worker threads pass shared memory (else it is copied). Resolves once hashed. */
  update(data: Uint8Array): Promise<void>;
  /** Hash `data` (if any) last; the MD5 in hex. */
  finish(data?: Uint8Array): Promise<string>;
  /** No more blocks (the upload failed): what was handed over is still hashed, then the state is dropped. */
  abandon(): void;
}

/**
 * Runs one batch: inline, or as a task on a worker thread (`transferList` moves copied blocks there). With
 * `thread`, on that thread, behind what it runs already; the answer says which thread took it.
 */
export type Md5BatchRunner = (task: Md5Task, transferList: ArrayBuffer[], thread?: number) => { readonly thread: number; readonly done: Promise<Md5Result> };

interface Job {
  readonly data: Uint8Array;
  readonly final: boolean;
  /** a copy of the caller's (not shared) block, moved to the worker */
  readonly transfer?: ArrayBuffer;
  /** an encrypted upload's block is sealed in the same task (sealAndUpdate) */
  readonly seal?: Md5LaneSeal;
  readonly resolve: (done: JobDone) => void;
  readonly reject: (error: unknown) => void;
}

interface JobDone {
  readonly md5Hex?: string;
  readonly sealedBytes?: number;
}

const empty = new Uint8Array(0);

/** A lone upload's blocks queued on its thread at most. */
export const soloDepth = 4;

export class Md5Batcher {
  /** uploads with a block waiting and none on the pool, oldest first */
  readonly #ready: BatchedDigestStream[] = [];
  #running = 0;
  /** streams created and not yet finished or abandoned */
  #open = 0;
  /** a pump waits for the next turn of the event loop (setImmediate) */
  #deferred = false;
  /** in the pump that ran after that wait: send what there is */
  #waited = false;
  /** batches sent and uploads (lanes) in them, since start */
  readonly counters = { batches: 0, lanes: 0 };

  /**
   * `shared`: blocks go to other threads, so states live in shared memory and blocks not in shared memory
   * are copied (the caller keeps its buffer). `lanes`: uploads per batch (default the kernel's).
   */
  constructor(
    private readonly run: Md5BatchRunner,
    readonly shared: boolean,
    readonly maxBatches: number,
    readonly lanes: number = md5Kernel.lanes,
  ) {}

  createStream(): DigestStream {
    const state = this.shared ? new Uint8Array(new SharedArrayBuffer(md5Kernel.stateBytes)) : new Uint8Array(md5Kernel.stateBytes);
    md5Kernel.init(state);
    this.#open += 1;
    return new BatchedDigestStream(this, state, () => {
      this.#open -= 1;
    });
  }

  /** Batches being hashed now (for tests and metrics). */
  get running(): number {
    return this.#running;
  }

  /** A new block of `stream` (already in its queue). */
  submitted(stream: BatchedDigestStream): void {
    if (stream.waiting !== 1) return; // older blocks wait already; they carry this one along
    if (stream.inFlight === 0) {
      this.#ready.push(stream);
      this.#pump();
    } else if (this.#open === 1 && stream.inFlight < soloDepth) {
      this.#send([stream], stream.thread);
    }
  }

  #pump(): void {
    if (this.#deferred) return;
    while (this.#ready.length > 0 && this.#running < this.maxBatches) {
      if (this.#running > 0 && this.#ready.length < this.lanes) return; // wait to fill a batch
      if (this.lanes > 1 && this.#ready.length < Math.min(this.lanes, this.#open) && !this.#waited) {
        this.#deferred = true;
        setImmediate(() => {
          this.#deferred = false;
          this.#waited = true;
          this.#pump();
          this.#waited = false;
        });
        return;
      }
      this.#send(this.#ready.splice(0, this.lanes));
    }
  }

  #send(streams: readonly BatchedDigestStream[], thread?: number): void {
    const jobs = streams.map((stream) => stream.startNext());
    const transferList = jobs.flatMap((job) => (job.transfer === undefined ? [] : [job.transfer]));
    const seals = jobs.some((job) => job.seal !== undefined) ? { seals: jobs.map((job) => job.seal) } : {};
    const task: Md5Task = { states: streams.map((stream) => stream.state), datas: jobs.map((job) => job.data), finals: jobs.map((job) => job.final), ...seals };
    this.#running += 1;
    this.counters.batches += 1;
    this.counters.lanes += streams.length;
    const sent = this.run(task, transferList, thread);
    for (const stream of streams) stream.thread = sent.thread;
    sent.done.then(
      (result) => this.#settle(streams, jobs, result),
      (error: unknown) => this.#settle(streams, jobs, undefined, error),
    );
  }

  #settle(streams: readonly BatchedDigestStream[], jobs: readonly Job[], result: Md5Result | undefined, cause?: unknown): void {
    this.#running -= 1;
    jobs.forEach((job, i) => {
      const stream = streams[i]!;
      const sealed = result?.ok === true ? result.sealed?.[i] : undefined;
      if (typeof sealed === 'object') {
        job.reject(rebuildError(sealed)); // the seal failed, the MD5 went on: the caller fails the upload
      } else if (result?.ok === true && stream.failure === undefined) {
        job.resolve({ ...(result.md5Hex[i] === undefined ? {} : { md5Hex: result.md5Hex[i] }), ...(sealed === undefined ? {} : { sealedBytes: sealed }) });
      } else {
        // A block after a failed one was hashed into a state that missed bytes: it fails too.
        if (result === undefined) stream.fail(cause ?? new Error('md5 batch failed'));
        else if (!result.ok) stream.fail(rebuildError(result.error));
        job.reject(stream.failure);
      }
      // Its next block lines up again, all of this batch's uploads before the next batch leaves.
      if (stream.hashed() && stream.inFlight === 0) this.#ready.push(stream);
    });
    this.#pump();
  }
}

export class BatchedDigestStream implements DigestStream {
  readonly #jobs: Job[] = [];
  /** blocks on the pool, all on `thread` */
  inFlight = 0;
  thread: number | undefined;
  #finished = false;
  /** the first failed block's error: every later block fails with it */
  failure: unknown;

  constructor(
    private readonly batcher: Md5Batcher,
    readonly state: Uint8Array,
    private readonly onClose: () => void,
  ) {}

  get waiting(): number {
    return this.#jobs.length;
  }

  async update(data: Uint8Array): Promise<void> {
    await this.#submit(data, false);
  }

  async finish(data?: Uint8Array): Promise<string> {
    const { md5Hex } = await this.#submit(data ?? empty, true);
    if (md5Hex === undefined) throw new Error('digest stream: no MD5 from the final block');
    return md5Hex;
  }

  /**
   * Hash `plaintext` next (last, with `final`) and seal it as `seal` says, in one task: an encrypted upload's
   * block costs one hand-off, not two. Both must be shared memory with a worker pool (sealsRideAlong).
   */
  async sealAndUpdate(plaintext: Uint8Array, final: boolean, seal: Md5LaneSeal): Promise<{ readonly sealedBytes: number; readonly md5Hex?: string }> {
    const done = await this.#submit(plaintext, final, seal);
    if (done.sealedBytes === undefined || (final && done.md5Hex === undefined)) throw new Error('digest stream: no seal or MD5 from the task');
    return done.md5Hex === undefined ? { sealedBytes: done.sealedBytes } : { sealedBytes: done.sealedBytes, md5Hex: done.md5Hex };
  }

  /** Whether sealAndUpdate can take these buffers as they are (no copy, no transfer). */
  sealsRideAlong(plaintext: Uint8Array, output: Uint8Array): boolean {
    return !this.batcher.shared || (plaintext.buffer instanceof SharedArrayBuffer && output.buffer instanceof SharedArrayBuffer);
  }

  abandon(): void {
    this.#close();
  }

  /** The batcher sends this stream's oldest waiting block. */
  startNext(): Job {
    const job = this.#jobs.shift();
    if (job === undefined) throw new Error('md5 batcher: a stream without a waiting block was sent');
    this.inFlight += 1;
    return job;
  }

  /** One of its blocks is done (or failed): true when another is waiting to go. */
  hashed(): boolean {
    this.inFlight -= 1;
    if (this.failure !== undefined) {
      for (const job of this.#jobs.splice(0)) job.reject(this.failure);
      return false;
    }
    return this.#jobs.length > 0;
  }

  fail(error: unknown): void {
    this.failure ??= error;
  }

  #close(): void {
    if (this.#finished) return;
    this.#finished = true;
    this.onClose();
  }

  #submit(data: Uint8Array, final: boolean, seal?: Md5LaneSeal): Promise<JobDone> {
    if (this.#finished) return Promise.reject(new Error('digest stream already finished'));
    if (this.failure !== undefined) return Promise.reject(this.failure);
    if (final) this.#close();
    let view = data;
    let transfer: ArrayBuffer | undefined;
    if (this.batcher.shared && view.byteLength > 0 && !(view.buffer instanceof SharedArrayBuffer)) {
      // The caller keeps its buffer (it may reuse it as soon as this resolves); the worker gets a moved copy.
      const copy = new Uint8Array(view.byteLength);
      copy.set(view);
      view = copy;
      transfer = copy.buffer;
    }
    return new Promise<JobDone>((resolve, reject) => {
      this.#jobs.push({ data: view, final, ...(transfer === undefined ? {} : { transfer }), ...(seal === undefined ? {} : { seal }), resolve, reject });
      this.batcher.submitted(this);
    });
  }
}
