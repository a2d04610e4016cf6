// The seed's walkthrough with a local KES instead of play.min.io: root identity, `coffer kes server` with an
// FS keystore, `coffer server` with exactly MinIO's KES variables, put-bucket-encryption, aws s3 cp,
// head-object shows AES256. Then: two KES servers behind one endpoint list with one stopped mid-run, a
// client identity KES does not know, a Coffer server with the wrong certificate, and crypto-shredding.
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { GetObjectCommand, PutObjectCommand, S3Client, CreateBucketCommand } from '@aws-sdk/client-s3';
import { aws as runAws, debianAws } from './helpers/aws-cli.ts';
import { makeTempDir, removeDir, repoRoot, startServer, type TestServer } from './helpers/server.ts';

const run = promisify(execFile);
const coffer = path.join(repoRoot, 'bin', 'coffer.js');
const accessKey = 'walkthrough-access';
const secretKey = 'walkthrough-secret-key';

async function cofferCli(cwd: string, ...args: string[]): Promise<string> {
  const { stdout } = await run(process.execPath, [coffer, ...args], { cwd, timeout: 30_000 });
  return stdout;
}

interface KesProcess {
  readonly url: string;
  readonly child: ChildProcess;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function startKes(cwd: string, config: string, port = 0): Promise<KesProcess> {
  const child = spawn(process.execPath, [coffer, 'kes', 'server', '--config', config, '--addr', `127.0.0.1:${port}`], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    let stdout = '';
    const timer = setTimeout(() => reject(new Error(`kes did not start: ${stderr}`)), 20_000);
    child.stdout!.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      const match = /listening on (https:\/\/\S+)/.exec(stdout);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    });
    child.once('exit', () => reject(new Error(`kes exited: ${stderr}`)));
  });
  return {
    url,
    child,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

describe('KES walkthrough: n coffer servers → m key servers → 1 keystore', () => {
  let work: string;
  let kesA: KesProcess;
  let kesB: KesProcess;
  let server: TestServer;
  let minioEnv: Record<string, string>;

  const aws = (...args: string[]) => runAws({ bin: debianAws, endpoint: server.endpoint, accessKey, secretKey, workDir: work }, ...args);

  before(async () => {
    work = await makeTempDir('kes');
    await cofferCli(work, 'kes', 'identity', 'new', '--key', 'server.key', '--cert', 'server.cert', '--ip', '127.0.0.1', '--dns', 'localhost', 'localhost');
    await cofferCli(work, 'kes', 'identity', 'new', '--key', 'root.key', '--cert', 'root.cert', 'root');
    await cofferCli(work, 'kes', 'identity', 'new', '--key', 'minio.key', '--cert', 'minio.cert', 'minio');
    await cofferCli(work, 'kes', 'identity', 'new', '--key', 'stranger.key', '--cert', 'stranger.cert', 'stranger');
    const root = (await cofferCli(work, 'kes', 'identity', 'of', 'root.cert')).trim();
    const minio = (await cofferCli(work, 'kes', 'identity', 'of', 'minio.cert')).trim();
    assert.match(root, /^[0-9a-f]{64}$/);
    await mkdir(path.join(work, 'keys'));
    await writeFile(
      path.join(work, 'kes.yml'),
      [
        'admin:',
        `  identity: ${root}`,
        'tls:',
        '  key: server.key',
        '  cert: server.cert',
        'cache:',
        '  expiry:',
        '    any: 1s',
        '    unused: 1s',
        'policy:',
        '  minio:',
        '    allow:',
        '      - /v1/key/create/my-minio-key*',
        '      - /v1/key/generate/my-minio-key*',
        '      - /v1/key/decrypt/my-minio-key*',
        '      - /v1/key/describe/my-minio-key*',
        '      - /v1/status',
        '    identities:',
        '      - ${MINIO_IDENTITY}',
        'keystore:',
        '  fs:',
        '    path: ./keys',
        '',
      ].join('\n'),
    );
    process.env.MINIO_IDENTITY = minio;
    kesA = await startKes(work, 'kes.yml');
    kesB = await startKes(work, 'kes.yml');
    minioEnv = {
      MINIO_KMS_KES_ENDPOINT: `${kesA.url},${kesB.url}`,
      MINIO_KMS_KES_KEY_FILE: path.join(work, 'minio.key'),
      MINIO_KMS_KES_CERT_FILE: path.join(work, 'minio.cert'),
      MINIO_KMS_KES_KEY_NAME: 'my-minio-key',
      MINIO_KMS_KES_CAPATH: path.join(work, 'server.cert'),
      MINIO_ACCESS_KEY: accessKey,
      MINIO_SECRET_KEY: secretKey,
      MINIO_ROOT_USER: '',
      MINIO_ROOT_PASSWORD: '',
      COFFER_KMS_CACHE_TTL_MS: '1000',
    };
    server = await startServer({ env: minioEnv });
  });

  after(async () => {
    await server?.stop();
    await kesA?.stop();
    await kesB?.stop();
    if (server) await removeDir(server.dataDir);
    await removeDir(work);
  });

  it('runs the seed walkthrough: bucket encryption, aws s3 cp, head-object shows AES256', async () => {
    await aws('s3', 'mb', 's3://walkthrough');
    await aws('s3api', 'put-bucket-encryption', '--bucket', 'walkthrough', '--server-side-encryption-configuration', '{"Rules":[{"ApplyServerSideEncryptionByDefault":{"SSEAlgorithm":"AES256"}}]}');
    const data = randomBytes(1024 * 1024 + 17);
    await writeFile(path.join(work, 'test.file'), data);
    await aws('s3', 'cp', path.join(work, 'test.file'), 's3://walkthrough/test.file');
    const head = JSON.parse(await aws('s3api', 'head-object', '--bucket', 'walkthrough', '--key', 'test.file'));
    assert.equal(head.ServerSideEncryption, 'AES256');
    await aws('s3', 'cp', 's3://walkthrough/test.file', path.join(work, 'test.back'));
    assert.equal(sha256(await readFile(path.join(work, 'test.back'))), sha256(data));
    // the default key was created in KES by coffer at startup (MinIO's startup sequence)
    const keys = await readFile(path.join(work, 'keys', 'my-minio-key'), 'utf8');
    assert.ok(keys.length > 0);
  });

  it('keeps serving when one of two KES servers stops mid-run', async () => {
    const s3 = new S3Client({ endpoint: server.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: accessKey, secretAccessKey: secretKey } });
    try {
      await s3.send(new CreateBucketCommand({ Bucket: 'failover' }));
      for (let i = 0; i < 30; i++) {
        if (i === 10) await kesA.stop();
        const body = randomBytes(5000);
        await s3.send(new PutObjectCommand({ Bucket: 'failover', Key: `o${i}`, Body: body, ServerSideEncryption: 'AES256' }));
        const got = await s3.send(new GetObjectCommand({ Bucket: 'failover', Key: `o${i}` }));
        assert.deepEqual(Buffer.from(await got.Body!.transformToByteArray()), body);
      }
    } finally {
      s3.destroy();
    }
  });

  it('refuses identities KES does not know, and a coffer server with the wrong certificate fails at startup', async () => {
    const stranger = await run(process.execPath, [coffer, 'kes', 'key', 'list', '--server', kesB.url, '--key', 'stranger.key', '--cert', 'stranger.cert', '--ca', 'server.cert'], { cwd: work }).then(
      () => 'ok',
      (error: { stdout?: string; stderr?: string }) => `${error.stdout ?? ''}${error.stderr ?? ''}`,
    );
    assert.match(stranger, /not authorized|403/);
    await assert.rejects(
      startServer({ env: { ...minioEnv, MINIO_KMS_KES_ENDPOINT: kesB.url, MINIO_KMS_KES_KEY_FILE: path.join(work, 'stranger.key'), MINIO_KMS_KES_CERT_FILE: path.join(work, 'stranger.cert') } }),
      /not authorized|403/,
    );
  });

  it('keeps serving cached keys while KES is down, refuses new encrypted writes with 503, and recovers', async () => {
    const port = await freePort();
    const kesC = await startKes(work, 'kes.yml', port);
    const second = await startServer({ env: { ...minioEnv, MINIO_KMS_KES_ENDPOINT: kesC.url, COFFER_KMS_CACHE_TTL_MS: '60000' } });
    const s3 = new S3Client({ endpoint: second.endpoint, region: 'us-east-1', forcePathStyle: true, maxAttempts: 1, credentials: { accessKeyId: accessKey, secretAccessKey: secretKey } });
    try {
      await s3.send(new CreateBucketCommand({ Bucket: 'offline' }));
      const body = randomBytes(3000);
      await s3.send(new PutObjectCommand({ Bucket: 'offline', Key: 'cached', Body: body, ServerSideEncryption: 'AES256' }));
      await kesC.stop();
      const got = await s3.send(new GetObjectCommand({ Bucket: 'offline', Key: 'cached' }));
      assert.deepEqual(Buffer.from(await got.Body!.transformToByteArray()), body, 'reads of cached keys keep working');
      await assert.rejects(s3.send(new PutObjectCommand({ Bucket: 'offline', Key: 'new', Body: 'x', ServerSideEncryption: 'AES256' })), (error: Error & { $metadata?: { httpStatusCode?: number } }) => {
        assert.equal(error.$metadata?.httpStatusCode, 503);
        assert.match(error.message, /KMS is unreachable/);
        return true;
      });
      await assert.rejects(s3.send(new GetObjectCommand({ Bucket: 'offline', Key: 'new' })), /NoSuchKey|does not exist/);
      // plain objects do not need the KMS at all
      await s3.send(new PutObjectCommand({ Bucket: 'offline', Key: 'plain', Body: 'y' }));
      // KES comes back on the same address: encrypted writes work again without restarting coffer
      const revived = await startKes(work, 'kes.yml', port);
      try {
        await s3.send(new PutObjectCommand({ Bucket: 'offline', Key: 'after', Body: 'z', ServerSideEncryption: 'AES256' }));
        const after = await s3.send(new GetObjectCommand({ Bucket: 'offline', Key: 'after' }));
        assert.equal(await after.Body!.transformToString(), 'z');
      } finally {
        await revived.stop();
      }
    } finally {
      s3.destroy();
      await second.stop();
      await removeDir(second.dataDir);
    }
  });

  it('crypto-shreds: deleting the master key in KES makes the objects unreadable once caches expire', async () => {
    const s3 = new S3Client({ endpoint: server.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: accessKey, secretAccessKey: secretKey } });
    try {
      const body = randomBytes(1000);
      await s3.send(new PutObjectCommand({ Bucket: 'failover', Key: 'doomed', Body: body, ServerSideEncryption: 'AES256' }));
      await run(process.execPath, [coffer, 'kes', 'key', 'delete', 'my-minio-key', '--server', kesB.url, '--key', 'root.key', '--cert', 'root.cert', '--ca', 'server.cert'], { cwd: work });
      // coffer's key cache (1 s here) and KES's own master-key cache (1 s) expire
      await new Promise((resolve) => setTimeout(resolve, 2500));
      await assert.rejects(s3.send(new GetObjectCommand({ Bucket: 'failover', Key: 'doomed' })), (error: Error) => {
        assert.match(`${error.name} ${error.message}`, /KMS\.NotFoundException.*does not exist/);
        return true;
      });
    } finally {
      s3.destroy();
    }
  });
});
