// Key derivations, sealing and the canonical context JSON (engine/crypto/keys.ts, context.ts).
// Every derivation is checked twice: against an independent node:crypto computation written from the
// reference (§6) and against a pinned literal, so a format change fails loudly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { gcm } from '@noble/ciphers/aes.js';
import {
  KeyUnsealError,
  cleanObjectPath,
  deriveKek,
  generateObjectKey,
  multipartPartNonce,
  partKey,
  sealAlgorithm,
  sealEtag,
  sealObjectKey,
  unsealEtag,
  unsealObjectKey,
  type SseDomain,
} from '../engine/crypto/keys.ts';
import { canonicalContextJson } from '../engine/crypto/context.ts';
import { openPackages, sealPackages } from '../workers/dare.ts';

const zeroKey = Buffer.alloc(32);
const hmac = (key: Uint8Array, ...parts: (Uint8Array | string)[]): Buffer => {
  const mac = createHmac('sha256', key);
  for (const part of parts) mac.update(part);
  return mac.digest();
};
const isUnsealError = (error: unknown): boolean => error instanceof KeyUnsealError;

test('part keys: MinIO TestDerivePartKey vectors (zero OEK, parts 0/1/10000)', () => {
  const expected: [number, string][] = [
    [0, 'aa7855e13839dd767cd5da7c1ff5036540c9264b7a803029315e55375287b4af'],
    [1, 'a3e7181c6eed030fd52f79537c56c4d07da92e56d374ff1dd2043350785b37d8'],
    [10000, 'f86e65c396ed52d204ee44bd1a0bbd86eb8b01b7354e67a3b3ae0e34dd5bd115'],
  ];
  for (const [partNumber, hex] of expected) {
    assert.equal(partKey(zeroKey, partNumber).toString('hex'), hex, `part ${partNumber}`);
    const littleEndian = Buffer.alloc(4);
    littleEndian.writeUInt32LE(partNumber);
    assert.equal(hmac(zeroKey, littleEndian).toString('hex'), hex, `independent HMAC, part ${partNumber}`);
  }
  assert.throws(() => partKey(zeroKey, -1));
  assert.throws(() => partKey(zeroKey, 2 ** 32));
  assert.throws(() => partKey(Buffer.alloc(16), 1));
});

test('sealed ETag: MinIO TestDecryptETag vector, failure cases, round trips', () => {
  const sealedHex = '20000f00f27834c9a2654927546df57f9e998187496394d4ee80f3d9978f85f3c7d81f72600cdbe03d80dc5a13d69354';
  assert.equal(unsealEtag(zeroKey, Buffer.from(sealedHex, 'hex')).toString('hex'), '8ad3fe6b84bf38489e95c701c84355b6');
  // independent: noble AES-GCM with the §8.2 nonce/AAD rules under HMAC(OEK, "SSE-etag")
  const sealed = Buffer.from(sealedHex, 'hex');
  const noble = gcm(hmac(zeroKey, 'SSE-etag'), sealed.subarray(4, 16), sealed.subarray(0, 4)).decrypt(sealed.subarray(16));
  assert.equal(Buffer.from(noble).toString('hex'), '8ad3fe6b84bf38489e95c701c84355b6');
  // MinIO's "modified ETag" case, and a wrong object key
  assert.throws(() => unsealEtag(zeroKey, Buffer.from('00' + sealedHex.slice(2), 'hex')), isUnsealError);
  assert.throws(() => unsealEtag(Buffer.alloc(32, 1), sealed), isUnsealError);
  assert.throws(() => unsealEtag(zeroKey, sealed.subarray(0, 40)), isUnsealError);

  // MinIO TestSealETag: key 0..31, ETags of 0, 8, 16, 20 bytes
  const objectKey = Buffer.from(Array.from({ length: 32 }, (_, i) => i));
  for (const etagHex of ['', '90682b8e8cc7609c', '90682b8e8cc7609c4671e1d64c73fc30', '90682b8e8cc7609c4671e1d64c73fc307fb3104f']) {
    const etag = Buffer.from(etagHex, 'hex');
    const sealedEtag = sealEtag(objectKey, etag);
    assert.equal(sealedEtag.length, etag.length === 0 ? 0 : etag.length + 32);
    assert.equal(unsealEtag(objectKey, sealedEtag).toString('hex'), etagHex);
  }
  const md5 = createHash('md5').update('hello').digest();
  const sealedMd5 = sealEtag(objectKey, md5);
  assert.equal(sealedMd5.length, 48);
  assert.equal(sealedMd5[0], 0x20); // DARE 2.0
  assert.equal(sealedMd5[1], 0x00); // AES-256-GCM
  assert.equal(sealedMd5.readUInt16LE(2), 15); // payload length − 1
  assert.equal(sealedMd5[4]! & 0x80, 0x80); // final
  assert.notDeepEqual(sealEtag(objectKey, md5), sealedMd5, 'random nonce per seal');
  // ≤ 16 bytes is "not sealed" and passes through (MinIO's UnsealETag)
  assert.deepEqual(unsealEtag(objectKey, md5), md5);
});

test('object key generation: HMAC-SHA256(EK, label ‖ random), pinned', () => {
  const externalKey = Buffer.alloc(32, 0x11);
  const random = Buffer.alloc(32, 0x22);
  const objectKey = generateObjectKey(externalKey, random);
  assert.equal(objectKey.toString('hex'), '67bbb8a71854ac8220038f3943937d72321bf00d912c92245609f595df7e3a26');
  assert.deepEqual(objectKey, hmac(externalKey, 'object-encryption-key generation', random));
  const fresh = generateObjectKey(externalKey);
  assert.equal(fresh.length, 32);
  assert.notDeepEqual(fresh, generateObjectKey(externalKey));
  assert.notDeepEqual(fresh, Buffer.alloc(32));
  assert.throws(() => generateObjectKey(Buffer.alloc(31)));
  assert.throws(() => generateObjectKey(externalKey, Buffer.alloc(16)));
});

test('KEK derivation: HMAC-SHA256(EK, IV ‖ domain ‖ algorithm ‖ path.Join(bucket, object)), pinned', () => {
  assert.equal(sealAlgorithm, 'DAREv2-HMAC-SHA256');
  const externalKey = Buffer.alloc(32, 0x11);
  const iv = Buffer.alloc(32, 0x33);
  const kek = deriveKek(externalKey, iv, 'SSE-S3', 'bucket', 'dir/object');
  assert.equal(kek.toString('hex'), '29af4fce625b75e9057a9754639ff837dca64be34ecc63cf678a1e6ee7eea213');
  assert.deepEqual(kek, hmac(externalKey, iv, 'SSE-S3', 'DAREv2-HMAC-SHA256', 'bucket/dir/object'));
  assert.deepEqual(deriveKek(externalKey, iv, 'SSE-S3', 'bucket', 'dir//object/'), kek, 'path is cleaned');
  assert.notDeepEqual(deriveKek(externalKey, iv, 'SSE-KMS', 'bucket', 'dir/object'), kek);
  assert.deepEqual(deriveKek(externalKey, iv, 'SSE-C', 'bücket', 'ø'), hmac(externalKey, iv, 'SSE-C', 'DAREv2-HMAC-SHA256', Buffer.from('bücket/ø', 'utf8')));
  assert.throws(() => deriveKek(externalKey, Buffer.alloc(16), 'SSE-S3', 'b', 'o'));
});

test('pinned sealed object key (MinIO layout: DARE v2, one final 32-byte package under the KEK) unseals', () => {
  const externalKey = Buffer.alloc(32, 0x11);
  const iv = Buffer.alloc(32, 0x33);
  const objectKey = Buffer.from('67bbb8a71854ac8220038f3943937d72321bf00d912c92245609f595df7e3a26', 'hex');
  const sealedKey = Buffer.from(
    '20001f00a0a1a2a3a4a5a6a7a8a9aaabcdbf5ebfdb9d6f428911216a43fdb3bc96344a04a5cd9ffbd91c96a378c65b21bb18f9145bebe19177996ff65568928d',
    'hex',
  );
  const kek = deriveKek(externalKey, iv, 'SSE-S3', 'bucket', 'dir/object');
  assert.deepEqual(sealPackages(kek, Buffer.from('a0a1a2a3a4a5a6a7a8a9aaab', 'hex'), 0, objectKey, true), sealedKey);
  assert.deepEqual(unsealObjectKey(sealedKey, iv, externalKey, 'SSE-S3', 'bucket', 'dir/object'), objectKey);
  const noble = gcm(kek, sealedKey.subarray(4, 16), sealedKey.subarray(0, 4)).decrypt(sealedKey.subarray(16));
  assert.deepEqual(Buffer.from(noble), objectKey);
});

test('seal/unseal object key: round trip and every wrong input → KeyUnsealError', () => {
  const externalKey = randomBytes(32);
  const objectKey = generateObjectKey(externalKey);
  const domains: SseDomain[] = ['SSE-S3', 'SSE-KMS', 'SSE-C'];
  for (const domain of domains) {
    const { iv, sealedKey } = sealObjectKey(objectKey, externalKey, domain, 'bucket', 'a/b/c.txt');
    assert.equal(iv.length, 32);
    assert.equal(sealedKey.length, 64);
    assert.equal(sealedKey[0], 0x20);
    assert.deepEqual(unsealObjectKey(sealedKey, iv, externalKey, domain, 'bucket', 'a/b/c.txt'), objectKey);
    assert.deepEqual(openPackages(deriveKek(externalKey, iv, domain, 'bucket', 'a/b/c.txt'), sealedKey, 0).plaintext, objectKey);
    // the same path spelled differently (path.Join cleaning) still unseals
    assert.deepEqual(unsealObjectKey(sealedKey, iv, externalKey, domain, 'bucket', 'a//b/./c.txt'), objectKey);

    const wrong: [string, () => Buffer][] = [
      ['external key', () => unsealObjectKey(sealedKey, iv, randomBytes(32), domain, 'bucket', 'a/b/c.txt')],
      ['iv', () => unsealObjectKey(sealedKey, randomBytes(32), externalKey, domain, 'bucket', 'a/b/c.txt')],
      ['domain', () => unsealObjectKey(sealedKey, iv, externalKey, domain === 'SSE-S3' ? 'SSE-KMS' : 'SSE-S3', 'bucket', 'a/b/c.txt')],
      ['bucket', () => unsealObjectKey(sealedKey, iv, externalKey, domain, 'bucket2', 'a/b/c.txt')],
      ['object', () => unsealObjectKey(sealedKey, iv, externalKey, domain, 'bucket', 'a/b/c.txT')],
      ['bucket/object split', () => unsealObjectKey(sealedKey, iv, externalKey, domain, 'bucket/a', 'b/c.txt2')],
      ['short sealed key', () => unsealObjectKey(sealedKey.subarray(0, 63), iv, externalKey, domain, 'bucket', 'a/b/c.txt')],
      ['short iv', () => unsealObjectKey(sealedKey, iv.subarray(0, 31), externalKey, domain, 'bucket', 'a/b/c.txt')],
      ['short external key', () => unsealObjectKey(sealedKey, iv, externalKey.subarray(0, 16), domain, 'bucket', 'a/b/c.txt')],
    ];
    for (const [label, attempt] of wrong) assert.throws(attempt, isUnsealError, `${domain}: wrong ${label}`);
    for (let i = 0; i < sealedKey.length; i++) {
      const tampered = Buffer.from(sealedKey);
      tampered[i]! ^= 0x04;
      assert.throws(() => unsealObjectKey(tampered, iv, externalKey, domain, 'bucket', 'a/b/c.txt'), isUnsealError, `tampered byte ${i}`);
    }
  }
  // the bucket/object boundary is not part of the KEK: path.Join makes ("a", "b/c") ≡ ("a/b", "c"), as in MinIO
  const { iv, sealedKey } = sealObjectKey(objectKey, externalKey, 'SSE-C', 'a', 'b/c');
  assert.deepEqual(unsealObjectKey(sealedKey, iv, externalKey, 'SSE-C', 'a/b', 'c'), objectKey);
  // a caller-chosen IV is used as given
  const fixedIv = Buffer.alloc(32, 9);
  assert.deepEqual(sealObjectKey(objectKey, externalKey, 'SSE-S3', 'b', 'o', fixedIv).iv, fixedIv);
});

test('multipart part nonce: first 12 bytes of SHA-256(uploadId ‖ decimal part number), pinned', () => {
  const nonce = multipartPartNonce('upload-id-123', 7);
  assert.equal(nonce.toString('hex'), '0824f757b1364fa688cfb6d2');
  assert.deepEqual(nonce, createHash('sha256').update('upload-id-1237').digest().subarray(0, 12));
  assert.equal(nonce.length, 12);
  assert.notDeepEqual(multipartPartNonce('upload-id-123', 10000), multipartPartNonce('upload-id-1231', 0));
});

test('cleanObjectPath = Go path.Join(bucket, object)', () => {
  const cases: [string, string, string][] = [
    ['bucket', 'object', 'bucket/object'],
    ['bucket', 'a//b', 'bucket/a/b'],
    ['bucket', 'a/./b', 'bucket/a/b'],
    ['bucket', 'a/../b', 'bucket/b'],
    ['bucket', 'dir/', 'bucket/dir'],
    ['bucket', 'dir//', 'bucket/dir'],
    ['bucket', '/leading', 'bucket/leading'],
    ['bucket', '', 'bucket'],
    ['', 'object', 'object'],
    ['', '', ''],
    ['', '/a/../../b', '/b'],
    ['bucket', '..', '.'],
    ['bucket', '../..', '..'],
    ['bucket', '../../x/./y/', '../x/y'],
    ['bucket', '.', 'bucket'],
    ['bucket', '...', 'bucket/...'],
    ['bucket', '.hidden/..x', 'bucket/.hidden/..x'],
    ['bucket', 'a/b/../../..', '.'],
    ['bucket', 'ünïcødé/ob ject', 'bucket/ünïcødé/ob ject'],
  ];
  for (const [bucket, object, expected] of cases) assert.equal(cleanObjectPath(bucket, object), expected, `${bucket} + ${object}`);
});

/** Go's path.Join(bucket, object), written independently: split on '/', resolve '.' and '..' with a stack. */
function referenceJoin(bucket: string, object: string): string {
  const joined = [bucket, object].filter((element) => element !== '').join('/');
  if (joined === '') return '';
  const rooted = joined.startsWith('/');
  const stack: string[] = [];
  for (const element of joined.split('/')) {
    if (element === '' || element === '.') continue;
    if (element === '..') {
      if (stack.length > 0 && stack[stack.length - 1] !== '..') stack.pop();
      else if (!rooted) stack.push('..');
      continue;
    }
    stack.push(element);
  }
  const cleaned = (rooted ? '/' : '') + stack.join('/');
  return cleaned === '' ? '.' : cleaned;
}

test('cleanObjectPath agrees with an independent path.Join on random names of /, ., a and é (its fast path included)', () => {
  const alphabet = ['/', '.', 'a', 'é'];
  let seed = 12345;
  const next = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  const word = (maxLength: number): string => Array.from({ length: next(maxLength + 1) }, () => alphabet[next(alphabet.length)]!).join('');
  for (let i = 0; i < 20000; i++) {
    const bucket = i % 10 === 0 ? word(3) : 'bucket';
    const object = word(9);
    assert.equal(cleanObjectPath(bucket, object), referenceJoin(bucket, object), JSON.stringify([bucket, object]));
  }
});

test('canonical context JSON: Go encoding/json with HTML escaping, sorted keys, {} for empty', () => {
  const json = (context: Record<string, string>): string => canonicalContextJson(context).toString('utf8');
  assert.equal(json({}), '{}');
  assert.equal(json({ key: 'value' }), '{"key":"value"}');
  assert.equal(json({ b: '2', a: '1', c: '3' }), '{"a":"1","b":"2","c":"3"}');
  assert.equal(json({ html: '<a href="x">&</a>' }), '{"html":"\\u003ca href=\\"x\\"\\u003e\\u0026\\u003c/a\\u003e"}');
  assert.equal(json({ s: 'back\\slash' }), '{"s":"back\\\\slash"}');
  assert.equal(json({ c: '\n\r\t\b\f\u0000\u001f\u007f' }), '{"c":"\\n\\r\\t\\u0008\\u000c\\u0000\\u001f\u007f"}');
  assert.equal(json({ u: 'a\u2028b\u2029c' }), '{"u":"a\\u2028b\\u2029c"}');
  assert.equal(json({ u: 'ünïcødé 🔑 €' }), '{"u":"ünïcødé 🔑 €"}');
  assert.equal(json({ '<k>': '' }), '{"\\u003ck\\u003e":""}');
  // lone surrogates are JS's invalid UTF-8: Go writes \ufffd
  assert.equal(json({ x: 'a\ud800b\udc00' }), '{"x":"a\\ufffdb\\ufffd"}');
  assert.equal(json({ x: '\ud83d' }), '{"x":"\\ufffd"}');
  // sorting by UTF-8 bytes, not UTF-16 code units: U+FF21 (ef bc a1) sorts before U+1F511 (f0 9f 94 91)
  assert.equal(json({ '🔑': '1', 'Ａ': '2' }), '{"Ａ":"2","🔑":"1"}');
  assert.equal(json({ b: '', a: '', B: '', '': 'empty', é: '', z: '' }), '{"":"empty","B":"","a":"","b":"","z":"","é":""}');
  // the bytes are UTF-8
  assert.deepEqual(canonicalContextJson({ k: 'é' }), Buffer.from('{"k":"é"}', 'utf8'));
  // JSON.parse reads it back (valid JSON)
  const tricky = { '<&>': 'x\u2028\u0001"\\', b: 'y' };
  assert.deepEqual(JSON.parse(json(tricky)), tricky);
});
