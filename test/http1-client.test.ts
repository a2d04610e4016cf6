// The load generator's HTTP/1.1 client (bench/load/http1.ts) against scripted servers: framing (length,
// chunked, close-delimited, no body), heads and chunk lines split across reads, interim responses, keep-alive
// reuse and its bound, servers that close, stall or send garbage, and TLS.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { after, describe, it } from 'node:test';
import { Http1Error, Http1Pool, responseHeadBytesMax, type Http1Request } from '../bench/load/http1.ts';
import { makeCertificate, removeDir } from './helpers/server.ts';

interface ReceivedRequest {
  readonly head: string;
  readonly body: Buffer;
  readonly connection: number;
}

/**
 * A server that parses requests (Content-Length bodies only) and answers each with `respond`, which writes raw
 * bytes. Counts connections.
 */
async function scriptedServer(
  respond: (socket: net.Socket, request: ReceivedRequest, index: number) => void,
  secure?: { cert: Buffer; key: Buffer },
): Promise<{ port: number; requests: ReceivedRequest[]; connections: () => number; close: () => Promise<void> }> {
  const requests: ReceivedRequest[] = [];
  const sockets = new Set<net.Socket>();
  let connectionCount = 0;
  const onConnection = (socket: net.Socket): void => {
    const connection = ++connectionCount;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let pending = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      for (;;) {
        const end = pending.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = pending.subarray(0, end).toString('latin1');
        const length = Number(/\r\ncontent-length: (\d+)/i.exec(head)?.[1] ?? '0');
        if (pending.length < end + 4 + length) return;
        const request = { head, body: Buffer.from(pending.subarray(end + 4, end + 4 + length)), connection };
        pending = pending.subarray(end + 4 + length);
        requests.push(request);
        respond(socket, request, requests.length - 1);
      }
    });
  };
  const server = secure === undefined ? net.createServer(onConnection) : tls.createServer(secure, onConnection);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    requests,
    connections: () => connectionCount,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Writes `bytes` in pieces of `pieceBytes`, each in its own macrotask so the client sees separate reads. */
async function trickle(socket: net.Socket, bytes: Buffer, pieceBytes: number): Promise<void> {
  for (let offset = 0; offset < bytes.length; offset += pieceBytes) {
    socket.write(bytes.subarray(offset, offset + pieceBytes));
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

interface Collected {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

async function fetchWith(pool: Http1Pool, request: Partial<Http1Request> & { target: string }): Promise<Collected> {
  const collected: Collected = { status: 0, headers: {}, body: Buffer.alloc(0) };
  const pieces: Buffer[] = [];
  await pool.request({
    method: 'GET',
    headers: { host: `127.0.0.1:${pool.endpoint.port}` },
    body: [],
    idleTimeoutMs: 5000,
    onHead: (status, headers) => {
      collected.status = status;
      collected.headers = headers;
    },
    onBody: (piece) => pieces.push(Buffer.from(piece)), // views of the read buffer: copy
    ...request,
  });
  collected.body = Buffer.concat(pieces);
  return collected;
}

function httpPool(port: number, connectionsMax = 4): Http1Pool {
  return new Http1Pool({ protocol: 'http:', hostname: '127.0.0.1', port }, connectionsMax);
}

describe('bench HTTP/1.1 client', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  it('sends the request as given and reads a Content-Length body that spans many reads', async () => {
    const payload = randomBytes(700 * 1024); // more than the 256 KiB read buffer
    const server = await scriptedServer((socket) => {
      socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${payload.length}\r\nETag: "a"\r\nX-Dup: 1\r\nx-dup: 2\r\n\r\n`);
      socket.write(payload);
    });
    cleanups.push(server.close);
    const pool = httpPool(server.port);
    cleanups.push(() => pool.destroy());
    const body = [Buffer.from('hello '), new Uint8Array(0), Buffer.from('world')];
    const response = await fetchWith(pool, { method: 'PUT', target: '/b/k?x=1', headers: { host: 'h', 'content-length': '11', 'x-amz-meta-a': 'v' }, body });
    assert.equal(response.status, 200);
    assert.equal(response.headers['etag'], '"a"');
    assert.equal(response.headers['x-dup'], '1, 2', 'repeated headers are joined');
    assert.ok(response.body.equals(payload), 'the body arrives whole and in order');
    const [request] = server.requests;
    assert.ok(request !== undefined, 'the server got the request');
    assert.match(request.head, /^PUT \/b\/k\?x=1 HTTP\/1\.1\r\n/);
    assert.match(request.head, /\r\nx-amz-meta-a: v(\r\n|$)/);
    assert.equal(request.body.toString(), 'hello world');
  });

  it('parses a head and chunk lines split byte by byte, with chunk extensions and trailers', async () => {
    const pieces = [randomBytes(5), randomBytes(70_000), randomBytes(1)];
    const wire = Buffer.concat([
      Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: application/xml\r\n\r\n'),
      ...pieces.flatMap((piece, i) => [Buffer.from(`${piece.length.toString(16)}${i === 1 ? ';ext=1' : ''}\r\n`), piece, Buffer.from('\r\n')]),
      Buffer.from('0\r\nX-Trailer: t\r\n\r\n'),
    ]);
    const server = await scriptedServer((socket) => {
      void (async () => {
        await trickle(socket, wire.subarray(0, 200), 1); // the head and the first chunk lines, one byte per read
        socket.write(wire.subarray(200, wire.length - 20));
        await trickle(socket, wire.subarray(wire.length - 20), 3);
      })();
    });
    cleanups.push(server.close);
    const pool = httpPool(server.port);
    cleanups.push(() => pool.destroy());
    const response = await fetchWith(pool, { target: '/chunked' });
    assert.equal(response.status, 200);
    assert.equal(response.headers['content-type'], 'application/xml');
    assert.ok(response.body.equals(Buffer.concat(pieces)), 'chunked body reassembled');
    // The connection is still usable: the terminating chunk and trailers were consumed exactly.
    const again = await fetchWith(pool, { target: '/chunked' });
    assert.ok(again.body.equals(Buffer.concat(pieces)), 'second chunked response on the same connection');
    assert.equal(server.connections(), 1, 'keep-alive reused the connection');
  });

  it('reuses keep-alive connections and never opens more than connectionsMax', async () => {
    const server = await scriptedServer((socket, _request, index) => {
      // Answer out of a timer so requests overlap.
      setTimeout(() => socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${String(index).length}\r\n\r\n${index}`), 5);
    });
    cleanups.push(server.close);
    const pool = httpPool(server.port, 3);
    cleanups.push(() => pool.destroy());
    const responses = await Promise.all(Array.from({ length: 12 }, (_, i) => fetchWith(pool, { target: `/${i}` })));
    assert.equal(responses.length, 12);
    assert.ok(responses.every((response) => response.status === 200), 'all requests answered');
    assert.equal(server.connections(), 3, 'exactly connectionsMax connections');
    for (let i = 0; i < 5; i++) await fetchWith(pool, { target: '/sequential' });
    assert.equal(server.connections(), 3, 'sequential requests reuse an idle connection');
    const perConnection = new Map<number, number>();
    for (const request of server.requests) perConnection.set(request.connection, (perConnection.get(request.connection) ?? 0) + 1);
    assert.equal([...perConnection.values()].reduce((a, b) => a + b, 0), 17);
  });

  it('handles responses without a body, interim 100 Continue, Connection: close and close-delimited bodies', async () => {
    const server = await scriptedServer((socket, request) => {
      const target = request.head.split(' ')[1];
      if (target === '/head') socket.write('HTTP/1.1 200 OK\r\nContent-Length: 12345\r\n\r\n');
      else if (target === '/no-content') socket.write('HTTP/1.1 204 No Content\r\n\r\n');
      else if (target === '/continue') socket.write('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok');
      else if (target === '/close') socket.write('HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 3\r\n\r\nbye');
      else if (target === '/until-close') socket.end('HTTP/1.0 200 OK\r\n\r\nuntil the end');
    });
    cleanups.push(server.close);
    const pool = httpPool(server.port, 1);
    cleanups.push(() => pool.destroy());
    const head = await fetchWith(pool, { method: 'HEAD', target: '/head' });
    assert.equal(head.status, 200);
    assert.equal(head.headers['content-length'], '12345');
    assert.equal(head.body.length, 0, 'HEAD has no body whatever Content-Length says');
    const noContent = await fetchWith(pool, { target: '/no-content' });
    assert.equal(noContent.status, 204);
    const continued = await fetchWith(pool, { target: '/continue' });
    assert.equal(continued.status, 201, 'the interim response is skipped');
    assert.equal(continued.body.toString(), 'ok');
    assert.equal(server.connections(), 1, 'one connection so far');
    const closing = await fetchWith(pool, { target: '/close' });
    assert.equal(closing.body.toString(), 'bye');
    const untilClose = await fetchWith(pool, { target: '/until-close' });
    assert.equal(untilClose.body.toString(), 'until the end');
    assert.equal(server.connections(), 2, 'Connection: close made the next request open a new connection');
    const after = await fetchWith(pool, { target: '/head', method: 'HEAD' });
    assert.equal(after.status, 200, 'the pool opens a fresh connection after a close-delimited body');
    assert.equal(server.connections(), 3);
  });

  it('fails a request whose connection breaks, stalls or speaks garbage, and recovers for the next one', async () => {
    const server = await scriptedServer((socket, request) => {
      const target = request.head.split(' ')[1];
      if (target === '/cut') {
        socket.write('HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\npartial');
        setTimeout(() => socket.destroy(), 10);
      } else if (target === '/garbage') socket.write('SMTP ready\r\n\r\n');
      else if (target === '/huge-head') socket.write(`HTTP/1.1 200 OK\r\nX-Big: ${'a'.repeat(responseHeadBytesMax)}\r\n\r\n`);
      else if (target === '/bad-chunk') socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n');
      else if (target === '/bad-length') socket.write('HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n');
      else if (target === '/stall') return;
      else socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    });
    cleanups.push(server.close);
    const pool = httpPool(server.port, 1);
    cleanups.push(() => pool.destroy());
    const expectFailure = async (target: string, pattern: RegExp, idleTimeoutMs = 5000): Promise<void> => {
      await assert.rejects(fetchWith(pool, { target, idleTimeoutMs }), (error: unknown) => {
        assert.ok(error instanceof Http1Error, `${target}: an Http1Error, got ${String(error)}`);
        assert.match(error.message, pattern);
        return true;
      });
      const next = await fetchWith(pool, { target: '/ok' });
      assert.equal(next.body.toString(), 'ok', `a request after ${target} succeeds`);
    };
    await expectFailure('/cut', /closed before the response ended/);
    await expectFailure('/garbage', /malformed status line/);
    await expectFailure('/huge-head', /response head larger than/);
    await expectFailure('/bad-chunk', /bad chunk size line/);
    await expectFailure('/bad-length', /bad content-length/);
    await expectFailure('/stall', /no activity for 200 ms/, 200);
  });

  it('fails cleanly when nothing listens, and refuses header values with line breaks', async () => {
    const probe = net.createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const pool = httpPool(port);
    cleanups.push(() => pool.destroy());
    await assert.rejects(fetchWith(pool, { target: '/' }), /ECONNREFUSED/);
    const server = await scriptedServer((socket) => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'));
    cleanups.push(server.close);
    const pool2 = httpPool(server.port);
    cleanups.push(() => pool2.destroy());
    await assert.rejects(fetchWith(pool2, { target: '/', headers: { host: 'h', 'x-evil': 'a\r\nx-injected: 1' } }), /line break/);
    assert.equal((await fetchWith(pool2, { target: '/' })).status, 200, 'the connection is still usable');
    assert.equal(server.requests.length, 1, 'the refused request never reached the server');
  });

  it('drops an idle connection the server closed and opens another', async () => {
    const server = await scriptedServer((socket) => {
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
      setTimeout(() => socket.end(), 5); // the server's keep-alive timeout
    });
    cleanups.push(server.close);
    const pool = httpPool(server.port, 1);
    cleanups.push(() => pool.destroy());
    await fetchWith(pool, { target: '/1' });
    await new Promise((resolve) => setTimeout(resolve, 50));
    const second = await fetchWith(pool, { target: '/2' });
    assert.equal(second.body.toString(), 'ok');
    assert.equal(server.connections(), 2, 'a new connection replaced the closed one');
  });

  it('speaks TLS', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'coffer-http1-'));
    cleanups.push(() => removeDir(dir));
    const { certFile, keyFile } = await makeCertificate(dir);
    const cert = await readFile(certFile);
    const payload = randomBytes(300 * 1024);
    const server = await scriptedServer((socket) => {
      socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${payload.length}\r\n\r\n`);
      socket.write(payload);
    }, { cert, key: await readFile(keyFile) });
    cleanups.push(server.close);
    const trusted = new Http1Pool({ protocol: 'https:', hostname: '127.0.0.1', port: server.port, ca: cert }, 2);
    cleanups.push(() => trusted.destroy());
    const response = await fetchWith(trusted, { target: '/tls' });
    assert.ok(response.body.equals(payload), 'body over TLS');
    const untrusting = new Http1Pool({ protocol: 'https:', hostname: '127.0.0.1', port: server.port }, 1);
    cleanups.push(() => untrusting.destroy());
    await assert.rejects(fetchWith(untrusting, { target: '/tls' }), /self.signed|certificate/i);
    const insecure = new Http1Pool({ protocol: 'https:', hostname: '127.0.0.1', port: server.port, insecure: true }, 1);
    cleanups.push(() => insecure.destroy());
    assert.equal((await fetchWith(insecure, { target: '/tls' })).status, 200, 'insecure accepts the self-signed certificate');
  });
});
