// The request body iterator (api/body.ts) over a fake uWS HttpResponse: pieces are lent only during the
// onData callback (overwritten right after), kept chunks in the default mode, copied-before-next-pull chunks
// with reuseChunks() and the receive slabs actually reused, backpressure (pause/resume) and client aborts.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { HttpResponse } from '@trufflesuite/uws-js-unofficial';
import { ClientAbortedError, RequestBody, bodyQueueHighWaterBytes } from '../api/body.ts';

const KiB = 1024;
const MiB = 1024 * KiB;
/** api/body.ts: the slab size with reuseChunks() and the low water mark (not exported) */
const slabBytes = 256 * KiB;
const lowWaterBytes = 512 * KiB;

/** deterministic PRNG so failures reproduce (mulberry32) */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The three HttpResponse methods RequestBody uses; pieces are pushed by the test. */
class FakeResponse {
  handler: ((chunk: ArrayBuffer, isLast: boolean) => void) | undefined;
  pauses = 0;
  resumes = 0;
  pushedBytes = 0;

  onData(handler: (chunk: ArrayBuffer, isLast: boolean) => void): this {
    this.handler = handler;
    return this;
  }

  pause(): void {
    this.pauses++;
  }

  resume(): void {
    this.resumes++;
  }

  get asResponse(): HttpResponse {
    return this as unknown as HttpResponse;
  }

  /** Deliver one piece like uWS: the ArrayBuffer is valid only during the callback, then overwritten. */
  push(bytes: Uint8Array, isLast = false): void {
    assert.ok(this.handler, 'onData registered');
    const lent = new ArrayBuffer(bytes.length);
    new Uint8Array(lent).set(bytes);
    this.handler(lent, isLast);
    new Uint8Array(lent).fill(0xee);
    this.pushedBytes += bytes.length;
  }
}

function tick(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function newBody(hasBody = true, isResponseOpen: () => boolean = () => true): { res: FakeResponse; body: RequestBody } {
  const res = new FakeResponse();
  return { res, body: new RequestBody(res.asResponse, hasBody, isResponseOpen) };
}

/** Pull one chunk that must be there (no waiting on the socket). */
async function pull(iterator: AsyncIterator<Buffer>): Promise<Buffer> {
  const result = await iterator.next();
  assert.equal(result.done, false, 'a chunk was expected');
  return result.value as Buffer;
}

describe('RequestBody default mode', () => {
  it('yields chunks the consumer may keep', async () => {
    const data = randomBytes(3 * MiB + 11);
    const { res, body } = newBody();
    const random = prng(1);
    const kept: Buffer[] = [];
    const consumer = (async () => {
      for await (const chunk of body) kept.push(chunk); // no copy
    })();
    for (let offset = 0; offset < data.length; ) {
      const size = Math.min(data.length - offset, 1 + Math.floor(random() * 300 * KiB));
      res.push(data.subarray(offset, offset + size), offset + size === data.length);
      offset += size;
      if (random() < 0.5) await tick(); // let the consumer run between some pieces
    }
    await consumer;
    assert.ok(Buffer.concat(kept).equals(data), 'kept chunks are intact after every piece was overwritten');
    assert.equal(body.receivedBytes, data.length);
    assert.equal(body.isComplete, true);
  });

  it('an empty last piece ends the body; a body-less request is empty and complete', async () => {
    const { res, body } = newBody();
    res.push(Buffer.from('abc'));
    assert.equal(body.isComplete, false);
    const consumer = (async () => {
      const parts: Buffer[] = [];
      for await (const chunk of body) parts.push(chunk);
      return Buffer.concat(parts).toString();
    })();
    await tick();
    res.push(new Uint8Array(0), true);
    assert.equal(await consumer, 'abc');
    assert.equal(body.isComplete, true);

    const empty = newBody(false);
    assert.equal(empty.res.handler, undefined, 'no onData without a body');
    assert.equal(empty.body.isComplete, true);
    const chunks: Buffer[] = [];
    for await (const chunk of empty.body) chunks.push(chunk);
    assert.deepEqual(chunks, []);
  });

  it('a waiting consumer is woken by the next piece', async () => {
    const { res, body } = newBody();
    const iterator = body[Symbol.asyncIterator]();
    const next = iterator.next();
    let settled = false;
    void next.then(() => {
      settled = true;
    });
    await tick();
    assert.equal(settled, false, 'nothing to read yet');
    res.push(Buffer.from('late'));
    const result = await next;
    assert.equal(result.done, false);
    assert.equal(result.value?.toString(), 'late');
    res.push(new Uint8Array(0), true);
    assert.equal((await iterator.next()).done, true);
  });

  it('can be iterated once only', async () => {
    const { res, body } = newBody();
    res.push(Buffer.from('x'), true);
    for await (const chunk of body) assert.equal(chunk.toString(), 'x');
    await assert.rejects(body[Symbol.asyncIterator]().next(), /consumed twice/);
  });
});

describe('RequestBody reuseChunks()', () => {
  it('gives exact bytes to a consumer that copies each chunk before pulling the next, pushes and pulls interleaved', async () => {
    const random = prng(2);
    const pieceSizes: number[] = [];
    for (let i = 0; i < 40; i++) {
      // mostly small and medium pieces, some beyond one slab (700 KiB > 256 KiB)
      const r = random();
      pieceSizes.push(r < 0.25 ? 1 + Math.floor(random() * 16) : r < 0.75 ? 1 + Math.floor(random() * 64 * KiB) : 1 + Math.floor(random() * 700 * KiB));
    }
    pieceSizes.push(700 * KiB, 1, slabBytes, slabBytes + 1);
    const total = pieceSizes.reduce((sum, size) => sum + size, 0);
    const data = randomBytes(total);

    const { res, body } = newBody();
    body.reuseChunks();
    const iterator = body[Symbol.asyncIterator]();
    const copies: Buffer[] = [];
    let consumedBytes = 0;
    let piece = 0;
    let pushOffset = 0;
    const pushSome = (count: number): void => {
      for (let i = 0; i < count && piece < pieceSizes.length; i++, piece++) {
        const size = pieceSizes[piece]!;
        res.push(data.subarray(pushOffset, pushOffset + size), piece === pieceSizes.length - 1);
        pushOffset += size;
      }
    };

    while (consumedBytes < total) {
      pushSome(Math.floor(random() * 4));
      // Pull only what is there (a pull on an empty queue would wait for the socket).
      let pulls = 1 + Math.floor(random() * 6);
      while (pulls-- > 0 && consumedBytes < pushOffset) {
        const chunk = await pull(iterator);
        assert.ok(chunk.length >= 1 && chunk.length <= slabBytes, `a chunk lies within one slab (${chunk.length})`);
        // The chunk stays valid until the next pull, even while more pieces arrive into the slabs.
        if (random() < 0.5) pushSome(1 + Math.floor(random() * 2));
        assert.ok(chunk.equals(data.subarray(consumedBytes, consumedBytes + chunk.length)), `bytes at ${consumedBytes}`);
        copies.push(Buffer.from(chunk));
        consumedBytes += chunk.length;
      }
      if (random() < 0.3) await tick();
    }
    assert.equal((await iterator.next()).done, true);
    assert.ok(Buffer.concat(copies).equals(data), 'concatenated copies equal the input');
    assert.equal(body.receivedBytes, total);
  });

  it('reuses its receive slabs: 8 MiB in 64 KiB pieces touch a few buffers, and the next body gets them', async () => {
    const data = randomBytes(8 * MiB);
    const pieceBytes = 64 * KiB;
    const consume = async (source: Buffer, burstPieces: number): Promise<{ copy: Buffer; buffers: ArrayBufferLike[] }> => {
      const { res, body } = newBody();
      body.reuseChunks();
      const iterator = body[Symbol.asyncIterator]();
      const copies: Buffer[] = [];
      const buffers: ArrayBufferLike[] = [];
      let pushed = 0;
      let consumed = 0;
      while (consumed < source.length) {
        for (let i = 0; i < burstPieces && pushed < source.length; i++) {
          res.push(source.subarray(pushed, pushed + pieceBytes), pushed + pieceBytes >= source.length);
          pushed += pieceBytes;
        }
        while (consumed < pushed) {
          const chunk = await pull(iterator);
          buffers.push(chunk.buffer);
          copies.push(Buffer.from(chunk));
          consumed += chunk.length;
        }
      }
      assert.equal((await iterator.next()).done, true);
      return { copy: Buffer.concat(copies), buffers };
    };

    const first = await consume(data, 16); // 1 MiB bursts, each consumed before the next
    assert.ok(first.copy.equals(data));
    const firstDistinct = new Set(first.buffers);
    assert.equal(first.buffers.length, data.length / pieceBytes, 'one chunk per piece (pieces fit the slabs evenly)');
    assert.ok(firstDistinct.size <= 16, `${firstDistinct.size} distinct ArrayBuffers for ${first.buffers.length} chunks`);
    for (const buffer of firstDistinct) assert.equal(buffer.byteLength, slabBytes, 'every chunk is a view of a 256 KiB slab');

    const secondData = data.subarray(0, MiB);
    const second = await consume(secondData, 4);
    assert.ok(second.copy.equals(secondData));
    assert.ok(firstDistinct.has(second.buffers[0]!), 'the next body starts in a slab the first one freed');
    const shared = new Set(second.buffers.filter((buffer) => firstDistinct.has(buffer)));
    assert.ok(shared.size >= 1);
    const combined = new Set([...first.buffers, ...second.buffers]);
    assert.ok(combined.size <= 16, `${combined.size} distinct ArrayBuffers across both bodies`);
  });

  it('a consumer that keeps up refills one slab from its start', async () => {
    const data = randomBytes(MiB);
    const { res, body } = newBody();
    body.reuseChunks();
    const iterator = body[Symbol.asyncIterator]();
    const buffers = new Set<ArrayBufferLike>();
    const copies: Buffer[] = [];
    for (let offset = 0; offset < data.length; offset += 3000) {
      const end = Math.min(data.length, offset + 3000);
      // The consumer is already waiting: its pull released the previous chunk, so nothing references the
      // slab being filled and the piece goes to its start.
      const pending = iterator.next();
      await tick();
      res.push(data.subarray(offset, end), end === data.length);
      const result = await pending;
      assert.equal(result.done, false);
      const chunk = result.value as Buffer;
      assert.equal(chunk.byteOffset, 0, `chunk at ${offset} written at the start of the slab`);
      buffers.add(chunk.buffer);
      copies.push(Buffer.from(chunk));
    }
    assert.equal((await iterator.next()).done, true);
    assert.ok(Buffer.concat(copies).equals(data));
    assert.equal(buffers.size, 1, 'one slab for the whole body');
  });

  it('a slab is not reused while a queued chunk still points into it', async () => {
    // Everything arrives before the consumer starts: 1 MiB queued across 4 slabs, none may be overwritten.
    const data = randomBytes(MiB);
    const { res, body } = newBody();
    body.reuseChunks();
    for (let offset = 0; offset < data.length; offset += 100 * KiB) {
      res.push(data.subarray(offset, Math.min(data.length, offset + 100 * KiB)), offset + 100 * KiB >= data.length);
    }
    // A second body receiving meanwhile must get fresh or free slabs, not these.
    const other = newBody();
    other.body.reuseChunks();
    const otherData = randomBytes(600 * KiB);
    other.res.push(otherData, true);
    const copies: Buffer[] = [];
    for await (const chunk of body) copies.push(Buffer.from(chunk));
    assert.ok(Buffer.concat(copies).equals(data));
    const otherCopies: Buffer[] = [];
    for await (const chunk of other.body) otherCopies.push(Buffer.from(chunk));
    assert.ok(Buffer.concat(otherCopies).equals(otherData));
  });

  it('reuseChunks() after iteration started throws', async () => {
    const { res, body } = newBody();
    res.push(Buffer.from('abc'));
    const iterator = body[Symbol.asyncIterator]();
    assert.equal((await pull(iterator)).toString(), 'abc');
    assert.throws(() => body.reuseChunks(), /reuseChunks\(\) after the body was read/);
    res.push(new Uint8Array(0), true);
    assert.equal((await iterator.next()).done, true);
  });
});

describe('RequestBody backpressure', () => {
  for (const reuse of [false, true]) {
    it(`pauses above the high water mark and resumes below the low one${reuse ? ' (reuseChunks)' : ''}`, async () => {
      const pieceBytes = 64 * KiB;
      const { res, body } = newBody();
      if (reuse) body.reuseChunks();
      const data = randomBytes(bodyQueueHighWaterBytes + 4 * pieceBytes);

      let pushed = 0;
      while (pushed + pieceBytes <= bodyQueueHighWaterBytes) {
        res.push(data.subarray(pushed, pushed + pieceBytes));
        pushed += pieceBytes;
      }
      assert.equal(pushed, bodyQueueHighWaterBytes);
      assert.equal(res.pauses, 0, 'exactly the high water mark queued: not paused yet');
      res.push(data.subarray(pushed, pushed + pieceBytes));
      pushed += pieceBytes;
      assert.equal(res.pauses, 1, 'paused once over the high water mark');
      res.push(data.subarray(pushed, pushed + pieceBytes));
      pushed += pieceBytes;
      assert.equal(res.pauses, 1, 'not paused again');

      const iterator = body[Symbol.asyncIterator]();
      const copies: Buffer[] = [];
      let consumed = 0;
      while (consumed < pushed) {
        const chunk = await pull(iterator);
        copies.push(Buffer.from(chunk));
        consumed += chunk.length;
        const queued = pushed - consumed;
        assert.equal(res.resumes, queued < lowWaterBytes ? 1 : 0, `resume() once queued < low water (queued ${queued})`);
      }
      assert.equal(res.pauses, 1);
      // The rest of the body arrives after the resume; the last piece never pauses.
      res.push(data.subarray(pushed, pushed + pieceBytes));
      pushed += pieceBytes;
      res.push(data.subarray(pushed), true);
      pushed = data.length;
      while (consumed < pushed) {
        const chunk = await pull(iterator);
        copies.push(Buffer.from(chunk));
        consumed += chunk.length;
      }
      assert.equal((await iterator.next()).done, true);
      assert.ok(Buffer.concat(copies).equals(data));
      assert.deepEqual([res.pauses, res.resumes], [1, 1]);
    });
  }

  it('a last piece over the high water mark does not pause', async () => {
    const { res, body } = newBody();
    const data = randomBytes(bodyQueueHighWaterBytes + 1);
    res.push(data, true);
    assert.equal(res.pauses, 0);
    const parts: Buffer[] = [];
    for await (const chunk of body) parts.push(chunk);
    assert.ok(Buffer.concat(parts).equals(data));
  });

  it('does not resume a response that is no longer open', async () => {
    let open = true;
    const { res, body } = newBody(true, () => open);
    for (let i = 0; i < 3; i++) res.push(new Uint8Array(MiB));
    assert.equal(res.pauses, 1);
    open = false;
    const iterator = body[Symbol.asyncIterator]();
    for (let i = 0; i < 3; i++) await pull(iterator);
    assert.equal(res.resumes, 0);
  });
});

describe('RequestBody abort()', () => {
  it('a waiting consumer gets ClientAbortedError', async () => {
    const { res, body } = newBody();
    res.push(Buffer.from('partial'));
    const iterator = body[Symbol.asyncIterator]();
    assert.equal((await pull(iterator)).toString(), 'partial');
    const next = iterator.next();
    await tick();
    body.abort();
    await assert.rejects(next, ClientAbortedError);
    assert.equal(body.isComplete, false);
  });

  it('queued chunks are dropped: the next pull throws', async () => {
    for (const reuse of [false, true]) {
      const { res, body } = newBody();
      if (reuse) body.reuseChunks();
      res.push(randomBytes(300 * KiB));
      body.abort();
      await assert.rejects(
        (async () => {
          for await (const chunk of body) void chunk;
        })(),
        (error: unknown) => error instanceof ClientAbortedError && error.name === 'ClientAbortedError',
      );
    }
  });

  it('after the whole body arrived, abort() changes nothing', async () => {
    const { res, body } = newBody();
    res.push(Buffer.from('whole'), true);
    body.abort();
    const parts: Buffer[] = [];
    for await (const chunk of body) parts.push(chunk);
    assert.equal(Buffer.concat(parts).toString(), 'whole');
  });
});
