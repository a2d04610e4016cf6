// S3 behaviours beyond the client scenarios: addressing, 100-continue, health, listing options, multipart
// bookkeeping, copy ranges, versioning probes.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetBucketLocationCommand,
  GetBucketVersioningCommand,
  GetObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectVersionsCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
  UploadPartCommand,
  UploadPartCopyCommand,
} from '@aws-sdk/client-s3';
import { errorCode, rawRequest, signRequest } from './helpers/raw.ts';
import { accessKey, removeDir, secretKey, startServer, type TestServer } from './helpers/server.ts';

const MiB = 1024 * 1024;

describe('S3 API details', () => {
  let server: TestServer;
  let s3: S3Client;
  const bucket = 'api-details';

  before(async () => {
    server = await startServer();
    s3 = new S3Client({ endpoint: server.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: accessKey, secretAccessKey: secretKey } });
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  });

  after(async () => {
    s3.destroy();
    await server.stop();
    await removeDir(server.dataDir);
  });

  it('answers health checks without authentication', async () => {
    for (const path of ['/minio/health/live', '/minio/health/ready']) {
      const response = await fetch(`${server.endpoint}${path}`);
      assert.equal(response.status, 200, path);
    }
  });

  it('exposes Prometheus metrics and admin info to signed requests only', async () => {
    const scrape = async () => {
      const response = await rawRequest(server.endpoint, { method: 'GET', path: '/minio/v2/metrics/cluster' });
      assert.equal(response.status, 200);
      return response.body;
    };
    const kmsCalls = (text: string, op: string) => Number(new RegExp(`coffer_kms_calls_total\\{op="${op}"\\} (\\d+)`).exec(text)?.[1] ?? NaN);
    const before = await scrape();
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'metrics/sse', Body: 'x', ServerSideEncryption: 'AES256' }));
    const afterPut = await scrape();
    assert.match(afterPut, /coffer_s3_requests_total\{api="PutObject",status="200"\} \d+/);
    assert.match(afterPut, /coffer_s3_request_duration_seconds_bucket\{api="PutObject",le="\+Inf"\}/);
    assert.equal(kmsCalls(afterPut, 'generate'), kmsCalls(before, 'generate') + 1, 'the KMS counters move with SSE traffic');
    assert.match(afterPut, /coffer_drive_total_bytes\{drive="1"\} [1-9]/);
    assert.match(afterPut, /coffer_native_info\{component="aes_gcm",implementation="(native|node:crypto)"\} 1/);
    assert.match(afterPut, /coffer_native_info\{component="metadata_io",implementation="(native|node:fs)"\} 1/);
    assert.match(afterPut, /coffer_native_info\{component="sha256",implementation="(native|node:crypto)"\} 1/);
    assert.match(afterPut, /coffer_native_info\{component="md5",implementation="(native|hash-wasm)"\} 1/);
    assert.match(afterPut, /^coffer_md5_batches_total \d+$/m);
    const counter = (text: string, name: string) => Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(text)?.[1] ?? NaN);
    const retiredBefore = counter(afterPut, 'coffer_meta_files_retired_total');
    const reusedBefore = counter(afterPut, 'coffer_meta_files_reused_total');
    await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'metrics/sse' }));
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'metrics/again', Body: 'y' }));
    const afterReuse = await scrape();
    assert.equal(counter(afterReuse, 'coffer_meta_files_retired_total'), retiredBefore + 1, 'the DELETE kept its coffer.meta');
    assert.ok(counter(afterReuse, 'coffer_meta_files_reused_total') >= reusedBefore + 1, 'the next PUT rewrote one');
    assert.match(afterReuse, /coffer_file_write_bytes_total\{path="direct"\} \d+/);
    const anonymous = await rawRequest(server.endpoint, { method: 'GET', path: '/minio/v2/metrics/cluster', unsigned: true });
    assert.equal(anonymous.status, 403);
    const info = await rawRequest(server.endpoint, { method: 'GET', path: '/coffer/admin/v1/info' });
    assert.equal(info.status, 200);
    const parsed = JSON.parse(info.body) as { version: string; drives: { state: string }[]; kms: { status: string }; buckets: number };
    assert.equal(parsed.drives[0]!.state, 'ok');
    assert.equal(parsed.kms.status, 'online');
    assert.ok(parsed.buckets >= 1);
  });

  it('serves virtual-host-style requests (bucket.localhost)', async () => {
    // A client would resolve api-details.localhost; pin the connection to 127.0.0.1 with the Host header instead.
    const put = await rawRequest(server.endpoint, { method: 'PUT', path: '/virtual.txt', body: Buffer.from('by host'), headers: { host: `${bucket}.localhost:${server.port}` } });
    assert.equal(put.status, 200, put.body);
    const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'virtual.txt' }));
    assert.equal(await got.Body!.transformToString(), 'by host');
  });

  it('honours Expect: 100-continue', async () => {
    const body = randomBytes(256 * 1024);
    const { headers, path } = await signRequest(server.endpoint, { method: 'PUT', path: `/${bucket}/continued.bin`, body, headers: { expect: '100-continue' } });
    const status = await new Promise<{ status: number; sawContinue: boolean }>((resolve, reject) => {
      let sawContinue = false;
      const req = http.request({ host: '127.0.0.1', port: server.port, method: 'PUT', path, headers: { ...headers, 'content-length': String(body.length) } });
      req.on('continue', () => {
        sawContinue = true;
        req.end(body);
      });
      req.on('response', (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, sawContinue }));
      });
      req.on('error', reject);
    });
    assert.deepEqual(status, { status: 200, sawContinue: true });
  });

  it('lists with encoding-type=url and fetch-owner', async () => {
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'odd key+&<x>.txt', Body: 'x' }));
    const encoded = await rawRequest(server.endpoint, { method: 'GET', path: `/${bucket}`, query: { 'list-type': '2', 'encoding-type': 'url', prefix: 'odd', 'fetch-owner': 'true' } });
    assert.equal(encoded.status, 200);
    assert.match(encoded.body, /<Key>odd%20key%2B%26%3Cx%3E.txt<\/Key>/);
    assert.match(encoded.body, /<EncodingType>url<\/EncodingType>/);
    assert.match(encoded.body, /<Owner><ID>/);
    const sdk = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'odd', EncodingType: 'url' }));
    assert.equal(decodeURIComponent(sdk.Contents?.[0]?.Key ?? ''), 'odd key+&<x>.txt');
    const badMax = await rawRequest(server.endpoint, { method: 'GET', path: `/${bucket}`, query: { 'max-keys': '-1' } });
    assert.equal(errorCode(badMax), 'InvalidArgument');
  });

  it('reports location, versioning and current versions', async () => {
    const location = await s3.send(new GetBucketLocationCommand({ Bucket: bucket }));
    assert.equal(location.LocationConstraint, undefined);
    const versioning = await s3.send(new GetBucketVersioningCommand({ Bucket: bucket }));
    assert.equal(versioning.Status, undefined);
    const versions = await s3.send(new ListObjectVersionsCommand({ Bucket: bucket, Prefix: 'virtual' }));
    assert.equal(versions.Versions?.length, 1);
    assert.equal(versions.Versions?.[0]?.VersionId, 'null');
    assert.equal(versions.Versions?.[0]?.IsLatest, true);
  });

  it('tracks multipart uploads and parts, copies part ranges, and validates completion', async () => {
    const source = randomBytes(6 * MiB + 123);
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'source.bin', Body: source }));
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'assembled.bin' }));
    const uploads = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
    assert.ok(uploads.Uploads?.some((u) => u.UploadId === UploadId && u.Key === 'assembled.bin'));

    const part1 = await s3.send(new UploadPartCopyCommand({ Bucket: bucket, Key: 'assembled.bin', UploadId, PartNumber: 1, CopySource: `${bucket}/source.bin`, CopySourceRange: `bytes=0-${5 * MiB - 1}` }));
    const tail = randomBytes(1000);
    const part2 = await s3.send(new UploadPartCommand({ Bucket: bucket, Key: 'assembled.bin', UploadId, PartNumber: 2, Body: tail }));
    const parts = await s3.send(new ListPartsCommand({ Bucket: bucket, Key: 'assembled.bin', UploadId }));
    assert.deepEqual(parts.Parts?.map((p) => [p.PartNumber, p.Size]), [[1, 5 * MiB], [2, 1000]]);

    await assert.rejects(
      s3.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: 'assembled.bin', UploadId, MultipartUpload: { Parts: [{ PartNumber: 2, ETag: part2.ETag }, { PartNumber: 1, ETag: part1.CopyPartResult?.ETag }] } })),
      (error: unknown) => error instanceof S3ServiceException && error.name === 'InvalidPartOrder',
    );
    await assert.rejects(
      s3.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: 'assembled.bin', UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: '"00000000000000000000000000000000"' }] } })),
      (error: unknown) => error instanceof S3ServiceException && error.name === 'InvalidPart',
    );
    const done = await s3.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: 'assembled.bin', UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: part1.CopyPartResult?.ETag }, { PartNumber: 2, ETag: part2.ETag }] } }));
    assert.match(done.ETag ?? '', /-2"$/);
    const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'assembled.bin' }));
    assert.deepEqual(Buffer.from(await got.Body!.transformToByteArray()), Buffer.concat([source.subarray(0, 5 * MiB), tail]));
    const secondPart = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'assembled.bin', PartNumber: 2 }));
    assert.equal(secondPart.ContentLength, 1000);
    assert.equal(secondPart.PartsCount, 2);

    const small = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'too-small.bin' }));
    const a = await s3.send(new UploadPartCommand({ Bucket: bucket, Key: 'too-small.bin', UploadId: small.UploadId, PartNumber: 1, Body: randomBytes(1000) }));
    const b = await s3.send(new UploadPartCommand({ Bucket: bucket, Key: 'too-small.bin', UploadId: small.UploadId, PartNumber: 2, Body: randomBytes(1000) }));
    await assert.rejects(
      s3.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: 'too-small.bin', UploadId: small.UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: a.ETag }, { PartNumber: 2, ETag: b.ETag }] } })),
      (error: unknown) => error instanceof S3ServiceException && error.name === 'EntityTooSmall',
    );
    await s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: 'too-small.bin', UploadId: small.UploadId }));
    await assert.rejects(
      s3.send(new ListPartsCommand({ Bucket: bucket, Key: 'too-small.bin', UploadId: small.UploadId })),
      (error: unknown) => error instanceof S3ServiceException && error.name === 'NoSuchUpload',
    );
  });
});
