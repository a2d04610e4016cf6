// A lean HTTP/1.1 client for the load generators: keep-alive connections, at most `connectionsMax`, each
// reading into one reused buffer (net's `onread`) and parsing responses itself. node:http allocates a fresh
// 64 KiB buffer for every socket read and runs the body through a stream: measured on this 2-vCPU machine, a
// 16 MiB GET cost its client ~1.1 ms of CPU per MiB (a third of it garbage collection), more than the server
// spent serving it, and the client shares the CPUs with the server under test (bench/RESULTS.md, session 11).
//
// Responses are framed by Content-Length, chunked transfer coding, or connection close (RFC 9112 §6.3);
// 1xx interim responses are skipped. Body bytes reach `onBody` as views of the read buffer that are only valid
// during the call. Requests are written with one cork: head, then the caller's body pieces (never copied).

import net from 'node:net';
import tls from 'node:tls';

/** Bytes read from the socket per read; also the most a single onBody call sees. */
export const readBufferBytes = 256 * 1024;
/** A response head (status line + headers) larger than this is a protocol error. */
export const responseHeadBytesMax = 64 * 1024;
/** A chunk-size line longer than this is a protocol error. */
const chunkLineBytesMax = 1024;

export interface Http1Endpoint {
  readonly protocol: 'http:' | 'https:';
  readonly hostname: string;
  readonly port: number;
  /** https: accept any certificate */
  readonly insecure?: boolean;
  /** https: trust these PEM certificates */
  readonly ca?: Buffer;
}

export interface Http1Request {
  readonly method: string;
  /** path and query, already encoded */
  readonly target: string;
  /** lower-case names; must include host and content-length when there is a body */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: readonly Uint8Array[];
  /** no socket activity for this long fails the request */
  readonly idleTimeoutMs: number;
  /** response head parsed: status and headers (lower-case names, repeated ones joined with ', ') */
  readonly onHead: (status: number, headers: Record<string, string>) => void;
  /** a piece of the response body: a view valid only during the call */
  readonly onBody: (piece: Uint8Array) => void;
}

export class Http1Error extends Error {
  override readonly name = 'Http1Error';
}

type BodyFraming =
  | { readonly kind: 'none' }
  | { readonly kind: 'length'; remaining: number }
  | { readonly kind: 'chunked'; state: 'size' | 'data' | 'data-crlf' | 'trailers'; remaining: number; line: string }
  | { readonly kind: 'close' };

interface Exchange {
  readonly request: Http1Request;
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
  head: Buffer[];
  headBytes: number;
  body: BodyFraming | undefined;
  keepAlive: boolean;
}

const crlfcrlf = Buffer.from('\r\n\r\n');

/** One keep-alive connection: one exchange at a time. */
class Connection {
  readonly socket: net.Socket;
  #exchange: Exchange | undefined;
  #closed = false;
  readonly #onGone: (connection: Connection) => void;

  constructor(endpoint: Http1Endpoint, onGone: (connection: Connection) => void) {
    this.#onGone = onGone;
    if (endpoint.protocol === 'https:') {
      // TLS sockets do not take `onread`; their 'data' chunks go through the same parser.
      this.socket = tls.connect({
        host: endpoint.hostname,
        port: endpoint.port,
        ...(net.isIP(endpoint.hostname) === 0 ? { servername: endpoint.hostname } : {}),
        rejectUnauthorized: endpoint.insecure !== true,
        ...(endpoint.ca === undefined ? {} : { ca: endpoint.ca }),
      });
      this.socket.on('data', (chunk: Buffer) => this.#received(chunk));
    } else {
      const buffer = Buffer.allocUnsafe(readBufferBytes);
      this.socket = net.connect({
        host: endpoint.hostname,
        port: endpoint.port,
        onread: { buffer, callback: (bytes: number, into: Uint8Array) => { this.#received(into.subarray(0, bytes)); return true; } },
      });
    }
    this.socket.setNoDelay(true);
    this.socket.on('timeout', () => this.#fail(new Http1Error(`no activity for ${this.#exchange?.request.idleTimeoutMs ?? 0} ms`)));
    this.socket.on('error', (error) => this.#fail(error));
    this.socket.on('end', () => this.#ended());
    this.socket.on('close', () => this.#fail(new Http1Error('connection closed before the response ended')));
  }

  get busy(): boolean {
    return this.#exchange !== undefined;
  }

  get closed(): boolean {
    return this.#closed;
  }

  send(request: Http1Request): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#exchange = { request, resolve, reject, head: [], headBytes: 0, body: undefined, keepAlive: true };
      this.socket.setTimeout(request.idleTimeoutMs);
      let head = `${request.method} ${request.target} HTTP/1.1\r\n`;
      for (const [name, value] of Object.entries(request.headers)) {
        if (/[\r\n]/.test(name) || /[\r\n]/.test(value)) {
          this.#exchange = undefined;
          reject(new Http1Error(`header ${JSON.stringify(name)} contains a line break`));
          return;
        }
        head += `${name}: ${value}\r\n`;
      }
      head += '\r\n';
      this.socket.cork();
      this.socket.write(head, 'latin1');
      for (const piece of request.body) if (piece.length > 0) this.socket.write(piece);
      this.socket.uncork();
    });
  }

  /** Destroys the socket (once) and tells the pool the slot is free. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.socket.destroy();
    this.#onGone(this);
  }

  #received(bytes: Uint8Array): void {
    let offset = 0;
    while (offset < bytes.length) {
      const exchange = this.#exchange;
      if (exchange === undefined) {
        // Bytes with no request outstanding: the server broke framing or is closing; this socket is done.
        this.#fail(new Http1Error('unexpected bytes from the server between responses'));
        return;
      }
      try {
        offset = exchange.body === undefined ? this.#readHead(exchange, bytes, offset) : this.#readBody(exchange, exchange.body, bytes, offset);
      } catch (error) {
        this.#fail(error as Error);
        return;
      }
    }
  }

  /** Gathers the head up to the blank line; returns the offset after what it consumed. */
  #readHead(exchange: Exchange, bytes: Uint8Array, offset: number): number {
    const view = Buffer.from(bytes.buffer, bytes.byteOffset + offset, bytes.length - offset);
    let end: number; // how many bytes of `view` belong to the head; -1 while the blank line is still to come
    if (exchange.headBytes === 0) {
      const at = view.indexOf(crlfcrlf);
      end = at < 0 ? -1 : at + 4;
    } else {
      // The blank line may straddle reads: search from the last 3 bytes already gathered.
      const gathered = Buffer.concat(exchange.head);
      const carried = Math.min(3, gathered.length);
      const at = Buffer.concat([gathered.subarray(gathered.length - carried), view.subarray(0, responseHeadBytesMax)]).indexOf(crlfcrlf);
      end = at < 0 ? -1 : at + 4 - carried;
    }
    const take = end >= 0 ? end : view.length;
    if (exchange.headBytes + take > responseHeadBytesMax) throw new Http1Error(`response head larger than ${responseHeadBytesMax} bytes`);
    exchange.head.push(Buffer.from(view.subarray(0, take)));
    exchange.headBytes += take;
    if (end < 0) return bytes.length;
    this.#parseHead(exchange);
    return offset + take;
  }

  #parseHead(exchange: Exchange): void {
    const text = Buffer.concat(exchange.head).toString('latin1');
    exchange.head = [];
    exchange.headBytes = 0;
    const lines = text.slice(0, -4).split('\r\n');
    const statusLine = /^HTTP\/1\.([01]) (\d{3})(?: .*)?$/.exec(lines[0] ?? '');
    if (statusLine === null) throw new Http1Error(`malformed status line ${JSON.stringify((lines[0] ?? '').slice(0, 80))}`);
    const status = Number(statusLine[2]);
    const headers: Record<string, string> = {};
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i]!;
      const colon = line.indexOf(':');
      if (colon <= 0) throw new Http1Error(`malformed header line ${JSON.stringify(line.slice(0, 80))}`);
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
    }
    if (status >= 100 && status < 200) return; // interim response (100 Continue): the real one follows
    const connection = (headers['connection'] ?? '').toLowerCase();
    exchange.keepAlive = statusLine[1] === '1' ? !/\bclose\b/.test(connection) : /\bkeep-alive\b/.test(connection);
    const method = exchange.request.method;
    if (method === 'HEAD' || status === 204 || status === 304) {
      exchange.body = { kind: 'none' };
    } else if (headers['transfer-encoding'] !== undefined) {
      if (!/(?:^|,)\s*chunked\s*$/i.test(headers['transfer-encoding'])) throw new Http1Error(`unsupported transfer-encoding ${headers['transfer-encoding']}`);
      exchange.body = { kind: 'chunked', state: 'size', remaining: 0, line: '' };
    } else if (headers['content-length'] !== undefined) {
      if (!/^\d{1,15}$/.test(headers['content-length'])) throw new Http1Error(`bad content-length ${JSON.stringify(headers['content-length'])}`);
      exchange.body = { kind: 'length', remaining: Number(headers['content-length']) };
    } else {
      exchange.body = { kind: 'close' };
      exchange.keepAlive = false;
    }
    exchange.request.onHead(status, headers);
    if (exchange.body.kind === 'none' || (exchange.body.kind === 'length' && exchange.body.remaining === 0)) this.#complete(exchange);
  }

  #readBody(exchange: Exchange, body: BodyFraming, bytes: Uint8Array, offset: number): number {
    switch (body.kind) {
      case 'none':
        throw new Http1Error('unexpected bytes after a response without a body');
      case 'close':
        exchange.request.onBody(bytes.subarray(offset));
        return bytes.length;
      case 'length': {
        const take = Math.min(body.remaining, bytes.length - offset);
        exchange.request.onBody(bytes.subarray(offset, offset + take));
        body.remaining -= take;
        if (body.remaining === 0) this.#complete(exchange);
        return offset + take;
      }
      case 'chunked':
        return this.#readChunked(exchange, body, bytes, offset);
    }
  }

  #readChunked(exchange: Exchange, body: Extract<BodyFraming, { kind: 'chunked' }>, bytes: Uint8Array, offset: number): number {
    if (body.state === 'data') {
      const take = Math.min(body.remaining, bytes.length - offset);
      exchange.request.onBody(bytes.subarray(offset, offset + take));
      body.remaining -= take;
      if (body.remaining === 0) body.state = 'data-crlf';
      return offset + take;
    }
    // size, data-crlf and trailers are lines: gather up to LF.
    const lf = bytes.indexOf(0x0a, offset);
    const end = lf < 0 ? bytes.length : lf + 1;
    body.line += Buffer.from(bytes.buffer, bytes.byteOffset + offset, end - offset).toString('latin1');
    if (body.line.length > chunkLineBytesMax) throw new Http1Error('chunk line too long');
    if (lf < 0) return end;
    const line = body.line.replace(/\r?\n$/, '');
    body.line = '';
    if (body.state === 'data-crlf') {
      if (line !== '') throw new Http1Error('missing CRLF after chunk data');
      body.state = 'size';
    } else if (body.state === 'size') {
      const size = /^([0-9a-fA-F]{1,12})(?:\s*;.*)?$/.exec(line);
      if (size === null) throw new Http1Error(`bad chunk size line ${JSON.stringify(line.slice(0, 40))}`);
      body.remaining = parseInt(size[1]!, 16);
      body.state = body.remaining === 0 ? 'trailers' : 'data';
    } else if (line === '') {
      this.#complete(exchange); // end of trailers
    }
    return end;
  }

  #complete(exchange: Exchange): void {
    this.#exchange = undefined;
    this.socket.setTimeout(0);
    exchange.resolve();
    if (exchange.keepAlive) this.#onGone(this); // idle again
    else this.close();
  }

  #ended(): void {
    const exchange = this.#exchange;
    if (exchange?.body?.kind === 'close') {
      this.#exchange = undefined;
      exchange.resolve();
    }
    this.#fail(new Http1Error('connection closed before the response ended'));
  }

  #fail(error: Error): void {
    const exchange = this.#exchange;
    this.#exchange = undefined;
    exchange?.reject(error instanceof Http1Error ? error : new Http1Error(error.message));
    this.close();
  }
}

/** Up to `connectionsMax` keep-alive connections to one endpoint; requests beyond that wait in FIFO order. */
export class Http1Pool {
  readonly endpoint: Http1Endpoint;
  readonly connectionsMax: number;
  readonly #idle: Connection[] = [];
  readonly #all = new Set<Connection>();
  readonly #waiting: Array<(connection: Connection) => void> = [];
  #destroyed = false;

  constructor(endpoint: Http1Endpoint, connectionsMax: number) {
    this.endpoint = endpoint;
    this.connectionsMax = connectionsMax;
  }

  /** Sends one request; resolves when its whole response has been passed to the callbacks. */
  async request(request: Http1Request): Promise<void> {
    if (this.#destroyed) throw new Http1Error('client closed');
    const connection = await this.#acquire();
    await connection.send(request);
  }

  /** Closes every connection; requests in flight fail. */
  destroy(): void {
    this.#destroyed = true;
    for (const connection of this.#all) connection.close();
    this.#all.clear();
    this.#idle.length = 0;
  }

  #acquire(): Promise<Connection> {
    const idle = this.#idle.pop();
    if (idle !== undefined) return Promise.resolve(idle);
    if (this.#all.size < this.connectionsMax) return Promise.resolve(this.#open());
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  #open(): Connection {
    const connection = new Connection(this.endpoint, (gone) => this.#released(gone));
    this.#all.add(connection);
    return connection;
  }

  /** A connection finished an exchange (idle again) or closed. */
  #released(connection: Connection): void {
    if (connection.closed) {
      this.#all.delete(connection);
      const at = this.#idle.indexOf(connection);
      if (at >= 0) this.#idle.splice(at, 1);
      // A waiter takes a fresh connection in the freed slot.
      const waiter = this.#waiting.shift();
      if (waiter !== undefined && !this.#destroyed) waiter(this.#open());
      return;
    }
    if (connection.busy) return;
    const waiter = this.#waiting.shift();
    if (waiter !== undefined) waiter(connection);
    else this.#idle.push(connection);
  }
}
