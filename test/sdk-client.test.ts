// @aws-sdk/client-s3 with its default settings (CRC32 checksums, aws-chunked trailers) against a real server.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import {
  CopyObjectCommand,
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListBucketsCommand,
  ListObjectsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
  paginateListObjectsV2,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { accessKey, removeDir, secretKey, startServer, type TestServer } from './helpers/server.ts';

function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

async function bodyBytes(body: unknown): Promise<Buffer> {
  const stream = body as { transformToByteArray(): Promise<Uint8Array> };
  return Buffer.from(await stream.transformToByteArray());
}

async function expectS3Error(promise: Promise<unknown>, code: string, status: number): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof S3ServiceException, `expected an S3 error, got ${String(error)}`);
    assert.equal(error.$metadata.httpStatusCode, status);
    if (code !== '') assert.equal(error.name, code);
    return true;
  });
}

describe('@aws-sdk/client-s3 scenario', () => {
  let server: TestServer;
  let s3: S3Client;
  const bucket = 'sdk-scenario';

  before(async () => {
    server = await startServer();
    s3 = new S3Client({
      endpoint: server.endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: accessKey, secretAccessKey: secretKey },
    });
  });

  after(async () => {
    s3.destroy();
    await server.stop();
    await removeDir(server.dataDir);
  });

  it('creates, heads and lists a bucket', async () => {
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    await s3.send(new HeadBucketCommand({ Bucket: bucket }));
    const listed = await s3.send(new ListBucketsCommand({}));
    assert.ok(listed.Buckets?.some((b) => b.Name === bucket));
    await expectS3Error(s3.send(new CreateBucketCommand({ Bucket: bucket })), 'BucketAlreadyOwnedByYou', 409);
    await expectS3Error(s3.send(new CreateBucketCommand({ Bucket: 'Bad_Name' })), 'InvalidBucketName', 400);
  });

  it('puts and gets small, empty and binary objects byte-identically with default checksums', async () => {
    const small = randomBytes(1000);
    const put = await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'small.bin', Body: small, Metadata: { colour: 'blue' }, ContentType: 'application/x-test' }));
    assert.equal(put.ETag, `"${createHash('md5').update(small).digest('hex')}"`);
    const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'small.bin' }));
    assert.equal(sha256(await bodyBytes(got.Body)), sha256(small));
    assert.equal(got.Metadata?.colour, 'blue');
    assert.equal(got.ContentType, 'application/x-test');
    assert.equal(got.ContentLength, 1000);

    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'empty', Body: new Uint8Array(0) }));
    const empty = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'empty' }));
    assert.equal((await bodyBytes(empty.Body)).length, 0);
    assert.equal(empty.ETag, '"d41d8cd98f00b204e9800998ecf8427e"');

    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'small.bin', ChecksumMode: 'ENABLED' }));
    assert.equal(head.ContentLength, 1000);
    assert.ok(head.ChecksumCRC32 || head.ChecksumCRC64NVME, 'the checksum the SDK sent is stored and returned');
  });

  it('uploads 20 MiB with lib-storage multipart and reads it back, whole and by range', async () => {
    const big = randomBytes(20 * 1024 * 1024);
    const upload = new Upload({ client: s3, params: { Bucket: bucket, Key: 'dir/big.bin', Body: big }, partSize: 5 * 1024 * 1024, queueSize: 2 });
    const done = await upload.done();
    assert.match(done.ETag ?? '', /^"[0-9a-f]{32}-4"$/);
    const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'dir/big.bin' }));
    assert.equal(sha256(await bodyBytes(got.Body)), sha256(big));

    const ranged = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'dir/big.bin', Range: 'bytes=5242870-5242889' }));
    assert.equal(ranged.$metadata.httpStatusCode, 206);
    assert.equal(ranged.ContentRange, `bytes 5242870-5242889/${big.length}`);
    assert.deepEqual(await bodyBytes(ranged.Body), big.subarray(5242870, 5242890));

    const suffix = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'dir/big.bin', Range: 'bytes=-100' }));
    assert.deepEqual(await bodyBytes(suffix.Body), big.subarray(big.length - 100));
    const open = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'dir/big.bin', Range: `bytes=${big.length - 7}-` }));
    assert.deepEqual(await bodyBytes(open.Body), big.subarray(big.length - 7));
    await expectS3Error(s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'dir/big.bin', Range: `bytes=${big.length}-` })), 'InvalidRange', 416);
  });

  it('lists with prefixes, delimiters and pagination (V1 and V2)', async () => {
    const keys = ['photos/2024/a.jpg', 'photos/2024/b.jpg', 'photos/2025/c.jpg', 'photos/top.jpg', 'notes.txt', 'a-c', 'a/b'];
    for (const key of keys) await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: key }));
    const delimited = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'photos/', Delimiter: '/' }));
    assert.deepEqual(delimited.Contents?.map((o) => o.Key), ['photos/top.jpg']);
    assert.deepEqual(delimited.CommonPrefixes?.map((p) => p.Prefix), ['photos/2024/', 'photos/2025/']);

    const all: string[] = [];
    for await (const page of paginateListObjectsV2({ client: s3, pageSize: 2 }, { Bucket: bucket })) {
      assert.ok((page.KeyCount ?? 0) <= 2);
      for (const object of page.Contents ?? []) all.push(object.Key!);
    }
    const expected = [...keys, 'small.bin', 'empty', 'dir/big.bin'].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    assert.deepEqual(all, expected);

    const v1 = await s3.send(new ListObjectsCommand({ Bucket: bucket, Marker: 'notes.txt', MaxKeys: 2 }));
    assert.deepEqual(v1.Contents?.map((o) => o.Key), ['photos/2024/a.jpg', 'photos/2024/b.jpg']);
    assert.equal(v1.IsTruncated, true);
  });

  it('copies objects, replaces metadata in place, and honours copy conditions', async () => {
    await s3.send(new CopyObjectCommand({ Bucket: bucket, Key: 'copy.bin', CopySource: `${bucket}/small.bin` }));
    const source = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'small.bin' }));
    const copy = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'copy.bin' }));
    assert.equal(copy.ETag, source.ETag);
    assert.equal(copy.Metadata?.colour, 'blue');

    await expectS3Error(s3.send(new CopyObjectCommand({ Bucket: bucket, Key: 'copy.bin', CopySource: `${bucket}/copy.bin` })), 'InvalidRequest', 400);
    await s3.send(new CopyObjectCommand({ Bucket: bucket, Key: 'copy.bin', CopySource: `${bucket}/copy.bin`, MetadataDirective: 'REPLACE', Metadata: { colour: 'red' } }));
    const replaced = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'copy.bin' }));
    assert.equal(replaced.Metadata?.colour, 'red');
    assert.equal(replaced.ETag, source.ETag);

    await expectS3Error(
      s3.send(new CopyObjectCommand({ Bucket: bucket, Key: 'copy2.bin', CopySource: `${bucket}/small.bin`, CopySourceIfMatch: '"0000"' })),
      'PreconditionFailed',
      412,
    );
  });

  it('answers conditional GET and HEAD', async () => {
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'small.bin' }));
    await expectS3Error(s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'small.bin', IfNoneMatch: head.ETag })), '', 304);
    await expectS3Error(s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'small.bin', IfMatch: '"nope"' })), '', 412);
    await expectS3Error(s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'small.bin', IfMatch: '"nope"' })), 'PreconditionFailed', 412);
    const future = new Date(Date.now() + 3600_000);
    await expectS3Error(s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'small.bin', IfModifiedSince: future })), '', 304);
    const past = new Date(Date.now() - 3600_000);
    await expectS3Error(s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'small.bin', IfUnmodifiedSince: past })), 'PreconditionFailed', 412);
    const ok = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'small.bin', IfMatch: head.ETag, IfModifiedSince: past }));
    assert.equal((await bodyBytes(ok.Body)).length, 1000);
  });

  it('serves presigned GET and PUT URLs to fetch', async () => {
    const data = randomBytes(4096);
    const putUrl = await getSignedUrl(s3, new PutObjectCommand({ Bucket: bucket, Key: 'presigned.bin' }), { expiresIn: 300 });
    const putResponse = await fetch(putUrl, { method: 'PUT', body: data });
    assert.equal(putResponse.status, 200, await putResponse.text());
    const getUrl = await getSignedUrl(s3, new GetObjectCommand({ Bucket: bucket, Key: 'presigned.bin' }), { expiresIn: 300 });
    const getResponse = await fetch(getUrl);
    assert.equal(getResponse.status, 200);
    assert.equal(sha256(Buffer.from(await getResponse.arrayBuffer())), sha256(data));
    const tampered = getUrl.replace('presigned.bin', 'small.bin');
    const denied = await fetch(tampered);
    assert.equal(denied.status, 403);
    assert.match(await denied.text(), /<Code>SignatureDoesNotMatch<\/Code>/);
  });

  it('deletes many objects at once and removes the bucket', async () => {
    await expectS3Error(s3.send(new DeleteBucketCommand({ Bucket: bucket })), 'BucketNotEmpty', 409);
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket }));
    const keys = (listed.Contents ?? []).map((o) => ({ Key: o.Key! }));
    assert.ok(keys.length > 5);
    const deleted = await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: [...keys, { Key: 'never-existed' }] } }));
    assert.equal(deleted.Deleted?.length, keys.length + 1);
    assert.equal(deleted.Errors, undefined);
    const after = await s3.send(new ListObjectsV2Command({ Bucket: bucket }));
    assert.equal(after.KeyCount, 0);
    await s3.send(new DeleteBucketCommand({ Bucket: bucket }));
    await expectS3Error(s3.send(new HeadBucketCommand({ Bucket: bucket })), '', 404);
  });
});
