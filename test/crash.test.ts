// kill -9 while 50 uploads run: after a restart every acknowledged object reads back byte-identical and no
// partial object is visible. And kill -9 amid PUTs and DELETEs of small objects (whose deleted coffer.meta
// files are rewritten for later PUTs: engine/meta-recycler.ts): every key ends as its last acknowledged
// state, or the one in flight, and never shows another key's object.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { CreateBucketCommand, DeleteObjectCommand, GetObjectCommand, ListObjectsV2Command, NoSuchKey, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { rawRequest } from './helpers/raw.ts';
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

  it('after kill -9 amid PUTs and DELETEs of small objects, every key holds its own last state', async () => {
    const first = await startServer();
    const bucket = 'churn';
    const s3 = client(first.endpoint);
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    type State = { readonly kind: 'put'; readonly body: Buffer } | { readonly kind: 'deleted' };
    const workers = 8;
    const keysPerWorker = 5;
    const settled = new Map<string, State>(); // last acknowledged state per key
    const inFlight = new Map<string, State>(); // the operation cut by the crash, per key
    let stopped = false;
    let operations = 0;
    const bodyFor = (key: string, version: number): Buffer =>
      // the key and version lead every body, so a body served under another key is caught
      Buffer.concat([Buffer.from(`${key}#${version}#`), randomBytes(500 + ((version * 977) % 3000))]);
    const run = async (worker: number): Promise<void> => {
      for (let version = 0; !stopped; version++) {
        const key = `w${worker}/k${version % keysPerWorker}`;
        // mostly PUTs, with a DELETE of each key every third round, so deleted coffer.meta files get reused
        const state: State = version % 3 === 2 ? { kind: 'deleted' } : { kind: 'put', body: bodyFor(key, version) };
        inFlight.set(key, state);
        try {
          if (state.kind === 'put') await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: state.body }));
          else await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
        } catch {
          return; // cut by the crash: stays in flight
        }
        inFlight.delete(key);
        settled.set(key, state);
        operations++;
      }
    };
    const running = Array.from({ length: workers }, (_, worker) => run(worker));
    // Churn until PUTs have rewritten deleted objects' coffer.meta files (the metrics say so) and enough has
    // happened, then crash: a slow machine only takes longer to get there.
    let reused = 0;
    try {
      for (const startedMs = Date.now(); Date.now() - startedMs < 20_000;) {
        await new Promise((resolve) => setTimeout(resolve, 200));
        const metrics = await rawRequest(first.endpoint, { method: 'GET', path: '/minio/v2/metrics/cluster' });
        reused = Number(/^coffer_meta_files_reused_total (\d+)$/m.exec(metrics.body)?.[1] ?? NaN);
        if (reused >= 20 && operations > 150) break;
      }
    } finally {
      // The crash — also when the loop above failed, so the writers stop and the test ends either way.
      await first.kill();
      stopped = true;
      await Promise.all(running);
      s3.destroy();
    }
    assert.ok(reused >= 20, `PUTs rewrote deleted objects' coffer.meta files before the crash (${reused})`);
    assert.ok(operations > 150, `enough churn before the crash (${operations} operations)`);

    const second = await startServer({ dataDir: first.dataDir });
    const s3b = client(second.endpoint);
    const read = async (key: string): Promise<Buffer | undefined> => {
      try {
        const got = await s3b.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
        return Buffer.from(await got.Body!.transformToByteArray());
      } catch (error) {
        if (error instanceof NoSuchKey) return undefined;
        throw error;
      }
    };
    const matches = (bytes: Buffer | undefined, state: State | undefined): boolean =>
      state === undefined || state.kind === 'deleted' ? bytes === undefined : bytes !== undefined && bytes.equals(state.body);
    try {
      for (let worker = 0; worker < workers; worker++) {
        for (let index = 0; index < keysPerWorker; index++) {
          const key = `w${worker}/k${index}`;
          const bytes = await read(key);
          if (bytes !== undefined) assert.ok(bytes.toString('latin1').startsWith(`${key}#`), `${key} serves its own object, not ${bytes.subarray(0, 12).toString('latin1')}`);
          const acknowledged = settled.get(key);
          const cut = inFlight.get(key);
          assert.ok(matches(bytes, acknowledged) || (cut !== undefined && matches(bytes, cut)), `${key}: the last acknowledged state${cut ? ' or the one in flight' : ''}`);
        }
      }
      const listed = await s3b.send(new ListObjectsV2Command({ Bucket: bucket }));
      for (const object of listed.Contents ?? []) {
        const bytes = await read(object.Key!);
        assert.ok(bytes !== undefined && bytes.toString('latin1').startsWith(`${object.Key}#`), `listed ${object.Key} is its own object`);
        assert.equal(object.Size, bytes!.length, `listed ${object.Key} has its size`);
      }
    } finally {
      s3b.destroy();
      await second.stop();
      await removeDir(first.dataDir);
    }
  });
});
