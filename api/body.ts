// The request body as an async iterable with backpressure into uWebSockets.js: the socket is paused while
// more than `bodyQueueHighWaterBytes` sit unconsumed and resumed when the consumer drains below the low
// water mark. Memory per request is bounded by that constant, whatever the body size.
//
// uWS lends each received piece only for the duration of its callback, so every byte is copied once. By
// default each piece gets a new buffer the consumer may keep. A consumer that copies every chunk before it
// pulls the next one (the engine's writers do) can ask for `reuseChunks()`: pieces are then copied into
// slabs from a process-wide free list, and a slab is reused once everything in it has been consumed. That
// keeps a large upload from allocating 1 MiB of external memory per MiB received — which made V8 run a
// full mark-compact every ~16 MiB of PUT traffic.
import type { HttpResponse } from '@trufflesuite/uws-js-unofficial';

export const bodyQueueHighWaterBytes = 2 * 1024 * 1024;
const bodyQueueLowWaterBytes = 512 * 1024;

const slabBytes = 256 * 1024;
/** Free slabs kept for reuse (8 MiB): enough for several uploads at full speed; more are left to the GC. */
const freeSlabsMax = 32;
const freeSlabs: Buffer[] = [];

/** A slab and how many of its chunks are queued or were yielded and not yet released. */
interface Slab {
  readonly buffer: Buffer;
  usedBytes: number;
  references: number;
  /** still receiving: not reusable by others even when no chunk references it */
  filling: boolean;
}

interface QueuedChunk {
  readonly bytes: Buffer;
  readonly slab?: Slab;
}

function releaseSlabReference(slab: Slab): void {
  slab.references--;
  if (slab.references > 0) return;
  if (slab.filling) {
    slab.usedBytes = 0; // nothing in it is referenced any more: fill it again from the start
  } else if (freeSlabs.length < freeSlabsMax) {
    freeSlabs.push(slab.buffer);
  }
}

/** Thrown from the body iterator when the client went away before sending the whole body. */
export class ClientAbortedError extends Error {
  constructor() {
    super('client closed the connection before the request body was complete');
    this.name = 'ClientAbortedError';
  }
}

export class RequestBody implements AsyncIterable<Buffer> {
  private readonly chunks: QueuedChunk[] = [];
  private reuse = false;
  private fillSlab: Slab | undefined;
  private queuedBytes = 0;
  private ended = false;
  private failure: Error | undefined;
  private paused = false;
  private consumed = false;
  private wake: (() => void) | undefined;
  /** bytes received from the socket so far */
  receivedBytes = 0;

  constructor(
    private readonly res: HttpResponse,
    hasBody: boolean,
    private readonly isResponseOpen: () => boolean,
  ) {
    if (!hasBody) {
      this.ended = true;
      return;
    }
    res.onData((chunk, isLast) => {
      if (chunk.byteLength > 0) {
        // uWS neuters the ArrayBuffer when this callback returns: copy it out.
        if (this.reuse) {
          this.copyIntoSlabs(new Uint8Array(chunk));
        } else {
          const copy = Buffer.allocUnsafe(chunk.byteLength);
          copy.set(new Uint8Array(chunk));
          this.chunks.push({ bytes: copy });
        }
        this.queuedBytes += chunk.byteLength;
        this.receivedBytes += chunk.byteLength;
      }
      if (isLast) {
        this.ended = true;
        this.retireFillSlab();
      }
      if (!this.ended && this.queuedBytes > bodyQueueHighWaterBytes && !this.paused) {
        this.paused = true;
        res.pause();
      }
      this.notify();
    });
  }

  /**
   * From now on, a yielded chunk is valid only until the consumer pulls the next one (its bytes are then
   * reused). Call before iterating; only for consumers that copy or finish with each chunk first.
   */
  reuseChunks(): void {
    if (this.consumed) throw new Error('reuseChunks() after the body was read');
    this.reuse = true;
  }

  private copyIntoSlabs(piece: Uint8Array): void {
    let offsetBytes = 0;
    while (offsetBytes < piece.length) {
      let slab = this.fillSlab;
      if (slab === undefined || slab.usedBytes === slab.buffer.length) {
        this.retireFillSlab();
        slab = { buffer: freeSlabs.pop() ?? Buffer.allocUnsafeSlow(slabBytes), usedBytes: 0, references: 0, filling: true };
        this.fillSlab = slab;
      }
      const copyBytes = Math.min(slab.buffer.length - slab.usedBytes, piece.length - offsetBytes);
      slab.buffer.set(piece.subarray(offsetBytes, offsetBytes + copyBytes), slab.usedBytes);
      this.chunks.push({ bytes: slab.buffer.subarray(slab.usedBytes, slab.usedBytes + copyBytes), slab });
      slab.references++;
      slab.usedBytes += copyBytes;
      offsetBytes += copyBytes;
    }
  }

  /** The slab being filled is full or the body complete: it goes to the free list once nothing reads it. */
  private retireFillSlab(): void {
    const slab = this.fillSlab;
    if (slab === undefined) return;
    this.fillSlab = undefined;
    slab.filling = false;
    slab.references++; // balanced at once: frees the slab now if no chunk references it
    releaseSlabReference(slab);
  }

  /** true once the socket delivered the last body byte */
  get isComplete(): boolean {
    return this.ended;
  }

  /** the connection went away: the iterator throws ClientAbortedError */
  abort(): void {
    if (this.ended) return;
    this.failure = new ClientAbortedError();
    this.notify();
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    // Called from uWS callbacks, after which this uWS build runs no microtask checkpoint: resolving the
    // consumer's promise directly could leave it parked until some unrelated event (see response.ts).
    if (wake) setImmediate(wake);
  }

  private maybeResume(): void {
    if (this.paused && this.queuedBytes < bodyQueueLowWaterBytes && this.isResponseOpen()) {
      this.paused = false;
      this.res.resume();
    }
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Buffer> {
    if (this.consumed) throw new Error('request body consumed twice');
    this.consumed = true;
    // The chunk yielded last; with reuseChunks() its slab space is released when the consumer pulls again.
    let lent: QueuedChunk | undefined;
    try {
      for (;;) {
        if (lent?.slab) releaseSlabReference(lent.slab);
        lent = undefined;
        if (this.failure) throw this.failure;
        const chunk = this.chunks.shift();
        if (chunk) {
          this.queuedBytes -= chunk.bytes.byteLength;
          this.maybeResume();
          lent = chunk;
          yield chunk.bytes;
          continue;
        }
        if (this.ended) return;
        await new Promise<void>((resolve) => {
          this.wake = resolve;
        });
      }
    } finally {
      // Abandoned or finished: slabs still referenced by queued chunks are simply left to the GC (a slab
      // goes back to the free list only when nothing can still read it).
      if (this.ended && this.chunks.length === 0 && lent?.slab) releaseSlabReference(lent.slab);
    }
  }
}

/** Read a small body whole (XML documents); more than limitBytes -> onTooLarge() is thrown. */
export async function readSmallBody(body: AsyncIterable<Uint8Array>, limitBytes: number, onTooLarge: () => Error): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  let sizeBytes = 0;
  for await (const chunk of body) {
    sizeBytes += chunk.byteLength;
    if (sizeBytes > limitBytes) throw onTooLarge();
    parts.push(chunk);
  }
  return Buffer.concat(parts, sizeBytes);
}
