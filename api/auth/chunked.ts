// Decoder for S3's aws-chunked request bodies (Content-Encoding: aws-chunked).
//
// Spec: S3 API reference, "Transferring payload in multiple chunks" (sigv4-streaming.html) and "Signature
// calculations for trailing headers" (sigv4-streaming-trailers.html). Wire format, per chunk:
//
//   signed:    <hex size>;chunk-signature=<64 hex>\r\n<size bytes>\r\n
//   unsigned:  <hex size>\r\n<size bytes>\r\n                       (STREAMING-UNSIGNED-PAYLOAD-TRAILER)
//
// ending with a 0-size chunk. Without trailers, a final "\r\n" follows. With trailers, header lines follow
// ("x-amz-checksum-crc32:AAAAAA==\r\n"), in the signed variant closed by "x-amz-trailer-signature:<64 hex>\r\n",
// then a final "\r\n".
//
// Chunk signature = HMAC(signingKey, "AWS4-HMAC-SHA256-PAYLOAD\n<amzDate>\n<scope>\n<previous signature>\n
//   <sha256('')>\n<sha256(chunk data)>"), chained from the request's seed signature.
// Trailer signature = HMAC(signingKey, "AWS4-HMAC-SHA256-TRAILER\n<amzDate>\n<scope>\n<previous signature>\n
//   <sha256(trailer lines, each 'name:value\n')>") where previous is the final (0-size) chunk's signature.
//
// Tolerated variations seen from real clients (none weakens what is verified):
//   - EOF right after the final 0-size chunk line (the JS SDK's unsigned-trailer encoder without a checksum),
//   - a blank line between the final chunk and the trailer lines (the layout in AWS's trailer example),
//   - EOF right after the x-amz-trailer-signature line (no closing blank line).
//
// Back of the envelope: the bulk path is SHA-256 (~1.5-2 GB/s per core with SHA-NI) plus one HMAC per chunk.
// We never copy chunk data: yielded buffers are views into the source's buffers; only chunk header lines
// that straddle two source buffers are copied (<= chunkLineBytesMax).

import { createHash, timingSafeEqual } from 'node:crypto';
import { S3Error } from '../errors.ts';
import { emptySha256Hex, hmacSha256, sha256Hex, type SigningContext } from './sigv4.ts';

export interface ChunkedOptions {
  /** present for STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]: every chunk signature is verified */
  signing?: SigningContext;
  /** trailer variants: parse trailing headers after the 0-size chunk */
  trailer: boolean;
  /** x-amz-decoded-content-length: the decoded total must match, else IncompleteBody */
  decodedLengthBytes?: number;
}

export interface ChunkedTrailers {
  /** filled (lower-case names) when the body ends, after the trailer signature (if any) has been verified */
  readonly headers: Map<string, string>;
}

/** Largest chunk we accept. Signed chunks are held in memory until their signature checks; SDKs send 64-128 KiB. */
export const chunkDataBytesMax = 16 * 1024 * 1024;
/** Longest chunk-header or trailer line, CRLF included. A signed chunk header is ~90 bytes. */
export const chunkLineBytesMax = 4 * 1024;
/** Most trailer header lines (the signature line not counted); clients send one checksum. */
export const trailerLinesMax = 16;

const lineFeed = 0x0a;
const carriageReturn = 0x0d;
const trailerSignatureName = 'x-amz-trailer-signature';
const signedChunkHeaderPattern = /^([0-9a-fA-F]{1,8});chunk-signature=([0-9a-fA-F]{64})$/;
const unsignedChunkHeaderPattern = /^([0-9a-fA-F]{1,8})(?:;[\x20-\x7e]*)?$/; // chunk extensions are ignored
const trailerNamePattern = /^[a-z0-9!#$%&'*+.^_`|~-]+$/;
const hex64Pattern = /^[0-9a-fA-F]{64}$/;

function malformed(message: string): S3Error {
  return new S3Error('InvalidArgument', `Malformed aws-chunked body: ${message}`);
}

function truncatedBody(): S3Error {
  return new S3Error('IncompleteBody', 'The aws-chunked body ended before its final chunk.');
}

/**
 * Bytes received but not yet parsed: a list of views into source buffers plus an offset into the first, so
 * that parsing never concatenates (no quadratic Buffer.concat) and data can be handed on without copying.
 */
class PendingBytes {
  readonly #iterator: AsyncIterator<Uint8Array>;
  #pieces: Buffer[] = [];
  #head = 0; // index of the first live piece
  #headOffsetBytes = 0; // bytes already consumed from pieces[#head]
  #sourceDone = false;
  lengthBytes = 0;

  constructor(source: AsyncIterable<Uint8Array>) {
    this.#iterator = source[Symbol.asyncIterator]();
  }

  get sourceDone(): boolean {
    return this.#sourceDone;
  }

  /** Appends the next non-empty source buffer. False at end of source. */
  async pull(): Promise<boolean> {
    while (!this.#sourceDone) {
      const next = await this.#iterator.next();
      if (next.done === true) {
        this.#sourceDone = true;
        return false;
      }
      const bytes = next.value;
      if (bytes.byteLength === 0) continue;
      const piece = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      this.#pieces.push(piece);
      this.lengthBytes += piece.length;
      return true;
    }
    return false;
  }

  /** True when nothing is pending and the source has ended (pulls at most one buffer to find out). */
  async atEnd(): Promise<boolean> {
    return this.lengthBytes === 0 && !(await this.pull());
  }

  async close(): Promise<void> {
    if (!this.#sourceDone) {
      this.#sourceDone = true;
      await this.#iterator.return?.();
    }
  }

  /**
   * Consumes one line, CRLF included, and returns it without the CRLF. Undefined at a clean end of source
   * (nothing pending). Each source buffer is searched once, so a line is found in linear time however finely
   * the source is split.
   */
  async readLine(lineBytesMax: number): Promise<Buffer | undefined> {
    let index = this.#head;
    let searchedBytes = 0;
    for (;;) {
      while (index < this.#pieces.length) {
        const piece = this.#pieces[index]!;
        const start = index === this.#head ? this.#headOffsetBytes : 0;
        const at = piece.indexOf(lineFeed, start);
        if (at >= 0) {
          const lineBytes = searchedBytes + (at - start) + 1;
          if (lineBytes > lineBytesMax) throw malformed(`line longer than ${lineBytesMax} bytes`);
          const line = this.#take(lineBytes);
          if (lineBytes < 2 || line[lineBytes - 2] !== carriageReturn) throw malformed('line not terminated by CRLF');
          return line.subarray(0, lineBytes - 2);
        }
        searchedBytes += piece.length - start;
        index++;
        if (searchedBytes >= lineBytesMax) throw malformed(`line longer than ${lineBytesMax} bytes`);
      }
      if (!(await this.pull())) {
        if (this.lengthBytes === 0) return undefined;
        throw truncatedBody();
      }
    }
  }

  /** Consumes and returns up to `maxBytes` from the first pending piece, as a view (no copy). */
  takeUpTo(maxBytes: number): Buffer {
    const piece = this.#pieces[this.#head]!;
    const available = piece.length - this.#headOffsetBytes;
    const n = Math.min(available, maxBytes);
    const view = piece.subarray(this.#headOffsetBytes, this.#headOffsetBytes + n);
    this.#consume(n);
    return view;
  }

  /** Consumes exactly `n` pending bytes (caller ensures lengthBytes >= n); copies only if they straddle pieces. */
  #take(n: number): Buffer {
    const first = this.#pieces[this.#head]!;
    if (first.length - this.#headOffsetBytes >= n) return this.takeUpTo(n);
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const view = this.takeUpTo(n - filled);
      view.copy(out, filled);
      filled += view.length;
    }
    return out;
  }

  async takeExact(n: number): Promise<Buffer> {
    while (this.lengthBytes < n) {
      if (!(await this.pull())) throw truncatedBody();
    }
    return this.#take(n);
  }

  #consume(n: number): void {
    this.lengthBytes -= n;
    this.#headOffsetBytes += n;
    if (this.#headOffsetBytes === this.#pieces[this.#head]!.length) {
      this.#head++;
      this.#headOffsetBytes = 0;
      if (this.#head === this.#pieces.length) {
        this.#pieces = [];
        this.#head = 0;
      } else if (this.#head >= 64 && this.#head * 2 >= this.#pieces.length) {
        this.#pieces = this.#pieces.slice(this.#head);
        this.#head = 0;
      }
    }
  }
}

function chunkSignatureOf(signing: SigningContext, previousSignature: string, dataSha256Hex: string): Buffer {
  const stringToSign = `AWS4-HMAC-SHA256-PAYLOAD\n${signing.amzDate}\n${signing.scope}\n${previousSignature}\n` +
    `${emptySha256Hex}\n${dataSha256Hex}`;
  return hmacSha256(signing.signingKey, stringToSign);
}

function trailerSignatureOf(signing: SigningContext, previousSignature: string, canonicalTrailers: string): Buffer {
  const stringToSign = `AWS4-HMAC-SHA256-TRAILER\n${signing.amzDate}\n${signing.scope}\n${previousSignature}\n` +
    `${sha256Hex(canonicalTrailers)}`;
  return hmacSha256(signing.signingKey, stringToSign);
}

function signatureEquals(expected: Buffer, providedHex: string): boolean {
  const provided = Buffer.from(providedHex, 'hex');
  return provided.length === expected.length && timingSafeEqual(expected, provided);
}

/**
 * Decodes an aws-chunked body, yielding the object data. Signed chunks are verified before any of their data
 * is yielded; unsigned chunks are yielded as they arrive. Throws S3Error: SignatureDoesNotMatch for a bad
 * chunk or trailer signature, IncompleteBody for a truncated body or a decoded length other than
 * decodedLengthBytes, InvalidArgument for malformed framing. `trailers.headers` is filled only on success.
 */
export async function* decodeAwsChunked(
  source: AsyncIterable<Uint8Array>,
  opts: ChunkedOptions,
  trailers: ChunkedTrailers,
): AsyncGenerator<Buffer> {
  const { signing, trailer, decodedLengthBytes } = opts;
  if (decodedLengthBytes !== undefined && !(Number.isSafeInteger(decodedLengthBytes) && decodedLengthBytes >= 0)) {
    throw new S3Error('InvalidArgument', 'Invalid x-amz-decoded-content-length.');
  }
  const pending = new PendingBytes(source);
  let previousSignature = signing?.seedSignature ?? '';
  let decodedBytes = 0;
  try {
    // Data chunks, up to and including the 0-size final chunk.
    for (;;) {
      const line = await pending.readLine(chunkLineBytesMax);
      if (line === undefined) throw truncatedBody();
      const header = line.toString('latin1');
      const match = (signing !== undefined ? signedChunkHeaderPattern : unsignedChunkHeaderPattern).exec(header);
      if (match === null) {
        throw malformed(signing !== undefined ? 'expected "<hex size>;chunk-signature=<signature>"' : 'expected "<hex size>"');
      }
      const sizeBytes = parseInt(match[1]!, 16);
      if (sizeBytes > chunkDataBytesMax) throw malformed(`chunk of ${sizeBytes} bytes exceeds ${chunkDataBytesMax}`);
      if (decodedLengthBytes !== undefined && decodedBytes + sizeBytes > decodedLengthBytes) {
        throw new S3Error('IncompleteBody', 'The aws-chunked body is longer than x-amz-decoded-content-length.');
      }

      if (signing === undefined) {
        let remainingBytes = sizeBytes;
        while (remainingBytes > 0) {
          if (pending.lengthBytes === 0 && !(await pending.pull())) throw truncatedBody();
          const view = pending.takeUpTo(remainingBytes);
          remainingBytes -= view.length;
          decodedBytes += view.length;
          yield view;
        }
      } else {
        // Hold the chunk's data (views, no copy) until its signature is verified; hash as it arrives.
        const hash = createHash('sha256');
        const held: Buffer[] = [];
        let remainingBytes = sizeBytes;
        while (remainingBytes > 0) {
          if (pending.lengthBytes === 0 && !(await pending.pull())) throw truncatedBody();
          const view = pending.takeUpTo(remainingBytes);
          remainingBytes -= view.length;
          hash.update(view);
          held.push(view);
        }
        const expected = chunkSignatureOf(signing, previousSignature, hash.digest('hex'));
        if (!signatureEquals(expected, match[2]!)) {
          throw new S3Error('SignatureDoesNotMatch', 'The chunk signature we calculated does not match the signature you provided.');
        }
        previousSignature = expected.toString('hex');
        for (const view of held) {
          decodedBytes += view.length;
          yield view;
        }
      }
      if (sizeBytes === 0) break;
      const end = await pending.takeExact(2);
      if (end[0] !== carriageReturn || end[1] !== lineFeed) throw malformed('chunk data not followed by CRLF');
    }

    // After the final chunk: "\r\n", or trailer lines then "\r\n", or (tolerated) end of body.
    const received = new Map<string, string>();
    let canonicalTrailers = '';
    let trailerSignature: string | undefined;
    let skippedLeadingBlank = false;
    for (;;) {
      const line = await pending.readLine(chunkLineBytesMax);
      if (line === undefined) {
        if (received.size === 0 && trailerSignature === undefined) break; // EOF right after the final chunk
        if (trailerSignature !== undefined) break; // EOF right after the signature line
        throw truncatedBody();
      }
      if (line.length === 0) {
        if (trailer && !skippedLeadingBlank && received.size === 0 && trailerSignature === undefined) {
          // "0;chunk-signature=...\r\n\r\n" followed by trailer lines, as in AWS's example; or the end.
          skippedLeadingBlank = true;
          if (await pending.atEnd()) break;
          continue;
        }
        break;
      }
      if (!trailer) throw malformed('unexpected data after the final chunk');
      if (trailerSignature !== undefined) throw malformed('trailer lines after x-amz-trailer-signature');
      const text = line.toString('latin1');
      const colon = text.indexOf(':');
      const name = (colon < 0 ? text : text.slice(0, colon)).replace(/^[ \t]+|[ \t]+$/g, '').toLowerCase();
      if (colon < 0 || !trailerNamePattern.test(name)) throw malformed('trailer line must be "name:value"');
      const value = text.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, '');
      if (name === trailerSignatureName) {
        if (!hex64Pattern.test(value)) throw malformed('x-amz-trailer-signature must be 64 hexadecimal characters');
        trailerSignature = value;
        continue;
      }
      if (received.has(name)) throw malformed(`trailer ${name} repeated`);
      if (received.size >= trailerLinesMax) throw malformed(`more than ${trailerLinesMax} trailer lines`);
      received.set(name, value);
      canonicalTrailers += `${name}:${value}\n`;
    }
    if (!(await pending.atEnd())) throw malformed('unexpected data after the end of the body');

    if (signing !== undefined && trailer && (received.size > 0 || trailerSignature !== undefined)) {
      if (trailerSignature === undefined) {
        throw new S3Error('SignatureDoesNotMatch', 'The trailing headers are not signed (missing x-amz-trailer-signature).');
      }
      const expected = trailerSignatureOf(signing, previousSignature, canonicalTrailers);
      if (!signatureEquals(expected, trailerSignature)) {
        throw new S3Error('SignatureDoesNotMatch', 'The trailer signature we calculated does not match the signature you provided.');
      }
    }
    // Unsigned variant: an x-amz-trailer-signature line cannot be checked and is dropped.

    if (decodedLengthBytes !== undefined && decodedBytes !== decodedLengthBytes) {
      throw new S3Error('IncompleteBody', 'The aws-chunked body is shorter than x-amz-decoded-content-length.');
    }
    for (const [name, value] of received) trailers.headers.set(name, value);
  } finally {
    await pending.close();
  }
}
