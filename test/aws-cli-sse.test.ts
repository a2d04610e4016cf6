// Encryption through the aws CLIs, as a user following MinIO's KMS guide would drive it: `aws s3 cp --sse`,
// `--sse-c`, and put/get/delete-bucket-encryption, over HTTPS (AWS_CA_BUNDLE trusts the test certificate).
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { awsClis, aws as runAws } from './helpers/aws-cli.ts';
import { accessKey, makeCertificate, removeDir, secretKey, startServer, type TestServer } from './helpers/server.ts';


const clis = awsClis();

function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

for (const cli of clis) {
  describe(`${cli.name}: encryption`, () => {
    let server: TestServer;
    let work: string;
    let caFile: string;
    const bucket = 'cli-sse';

    const aws = (...args: string[]) =>
      runAws({ bin: cli.bin, endpoint: server.endpoint, accessKey, secretKey, workDir: work, env: { AWS_CA_BUNDLE: caFile } }, ...args);

    before(async () => {
      assert.ok(existsSync(cli.bin), `${cli.bin} is missing: run .ci/setup`);
      work = await mkdtemp(path.join(tmpdir(), 'coffer-cli-sse-'));
      const certsDir = path.join(work, 'certs');
      await mkdir(certsDir, { recursive: true });
      caFile = (await makeCertificate(certsDir)).certFile;
      server = await startServer({ certsDir });
    });

    after(async () => {
      await server.stop();
      await removeDir(server.dataDir);
      await rm(work, { recursive: true, force: true });
    });

    it('copies with --sse AES256 (multipart too) and head-object shows it', async () => {
      await aws('s3', 'mb', `s3://${bucket}`);
      const big = randomBytes(12 * 1024 * 1024);
      await writeFile(path.join(work, 'big.bin'), big);
      await aws('s3', 'cp', '--sse', 'AES256', path.join(work, 'big.bin'), `s3://${bucket}/big.bin`);
      const head = JSON.parse(await aws('s3api', 'head-object', '--bucket', bucket, '--key', 'big.bin'));
      assert.equal(head.ServerSideEncryption, 'AES256');
      assert.equal(head.ContentLength, big.length);
      await aws('s3', 'cp', `s3://${bucket}/big.bin`, path.join(work, 'big.back'));
      assert.equal(sha256(await readFile(path.join(work, 'big.back'))), sha256(big));
    });

    it('copies with --sse-c and refuses reads without the key', async () => {
      const key = randomBytes(32).toString('base64').slice(0, 32);
      const data = randomBytes(100_000);
      await writeFile(path.join(work, 'c.bin'), data);
      await aws('s3', 'cp', '--sse-c', 'AES256', '--sse-c-key', key, path.join(work, 'c.bin'), `s3://${bucket}/c.bin`);
      const head = JSON.parse(await aws('s3api', 'head-object', '--bucket', bucket, '--key', 'c.bin', '--sse-customer-algorithm', 'AES256', '--sse-customer-key', key));
      assert.equal(head.SSECustomerAlgorithm, 'AES256');
      await aws('s3', 'cp', '--sse-c', 'AES256', '--sse-c-key', key, `s3://${bucket}/c.bin`, path.join(work, 'c.back'));
      assert.equal(sha256(await readFile(path.join(work, 'c.back'))), sha256(data));
      await assert.rejects(aws('s3', 'cp', `s3://${bucket}/c.bin`, path.join(work, 'c.fail')), /400|Bad Request|InvalidRequest/);
    });

    it('sets, shows and clears the bucket default (what `mc encrypt sse-s3` does)', async () => {
      await aws('s3api', 'put-bucket-encryption', '--bucket', bucket, '--server-side-encryption-configuration', '{"Rules":[{"ApplyServerSideEncryptionByDefault":{"SSEAlgorithm":"AES256"}}]}');
      const config = JSON.parse(await aws('s3api', 'get-bucket-encryption', '--bucket', bucket));
      assert.equal(config.ServerSideEncryptionConfiguration.Rules[0].ApplyServerSideEncryptionByDefault.SSEAlgorithm, 'AES256');
      await writeFile(path.join(work, 'plain.txt'), 'hello');
      await aws('s3', 'cp', path.join(work, 'plain.txt'), `s3://${bucket}/plain.txt`);
      const head = JSON.parse(await aws('s3api', 'head-object', '--bucket', bucket, '--key', 'plain.txt'));
      assert.equal(head.ServerSideEncryption, 'AES256');
      await aws('s3api', 'delete-bucket-encryption', '--bucket', bucket);
      await assert.rejects(aws('s3api', 'get-bucket-encryption', '--bucket', bucket), /ServerSideEncryptionConfigurationNotFoundError/);
    });
  });
}
