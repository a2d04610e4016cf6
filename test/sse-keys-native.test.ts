// The one-call SSE key operations (native/sse_keys.c through engine/crypto/keys.ts's generateSealedObjectKey and
// engine/kms/builtin.ts's sealSecretKeyCiphertext) give the bytes the JS path gives and an independent
// node:crypto + @noble/ciphers computation gives, with pinned randomness; they unseal through the JS path;
// bad arguments throw; and OpenSSL (COFFER_NATIVE_GCM_VAES=off) gives the same bytes as vaes_gcm.c.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { gcm } from '@noble/ciphers/aes.js';
import {
  cleanObjectPath,
  generateObjectKey,
  generateSealedObjectKey,
  sealAlgorithm,
  sealObjectKey,
  unsealObjectKey,
  type SseDomain,
} from '../engine/crypto/keys.ts';
import { openBuiltinCiphertext, sealSecretKeyCiphertext } from '../engine/kms/builtin.ts';
import { nativeGcmAddonPath, nativeSseKeys } from '../workers/native-gcm.ts';

const repoRoot = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const hmac = (key: Uint8Array, ...parts: (Uint8Array | string)[]): Buffer => {
  const mac = createHmac('sha256', key);
  for (const part of parts) mac.update(part);
  return mac.digest();
};

/** The sealed object key written from the reference: DARE 2.0 header, AES-256-GCM (noble) under the KEK. */
function referenceSealedKey(externalKey: Buffer, objectKey: Buffer, iv: Buffer, nonce: Buffer, domain: SseDomain, bucket: string, object: string): Buffer {
  const kek = hmac(externalKey, iv, domain, sealAlgorithm, cleanObjectPath(bucket, object));
  const header = Buffer.concat([Buffer.from([0x20, 0x00, 31, 0]), nonce]);
  header[4]! |= 0x80; // the final package
  return Buffer.concat([header, gcm(kek, header.subarray(4), header.subarray(0, 4)).encrypt(objectKey)]);
}

const paths: readonly [string, string][] = [
  ['bucket', 'dir/object'],
  ['bucket', 'a//b/./c.txt'], // cleaned as Go's path.Join does
  ['bücket', 'ünïcødé/名前'],
  ['bucket', `${'long/'.repeat(500)}end`], // a KEK input beyond the native side's stack buffer
];

test('generateSealedObjectKey: the JS path and the reference bytes, for every domain and path', { skip: nativeSseKeys === undefined && 'the native addon is not built' }, () => {
  for (const domain of ['SSE-S3', 'SSE-KMS', 'SSE-C'] as const) {
    for (const [bucket, object] of paths) {
      const externalKey = randomBytes(32);
      const randomness = { random: randomBytes(32), iv: randomBytes(32), nonce: randomBytes(12) };
      const made = generateSealedObjectKey(externalKey, domain, bucket, object, randomness);
      const objectKey = generateObjectKey(externalKey, randomness.random);
      assert.deepEqual(made.objectKey, objectKey);
      assert.deepEqual(made.objectKey, hmac(externalKey, 'object-encryption-key generation', randomness.random));
      assert.deepEqual(made.iv, randomness.iv);
      assert.deepEqual(made.sealedKey, sealObjectKey(objectKey, externalKey, domain, bucket, object, randomness.iv, randomness.nonce).sealedKey);
      assert.deepEqual(made.sealedKey, referenceSealedKey(externalKey, objectKey, randomness.iv, randomness.nonce, domain, bucket, object));
      assert.deepEqual(unsealObjectKey(made.sealedKey, made.iv, externalKey, domain, bucket, object), objectKey);
    }
  }
});

test('generateSealedObjectKey with its own randomness: fresh keys that unseal, memory of their own for the key', () => {
  const externalKey = randomBytes(32);
  const first = generateSealedObjectKey(externalKey, 'SSE-S3', 'bucket', 'object');
  const second = generateSealedObjectKey(externalKey, 'SSE-S3', 'bucket', 'object');
  assert.notDeepEqual(first.objectKey, second.objectKey);
  assert.notDeepEqual(first.iv, second.iv);
  assert.equal(first.sealedKey.length, 64);
  assert.equal(first.objectKey.byteLength, first.objectKey.buffer.byteLength, 'the object key shares no slab');
  assert.deepEqual(unsealObjectKey(first.sealedKey, first.iv, externalKey, 'SSE-S3', 'bucket', 'object'), first.objectKey);
  assert.throws(() => generateSealedObjectKey(externalKey.subarray(0, 16), 'SSE-S3', 'b', 'o'), /external key must be 32 bytes/);
});

test('kesSeal: the KES AES256 layout, as node:crypto writes it and the built-in KMS opens it', { skip: nativeSseKeys === undefined && 'the native addon is not built' }, () => {
  const masterKey = randomBytes(32);
  for (const plaintextBytes of [0, 32, 1000]) {
    const plaintext = randomBytes(plaintextBytes);
    const context = Buffer.from(`{"bucket":"bucket/object-${plaintextBytes}"}`);
    const iv = randomBytes(16);
    const nonce = randomBytes(12);
    const sealed = sealSecretKeyCiphertext(masterKey, 'AES256', plaintext, context, { iv, nonce });
    const reference = gcm(hmac(masterKey, iv), nonce, context).encrypt(plaintext);
    assert.deepEqual(sealed, Buffer.concat([reference, iv, nonce]));
    assert.deepEqual(openBuiltinCiphertext(masterKey, sealed, context), plaintext);
    assert.equal(openBuiltinCiphertext(masterKey, sealed, Buffer.from('{}')), undefined);
  }
  const fresh = sealSecretKeyCiphertext(masterKey, 'AES256', Buffer.alloc(32, 1), Buffer.from('{}'));
  assert.deepEqual(openBuiltinCiphertext(masterKey, fresh, Buffer.from('{}')), Buffer.alloc(32, 1));
});

test('the native calls check their arguments', { skip: nativeSseKeys === undefined && 'the native addon is not built' }, () => {
  const keys = nativeSseKeys!;
  const key = randomBytes(32);
  const objectKey = Buffer.alloc(32);
  const sealed = Buffer.alloc(64);
  const call = (overrides: Partial<Record<'key' | 'random' | 'iv' | 'nonce' | 'out' | 'sealed', Uint8Array>>, tail: unknown = 'SSE-S3DAREv2-HMAC-SHA256b/o') =>
    keys.newSealedObjectKey(overrides.key ?? key, overrides.random ?? key, overrides.iv ?? key, overrides.nonce ?? Buffer.alloc(12), tail as string, overrides.out ?? objectKey, overrides.sealed ?? sealed);
  assert.throws(() => call({ key: Buffer.alloc(31) }), RangeError);
  assert.throws(() => call({ nonce: Buffer.alloc(16) }), RangeError);
  assert.throws(() => call({ sealed: Buffer.alloc(63) }), RangeError);
  assert.throws(() => call({ out: sealed.subarray(0, 32) }), RangeError, 'outputs overlapping');
  assert.throws(() => call({}, 42), TypeError);
  assert.throws(() => call({ iv: [1, 2] as unknown as Uint8Array }), TypeError);
  assert.throws(() => (keys.newSealedObjectKey as unknown as (...args: unknown[]) => void)(key), TypeError, 'missing arguments');
  call({}, Buffer.from('SSE-S3DAREv2-HMAC-SHA256b/o')); // bytes are as good as a string
  const out = Buffer.alloc(32 + 44);
  assert.throws(() => keys.kesSeal(key, Buffer.from('{}'), Buffer.alloc(32), Buffer.alloc(75)), RangeError);
  assert.throws(() => keys.kesSeal(key.subarray(1), Buffer.from('{}'), Buffer.alloc(32), out), RangeError);
  assert.throws(() => keys.kesSeal(key, Buffer.from('{}'), out.subarray(0, 32), out), RangeError, 'plaintext overlapping out');
});

test('OpenSSL gives the same bytes as vaes_gcm.c (COFFER_NATIVE_GCM_VAES=off)', { skip: nativeSseKeys === undefined && 'the native addon is not built' }, () => {
  const externalKey = Buffer.alloc(32, 0x11);
  const random = Buffer.alloc(32, 0x22);
  const iv = Buffer.alloc(32, 0x33);
  const nonce = Buffer.alloc(12, 0x44);
  const tail = `SSE-KMS${sealAlgorithm}bucket/dir/object`;
  const kesOut = Buffer.alloc(32 + 44, 0x55);
  const script = `
    const { createRequire } = await import('node:module');
    const gcm = createRequire(import.meta.url)(${JSON.stringify(nativeGcmAddonPath)});
    const objectKey = Buffer.alloc(32), sealed = Buffer.alloc(64), out = Buffer.alloc(76, 0x55);
    gcm.newSealedObjectKey(Buffer.alloc(32, 0x11), Buffer.alloc(32, 0x22), Buffer.alloc(32, 0x33), Buffer.alloc(12, 0x44), ${JSON.stringify(tail)}, objectKey, sealed);
    gcm.kesSeal(Buffer.alloc(32, 0x66), Buffer.from('{}'), Buffer.alloc(32, 0x77), out);
    process.stdout.write(JSON.stringify({ implementation: gcm.implementation, objectKey: objectKey.toString('hex'), sealed: sealed.toString('hex'), kes: out.toString('hex') }));
  `;
  const child = spawnSync(process.execPath, ['--input-type=module', '--eval', script], {
    cwd: repoRoot, env: { ...process.env, COFFER_NATIVE_GCM_VAES: 'off' }, encoding: 'utf8', timeout: 60_000,
  });
  assert.equal(child.status, 0, `child failed: ${child.stderr}`);
  const result = JSON.parse(child.stdout) as { implementation: string; objectKey: string; sealed: string; kes: string };
  assert.equal(result.implementation, 'openssl');
  const objectKey = Buffer.alloc(32);
  const sealed = Buffer.alloc(64);
  nativeSseKeys!.newSealedObjectKey(externalKey, random, iv, nonce, tail, objectKey, sealed);
  nativeSseKeys!.kesSeal(Buffer.alloc(32, 0x66), Buffer.from('{}'), Buffer.alloc(32, 0x77), kesOut);
  assert.equal(result.objectKey, objectKey.toString('hex'));
  assert.equal(result.sealed, sealed.toString('hex'));
  assert.equal(result.kes, kesOut.toString('hex'));
  assert.deepEqual(sealed, referenceSealedKey(externalKey, objectKey, iv, nonce, 'SSE-KMS', 'bucket', 'dir/object'));
});
