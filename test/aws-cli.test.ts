// The aws CLIs, unchanged: Debian's aws 2.9 (/usr/bin/aws, installed by .ci/setup) and the image's Python
// aws 1.x first on PATH, whose newer botocore sends flexible checksums with aws-chunked trailers.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { awsClis, aws as runAws } from './helpers/aws-cli.ts';
import { accessKey, removeDir, secretKey, startServer, type TestServer } from './helpers/server.ts';

const clis = awsClis();

function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

for (const cli of clis) {
  describe(`${cli.name} scenario`, () => {
    let server: TestServer;
    let work: string;
    const bucket = 'cli-scenario';

    const aws = (...args: string[]) => runAws({ bin: cli.bin, endpoint: server.endpoint, accessKey, secretKey, workDir: work }, ...args);

    before(async () => {
      assert.ok(existsSync(cli.bin), `${cli.bin} is missing: run .ci/setup`);
      server = await startServer();
      work = await mkdtemp(path.join(tmpdir(), 'coffer-cli-'));
    });

    after(async () => {
      await server.stop();
      await removeDir(server.dataDir);
      await rm(work, { recursive: true, force: true });
    });

    it('makes a bucket and copies small, empty and 20 MiB (multipart) files both ways', async () => {
      await aws('s3', 'mb', `s3://${bucket}`);
      const files = { 'small.bin': randomBytes(10_000), 'empty.bin': Buffer.alloc(0), 'big.bin': randomBytes(20 * 1024 * 1024) };
      for (const [name, data] of Object.entries(files)) {
        await writeFile(path.join(work, name), data);
        await aws('s3', 'cp', path.join(work, name), `s3://${bucket}/dir/${name}`);
        await aws('s3', 'cp', `s3://${bucket}/dir/${name}`, path.join(work, `${name}.back`));
        assert.equal(sha256(await readFile(path.join(work, `${name}.back`))), sha256(data), name);
      }
      const head = JSON.parse(await aws('s3api', 'head-object', '--bucket', bucket, '--key', 'dir/big.bin'));
      assert.equal(head.ContentLength, 20 * 1024 * 1024);
      assert.match(head.ETag, /-\d+"$/, 'uploaded with multipart');
    });

    it('lists with prefixes, delimiters and pagination', async () => {
      for (let i = 0; i < 5; i++) await aws('s3api', 'put-object', '--bucket', bucket, '--key', `many/k${i}`, '--body', path.join(work, 'small.bin'));
      const top = await aws('s3', 'ls', `s3://${bucket}/`);
      assert.match(top, /PRE dir\//);
      assert.match(top, /PRE many\//);
      const paged = JSON.parse(await aws('s3api', 'list-objects-v2', '--bucket', bucket, '--prefix', 'many/', '--page-size', '2'));
      assert.deepEqual(paged.Contents.map((o: { Key: string }) => o.Key), ['many/k0', 'many/k1', 'many/k2', 'many/k3', 'many/k4']);
      const delimited = JSON.parse(await aws('s3api', 'list-objects', '--bucket', bucket, '--delimiter', '/'));
      assert.deepEqual(delimited.CommonPrefixes.map((p: { Prefix: string }) => p.Prefix), ['dir/', 'many/']);
    });

    it('reads ranges, copies, answers conditionals and presigns', async () => {
      const out = path.join(work, 'range.out');
      await aws('s3api', 'get-object', '--bucket', bucket, '--key', 'dir/small.bin', '--range', 'bytes=100-199', out);
      const small = await readFile(path.join(work, 'small.bin'));
      assert.deepEqual(await readFile(out), small.subarray(100, 200));
      await aws('s3', 'cp', `s3://${bucket}/dir/small.bin`, `s3://${bucket}/copied.bin`);
      const copied = JSON.parse(await aws('s3api', 'head-object', '--bucket', bucket, '--key', 'copied.bin'));
      const etag = copied.ETag as string;
      assert.equal(etag, `"${createHash('md5').update(small).digest('hex')}"`);
      await assert.rejects(aws('s3api', 'head-object', '--bucket', bucket, '--key', 'copied.bin', '--if-none-match', etag), /304|Not Modified/);
      await assert.rejects(aws('s3api', 'get-object', '--bucket', bucket, '--key', 'copied.bin', '--if-match', '"bad"', out), /412|PreconditionFailed|Precondition/);
      const url = (await aws('s3', 'presign', `s3://${bucket}/copied.bin`, '--expires-in', '60')).trim();
      const response = await fetch(url);
      assert.equal(response.status, 200);
      assert.equal(sha256(Buffer.from(await response.arrayBuffer())), sha256(small));
    });

    it('deletes many and removes the bucket', async () => {
      await aws('s3', 'rm', `s3://${bucket}`, '--recursive');
      const listed = JSON.parse((await aws('s3api', 'list-objects-v2', '--bucket', bucket)) || '{}');
      assert.equal(listed.Contents, undefined);
      await aws('s3', 'rb', `s3://${bucket}`);
      await assert.rejects(aws('s3api', 'head-bucket', '--bucket', bucket), /404|Not Found/);
    });
  });
}
