// The README's first command: `coffer server ./data` — a relative data folder, nothing configured (the
// development KMS key). Every write path below the drive (bucket dirs, staging, multipart, the key file)
// must work from a relative path; `npm start` once failed here with "mkdirsDurable: … is not below ./data".
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { accessKey, makeTempDir, removeDir, secretKey, startServer, type TestServer } from './helpers/server.ts';

describe('coffer server ./data (relative folder, development key)', () => {
  let root: string;
  let server: TestServer;
  let s3: S3Client;

  before(async () => {
    root = await makeTempDir('relative');
    server = await startServer({ cwd: root, driveArgs: ['./data'], dataDir: path.join(root, 'data'), certsDir: path.join(root, 'no-certs') });
    s3 = new S3Client({ endpoint: server.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: accessKey, secretAccessKey: secretKey } });
  });

  after(async () => {
    s3?.destroy();
    await server?.stop();
    await removeDir(root);
  });

  it('creates its development key in the relative folder and stores, encrypts and reads objects', async () => {
    assert.ok((await stat(path.join(root, 'data', '.coffer.sys', 'kms'))).isDirectory(), 'the dev key folder is below ./data');
    await s3.send(new CreateBucketCommand({ Bucket: 'rel' }));
    const small = randomBytes(1000);
    const large = randomBytes(3 * 1024 * 1024 + 7); // staged to a file with O_DIRECT
    await s3.send(new PutObjectCommand({ Bucket: 'rel', Key: 'small', Body: small }));
    await s3.send(new PutObjectCommand({ Bucket: 'rel', Key: 'dir/large', Body: large, ServerSideEncryption: 'AES256' }));
    await new Upload({ client: s3, params: { Bucket: 'rel', Key: 'multi', Body: Buffer.concat([large, large]) }, partSize: 5 * 1024 * 1024 }).done();
    for (const [key, expected] of [['small', small], ['dir/large', large], ['multi', Buffer.concat([large, large])]] as const) {
      const got = await s3.send(new GetObjectCommand({ Bucket: 'rel', Key: key }));
      assert.deepEqual(Buffer.from(await got.Body!.transformToByteArray()), expected, key);
    }
  });
});
