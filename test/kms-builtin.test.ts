// Built-in single-key KMS (engine/kms/builtin.ts) and KMS selection from the environment (engine/kms/from-env.ts).
// Golden vectors: MinIO internal/kms/secret-key_test.go (TestDecryptKey) and KES internal/crypto/key_test.go
// (secretKeyDecryptTests), both re-checked in reference/sse-kms-kes.md §17.3.

import { strict as assert } from 'node:assert';
import { createHmac } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gcm } from '@noble/ciphers/aes.js';
import {
  BuiltinKms,
  openBuiltinCiphertext,
  openSecretKeyCiphertext,
  sealSecretKeyCiphertext,
  type SecretKeyType,
} from '../engine/kms/builtin.ts';
import { autoEncryption, expandEndpointEllipses, kmsFromEnv } from '../engine/kms/from-env.ts';
import { KmsError, type KmsErrorKind } from '../engine/kms/kms.ts';

const b64 = (text: string): Buffer => Buffer.from(text, 'base64');
const utf8 = (text: string): Buffer => Buffer.from(text, 'utf8');
const emptyContext = utf8('{}');
const bucketContext = utf8('{"bucket":"bucket/object"}');

async function rejectsWithKind(promise: Promise<unknown>, kind: KmsErrorKind): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof KmsError, `expected KmsError, got ${String(error)}`);
    assert.equal(error.kind, kind);
    return true;
  });
}

// MinIO internal/kms/secret-key_test.go
const minioSecretKey = 'my-key:eEm+JI9/q4JhH8QwKvf3LKo4DEBl6QbfvAl1CAbMIv8=';
const minioLegacyVectors = [
  {
    plaintext: 'zmS7NrG765UZ0ZN85oPjybelxqVvpz01vxsSpOISy2M=',
    ciphertext:
      '{"aead":"ChaCha20Poly1305","iv":"JbI+vwvYww1lCb5VpkAFuQ==","nonce":"ARjIjJxBSD541Gz8","bytes":"KCbEc2sA0TLvA7aWTWa23AdccVfJMpOxwgG8hm+4PaNrxYfy1xFWZg2gEenVrOgv"}',
    context: '{}', // the Go test passes no context; MinIO marshals an empty one as `{}` (§7.3)
  },
  {
    plaintext: 'UnPWsZgVI+T4L9WGNzFlP1PsP1Z6hn2Fx8ISeZfDGnA=',
    ciphertext:
      '{"aead":"ChaCha20Poly1305","iv":"r4+yfiVbVIYR0Z2I9Fq+6g==","nonce":"2YpwGwE59GcVraI3","bytes":"k/svMglOU7/Kgwv73heG38NWW575XLcFp3SaxQHDMjJGYyRI3Fiygu2OeutGPXNL"}',
    context: '{"key":"value"}',
  },
] as const;

// KES internal/crypto/key_test.go secretKeyDecryptTests (index in the Go table → here).
const zeroKey = Buffer.alloc(32);
const kesKey = b64('dDHbTWgo+Yh3u804SYB5OyVMy6RiLeJYBQth1f6KlEU=');
const kesBinaryVectors: readonly {
  readonly index: number;
  readonly key: Buffer;
  readonly keyType: SecretKeyType;
  readonly plaintext: string;
  readonly associatedData: string;
  readonly ciphertext: string;
}[] = [
  {
    index: 5,
    key: zeroKey,
    keyType: 'AES256',
    plaintext: 'AAAAAAAAAAAAAAAAAAAAAA==',
    associatedData: '',
    ciphertext: 'zwdDgHeRlIFRnJ7+DIhs/ka7GFK2CFSfDELqg1VCyTQzZ58o7MAdupMLk3ZjlMo2ZUDwldL2o41nAWDc',
  },
  {
    index: 6,
    key: kesKey,
    keyType: 'AES256',
    plaintext: 'CLcJoykFCWZDkEIiUq9bJRqwCwW9ZDvdgu8EMA==',
    associatedData: 'AAAAAAAAAAAAAAAAAAAAAA==',
    ciphertext: 's2gmfQHeGdlyL8x1yEWSACUV3GrSoz3t160hugMgzKWgyqesXDVUJ5Dw5Mt076rR1PNiU9X4YjLH14D8a81t2r2xsz4gVZac',
  },
  {
    index: 7,
    key: kesKey,
    keyType: 'ChaCha20',
    plaintext: 'CLcJoykFCWZDkEIiUq9bJRqwCwW9ZDvdgu8EMA==',
    associatedData: 'AAAAAAAAAAAAAAAAAAAAAA==',
    ciphertext: 'gO4woRIswAJdjUjW7z2ApsSQxJlwB24yjLrmH4eI7sB0uh5nfEJfk9ybTPFft5FRFaZCVBmzhx7OJs9n0WWtxH3sySIxecIK',
  },
];
const kesJsonVectors = [
  {
    index: 0,
    ciphertext: '{"aead":"AES-256-GCM-HMAC-SHA-256","iv":"xLxIN3tSCkg2xMafuvwUwg==","nonce":"gu0mGwUkwcvMEoi5","bytes":"WVgRjeIJm3w50C/l+y7y2i6mbNg5NCAqN1zvOYWZKmc="}',
  },
  {
    index: 1,
    ciphertext: '{"aead":"ChaCha20Poly1305","iv":"s3fSZ6vk5m+DfQA8yZWeUg==","nonce":"8/kHMnCMs3h9NZ2a","bytes":"cw22HjLq/4cx8507SW4hhSrYbDiMuRao4b5+GE+XfbE="}',
  },
  {
    index: 2,
    ciphertext:
      '{"aead":"ChaCha20Poly1305","id":"66687aadf862bd776c8fc18b8e9f8e20","iv":"EC0eZp7Pqt+LnkOae5xaAg==","nonce":"X1ejXKmH/ugFZPkk","bytes":"wIGBTDs6aOvsqJfekZ0PYRT/OHyFX2TXqeNwl1SLXOI="}',
  },
] as const;
const kesJsonMustFail = [
  { index: 8, why: 'unknown algorithm', ciphertext: '{"aead":"AES-256-GCM","iv":"xLxIN3tSCkg2xMafuvwUwg==","nonce":"gu0mGwUkwcvMEoi5","bytes":"WVgRjeIJm3w50C/l+y7y2i6mbNg5NCAqN1zvOYWZKmc="}' },
  { index: 9, why: 'iv length', ciphertext: '{"aead":"AES-256-GCM-HMAC-SHA-256","iv":"EjOY4JKqjIrPmQ5z1KSR8zlhggY=","nonce":"gu0mGwUkwcvMEoi5","bytes":"WVgRjeIJm3w50C/l+y7y2i6mbNg5NCAqN1zvOYWZKmc="}' },
  { index: 10, why: 'nonce length', ciphertext: '{"aead":"ChaCha20Poly1305","iv":"s3fSZ6vk5m+DfQA8yZWeUg==","nonce":"SXAbms731/c=","bytes":"cw22HjLq/4cx8507SW4hhSrYbDiMuRao4b5+GE+XfbE="}' },
  { index: 11, why: 'nonce length', ciphertext: '{"aead":"AES-256-GCM-HMAC-SHA-256","iv":"xLxIN3tSCkg2xMafuvwUwg==","nonce":"efY+4kYF9n8=","bytes":"WVgRjeIJm3w50C/l+y7y2i6mbNg5NCAqN1zvOYWZKmc="}' },
  { index: 12, why: 'not authentic', ciphertext: '{"aead":"AES-256-GCM-HMAC-SHA-256","iv":"xLxIN3tSCkg2xMafuvwUwg==","nonce":"gu0mGwUkwcvMEoi5","bytes":"QTza1g5oX3f9cGJMbY1xJwWPj1F7R2VnNl6XpFKYQy0="}' },
  { index: 13, why: 'not authentic', ciphertext: '{"aead":"ChaCha20Poly1305","iv":"s3fSZ6vk5m+DfQA8yZWeUg==","nonce":"8/kHMnCMs3h9NZ2a","bytes":"TTi8pkO+Jh1JWAHvPxZeUk/iVoBPUCE4ZSVGBy3fW2s="}' },
  { index: 14, why: 'invalid JSON', ciphertext: '{"aead":"AES-256-GCM-HMAC-SHA-256" "iv":"xLxIN3tSCkg2xMafuvwUwg==","nonce":"gu0mGwUkwcvMEoi5","bytes":"WVgRjeIJm3w50C/l+y7y2i6mbNg5NCAqN1zvOYWZKmc="}' },
] as const;

describe('golden vectors', () => {
  test('MinIO builtin KMS: legacy JSON ChaCha20 ciphertexts (TestDecryptKey)', async () => {
    const kms = BuiltinKms.fromSecretKey(minioSecretKey);
    assert.equal(kms.defaultKeyName, 'my-key');
    for (const vector of minioLegacyVectors) {
      const plaintext = await kms.decrypt('my-key', utf8(vector.ciphertext), utf8(vector.context));
      assert.equal(plaintext.toString('base64'), vector.plaintext);
    }
    // The context is bound: each vector fails under the other's context.
    await rejectsWithKind(kms.decrypt('my-key', utf8(minioLegacyVectors[0].ciphertext), utf8('{"key":"value"}')), 'DecryptionFailed');
    await rejectsWithKind(kms.decrypt('my-key', utf8(minioLegacyVectors[1].ciphertext), emptyContext), 'DecryptionFailed');
    await rejectsWithKind(kms.decrypt('other-key', utf8(minioLegacyVectors[0].ciphertext), emptyContext), 'KeyNotFound');
  });

  test('KES binary ciphertexts #5 #6 #7 open with the §14.5 layout', () => {
    for (const vector of kesBinaryVectors) {
      const plaintext = openSecretKeyCiphertext(vector.key, vector.keyType, b64(vector.ciphertext), b64(vector.associatedData));
      assert.ok(plaintext, `vector #${vector.index} must open`);
      assert.equal(plaintext.toString('base64'), vector.plaintext, `vector #${vector.index}`);
      // Wrong associated data or the other cipher must not open it.
      assert.equal(openSecretKeyCiphertext(vector.key, vector.keyType, b64(vector.ciphertext), utf8('x')), undefined);
      const otherType: SecretKeyType = vector.keyType === 'AES256' ? 'ChaCha20' : 'AES256';
      assert.equal(openSecretKeyCiphertext(vector.key, otherType, b64(vector.ciphertext), b64(vector.associatedData)), undefined);
    }
  });

  test('sealing with the vector iv/nonce reproduces KES #5 #6 #7 byte for byte', () => {
    for (const vector of kesBinaryVectors) {
      const expected = b64(vector.ciphertext);
      const iv = expected.subarray(expected.length - 28, expected.length - 12);
      const nonce = expected.subarray(expected.length - 12);
      const sealed = sealSecretKeyCiphertext(vector.key, vector.keyType, b64(vector.plaintext), b64(vector.associatedData), { iv, nonce });
      assert.equal(sealed.toString('base64'), vector.ciphertext, `vector #${vector.index}`);
    }
  });

  test('the builtin KMS reads the binary AES256 form of a KES vector (#6) through the Kms interface path', () => {
    const vector = kesBinaryVectors[1]!;
    const plaintext = openBuiltinCiphertext(vector.key, b64(vector.ciphertext), b64(vector.associatedData));
    assert.equal(plaintext?.toString('base64'), vector.plaintext);
    // #7 is ChaCha20 in the same binary shape: a builtin (AES256) key cannot read it, as in MinIO.
    const chacha = kesBinaryVectors[2]!;
    assert.equal(openBuiltinCiphertext(chacha.key, b64(chacha.ciphertext), b64(chacha.associatedData)), undefined);
  });

  test('KES legacy JSON ciphertexts #0 #1 #2 open; #8-#14 must fail', () => {
    for (const vector of kesJsonVectors) {
      const plaintext = openBuiltinCiphertext(zeroKey, utf8(vector.ciphertext), Buffer.alloc(0));
      assert.equal(plaintext?.toString('base64'), 'AAAAAAAAAAAAAAAAAAAAAA==', `vector #${vector.index}`);
    }
    for (const vector of kesJsonMustFail) {
      assert.equal(openBuiltinCiphertext(zeroKey, utf8(vector.ciphertext), Buffer.alloc(0)), undefined, `#${vector.index} ${vector.why}`);
    }
  });
});

describe('BuiltinKms', () => {
  const masterKey = b64('eEm+JI9/q4JhH8QwKvf3LKo4DEBl6QbfvAl1CAbMIv8=');
  const kms = BuiltinKms.fromMasterKey('my-key', masterKey);

  test('generate/decrypt round trip with {} and {"bucket":"bucket/object"}', async () => {
    for (const context of [emptyContext, bucketContext]) {
      const dataKey = await kms.generateKey('my-key', context);
      assert.equal(dataKey.plaintext.length, 32);
      assert.equal(dataKey.ciphertext.length, 76);
      const plaintext = await kms.decrypt('my-key', dataKey.ciphertext, context);
      assert.ok(plaintext.equals(dataKey.plaintext));
    }
    const first = await kms.generateKey('my-key', emptyContext);
    const second = await kms.generateKey('my-key', emptyContext);
    assert.ok(!first.plaintext.equals(second.plaintext), 'every data key is fresh');
    assert.ok(!first.ciphertext.subarray(48).equals(second.ciphertext.subarray(48)), 'fresh iv and nonce');
  });

  test('independent check of the 76-byte layout: noble AES-GCM with key HMAC-SHA256(master, iv)', async () => {
    const dataKey = await kms.generateKey('my-key', bucketContext);
    const sealed = dataKey.ciphertext.subarray(0, 48);
    const iv = dataKey.ciphertext.subarray(48, 64);
    const nonce = dataKey.ciphertext.subarray(64, 76);
    const sealingKey = createHmac('sha256', masterKey).update(iv).digest();
    const plaintext = gcm(sealingKey, nonce, bucketContext).decrypt(sealed);
    assert.ok(Buffer.from(plaintext).equals(dataKey.plaintext));
    assert.throws(() => gcm(sealingKey, nonce, emptyContext).decrypt(sealed));
  });

  test('wrong context, flipped bytes, truncation → DecryptionFailed', async () => {
    const dataKey = await kms.generateKey('my-key', bucketContext);
    await rejectsWithKind(kms.decrypt('my-key', dataKey.ciphertext, emptyContext), 'DecryptionFailed');
    await rejectsWithKind(kms.decrypt('my-key', dataKey.ciphertext, utf8('{"bucket":"bucket/object2"}')), 'DecryptionFailed');
    for (let position = 0; position < dataKey.ciphertext.length; position++) {
      const tampered = Buffer.from(dataKey.ciphertext);
      tampered[position]! ^= 0x01;
      await rejectsWithKind(kms.decrypt('my-key', tampered, bucketContext), 'DecryptionFailed');
    }
    for (const length of [0, 1, 27, 43, 44, 75]) {
      await rejectsWithKind(kms.decrypt('my-key', dataKey.ciphertext.subarray(0, length), bucketContext), 'DecryptionFailed');
    }
    await rejectsWithKind(kms.decrypt('my-key', Buffer.alloc(5000), bucketContext), 'DecryptionFailed');
    // Another master key under the same name cannot open it.
    const other = BuiltinKms.fromMasterKey('my-key', Buffer.alloc(32, 7));
    await rejectsWithKind(other.decrypt('my-key', dataKey.ciphertext, bucketContext), 'DecryptionFailed');
  });

  test('other key names → KeyNotFound; createKey → KeyExists / NotSupported; describe; status', async () => {
    await rejectsWithKind(kms.generateKey('other', emptyContext), 'KeyNotFound');
    await rejectsWithKind(kms.generateKey('', emptyContext), 'KeyNotFound');
    const dataKey = await kms.generateKey('my-key', emptyContext);
    await rejectsWithKind(kms.decrypt('MY-KEY', dataKey.ciphertext, emptyContext), 'KeyNotFound');
    await rejectsWithKind(kms.describeKey('other'), 'KeyNotFound');
    assert.deepEqual(await kms.describeKey('my-key'), { name: 'my-key' });
    await rejectsWithKind(kms.createKey('my-key'), 'KeyExists');
    await rejectsWithKind(kms.createKey('other'), 'NotSupported');
    assert.deepEqual(await kms.status(), { name: 'builtin', defaultKeyName: 'my-key', endpoints: { '127.0.0.1': 'online' } });
  });

  test('an absent or non-JSON context is a caller bug → InvalidArgument', async () => {
    await rejectsWithKind(kms.generateKey('my-key', Buffer.alloc(0)), 'InvalidArgument');
    await rejectsWithKind(kms.generateKey('my-key', utf8('bucket/object')), 'InvalidArgument');
    const dataKey = await kms.generateKey('my-key', emptyContext);
    await rejectsWithKind(kms.decrypt('my-key', dataKey.ciphertext, Buffer.alloc(0)), 'InvalidArgument');
  });

  test('close wipes the key; later calls → Unavailable', async () => {
    const closing = BuiltinKms.fromMasterKey('k', Buffer.alloc(32, 1));
    const dataKey = await closing.generateKey('k', emptyContext);
    await closing.close();
    await rejectsWithKind(closing.generateKey('k', emptyContext), 'Unavailable');
    await rejectsWithKind(closing.decrypt('k', dataKey.ciphertext, emptyContext), 'Unavailable');
    await rejectsWithKind(closing.status(), 'Unavailable');
    await closing.close(); // idempotent
  });

  test('errors never contain the master key', async () => {
    const secretBase64 = masterKey.toString('base64');
    const errors: unknown[] = [];
    for (const call of [
      () => kms.generateKey('other', emptyContext),
      () => kms.decrypt('my-key', Buffer.alloc(76), emptyContext),
      () => kms.createKey('x'),
    ]) {
      await call().catch((error: unknown) => errors.push(error));
    }
    assert.equal(errors.length, 3);
    for (const error of errors) {
      const text = `${String(error)} ${(error as Error).stack ?? ''}`;
      assert.ok(!text.includes(secretBase64) && !text.includes(masterKey.toString('hex')));
    }
  });
});

describe('BuiltinKms.fromSecretKey', () => {
  const secretPart = 'eEm+JI9/q4JhH8QwKvf3LKo4DEBl6QbfvAl1CAbMIv8=';

  test('accepts name:base64(32 bytes), tolerating a trailing newline', async () => {
    const kms = BuiltinKms.fromSecretKey(`my-key:${secretPart}\n`);
    assert.equal(kms.defaultKeyName, 'my-key');
    const plaintext = await kms.decrypt('my-key', utf8(minioLegacyVectors[0].ciphertext), emptyContext);
    assert.equal(plaintext.toString('base64'), minioLegacyVectors[0].plaintext);
  });

  const bad: readonly { readonly why: string; readonly value: string; readonly message: RegExp }[] = [
    { why: 'no colon', value: secretPart, message: /no ':'/ },
    { why: 'empty name', value: `:${secretPart}`, message: /key name/ },
    { why: 'bad base64', value: `my-key:${secretPart.replace('+', '*')}`, message: /base64/ },
    { why: 'missing padding', value: `my-key:${secretPart.slice(0, -1)}`, message: /base64/ },
    { why: 'url-safe alphabet', value: `my-key:${secretPart.replace('+', '-').replace('/', '_')}`, message: /base64/ },
    { why: '31 bytes', value: `my-key:${Buffer.alloc(31, 0xab).toString('base64')}`, message: /31 bytes/ },
    { why: '33 bytes', value: `my-key:${Buffer.alloc(33, 0xab).toString('base64')}`, message: /33 bytes/ },
    { why: 'empty', value: '', message: /no ':'/ },
    { why: 'whitespace in name', value: `my key:${secretPart}`, message: /key name/ },
  ];
  for (const { why, value, message } of bad) {
    test(`rejects: ${why}, without echoing the secret`, () => {
      assert.throws(
        () => BuiltinKms.fromSecretKey(value),
        (error: unknown) => {
          assert.ok(error instanceof Error);
          assert.match(error.message, message);
          assert.match(error.message, /MINIO_KMS_SECRET_KEY/);
          const secret = value.includes(':') ? value.slice(value.indexOf(':') + 1) : value;
          if (secret.length > 0) assert.ok(!error.message.includes(secret), `message echoes the secret: ${error.message}`);
          return true;
        },
      );
    });
  }
});

describe('BuiltinKms.fromDevKeyFile', () => {
  let dataDir = '';
  before(async () => {
    dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'coffer-kms-'));
  });
  after(async () => {
    await fs.rm(dataDir, { recursive: true, force: true });
  });

  test('creates a 0600 file once, then reuses the same key', async () => {
    const first = await BuiltinKms.fromDevKeyFile(dataDir);
    assert.equal(first.created, true);
    assert.equal(first.path, path.join(dataDir, '.coffer.sys', 'kms', 'dev-secret.key'));
    assert.equal(first.kms.defaultKeyName, 'coffer-default-key');
    const stat = await fs.stat(first.path);
    assert.equal(stat.mode & 0o777, 0o600);
    assert.match(await fs.readFile(first.path, 'utf8'), /^coffer-default-key:[A-Za-z0-9+/]{43}=\n$/);
    assert.deepEqual(await fs.readdir(path.dirname(first.path)), ['dev-secret.key'], 'no temp file left behind');

    const second = await BuiltinKms.fromDevKeyFile(dataDir);
    assert.equal(second.created, false);
    assert.equal(second.path, first.path);
    const dataKey = await first.kms.generateKey('coffer-default-key', bucketContext);
    const plaintext = await second.kms.decrypt('coffer-default-key', dataKey.ciphertext, bucketContext);
    assert.ok(plaintext.equals(dataKey.plaintext), 'same master key across loads');
  });

  test('two concurrent first starts agree on one key', async () => {
    const freshDir = path.join(dataDir, 'race');
    await fs.mkdir(freshDir);
    const results = await Promise.all([BuiltinKms.fromDevKeyFile(freshDir), BuiltinKms.fromDevKeyFile(freshDir)]);
    assert.equal(results.filter((result) => result.created).length, 1);
    const dataKey = await results[0].kms.generateKey('coffer-default-key', emptyContext);
    const plaintext = await results[1].kms.decrypt('coffer-default-key', dataKey.ciphertext, emptyContext);
    assert.ok(plaintext.equals(dataKey.plaintext));
  });

  test('a corrupt key file is an error naming the file, not its content', async () => {
    const corruptDir = path.join(dataDir, 'corrupt');
    await fs.mkdir(path.join(corruptDir, '.coffer.sys', 'kms'), { recursive: true });
    const filePath = path.join(corruptDir, '.coffer.sys', 'kms', 'dev-secret.key');
    await fs.writeFile(filePath, 'coffer-default-key:c2VjcmV0LXRvby1zaG9ydA==\n', { mode: 0o600 });
    await assert.rejects(BuiltinKms.fromDevKeyFile(corruptDir), (error: unknown) => {
      assert.ok(error instanceof Error);
      assert.ok(error.message.includes(filePath));
      assert.ok(!error.message.includes('c2VjcmV0LXRvby1zaG9ydA=='));
      return true;
    });
  });
});

describe('kmsFromEnv', () => {
  const secretKey = 'my-key:eEm+JI9/q4JhH8QwKvf3LKo4DEBl6QbfvAl1CAbMIv8=';
  const kesBase = { MINIO_KMS_KES_ENDPOINT: 'https://kes.example.net:7373', MINIO_KMS_KES_KEY_NAME: 'minio-key' };
  let tmpDir = '';
  before(async () => {
    tmpDir = await fs.mkdtemp(path.join(os.tmpdir(), 'coffer-kms-env-'));
  });
  after(async () => {
    await fs.rm(tmpDir, { recursive: true, force: true });
  });

  test('nothing configured → none', () => {
    assert.deepEqual(kmsFromEnv({}), { kind: 'none' });
    assert.deepEqual(kmsFromEnv({ MINIO_KMS_SECRET_KEY: '' }), { kind: 'none' });
    assert.deepEqual(kmsFromEnv({ MINIO_KMS_SECRET_KEY_FILE: path.join(tmpDir, 'missing') }), { kind: 'none' });
    assert.deepEqual(kmsFromEnv({ MINIO_KMS_SECRET_KEY_FILE: '' }), { kind: 'none' });
  });

  test('MINIO_KMS_SECRET_KEY → builtin', async () => {
    const choice = kmsFromEnv({ MINIO_KMS_SECRET_KEY: secretKey });
    assert.equal(choice.kind, 'builtin');
    if (choice.kind !== 'builtin') return;
    assert.equal(choice.kms.defaultKeyName, 'my-key');
    const plaintext = await choice.kms.decrypt('my-key', utf8(minioLegacyVectors[1].ciphertext), utf8('{"key":"value"}'));
    assert.equal(plaintext.toString('base64'), minioLegacyVectors[1].plaintext);
  });

  test('MINIO_KMS_SECRET_KEY_FILE → builtin; both variables → Error', async () => {
    const filePath = path.join(tmpDir, 'kms.key');
    await fs.writeFile(filePath, `${secretKey}\n`, { mode: 0o600 });
    const choice = kmsFromEnv({ MINIO_KMS_SECRET_KEY_FILE: filePath });
    assert.equal(choice.kind, 'builtin');
    if (choice.kind === 'builtin') assert.equal(choice.kms.defaultKeyName, 'my-key');
    assert.throws(() => kmsFromEnv({ MINIO_KMS_SECRET_KEY: secretKey, MINIO_KMS_SECRET_KEY_FILE: filePath }), /are present/);
  });

  test('a bad secret key is an Error that does not echo it', () => {
    assert.throws(
      () => kmsFromEnv({ MINIO_KMS_SECRET_KEY: 'my-key:c2VjcmV0' }),
      (error: unknown) => error instanceof Error && /MINIO_KMS_SECRET_KEY/.test(error.message) && !error.message.includes('c2VjcmV0'),
    );
  });

  test('KES with an API key', () => {
    const choice = kmsFromEnv({ ...kesBase, MINIO_KMS_KES_API_KEY: 'kes:v1:ACQpoGqx3rHHjT938Hfu5hVVQJHZWSqVI2Xp1KlYxFVw', MINIO_KMS_KES_CAPATH: '/etc/kes/ca.pem' });
    assert.deepEqual(choice, {
      kind: 'kes',
      config: {
        endpoints: ['https://kes.example.net:7373'],
        keyName: 'minio-key',
        apiKey: 'kes:v1:ACQpoGqx3rHHjT938Hfu5hVVQJHZWSqVI2Xp1KlYxFVw',
        caPath: '/etc/kes/ca.pem',
      },
    });
  });

  test('KES with mTLS files, several endpoints and ellipses', () => {
    const choice = kmsFromEnv({
      MINIO_KMS_KES_ENDPOINT: ' https://kes{1...3}.example.net:7373 , https://127.0.0.1:7373/ ',
      MINIO_KMS_KES_KEY_NAME: 'minio-key',
      MINIO_KMS_KES_CERT_FILE: '/certs/client.crt',
      MINIO_KMS_KES_KEY_FILE: '/certs/client.key',
    });
    assert.deepEqual(choice, {
      kind: 'kes',
      config: {
        endpoints: [
          'https://kes1.example.net:7373',
          'https://kes2.example.net:7373',
          'https://kes3.example.net:7373',
          'https://127.0.0.1:7373',
        ],
        keyName: 'minio-key',
        certFile: '/certs/client.crt',
        keyFile: '/certs/client.key',
      },
    });
    assert.deepEqual(expandEndpointEllipses('https://kes{08...10}.net'), ['https://kes08.net', 'https://kes09.net', 'https://kes10.net']);
    assert.deepEqual(expandEndpointEllipses('https://r{1...2}n{1...2}'), ['https://r1n1', 'https://r1n2', 'https://r2n1', 'https://r2n2']);
    assert.throws(() => expandEndpointEllipses('https://kes{3...1}.net'), /bigger than end/);
    assert.throws(() => expandEndpointEllipses('https://kes{1..3}.net'), /ellipsis/);
    assert.throws(() => expandEndpointEllipses('https://kes{1...100000}.net'), /more than/);
  });

  test('incomplete or mixed KES configurations → Error', () => {
    const cases: readonly [NodeJS.ProcessEnv, RegExp][] = [
      [{ MINIO_KMS_KES_KEY_NAME: 'k', MINIO_KMS_KES_API_KEY: 'kes:v1:x' }, /missing 'MINIO_KMS_KES_ENDPOINT'/],
      [{ MINIO_KMS_KES_ENDPOINT: 'https://kes:7373', MINIO_KMS_KES_API_KEY: 'kes:v1:x' }, /missing 'MINIO_KMS_KES_KEY_NAME'/],
      [{ ...kesBase }, /missing authentication method/],
      [{ ...kesBase, MINIO_KMS_KES_CERT_FILE: '/c' }, /missing 'MINIO_KMS_KES_KEY_FILE'/],
      [{ ...kesBase, MINIO_KMS_KES_KEY_FILE: '/k' }, /missing 'MINIO_KMS_KES_CERT_FILE'/],
      [{ ...kesBase, MINIO_KMS_KES_API_KEY: 'kes:v1:x', MINIO_KMS_KES_KEY_FILE: '/k', MINIO_KMS_KES_CERT_FILE: '/c' }, /client certificate is present/],
      [{ ...kesBase, MINIO_KMS_KES_ENDPOINT: '', MINIO_KMS_KES_API_KEY: 'kes:v1:x' }, /no KES server endpoint/],
      [{ ...kesBase, MINIO_KMS_KES_ENDPOINT: 'kes.example.net:7373', MINIO_KMS_KES_API_KEY: 'kes:v1:x' }, /scheme must be https|expected a URL/],
      [{ ...kesBase, MINIO_KMS_KES_KEY_NAME: 'bad name', MINIO_KMS_KES_API_KEY: 'kes:v1:x' }, /invalid MINIO_KMS_KES_KEY_NAME/],
      [{ ...kesBase, MINIO_KMS_KES_API_KEY: 'not-an-api-key' }, /expected an API key/],
      [{ ...kesBase, MINIO_KMS_KES_API_KEY: 'kes:v1:x', MINIO_KMS_SECRET_KEY: secretKey }, /KES and static KMS key/],
      [{ MINIO_KMS_SERVER: 'https://kms:7373' }, /not supported/],
    ];
    for (const [env, message] of cases) {
      assert.throws(() => kmsFromEnv(env), message, JSON.stringify(env));
    }
    // The API key never appears in an error.
    assert.throws(
      () => kmsFromEnv({ ...kesBase, MINIO_KMS_KES_API_KEY: 'secret-api-key-value' }),
      (error: unknown) => error instanceof Error && !error.message.includes('secret-api-key-value'),
    );
  });

  test('autoEncryption: MinIO bool semantics, requires a KMS', () => {
    assert.equal(autoEncryption({}), false);
    assert.equal(autoEncryption({ MINIO_KMS_AUTO_ENCRYPTION: 'off', MINIO_KMS_SECRET_KEY: secretKey }), false);
    assert.equal(autoEncryption({ MINIO_KMS_AUTO_ENCRYPTION: 'off' }), false);
    for (const on of ['on', 'On', 'ON', 'true', '1', 'enabled', 'ENABLED']) {
      assert.equal(autoEncryption({ MINIO_KMS_AUTO_ENCRYPTION: on, MINIO_KMS_SECRET_KEY: secretKey }), true, on);
    }
    assert.equal(autoEncryption({ MINIO_KMS_AUTO_ENCRYPTION: 'on', ...kesBase, MINIO_KMS_KES_API_KEY: 'kes:v1:x' }), true);
    assert.throws(() => autoEncryption({ MINIO_KMS_AUTO_ENCRYPTION: 'on' }), /requires a valid KMS configuration/);
    assert.throws(() => autoEncryption({ MINIO_KMS_AUTO_ENCRYPTION: 'yes', MINIO_KMS_SECRET_KEY: secretKey }), /expected on or off/);
  });
});
