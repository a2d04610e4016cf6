// Acceptance tests for the multi-drive (JBOD / erasure-coded) engine, against real `coffer server`
// processes with 2, 4 and 8 drives in one erasure set:
//   1. 4 drives EC:2: ~200 objects (0 B … 40 MiB, multipart, SSE-S3) survive the loss of any 2 drives, and
//      two fresh drives are healed back (admin info `healing` → `ok`, `coffer admin heal`).
//   2. bitrot: flipped bytes in part.N files and inline shards are detected, served around, counted in
//      coffer_erasure_shard_errors_total and healed back to the original bytes (POST /coffer/admin/v1/heal).
//   3. below read quorum (3 of 4 drives gone): GET, HEAD, PUT and ListObjects answer 503 SlowDown.
//   4. kill -9 during concurrent PUTs: acknowledged versions survive, nothing is torn, heal exits 0.
//   5. a drive turned immutable (chattr +i) mid-write; 6. a drive that fills up (8 MiB tmpfs) mid-write.
//   7. default parity (2 drives → 1+1, `d{1...8}` → 4+4) and a drive from another deployment.
//
// Object content is derived from a seed (AES-256-CTR keystream), so only SHA-256 digests are kept; set
// COFFER_JBOD_SEED to vary it. The servers use a static KMS key (MINIO_KMS_SECRET_KEY), not the development
// key file, so the SSE-S3 objects do not depend on which drive the key file lives on.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, stat, statfs, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, it, type TestContext } from 'node:test';
import {
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
  UploadPartCommand,
  paginateListObjectsV2,
} from '@aws-sdk/client-s3';
import { errorCode, rawRequest } from './helpers/raw.ts';
import { accessKey, makeTempDir, removeDir, repoRoot, secretKey, startServer, type TestServer } from './helpers/server.ts';

const execFileAsync = promisify(execFile);
const KiB = 1024;
const MiB = 1024 * KiB;
const seed = process.env.COFFER_JBOD_SEED ?? 'coffer-jbod-1';
/** One static KMS key for every server of this file (a restart must decrypt what the previous run wrote). */
const kmsSecret = `jbod-test-key:${randomBytes(32).toString('base64')}`;
const healSummaryPattern = /^healed:.*$/m;

// ------------------------------------------------------------------------------------------------ helpers

/** mulberry32 seeded from a string: reproducible choices for a given COFFER_JBOD_SEED. */
function prng(label: string): () => number {
  let state = createHash('sha256').update(`${seed}:${label}`).digest().readUInt32LE(0);
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Deterministic bytes for `id`: the AES-256-CTR keystream under a key derived from the seed and the id. */
function content(id: string, sizeBytes: number): Buffer {
  if (sizeBytes === 0) return Buffer.alloc(0);
  const key = createHash('sha256').update(`${seed}\0${id}`).digest();
  return createCipheriv('aes-256-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(sizeBytes));
}

function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

interface Expected {
  readonly sha: string;
  readonly sizeBytes: number;
  readonly sse?: boolean;
}

function s3For(endpoint: string): S3Client {
  // maxAttempts 1: a 503 must be visible, not retried away
  return new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, maxAttempts: 1, credentials: { accessKeyId: accessKey, secretAccessKey: secretKey } });
}

function serverEnv(extra: Record<string, string> = {}): Record<string, string> {
  return { MINIO_STORAGE_CLASS_STANDARD: 'EC:2', MINIO_KMS_SECRET_KEY: kmsSecret, ...extra };
}

/** `root/d1` … `root/dN`, created empty. */
async function makeDrives(root: string, count: number, prefix = 'd'): Promise<string[]> {
  const drives: string[] = [];
  for (let i = 1; i <= count; i++) {
    const drive = path.join(root, `${prefix}${i}`);
    await mkdir(drive, { recursive: true });
    drives.push(drive);
  }
  return drives;
}

/** Runs `fn` over `items` with at most `limit` at a time. */
async function forEachLimit<T>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const index = next++;
      await fn(items[index]!, index);
    }
  });
  await Promise.all(workers);
}

async function sleep(ms: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms));
}

function describeError(error: unknown): string {
  if (error instanceof S3ServiceException) return `${error.name} (HTTP ${error.$metadata.httpStatusCode}): ${error.message}`;
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

/** A failed S3 call that is acceptable while a drive misbehaves: an S3 error answer with a 5xx status. */
function assertClean5xx(error: unknown, what: string): void {
  assert.ok(error instanceof S3ServiceException, `${what}: expected a clean S3 error answer, got ${describeError(error)}`);
  const status = error.$metadata.httpStatusCode ?? 0;
  assert.ok(status >= 500 && status <= 599, `${what}: expected a 5xx S3 error, got ${describeError(error)}`);
}

/** Stores `body` under `key`, as a single PUT or as a multipart upload of 5 MiB parts. */
async function putBody(s3: S3Client, bucket: string, key: string, body: Buffer, options: { multipart?: boolean; sse?: boolean } = {}): Promise<void> {
  const sse = options.sse ? { ServerSideEncryption: 'AES256' as const } : {};
  if (!options.multipart) {
    const put = await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ...sse }));
    if (options.sse) assert.equal(put.ServerSideEncryption, 'AES256', `${key}: SSE-S3 acknowledged`);
    return;
  }
  const created = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key, ...sse }));
  const parts: { PartNumber: number; ETag: string }[] = [];
  const partBytes = 5 * MiB;
  for (let offset = 0, number = 1; offset < body.length || number === 1; offset += partBytes, number++) {
    const uploaded = await s3.send(
      new UploadPartCommand({ Bucket: bucket, Key: key, UploadId: created.UploadId, PartNumber: number, Body: body.subarray(offset, offset + partBytes) }),
    );
    parts.push({ PartNumber: number, ETag: uploaded.ETag! });
  }
  const done = await s3.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: created.UploadId, MultipartUpload: { Parts: parts } }));
  assert.match(done.ETag ?? '', new RegExp(`-${parts.length}"$`), `${key}: multipart ETag`);
}

interface ReadResult {
  readonly status: number;
  readonly code?: string;
  readonly sha?: string;
  readonly sizeBytes?: number;
  readonly contentLength?: number;
  readonly sse?: string;
}

/** GET `key`, hashing the body as it streams in; an error answer is returned as its status and code. */
async function readObject(s3: S3Client, bucket: string, key: string): Promise<ReadResult> {
  try {
    const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    const hash = createHash('sha256');
    let sizeBytes = 0;
    for await (const chunk of got.Body as unknown as AsyncIterable<Uint8Array>) {
      hash.update(chunk);
      sizeBytes += chunk.length;
    }
    return {
      status: 200,
      sha: hash.digest('hex'),
      sizeBytes,
      ...(got.ContentLength === undefined ? {} : { contentLength: got.ContentLength }),
      ...(got.ServerSideEncryption === undefined ? {} : { sse: got.ServerSideEncryption }),
    };
  } catch (error) {
    if (error instanceof S3ServiceException) return { status: error.$metadata.httpStatusCode ?? 0, code: error.name };
    throw new Error(`GET ${bucket}/${key}: ${describeError(error)}`);
  }
}

/** Every expected object reads back byte-identical (GET and HEAD); collects all mismatches before failing. */
async function verifyAll(s3: S3Client, bucket: string, expected: ReadonlyMap<string, Expected>, label: string): Promise<void> {
  const failures: string[] = [];
  await forEachLimit([...expected], 4, async ([key, want]) => {
    const got = await readObject(s3, bucket, key);
    if (got.status !== 200) {
      failures.push(`${key}: GET answered ${got.status} ${got.code}`);
      return;
    }
    if (got.sizeBytes !== want.sizeBytes || got.sha !== want.sha) {
      failures.push(`${key}: GET returned ${got.sizeBytes} bytes sha ${got.sha?.slice(0, 12)}, want ${want.sizeBytes} bytes sha ${want.sha.slice(0, 12)}`);
    }
    if (got.contentLength !== want.sizeBytes) failures.push(`${key}: Content-Length ${got.contentLength}, want ${want.sizeBytes}`);
    if (want.sse && got.sse !== 'AES256') failures.push(`${key}: x-amz-server-side-encryption ${got.sse}, want AES256`);
    try {
      const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      if (head.ContentLength !== want.sizeBytes) failures.push(`${key}: HEAD Content-Length ${head.ContentLength}, want ${want.sizeBytes}`);
    } catch (error) {
      failures.push(`${key}: HEAD failed: ${describeError(error)}`);
    }
  });
  const keys = new Set(failures.map((failure) => failure.slice(0, failure.indexOf(': '))));
  assert.deepEqual(failures, [], `${label}: ${keys.size} of ${expected.size} objects did not read back intact`);
}

/** ListObjectsV2 over the whole bucket (small pages, so pagination is exercised): key → size. */
async function listAll(s3: S3Client, bucket: string): Promise<Map<string, number>> {
  const listed = new Map<string, number>();
  for await (const page of paginateListObjectsV2({ client: s3, pageSize: 70 }, { Bucket: bucket })) {
    for (const object of page.Contents ?? []) {
      assert.ok(!listed.has(object.Key!), `${object.Key} listed twice`);
      listed.set(object.Key!, object.Size!);
    }
  }
  return listed;
}

async function assertListsExactly(s3: S3Client, bucket: string, expected: ReadonlyMap<string, Expected>, label: string): Promise<void> {
  const listed = await listAll(s3, bucket);
  const want = new Map([...expected].map(([key, value]) => [key, value.sizeBytes]));
  const missing = [...want.keys()].filter((key) => !listed.has(key));
  const extra = [...listed.keys()].filter((key) => !want.has(key));
  assert.deepEqual({ missing, extra }, { missing: [], extra: [] }, `${label}: listing differs`);
  for (const [key, size] of want) assert.equal(listed.get(key), size, `${label}: listed size of ${key}`);
}

interface DriveState {
  readonly path: string;
  readonly state: string;
}

/** GET /coffer/admin/v1/info (signed): the `drives` array. */
async function driveStates(endpoint: string): Promise<DriveState[]> {
  const response = await rawRequest(endpoint, { method: 'GET', path: '/coffer/admin/v1/info' });
  assert.equal(response.status, 200, `admin info: ${response.body}`);
  const doc = JSON.parse(response.body) as { drives?: unknown };
  assert.ok(Array.isArray(doc.drives), `admin info has a drives array: ${response.body}`);
  return (doc.drives as DriveState[]).map((drive) => {
    assert.equal(typeof drive.path, 'string');
    assert.ok(['ok', 'offline', 'healing'].includes(drive.state), `drive state ${JSON.stringify(drive.state)}`);
    return { path: drive.path, state: drive.state };
  });
}

/** Polls admin info until `done(states)` holds; fails with the last states after `timeoutMs`. */
async function waitForDrives(endpoint: string, what: string, done: (states: DriveState[]) => boolean, timeoutMs: number): Promise<DriveState[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const states = await driveStates(endpoint);
    if (done(states)) return states;
    if (Date.now() > deadline) assert.fail(`${what}: not reached in ${timeoutMs} ms; drives: ${JSON.stringify(states)}`);
    await sleep(250);
  }
}

interface HealDone {
  readonly scanned: number;
  readonly healed: number;
  readonly failed: number;
}

/** POST /coffer/admin/v1/heal?bucket=B[&prefix=P]: newline-delimited JSON ending in a `done` record. */
async function healViaApi(endpoint: string, bucket: string, prefix?: string): Promise<HealDone> {
  const response = await rawRequest(endpoint, {
    method: 'POST',
    path: '/coffer/admin/v1/heal',
    query: { bucket, ...(prefix === undefined ? {} : { prefix }) },
    body: Buffer.alloc(0),
  });
  assert.equal(response.status, 200, `heal API: ${response.body.slice(0, 2000)}`);
  const records = response.body
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      try {
        return JSON.parse(line) as Record<string, unknown>;
      } catch {
        return assert.fail(`heal API: not a JSON line: ${JSON.stringify(line)}`);
      }
    });
  const done = records.at(-1);
  assert.ok(done && done['type'] === 'done', `heal API: the last record is {"type":"done",…}; got ${JSON.stringify(done)}`);
  for (const field of ['scanned', 'healed', 'failed'] as const) assert.equal(typeof done[field], 'number', `heal API done.${field}`);
  return { scanned: done['scanned'] as number, healed: done['healed'] as number, failed: done['failed'] as number };
}

interface CliRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** `node bin/coffer.js ARGS` from the repository root, with alias `jbod` → `server` (MC_HOST_jbod) only. */
async function runCoffer(args: readonly string[], server: TestServer, configDir: string, timeoutMs = 120_000): Promise<CliRun> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (value !== undefined && !/^(MC_HOST_|COFFER_HOST_)/.test(name)) env[name] = value;
  }
  env['COFFER_CONFIG_DIR'] = configDir;
  env['MC_HOST_jbod'] = `http://${encodeURIComponent(accessKey)}:${encodeURIComponent(secretKey)}@127.0.0.1:${server.port}`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(repoRoot, 'bin', 'coffer.js'), ...args], { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`coffer ${args.join(' ')} took longer than ${timeoutMs} ms; stdout: ${stdout}; stderr: ${stderr}`));
    }, timeoutMs);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** `coffer admin heal TARGET`: exit code 0 and a summary `healed: N objects scanned, N healed, 0 failed`. */
async function healViaCli(target: string, server: TestServer, configDir: string): Promise<HealDone> {
  const run = await runCoffer(['admin', 'heal', target], server, configDir);
  const context = `coffer admin heal ${target} exited ${run.code}\nstdout: ${run.stdout.slice(-3000)}\nstderr: ${run.stderr.slice(-3000)}`;
  assert.equal(run.code, 0, context);
  const summary = healSummaryPattern.exec(run.stdout)?.[0];
  assert.ok(summary, `no summary line starting with "healed:"\n${context}`);
  const number = (pattern: RegExp): number => {
    const match = pattern.exec(summary);
    assert.ok(match, `summary ${JSON.stringify(summary)} has ${pattern}`);
    return Number(match[1]);
  };
  const done = { scanned: number(/(\d+) objects? scanned/), healed: number(/(\d+) healed/), failed: number(/(\d+) failed/) };
  assert.equal(done.failed, 0, context);
  return done;
}

/** The sum of all samples of a metric family (any labels) in GET /minio/v2/metrics/cluster. */
async function metricValue(endpoint: string, name: string): Promise<number> {
  // Signed: works whether or not the endpoint asks for authentication.
  const response = await rawRequest(endpoint, { method: 'GET', path: '/minio/v2/metrics/cluster' });
  assert.equal(response.status, 200, `metrics: ${response.body.slice(0, 500)}`);
  const pattern = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`);
  let sum = 0;
  let found = false;
  for (const line of response.body.split('\n')) {
    const match = pattern.exec(line);
    if (match) {
      sum += Number(match[1]);
      found = true;
    }
  }
  assert.ok(found, `metric ${name} is exported`);
  return sum;
}

interface FormatJson {
  readonly version: number;
  readonly format: string;
  readonly deploymentId: string;
  readonly thisDriveId: string;
  readonly sets: string[][];
}

async function readFormat(drive: string): Promise<FormatJson> {
  return JSON.parse(await readFile(path.join(drive, '.coffer.sys', 'format.json'), 'utf8')) as FormatJson;
}

/** Every drive's format.json: coffer-xl, one deployment, one set naming exactly these drives' IDs. */
async function assertOneSet(drives: readonly string[]): Promise<FormatJson[]> {
  const formats = await Promise.all(drives.map(readFormat));
  const ids = formats.map((format) => format.thisDriveId);
  assert.equal(new Set(ids).size, drives.length, `distinct drive IDs: ${ids.join(', ')}`);
  for (const [index, format] of formats.entries()) {
    const drive = drives[index]!;
    assert.equal(format.format, 'coffer-xl', drive);
    assert.equal(typeof format.version, 'number', drive);
    assert.equal(format.deploymentId, formats[0]!.deploymentId, `${drive}: same deploymentId`);
    assert.deepEqual(format.sets, formats[0]!.sets, `${drive}: same sets matrix`);
  }
  assert.equal(formats[0]!.sets.length, 1, 'one erasure set');
  assert.deepEqual([...formats[0]!.sets[0]!].sort(), [...ids].sort(), 'the set names exactly the drives');
  return formats;
}

function objectDir(drive: string, bucket: string, key: string): string {
  return path.join(drive, bucket, ...key.split('/'));
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}

/** The `<uuid>.data` folders in an object's folder on one drive. */
async function dataDirs(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  return entries.filter((entry) => entry.isDirectory() && /^[0-9a-f-]{36}\.data$/.test(entry.name)).map((entry) => entry.name);
}

/** Asserts the on-disk layout of `key` on `drive`; returns the shard file (coffer.meta when inline, else part.1). */
async function assertLayout(drive: string, bucket: string, key: string, inline: boolean, partCount = 1): Promise<string> {
  const dir = objectDir(drive, bucket, key);
  const meta = path.join(dir, 'coffer.meta');
  assert.ok(await exists(meta), `${meta} exists`);
  const data = await dataDirs(dir);
  if (inline) {
    assert.deepEqual(data, [], `${key} on ${drive} is inline (no data dir)`);
    return meta;
  }
  assert.equal(data.length, 1, `${key} on ${drive} has one data dir: ${data.join(', ')}`);
  const parts = (await readdir(path.join(dir, data[0]!))).sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  assert.deepEqual(parts, Array.from({ length: partCount }, (_, i) => `part.${i + 1}`), `${key} on ${drive}: part files`);
  return path.join(dir, data[0]!, 'part.1');
}

/** One deployment's server across restarts; `stop` is safe to call twice (used in `finally`). */
class Deployment {
  server: TestServer | undefined;
  #s3: S3Client | undefined;

  constructor(
    readonly drives: readonly string[],
    readonly env: Record<string, string> = serverEnv(),
    readonly driveArgs: readonly string[] = drives,
  ) {}

  async start(): Promise<TestServer> {
    assert.equal(this.server, undefined, 'already running');
    this.server = await startServer({ driveArgs: this.driveArgs, env: this.env });
    this.#s3 = s3For(this.server.endpoint);
    return this.server;
  }

  get s3(): S3Client {
    assert.ok(this.#s3, 'server not running');
    return this.#s3;
  }

  get endpoint(): string {
    assert.ok(this.server, 'server not running');
    return this.server.endpoint;
  }

  async stop(): Promise<void> {
    this.#s3?.destroy();
    this.#s3 = undefined;
    const server = this.server;
    this.server = undefined;
    await server?.stop();
  }

  /** SIGKILL first, then drop the client: in-flight requests are cut by the crash, not by the client. */
  async kill(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    await server?.kill();
    this.#s3?.destroy();
    this.#s3 = undefined;
  }
}

/** The `Erasure: …` startup line, printed before `API:`. */
function assertErasureLine(server: TestServer, drives: number, data: number, parity: number, sets = 1): void {
  const stdout = server.stdout();
  const line = `Erasure: ${sets} ${sets === 1 ? 'set' : 'sets'} of ${drives} drives (${data} data + ${parity} parity)`;
  const at = stdout.split('\n').indexOf(line);
  assert.ok(at >= 0, `startup prints ${JSON.stringify(line)}; stdout:\n${stdout}`);
  const api = stdout.split('\n').findIndex((l) => l.startsWith('API: '));
  assert.ok(at < api, `the Erasure line comes before the API line; stdout:\n${stdout}`);
}

interface ServerExit {
  readonly started: boolean;
  readonly code: number | null;
  readonly output: string;
}

/** `coffer server DRIVES…` expected to refuse to start: its exit code and all of its output. */
async function runServerToExit(driveArgs: readonly string[], env: Record<string, string>, certsDir: string): Promise<ServerExit> {
  const args = [path.join(repoRoot, 'bin', 'coffer.js'), 'server', '--address', '127.0.0.1:0', '--certs-dir', certsDir, ...driveArgs];
  const child = spawn(process.execPath, args, {
    cwd: repoRoot,
    env: { ...process.env, MINIO_ROOT_USER: accessKey, MINIO_ROOT_PASSWORD: secretKey, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  let started = false;
  const onData = (chunk: Buffer) => {
    output += chunk.toString();
    if (!started && /API: https?:\/\//.test(output)) {
      started = true;
      child.kill('SIGTERM');
    }
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  const code = await new Promise<number | null>((resolve) => child.once('close', (exitCode) => resolve(exitCode)));
  clearTimeout(timer);
  return { started, code, output };
}

/** XOR `count` distinct bytes of `buffer` in [from, buffer.length) with non-zero masks. */
function flipBytes(buffer: Buffer, from: number, count: number, random: () => number): Buffer {
  const copy = Buffer.from(buffer);
  const span = buffer.length - from;
  assert.ok(span > 0, 'something to flip');
  const offsets = new Set<number>();
  while (offsets.size < Math.min(count, span)) offsets.add(from + Math.floor(random() * span));
  for (const offset of offsets) copy[offset] = copy[offset]! ^ (1 + Math.floor(random() * 255));
  return copy;
}

// ------------------------------------------------------------------------------------------------ tests

describe('multi-drive erasure sets (JBOD)', () => {
  it('keeps ~200 mixed objects through the loss of any 2 of 4 drives (EC:2) and heals fresh drives', { timeout: 240_000 }, async () => {
    const root = await makeTempDir('jbod-lose2');
    const drives = await makeDrives(root, 4);
    const deployment = new Deployment(drives);
    const bucket = 'mixed';
    try {
      const first = await deployment.start();
      assertErasureLine(first, 4, 2, 2);
      await assertOneSet(drives);
      await deployment.s3.send(new CreateBucketCommand({ Bucket: bucket }));

      // ~200 objects, ~190 MiB: a few 8–40 MiB, ~20 of 1–11 MiB, ~175 of 0–300 KiB (around the 256 KiB
      // inline limit of a 2-data-shard set), some multipart (5 MiB parts), some SSE-S3, nested prefixes.
      const random = prng('mixed');
      const specs: { key: string; sizeBytes: number; multipart: boolean; sse: boolean }[] = [
        { key: 'big/multipart-40m.bin', sizeBytes: 40 * MiB, multipart: true, sse: false },
        { key: 'big/multipart-sse-24m.bin', sizeBytes: 24 * MiB + 12_345, multipart: true, sse: true },
        { key: 'big/single-16m.bin', sizeBytes: 16 * MiB + 1, multipart: false, sse: false },
        { key: 'big/single-sse-8m.bin', sizeBytes: 8 * MiB, multipart: false, sse: true },
        { key: 'medium/multipart-6m.bin', sizeBytes: 6 * MiB, multipart: true, sse: false },
        { key: 'medium/multipart-sse-11m.bin', sizeBytes: 11 * MiB - 7, multipart: true, sse: true },
        { key: 'small/multipart-one-part.bin', sizeBytes: 100 * KiB, multipart: true, sse: false },
        { key: 'small/multipart-one-part-sse.bin', sizeBytes: 200 * KiB + 3, multipart: true, sse: true },
      ];
      for (let i = 0; i < 18; i++) {
        specs.push({ key: `medium/m-${String(i).padStart(2, '0')}.bin`, sizeBytes: MiB + Math.floor(random() * 4 * MiB), multipart: i % 6 === 0, sse: i % 4 === 1 });
      }
      const boundaries = [0, 1, 15, 128 * KiB, 256 * KiB - 1, 256 * KiB, 256 * KiB + 1, 300 * KiB];
      for (let i = 0; specs.length < 200; i++) {
        const sizeBytes = i < boundaries.length ? boundaries[i]! : Math.floor(random() ** 2 * 300 * KiB);
        const folder = i % 10 === 9 ? 'small/deep/a/b/c' : `small/g${i % 6}`;
        specs.push({ key: `${folder}/obj-${String(i).padStart(3, '0')}`, sizeBytes, multipart: false, sse: i % 9 === 4 });
      }
      const expected = new Map<string, Expected>();
      await forEachLimit(specs, 4, async (spec) => {
        const body = content(spec.key, spec.sizeBytes);
        await putBody(deployment.s3, bucket, spec.key, body, spec);
        expected.set(spec.key, { sha: sha256(body), sizeBytes: spec.sizeBytes, sse: spec.sse });
      });
      assert.equal(expected.size, 200);
      // on every drive: one part.N per part of a multipart object; inline up to 2 × 128 KiB, a data dir above
      for (const drive of drives) {
        await assertLayout(drive, bucket, 'big/multipart-40m.bin', false, 8);
        await assertLayout(drive, bucket, 'small/g5/obj-005', true); // 256 KiB
        await assertLayout(drive, bucket, 'small/g0/obj-006', false); // 256 KiB + 1
      }
      await verifyAll(deployment.s3, bucket, expected, 'all drives');

      // two drives vanish under the running server
      await removeDir(drives[0]!);
      await removeDir(drives[2]!);
      await verifyAll(deployment.s3, bucket, expected, 'd1 and d3 deleted while running');
      await assertListsExactly(deployment.s3, bucket, expected, 'd1 and d3 deleted while running');
      // 2 of 4 drives are below the write quorum of 2+2 (3): PUTs fail cleanly, and nothing rebuilds the
      // vanished drive folders (they may be unmounted disks).
      for (const sizeBytes of [1000, 3 * MiB]) {
        try {
          await putBody(deployment.s3, bucket, `refused/${sizeBytes}`, content('refused', sizeBytes));
          assert.fail(`a ${sizeBytes}-byte PUT with 2 of 4 drives must fail`);
        } catch (error) {
          assertClean5xx(error, `PUT of ${sizeBytes} bytes with 2 of 4 drives`);
        }
      }
      assert.equal(await exists(drives[0]!), false, 'd1 was not recreated');
      assert.equal(await exists(drives[2]!), false, 'd3 was not recreated');

      // replaced by empty folders: formatted and healed at startup
      await deployment.stop();
      await mkdir(drives[0]!);
      await mkdir(drives[2]!);
      const second = await deployment.start();
      assertErasureLine(second, 4, 2, 2);
      const states = await waitForDrives(second.endpoint, 'the fresh drives healed', (s) => s.length === 4 && s.every((d) => d.state !== 'healing'), 150_000);
      assert.deepEqual(states.map((d) => d.state), ['ok', 'ok', 'ok', 'ok'], JSON.stringify(states));
      await assertOneSet(drives);
      const configDir = path.join(root, 'client-config');
      const healed = await healViaCli(`jbod/${bucket}`, second, configDir);
      assert.ok(healed.scanned >= 200, `heal scanned ${healed.scanned} objects`);
      for (const key of expected.keys()) {
        for (const drive of [drives[0]!, drives[2]!]) assert.ok(await exists(path.join(objectDir(drive, bucket, key), 'coffer.meta')), `${key} healed onto ${drive}`);
      }

      // now the other two drives go (absent at startup: offline), and the healed ones carry everything
      await deployment.stop();
      await removeDir(drives[1]!);
      await removeDir(drives[3]!);
      const third = await deployment.start();
      const degraded = await driveStates(third.endpoint);
      assert.equal(degraded.length, 4);
      assert.equal(degraded.filter((d) => d.state === 'offline').length, 2, `two drives offline: ${JSON.stringify(degraded)}`);
      await verifyAll(deployment.s3, bucket, expected, 'd2 and d4 missing at startup');
      await assertListsExactly(deployment.s3, bucket, expected, 'd2 and d4 missing at startup');
    } finally {
      await deployment.stop();
      await removeDir(root);
    }
  });

  it('detects flipped shard bytes, serves the right bytes, counts them and heals the files back', { timeout: 90_000 }, async () => {
    const root = await makeTempDir('jbod-bitrot');
    const drives = await makeDrives(root, 4);
    const deployment = new Deployment(drives);
    const bucket = 'bitrot';
    try {
      const server = await deployment.start();
      await deployment.s3.send(new CreateBucketCommand({ Bucket: bucket }));
      const random = prng('bitrot');
      const dataShards = 2;
      const objects: { key: string; sizeBytes: number; inline: boolean }[] = [];
      for (let i = 0; i < 30; i++) {
        const inline = i % 2 === 0 && i < 28; // 14 inline-sized (≤ 200 KiB < 2 × 128 KiB), 16 of 1–6 MiB
        const sizeBytes = inline ? 1 + Math.floor(random() * 200 * KiB) : MiB + Math.floor(random() * 5 * MiB);
        objects.push({ key: `rot/obj-${String(i).padStart(2, '0')}`, sizeBytes, inline });
      }
      const expected = new Map<string, Expected>();
      await forEachLimit(objects, 4, async (object) => {
        const body = content(object.key, object.sizeBytes);
        await putBody(deployment.s3, bucket, object.key, body);
        expected.set(object.key, { sha: sha256(body), sizeBytes: object.sizeBytes });
      });

      // candidate shard files: every (object, drive)
      const candidates: { key: string; drive: number; file: string; from: number }[] = [];
      for (const object of objects) {
        for (const [index, drive] of drives.entries()) {
          const file = await assertLayout(drive, bucket, object.key, object.inline);
          const sizeBytes = (await stat(file)).size;
          // inline: only the trailing shard bytes (the last ⌈size/D⌉ bytes of coffer.meta); part.N: anywhere
          const from = object.inline ? sizeBytes - Math.min(sizeBytes, Math.ceil(object.sizeBytes / dataShards)) : 0;
          candidates.push({ key: object.key, drive: index, file, from });
        }
      }
      // 20 files at random, at most 2 drives per object
      for (let i = candidates.length - 1; i > 0; i--) {
        const j = Math.floor(random() * (i + 1));
        [candidates[i], candidates[j]] = [candidates[j]!, candidates[i]!];
      }
      const perObject = new Map<string, number>();
      const chosen: typeof candidates = [];
      for (const candidate of candidates) {
        const count = perObject.get(candidate.key) ?? 0;
        if (chosen.length === 20 || count === 2) continue;
        perObject.set(candidate.key, count + 1);
        chosen.push(candidate);
      }
      assert.equal(chosen.length, 20);
      assert.ok(chosen.some((c) => c.file.endsWith('coffer.meta')) && chosen.some((c) => !c.file.endsWith('coffer.meta')), 'both kinds of shard file are corrupted');
      const originals = new Map<string, Buffer>();
      for (const candidate of chosen) {
        const original = await readFile(candidate.file);
        originals.set(candidate.file, original);
        await writeFile(candidate.file, flipBytes(original, candidate.from, 1 + Math.floor(random() * 4), random));
      }

      const errorsBefore = await metricValue(server.endpoint, 'coffer_erasure_shard_errors_total');
      const healedBefore = await metricValue(server.endpoint, 'coffer_heal_objects_total');
      await verifyAll(deployment.s3, bucket, expected, 'with 20 corrupted shard files');
      const errorsAfter = await metricValue(server.endpoint, 'coffer_erasure_shard_errors_total');
      assert.ok(errorsAfter > errorsBefore, `coffer_erasure_shard_errors_total went from ${errorsBefore} to ${errorsAfter}`);

      const done = await healViaApi(server.endpoint, bucket);
      assert.equal(done.failed, 0, JSON.stringify(done));
      assert.ok(done.scanned >= objects.length, `heal scanned ${done.scanned}`);
      const stillBad: string[] = [];
      for (const [file, original] of originals) {
        const now = await readFile(file).catch(() => undefined);
        if (!now || !now.equals(original)) stillBad.push(path.relative(root, file));
      }
      assert.deepEqual(stillBad, [], 'every corrupted shard file is byte-identical to its original after the heal');
      const healedAfter = await metricValue(server.endpoint, 'coffer_heal_objects_total');
      assert.ok(healedAfter - healedBefore >= perObject.size, `coffer_heal_objects_total went from ${healedBefore} to ${healedAfter}; ${perObject.size} objects were corrupted`);
      await verifyAll(deployment.s3, bucket, expected, 'after the heal');
    } finally {
      await deployment.stop();
      await removeDir(root);
    }
  });

  it('answers 503 SlowDown, never wrong bytes, when 3 of 4 drives are gone', { timeout: 60_000 }, async () => {
    const root = await makeTempDir('jbod-noquorum');
    const drives = await makeDrives(root, 4);
    const deployment = new Deployment(drives);
    const bucket = 'gone';
    try {
      const server = await deployment.start();
      const s3 = deployment.s3;
      await s3.send(new CreateBucketCommand({ Bucket: bucket }));
      const sizes = [0, 10, 100 * KiB, 2 * MiB, 3 * MiB + 5];
      for (const [index, sizeBytes] of sizes.entries()) {
        await putBody(s3, bucket, `obj-${index}`, content(`gone-${index}`, sizeBytes), { sse: index === 3 });
      }
      for (const drive of drives.slice(0, 3)) await removeDir(drive);

      for (const index of sizes.keys()) {
        const key = `obj-${index}`;
        const get = await rawRequest(server.endpoint, { method: 'GET', path: `/${bucket}/${key}` });
        assert.equal(get.status, 503, `GET ${key}: ${get.status} ${get.body.slice(0, 300)}`);
        assert.equal(errorCode(get), 'SlowDown', `GET ${key}: ${get.body.slice(0, 300)}`);
        const head = await rawRequest(server.endpoint, { method: 'HEAD', path: `/${bucket}/${key}` });
        assert.equal(head.status, 503, `HEAD ${key}`);
        const sdk = await readObject(s3, bucket, key);
        assert.deepEqual({ status: sdk.status, code: sdk.code }, { status: 503, code: 'SlowDown' }, `SDK GET ${key}`);
      }
      const put = await rawRequest(server.endpoint, { method: 'PUT', path: `/${bucket}/new-object`, body: content('new', 1000) });
      assert.equal(put.status, 503, `PUT: ${put.status} ${put.body.slice(0, 300)}`);
      assert.equal(errorCode(put), 'SlowDown', put.body);
      await assert.rejects(s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'obj-1', Body: content('overwrite', 2 * MiB) })), (error: unknown) => {
        assert.ok(error instanceof S3ServiceException, describeError(error));
        assert.equal(error.$metadata.httpStatusCode, 503, describeError(error));
        assert.equal(error.name, 'SlowDown');
        return true;
      });
      const list = await rawRequest(server.endpoint, { method: 'GET', path: `/${bucket}`, query: { 'list-type': '2' } });
      assert.equal(list.status, 503, `ListObjectsV2: ${list.status} ${list.body.slice(0, 300)}`);
    } finally {
      await deployment.stop();
      await removeDir(root);
    }
  });

  it('keeps acknowledged PUTs and shows no torn object after kill -9 during concurrent PUTs', { timeout: 120_000 }, async () => {
    const root = await makeTempDir('jbod-crash');
    const drives = await makeDrives(root, 4);
    const deployment = new Deployment(drives);
    const bucket = 'crash';
    try {
      await deployment.start();
      const s3 = deployment.s3;
      await s3.send(new CreateBucketCommand({ Bucket: bucket }));

      // 8 workers, each overwriting its own 3 keys in turn, so the versions of one key are strictly ordered
      interface Attempt {
        readonly sha: string;
        readonly sizeBytes: number;
        acknowledged: boolean;
      }
      const history = new Map<string, Attempt[]>();
      const unexpected: string[] = [];
      let acknowledged = 0;
      let killed = false;
      const random = prng('crash');
      const workers = Array.from({ length: 8 }, async (_, worker) => {
        const keys = [0, 1, 2].map((k) => `w${worker}/key-${k}`);
        for (const key of keys) history.set(key, []);
        for (let version = 0; !killed; version++) {
          const key = keys[version % keys.length]!;
          const sizeBytes = Math.floor(MiB / 2 + random() * 2.5 * MiB);
          const body = content(`${key}#${version}`, sizeBytes);
          const attempt: Attempt = { sha: sha256(body), sizeBytes, acknowledged: false };
          history.get(key)!.push(attempt);
          try {
            await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
          } catch (error) {
            if (!killed) unexpected.push(`${key} v${version}: ${describeError(error)}`);
            return;
          }
          attempt.acknowledged = true;
          acknowledged++;
        }
      });
      const deadline = Date.now() + 60_000;
      while (acknowledged < 24 && unexpected.length === 0 && Date.now() < deadline) await sleep(10);
      assert.deepEqual(unexpected, [], 'PUTs before the crash succeed');
      assert.ok(acknowledged >= 24, `only ${acknowledged} PUTs acknowledged in 60 s`);
      killed = true;
      await deployment.kill();
      await Promise.all(workers);
      const attempts = [...history.values()].flat();
      assert.ok(attempts.some((a) => !a.acknowledged), 'some PUTs were cut by the crash');

      await deployment.start();
      const after = new Map<string, ReadResult>();
      const failures: string[] = [];
      for (const [key, versions] of history) {
        if (versions.length === 0) continue;
        const got = await readObject(deployment.s3, bucket, key);
        after.set(key, got);
        const lastAck = versions.findLastIndex((v) => v.acknowledged);
        // the last acknowledged version or one attempted after it; never an older one, never torn
        const allowed = versions.slice(Math.max(lastAck, 0));
        if (got.status === 404 && got.code === 'NoSuchKey') {
          if (lastAck >= 0) failures.push(`${key}: NoSuchKey, but version ${lastAck} was acknowledged`);
        } else if (got.status !== 200) {
          failures.push(`${key}: GET answered ${got.status} ${got.code}`);
        } else if (!allowed.some((v) => v.sha === got.sha && v.sizeBytes === got.sizeBytes)) {
          const older = versions.some((v) => v.sha === got.sha);
          failures.push(`${key}: ${got.sizeBytes} bytes matching ${older ? 'an OLDER version than the last acknowledged one' : 'no version written (torn)'}`);
        }
      }
      assert.deepEqual(failures, [], 'after restart');
      const listed = await listAll(deployment.s3, bucket);
      for (const [key, size] of listed) {
        const got = after.get(key);
        assert.ok(got && got.status === 200, `listed ${key} reads back`);
        assert.equal(size, got.sizeBytes, `listed size of ${key}`);
      }
      for (const [key, got] of after) if (got.status === 200) assert.ok(listed.has(key), `${key} is listed`);

      const configDir = path.join(root, 'client-config');
      await healViaCli('jbod', deployment.server!, configDir);

      // fully healed: any 2 drives carry what the restart showed
      await deployment.stop();
      await removeDir(drives[1]!);
      await removeDir(drives[2]!);
      await deployment.start();
      for (const [key, before] of after) {
        const got = await readObject(deployment.s3, bucket, key);
        if (before.status === 200) {
          assert.deepEqual({ status: got.status, sha: got.sha }, { status: 200, sha: before.sha }, `${key} after heal with d2, d3 gone`);
        } else {
          assert.notEqual(got.status, 200, `${key} was absent and stays absent`);
        }
      }
    } finally {
      await deployment.stop();
      await removeDir(root);
    }
  });

  it('keeps PUTs succeeding or failing cleanly when a drive turns read-only mid-write, then heals it', { timeout: 120_000 }, async (t: TestContext) => {
    const root = await makeTempDir('jbod-readonly');
    const drives = await makeDrives(root, 4);
    const deployment = new Deployment(drives);
    const bucket = 'readonly';
    const victim = drives[1]!;
    let immutable = false;
    try {
      const probe = path.join(root, 'chattr-probe');
      await writeFile(probe, 'x');
      try {
        await execFileAsync('chattr', ['+i', probe]);
        await execFileAsync('chattr', ['-i', probe]);
      } catch (error) {
        t.skip(`chattr +i is not available here: ${describeError(error)}`);
        return;
      }
      await deployment.start();
      const s3 = deployment.s3;
      await s3.send(new CreateBucketCommand({ Bucket: bucket }));

      const random = prng('readonly');
      const objects = Array.from({ length: 24 }, (_, i) => ({ key: `ro/obj-${String(i).padStart(2, '0')}`, sizeBytes: MiB + Math.floor(random() * 3 * MiB) }));
      const acknowledged = new Map<string, Expected>();
      let startedAfterImmutable = 0;
      let chattr: Promise<void> | undefined;
      await forEachLimit(objects, 2, async (object) => {
        if (immutable) startedAfterImmutable++;
        const body = content(object.key, object.sizeBytes);
        try {
          await s3.send(new PutObjectCommand({ Bucket: bucket, Key: object.key, Body: body }));
          acknowledged.set(object.key, { sha: sha256(body), sizeBytes: object.sizeBytes });
        } catch (error) {
          assert.ok(immutable || chattr, `PUT ${object.key} failed before the drive turned read-only: ${describeError(error)}`);
          assertClean5xx(error, `PUT ${object.key}`);
        }
        if (acknowledged.size === 6 && !chattr) {
          // the other worker's PUT is in flight while this runs
          chattr = execFileAsync('chattr', ['-R', '+i', victim]).then(() => {
            immutable = true;
          });
          await chattr;
        }
      });
      assert.ok(chattr, 'the drive was made read-only');
      await chattr;
      assert.ok(startedAfterImmutable >= 10, `${startedAfterImmutable} PUTs started after the drive turned read-only`);
      await assert.rejects(writeFile(path.join(victim, '.coffer.sys', 'probe'), 'x'), 'the drive really is read-only');
      await verifyAll(s3, bucket, acknowledged, 'one drive read-only');

      await execFileAsync('chattr', ['-R', '-i', victim]);
      immutable = false;
      // give a drive monitor the chance to notice the drive works again (not required: the heal must cope)
      await waitForDrives(deployment.endpoint, 'no drive offline', (s) => s.every((d) => d.state === 'ok'), 30_000).catch(() => undefined);
      const configDir = path.join(root, 'client-config');
      await healViaCli(`jbod/${bucket}`, deployment.server!, configDir);

      // healed: the formerly read-only drive and one other carry every acknowledged object
      await deployment.stop();
      await removeDir(drives[0]!);
      await removeDir(drives[2]!);
      await deployment.start();
      await verifyAll(deployment.s3, bucket, acknowledged, 'after heal, d1 and d3 gone');
      const listed = await listAll(deployment.s3, bucket);
      for (const key of acknowledged.keys()) assert.ok(listed.has(key), `${key} is listed`);
      for (const key of listed.keys()) assert.ok(objects.some((o) => o.key === key), `unexpected key ${key}`);
    } finally {
      await deployment.stop();
      // always: an immutable file would make the temp folder's removal fail
      if (await exists(victim)) await execFileAsync('chattr', ['-R', '-i', victim]).catch(() => undefined);
      await execFileAsync('chattr', ['-i', path.join(root, 'chattr-probe')]).catch(() => undefined);
      await removeDir(root);
    }
  });

  it('keeps PUTs succeeding or failing cleanly when a drive fills up', { timeout: 90_000 }, async (t: TestContext) => {
    const root = await makeTempDir('jbod-full');
    const drives = await makeDrives(root, 4);
    const small = drives[2]!;
    const deployment = new Deployment(drives);
    const bucket = 'full';
    let mounted = false;
    try {
      try {
        await execFileAsync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', small]);
        mounted = true;
      } catch (error) {
        t.skip(`cannot mount a tmpfs here: ${describeError(error)}`);
        return;
      }
      await deployment.start();
      const s3 = deployment.s3;
      await s3.send(new CreateBucketCommand({ Bucket: bucket }));

      // 20 × 1.5 MiB: ~15 MiB of shards for the 8 MiB drive
      const acknowledged = new Map<string, Expected>();
      const failed: string[] = [];
      for (let i = 0; i < 20; i++) {
        const key = `fill/obj-${String(i).padStart(2, '0')}`;
        const body = content(key, 1.5 * MiB + i);
        try {
          await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
          acknowledged.set(key, { sha: sha256(body), sizeBytes: body.length });
        } catch (error) {
          assertClean5xx(error, `PUT ${key}`);
          failed.push(key);
        }
      }
      assert.ok(acknowledged.size >= 3, `the first PUTs fit on every drive: ${acknowledged.size} acknowledged, failed: ${failed.join(', ')}`);
      const usage = await statfs(small);
      t.diagnostic(`${acknowledged.size} PUTs acknowledged, ${failed.length} failed; ${usage.bavail * usage.bsize} bytes left on the 8 MiB drive`);
      await verifyAll(s3, bucket, acknowledged, 'with a full drive');
      // an acknowledged PUT reached the write quorum (3 of 4): it survives one more lost drive
      await removeDir(drives[0]!);
      await verifyAll(s3, bucket, acknowledged, 'with a full drive and d1 deleted');
    } finally {
      await deployment.stop();
      if (mounted) {
        await execFileAsync('umount', [small]).catch(() => execFileAsync('umount', ['-l', small]).catch(() => undefined));
      }
      await removeDir(root);
    }
  });

  it('spreads objects over 2 sets of 10 drives (d{1...20}) and survives losing 4 drives of each set', { timeout: 120_000 }, async () => {
    const root = await makeTempDir('jbod-sets');
    const bucket = 'sets';
    const drives = await makeDrives(root, 20);
    const deployment = new Deployment(drives, serverEnv({ MINIO_STORAGE_CLASS_STANDARD: '' }), [`${root}/d{1...20}`]);
    try {
      assertErasureLine(await deployment.start(), 10, 6, 4, 2);
      const formats = await Promise.all(drives.map(readFormat));
      assert.equal(new Set(formats.map((format) => format.deploymentId)).size, 1, 'one deployment');
      assert.deepEqual(formats[0]!.sets.map((set) => set.length), [10, 10], 'two sets of 10 in format.json');
      formats.forEach((format, index) => assert.equal(format.thisDriveId, format.sets[Math.floor(index / 10)]![index % 10], `drive ${index + 1} position`));

      await deployment.s3.send(new CreateBucketCommand({ Bucket: bucket }));
      const expected = new Map<string, Expected>();
      for (let index = 0; index < 40; index++) {
        const key = `obj/${index}`;
        const sizeBytes = index % 5 === 0 ? 3 * MiB + index : index * 977;
        const body = content(`sets:${key}`, sizeBytes);
        const sse = index % 7 === 0;
        await putBody(deployment.s3, bucket, key, body, { sse, multipart: index === 35 });
        expected.set(key, { sha: sha256(body), sizeBytes: body.length, sse });
      }
      // Each object lives in exactly one set: on all 10 drives of it, on none of the other.
      const inSet = [0, 0];
      for (const key of expected.keys()) {
        const holders = await Promise.all(drives.map((drive) => exists(path.join(objectDir(drive, bucket, key), 'coffer.meta'))));
        const first = holders.slice(0, 10).filter(Boolean).length;
        const second = holders.slice(10).filter(Boolean).length;
        assert.ok((first === 10 && second === 0) || (first === 0 && second === 10), `${key}: ${first} + ${second} copies`);
        inSet[first === 10 ? 0 : 1]! += 1;
      }
      assert.ok(inSet[0]! > 5 && inSet[1]! > 5, `both sets hold objects: ${inSet.join(' / ')}`);
      await assertListsExactly(deployment.s3, bucket, expected, '2 sets');

      // Losing parity-many (4) drives in each set loses nothing.
      for (const index of [0, 3, 5, 9, 10, 12, 17, 19]) await removeDir(drives[index]!);
      await verifyAll(deployment.s3, bucket, expected, '2 sets, 8 drives gone');
      await assertListsExactly(deployment.s3, bucket, expected, '2 sets, 8 drives gone');
      const states = await waitForDrives(deployment.endpoint, '8 drives offline', (all) => all.filter((drive) => drive.state === 'offline').length === 8, 10_000);
      assert.equal(states.length, 20);
      // The operator's view: `coffer admin info` names the layout and the missing drives.
      const info = await runCoffer(['admin', 'info', 'jbod'], deployment.server!, path.join(root, '.config'));
      assert.equal(info.code, 0, info.stderr);
      assert.match(info.stdout, /\n {3}Drives: 12\/20 degraded\n/);
      assert.match(info.stdout, /\n {3}Erasure: 2 sets of 10 drives \(6 data \+ 4 parity\)\n/);
      assert.equal(info.stdout.match(/Drive offline: /g)?.length, 8, info.stdout);
    } finally {
      await deployment.stop();
      await removeDir(root);
    }
  });

  it('serves concurrent PUT/GET/DELETE correctly while drives are removed and replaced one at a time, then heals them all', { timeout: 150_000 }, async () => {
    const root = await makeTempDir('jbod-chaos');
    const bucket = 'chaos';
    const drives = await makeDrives(root, 4);
    const deployment = new Deployment(drives, serverEnv({ MINIO_STORAGE_CLASS_STANDARD: 'EC:2', COFFER_SCANNER_INTERVAL_MS: '200' }));
    try {
      await deployment.start();
      const s3 = deployment.s3;
      await s3.send(new CreateBucketCommand({ Bucket: bucket }));
      const random = prng('chaos');
      /** per key: the SHA-256 of its last acknowledged content, null after an acknowledged delete, 'unsure' after a failed write */
      const expected = new Map<string, string | null>();
      let stop = false;
      let operations = 0;
      let wrongReads = 0;
      const worker = async (id: number): Promise<void> => {
        // Each worker owns its keys, so what it expects never races another worker's writes.
        for (let turn = 0; !stop; turn++) {
          const key = `w${id}/k${Math.floor(random() * 8)}`;
          const roll = random();
          operations += 1;
          const known = expected.get(key);
          try {
            if (roll < 0.5) {
              const body = content(`${key}:${turn}`, random() < 0.5 ? Math.floor(random() * 200 * KiB) : Math.floor(random() * 3 * MiB));
              expected.set(key, 'unsure');
              await putBody(s3, bucket, key, body, { sse: random() < 0.3 });
              expected.set(key, sha256(body));
            } else if (roll < 0.9) {
              if (typeof known !== 'string' || known === 'unsure') continue;
              const read = await readObject(s3, bucket, key);
              if (read.status === 200 && read.sha !== known) wrongReads += 1;
              if (read.status !== 200) assert.ok(read.status >= 500, `chaos GET ${key}: ${read.status} ${read.code}`);
            } else {
              expected.set(key, 'unsure');
              await deployment.s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
              expected.set(key, null);
            }
          } catch (error) {
            // A failure must be a clean S3 error; the key's state is then unknown until written again.
            assertClean5xx(error, `chaos ${key}`);
          }
        }
      };
      const chaos = async (): Promise<void> => {
        while (!stop) {
          await sleep(2000);
          if (stop) break;
          const victim = drives[Math.floor(random() * drives.length)]!;
          for (let attempt = 0; attempt < 20; attempt++) {
            try {
              await removeDir(victim); // the server may be creating files in it meanwhile
              break;
            } catch {
              await sleep(50);
            }
          }
          await sleep(1500);
          await mkdir(victim, { recursive: true }); // a replacement drive: formatted and healed by the server
        }
      };
      const running = [0, 1, 2, 3].map(worker);
      const chaotic = chaos();
      await sleep(15_000);
      stop = true;
      await Promise.all([...running, chaotic]);
      assert.equal(wrongReads, 0, 'no GET returned wrong bytes');
      assert.ok(operations > 100, `enough load: ${operations} operations`);

      await waitForDrives(deployment.endpoint, 'every replaced drive healed', (states) => states.every((drive) => drive.state === 'ok'), 90_000);
      const check = async (label: string): Promise<void> => {
        for (const [key, want] of expected) {
          if (want === 'unsure') continue;
          const read = await readObject(s3, bucket, key);
          if (want === null) {
            assert.equal(read.code, 'NoSuchKey', `${label}: ${key} was deleted`);
            continue;
          }
          assert.equal(read.sha, want, `${label}: ${key} (${read.status} ${read.code ?? ''})`);
        }
      };
      await check('all drives back');
      // Every object is whole on every drive again: any 2 drives can go.
      await removeDir(drives[1]!);
      await removeDir(drives[3]!);
      await check('d2 and d4 removed');
    } finally {
      await deployment.stop();
      await removeDir(root);
    }
  });

  it('saves heals that could not run yet and completes them after a restart (no scanner, no admin heal)', { timeout: 90_000 }, async (t: TestContext) => {
    const root = await makeTempDir('jbod-mrf');
    const bucket = 'mrf';
    const drives = await makeDrives(root, 4);
    // The scanner is off: only the saved heal queue can bring the missed shards back.
    const deployment = new Deployment(drives, serverEnv({ MINIO_STORAGE_CLASS_STANDARD: 'EC:2', COFFER_SCANNER_INTERVAL_MS: '0' }));
    const lockedDir = path.join(drives[1]!, bucket);
    let locked = false;
    try {
      await deployment.start();
      await deployment.s3.send(new CreateBucketCommand({ Bucket: bucket }));
      try {
        await execFileAsync('chattr', ['+i', lockedDir]); // d2 stays online but cannot take new objects
        locked = true;
      } catch (error) {
        t.skip(`chattr +i is not available here: ${describeError(error)}`);
        return;
      }
      const expected = new Map<string, Expected>();
      for (const [index, sizeBytes] of [1000, 200 * KiB, 3 * MiB].entries()) {
        const key = `missed/${index}`;
        const body = content(key, sizeBytes);
        await putBody(deployment.s3, bucket, key, body); // 3 of 4 drives: write quorum met
        expected.set(key, { sha: sha256(body), sizeBytes, sse: false });
      }
      for (const key of expected.keys()) assert.equal(await exists(path.join(objectDir(drives[1]!, bucket, key), 'coffer.meta')), false, `${key} missed d2`);
      await sleep(1500); // the heals fail (d2 still immutable) and wait for a retry
      await deployment.stop();
      const saved = JSON.parse(await readFile(path.join(drives[0]!, '.coffer.sys', 'heal-queue.json'), 'utf8')) as [string, string][];
      assert.deepEqual(saved.map(([b, k]) => `${b}/${k}`).sort(), [...expected.keys()].map((key) => `${bucket}/${key}`).sort(), 'the failed heals were saved');

      await execFileAsync('chattr', ['-i', lockedDir]);
      locked = false;
      await deployment.start();
      const deadline = Date.now() + 20_000;
      for (const key of expected.keys()) {
        while (!(await exists(path.join(objectDir(drives[1]!, bucket, key), 'coffer.meta')))) {
          assert.ok(Date.now() < deadline, `${key} was not healed onto d2 from the saved queue`);
          await sleep(200);
        }
      }
      // d2 now holds real shards: with two other drives gone everything still reads.
      await deployment.stop();
      await removeDir(drives[0]!);
      await removeDir(drives[2]!);
      await deployment.start();
      await verifyAll(deployment.s3, bucket, expected, 'healed from the saved queue, d1 and d3 gone');
    } finally {
      if (locked) await execFileAsync('chattr', ['-i', lockedDir]).catch(() => undefined);
      await deployment.stop();
      await removeDir(root);
    }
  });

  it('chooses the default parity (2 drives → 1+1, d{1...8} → 4+4) and refuses a drive of another deployment', { timeout: 90_000 }, async () => {
    const root = await makeTempDir('jbod-parity');
    const bucket = 'parity';
    // explicitly unset, so a developer's environment cannot change the default
    const defaultEnv = { MINIO_STORAGE_CLASS_STANDARD: '', MINIO_KMS_SECRET_KEY: kmsSecret };
    const running: Deployment[] = [];
    const roundTrip = async (deployment: Deployment, drives: readonly string[], inlineBytes: number): Promise<void> => {
      const s3 = deployment.s3;
      await s3.send(new CreateBucketCommand({ Bucket: bucket }));
      const objects = [
        { key: 'empty', sizeBytes: 0 },
        { key: 'inline/small.bin', sizeBytes: inlineBytes },
        { key: 'data/three-mib.bin', sizeBytes: 3 * MiB + 17 },
      ];
      const expected = new Map<string, Expected>();
      for (const object of objects) {
        const body = content(`${drives.length}:${object.key}`, object.sizeBytes);
        const sse = object.key === 'data/three-mib.bin';
        await putBody(s3, bucket, object.key, body, { sse });
        expected.set(object.key, { sha: sha256(body), sizeBytes: object.sizeBytes, sse });
      }
      await verifyAll(s3, bucket, expected, `${drives.length} drives`);
      for (const drive of drives) {
        await assertLayout(drive, bucket, 'inline/small.bin', true);
        await assertLayout(drive, bucket, 'data/three-mib.bin', false);
      }
      const states = await driveStates(deployment.endpoint);
      assert.deepEqual(states.map((d) => d.state), drives.map(() => 'ok'));
    };
    try {
      // 2 drives as separate arguments: 1 data + 1 parity (inline up to 128 KiB)
      const two = await makeDrives(path.join(root, 'two'), 2);
      const pair = new Deployment(two, defaultEnv);
      running.push(pair);
      assertErasureLine(await pair.start(), 2, 1, 1);
      await assertOneSet(two);
      await roundTrip(pair, two, 100 * KiB);
      await pair.stop();

      // 8 drives as one ellipsis argument: 4 data + 4 parity (inline up to 512 KiB)
      const base = path.join(root, 'eight');
      const eight = await makeDrives(base, 8);
      const octet = new Deployment(eight, defaultEnv, [`${base}/d{1...8}`]);
      running.push(octet);
      assertErasureLine(await octet.start(), 8, 4, 4);
      await assertOneSet(eight);
      await roundTrip(octet, eight, 300 * KiB);
      await octet.stop();

      // a drive formatted by another deployment
      const a = await makeDrives(path.join(root, 'a'), 4);
      const b = await makeDrives(path.join(root, 'b'), 4);
      for (const drives of [a, b]) {
        const deployment = new Deployment(drives);
        running.push(deployment);
        await deployment.start();
        await deployment.s3.send(new CreateBucketCommand({ Bucket: bucket }));
        await deployment.stop();
      }
      const foreign = a[3]!;
      assert.notEqual((await readFormat(foreign)).deploymentId, (await readFormat(b[0]!)).deploymentId, 'two deployments');
      const foreignFormat = await readFile(path.join(foreign, '.coffer.sys', 'format.json'));
      const refused = await runServerToExit([b[0]!, b[1]!, b[2]!, foreign], serverEnv(), path.join(root, '.no-certs'));
      assert.equal(refused.started, false, `the server must not start with a foreign drive; output:\n${refused.output}`);
      assert.ok(refused.code !== null && refused.code !== 0, `exit code ${refused.code}; output:\n${refused.output}`);
      assert.ok(refused.output.includes(foreign), `the message names the drive ${foreign}; output:\n${refused.output}`);
      assert.match(refused.output, /deployment/i);
      assert.ok((await readFile(path.join(foreign, '.coffer.sys', 'format.json'))).equals(foreignFormat), 'the foreign drive is left untouched');
    } finally {
      for (const deployment of running) await deployment.stop();
      await removeDir(root);
    }
  });
});
