// DARE 2.0 packages (minio/sio), byte-compatible with MinIO. Format: docs/encryption.md §1;
// reference: /work/shared/reference/sse-kms-kes.md §8.
//
// A stream is a sequence of packages: header(16) ‖ AEAD ciphertext(1..64 KiB) ‖ tag(16). The header holds
// version 0x20, cipher id, payload length − 1 (uint16 LE) and the stream's 12-byte nonce whose top bit
// (byte 4, bit 7) flags the final package. The AEAD nonce is the header nonce (flag included) with its last
// 4 bytes (uint32 LE) XORed with the package's sequence number; the AAD is header bytes 0..3. The sequence
// number is not stored, which is what makes random access (range reads) possible and reordering detectable.
//
// Encryption always uses AES-256-GCM. Decryption accepts both ciphers, as MinIO on arm64 writes
// ChaCha20-Poly1305. AES-256-GCM runs on the native addon (workers/native-gcm.ts, Node's own OpenSSL) when it
// was built: ciphertext and plaintext go straight into the output buffer. Otherwise, and for ChaCha20-Poly1305
// always, node:crypto: one createCipheriv per 64 KiB package (about 3 GB/s per core; perf-primitives.md §1),
// whose update() output is then copied into place. Both produce the same bytes.

import { createCipheriv, createDecipheriv, timingSafeEqual } from 'node:crypto';
import { nativeGcm, type NativeGcm } from './native-gcm.ts';
import { secureRandomBytes, secureRandomFill } from './random-pool.ts';

export const darePayloadBytesMax = 65536;
export const dareHeaderBytes = 16;
export const dareTagBytes = 16;
export const darePackageBytesMax = dareHeaderBytes + darePayloadBytesMax + dareTagBytes; // 65568
export const dareNonceBytes = 12;
export const dareKeyBytes = 32;
/** sio limits a stream to 2^32 packages: the sequence number is a uint32. */
export const dareSequenceMax = 0xffffffff;

const dareVersion20 = 0x20;
const cipherIdAesGcm = 0x00;
const cipherIdChaCha = 0x01;
const finalFlag = 0x80;
const packageOverheadBytes = dareHeaderBytes + dareTagBytes;

/** AES-256-GCM in place (the addon), or undefined for node:crypto. Per thread; see setDareNativeGcm. */
let gcm: NativeGcm | undefined = nativeGcm;

/** Which AES-256-GCM seals and opens packages on this thread. */
export function dareAesGcmImplementation(): 'native' | 'node:crypto' {
  return gcm === undefined ? 'node:crypto' : 'native';
}

/**
 * Tests and benchmarks: switch this thread between the native addon and node:crypto (COFFER_NATIVE_GCM=off
 * is the way to turn it off for a server). Returns whether the addon is now in use: asking for it when it
 * is not available leaves node:crypto on.
 */
export function setDareNativeGcm(enabled: boolean): boolean {
  gcm = enabled ? nativeGcm : undefined;
  return gcm !== undefined;
}

export type DareCipher = 'AES-256-GCM' | 'ChaCha20-Poly1305';

export type DareErrorReason =
  | 'authentication failed'
  | 'header nonce mismatch'
  | 'unexpected EOF'
  | 'unexpected data after final package'
  | 'invalid payload size'
  | 'unsupported version'
  | 'unsupported cipher';

/** Any malformed, tampered or truncated DARE input. The API maps it to "object tampered" / InternalError. */
export class DareError extends Error {
  constructor(
    readonly reason: DareErrorReason,
    options?: { cause?: unknown },
  ) {
    super(`dare: ${reason}`, options);
    this.name = 'DareError';
  }
}

function assertInvariant(condition: boolean, message: string): asserts condition {
  if (!condition) throw new Error(`dare: invariant violated: ${message}`);
}

function assertKey(key: Uint8Array): void {
  assertInvariant(key.length === dareKeyBytes, `key must be ${dareKeyBytes} bytes, got ${key.length}`);
}

function assertSequence(sequence: number): void {
  assertInvariant(Number.isSafeInteger(sequence) && sequence >= 0 && sequence <= dareSequenceMax, `bad sequence ${sequence}`);
}

/** Ciphertext size of `plainBytes` of plaintext (sio `EncryptedSize`). */
export function encryptedSizeBytes(plainBytes: number): number {
  assertInvariant(Number.isSafeInteger(plainBytes) && plainBytes >= 0, `bad plaintext size ${plainBytes}`);
  const fullPackages = Math.floor(plainBytes / darePayloadBytesMax);
  const tailBytes = plainBytes % darePayloadBytesMax;
  return fullPackages * darePackageBytesMax + (tailBytes > 0 ? tailBytes + packageOverheadBytes : 0);
}

/** Plaintext size of a `encryptedBytes`-long DARE stream; a tail of 1..32 bytes cannot exist. */
export function decryptedSizeBytes(encryptedBytes: number): number {
  assertInvariant(Number.isSafeInteger(encryptedBytes) && encryptedBytes >= 0, `bad encrypted size ${encryptedBytes}`);
  const fullPackages = Math.floor(encryptedBytes / darePackageBytesMax);
  const tailBytes = encryptedBytes % darePackageBytesMax;
  if (tailBytes > 0 && tailBytes <= packageOverheadBytes) throw new DareError('invalid payload size');
  return fullPackages * darePayloadBytesMax + (tailBytes > 0 ? tailBytes - packageOverheadBytes : 0);
}

/** The AEAD nonce of one package: header nonce with the sequence XORed into its last 4 bytes (LE). */
function packageNonce(headerNonce: Uint8Array, sequence: number, into: Buffer): Buffer {
  into.set(headerNonce.subarray(0, dareNonceBytes));
  into.writeUInt32LE((into.readUInt32LE(8) ^ sequence) >>> 0, 8);
  return into;
}

/**
 * Seal `plaintext` into `out` at `outOffset`; returns bytes written. Every package but a final one carries
 * exactly 64 KiB (sio rejects short non-final packages).
 */
function sealInto(
  key: Buffer,
  nonce: Uint8Array,
  firstSequence: number,
  plaintext: Uint8Array,
  final: boolean,
  out: Buffer,
  outOffset: number,
): number {
  const aeadNonce = Buffer.allocUnsafe(dareNonceBytes);
  let sequence = firstSequence;
  let readOffset = 0;
  let writeOffset = outOffset;
  while (readOffset < plaintext.length) {
    const payloadBytes = Math.min(darePayloadBytesMax, plaintext.length - readOffset);
    const isFinal = final && readOffset + payloadBytes === plaintext.length;
    assertInvariant(isFinal || payloadBytes === darePayloadBytesMax, 'short non-final package');
    assertInvariant(sequence <= dareSequenceMax, 'more than 2^32 packages');
    out[writeOffset] = dareVersion20;
    out[writeOffset + 1] = cipherIdAesGcm;
    out.writeUInt16LE(payloadBytes - 1, writeOffset + 2);
    out.set(nonce, writeOffset + 4);
    // sio's SetRand: the flag bit is forced, whatever the caller's nonce had there.
    out[writeOffset + 4] = isFinal ? out[writeOffset + 4]! | finalFlag : out[writeOffset + 4]! & ~finalFlag;
    packageNonce(out.subarray(writeOffset + 4, writeOffset + dareHeaderBytes), sequence, aeadNonce);
    const aad = out.subarray(writeOffset, writeOffset + 4);
    const payload = plaintext.subarray(readOffset, readOffset + payloadBytes);
    const tagOffset = writeOffset + dareHeaderBytes + payloadBytes;
    if (gcm !== undefined) {
      gcm.seal(key, aeadNonce, aad, payload, out.subarray(writeOffset + dareHeaderBytes, tagOffset), out.subarray(tagOffset, tagOffset + dareTagBytes));
    } else {
      const cipher = createCipheriv('aes-256-gcm', key, aeadNonce);
      cipher.setAAD(aad);
      const ciphertext = cipher.update(payload);
      const rest = cipher.final();
      assertInvariant(ciphertext.length === payloadBytes && rest.length === 0, 'GCM output size');
      ciphertext.copy(out, writeOffset + dareHeaderBytes);
      cipher.getAuthTag().copy(out, tagOffset);
    }
    writeOffset += payloadBytes + packageOverheadBytes;
    readOffset += payloadBytes;
    sequence += 1;
  }
  return writeOffset - outOffset;
}

/**
 * sealPackages into a caller's buffer (reused across blocks to spare the garbage collector): `out` must
 * hold at least the sealed size; returns the bytes written at its start.
 */
export function sealPackagesInto(key: Buffer, nonce: Buffer, firstSequence: number, plaintext: Uint8Array, final: boolean, out: Buffer): number {
  assertKey(key);
  assertInvariant(nonce.length === dareNonceBytes, `nonce must be ${dareNonceBytes} bytes`);
  assertSequence(firstSequence);
  assertInvariant(final || plaintext.length % darePayloadBytesMax === 0, 'non-final plaintext must be whole packages');
  const packageCount = Math.ceil(plaintext.length / darePayloadBytesMax);
  assertInvariant(firstSequence + packageCount - 1 <= dareSequenceMax || packageCount === 0, 'more than 2^32 packages');
  const sealedBytes = final ? encryptedSizeBytes(plaintext.length) : packageCount * darePackageBytesMax;
  assertInvariant(out.length >= sealedBytes, `output of ${out.length} bytes is too small for ${sealedBytes}`);
  const written = sealInto(key, nonce, firstSequence, plaintext, final, out, 0);
  assertInvariant(written === sealedBytes, 'sealed size');
  return written;
}

/**
 * Seal `plaintext` as consecutive packages starting at sequence `firstSequence`. `plaintext.length` must
 * be a multiple of 64 KiB unless `final` (then the last package gets the final flag; empty plaintext with
 * `final` gives 0 bytes, as sio does). The nonce's flag bit is ignored (forced per package, like sio),
 * so a raw `multipartPartNonce` can be passed. AES-256-GCM (native addon or node:crypto, same bytes).
 */
export function sealPackages(key: Buffer, nonce: Buffer, firstSequence: number, plaintext: Uint8Array, final: boolean): Buffer {
  const packageCount = Math.ceil(plaintext.length / darePayloadBytesMax);
  const out = Buffer.allocUnsafe(final ? encryptedSizeBytes(plaintext.length) : packageCount * darePackageBytesMax);
  sealPackagesInto(key, nonce, firstSequence, plaintext, final, out);
  return out;
}

/** Decryption state of one stream, following sio's authDecV20.Open checks in the same order. */
class PackageOpener {
  readonly #key: Buffer;
  readonly #aeadNonce = Buffer.allocUnsafe(dareNonceBytes);
  #sequence: number;
  #referenceNonce: Buffer | undefined; // flag bit cleared
  #referenceCipherId: number | undefined;
  /** the final flag of the package being opened (read before decrypting: `out` may overlap the package) */
  #packageFinal = false;
  finalSeen = false;

  constructor(key: Buffer, firstSequence: number, expectNonce: Buffer | undefined) {
    assertKey(key);
    assertSequence(firstSequence);
    this.#key = key;
    this.#sequence = firstSequence;
    if (expectNonce !== undefined) {
      assertInvariant(expectNonce.length === dareNonceBytes, `nonce must be ${dareNonceBytes} bytes`);
      this.#referenceNonce = Buffer.from(expectNonce);
      this.#referenceNonce[0]! &= ~finalFlag;
    }
  }

  get nonce(): Buffer | undefined {
    return this.#referenceNonce === undefined ? undefined : Buffer.from(this.#referenceNonce);
  }

  /**
   * Validate a header (first 16 bytes at `offset`) and return its whole package length. Called as soon as
   * a header is available so that garbage is rejected before a whole package is buffered.
   */
  packageBytes(bytes: Uint8Array, offset: number): number {
    if (this.finalSeen) throw new DareError('unexpected data after final package');
    const version = bytes[offset]!;
    // DARE 1.0 (0x10) is only used by legacy SSE-C sealed keys (`DARE-SHA256`), which Coffer never wrote.
    if (version !== dareVersion20) throw new DareError('unsupported version');
    const cipherId = bytes[offset + 1]!;
    if (cipherId !== cipherIdAesGcm && cipherId !== cipherIdChaCha) throw new DareError('unsupported cipher');
    if (this.#referenceCipherId !== undefined && cipherId !== this.#referenceCipherId) throw new DareError('unsupported cipher');
    const payloadBytes = (bytes[offset + 2]! | (bytes[offset + 3]! << 8)) + 1;
    return payloadBytes + packageOverheadBytes;
  }

  /**
   * sio's checks of one whole package (`pkg` is exactly one package), in its order, up to the AEAD: sets
   * #aeadNonce and #packageFinal and returns the payload size.
   */
  #prepare(pkg: Uint8Array): number {
    const packageBytes = this.packageBytes(pkg, 0);
    assertInvariant(pkg.length === packageBytes, 'package framing');
    const payloadBytes = packageBytes - packageOverheadBytes;
    const isFinal = (pkg[4]! & finalFlag) !== 0;
    if (!isFinal && payloadBytes !== darePayloadBytesMax) throw new DareError('invalid payload size');
    if (this.#sequence > dareSequenceMax) throw new DareError('invalid payload size');
    const headerNonce = pkg.subarray(4, dareHeaderBytes);
    if (this.#referenceNonce === undefined) {
      this.#referenceNonce = Buffer.from(headerNonce);
      this.#referenceNonce[0]! &= ~finalFlag;
    } else {
      const headerNonceMasked = Buffer.from(headerNonce);
      headerNonceMasked[0]! &= ~finalFlag;
      if (!timingSafeEqual(headerNonceMasked, this.#referenceNonce)) throw new DareError('header nonce mismatch');
    }
    const cipherId = pkg[1]!;
    this.#referenceCipherId ??= cipherId;
    packageNonce(headerNonce, this.#sequence, this.#aeadNonce);
    this.#packageFinal = isFinal;
    return payloadBytes;
  }

  /** After the tag checked out: the next package has the next sequence number. */
  #accept(): void {
    this.#sequence += 1;
    if (this.#packageFinal) this.finalSeen = true;
  }

  /** node:crypto, both ciphers: the plaintext in a new Buffer. */
  #decipher(pkg: Uint8Array, payloadBytes: number): Buffer {
    const decipher =
      pkg[1] === cipherIdAesGcm
        ? createDecipheriv('aes-256-gcm', this.#key, this.#aeadNonce, { authTagLength: dareTagBytes })
        : createDecipheriv('chacha20-poly1305', this.#key, this.#aeadNonce, { authTagLength: dareTagBytes });
    decipher.setAAD(pkg.subarray(0, 4));
    decipher.setAuthTag(pkg.subarray(dareHeaderBytes + payloadBytes, dareHeaderBytes + payloadBytes + dareTagBytes));
    const plaintext = decipher.update(pkg.subarray(dareHeaderBytes, dareHeaderBytes + payloadBytes));
    try {
      decipher.final();
    } catch (error) {
      throw new DareError('authentication failed', { cause: error });
    }
    return plaintext;
  }

  /** The native addon, AES-256-GCM only: decrypt straight into `dst` (exactly payloadBytes long). */
  #openNative(native: NativeGcm, pkg: Uint8Array, payloadBytes: number, dst: Uint8Array): void {
    const tagOffset = dareHeaderBytes + payloadBytes;
    const authentic = native.open(this.#key, this.#aeadNonce, pkg.subarray(0, 4), pkg.subarray(dareHeaderBytes, tagOffset), dst, pkg.subarray(tagOffset, tagOffset + dareTagBytes));
    if (!authentic) throw new DareError('authentication failed');
  }

  /** Authenticate and decrypt one whole package (`pkg` is exactly one package) into a new Buffer. */
  open(pkg: Uint8Array): Buffer {
    const payloadBytes = this.#prepare(pkg);
    let plaintext: Buffer;
    if (gcm !== undefined && pkg[1] === cipherIdAesGcm) {
      plaintext = Buffer.allocUnsafe(payloadBytes);
      this.#openNative(gcm, pkg, payloadBytes, plaintext);
    } else {
      plaintext = this.#decipher(pkg, payloadBytes);
    }
    this.#accept();
    return plaintext;
  }

  /**
   * Authenticate and decrypt one whole package into `out` at `outOffset`; returns the plaintext bytes. On a
   * DareError `out` may hold unauthenticated bytes (the native path zeroes them, node:crypto writes none).
   */
  openInto(pkg: Uint8Array, out: Uint8Array, outOffset: number): number {
    const payloadBytes = this.#prepare(pkg);
    assertInvariant(Number.isInteger(outOffset) && outOffset >= 0 && out.length - outOffset >= payloadBytes, 'output too small for the plaintext');
    const dst = out.subarray(outOffset, outOffset + payloadBytes);
    if (gcm !== undefined && pkg[1] === cipherIdAesGcm && !sharesBytes(pkg, dst)) {
      this.#openNative(gcm, pkg, payloadBytes, dst);
    } else {
      // Also when `out` overlaps the package (decrypting in place): node:crypto reads it all before the copy.
      dst.set(this.#decipher(pkg, payloadBytes));
    }
    this.#accept();
    return payloadBytes;
  }
}

/** Whether two views may share bytes (same backing buffer object, overlapping ranges). */
function sharesBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.buffer === b.buffer && a.byteOffset < b.byteOffset + b.byteLength && b.byteOffset < a.byteOffset + a.byteLength;
}

/**
 * The plaintext size of `encryptedBytes` of packages when every package but the last is full, which is
 * the case whenever openPackages succeeds; never less than what it writes before it throws (packages
 * are opened in order, and a short one or data after the final one is an error before the next opens).
 */
function plaintextBytesBound(encryptedBytes: number): number {
  const tailBytes = encryptedBytes % darePackageBytesMax;
  return Math.floor(encryptedBytes / darePackageBytesMax) * darePayloadBytesMax + Math.max(0, tailBytes - packageOverheadBytes);
}

function concatPlaintexts(pieces: readonly Buffer[]): Buffer {
  return pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces);
}

/**
 * Open consecutive whole packages (both ciphers) starting at `firstSequence`. Checks the nonce against
 * `expectNonce` if given (else learns it from the first package), the cipher, the final-flag rules and
 * framing (a partial trailing package → 'unexpected EOF'). A missing final package is not an error here:
 * `final` reports whether one was seen. `nonce` is the stream nonce with the flag bit cleared (empty if
 * there were no packages and no `expectNonce`).
 */
export function openPackages(
  key: Buffer,
  ciphertext: Uint8Array,
  firstSequence: number,
  expectNonce?: Buffer,
): { plaintext: Buffer; final: boolean; nonce: Buffer } {
  const opener = new PackageOpener(key, firstSequence, expectNonce);
  // One output for all packages, decrypted into place (no per-package Buffer with the native AES-GCM).
  const out = Buffer.allocUnsafe(plaintextBytesBound(ciphertext.length));
  let offset = 0;
  let written = 0;
  while (offset < ciphertext.length) {
    if (opener.finalSeen) throw new DareError('unexpected data after final package');
    if (ciphertext.length - offset < dareHeaderBytes) throw new DareError('unexpected EOF');
    const packageBytes = opener.packageBytes(ciphertext, offset);
    if (ciphertext.length - offset < packageBytes) throw new DareError('unexpected EOF');
    written += opener.openInto(ciphertext.subarray(offset, offset + packageBytes), out, written);
    offset += packageBytes;
  }
  return {
    plaintext: written === out.length ? out : out.subarray(0, written),
    final: opener.finalSeen,
    nonce: opener.nonce ?? Buffer.alloc(0),
  };
}

/**
 * openPackages into a caller's buffer (reused across blocks): `out` must hold the plaintext (at most
 * 64 KiB per package). On a DareError `out` may hold unauthenticated bytes: the caller must drop it.
 */
export function openPackagesInto(
  key: Buffer,
  ciphertext: Uint8Array,
  firstSequence: number,
  expectNonce: Buffer | undefined,
  out: Buffer,
): { plaintextBytes: number; final: boolean; nonce: Buffer } {
  const opener = new PackageOpener(key, firstSequence, expectNonce);
  let offset = 0;
  let written = 0;
  while (offset < ciphertext.length) {
    if (opener.finalSeen) throw new DareError('unexpected data after final package');
    if (ciphertext.length - offset < dareHeaderBytes) throw new DareError('unexpected EOF');
    const packageBytes = opener.packageBytes(ciphertext, offset);
    if (ciphertext.length - offset < packageBytes) throw new DareError('unexpected EOF');
    assertInvariant(out.length - written >= packageBytes - packageOverheadBytes, 'output too small for the plaintext');
    written += opener.openInto(ciphertext.subarray(offset, offset + packageBytes), out, written);
    offset += packageBytes;
  }
  return { plaintextBytes: written, final: opener.finalSeen, nonce: opener.nonce ?? Buffer.alloc(0) };
}

/**
 * A random stream nonce (flag bit cleared, as it appears in non-final headers), in a Buffer of its own or
 * written into `into` (its first dareNonceBytes) for a nonce that is only copied into a header.
 */
export function randomDareNonce(into?: Buffer): Buffer {
  const nonce = into === undefined ? secureRandomBytes(dareNonceBytes) : secureRandomFill(into.subarray(0, dareNonceBytes));
  nonce[0]! &= ~finalFlag;
  return nonce;
}

/**
 * Streaming encryption: plaintext chunks of any size in → ciphertext in whole packages out (one output
 * Buffer per input chunk that completes at least one package). Holds at most 64 KiB between calls: a
 * full package cannot be sealed until we know whether it is the last one (sio's writer does the same).
 */
export async function* encryptStream(source: AsyncIterable<Uint8Array>, key: Buffer, nonce?: Buffer): AsyncGenerator<Buffer> {
  assertKey(key);
  const streamNonce = nonce === undefined ? randomDareNonce() : Buffer.from(nonce);
  assertInvariant(streamNonce.length === dareNonceBytes, `nonce must be ${dareNonceBytes} bytes`);
  const pending = Buffer.allocUnsafe(darePayloadBytesMax);
  let pendingBytes = 0;
  let sequence = 0;
  for await (const chunk of source) {
    if (chunk.length === 0) continue;
    // Seal everything except the last 1..64 KiB, which might be the final package.
    const sealablePackages = Math.floor((pendingBytes + chunk.length - 1) / darePayloadBytesMax);
    if (sealablePackages === 0) {
      pending.set(chunk, pendingBytes);
      pendingBytes += chunk.length;
      continue;
    }
    assertInvariant(sequence + sealablePackages - 1 <= dareSequenceMax, 'more than 2^32 packages');
    const out = Buffer.allocUnsafe(sealablePackages * darePackageBytesMax);
    let outOffset = 0;
    let chunkOffset = 0;
    let packagesLeft = sealablePackages;
    if (pendingBytes > 0) {
      chunkOffset = darePayloadBytesMax - pendingBytes;
      pending.set(chunk.subarray(0, chunkOffset), pendingBytes);
      outOffset += sealInto(key, streamNonce, sequence, pending, false, out, outOffset);
      sequence += 1;
      packagesLeft -= 1;
      pendingBytes = 0;
    }
    if (packagesLeft > 0) {
      const runBytes = packagesLeft * darePayloadBytesMax;
      outOffset += sealInto(key, streamNonce, sequence, chunk.subarray(chunkOffset, chunkOffset + runBytes), false, out, outOffset);
      sequence += packagesLeft;
      chunkOffset += runBytes;
    }
    assertInvariant(outOffset === out.length, 'stream output size');
    pending.set(chunk.subarray(chunkOffset), 0);
    pendingBytes = chunk.length - chunkOffset;
    assertInvariant(pendingBytes > 0 && pendingBytes <= darePayloadBytesMax, 'pending size');
    yield out;
  }
  if (pendingBytes > 0) {
    assertInvariant(sequence <= dareSequenceMax, 'more than 2^32 packages');
    const out = Buffer.allocUnsafe(pendingBytes + packageOverheadBytes);
    sealInto(key, streamNonce, sequence, pending.subarray(0, pendingBytes), true, out, 0);
    yield out;
  }
}

/**
 * Streaming decryption of a ciphertext stream that starts at a package boundary with sequence
 * `firstSequence`; any input chunking. Yields plaintext only after its package authenticated (one Buffer
 * per input chunk that completed packages). Throws DareError on tamper, reordering or truncation.
 * `expectFinal: false` is for callers that deliberately stop before the end (range reads): then ending
 * without the final package is fine, but a partial package still is not.
 *
 * An empty stream at sequence 0 decrypts to empty plaintext (the encoding of an empty object); sio would
 * report 'unexpected EOF' there, but MinIO never decrypts 0-byte objects. Detecting a stream truncated to
 * nothing is the caller's job (compare the stored size with the expected one).
 */
export async function* decryptStream(
  source: AsyncIterable<Uint8Array>,
  key: Buffer,
  firstSequence: number,
  options?: { expectFinal?: boolean },
): AsyncGenerator<Buffer> {
  const expectFinal = options?.expectFinal ?? true;
  const opener = new PackageOpener(key, firstSequence, undefined);
  const carry = Buffer.allocUnsafe(darePackageBytesMax);
  let carryBytes = 0;
  let carryPackageBytes = 0; // known once the carried header is complete
  let sawBytes = false;
  for await (const chunk of source) {
    if (chunk.length === 0) continue;
    sawBytes = true;
    const pieces: Buffer[] = [];
    let offset = 0;
    if (carryBytes > 0) {
      if (carryBytes < dareHeaderBytes) {
        const headerTake = Math.min(dareHeaderBytes - carryBytes, chunk.length);
        carry.set(chunk.subarray(0, headerTake), carryBytes);
        carryBytes += headerTake;
        offset = headerTake;
        if (carryBytes < dareHeaderBytes) continue;
        carryPackageBytes = opener.packageBytes(carry, 0);
      }
      const take = Math.min(carryPackageBytes - carryBytes, chunk.length - offset);
      carry.set(chunk.subarray(offset, offset + take), carryBytes);
      carryBytes += take;
      offset += take;
      if (carryBytes < carryPackageBytes) continue;
      pieces.push(opener.open(carry.subarray(0, carryPackageBytes)));
      carryBytes = 0;
      carryPackageBytes = 0;
    }
    // Whole packages straight from the chunk, without copying.
    while (chunk.length - offset >= dareHeaderBytes) {
      const packageBytes = opener.packageBytes(chunk, offset);
      if (chunk.length - offset < packageBytes) break;
      pieces.push(opener.open(chunk.subarray(offset, offset + packageBytes)));
      offset += packageBytes;
    }
    if (offset < chunk.length) {
      if (opener.finalSeen) throw new DareError('unexpected data after final package');
      carry.set(chunk.subarray(offset), 0);
      carryBytes = chunk.length - offset;
      if (carryBytes >= dareHeaderBytes) carryPackageBytes = opener.packageBytes(carry, 0);
    }
    if (pieces.length > 0) yield concatPlaintexts(pieces);
  }
  if (carryBytes > 0) throw new DareError('unexpected EOF');
  if (expectFinal && !opener.finalSeen && (sawBytes || firstSequence !== 0)) throw new DareError('unexpected EOF');
}
