// Structured logs: one JSON line per request at debug level whose requestId matches x-amz-request-id, and
// no secret anywhere in what the server wrote: not the root secret, not an SSE-C key, not the KMS master
// key, not a request signature.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { rawRequest, signRequest } from './helpers/raw.ts';
import { accessKey, removeDir, secretKey, startServer } from './helpers/server.ts';

describe('logs', () => {
  it('log every request as JSON with its request id and never a key, secret or signature', async () => {
    const server = await startServer({ env: { COFFER_LOG_LEVEL: 'debug', COFFER_SSE_C_ALLOW_HTTP: 'on' } });
    const s3 = new S3Client({ endpoint: server.endpoint, region: 'us-east-1', forcePathStyle: true, maxAttempts: 1, credentials: { accessKeyId: accessKey, secretAccessKey: secretKey } });
    const customerKey = randomBytes(32);
    const ssec = {
      SSECustomerAlgorithm: 'AES256',
      SSECustomerKey: customerKey.toString('base64'),
      SSECustomerKeyMD5: createHash('md5').update(customerKey).digest('base64'),
    };
    const signatures: string[] = [];
    let requestId = '';
    try {
      await s3.send(new CreateBucketCommand({ Bucket: 'logged' }));
      await s3.send(new PutObjectCommand({ Bucket: 'logged', Key: 'c', Body: 'secret data', ...ssec }));
      await s3.send(new GetObjectCommand({ Bucket: 'logged', Key: 'c', ...ssec }));
      await s3.send(new PutObjectCommand({ Bucket: 'logged', Key: 's3', Body: 'x', ServerSideEncryption: 'AES256' }));
      await assert.rejects(s3.send(new GetObjectCommand({ Bucket: 'logged', Key: 'c', SSECustomerAlgorithm: 'AES256', SSECustomerKey: randomBytes(32).toString('base64') })));
      const bad = await rawRequest(server.endpoint, { method: 'GET', path: '/logged/s3', secret: 'wrong-secret-value' });
      assert.equal(bad.status, 403);
      const good = await rawRequest(server.endpoint, { method: 'GET', path: '/logged/s3' });
      requestId = String(good.headers['x-amz-request-id']);
      const signed = await signRequest(server.endpoint, { method: 'GET', path: '/logged/s3' });
      signatures.push(/Signature=([0-9a-f]+)/.exec(signed.headers.authorization!)![1]!);
    } finally {
      s3.destroy();
      await server.stop();
    }
    const log = server.stderr();
    const masterKeyFile = await readFile(path.join(server.dataDir, '.coffer.sys', 'kms', 'dev-secret.key'), 'utf8');
    const masterKey = masterKeyFile.trim().split(':')[1]!;
    try {
      const requests = log.split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as Record<string, unknown>).filter((entry) => entry.message === 'request');
      assert.ok(requests.length >= 7, `request lines: ${requests.length}`);
      const matching = requests.find((entry) => entry.requestId === requestId);
      assert.ok(matching, 'the x-amz-request-id of a response appears in the log');
      assert.equal(matching.operation, 'GetObject');
      for (const [what, secret] of [
        ['root secret', secretKey],
        ['SSE-C key (base64)', ssec.SSECustomerKey],
        ['SSE-C key (hex)', customerKey.toString('hex')],
        ['KMS master key (base64)', masterKey],
        ['KMS master key (hex)', Buffer.from(masterKey, 'base64').toString('hex')],
        ['wrong secret', 'wrong-secret-value'],
        ...signatures.map((signature) => ['a request signature', signature] as const),
      ] as const) {
        assert.ok(!log.includes(secret), `${what} found in the server log`);
      }
    } finally {
      await removeDir(server.dataDir);
    }
  });
});
