import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import {
  checksumBase64,
  checksumDigestSizeBytes,
  checksumHeaderName,
  combineCrc,
  compositeChecksum,
  createChecksumHasher,
  isCrcAlgorithm,
  parseChecksumAlgorithm,
  validateChecksumValue,
  type CrcAlgorithm,
} from '../api/checksum.ts';
import { S3Error } from '../api/errors.ts';
import { checksumAlgorithms } from '../engine/types.ts';

const check = Buffer.from('123456789');
const hex = (b64: string): string => Buffer.from(b64, 'base64').toString('hex');
const crcAlgorithms: readonly CrcAlgorithm[] = ['CRC32', 'CRC32C', 'CRC64NVME'];

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

test('check values for "123456789" (CRC catalogue)', () => {
  assert.equal(hex(checksumBase64('CRC32', check)), 'cbf43926');
  assert.equal(hex(checksumBase64('CRC32C', check)), 'e3069283');
  assert.equal(hex(checksumBase64('CRC64NVME', check)), 'ae8b14860a799888');
  assert.equal(checksumBase64('SHA1', check), createHash('sha1').update(check).digest('base64'));
  assert.equal(checksumBase64('SHA256', check), createHash('sha256').update(check).digest('base64'));
});

test('empty input', () => {
  assert.equal(hex(checksumBase64('CRC32', Buffer.alloc(0))), '00000000');
  assert.equal(hex(checksumBase64('CRC32C', Buffer.alloc(0))), '00000000');
  assert.equal(hex(checksumBase64('CRC64NVME', Buffer.alloc(0))), '0000000000000000');
  assert.equal(checksumBase64('SHA256', Buffer.alloc(0)), createHash('sha256').digest('base64'));
});

test('digest sizes match the algorithm', () => {
  for (const alg of checksumAlgorithms) {
    assert.equal(Buffer.from(checksumBase64(alg, randomBytes(100)), 'base64').length, checksumDigestSizeBytes[alg], alg);
  }
});

test('streaming in pieces equals one-shot', () => {
  const random = prng(1);
  const data = randomBytes(300_000);
  for (const alg of checksumAlgorithms) {
    const oneShot = checksumBase64(alg, data);
    const hasher = createChecksumHasher(alg);
    let offset = 0;
    while (offset < data.length) {
      const n = Math.min(data.length - offset, Math.floor(random() * 70_000));
      hasher.update(data.subarray(offset, offset + n));
      offset += n;
    }
    assert.equal(hasher.digestBase64(), oneShot, alg);
  }
});

test('interleaved hashers of the same algorithm do not interfere', () => {
  const a = randomBytes(50_000);
  const b = randomBytes(70_000);
  const c = randomBytes(10_000);
  for (const alg of checksumAlgorithms) {
    const ha = createChecksumHasher(alg);
    const hb = createChecksumHasher(alg);
    const hc = createChecksumHasher(alg);
    for (let i = 0; i < 10; i++) {
      ha.update(a.subarray(i * 5000, (i + 1) * 5000));
      hb.update(b.subarray(i * 7000, (i + 1) * 7000));
      if (i === 4) hc.update(c); // created early, used once in the middle, finished before the others
      if (i === 5) assert.equal(hc.digestBase64(), checksumBase64(alg, c), `${alg} c`);
    }
    // a hasher created and abandoned without digest must not disturb anyone
    createChecksumHasher(alg).update(randomBytes(10));
    assert.equal(hb.digestBase64(), checksumBase64(alg, b), `${alg} b`);
    assert.equal(ha.digestBase64(), checksumBase64(alg, a), `${alg} a`);
  }
});

test('a hasher cannot be used after digest', () => {
  for (const alg of checksumAlgorithms) {
    const h = createChecksumHasher(alg);
    h.update(check);
    h.digestBase64();
    assert.throws(() => h.update(check), Error, alg);
  }
});

test('header names and algorithm parsing', () => {
  assert.equal(checksumHeaderName('CRC32'), 'x-amz-checksum-crc32');
  assert.equal(checksumHeaderName('CRC32C'), 'x-amz-checksum-crc32c');
  assert.equal(checksumHeaderName('CRC64NVME'), 'x-amz-checksum-crc64nvme');
  assert.equal(checksumHeaderName('SHA1'), 'x-amz-checksum-sha1');
  assert.equal(checksumHeaderName('SHA256'), 'x-amz-checksum-sha256');
  assert.equal(parseChecksumAlgorithm('crc32'), 'CRC32');
  assert.equal(parseChecksumAlgorithm('Crc32c'), 'CRC32C');
  assert.equal(parseChecksumAlgorithm('CRC64NVME'), 'CRC64NVME');
  assert.equal(parseChecksumAlgorithm('sha256'), 'SHA256');
  assert.equal(parseChecksumAlgorithm('md5'), undefined);
  assert.equal(parseChecksumAlgorithm(''), undefined);
  assert.equal(parseChecksumAlgorithm('toString'), undefined);
});

test('validateChecksumValue: size and canonical base64', () => {
  for (const alg of checksumAlgorithms) {
    const value = checksumBase64(alg, check);
    assert.equal(validateChecksumValue(alg, value).toString('base64'), value);
  }
  const bad: [Parameters<typeof validateChecksumValue>[0], string][] = [
    ['CRC32', ''],
    ['CRC32', 'AAAAAAAAAAA='], // 8 bytes
    ['CRC64NVME', 'AAAAAA=='], // 4 bytes
    ['CRC32', 'y/Q5Jg'], // unpadded
    ['CRC32', 'y/Q5Jg=='.replace('g', 'h')], // non-canonical trailing bits
    ['CRC32', 'y/Q5J!=='],
    ['CRC32', ' y/Q5Jg=='],
    ['SHA256', checksumBase64('SHA1', check)],
  ];
  for (const [alg, value] of bad) {
    assert.throws(
      () => validateChecksumValue(alg, value),
      (e: unknown) => e instanceof S3Error && e.code === 'InvalidArgument',
      `${alg} ${JSON.stringify(value)}`,
    );
  }
});

test('compositeChecksum: hash of concatenated part digests, suffixed with the part count', () => {
  const parts = [randomBytes(1000), randomBytes(2000), randomBytes(3)];
  for (const alg of checksumAlgorithms) {
    const partValues = parts.map((p) => checksumBase64(alg, p));
    const concatenated = Buffer.concat(partValues.map((v) => Buffer.from(v, 'base64')));
    const expected = `${checksumBase64(alg, concatenated)}-3`;
    assert.equal(compositeChecksum(alg, partValues), expected, alg);
    assert.match(compositeChecksum(alg, partValues), /^[A-Za-z0-9+/]+=*-3$/);
  }
  // a known vector: SHA256 composite of one part = sha256(sha256(part))
  const inner = createHash('sha256').update('hello').digest();
  assert.equal(compositeChecksum('SHA256', [inner.toString('base64')]), `${createHash('sha256').update(inner).digest('base64')}-1`);
  assert.throws(() => compositeChecksum('CRC32', ['nope']), S3Error);
});

test('combineCrc equals the CRC of the concatenation (random data, random splits)', () => {
  const random = prng(42);
  const data = randomBytes(1 << 20);
  for (let round = 0; round < 40; round++) {
    const alg = crcAlgorithms[round % 3]!;
    const length = Math.floor(random() * data.length);
    const cuts = [0, length];
    const partCount = 1 + Math.floor(random() * 8);
    for (let i = 1; i < partCount; i++) cuts.push(Math.floor(random() * length));
    if (round % 5 === 0) cuts.push(cuts[1]!); // empty parts
    cuts.sort((x, y) => x - y);
    const parts = [];
    for (let i = 0; i + 1 < cuts.length; i++) {
      const part = data.subarray(cuts[i], cuts[i + 1]);
      parts.push({ checksumBase64: checksumBase64(alg, part), sizeBytes: part.length });
    }
    assert.equal(combineCrc(alg, parts), checksumBase64(alg, data.subarray(0, length)), `${alg} cuts ${cuts}`);
  }
});

test('combineCrc: single part, no parts, check string split', () => {
  for (const alg of crcAlgorithms) {
    const whole = checksumBase64(alg, check);
    assert.equal(combineCrc(alg, [{ checksumBase64: whole, sizeBytes: 9 }]), whole);
    assert.equal(combineCrc(alg, []), checksumBase64(alg, Buffer.alloc(0)));
    const split = [check.subarray(0, 4), check.subarray(4)].map((p) => ({ checksumBase64: checksumBase64(alg, p), sizeBytes: p.length }));
    assert.equal(combineCrc(alg, split), whole, alg);
  }
});

test('combineCrc handles part sizes above 4 GiB (no 32-bit overflow in the length)', () => {
  // crc(A ‖ zeros(n)) can be computed two ways: combine with the CRC of n zero bytes, or hash directly.
  // For n > 2^32 hashing directly is too slow, so check the algebra instead: combining with zeros(n1) then
  // zeros(n2) equals combining with zeros(n1 + n2) where each zeros CRC is itself obtained by combining.
  const zeros = Buffer.alloc(1 << 20);
  for (const alg of crcAlgorithms) {
    const zeroMiB = { checksumBase64: checksumBase64(alg, zeros), sizeBytes: zeros.length };
    const a = { checksumBase64: checksumBase64(alg, check), sizeBytes: 9 };
    // 5 GiB of zeros as one CRC, built from 5 * 1024 MiB-sized pieces with equal sizes (memoized path)
    const fiveGiBZeros = { checksumBase64: combineCrc(alg, Array(5 * 1024).fill(zeroMiB)), sizeBytes: 5 * 2 ** 30 };
    const viaBig = combineCrc(alg, [a, fiveGiBZeros]);
    const viaPieces = combineCrc(alg, [a, ...Array(5 * 1024).fill(zeroMiB)]);
    assert.equal(viaBig, viaPieces, alg);
  }
});

test('isCrcAlgorithm', () => {
  assert.deepEqual(checksumAlgorithms.filter(isCrcAlgorithm), ['CRC32', 'CRC32C', 'CRC64NVME']);
});
