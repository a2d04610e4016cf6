// DARE 2.0 packages (workers/dare.ts) and range planning (engine/crypto/range.ts).
// Oracles: MinIO's TestDecryptETag vector, @noble/ciphers (independent AEAD code) and pinned hex.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { gcm } from '@noble/ciphers/aes.js';
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import {
  DareError,
  type DareErrorReason,
  darePackageBytesMax,
  darePayloadBytesMax,
  dareHeaderBytes,
  dareTagBytes,
  decryptStream,
  decryptedSizeBytes,
  encryptStream,
  encryptedSizeBytes,
  openPackages,
  sealPackages,
} from '../workers/dare.ts';
import { planEncryptedRange } from '../engine/crypto/range.ts';
import { multipartPartNonce, partKey } from '../engine/crypto/keys.ts';

const kib64 = 65536;
const mib = 1024 * 1024;
const sequentialKey = Buffer.from(Array.from({ length: 32 }, (_, i) => i));
const fixedNonce = Buffer.from('000102030405060708090a0b', 'hex');

/** deterministic PRNG so failures reproduce (mulberry32) */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) >>> 0;
    let t = seed;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function pseudoRandomBytes(sizeBytes: number, seed: number): Buffer {
  const random = prng(seed);
  const out = Buffer.allocUnsafe(sizeBytes);
  for (let i = 0; i < sizeBytes; i++) out[i] = Math.floor(random() * 256);
  return out;
}

/** Split into pieces: 'ones' = 1-byte pieces, 'random' = random sizes 0..3×64 KiB (empty chunks included). */
function chunk(data: Uint8Array, mode: 'whole' | 'ones' | 'random', seed = 1): Uint8Array[] {
  if (mode === 'whole') return [data];
  const pieces: Uint8Array[] = [];
  if (mode === 'ones') {
    for (let i = 0; i < data.length; i++) pieces.push(data.subarray(i, i + 1));
    return pieces;
  }
  const random = prng(seed);
  let offset = 0;
  while (offset < data.length) {
    const roll = random();
    const sizeBytes = roll < 0.1 ? 0 : roll < 0.3 ? 1 + Math.floor(random() * 40) : Math.floor(random() * 3 * kib64);
    pieces.push(data.subarray(offset, offset + sizeBytes));
    offset += sizeBytes;
  }
  return pieces;
}

async function* iterate(pieces: readonly Uint8Array[]): AsyncGenerator<Uint8Array> {
  for (const piece of pieces) yield piece;
}

async function collect(stream: AsyncIterable<Buffer>): Promise<Buffer> {
  const pieces: Buffer[] = [];
  for await (const piece of stream) pieces.push(piece);
  return Buffer.concat(pieces);
}

async function decryptAll(ciphertext: Uint8Array, key: Buffer, firstSequence = 0, expectFinal = true, mode: 'whole' | 'ones' | 'random' = 'whole'): Promise<Buffer> {
  return collect(decryptStream(iterate(chunk(ciphertext, mode, 7)), key, firstSequence, { expectFinal }));
}

function isDareError(reason?: DareErrorReason): (error: unknown) => boolean {
  return (error) => error instanceof DareError && (reason === undefined || error.reason === reason);
}

/** AEAD nonce of a package per §8.2: header nonce (flag included) with the last 4 bytes XOR sequence (LE). */
function aeadNonceOf(header: Uint8Array, sequence: number): Buffer {
  const nonce = Buffer.from(header.subarray(4, 16));
  nonce.writeUInt32LE((nonce.readUInt32LE(8) ^ sequence) >>> 0, 8);
  return nonce;
}

/** Independent DARE v2 decoder on @noble/ciphers: returns plaintext, checks framing strictly. */
function nobleOpen(key: Buffer, ciphertext: Buffer, firstSequence = 0): Buffer {
  const pieces: Buffer[] = [];
  let offset = 0;
  let sequence = firstSequence;
  let finalSeen = false;
  while (offset < ciphertext.length) {
    assert.equal(finalSeen, false, 'data after final');
    const header = ciphertext.subarray(offset, offset + 16);
    assert.equal(header[0], 0x20);
    const payloadBytes = header.readUInt16LE(2) + 1;
    finalSeen = (header[4]! & 0x80) !== 0;
    if (!finalSeen) assert.equal(payloadBytes, kib64);
    const body = ciphertext.subarray(offset + 16, offset + 16 + payloadBytes + 16);
    const aead = header[1] === 0 ? gcm(key, aeadNonceOf(header, sequence), header.subarray(0, 4)) : chacha20poly1305(key, aeadNonceOf(header, sequence), header.subarray(0, 4));
    pieces.push(Buffer.from(aead.decrypt(body)));
    offset += 16 + payloadBytes + 16;
    sequence += 1;
  }
  assert.ok(finalSeen || ciphertext.length === 0);
  return Buffer.concat(pieces);
}

/** Independent DARE v2 encoder on @noble/ciphers (either cipher). */
function nobleSeal(cipher: 'gcm' | 'chacha', key: Buffer, nonce: Buffer, plaintext: Buffer, firstSequence = 0, final = true): Buffer {
  const pieces: Buffer[] = [];
  let sequence = firstSequence;
  for (let offset = 0; offset < plaintext.length; offset += kib64) {
    const payload = plaintext.subarray(offset, offset + kib64);
    const isFinal = final && offset + kib64 >= plaintext.length;
    const header = Buffer.alloc(16);
    header[0] = 0x20;
    header[1] = cipher === 'gcm' ? 0 : 1;
    header.writeUInt16LE(payload.length - 1, 2);
    nonce.copy(header, 4);
    header[4] = isFinal ? header[4]! | 0x80 : header[4]! & 0x7f;
    const aead = cipher === 'gcm' ? gcm(key, aeadNonceOf(header, sequence), header.subarray(0, 4)) : chacha20poly1305(key, aeadNonceOf(header, sequence), header.subarray(0, 4));
    pieces.push(header, Buffer.from(aead.encrypt(payload)));
    sequence += 1;
  }
  return Buffer.concat(pieces);
}

test('constants', () => {
  assert.equal(darePayloadBytesMax, 65536);
  assert.equal(dareHeaderBytes, 16);
  assert.equal(dareTagBytes, 16);
  assert.equal(darePackageBytesMax, 65568);
});

test('size formulas (reference §8.5 examples)', () => {
  const examples: [number, number][] = [
    [0, 0],
    [1, 33],
    [65536, 65568],
    [65537, 65601],
    [mib, 1049088],
    [5 * mib, 5245440],
    [297435132, 297580380],
  ];
  for (const [plain, encrypted] of examples) {
    assert.equal(encryptedSizeBytes(plain), encrypted, `encrypted(${plain})`);
    assert.equal(decryptedSizeBytes(encrypted), plain, `decrypted(${encrypted})`);
  }
  for (let plain = 0; plain < 3 * kib64 + 10; plain += 997) assert.equal(decryptedSizeBytes(encryptedSizeBytes(plain)), plain);
  for (let r = 1; r <= 32; r++) {
    assert.throws(() => decryptedSizeBytes(r), isDareError('invalid payload size'));
    assert.throws(() => decryptedSizeBytes(2 * darePackageBytesMax + r), isDareError('invalid payload size'));
  }
  assert.equal(decryptedSizeBytes(33), 1);
});

test('MinIO TestDecryptETag vector opens (AES-GCM, key = HMAC-SHA256(zero OEK, "SSE-etag"))', async () => {
  const sealed = Buffer.from('20000f00f27834c9a2654927546df57f9e998187496394d4ee80f3d9978f85f3c7d81f72600cdbe03d80dc5a13d69354', 'hex');
  const key = createHmac('sha256', Buffer.alloc(32)).update('SSE-etag').digest();
  const opened = openPackages(key, sealed, 0);
  assert.equal(opened.plaintext.toString('hex'), '8ad3fe6b84bf38489e95c701c84355b6');
  assert.equal(opened.final, true);
  assert.equal(opened.nonce.toString('hex'), '727834c9a2654927546df57f'); // header nonce, final flag cleared
  assert.equal((await decryptAll(sealed, key, 0, true, 'ones')).toString('hex'), '8ad3fe6b84bf38489e95c701c84355b6');
  assert.equal(nobleOpen(key, sealed).toString('hex'), '8ad3fe6b84bf38489e95c701c84355b6');
  // The same bytes at another sequence number, or with the version byte changed, do not open.
  assert.throws(() => openPackages(key, sealed, 1), isDareError('authentication failed'));
  const modified = Buffer.from(sealed);
  modified[0] = 0x00;
  assert.throws(() => openPackages(key, modified, 0), isDareError('unsupported version'));
});

test('pinned package bytes (a format change must fail here)', () => {
  const small = sealPackages(sequentialKey, fixedNonce, 0, Buffer.from('hello, DARE'), true);
  assert.equal(small.toString('hex'), '20000a00800102030405060708090a0b41ef91f4a8de6d989b41a25f7506ce078447ca145723ac351917a0');
  const full = sealPackages(sequentialKey, fixedNonce, 5, Buffer.alloc(kib64, 7), false);
  assert.equal(full.length, darePackageBytesMax);
  assert.equal(full.subarray(0, 16).toString('hex'), '2000ffff000102030405060708090a0b');
  assert.equal(full.subarray(-16).toString('hex'), '6c04fa5c6d3bfb96e0dbecd54286f95c');
});

test('sealPackages output decrypts with @noble/ciphers using the header nonce/AAD rules', () => {
  for (const sizeBytes of [1, 15, 16, 17, 65535, 65536, 65537, 3 * kib64, 3 * kib64 + 1234]) {
    const plaintext = pseudoRandomBytes(sizeBytes, sizeBytes);
    const nonce = randomBytes(12);
    const sealed = sealPackages(sequentialKey, nonce, 0, plaintext, true);
    assert.equal(sealed.length, encryptedSizeBytes(sizeBytes));
    assert.deepEqual(nobleOpen(sequentialKey, sealed), plaintext, `size ${sizeBytes}`);
    // noble seals the same bytes (AES-GCM is deterministic given key, nonce, AAD)
    assert.deepEqual(nobleSeal('gcm', sequentialKey, nonce, plaintext), sealed, `noble bytes, size ${sizeBytes}`);
  }
  // non-final packages at a non-zero sequence
  const plaintext = pseudoRandomBytes(2 * kib64, 99);
  const sealed = sealPackages(sequentialKey, fixedNonce, 41, plaintext, false);
  assert.deepEqual(sealed, nobleSeal('gcm', sequentialKey, fixedNonce, plaintext, 41, false));
  assert.equal(sealed[4]! & 0x80, 0);
  assert.equal(sealed[darePackageBytesMax + 4]! & 0x80, 0);
});

test('the nonce flag bit is forced per package, whatever the caller passes (as sio does)', () => {
  const nonceWithFlag = Buffer.from(fixedNonce);
  nonceWithFlag[0] = 0xff;
  const plaintext = pseudoRandomBytes(kib64 + 10, 3);
  const sealed = sealPackages(sequentialKey, nonceWithFlag, 0, plaintext, true);
  assert.equal(sealed[4], 0x7f);
  assert.equal(sealed[darePackageBytesMax + 4], 0xff);
  const opened = openPackages(sequentialKey, sealed, 0);
  assert.deepEqual(opened.plaintext, plaintext);
  assert.equal(opened.nonce[0], 0x7f);
  assert.deepEqual(sealPackages(sequentialKey, Buffer.alloc(12), 0, Buffer.alloc(0), true), Buffer.alloc(0));
  assert.deepEqual(sealPackages(sequentialKey, Buffer.alloc(12), 0, Buffer.alloc(0), false), Buffer.alloc(0));
  assert.throws(() => sealPackages(sequentialKey, fixedNonce, 0, Buffer.alloc(100), false));
  assert.throws(() => sealPackages(Buffer.alloc(16), fixedNonce, 0, Buffer.alloc(100), true));
});

test('packages sealed by @noble/ciphers (AES-GCM and ChaCha20-Poly1305) open with openPackages and decryptStream', async () => {
  for (const cipher of ['gcm', 'chacha'] as const) {
    for (const sizeBytes of [1, 100, 65536, 65537, 2 * kib64 + 77]) {
      const plaintext = pseudoRandomBytes(sizeBytes, sizeBytes + 1);
      const nonce = randomBytes(12);
      const sealed = nobleSeal(cipher, sequentialKey, nonce, plaintext);
      const opened = openPackages(sequentialKey, sealed, 0);
      assert.deepEqual(opened.plaintext, plaintext, `${cipher} ${sizeBytes}`);
      assert.equal(opened.final, true);
      assert.deepEqual(await decryptAll(sealed, sequentialKey, 0, true, 'random'), plaintext);
      // starting in the middle (random access by sequence number)
      if (sizeBytes > kib64) {
        const tail = sealed.subarray(darePackageBytesMax);
        assert.deepEqual(await decryptAll(tail, sequentialKey, 1), plaintext.subarray(kib64));
      }
    }
  }
});

test('openPackages: nonce learning/expectation, final reporting, framing', () => {
  const plaintext = pseudoRandomBytes(3 * kib64, 5);
  const nonFinal = sealPackages(sequentialKey, fixedNonce, 0, plaintext, false);
  const opened = openPackages(sequentialKey, nonFinal, 0);
  assert.equal(opened.final, false);
  assert.deepEqual(opened.plaintext, plaintext);
  assert.deepEqual(opened.nonce, fixedNonce);
  assert.deepEqual(openPackages(sequentialKey, nonFinal, 0, fixedNonce).plaintext, plaintext);
  const otherNonce = Buffer.from(fixedNonce);
  otherNonce[11] ^= 1;
  assert.throws(() => openPackages(sequentialKey, nonFinal, 0, otherNonce), isDareError('header nonce mismatch'));
  // expectNonce with the flag bit set is compared without it
  const flagged = Buffer.from(fixedNonce);
  flagged[0]! |= 0x80;
  assert.deepEqual(openPackages(sequentialKey, nonFinal, 0, flagged).plaintext, plaintext);
  const empty = openPackages(sequentialKey, Buffer.alloc(0), 0);
  assert.equal(empty.plaintext.length, 0);
  assert.equal(empty.final, false);
  assert.throws(() => openPackages(sequentialKey, nonFinal.subarray(0, 10), 0), isDareError('unexpected EOF'));
  assert.throws(() => openPackages(sequentialKey, nonFinal.subarray(0, darePackageBytesMax + 100), 0), isDareError('unexpected EOF'));
});

test('round trips: encryptStream → decryptStream with random chunkings, 1-byte pieces included', async () => {
  const sizes = [0, 1, 65535, 65536, 65537, 3 * kib64, mib + 5];
  for (const sizeBytes of sizes) {
    const plaintext = pseudoRandomBytes(sizeBytes, sizeBytes + 11);
    const modes = sizeBytes <= 3 * kib64 ? (['whole', 'ones', 'random'] as const) : (['whole', 'random'] as const);
    for (const encryptMode of modes) {
      const nonce = randomBytes(12);
      nonce[0]! &= 0x7f;
      const ciphertext = await collect(encryptStream(iterate(chunk(plaintext, encryptMode, sizeBytes)), sequentialKey, nonce));
      assert.equal(ciphertext.length, encryptedSizeBytes(sizeBytes), `size ${sizeBytes} ${encryptMode}`);
      // Same bytes as the one-shot sealer: chunking must not change the output.
      assert.deepEqual(ciphertext, sealPackages(sequentialKey, nonce, 0, plaintext, true));
      // 1-byte pieces on both sides only once per size (slow path, ~1 µs per piece)
      for (const decryptMode of encryptMode === 'whole' && sizeBytes <= kib64 + 1 ? modes : (['whole', 'random'] as const)) {
        assert.deepEqual(await decryptAll(ciphertext, sequentialKey, 0, true, decryptMode), plaintext, `size ${sizeBytes} ${encryptMode}/${decryptMode}`);
      }
    }
  }
  // 1 MiB + 5 in 1-byte pieces would take ~10 s under node:test (per-await overhead), so sizes above
  // 3×64 KiB use the random chunking, which mixes 0-, 1..40-byte and large pieces.
  const plaintext = pseudoRandomBytes(mib + 5, 1);
  const ciphertext = await collect(encryptStream(iterate(chunk(plaintext, 'random', 3)), sequentialKey));
  assert.deepEqual(await decryptAll(ciphertext, sequentialKey, 0, true, 'random'), plaintext);
  assert.deepEqual(openPackages(sequentialKey, ciphertext, 0).plaintext, plaintext);
});

test('encryptStream emits whole packages only, holding at most 64 KiB', async () => {
  const plaintext = pseudoRandomBytes(5 * kib64 + 3, 21);
  const outputs: Buffer[] = [];
  let fedBytes = 0;
  const source = (async function* () {
    for (const piece of chunk(plaintext, 'random', 5)) {
      fedBytes += piece.length;
      yield piece;
    }
  })();
  let emittedPlainBytes = 0;
  let finalEmitted = false;
  for await (const out of encryptStream(source, sequentialKey)) {
    assert.equal(finalEmitted, false);
    if (out.length % darePackageBytesMax !== 0) {
      // only the final, short package comes after the source ended
      finalEmitted = true;
      assert.equal(fedBytes, plaintext.length);
      assert.equal(out.length, 3 + 32);
      emittedPlainBytes += 3;
    } else {
      emittedPlainBytes += (out.length / darePackageBytesMax) * kib64;
      assert.ok(fedBytes - emittedPlainBytes <= kib64 && fedBytes - emittedPlainBytes > 0, `held ${fedBytes - emittedPlainBytes}`);
    }
    outputs.push(out);
  }
  assert.equal(finalEmitted, true);
  assert.equal(emittedPlainBytes, plaintext.length);
  assert.deepEqual(openPackages(sequentialKey, Buffer.concat(outputs), 0).plaintext, plaintext);
});

test('§8.6 worked range vector (TestGetDecryptedRange_Issue50)', () => {
  const partPlainBytes = 297435132;
  const spans = planEncryptedRange([partPlainBytes, partPlainBytes], 594870256, 594870263);
  assert.deepEqual(spans, [
    { partIndex: 1, encryptedStart: 297547584, encryptedEndExclusive: 297580380, firstSequence: 4538, skipBytes: 32756, takeBytes: 8, finalIncluded: true },
  ]);
  // MinIO's object-absolute numbers: encOff 595,127,964, encLength 32,796.
  const partEncryptedBytes = encryptedSizeBytes(partPlainBytes);
  assert.equal(partEncryptedBytes, 297580380);
  assert.equal(partEncryptedBytes + spans[0]!.encryptedStart, 595127964);
  assert.equal(spans[0]!.encryptedEndExclusive - spans[0]!.encryptedStart, 32796);
});

test('planEncryptedRange: bounds and shapes', () => {
  assert.throws(() => planEncryptedRange([10], 0, 10), RangeError);
  assert.throws(() => planEncryptedRange([10], 5, 4), RangeError);
  assert.throws(() => planEncryptedRange([], 0, 0), RangeError);
  assert.deepEqual(planEncryptedRange([0, 10, 0], 0, 9), [
    { partIndex: 1, encryptedStart: 0, encryptedEndExclusive: 42, firstSequence: 0, skipBytes: 0, takeBytes: 10, finalIncluded: true },
  ]);
  const spans = planEncryptedRange([2 * kib64, 2 * kib64, 2 * kib64], kib64 + 1, 4 * kib64 + 5);
  assert.deepEqual(
    spans.map((s) => [s.partIndex, s.encryptedStart, s.encryptedEndExclusive, s.firstSequence, s.skipBytes, s.takeBytes, s.finalIncluded]),
    [
      [0, darePackageBytesMax, 2 * darePackageBytesMax, 1, 1, kib64 - 1, true],
      [1, 0, 2 * darePackageBytesMax, 0, 0, 2 * kib64, true],
      [2, 0, darePackageBytesMax, 0, 0, 6, false],
    ],
  );
});

test('every kind of sub-range of a multi-part object: planEncryptedRange + decryptStream = plaintext slice', async () => {
  const objectKey = pseudoRandomBytes(32, 77);
  const uploadId = 'b2f0c1d4-test-upload';
  const partPlainSizes = [3 * kib64 + 100, kib64, 1, 0, 2 * kib64, 70000];
  const plainParts = partPlainSizes.map((sizeBytes, i) => pseudoRandomBytes(sizeBytes, 1000 + i));
  const plaintext = Buffer.concat(plainParts);
  // S3 part numbers start at 1; part i has number i + 1.
  const keys = partPlainSizes.map((_, i) => partKey(objectKey, i + 1));
  const cipherParts = plainParts.map((part, i) => sealPackages(keys[i]!, multipartPartNonce(uploadId, i + 1), 0, part, true));

  async function readRange(start: number, endInclusive: number, mode: 'whole' | 'random'): Promise<Buffer> {
    const out: Buffer[] = [];
    for (const span of planEncryptedRange(partPlainSizes, start, endInclusive)) {
      assert.equal(span.encryptedStart % darePackageBytesMax, 0);
      const slice = cipherParts[span.partIndex]!.subarray(span.encryptedStart, span.encryptedEndExclusive);
      const decrypted = await collect(
        decryptStream(iterate(chunk(slice, mode, start)), keys[span.partIndex]!, span.firstSequence, { expectFinal: span.finalIncluded }),
      );
      assert.ok(decrypted.length >= span.skipBytes + span.takeBytes);
      out.push(decrypted.subarray(span.skipBytes, span.skipBytes + span.takeBytes));
    }
    return Buffer.concat(out);
  }

  // boundaries: package and part edges ±1
  const points = new Set<number>([0, plaintext.length - 1]);
  let partStart = 0;
  for (const sizeBytes of partPlainSizes) {
    for (let packageEdge = partStart; packageEdge <= partStart + sizeBytes; packageEdge += kib64) {
      for (const delta of [-1, 0, 1]) points.add(packageEdge + delta);
    }
    for (const delta of [-1, 0, 1]) points.add(partStart + sizeBytes + delta);
    partStart += sizeBytes;
  }
  const sorted = [...points].filter((p) => p >= 0 && p < plaintext.length).sort((a, b) => a - b);
  let checked = 0;
  for (let i = 0; i < sorted.length; i++) {
    for (let j = i; j < sorted.length; j += 1 + (checked % 3)) {
      const start = sorted[i]!;
      const endInclusive = sorted[j]!;
      assert.deepEqual(await readRange(start, endInclusive, 'whole'), plaintext.subarray(start, endInclusive + 1), `range ${start}-${endInclusive}`);
      checked += 1;
    }
  }
  const random = prng(2024);
  for (let k = 0; k < 150; k++) {
    const a = Math.floor(random() * plaintext.length);
    const b = random() < 0.3 ? Math.min(plaintext.length - 1, a + Math.floor(random() * 40)) : Math.floor(random() * plaintext.length);
    const [start, endInclusive] = a <= b ? [a, b] : [b, a];
    assert.deepEqual(await readRange(start, endInclusive, 'random'), plaintext.subarray(start, endInclusive + 1), `range ${start}-${endInclusive}`);
  }
  assert.ok(checked > 100);
});

test('tamper: flipping any bit of a small stream fails', async () => {
  const sealed = sealPackages(sequentialKey, fixedNonce, 0, Buffer.from('a small object of some fifty bytes, give or take.'), true);
  for (let i = 0; i < sealed.length; i++) {
    for (let bit = 0; bit < 8; bit++) {
      const tampered = Buffer.from(sealed);
      tampered[i]! ^= 1 << bit;
      assert.throws(() => openPackages(sequentialKey, tampered, 0), isDareError(), `byte ${i} bit ${bit}`);
      await assert.rejects(decryptAll(tampered, sequentialKey), isDareError(), `byte ${i} bit ${bit}`);
    }
  }
});

test('tamper: flipped bytes, truncation, reordering, junk, dropped final in a multi-package stream', async () => {
  const plaintext = pseudoRandomBytes(3 * kib64 + 1000, 8);
  const sealed = sealPackages(sequentialKey, fixedNonce, 0, plaintext, true);
  const packageStarts = [0, darePackageBytesMax, 2 * darePackageBytesMax, 3 * darePackageBytesMax];
  const rejectsAll = async (ciphertext: Buffer, label: string, reason?: DareErrorReason): Promise<void> => {
    await assert.rejects(decryptAll(ciphertext, sequentialKey), isDareError(reason), label);
    await assert.rejects(decryptAll(ciphertext, sequentialKey, 0, true, 'random'), isDareError(reason), `${label} (random chunks)`);
  };

  // flips: every header byte, both ends of every payload and tag, and random positions
  const positions = new Set<number>();
  for (const start of packageStarts) {
    for (let i = 0; i < 16; i++) positions.add(start + i);
    const payloadBytes = start === packageStarts[3] ? 1000 : kib64;
    for (const offset of [16, 17, 16 + payloadBytes - 1, 16 + payloadBytes, 16 + payloadBytes + 15]) positions.add(start + offset);
  }
  const random = prng(9);
  for (let k = 0; k < 60; k++) positions.add(Math.floor(random() * sealed.length));
  for (const position of positions) {
    const tampered = Buffer.from(sealed);
    tampered[position]! ^= 0x01 << Math.floor(random() * 8);
    await rejectsAll(tampered, `flip at ${position}`);
  }

  // truncation at every package boundary, and inside header / payload / tag of every package
  for (const start of packageStarts.slice(1)) await rejectsAll(sealed.subarray(0, start), `truncate at ${start}`, 'unexpected EOF');
  for (const start of packageStarts) {
    for (const offset of [1, 15, 16, 17, 500, 1015, 1031]) {
      if (start + offset < sealed.length) await rejectsAll(sealed.subarray(0, start + offset), `truncate at ${start}+${offset}`, 'unexpected EOF');
    }
  }
  for (let cut = sealed.length - 33; cut < sealed.length; cut++) await rejectsAll(sealed.subarray(0, cut), `truncate at ${cut}`, 'unexpected EOF');
  // expectFinal false: stopping at a package boundary is fine, stopping mid-package is not
  assert.deepEqual(await decryptAll(sealed.subarray(0, 2 * darePackageBytesMax), sequentialKey, 0, false), plaintext.subarray(0, 2 * kib64));
  await assert.rejects(decryptAll(sealed.subarray(0, 2 * darePackageBytesMax + 20), sequentialKey, 0, false), isDareError('unexpected EOF'));

  // reorder two packages
  const pkg = (i: number): Buffer => sealed.subarray(packageStarts[i]!, i === 3 ? sealed.length : packageStarts[i + 1]);
  await rejectsAll(Buffer.concat([pkg(1), pkg(0), pkg(2), pkg(3)]), 'swap 0/1', 'authentication failed');
  await rejectsAll(Buffer.concat([pkg(0), pkg(2), pkg(1), pkg(3)]), 'swap 1/2', 'authentication failed');
  await rejectsAll(Buffer.concat([pkg(0), pkg(1), pkg(1), pkg(3)]), 'duplicate 1', 'authentication failed');
  // drop the final package, drop a middle one
  await rejectsAll(Buffer.concat([pkg(0), pkg(1), pkg(2)]), 'drop final', 'unexpected EOF');
  await rejectsAll(Buffer.concat([pkg(0), pkg(2), pkg(3)]), 'drop middle', 'authentication failed');
  // junk after final: one byte, a header's worth, a valid package from another stream
  await rejectsAll(Buffer.concat([sealed, Buffer.from([0x20])]), 'junk 1 byte', 'unexpected data after final package');
  await rejectsAll(Buffer.concat([sealed, Buffer.alloc(40, 0x20)]), 'junk 40 bytes', 'unexpected data after final package');
  await rejectsAll(Buffer.concat([sealed, pkg(0)]), 'extra package', 'unexpected data after final package');
  assert.throws(() => openPackages(sequentialKey, Buffer.concat([sealed, Buffer.from([0])]), 0), isDareError('unexpected data after final package'));
  // a package from another stream (same key, other nonce) in the middle
  const other = sealPackages(sequentialKey, randomBytes(12), 0, plaintext, true);
  await rejectsAll(Buffer.concat([pkg(0), other.subarray(darePackageBytesMax, 2 * darePackageBytesMax), pkg(2), pkg(3)]), 'splice', 'header nonce mismatch');
  // wrong key, wrong start sequence
  await assert.rejects(decryptAll(sealed, randomBytes(32)), isDareError('authentication failed'));
  await assert.rejects(decryptAll(sealed, sequentialKey, 1), isDareError('authentication failed'));
  // final flag set on a full middle package (a truncation attack): nonce changes → tag fails
  const earlyFinal = Buffer.from(sealed.subarray(0, 2 * darePackageBytesMax));
  earlyFinal[darePackageBytesMax + 4]! |= 0x80;
  await rejectsAll(earlyFinal, 'early final flag', 'authentication failed');
  // unknown cipher id and a cipher switch mid-stream
  const badCipher = Buffer.from(sealed);
  badCipher[1] = 2;
  await rejectsAll(badCipher, 'cipher 2', 'unsupported cipher');
  const nobleMixed = Buffer.concat([
    nobleSeal('gcm', sequentialKey, fixedNonce, plaintext.subarray(0, kib64), 0, false),
    nobleSeal('chacha', sequentialKey, fixedNonce, plaintext.subarray(kib64, 2 * kib64), 1, true),
  ]);
  await rejectsAll(nobleMixed, 'cipher switch', 'unsupported cipher');
  // a short non-final package (valid AEAD, wrong framing)
  const shortNonFinal = Buffer.concat([
    nobleSeal('gcm', sequentialKey, fixedNonce, plaintext.subarray(0, 100), 0, false),
    nobleSeal('gcm', sequentialKey, fixedNonce, plaintext.subarray(100, 200), 1, true),
  ]);
  await rejectsAll(shortNonFinal, 'short non-final', 'invalid payload size');
  // DARE 1.0 header
  const v1 = Buffer.from(sealed);
  v1[0] = 0x10;
  await rejectsAll(v1, 'version 1.0', 'unsupported version');
});

test('decryptStream: empty stream and empty chunks', async () => {
  assert.equal((await decryptAll(Buffer.alloc(0), sequentialKey)).length, 0);
  await assert.rejects(decryptAll(Buffer.alloc(0), sequentialKey, 3), isDareError('unexpected EOF'));
  assert.equal((await collect(encryptStream(iterate([new Uint8Array(0), new Uint8Array(0)]), sequentialKey))).length, 0);
  const sealed = sealPackages(sequentialKey, fixedNonce, 0, Buffer.from('xyz'), true);
  const pieces = [new Uint8Array(0), sealed.subarray(0, 5), new Uint8Array(0), sealed.subarray(5), new Uint8Array(0)];
  assert.equal((await collect(decryptStream(iterate(pieces), sequentialKey, 0))).toString(), 'xyz');
});
