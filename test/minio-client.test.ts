// The `minio` npm client against a real server: the same scenario as the AWS SDK's.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Readable } from 'node:stream';
import * as Minio from 'minio';
import { accessKey, removeDir, secretKey, startServer, type TestServer } from './helpers/server.ts';

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

describe('minio client scenario', () => {
  let server: TestServer;
  let client: Minio.Client;
  const bucket = 'minio-scenario';

  before(async () => {
    server = await startServer();
    client = new Minio.Client({ endPoint: '127.0.0.1', port: server.port, useSSL: false, accessKey, secretKey, region: 'us-east-1' });
  });

  after(async () => {
    await server.stop();
    await removeDir(server.dataDir);
  });

  it('makes a bucket and puts small, empty and 20 MiB objects', async () => {
    await client.makeBucket(bucket);
    assert.equal(await client.bucketExists(bucket), true);
    assert.equal(await client.bucketExists('missing-bucket'), false);
    const small = randomBytes(3000);
    await client.putObject(bucket, 'small.bin', small, small.length, { 'Content-Type': 'text/plain', 'X-Amz-Meta-Tag': 'v1' });
    await client.putObject(bucket, 'empty', Buffer.alloc(0), 0);
    const big = randomBytes(20 * 1024 * 1024);
    // A stream of unknown length: the client switches to multipart.
    await client.putObject(bucket, 'big.bin', Readable.from([big.subarray(0, 7_000_000), big.subarray(7_000_000)]), undefined, {});
    assert.equal(sha256(await readAll(await client.getObject(bucket, 'small.bin'))), sha256(small));
    assert.equal((await readAll(await client.getObject(bucket, 'empty'))).length, 0);
    assert.equal(sha256(await readAll(await client.getObject(bucket, 'big.bin'))), sha256(big));
    const stat = await client.statObject(bucket, 'big.bin');
    assert.equal(stat.size, big.length);
    assert.match(stat.etag, /^[0-9a-f]{32}-\d+$/);
    const smallStat = await client.statObject(bucket, 'small.bin');
    assert.equal(smallStat.metaData['content-type'], 'text/plain');
    assert.equal(smallStat.metaData.tag, 'v1');
    const partial = await readAll(await client.getPartialObject(bucket, 'big.bin', 10_000_000, 1000));
    assert.deepEqual(partial, big.subarray(10_000_000, 10_001_000));
  });

  it('lists with prefix, recursion and delimiter', async () => {
    for (const key of ['logs/2024/a', 'logs/2024/b', 'logs/c', 'z']) await client.putObject(bucket, key, Buffer.from(key));
    const listStream = (prefix: string, recursive: boolean) =>
      new Promise<string[]>((resolve, reject) => {
        const names: string[] = [];
        const stream = client.listObjectsV2(bucket, prefix, recursive);
        stream.on('data', (item) => names.push(item.name ?? item.prefix ?? ''));
        stream.on('end', () => resolve(names));
        stream.on('error', reject);
      });
    assert.deepEqual((await listStream('logs/', false)).sort(), ['logs/2024/', 'logs/c']);
    assert.deepEqual(await listStream('logs/', true), ['logs/2024/a', 'logs/2024/b', 'logs/c']);
  });

  it('copies, presigns and removes', async () => {
    const conditions = new Minio.CopyConditions();
    await client.copyObject(bucket, 'copy.bin', `/${bucket}/small.bin`, conditions);
    const [source, copy] = await Promise.all([client.statObject(bucket, 'small.bin'), client.statObject(bucket, 'copy.bin')]);
    assert.equal(copy.etag, source.etag);
    const bad = new Minio.CopyConditions();
    bad.setMatchETag('deadbeef');
    await assert.rejects(client.copyObject(bucket, 'copy2.bin', `/${bucket}/small.bin`, bad), /PreconditionFailed|pre-conditions/);

    const url = await client.presignedGetObject(bucket, 'small.bin', 60);
    const response = await fetch(url);
    assert.equal(response.status, 200);
    assert.equal(sha256(Buffer.from(await response.arrayBuffer())), sha256(await readAll(await client.getObject(bucket, 'small.bin'))));
    const putUrl = await client.presignedPutObject(bucket, 'via-presign', 60);
    assert.equal((await fetch(putUrl, { method: 'PUT', body: 'presigned body' })).status, 200);
    assert.equal((await readAll(await client.getObject(bucket, 'via-presign'))).toString(), 'presigned body');

    const all = ['small.bin', 'empty', 'big.bin', 'copy.bin', 'via-presign', 'logs/2024/a', 'logs/2024/b', 'logs/c', 'z'];
    await client.removeObjects(bucket, all);
    await client.removeBucket(bucket);
    assert.equal(await client.bucketExists(bucket), false);
  });
});
