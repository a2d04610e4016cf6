// The request body as an async iterable with backpressure into uWebSockets.js: the socket is paused while
// more than `bodyQueueHighWaterBytes` sit unconsumed and resumed when the consumer drains below the low
// water mark. Memory per request is bounded by that constant, whatever the body size.
import type { HttpResponse } from '@trufflesuite/uws-js-unofficial';

export const bodyQueueHighWaterBytes = 2 * 1024 * 1024;
const bodyQueueLowWaterBytes = 512 * 1024;

/** Thrown from the body iterator when the client went away before sending the whole body. */
export class ClientAbortedError extends Error {
  constructor() {
    super('client closed the connection before the request body was complete');
    this.name = 'ClientAbortedError';
  }
}

export class RequestBody implements AsyncIterable<Buffer> {
  private readonly chunks: Buffer[] = [];
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
        const copy = Buffer.allocUnsafe(chunk.byteLength);
        copy.set(new Uint8Array(chunk));
        this.chunks.push(copy);
        this.queuedBytes += copy.byteLength;
        this.receivedBytes += copy.byteLength;
      }
      if (isLast) this.ended = true;
      if (!this.ended && this.queuedBytes > bodyQueueHighWaterBytes && !this.paused) {
        this.paused = true;
        res.pause();
      }
      this.notify();
    });
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
    for (;;) {
      if (this.failure) throw this.failure;
      const chunk = this.chunks.shift();
      if (chunk) {
        this.queuedBytes -= chunk.byteLength;
        this.maybeResume();
        yield chunk;
        continue;
      }
      if (this.ended) return;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
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
