// Server-side encryption end to end over TLS with @aws-sdk/client-s3: SSE-S3, SSE-KMS and SSE-C for every
// size class, ranges across package and part boundaries, bucket default encryption, copies between
// encryption types, nothing in the clear on disk, tamper detection, and the SSE error cases.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import https from 'node:https';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  CopyObjectCommand,
  CreateBucketCommand,
  DeleteBucketEncryptionCommand,
  GetBucketEncryptionCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutBucketEncryptionCommand,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
  type GetObjectCommandInput,
  type PutObjectCommandInput,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { signRequest } from './helpers/raw.ts';
import { accessKey, makeCertificate, makeTempDir, removeDir, secretKey, startServer, type TestServer } from './helpers/server.ts';

const MiB = 1024 * 1024;
const kmsKeyName = 'coffer-test-key';
const kmsSecret = `${kmsKeyName}:${randomBytes(32).toString('base64')}`;

function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

function customerKey(): { SSECustomerAlgorithm: 'AES256'; SSECustomerKey: string; SSECustomerKeyMD5: string } {
  const key = randomBytes(32);
  return { SSECustomerAlgorithm: 'AES256', SSECustomerKey: key.toString('base64'), SSECustomerKeyMD5: createHash('md5').update(key).digest('base64') };
}

async function expectCode(promise: Promise<unknown>, code: string, status: number): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof S3ServiceException, `expected an S3 error, got ${String(error)}`);
    assert.equal(error.$metadata.httpStatusCode, status, `${error.name}: ${error.message}`);
    if (code !== '') assert.equal(error.name, code);
    return true;
  });
}

async function allFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await allFiles(full)));
    else if (entry.isFile()) out.push(full);
  }
  return out;
}

describe('server-side encryption over TLS', () => {
  let server: TestServer;
  let s3: S3Client;
  let certsDir: string;
  const bucket = 'sse';
  const ssec = customerKey();

  let ca: Buffer;

  async function rawHttps(method: string, urlPath: string, headers: Record<string, string>, body: Buffer): Promise<{ status: number; body: string }> {
    const signed = await signRequest(server.endpoint, { method, path: urlPath, headers, body });
    const url = new URL(server.endpoint);
    return new Promise((resolve, reject) => {
      const req = https.request({ host: url.hostname, port: url.port, method, path: signed.path, headers: signed.headers, ca }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  before(async () => {
    certsDir = await makeTempDir('certs');
    const { certFile } = await makeCertificate(certsDir);
    server = await startServer({ certsDir, env: { MINIO_KMS_SECRET_KEY: kmsSecret } });
    assert.match(server.endpoint, /^https:/);
    ca = await readFile(certFile);
    s3 = new S3Client({
      endpoint: server.endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: accessKey, secretAccessKey: secretKey },
      requestHandler: new NodeHttpHandler({ httpsAgent: new https.Agent({ ca, keepAlive: true }) }),
    });
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  });

  after(async () => {
    s3.destroy();
    await server.stop();
    await removeDir(server.dataDir);
    await removeDir(certsDir);
  });

  const modes = {
    'SSE-S3': { put: { ServerSideEncryption: 'AES256' }, get: {} },
    'SSE-KMS': { put: { ServerSideEncryption: 'aws:kms', SSEKMSKeyId: kmsKeyName }, get: {} },
    'SSE-C': { put: ssec, get: ssec },
  } as const;

  for (const [mode, params] of Object.entries(modes)) {
    it(`${mode}: round-trips empty, 1 B, 64 KiB, 64 KiB+1 and 20 MiB multipart objects`, async () => {
      for (const sizeBytes of [0, 1, 65536, 65537]) {
        const data = randomBytes(sizeBytes);
        const key = `${mode}/${sizeBytes}`;
        const put = await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: data, ...params.put } as PutObjectCommandInput));
        const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key, ...params.get }));
        const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key, ...params.get } as GetObjectCommandInput));
        assert.equal(sha256(Buffer.from(await got.Body!.transformToByteArray())), sha256(data), key);
        assert.equal(head.ContentLength, sizeBytes, 'HEAD reports the plaintext size');
        const md5 = `"${createHash('md5').update(data).digest('hex')}"`;
        if (mode === 'SSE-S3') {
          assert.equal(put.ServerSideEncryption, 'AES256');
          assert.equal(head.ServerSideEncryption, 'AES256');
          assert.equal(head.ETag, md5, 'SSE-S3 shows the MD5 ETag');
        } else if (mode === 'SSE-KMS') {
          assert.equal(head.ServerSideEncryption, 'aws:kms');
          assert.equal(head.SSEKMSKeyId, `arn:aws:kms:${kmsKeyName}`);
          assert.notEqual(head.ETag, md5, 'SSE-KMS ETags are not the MD5');
        } else {
          assert.equal(head.SSECustomerAlgorithm, 'AES256');
          assert.equal(head.SSECustomerKeyMD5, ssec.SSECustomerKeyMD5);
          assert.notEqual(head.ETag, md5, 'SSE-C ETags are not the MD5');
        }
      }
      const big = randomBytes(20 * MiB + 3);
      const key = `${mode}/big`;
      await new Upload({ client: s3, params: { Bucket: bucket, Key: key, Body: big, ...params.put } as PutObjectCommandInput, partSize: 5 * MiB, queueSize: 2 }).done();
      const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key, ...params.get } as GetObjectCommandInput));
      assert.equal(sha256(Buffer.from(await got.Body!.transformToByteArray())), sha256(big));
      // ranges at package (64 KiB) and part (5 MiB) boundaries
      for (const [start, end] of [[65535, 65536], [5 * MiB - 10, 5 * MiB + 10], [0, 0], [big.length - 65537, big.length - 1], [10 * MiB - 65536, 15 * MiB + 65536]] as const) {
        const ranged = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key, Range: `bytes=${start}-${end}`, ...params.get } as GetObjectCommandInput));
        assert.deepEqual(Buffer.from(await ranged.Body!.transformToByteArray()), big.subarray(start, end + 1), `${mode} bytes=${start}-${end}`);
      }
    });
  }

  it('stores nothing in the clear', async () => {
    const marker = Buffer.from('COFFER-PLAINTEXT-MARKER-'.repeat(5000));
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'marker/s3', Body: marker, ServerSideEncryption: 'AES256' }));
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'marker/small', Body: marker.subarray(0, 100), ServerSideEncryption: 'AES256' }));
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'marker/c', Body: marker, ...ssec }));
    await new Upload({ client: s3, params: { Bucket: bucket, Key: 'marker/mp', Body: Buffer.concat([marker, randomBytes(6 * MiB)]), ServerSideEncryption: 'AES256' }, partSize: 5 * MiB }).done();
    const needle = Buffer.from('COFFER-PLAINTEXT-MARKER-');
    for (const file of await allFiles(server.dataDir)) {
      const bytes = await readFile(file);
      assert.equal(bytes.indexOf(needle), -1, `plaintext found in ${file}`);
      assert.equal(bytes.indexOf(Buffer.from(ssec.SSECustomerKey, 'base64')), -1, `SSE-C key found in ${file}`);
    }
    assert.ok(!server.stderr().includes(ssec.SSECustomerKey), 'the SSE-C key never reaches the logs');
  });

  it('detects tampering: a flipped ciphertext byte fails the GET instead of returning wrong bytes', async () => {
    const data = randomBytes(300_000);
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'tamper/obj', Body: data, ServerSideEncryption: 'AES256' }));
    const objectDir = path.join(server.dataDir, bucket, 'tamper', 'obj');
    const dataDir = (await readdir(objectDir)).find((name) => name.endsWith('.data'))!;
    const partFile = path.join(objectDir, dataDir, 'part.1');
    const stored = await readFile(partFile);
    stored[200_000] ^= 0x01;
    await writeFile(partFile, stored);
    let received: Buffer | undefined;
    try {
      const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'tamper/obj' }));
      received = Buffer.from(await got.Body!.transformToByteArray());
    } catch {
      received = undefined; // the expected outcome: an error (status or cut connection)
    }
    assert.equal(received, undefined, 'a tampered object must not be delivered');
    // the untouched first packages still serve a range that does not cover the damage
    const head = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'tamper/obj', Range: 'bytes=0-99' }));
    assert.deepEqual(Buffer.from(await head.Body!.transformToByteArray()), data.subarray(0, 100));
  });

  it('answers SSE mistakes with the right errors and writes nothing', async () => {
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'errors/c', Body: 'secret', ...ssec }));
    await expectCode(s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'errors/c', ...customerKey() })), 'AccessDenied', 403);
    await expectCode(s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'errors/c' })), 'InvalidRequest', 400);
    await expectCode(s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'errors/c', ...customerKey() })), '', 403);
    // The SDK recomputes the key MD5 itself, so a mismatched one is sent by hand.
    const other = customerKey();
    const badMd5 = await rawHttps('PUT', `/${bucket}/errors/none1`, {
      'x-amz-server-side-encryption-customer-algorithm': 'AES256',
      'x-amz-server-side-encryption-customer-key': other.SSECustomerKey,
      'x-amz-server-side-encryption-customer-key-md5': ssec.SSECustomerKeyMD5,
    }, Buffer.from('x'));
    assert.equal(badMd5.status, 400);
    assert.match(badMd5.body, /<Code>InvalidArgument<\/Code>/);
    await expectCode(
      s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'errors/none2', Body: 'x', ServerSideEncryption: 'aws:kms', SSEKMSKeyId: 'no-such-key' })),
      'KMS.NotFoundException',
      400,
    );
    await expectCode(s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'errors/none3', Body: 'x', ServerSideEncryption: 'AES256', ...ssec })), 'InvalidArgument', 400);
    await expectCode(s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'SSE-S3/1', ...ssec })), 'InvalidRequest', 400);
    for (const key of ['errors/none1', 'errors/none2', 'errors/none3']) {
      await expectCode(s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key })), '', 404);
    }
  });

  it('applies bucket default encryption and reports it', async () => {
    const defaults = 'defaults';
    await s3.send(new CreateBucketCommand({ Bucket: defaults }));
    await expectCode(s3.send(new GetBucketEncryptionCommand({ Bucket: defaults })), 'ServerSideEncryptionConfigurationNotFoundError', 404);
    await s3.send(new PutBucketEncryptionCommand({ Bucket: defaults, ServerSideEncryptionConfiguration: { Rules: [{ ApplyServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }] } }));
    const config = await s3.send(new GetBucketEncryptionCommand({ Bucket: defaults }));
    assert.equal(config.ServerSideEncryptionConfiguration?.Rules?.[0]?.ApplyServerSideEncryptionByDefault?.SSEAlgorithm, 'AES256');
    await s3.send(new PutObjectCommand({ Bucket: defaults, Key: 'plain-request', Body: 'x' }));
    assert.equal((await s3.send(new HeadObjectCommand({ Bucket: defaults, Key: 'plain-request' }))).ServerSideEncryption, 'AES256');
    // explicit headers win over the default
    await s3.send(new PutObjectCommand({ Bucket: defaults, Key: 'with-c', Body: 'x', ...ssec }));
    assert.equal((await s3.send(new HeadObjectCommand({ Bucket: defaults, Key: 'with-c', ...ssec }))).SSECustomerAlgorithm, 'AES256');
    await s3.send(new PutBucketEncryptionCommand({ Bucket: defaults, ServerSideEncryptionConfiguration: { Rules: [{ ApplyServerSideEncryptionByDefault: { SSEAlgorithm: 'aws:kms', KMSMasterKeyID: kmsKeyName } }] } }));
    await s3.send(new PutObjectCommand({ Bucket: defaults, Key: 'kms-default', Body: 'x' }));
    const kmsHead = await s3.send(new HeadObjectCommand({ Bucket: defaults, Key: 'kms-default' }));
    assert.equal(kmsHead.ServerSideEncryption, 'aws:kms');
    assert.equal(kmsHead.SSEKMSKeyId, `arn:aws:kms:${kmsKeyName}`);
    await expectCode(
      s3.send(new PutBucketEncryptionCommand({ Bucket: defaults, ServerSideEncryptionConfiguration: { Rules: [{ ApplyServerSideEncryptionByDefault: { SSEAlgorithm: 'aws:kms', KMSMasterKeyID: 'missing-key' } }] } })),
      'KMS.NotFoundException',
      400,
    );
    await s3.send(new DeleteBucketEncryptionCommand({ Bucket: defaults }));
    await s3.send(new PutObjectCommand({ Bucket: defaults, Key: 'after-delete', Body: 'x' }));
    assert.equal((await s3.send(new HeadObjectCommand({ Bucket: defaults, Key: 'after-delete' }))).ServerSideEncryption, undefined);
  });

  it('copies between encryption types and re-keys an SSE-C object in place', async () => {
    const data = randomBytes(200_000);
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'copy/src', Body: data, ...ssec }));
    await s3.send(
      new CopyObjectCommand({
        Bucket: bucket,
        Key: 'copy/as-s3',
        CopySource: `${bucket}/copy/src`,
        CopySourceSSECustomerAlgorithm: 'AES256',
        CopySourceSSECustomerKey: ssec.SSECustomerKey,
        CopySourceSSECustomerKeyMD5: ssec.SSECustomerKeyMD5,
        ServerSideEncryption: 'AES256',
      }),
    );
    const asS3 = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'copy/as-s3' }));
    assert.equal(asS3.ServerSideEncryption, 'AES256');
    assert.deepEqual(Buffer.from(await asS3.Body!.transformToByteArray()), data);
    await expectCode(s3.send(new CopyObjectCommand({ Bucket: bucket, Key: 'copy/x', CopySource: `${bucket}/copy/src` })), 'InvalidRequest', 400);

    const newKey = customerKey();
    await s3.send(
      new CopyObjectCommand({
        Bucket: bucket,
        Key: 'copy/src',
        CopySource: `${bucket}/copy/src`,
        CopySourceSSECustomerAlgorithm: 'AES256',
        CopySourceSSECustomerKey: ssec.SSECustomerKey,
        CopySourceSSECustomerKeyMD5: ssec.SSECustomerKeyMD5,
        ...newKey,
      }),
    );
    await expectCode(s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'copy/src', ...ssec })), 'AccessDenied', 403);
    const rekeyed = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'copy/src', ...newKey }));
    assert.deepEqual(Buffer.from(await rekeyed.Body!.transformToByteArray()), data);
  });
});

describe('SSE-C over plain HTTP', () => {
  it('is refused with InvalidRequest and nothing is written', async () => {
    const server = await startServer();
    const s3 = new S3Client({ endpoint: server.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: accessKey, secretAccessKey: secretKey } });
    try {
      await s3.send(new CreateBucketCommand({ Bucket: 'plain' }));
      await expectCode(s3.send(new PutObjectCommand({ Bucket: 'plain', Key: 'k', Body: 'x', ...customerKey() })), 'InvalidRequest', 400);
      await expectCode(s3.send(new HeadObjectCommand({ Bucket: 'plain', Key: 'k' })), '', 404);
      // SSE-S3 works on the development key without any KMS configuration
      await s3.send(new PutObjectCommand({ Bucket: 'plain', Key: 's3', Body: 'y', ServerSideEncryption: 'AES256' }));
      const got = await s3.send(new GetObjectCommand({ Bucket: 'plain', Key: 's3' }));
      assert.equal(await got.Body!.transformToString(), 'y');
      assert.match(server.stderr(), /DEVELOPMENT key file/);
    } finally {
      s3.destroy();
      await server.stop();
      await removeDir(server.dataDir);
    }
  });
});

describe('bucket keys (COFFER_KMS_BUCKET_KEYS=on)', () => {
  it('share a KMS data key per bucket, and objects stay readable after they are turned off', async () => {
    const env = { MINIO_KMS_SECRET_KEY: kmsSecret, COFFER_KMS_BUCKET_KEYS: 'on' };
    const first = await startServer({ env });
    const client = (endpoint: string) =>
      new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: accessKey, secretAccessKey: secretKey } });
    const bodies = new Map<string, Buffer>();
    let s3 = client(first.endpoint);
    try {
      await s3.send(new CreateBucketCommand({ Bucket: 'bucket-keys' }));
      for (let i = 0; i < 20; i++) {
        const body = randomBytes(1000 + i);
        bodies.set(`o${i}`, body);
        await s3.send(new PutObjectCommand({ Bucket: 'bucket-keys', Key: `o${i}`, Body: body, ServerSideEncryption: i % 2 ? 'AES256' : 'aws:kms' }));
      }
    } finally {
      s3.destroy();
      await first.stop();
    }
    const second = await startServer({ dataDir: first.dataDir, env: { MINIO_KMS_SECRET_KEY: kmsSecret } });
    s3 = client(second.endpoint);
    try {
      for (const [key, body] of bodies) {
        const got = await s3.send(new GetObjectCommand({ Bucket: 'bucket-keys', Key: key }));
        assert.deepEqual(Buffer.from(await got.Body!.transformToByteArray()), body, key);
      }
    } finally {
      s3.destroy();
      await second.stop();
      await removeDir(first.dataDir);
    }
  });
});

describe('MINIO_KMS_AUTO_ENCRYPTION=on', () => {
  it('stores every object without SSE headers with SSE-S3, and explicit SSE-C still wins', async () => {
    const server = await startServer({ env: { MINIO_KMS_AUTO_ENCRYPTION: 'on', COFFER_SSE_C_ALLOW_HTTP: 'on' } });
    const s3 = new S3Client({ endpoint: server.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: accessKey, secretAccessKey: secretKey } });
    try {
      await s3.send(new CreateBucketCommand({ Bucket: 'auto-encrypted' }));
      await s3.send(new PutObjectCommand({ Bucket: 'auto-encrypted', Key: 'plain-request', Body: 'hello' }));
      const head = await s3.send(new HeadObjectCommand({ Bucket: 'auto-encrypted', Key: 'plain-request' }));
      assert.equal(head.ServerSideEncryption, 'AES256');
      const ssec = customerKey();
      await s3.send(new PutObjectCommand({ Bucket: 'auto-encrypted', Key: 'customer', Body: 'hi', ...ssec }));
      const customer = await s3.send(new HeadObjectCommand({ Bucket: 'auto-encrypted', Key: 'customer', ...ssec }));
      assert.equal(customer.SSECustomerAlgorithm, 'AES256');
      assert.equal(customer.ServerSideEncryption, undefined);
    } finally {
      s3.destroy();
      await server.stop();
      await removeDir(server.dataDir);
    }
  });
});
