// S3 "additional checksums" (AWS S3 User Guide, "Checking object integrity"): CRC32, CRC32C, CRC64NVME,
// SHA1, SHA256. On the wire a value is base64 of the big-endian digest. Multipart objects carry either a
// COMPOSITE checksum (hash of the concatenated part digests, suffixed "-<partCount>") or, for the CRCs, a
// FULL_OBJECT checksum (the CRC of the whole object), which we compute from the part CRCs without re-reading
// data (see combineCrc).

import { createHash, type Hash } from 'node:crypto';
import { crc32, crc32c } from '@node-rs/crc32';
import { createCRC64, type IHasher } from 'hash-wasm';
import { S3Error } from './errors.ts';
import { checksumAlgorithms, type ChecksumAlgorithm } from '../engine/types.ts';

/** Digest size per algorithm, in bytes. */
export const checksumDigestSizeBytes: Readonly<Record<ChecksumAlgorithm, number>> = {
  CRC32: 4,
  CRC32C: 4,
  CRC64NVME: 8,
  SHA1: 20,
  SHA256: 32,
};

export interface ChecksumHasher {
  update(data: Uint8Array): void;
  /** base64 of the big-endian digest; the hasher is finished afterwards (further calls throw) */
  digestBase64(): string;
}

// --- CRC64/NVME -----------------------------------------------------------------------------------------
//
// hash-wasm is the fastest CRC-64/NVME we have (~1.5 GB/s), but an instance is created asynchronously and
// owns one WASM state. We want createChecksumHasher to stay synchronous (it's called on the request path
// next to MD5) and concurrent uploads must not share state. So: one shared WASM instance, created at module
// load, and each hasher owns its own *saved* state. The instance remembers which hasher's state it holds;
// a hasher that finds another one in the instance saves that one's state (save(): 12 bytes, ~1 µs) and loads
// its own. A single stream never pays for swapping; interleaved streams pay ~2 µs per switch (< 3% at 64 KiB
// chunks, measured), which beats a pool (a pool can run dry synchronously, and leaks slots when a request is
// abandoned without digest). JS is single-threaded, so nothing can interleave inside one update().

// CRC-64/NVME: reflected polynomial 0x9A6C9329AC4BC9B5, init and xorout all ones (check "123456789" →
// ae8b14860a799888, verified in test/checksum.test.ts).
const crc64NvmeWasm: IHasher = await createCRC64('9a6c9329ac4bc9b5');
let crc64NvmeOwner: Crc64NvmeHasher | undefined;

class Crc64NvmeHasher implements ChecksumHasher {
  /** saved hash-wasm state while another hasher owns the instance; undefined = fresh (init) */
  private saved: Uint8Array | undefined;
  private finished = false;

  private acquire(): void {
    if (this.finished) throw new Error('checksum hasher used after digest');
    if (crc64NvmeOwner === this) return;
    if (crc64NvmeOwner !== undefined) crc64NvmeOwner.saved = crc64NvmeWasm.save();
    if (this.saved === undefined) crc64NvmeWasm.init();
    else crc64NvmeWasm.load(this.saved);
    this.saved = undefined;
    crc64NvmeOwner = this;
  }

  update(data: Uint8Array): void {
    this.acquire();
    crc64NvmeWasm.update(data);
  }

  digestBase64(): string {
    this.acquire();
    this.finished = true;
    crc64NvmeOwner = undefined; // after digest() the instance holds no live state
    return Buffer.from(crc64NvmeWasm.digest('binary')).toString('base64');
  }
}

// --- CRC32 / CRC32C (@node-rs/crc32: SIMD, resumable from the previous CRC value) ----------------------

class Crc32Hasher implements ChecksumHasher {
  private crc = 0;
  private finished = false;
  constructor(private readonly fn: typeof crc32) {}

  update(data: Uint8Array): void {
    if (this.finished) throw new Error('checksum hasher used after digest');
    this.crc = this.fn(data, this.crc);
  }

  digestBase64(): string {
    if (this.finished) throw new Error('checksum hasher used after digest');
    this.finished = true;
    return crc32ToBase64(this.crc);
  }
}

function crc32ToBase64(crc: number): string {
  const out = Buffer.allocUnsafe(4);
  out.writeUInt32BE(crc >>> 0);
  return out.toString('base64');
}

// --- SHA1 / SHA256 (node:crypto, OpenSSL) ----------------------------------------------------------------

class NodeHashHasher implements ChecksumHasher {
  constructor(private readonly hash: Hash) {}
  update(data: Uint8Array): void {
    this.hash.update(data);
  }
  digestBase64(): string {
    return this.hash.digest('base64');
  }
}

/** A streaming hasher for one checksum; independent of every other hasher. */
export function createChecksumHasher(algorithm: ChecksumAlgorithm): ChecksumHasher {
  switch (algorithm) {
    case 'CRC32': return new Crc32Hasher(crc32);
    case 'CRC32C': return new Crc32Hasher(crc32c);
    case 'CRC64NVME': return new Crc64NvmeHasher();
    case 'SHA1': return new NodeHashHasher(createHash('sha1'));
    case 'SHA256': return new NodeHashHasher(createHash('sha256'));
  }
}

/** One-shot checksum of `data`, base64. */
export function checksumBase64(algorithm: ChecksumAlgorithm, data: Uint8Array): string {
  const hasher = createChecksumHasher(algorithm);
  hasher.update(data);
  return hasher.digestBase64();
}

// --- Headers ---------------------------------------------------------------------------------------------

/** `x-amz-checksum-crc32`, … (lower-case, as Node presents header names). */
export function checksumHeaderName(algorithm: ChecksumAlgorithm): string {
  return `x-amz-checksum-${algorithm.toLowerCase()}`;
}

/** Parse `x-amz-sdk-checksum-algorithm` / `x-amz-checksum-algorithm` (case-insensitive); undefined if unknown. */
export function parseChecksumAlgorithm(value: string): ChecksumAlgorithm | undefined {
  const upper = value.trim().toUpperCase();
  return checksumAlgorithms.find((a) => a === upper);
}

const base64Regex = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * Check a client-sent checksum value: canonical base64 of exactly the algorithm's digest size. Returns the
 * decoded digest. AWS answers a malformed value with 400 InvalidArgument ("Value for x-amz-checksum-… header
 * is invalid.").
 */
export function validateChecksumValue(algorithm: ChecksumAlgorithm, valueBase64: string): Buffer {
  const digest = base64Regex.test(valueBase64) ? Buffer.from(valueBase64, 'base64') : undefined;
  if (digest === undefined || digest.length !== checksumDigestSizeBytes[algorithm] || digest.toString('base64') !== valueBase64) {
    throw new S3Error('InvalidArgument', `Value for ${checksumHeaderName(algorithm)} header is invalid.`, {
      ArgumentName: checksumHeaderName(algorithm),
    });
  }
  return digest;
}

// --- Multipart ---------------------------------------------------------------------------------------------

/**
 * S3 COMPOSITE multipart checksum: base64(hash(digest₁ ‖ digest₂ ‖ … ‖ digestₙ)) + "-" + n, the digests
 * being the decoded per-part checksums in part order (AWS S3 User Guide, "Using part-level checksums for
 * multipart uploads"). AWS offers COMPOSITE for CRC32, CRC32C, SHA1 and SHA256 — CRC64NVME is FULL_OBJECT
 * only, which the caller enforces when the upload is created.
 */
export function compositeChecksum(algorithm: ChecksumAlgorithm, partChecksumsBase64: readonly string[]): string {
  const hasher = createChecksumHasher(algorithm);
  for (const part of partChecksumsBase64) hasher.update(validateChecksumValue(algorithm, part));
  return `${hasher.digestBase64()}-${partChecksumsBase64.length}`;
}

export type CrcAlgorithm = 'CRC32' | 'CRC32C' | 'CRC64NVME';

export function isCrcAlgorithm(algorithm: ChecksumAlgorithm): algorithm is CrcAlgorithm {
  return algorithm === 'CRC32' || algorithm === 'CRC32C' || algorithm === 'CRC64NVME';
}

/**
 * Arithmetic in GF(2)[x] modulo a reflected CRC polynomial, after zlib's crc32_combine (zlib 1.2.12+
 * crc32.c: multmodp / x2nmodp). In the reflected representation the bit for x^0 is the top bit of the
 * register. For a CRC with init = xorout = all ones (all three here):
 *   crc(A ‖ B) = crc(A) · x^(8·|B|)  ⊕  crc(B)    (mod P)
 * so combining costs one multiplication by x^(8·|B|), built from the table x^(2^k) mod P.
 * Registers up to 64 bits are held as two uint32 halves (hi, lo) — BigInt measured ~5x slower, which matters
 * because part sizes come from the client: 10,000 parts of distinct ~5 GiB sizes (~17 multiplications each)
 * take ~0.1 s (CRC32) / ~0.2 s (CRC64) here, the worst case a client can cause.
 * Powers are memoized per part size (parts are usually all the same size but the last).
 */
class CrcCombiner {
  private readonly polynomialHi: number;
  private readonly polynomialLo: number;
  /** x2n[k] = x^(2^k) mod P, as [hi, lo] */
  private readonly x2n: (readonly [number, number])[] = [];
  /** result of the last multiply (avoids allocating a pair per call) */
  private productHi = 0;
  private productLo = 0;

  constructor(
    readonly widthBits: 32 | 64,
    reflectedPolynomial: bigint,
  ) {
    this.polynomialHi = Number(reflectedPolynomial >> 32n);
    this.polynomialLo = Number(reflectedPolynomial & 0xffffffffn);
    let [hi, lo] = this.power(1);
    for (let k = 0; k < 64; k++) {
      this.x2n.push([hi, lo]);
      this.multiply(hi, lo, hi, lo);
      hi = this.productHi;
      lo = this.productLo;
    }
  }

  /** x^n for n < width, as [hi, lo] */
  private power(n: number): [number, number] {
    const bit = this.widthBits - 1 - n;
    return bit >= 32 ? [(1 << (bit - 32)) >>> 0, 0] : [0, (1 << bit) >>> 0];
  }

  /** a · b mod P into (productHi, productLo) */
  multiply(aHi: number, aLo: number, bHi: number, bLo: number): void {
    let pHi = 0;
    let pLo = 0;
    const polyHi = this.polynomialHi;
    const polyLo = this.polynomialLo;
    // walk a's bits from x^0 (the register's top bit) upwards; b tracks b·x^i
    for (let bit = this.widthBits - 1; bit >= 0 && (aHi | aLo) !== 0; bit--) {
      if (bit >= 32) {
        const m = (1 << (bit - 32)) >>> 0;
        if ((aHi & m) !== 0) { pHi ^= bHi; pLo ^= bLo; aHi = (aHi ^ m) >>> 0; }
      } else {
        const m = (1 << bit) >>> 0;
        if ((aLo & m) !== 0) { pHi ^= bHi; pLo ^= bLo; aLo = (aLo ^ m) >>> 0; }
      }
      const carry = bLo & 1;
      bLo = ((bLo >>> 1) | ((bHi & 1) << 31)) >>> 0;
      bHi = bHi >>> 1;
      if (carry !== 0) { bHi = (bHi ^ polyHi) >>> 0; bLo = (bLo ^ polyLo) >>> 0; }
    }
    this.productHi = pHi >>> 0;
    this.productLo = pLo >>> 0;
  }

  /** x^(8·lengthBytes) mod P, as [hi, lo] */
  shiftForBytes(lengthBytes: number): readonly [number, number] {
    if (!Number.isSafeInteger(lengthBytes) || lengthBytes < 0) throw new Error(`crc combine: bad length ${lengthBytes}`);
    let [hi, lo] = this.power(0);
    let n = lengthBytes;
    for (let k = 3; n > 0; k++, n = Math.floor(n / 2)) {
      if (n % 2 === 1) {
        const [xHi, xLo] = this.x2n[k]!;
        this.multiply(xHi, xLo, hi, lo);
        hi = this.productHi;
        lo = this.productLo;
      }
    }
    return [hi, lo];
  }

  /** crc(A ‖ B) from crc(A), crc(B) and x^(8·|B|) */
  combine(crcA: readonly [number, number], crcB: readonly [number, number], shift: readonly [number, number]): [number, number] {
    this.multiply(shift[0], shift[1], crcA[0], crcA[1]);
    return [(this.productHi ^ crcB[0]) >>> 0, (this.productLo ^ crcB[1]) >>> 0];
  }
}

const crcCombiners: Readonly<Record<CrcAlgorithm, CrcCombiner>> = {
  CRC32: new CrcCombiner(32, 0xedb88320n),
  CRC32C: new CrcCombiner(32, 0x82f63b78n),
  CRC64NVME: new CrcCombiner(64, 0x9a6c9329ac4bc9b5n),
};

/**
 * S3 FULL_OBJECT multipart checksum for a CRC: the CRC of the concatenated parts, from each part's CRC and
 * size. Returned as plain base64 (FULL_OBJECT values carry no "-n" suffix). An empty list gives the CRC of
 * no data (zero).
 */
export function combineCrc(
  algorithm: CrcAlgorithm,
  parts: readonly { readonly checksumBase64: string; readonly sizeBytes: number }[],
): string {
  const combiner = crcCombiners[algorithm];
  const shiftBySize = new Map<number, readonly [number, number]>();
  let crc: [number, number] = [0, 0];
  for (const part of parts) {
    let shift = shiftBySize.get(part.sizeBytes);
    if (shift === undefined) {
      shift = combiner.shiftForBytes(part.sizeBytes);
      shiftBySize.set(part.sizeBytes, shift);
    }
    const digest = validateChecksumValue(algorithm, part.checksumBase64);
    const partCrc: [number, number] = combiner.widthBits === 64 ? [digest.readUInt32BE(0), digest.readUInt32BE(4)] : [0, digest.readUInt32BE(0)];
    crc = combiner.combine(crc, partCrc, shift);
  }
  const out = Buffer.alloc(combiner.widthBits / 8);
  if (combiner.widthBits === 64) {
    out.writeUInt32BE(crc[0], 0);
    out.writeUInt32BE(crc[1], 4);
  } else {
    out.writeUInt32BE(crc[1], 0);
  }
  return out.toString('base64');
}
