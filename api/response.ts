// Writing responses to a uWebSockets.js HttpResponse: status + headers + body in one corked write, and
// streamed bodies with download backpressure (tryEnd / onWritable), so a slow reader holds at most one
// engine chunk in memory. Every use of `res` is guarded: touching it after onAborted crashes the process.
import type { HttpResponse } from '@trufflesuite/uws-js-unofficial';

const statusTexts: Readonly<Record<number, string>> = {
  200: 'OK',
  204: 'No Content',
  206: 'Partial Content',
  304: 'Not Modified',
  307: 'Temporary Redirect',
  400: 'Bad Request',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  411: 'Length Required',
  412: 'Precondition Failed',
  416: 'Requested Range Not Satisfiable',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  503: 'Service Unavailable',
};

export type HeaderList = Array<readonly [string, string]>;

export class ResponseWriter {
  private abortedFlag = false;
  private started = false;
  private finished = false;
  private onAbortWaiter: (() => void) | undefined;
  status = 0;
  bytesSent = 0;
  /** the S3 error code sent, if the response was an error (for metrics) */
  errorCode: string | undefined;

  constructor(
    private readonly res: HttpResponse,
    private readonly baseHeaders: HeaderList,
  ) {}

  get aborted(): boolean {
    return this.abortedFlag;
  }

  /** true once a status line has been written (an error can no longer be rendered as XML) */
  get hasStarted(): boolean {
    return this.started;
  }

  get isOpen(): boolean {
    return !this.abortedFlag && !this.finished;
  }

  /** wired to res.onAborted by the server */
  markAborted(): void {
    this.abortedFlag = true;
    const waiter = this.onAbortWaiter;
    this.onAbortWaiter = undefined;
    if (waiter) setImmediate(waiter); // from a uWS callback: see writeChunk
  }

  private writeHead(status: number, headers: HeaderList): void {
    this.status = status;
    this.started = true;
    this.res.writeStatus(`${status} ${statusTexts[status] ?? 'Unknown'}`);
    for (const [name, value] of this.baseHeaders) this.res.writeHeader(name, value);
    for (const [name, value] of headers) this.res.writeHeader(name, value);
  }

  /** A whole response in one go. `closeConnection` when an unread request body remains on the socket. */
  send(status: number, headers: HeaderList, body: string | Buffer = '', closeConnection = false): void {
    if (!this.isOpen) return;
    this.finished = true;
    this.res.cork(() => {
      this.writeHead(status, headers);
      this.res.end(body, closeConnection);
    });
    this.bytesSent += typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength;
  }

  /** Status and headers with a Content-Length but no body (HEAD, 304). */
  sendWithoutBody(status: number, headers: HeaderList, contentLengthBytes?: number): void {
    if (!this.isOpen) return;
    this.finished = true;
    this.res.cork(() => {
      this.writeHead(status, headers);
      // endWithoutBody(length) in this uWS build closes the keep-alive connection afterwards (clients then
      // see "socket hang up" on their next request), so the header is written by hand instead.
      if (contentLengthBytes !== undefined) this.res.writeHeader('Content-Length', String(contentLengthBytes));
      this.res.endWithoutBody();
    });
  }

  /** Stream exactly totalBytes from source; stops early (and closes the source) if the client goes away. */
  async stream(status: number, headers: HeaderList, totalBytes: number, source: AsyncIterable<Buffer>): Promise<void> {
    if (!this.isOpen) return;
    if (totalBytes === 0) {
      this.send(status, headers, '');
      return;
    }
    // Pull the first chunk before the status line goes out: a source that fails at once (missing file,
    // data failing authentication) then still gets a proper S3 error instead of a cut 200.
    const iterator = source[Symbol.asyncIterator]();
    let next = await iterator.next();
    if (!this.isOpen) {
      await iterator.return?.();
      return;
    }
    // The status line and headers go out with the first chunk, in one write (a small GET is one segment).
    let head: readonly [number, HeaderList] | undefined = [status, headers];
    let offsetBytes = 0;
    try {
      while (!next.done) {
        const chunk = next.value;
        if (!this.isOpen) break;
        if (offsetBytes + chunk.byteLength > totalBytes) throw new Error('stream source produced more bytes than announced');
        await this.writeChunk(chunk, totalBytes, head);
        head = undefined;
        offsetBytes += chunk.byteLength;
        next = await iterator.next();
      }
    } finally {
      if (!next.done) await iterator.return?.();
    }
    if (this.isOpen && offsetBytes !== totalBytes) {
      // The source ended short (a bug or a vanished file): the status line is out, so the only honest
      // signal left is to cut the connection; the client sees a truncated body against Content-Length.
      this.finished = true;
      this.res.close();
      throw new Error(`stream source ended after ${offsetBytes} of ${totalBytes} bytes`);
    }
  }

  /**
   * A response of unknown length (chunked transfer encoding), written piece by piece as `source` yields;
   * each piece waits for the socket to drain when it is backed up. Used for progress streams.
   */
  async streamChunked(status: number, headers: HeaderList, source: AsyncIterable<string>): Promise<void> {
    if (!this.isOpen) return;
    this.res.cork(() => this.writeHead(status, headers));
    for await (const piece of source) {
      if (!this.isOpen) return;
      let ok = true;
      this.res.cork(() => {
        ok = this.res.write(piece);
      });
      this.bytesSent += Buffer.byteLength(piece);
      if (!ok) {
        await new Promise<void>((resolve) => {
          this.onAbortWaiter = resolve;
          this.res.onWritable(() => {
            this.onAbortWaiter = undefined;
            setImmediate(resolve); // see writeChunk: resume from libuv, not from the uWS callback
            return true;
          });
        });
      }
    }
    if (!this.isOpen) return;
    this.finished = true;
    this.res.cork(() => this.res.end());
  }

  /** Abort a started response by closing the connection (the client sees a short body). */
  closeConnection(): void {
    if (!this.isOpen) return;
    this.finished = true;
    this.res.close();
  }

  /** Write one chunk of a streamed body (after the status line and headers, when `head` is given). */
  private writeChunk(chunk: Buffer, totalBytes: number, head?: readonly [number, HeaderList]): Promise<void> {
    return new Promise<void>((resolve) => {
      let startOffset = 0;
      let ok = false;
      let done = false;
      this.res.cork(() => {
        if (head !== undefined) this.writeHead(head[0], head[1]);
        startOffset = this.res.getWriteOffset();
        [ok, done] = this.res.tryEnd(chunk, totalBytes);
      });
      this.bytesSent += chunk.byteLength;
      if (done) this.finished = true;
      if (ok || done) {
        resolve();
        return;
      }
      // Backpressure: uWS took part of the chunk; send the rest when the socket drains.
      this.onAbortWaiter = resolve;
      this.res.onWritable((offset) => {
        if (this.abortedFlag) return true;
        const [retryOk, retryDone] = this.res.tryEnd(chunk.subarray(offset - startOffset), totalBytes);
        if (retryDone) this.finished = true;
        if (retryOk || retryDone) {
          this.onAbortWaiter = undefined;
          // This build of uWS runs no microtask checkpoint after a native callback: a promise resolved
          // here would only continue when some other event happens to drain the queue (a GET stalled
          // for good once the worker pool went quiet). setImmediate resumes us from libuv, which does.
          setImmediate(resolve);
        }
        return retryOk;
      });
    });
  }
}
