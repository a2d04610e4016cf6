// aws-chunked body decoding: AWS's published streaming examples as golden vectors, round trips through an
// encoder written here (signed, signed + trailer, unsigned + trailer) fed in random-sized pieces, the AWS SDK's
// own unsigned-trailer encoder, tampering, truncation at every byte, and malformed framing.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import { Readable } from 'node:stream';
import { getAwsChunkedEncodingStream } from '@smithy/core/serde';
import {
  chunkDataBytesMax, chunkLineBytesMax, decodeAwsChunked, trailerLinesMax,
  type ChunkedOptions, type ChunkedTrailers,
} from '../api/auth/chunked.ts';
import { deriveSigningKey, type SigningContext } from '../api/auth/sigv4.ts';
import { S3Error, type S3ErrorCode } from '../api/errors.ts';

const exampleSecret = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
const exampleSigningKey = deriveSigningKey(exampleSecret, '20130524', 'us-east-1', 's3');
const exampleData = Buffer.alloc(66560, 'a');

function exampleSigning(seedSignature: string): SigningContext {
  return { signingKey: exampleSigningKey, amzDate: '20130524T000000Z', scope: '20130524/us-east-1/s3/aws4_request', seedSignature };
}

/** mulberry32: deterministic so a failure can be replayed from its seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomBytesFrom(random: () => number, sizeBytes: number): Buffer {
  const out = Buffer.allocUnsafe(sizeBytes);
  for (let i = 0; i < sizeBytes; i++) out[i] = Math.floor(random() * 256);
  return out;
}

/** Splits `body` into pieces: random sizes in [1, pieceBytesMax], as a network would deliver it. */
function split(body: Buffer, random: () => number, pieceBytesMax: number): Uint8Array[] {
  const pieces: Uint8Array[] = [];
  for (let offset = 0; offset < body.length;) {
    const size = Math.min(body.length - offset, 1 + Math.floor(random() * pieceBytesMax));
    // alternate Buffers and plain Uint8Arrays over shared memory, as sources may yield either
    const piece = body.subarray(offset, offset + size);
    pieces.push(pieces.length % 2 === 0 ? piece : new Uint8Array(piece.buffer, piece.byteOffset, piece.byteLength));
    offset += size;
  }
  return pieces;
}

async function* source(pieces: Iterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  for (const piece of pieces) yield piece;
}

interface Decoded {
  data: Buffer;
  trailers: Map<string, string>;
}

async function decode(pieces: Iterable<Uint8Array>, opts: ChunkedOptions): Promise<Decoded> {
  const trailers: ChunkedTrailers = { headers: new Map() };
  const out: Buffer[] = [];
  for await (const piece of decodeAwsChunked(source(pieces), opts, trailers)) out.push(piece);
  return { data: Buffer.concat(out), trailers: trailers.headers };
}

async function assertRejects(promise: Promise<unknown>, code: S3ErrorCode, context = ''): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof S3Error, `${context}: expected S3Error ${code}, got ${String(error)}`);
    assert.equal(error.code, code, `${context}: expected ${code}, got ${error.code}: ${error.message}`);
    return true;
  });
}

// ---------------------------------------------------------------------------------------------------------------
// A test-side encoder, written from the spec independently of the decoder.

function sha256Hex(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

function chunkSignature(signing: SigningContext, previous: string, data: Buffer): string {
  const stringToSign = ['AWS4-HMAC-SHA256-PAYLOAD', signing.amzDate, signing.scope, previous, sha256Hex(''), sha256Hex(data)].join('\n');
  return createHmac('sha256', signing.signingKey).update(stringToSign).digest('hex');
}

function trailerSignature(signing: SigningContext, previous: string, trailers: ReadonlyArray<readonly [string, string]>): string {
  const canonical = trailers.map(([name, value]) => `${name}:${value}\n`).join('');
  const stringToSign = ['AWS4-HMAC-SHA256-TRAILER', signing.amzDate, signing.scope, previous, sha256Hex(canonical)].join('\n');
  return createHmac('sha256', signing.signingKey).update(stringToSign).digest('hex');
}

interface EncodeOptions {
  signing?: SigningContext;
  trailers?: ReadonlyArray<readonly [string, string]>;
  /** "\r\n" between the final chunk and the trailer lines, as in AWS's trailer example */
  blankBeforeTrailers?: boolean;
}

function encode(data: Buffer, chunkSizes: readonly number[], opts: EncodeOptions = {}): Buffer {
  const parts: Buffer[] = [];
  let previous = opts.signing?.seedSignature ?? '';
  let offset = 0;
  const sizes = [...chunkSizes];
  while (offset < data.length) {
    const size = Math.min(sizes.shift() ?? data.length, data.length - offset);
    const chunk = data.subarray(offset, offset + size);
    offset += size;
    parts.push(Buffer.from(chunkHeader(chunk)), chunk, Buffer.from('\r\n'));
  }
  parts.push(Buffer.from(chunkHeader(Buffer.alloc(0))));
  if (opts.trailers === undefined) {
    parts.push(Buffer.from('\r\n'));
  } else {
    if (opts.blankBeforeTrailers === true) parts.push(Buffer.from('\r\n'));
    for (const [name, value] of opts.trailers) parts.push(Buffer.from(`${name}:${value}\r\n`));
    if (opts.signing !== undefined) {
      parts.push(Buffer.from(`x-amz-trailer-signature:${trailerSignature(opts.signing, previous, opts.trailers)}\r\n`));
    }
    parts.push(Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);

  function chunkHeader(chunk: Buffer): string {
    if (opts.signing === undefined) return `${chunk.length.toString(16)}\r\n`;
    previous = chunkSignature(opts.signing, previous, chunk);
    return `${chunk.length.toString(16)};chunk-signature=${previous}\r\n`;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Golden vectors: S3 API reference sigv4-streaming.html and sigv4-streaming-trailers.html.

const exampleBody = Buffer.concat([
  Buffer.from('10000;chunk-signature=ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648\r\n'),
  exampleData.subarray(0, 65536),
  Buffer.from('\r\n400;chunk-signature=0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497\r\n'),
  exampleData.subarray(65536),
  Buffer.from('\r\n0;chunk-signature=b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9\r\n\r\n'),
]);

test('AWS example: chunked PUT, 66560 bytes in 64 KiB + 1 KiB chunks', async () => {
  const opts = { signing: exampleSigning('4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9'), trailer: false, decodedLengthBytes: 66560 };
  assert.equal(exampleBody.length, 66824); // the example's Content-Length
  const whole = await decode([exampleBody], opts);
  assert.deepEqual(whole.data, exampleData);
  assert.equal(whole.trailers.size, 0);
  const random = prng(1);
  for (const pieceBytesMax of [1, 7, 100, 5000, 70000]) {
    assert.deepEqual((await decode(split(exampleBody, random, pieceBytesMax), opts)).data, exampleData, `pieces <= ${pieceBytesMax}`);
  }
  // our encoder reproduces the published body byte for byte
  assert.deepEqual(encode(exampleData, [65536, 1024], { signing: opts.signing }), exampleBody);
  // a different seed (another request) breaks the chain at the first chunk
  await assertRejects(decode([exampleBody], { ...opts, signing: exampleSigning('0'.repeat(64)) }), 'SignatureDoesNotMatch');
});

function exampleTrailerBody(blankBeforeTrailers: boolean, closingBlank: boolean, checksum = 'sOO8/Q=='): Buffer {
  return Buffer.concat([
    Buffer.from('10000;chunk-signature=b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2\r\n'),
    exampleData.subarray(0, 65536),
    Buffer.from('\r\n400;chunk-signature=1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7\r\n'),
    exampleData.subarray(65536),
    Buffer.from('\r\n0;chunk-signature=2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992\r\n' +
      (blankBeforeTrailers ? '\r\n' : '') +
      `x-amz-checksum-crc32c:${checksum}\r\n` +
      'x-amz-trailer-signature:d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435\r\n' +
      (closingBlank ? '\r\n' : '')),
  ]);
}

test('AWS example: chunked PUT with a signed trailing checksum', async () => {
  const opts = { signing: exampleSigning('106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e'), trailer: true, decodedLengthBytes: 66560 };
  const random = prng(2);
  for (const blankBeforeTrailers of [false, true]) {
    for (const closingBlank of [true, false]) {
      const body = exampleTrailerBody(blankBeforeTrailers, closingBlank);
      // 1-byte pieces once (the test runner's promise hooks make each piece costly), coarser pieces for all
      for (const pieceBytesMax of blankBeforeTrailers || !closingBlank ? [13, 70000] : [1, 13, 70000]) {
        const decoded = await decode(split(body, random, pieceBytesMax), opts);
        assert.deepEqual(decoded.data, exampleData);
        assert.deepEqual([...decoded.trailers], [['x-amz-checksum-crc32c', 'sOO8/Q==']]);
      }
    }
  }
  // the trailer signature covers the checksum value
  await assertRejects(decode([exampleTrailerBody(false, true, 'sOO8/A==')], opts), 'SignatureDoesNotMatch');
  // our encoder's trailer signature agrees with the published one
  assert.deepEqual(encode(exampleData, [65536, 1024], { signing: opts.signing, trailers: [['x-amz-checksum-crc32c', 'sOO8/Q==']] }),
    exampleTrailerBody(false, true));
});

// ---------------------------------------------------------------------------------------------------------------
// Round trips.

const randomSigning: SigningContext = {
  signingKey: deriveSigningKey('secret', '20240601', 'eu-west-3', 's3'),
  amzDate: '20240601T120000Z',
  scope: '20240601/eu-west-3/s3/aws4_request',
  seedSignature: sha256Hex('seed'),
};

test('round trip: signed, signed + trailer, unsigned + trailer, random chunking and random input pieces', async () => {
  const seed = Number(process.env['CHUNKED_SEED'] ?? 99);
  const random = prng(seed);
  for (let round = 0; round < 120; round++) {
    const context = `seed ${seed} round ${round}`;
    const small = round % 2 === 0;
    const sizeBytes = round % 10 === 0 ? 0 : Math.floor(random() * (small ? 3000 : 300_000));
    const data = randomBytesFrom(random, sizeBytes);
    const chunkSizes = Array.from({ length: 64 }, () => 1 + Math.floor(random() * (small ? 500 : random() < 0.5 ? 100 : 70_000)));
    const variant = round % 3;
    const trailers: Array<[string, string]> = random() < 0.8 ? [['x-amz-checksum-crc32', 'AAAAAA==']] : [];
    if (random() < 0.3) trailers.push(['x-amz-checksum-sha256', createHash('sha256').update(data).digest('base64')]);
    const encodeOptions: EncodeOptions = variant === 0 ? { signing: randomSigning }
      : variant === 1 ? { signing: randomSigning, trailers, blankBeforeTrailers: random() < 0.3 }
      : { trailers };
    const body = encode(data, chunkSizes, encodeOptions);
    const opts: ChunkedOptions = {
      ...(variant < 2 ? { signing: randomSigning } : {}),
      trailer: variant > 0,
      ...(random() < 0.7 ? { decodedLengthBytes: sizeBytes } : {}),
    };
    const pieceSizes = small ? [1, 2, 3, 64, 1000] : [64, 1000, 20_000, 300_000];
    const pieceBytesMax = pieceSizes[Math.floor(random() * pieceSizes.length)]!;
    const decoded = await decode(split(body, random, pieceBytesMax), opts);
    assert.ok(decoded.data.equals(data), context);
    assert.deepEqual([...decoded.trailers], variant === 0 ? [] : trailers, context);
  }
});

test('the AWS SDK unsigned-trailer encoder (getAwsChunkedEncodingStream) decodes', async () => {
  const data = Buffer.from(Array.from({ length: 150_000 }, (_, i) => (i * 7) & 0xff));
  const pieces = split(data, prng(3), 40_000).map((p) => Buffer.from(p));
  for (const withChecksum of [true, false]) {
    const encoded = getAwsChunkedEncodingStream(Readable.from(pieces), {
      bodyLengthChecker: (body: unknown) => (body as Buffer).length,
      ...(withChecksum ? {
        base64Encoder: (bytes: Uint8Array) => Buffer.from(bytes).toString('base64'),
        checksumAlgorithmFn: Object.assign(function Sha256() {
          const hash = createHash('sha256');
          return { update: (d: Uint8Array) => hash.update(d), digest: async () => new Uint8Array(hash.digest()) };
        }) as never,
        checksumLocationName: 'x-amz-checksum-sha256',
        streamHasher: (_fn: unknown, stream: Readable) => new Promise<Uint8Array>((resolve, reject) => {
          // listen like the SDK's hasher does (it pipes), alongside the encoder's own 'data' listener
          const hash = createHash('sha256');
          stream.on('data', (piece: Buffer) => hash.update(piece));
          stream.on('end', () => resolve(new Uint8Array(hash.digest())));
          stream.on('error', reject);
        }),
      } : {}),
    } as Parameters<typeof getAwsChunkedEncodingStream>[1]);
    const wire: Buffer[] = [];
    for await (const piece of encoded as Readable) wire.push(Buffer.from(piece as Buffer));
    const decoded = await decode(wire, { trailer: true, decodedLengthBytes: data.length });
    assert.ok(decoded.data.equals(data));
    assert.deepEqual([...decoded.trailers], withChecksum ? [['x-amz-checksum-sha256', createHash('sha256').update(data).digest('base64')]] : []);
  }
});

// ---------------------------------------------------------------------------------------------------------------
// Tampering, truncation, framing.

test('tampered chunks and trailers are rejected, and unverified data is never yielded', async () => {
  const data = Buffer.alloc(3000, 'x');
  const trailers: Array<[string, string]> = [['x-amz-checksum-crc32', 'AAAAAA==']];
  const body = encode(data, [1000, 1000, 1000], { signing: randomSigning, trailers });
  const opts = { signing: randomSigning, trailer: true };
  const text = body.toString('latin1');

  // flip one hex digit of the second chunk's signature
  const secondSignatureAt = text.indexOf('chunk-signature=', text.indexOf('chunk-signature=') + 1) + 'chunk-signature='.length;
  const badSignature = Buffer.from(body);
  badSignature[secondSignatureAt] = badSignature[secondSignatureAt] === 0x30 ? 0x31 : 0x30;
  const trailersOut: ChunkedTrailers = { headers: new Map() };
  const yielded: Buffer[] = [];
  await assertRejects((async () => {
    for await (const piece of decodeAwsChunked(source([badSignature]), opts, trailersOut)) yielded.push(piece);
  })(), 'SignatureDoesNotMatch');
  assert.equal(Buffer.concat(yielded).length, 1000, 'only the verified first chunk was yielded');
  assert.equal(trailersOut.headers.size, 0, 'trailers are not published on failure');

  // flip a data byte of the third chunk
  const badData = Buffer.from(body);
  badData[text.lastIndexOf('x') - 10] = 0x79;
  await assertRejects(decode([badData], opts), 'SignatureDoesNotMatch');

  // swap the first two chunks (both individually well-signed): the chain breaks
  const chunks = encode(Buffer.concat([Buffer.alloc(1000, 'p'), Buffer.alloc(1000, 'q')]), [1000, 1000], { signing: randomSigning });
  const firstEnd = chunks.indexOf('\r\n', chunks.indexOf('\r\n') + 2) + 2;
  const secondEnd = chunks.indexOf('\r\n', chunks.indexOf('\r\n', firstEnd) + 2) + 2;
  const swapped = Buffer.concat([chunks.subarray(firstEnd, secondEnd), chunks.subarray(0, firstEnd), chunks.subarray(secondEnd)]);
  await assertRejects(decode([swapped], { signing: randomSigning, trailer: false }), 'SignatureDoesNotMatch');

  // trailer value changed, trailer signature changed, trailer signature removed
  await assertRejects(decode([Buffer.from(text.replace('AAAAAA==', 'AAAAAB=='), 'latin1')], opts), 'SignatureDoesNotMatch');
  const trailerSignatureAt = text.indexOf('x-amz-trailer-signature:') + 'x-amz-trailer-signature:'.length;
  const badTrailerSignature = Buffer.from(body);
  badTrailerSignature[trailerSignatureAt] = badTrailerSignature[trailerSignatureAt] === 0x30 ? 0x31 : 0x30;
  await assertRejects(decode([badTrailerSignature], opts), 'SignatureDoesNotMatch');
  await assertRejects(decode([Buffer.from(text.replace(/x-amz-trailer-signature:[0-9a-f]{64}\r\n/, ''), 'latin1')], opts), 'SignatureDoesNotMatch');
  // an extra, unsigned trailer line
  await assertRejects(decode([Buffer.from(text.replace('x-amz-checksum-crc32:', 'x-amz-meta-x:1\r\nx-amz-checksum-crc32:'), 'latin1')], opts), 'SignatureDoesNotMatch');
});

test('truncation at every byte is IncompleteBody, except the tolerated ends', async () => {
  const data = Buffer.from('0123456789abcdefghijklmnopqrstuvwxyz');
  const cases: Array<{ name: string; body: Buffer; opts: ChunkedOptions; tolerated: (cut: number, body: Buffer) => boolean }> = [
    {
      name: 'signed',
      body: encode(data, [10, 10, 10], { signing: randomSigning }),
      opts: { signing: randomSigning, trailer: false },
      tolerated: (cut, body) => cut === body.length - 2, // EOF right after the final chunk line
    },
    {
      name: 'signed + trailer',
      body: encode(data, [10, 10, 10], { signing: randomSigning, trailers: [['x-amz-checksum-crc32', 'AAAAAA==']] }),
      opts: { signing: randomSigning, trailer: true },
      tolerated: (cut, body) => cut === body.length - 2, // EOF right after the trailer signature line
    },
    {
      name: 'unsigned + trailer',
      body: encode(data, [10, 10, 10], { trailers: [['x-amz-checksum-crc32', 'AAAAAA==']] }),
      opts: { trailer: true },
      tolerated: () => false,
    },
  ];
  for (const { name, body, opts, tolerated } of cases) {
    const finalChunkLineEnd = body.indexOf('\r\n', body.lastIndexOf(data.subarray(-6)) + 6 + 2) + 2;
    for (let cut = 0; cut < body.length; cut++) {
      const context = `${name}, cut at ${cut} of ${body.length}`;
      // EOF right after the final chunk line drops the (unsigned or absent) trailers but loses no data
      if (tolerated(cut, body) || cut === finalChunkLineEnd) {
        assert.ok((await decode([body.subarray(0, cut)], opts)).data.equals(data), context);
        continue;
      }
      await assertRejects(decode([body.subarray(0, cut)], opts), 'IncompleteBody', context);
      await assertRejects(decode(split(body.subarray(0, cut), prng(cut), 3), opts), 'IncompleteBody', context);
    }
  }
});

test('decoded length must match x-amz-decoded-content-length', async () => {
  const body = encode(Buffer.alloc(100, 'z'), [60], { signing: randomSigning });
  assert.equal((await decode([body], { signing: randomSigning, trailer: false, decodedLengthBytes: 100 })).data.length, 100);
  await assertRejects(decode([body], { signing: randomSigning, trailer: false, decodedLengthBytes: 99 }), 'IncompleteBody');
  await assertRejects(decode([body], { signing: randomSigning, trailer: false, decodedLengthBytes: 101 }), 'IncompleteBody');
  await assertRejects(decode([body], { signing: randomSigning, trailer: false, decodedLengthBytes: -1 }), 'InvalidArgument');
});

test('malformed framing is InvalidArgument', async () => {
  const signature = 'a'.repeat(64);
  const unsigned = { trailer: true };
  const cases: Array<[string, string | Buffer, ChunkedOptions]> = [
    ['not hex', 'zz\r\nab\r\n0\r\n\r\n', unsigned],
    ['empty size', '\r\n', unsigned],
    ['bare LF', '2\nab\r\n0\r\n\r\n', unsigned],
    ['data not followed by CRLF', '2\r\nabc\r\n0\r\n\r\n', unsigned],
    ['signed header without signature', '2\r\nab\r\n', { signing: randomSigning, trailer: false }],
    ['signature too short', `2;chunk-signature=${signature.slice(1)}\r\nab\r\n`, { signing: randomSigning, trailer: false }],
    ['size too large', `${(chunkDataBytesMax + 1).toString(16)}\r\n`, unsigned],
    ['9 hex digits', '000000002\r\nab\r\n0\r\n\r\n', unsigned],
    ['line too long', `2;${'x'.repeat(chunkLineBytesMax)}\r\nab\r\n0\r\n\r\n`, unsigned],
    ['line too long without LF', `2;${'x'.repeat(chunkLineBytesMax * 2)}`, unsigned],
    ['trailer without colon', '2\r\nab\r\n0\r\nx-amz-checksum-crc32\r\n\r\n', unsigned],
    ['trailer with bad name', '2\r\nab\r\n0\r\nx amz:1\r\n\r\n', unsigned],
    ['repeated trailer', '2\r\nab\r\n0\r\na:1\r\na:2\r\n\r\n', unsigned],
    ['too many trailers', `2\r\nab\r\n0\r\n${Array.from({ length: trailerLinesMax + 1 }, (_, i) => `t${i}:v\r\n`).join('')}\r\n`, unsigned],
    ['data after the end', '2\r\nab\r\n0\r\n\r\nextra', { trailer: false }],
    ['data after the trailers', '2\r\nab\r\n0\r\nx:1\r\n\r\nextra', unsigned],
    ['trailers when none expected', `0;chunk-signature=${signature}\r\nx:1\r\n\r\n`, { trailer: false }],
  ];
  for (const [name, body, opts] of cases) {
    await assertRejects(decode([Buffer.from(body)], opts), 'InvalidArgument', name);
    await assertRejects(decode(split(Buffer.from(body), prng(5), 2), opts), 'InvalidArgument', `${name} (split)`);
  }
  // within the limits: exactly trailerLinesMax trailers, a line of exactly chunkLineBytesMax bytes, extensions ignored
  const okTrailers = `2\r\nab\r\n0\r\n${Array.from({ length: trailerLinesMax }, (_, i) => `t${i}:v\r\n`).join('')}\r\n`;
  assert.equal((await decode([Buffer.from(okTrailers)], unsigned)).trailers.size, trailerLinesMax);
  const longLine = `2;${'x'.repeat(chunkLineBytesMax - 4)}\r\nab\r\n0\r\n\r\n`;
  assert.equal((await decode([Buffer.from(longLine)], unsigned)).data.toString(), 'ab');
});

test('a consumer that stops early closes the source', async () => {
  let closed = false;
  async function* body(): AsyncGenerator<Uint8Array> {
    try {
      yield Buffer.from('3\r\nabc\r\n');
      yield Buffer.from('3\r\ndef\r\n');
      yield Buffer.from('0\r\n\r\n');
    } finally {
      closed = true;
    }
  }
  for await (const piece of decodeAwsChunked(body(), { trailer: true }, { headers: new Map() })) {
    assert.equal(piece.toString(), 'abc');
    break;
  }
  assert.equal(closed, true);
});

test('throughput: 64 MiB signed body in 64 KiB chunks, fed in 16 KiB pieces', async () => {
  const chunkBytes = 64 * 1024;
  const chunk = Buffer.alloc(chunkBytes, 'q');
  const chunkCount = 1024;
  // build the wire form chunk by chunk (the same data each time; signatures chain)
  const parts: Buffer[] = [];
  let previous = randomSigning.seedSignature;
  for (let i = 0; i < chunkCount; i++) {
    previous = chunkSignature(randomSigning, previous, chunk);
    parts.push(Buffer.from(`10000;chunk-signature=${previous}\r\n`), chunk, Buffer.from('\r\n'));
  }
  previous = chunkSignature(randomSigning, previous, Buffer.alloc(0));
  parts.push(Buffer.from(`0;chunk-signature=${previous}\r\n\r\n`));
  const body = Buffer.concat(parts);
  const pieces: Buffer[] = [];
  for (let offset = 0; offset < body.length; offset += 16 * 1024) pieces.push(body.subarray(offset, offset + 16 * 1024));
  const startedMs = performance.now();
  let decodedBytes = 0;
  for await (const piece of decodeAwsChunked(source(pieces), { signing: randomSigning, trailer: false, decodedLengthBytes: chunkBytes * chunkCount }, { headers: new Map() })) {
    decodedBytes += piece.length;
  }
  const elapsedMs = performance.now() - startedMs;
  assert.equal(decodedBytes, chunkBytes * chunkCount);
  const mibPerSecond = (decodedBytes / 1024 / 1024) / (elapsedMs / 1000);
  console.log(`# aws-chunked signed decode: ${mibPerSecond.toFixed(0)} MiB/s`);
  assert.ok(elapsedMs < 10_000, `too slow: ${elapsedMs} ms`);
});
