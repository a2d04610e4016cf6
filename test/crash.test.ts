// kill -9 while 50 uploads run: after a restart every acknowledged object reads back byte-identical and no
// partial object is visible.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { CreateBucketCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { accessKey, removeDir, secretKey, startServer } from './helpers/server.ts';

function client(endpoint: string): S3Client {
  return new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, maxAttempts: 1, credentials: { accessKeyId: accessKey, secretAccessKey: secretKey } });
}

describe('crash safety', () => {
  it('keeps every acknowledged PUT and shows no torn object after kill -9', async () => {
    const first = await startServer();
    const bucket = 'crash';
    const s3 = client(first.endpoint);
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    const uploads = 50;
    const bodies = new Map<string, Buffer>();
    for (let i = 0; i < uploads; i++) {
      // sizes from inline-small to several MiB, so both the inline and the data-dir paths are cut
      const sizeBytes = i % 5 === 0 ? 1000 + i : (i % 7) * 700_000 + 50_000;
      bodies.set(`obj-${String(i).padStart(2, '0')}`, randomBytes(sizeBytes));
    }
    // Overwrites of already-acknowledged objects must leave the old or the new version, never a mix.
    const acknowledged = new Map<string, Buffer>();
    const uploadsDone = [...bodies].map(async ([key, body], index): Promise<boolean> => {
      await new Promise((resolve) => setTimeout(resolve, index * 15));
      try {
        await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
      } catch {
        return false; // cut by the crash: the object may or may not exist, but must never be torn
      }
      acknowledged.set(key, body);
      return true;
    });
    await new Promise((resolve) => setTimeout(resolve, 450));
    await first.kill();
    const results = await Promise.all(uploadsDone);
    s3.destroy();
    assert.ok(results.some((ok) => ok), 'some uploads finished before the crash');
    assert.ok(results.some((ok) => !ok), 'some uploads were cut by the crash');

    const second = await startServer({ dataDir: first.dataDir });
    const s3b = client(second.endpoint);
    try {
      for (const [key, body] of acknowledged) {
        const got = await s3b.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
        const bytes = Buffer.from(await got.Body!.transformToByteArray());
        assert.equal(createHash('sha256').update(bytes).digest('hex'), createHash('sha256').update(body).digest('hex'), key);
      }
      const listed = await s3b.send(new ListObjectsV2Command({ Bucket: bucket }));
      for (const object of listed.Contents ?? []) {
        const body = bodies.get(object.Key!);
        assert.ok(body, `unexpected key ${object.Key}`);
        assert.equal(object.Size, body.length, `listed ${object.Key} is whole`);
        const got = await s3b.send(new GetObjectCommand({ Bucket: bucket, Key: object.Key! }));
        assert.deepEqual(Buffer.from(await got.Body!.transformToByteArray()), body, `${object.Key} is whole`);
      }
      assert.ok((listed.Contents ?? []).length >= acknowledged.size);
      // the staging area was cleaned at restart
      const tmp = path.join(first.dataDir, '.coffer.sys', 'tmp');
      const leftovers = await readdir(tmp).catch(() => []);
      assert.equal(leftovers.length, 0, `tmp holds ${leftovers.join(', ')}`);
    } finally {
      s3b.destroy();
      await second.stop();
      await removeDir(first.dataDir);
    }
  });
});
