// Behaviour of the filesystem engine on a real filesystem (engine/fs-engine.ts).

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { DriveFormatError, fsyncDir } from '../engine/drive.ts';
import { FsEngine } from '../engine/fs-engine.ts';
import { StorageError } from '../engine/types.ts';
import type { ObjectInfo, PutInput, StorageErrorKind } from '../engine/types.ts';

const mebibyte = 1024 * 1024;

async function* chunksOf(data: Buffer, chunkSizeBytes = 64 * 1024): AsyncGenerator<Uint8Array> {
  for (let offset = 0; offset < data.length; offset += chunkSizeBytes) {
    yield data.subarray(offset, Math.min(data.length, offset + chunkSizeBytes));
  }
}

function put(data: Buffer, extra: Partial<PutInput> = {}): PutInput {
  return { body: chunksOf(data), expectedSizeBytes: data.length, ...extra };
}

function md5Hex(data: Buffer): string {
  return createHash('md5').update(data).digest('hex');
}

async function readRange(engine: FsEngine, bucket: string, key: string, start?: number, endInclusive?: number): Promise<Buffer> {
  const reader = await engine.openObject(bucket, key);
  try {
    const chunks: Buffer[] = [];
    for await (const chunk of reader.read(start ?? 0, endInclusive ?? reader.info.sizeBytes - 1)) {
      assert.ok(chunk.length <= mebibyte, 'chunks are at most 1 MiB');
      chunks.push(Buffer.from(chunk)); // valid until the next pull only
    }
    return Buffer.concat(chunks);
  } finally {
    await reader.close();
  }
}

async function rejectsKind(promise: Promise<unknown>, kind: StorageErrorKind): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof StorageError, `expected StorageError ${kind}, got ${String(error)}`);
    assert.equal(error.kind, kind, error.message);
    return true;
  });
}

async function listDir(dirPath: string): Promise<string[]> {
  try {
    return (await fs.readdir(dirPath)).sort();
  } catch {
    return [];
  }
}

function utf8Compare(left: string, right: string): number {
  return Buffer.compare(Buffer.from(left), Buffer.from(right));
}

const tmpRoots: string[] = [];
async function newDriveDir(): Promise<string> {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'coffer-engine-'));
  tmpRoots.push(root);
  return path.join(root, 'drive1');
}

after(async () => {
  for (const root of tmpRoots) await fs.rm(root, { recursive: true, force: true });
});

describe('drive format', () => {
  it('formats a fresh drive and reopens it', async () => {
    const drive = await newDriveDir();
    const engine = await FsEngine.open([drive]);
    const deploymentId = engine.deploymentId;
    await engine.close();
    const format = JSON.parse(await fs.readFile(path.join(drive, '.coffer.sys/format.json'), 'utf8'));
    assert.equal(format.format, 'coffer-xl');
    assert.equal(format.version, 1);
    assert.equal(format.deploymentId, deploymentId);
    assert.deepEqual(format.sets, [[format.thisDriveId]]);
    const reopened = await FsEngine.open([drive]);
    assert.equal(reopened.deploymentId, deploymentId);
    await reopened.close();
  });

  it('refuses a foreign or damaged drive and more than one drive', async () => {
    const drive = await newDriveDir();
    await fs.mkdir(path.join(drive, '.coffer.sys'), { recursive: true });
    await fs.writeFile(path.join(drive, '.coffer.sys/format.json'), '{"format":"xl","version":"1"}');
    await assert.rejects(FsEngine.open([drive]), DriveFormatError);
    await fs.writeFile(path.join(drive, '.coffer.sys/format.json'), 'not json');
    await assert.rejects(FsEngine.open([drive]), /not valid JSON/);

    const used = await newDriveDir();
    await fs.mkdir(used, { recursive: true });
    await fs.writeFile(path.join(used, 'somebody-elses-file'), 'x');
    await assert.rejects(FsEngine.open([used]), /refusing to format/);

    await assert.rejects(FsEngine.open([await newDriveDir(), await newDriveDir()]), /exactly one drive/);
  });

  it('wipes leftovers in tmp at startup', async () => {
    const drive = await newDriveDir();
    await (await FsEngine.open([drive])).close();
    await fs.mkdir(path.join(drive, '.coffer.sys/tmp/leftover/x.data'), { recursive: true });
    await fs.writeFile(path.join(drive, '.coffer.sys/tmp/leftover/x.data/part.1'), 'junk');
    const engine = await FsEngine.open([drive]);
    assert.deepEqual(await listDir(path.join(drive, '.coffer.sys/tmp')), []);
    await engine.close();
    assert.deepEqual(await listDir(path.join(drive, '.coffer.sys/tmp-old')), []);
  });
});

describe('directory fsync (group commit)', () => {
  it('answers every concurrent caller, shares the fsyncs, and reports errors to each caller', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'coffer-fsync-'));
    try {
      // Callers arriving while an fsync runs wait for the next one (it may have started before their change).
      const settled = await Promise.allSettled(Array.from({ length: 200 }, () => fsyncDir(dir)));
      assert.ok(settled.every((result) => result.status === 'fulfilled'));
      const missing = path.join(dir, 'missing');
      const failures = await Promise.allSettled([fsyncDir(missing), fsyncDir(missing), fsyncDir(missing)]);
      for (const failure of failures) {
        assert.equal(failure.status, 'rejected');
        assert.equal(((failure as PromiseRejectedResult).reason as NodeJS.ErrnoException).code, 'ENOENT');
      }
      // Nothing is left behind: the same path works again once it exists.
      await fs.mkdir(missing);
      await fsyncDir(missing);
      await fsyncDir(dir);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});

describe('buckets', () => {
  let engine: FsEngine;
  before(async () => {
    engine = await FsEngine.open([await newDriveDir()]);
  });
  after(() => engine.close());

  it('creates, heads, lists and deletes buckets', async () => {
    const beforeMs = Date.now();
    await engine.makeBucket('zeta');
    await engine.makeBucket('alpha');
    await rejectsKind(engine.makeBucket('alpha'), 'BucketAlreadyOwnedByYou');
    const info = await engine.headBucket('alpha');
    assert.equal(info.name, 'alpha');
    assert.ok(info.createdMs >= beforeMs - 1000 && info.createdMs <= Date.now());
    assert.deepEqual((await engine.listBuckets()).map((bucket) => bucket.name), ['alpha', 'zeta']);
    await engine.deleteBucket('zeta');
    await rejectsKind(engine.headBucket('zeta'), 'NoSuchBucket');
    await rejectsKind(engine.deleteBucket('zeta'), 'NoSuchBucket');
    await rejectsKind(engine.headBucket('.coffer.sys'), 'NoSuchBucket');
    await rejectsKind(engine.makeBucket('../evil'), 'InvalidArgument');
    assert.deepEqual((await engine.listBuckets()).map((bucket) => bucket.name), ['alpha']);
  });

  it('refuses to delete a bucket with objects or uploads in progress', async () => {
    await engine.makeBucket('full');
    await engine.putObject('full', 'deep/down/obj', put(Buffer.from('x')));
    await rejectsKind(engine.deleteBucket('full'), 'BucketNotEmpty');
    await engine.deleteObject('full', 'deep/down/obj');
    const upload = await engine.createMultipartUpload('full', 'mp', {});
    await rejectsKind(engine.deleteBucket('full'), 'BucketNotEmpty');
    await engine.abortMultipartUpload('full', 'mp', upload.uploadId);
    await engine.deleteBucket('full');
    await rejectsKind(engine.headBucket('full'), 'NoSuchBucket');
  });

  it('reports NoSuchBucket for object operations on a missing bucket, before reading the body', async () => {
    let bodyStarted = false;
    async function* body(): AsyncGenerator<Uint8Array> {
      bodyStarted = true;
      yield Buffer.from('x');
    }
    await rejectsKind(engine.putObject('missing', 'k', { body: body() }), 'NoSuchBucket');
    assert.equal(bodyStarted, false);
    await rejectsKind(engine.statObject('missing', 'k'), 'NoSuchBucket');
    await rejectsKind(engine.openObject('missing', 'k'), 'NoSuchBucket');
    await rejectsKind(engine.deleteObject('missing', 'k'), 'NoSuchBucket');
    await rejectsKind(engine.listObjects('missing', { prefix: '', delimiter: '', after: '', maxKeys: 10 }), 'NoSuchBucket');
    await rejectsKind(engine.createMultipartUpload('missing', 'k', {}), 'NoSuchBucket');
  });
});

describe('objects', () => {
  let engine: FsEngine;
  let drive: string;
  const bucket = 'objects';
  const tmpDir = (): string => path.join(drive, '.coffer.sys/tmp');
  const objectDir = (key: string): string => path.join(drive, bucket, ...key.split('/'));

  before(async () => {
    drive = await newDriveDir();
    engine = await FsEngine.open([drive]);
    await engine.makeBucket(bucket);
  });
  after(() => engine.close());

  it('stores an empty object inline', async () => {
    const info = await engine.putObject(bucket, 'empty', put(Buffer.alloc(0), { contentType: 'text/plain' }));
    assert.equal(info.sizeBytes, 0);
    assert.equal(info.etag, 'd41d8cd98f00b204e9800998ecf8427e');
    assert.equal(info.contentType, 'text/plain');
    assert.deepEqual(await listDir(objectDir('empty')), ['coffer.meta']);
    assert.equal((await readRange(engine, bucket, 'empty', 0, -1)).length, 0);
    const stat = await engine.statObject(bucket, 'empty');
    assert.deepEqual(stat, info);
  });

  it('stores small objects inline with metadata, and reads ranges', async () => {
    const data = randomBytes(128 * 1024); // exactly the inline limit
    const userMetadata = { 'x-amz-meta-color': 'blue' };
    const systemHeaders = { 'cache-control': 'no-cache' };
    const checksum = { algorithm: 'CRC32C' as const, value: 'AAAAAA==', type: 'FULL_OBJECT' as const };
    let finishArgs: [string, number] | undefined;
    const info = await engine.putObject(bucket, 'small/one', {
      body: chunksOf(data, 1000),
      userMetadata,
      systemHeaders,
      finish: (md5, sizeBytes) => {
        finishArgs = [md5, sizeBytes];
        return checksum;
      },
    });
    assert.deepEqual(finishArgs, [md5Hex(data), data.length]);
    assert.equal(info.etag, md5Hex(data));
    assert.deepEqual(info.checksum, checksum);
    assert.deepEqual(await listDir(objectDir('small/one')), ['coffer.meta']);
    const stat = await engine.statObject(bucket, 'small/one');
    assert.deepEqual(stat.userMetadata, userMetadata);
    assert.deepEqual(stat.systemHeaders, systemHeaders);
    assert.deepEqual(stat.checksum, checksum);
    assert.deepEqual(stat.parts[0]?.checksum, checksum);
    assert.deepEqual(await readRange(engine, bucket, 'small/one'), data);
    assert.deepEqual(await readRange(engine, bucket, 'small/one', 100, 100), data.subarray(100, 101));
    assert.deepEqual(await readRange(engine, bucket, 'small/one', 5000, 90000), data.subarray(5000, 90001));
    const reader = await engine.openObject(bucket, 'small/one');
    assert.throws(() => reader.read(0, data.length), (error: unknown) => error instanceof StorageError && error.kind === 'InvalidArgument');
    await reader.close();
  });

  it('stores a 3 MiB object in a data dir and reads it byte-exact', async () => {
    const data = randomBytes(3 * mebibyte + 17);
    const info = await engine.putObject(bucket, 'big', put(data));
    assert.equal(info.etag, md5Hex(data));
    const entries = await listDir(objectDir('big'));
    assert.equal(entries.length, 2);
    assert.ok(entries.includes('coffer.meta'));
    const dataDir = entries.find((name) => name !== 'coffer.meta')!;
    assert.match(dataDir, /^[0-9a-f-]{36}\.data$/);
    assert.deepEqual(await listDir(path.join(objectDir('big'), dataDir)), ['part.1']);
    assert.ok((await readRange(engine, bucket, 'big')).equals(data));
    assert.ok((await readRange(engine, bucket, 'big', mebibyte - 3, 2 * mebibyte + 5)).equals(data.subarray(mebibyte - 3, 2 * mebibyte + 6)));
    assert.ok((await readRange(engine, bucket, 'big', data.length - 1)).equals(data.subarray(data.length - 1)));
    assert.deepEqual(await listDir(tmpDir()), []);
  });

  it('overwrites: the old data dir goes away and tmp stays empty', async () => {
    const first = randomBytes(200 * 1024);
    await engine.putObject(bucket, 'over', put(first));
    const [firstDataDir] = (await listDir(objectDir('over'))).filter((name) => name.endsWith('.data'));
    const second = randomBytes(300 * 1024);
    await engine.putObject(bucket, 'over', put(second));
    const secondEntries = await listDir(objectDir('over'));
    assert.equal(secondEntries.length, 2);
    assert.ok(!secondEntries.includes(firstDataDir!));
    assert.ok((await readRange(engine, bucket, 'over')).equals(second));
    const third = Buffer.from('now inline');
    await engine.putObject(bucket, 'over', put(third));
    assert.deepEqual(await listDir(objectDir('over')), ['coffer.meta']);
    assert.ok((await readRange(engine, bucket, 'over')).equals(third));
    assert.deepEqual(await listDir(tmpDir()), []);
  });

  it('keeps an open reader working across an overwrite', async () => {
    const original = randomBytes(2 * mebibyte);
    await engine.putObject(bucket, 'reading', put(original));
    const reader = await engine.openObject(bucket, 'reading');
    await engine.putObject(bucket, 'reading', put(randomBytes(2 * mebibyte)));
    await engine.deleteObject(bucket, 'reading');
    const chunks: Buffer[] = [];
    for await (const chunk of reader.read(0, original.length - 1)) chunks.push(Buffer.from(chunk));
    await reader.close();
    assert.ok(Buffer.concat(chunks).equals(original));
  });

  it('a body iterator that throws leaves the previous version and an empty tmp', async () => {
    const previous = Buffer.from('previous version');
    await engine.putObject(bucket, 'aborted', put(previous));
    for (const sizeBytes of [1000, 3 * mebibyte]) {
      const failure = new Error('client went away');
      async function* failing(): AsyncGenerator<Uint8Array> {
        yield randomBytes(sizeBytes);
        throw failure;
      }
      await assert.rejects(engine.putObject(bucket, 'aborted', { body: failing() }), (error) => error === failure);
      assert.ok((await readRange(engine, bucket, 'aborted')).equals(previous));
      assert.deepEqual(await listDir(tmpDir()), []);
    }
    await assert.rejects(engine.putObject(bucket, 'never', { body: (async function* () { yield Buffer.alloc(10); throw new Error('x'); })() }));
    await rejectsKind(engine.statObject(bucket, 'never'), 'NoSuchKey');
  });

  it('finish throwing aborts the write with the same error', async () => {
    const previous = Buffer.from('kept');
    await engine.putObject(bucket, 'finish', put(previous));
    const badDigest = new Error('BadDigest');
    for (const data of [Buffer.from('small'), randomBytes(mebibyte)]) {
      await assert.rejects(
        engine.putObject(bucket, 'finish', put(data, { finish: () => { throw badDigest; } })),
        (error) => error === badDigest,
      );
      assert.ok((await readRange(engine, bucket, 'finish')).equals(previous));
    }
    assert.deepEqual(await listDir(tmpDir()), []);
  });

  it('checks the announced size', async () => {
    const data = randomBytes(1000);
    await rejectsKind(engine.putObject(bucket, 'sized', { body: chunksOf(data), expectedSizeBytes: 1001 }), 'IncompleteBody');
    await rejectsKind(engine.putObject(bucket, 'sized', { body: chunksOf(data), expectedSizeBytes: 999 }), 'InvalidArgument');
    await rejectsKind(engine.putObject(bucket, 'sized', { body: chunksOf(randomBytes(2 * mebibyte)), expectedSizeBytes: 2 * mebibyte - 1 }), 'InvalidArgument');
    await rejectsKind(engine.statObject(bucket, 'sized'), 'NoSuchKey');
    assert.deepEqual(await listDir(tmpDir()), []);
  });

  it('concurrent PUTs to one key end with one whole version', async () => {
    const payloads = Array.from({ length: 8 }, (_, index) => Buffer.alloc(index % 2 === 0 ? 300 * 1024 : 1000, index + 1));
    const results = await Promise.all(payloads.map((data) => engine.putObject(bucket, 'race', { body: chunksOf(data, 7000) })));
    assert.equal(results.length, payloads.length);
    const stored = await readRange(engine, bucket, 'race');
    const winner = payloads.find((data) => data.equals(stored));
    assert.ok(winner !== undefined, 'the stored object is exactly one of the uploads');
    assert.equal((await engine.statObject(bucket, 'race')).etag, md5Hex(winner));
    assert.ok((await listDir(objectDir('race'))).length <= 2);
    assert.deepEqual(await listDir(tmpDir()), []);
  });

  it('deletes objects and prunes empty directories', async () => {
    await engine.putObject(bucket, 'del/a/b/c', put(randomBytes(200 * 1024)));
    await engine.putObject(bucket, 'del/a/keep', put(Buffer.from('k')));
    await engine.deleteObject(bucket, 'del/a/b/c');
    await rejectsKind(engine.statObject(bucket, 'del/a/b/c'), 'NoSuchKey');
    assert.deepEqual(await listDir(objectDir('del/a')), ['keep']);
    await engine.deleteObject(bucket, 'del/a/keep');
    assert.deepEqual((await listDir(path.join(drive, bucket))).includes('del'), false);
    await engine.deleteObject(bucket, 'del/never/existed');
    // What is left in tmp/ is the two deleted coffer.meta files, kept for reuse (engine/meta-recycler.ts):
    // the 200 KiB object's data dir is gone.
    const left = await listDir(tmpDir());
    assert.equal(left.length, 2, `two retired coffer.meta files in tmp/: ${left.join(', ')}`);
    for (const name of left) assert.ok((await fs.stat(path.join(tmpDir(), name))).isFile(), `${name} is a file`);
  });

  it('survives deletes racing puts of sibling keys', async () => {
    const operations: Promise<unknown>[] = [];
    for (let round = 0; round < 40; round++) {
      operations.push(engine.putObject(bucket, `race2/x/y/k${round}`, put(Buffer.from(`v${round}`))));
      operations.push(engine.deleteObject(bucket, `race2/x/y/k${round - 1}`));
      operations.push(engine.deleteObject(bucket, `race2/x/z${round}`));
    }
    await Promise.all(operations);
    const page = await engine.listObjects(bucket, { prefix: 'race2/', delimiter: '', after: '', maxKeys: 1000 });
    const survivors = page.objects.map((object) => object.key);
    for (const key of survivors) assert.ok((await readRange(engine, bucket, key)).toString().startsWith('v'));
    assert.ok(survivors.includes('race2/x/y/k39'));
  });

  it('stores directory objects under __XLDIR__', async () => {
    await engine.putObject(bucket, 'photos/', put(Buffer.alloc(0)));
    await engine.putObject(bucket, 'photos/a.jpg', put(Buffer.from('jpg')));
    assert.ok((await listDir(path.join(drive, bucket))).includes('photos__XLDIR__'));
    assert.equal((await engine.statObject(bucket, 'photos/')).sizeBytes, 0);
    const rolled = await engine.listObjects(bucket, { prefix: 'photos', delimiter: '/', after: '', maxKeys: 100 });
    assert.deepEqual(rolled.commonPrefixes, ['photos/']);
    assert.deepEqual(rolled.objects, []);
    const inside = await engine.listObjects(bucket, { prefix: 'photos/', delimiter: '/', after: '', maxKeys: 100 });
    assert.deepEqual(inside.objects.map((object) => object.key), ['photos/', 'photos/a.jpg']);
    const flat = await engine.listObjects(bucket, { prefix: 'photos/', delimiter: '', after: 'photos/', maxKeys: 100 });
    assert.deepEqual(flat.objects.map((object) => object.key), ['photos/a.jpg']);
    await engine.deleteObject(bucket, 'photos/');
    await rejectsKind(engine.statObject(bucket, 'photos/'), 'NoSuchKey');
    assert.equal((await engine.statObject(bucket, 'photos/a.jpg')).sizeBytes, 3);
  });

  it('validates keys', async () => {
    const invalid = ['', '/a', 'a//b', './a', 'a/./b', 'a/../b', '..', 'coffer.meta', 'a/coffer.meta', 'a/\0b',
      '0c1b2a3d-0000-4000-8000-000000000000.data', 'x__XLDIR__', 'x__XLDIR__/y', 'a\uD800b', '//'];
    for (const key of invalid) {
      await rejectsKind(engine.putObject(bucket, key, put(Buffer.from('x'))), 'XMinioInvalidObjectName');
      await rejectsKind(engine.statObject(bucket, key), 'XMinioInvalidObjectName');
    }
    await rejectsKind(engine.putObject(bucket, 'k'.repeat(1025), put(Buffer.from('x'))), 'KeyTooLongError');
    await rejectsKind(engine.putObject(bucket, `a/${'s'.repeat(256)}`, put(Buffer.from('x'))), 'KeyTooLongError');
    await rejectsKind(engine.putObject(bucket, `${'s'.repeat(250)}/`, put(Buffer.from('x'))), 'KeyTooLongError');
    for (const key of ['a.data', 'a/b.data', `${'é'.repeat(127)}/x`, 'with space/and+plus', '.hidden/.coffer.sys', '\u{1F600}']) {
      await engine.putObject(bucket, key, put(Buffer.from(key)));
      assert.equal((await readRange(engine, bucket, key)).toString(), key);
    }
    const longestKey = `${'k'.repeat(200)}/`.repeat(5) + 'k'.repeat(1024 - 5 * 201);
    assert.equal(Buffer.byteLength(longestKey), 1024);
    await engine.putObject(bucket, longestKey, put(Buffer.from('long')));
    assert.equal((await readRange(engine, bucket, longestKey)).toString(), 'long');
  });
});

describe('listing', () => {
  let engine: FsEngine;
  const bucket = 'listing';
  before(async () => {
    engine = await FsEngine.open([await newDriveDir()]);
    await engine.makeBucket(bucket);
  });
  after(() => engine.close());

  it('orders keys by UTF-8 bytes', async () => {
    const keys = ['a/b', 'a-c', 'a', 'ab', '\uFFFD', '\u{1F600}', 'z', 'a/b/c', 'a0'];
    for (const key of keys) await engine.putObject(bucket, `order/${key}`, put(Buffer.alloc(0)));
    const page = await engine.listObjects(bucket, { prefix: 'order/', delimiter: '', after: '', maxKeys: 1000 });
    const expected = keys.map((key) => `order/${key}`).sort(utf8Compare);
    assert.deepEqual(page.objects.map((object) => object.key), expected);
    assert.deepEqual(expected.slice(1, 3), ['order/a-c', 'order/a/b']);
    assert.equal(expected.at(-2), 'order/\uFFFD', 'U+FFFD (EF BF BD) sorts before U+1F600 (F0 ..)');
    const delimited = await engine.listObjects(bucket, { prefix: 'order/', delimiter: '/', after: '', maxKeys: 1000 });
    assert.deepEqual(delimited.commonPrefixes, ['order/a/']);
    assert.equal(delimited.objects.length, keys.length - 2);
  });

  it('hides bare directories left without objects', async () => {
    await engine.putObject(bucket, 'bare/x/obj', put(Buffer.alloc(0)));
    await engine.deleteObject(bucket, 'bare/x/obj');
    const drive = tmpRoots.at(-1)!;
    await fs.mkdir(path.join(drive, 'drive1', bucket, 'bare', 'orphan', 'deeper'), { recursive: true });
    const page = await engine.listObjects(bucket, { prefix: 'bare/', delimiter: '/', after: '', maxKeys: 10 });
    assert.deepEqual(page, { objects: [], commonPrefixes: [], isTruncated: false });
  });

  it('matches a brute-force listing for random keys, prefixes, delimiters and page sizes', async () => {
    // Deterministic pseudo-random generator, so a failure reproduces.
    let state = 0x9e3779b9;
    const random = (below: number): number => {
      state ^= state << 13;
      state ^= state >>> 17;
      state ^= state << 5;
      return (state >>> 0) % below;
    };
    const alphabet = ['a', 'b', '-', '/', '.', 'é', '\u{1F600}', 'z', 'a', '/'];
    const keys = new Set<string>();
    while (keys.size < 300) {
      let key = '';
      const length = 1 + random(7);
      for (let index = 0; index < length; index++) key += alphabet[random(alphabet.length)];
      const valid = !key.startsWith('/') && !key.includes('//') && !key.split('/').some((segment, index, all) =>
        segment === '.' || segment === '..' || (segment === '' && index !== all.length - 1));
      if (valid) keys.add(`p/${key}`);
    }
    await Promise.all([...keys].map((key) => engine.putObject(bucket, key, put(Buffer.alloc(0)))));
    const sorted = [...keys].sort(utf8Compare);

    const bruteForce = (prefix: string, delimiter: string, afterKey: string): string[] => {
      const entries: string[] = [];
      for (const key of sorted) {
        if (!key.startsWith(prefix)) continue;
        const index = delimiter === '' ? -1 : key.indexOf(delimiter, prefix.length);
        const entry = index < 0 ? key : key.slice(0, index + delimiter.length);
        if (utf8Compare(entry, afterKey) <= 0 || entries.at(-1) === entry) continue;
        entries.push(entry);
      }
      return entries;
    };

    const prefixes = ['p/', 'p/a', 'p/a/', 'p/a-', 'p/é', 'p/\u{1F600}', 'p/zz', 'p/b/', 'nothing', 'p/a//', 'p/../'];
    const delimiters = ['', '/', '-', 'a', 'é/'];
    let checks = 0;
    for (const prefix of prefixes) {
      for (const delimiter of delimiters) {
        const maxKeys = [1, 7, 50, 1000][random(4)]!;
        const startAfter = random(3) === 0 ? sorted[random(sorted.length)]! : '';
        const expected = bruteForce(prefix, delimiter, startAfter);
        const got: string[] = [];
        let afterKey = startAfter;
        for (let pageCount = 0; ; pageCount++) {
          assert.ok(pageCount <= sorted.length + 1, 'pagination terminates');
          const page = await engine.listObjects(bucket, { prefix, delimiter, after: afterKey, maxKeys });
          const entries = [...page.objects.map((object) => object.key), ...page.commonPrefixes].sort(utf8Compare);
          assert.ok(entries.length <= maxKeys);
          got.push(...entries);
          if (!page.isTruncated) break;
          assert.equal(entries.length, maxKeys);
          assert.equal(page.nextAfter, entries.at(-1));
          afterKey = page.nextAfter!;
        }
        assert.deepEqual(got, expected, `prefix=${prefix} delimiter=${delimiter} after=${startAfter} maxKeys=${maxKeys}`);
        checks++;
      }
    }
    assert.equal(checks, prefixes.length * delimiters.length);
  });

  it('returns an empty untruncated page for maxKeys 0', async () => {
    assert.deepEqual(await engine.listObjects(bucket, { prefix: '', delimiter: '', after: '', maxKeys: 0 }), {
      objects: [],
      commonPrefixes: [],
      isTruncated: false,
    });
  });
});

describe('multipart', () => {
  let engine: FsEngine;
  let drive: string;
  const bucket = 'multipart';
  before(async () => {
    drive = await newDriveDir();
    engine = await FsEngine.open([drive]);
    await engine.makeBucket(bucket);
  });
  after(() => engine.close());

  const partSizeBytes = 5 * mebibyte;

  it('uploads, lists, replaces and completes parts', async () => {
    const upload = await engine.createMultipartUpload(bucket, 'mp/object', {
      contentType: 'video/mp4',
      userMetadata: { 'x-amz-meta-a': 'b' },
      checksumAlgorithm: 'SHA256',
      checksumType: 'COMPOSITE',
    });
    assert.match(upload.uploadId, /^[0-9a-f]{36}$/);
    const part1 = randomBytes(partSizeBytes);
    const part2 = randomBytes(partSizeBytes);
    const part3 = randomBytes(12345);
    const info1 = await engine.putPart(bucket, 'mp/object', upload.uploadId, 1, put(part1));
    await engine.putPart(bucket, 'mp/object', upload.uploadId, 2, put(randomBytes(1000))); // replaced below
    const info2 = await engine.putPart(bucket, 'mp/object', upload.uploadId, 2, put(part2));
    const info3 = await engine.putPart(bucket, 'mp/object', upload.uploadId, 3, put(part3, {
      finish: () => ({ algorithm: 'SHA256', value: 'c2hhMjU2', type: 'COMPOSITE' }),
    }));
    await engine.putPart(bucket, 'mp/object', upload.uploadId, 9, put(Buffer.from('not listed')));
    assert.equal(info1.etag, md5Hex(part1));
    assert.equal(info2.sizeBytes, partSizeBytes);
    await rejectsKind(engine.putPart(bucket, 'mp/object', upload.uploadId, 0, put(part3)), 'InvalidArgument');
    await rejectsKind(engine.putPart(bucket, 'mp/object', upload.uploadId, 10001, put(part3)), 'InvalidArgument');
    await rejectsKind(engine.putPart(bucket, 'mp/other', upload.uploadId, 1, put(part3)), 'NoSuchUpload');

    const firstPage = await engine.listParts(bucket, 'mp/object', upload.uploadId, 0, 2);
    assert.deepEqual(firstPage.parts.map((part) => part.partNumber), [1, 2]);
    assert.equal(firstPage.isTruncated, true);
    assert.equal(firstPage.nextPartNumberMarker, 2);
    assert.equal(firstPage.parts[1]!.etag, md5Hex(part2));
    assert.equal(firstPage.upload.contentType, 'video/mp4');
    assert.equal(firstPage.upload.checksumAlgorithm, 'SHA256');
    const secondPage = await engine.listParts(bucket, 'mp/object', upload.uploadId, 2, 1000);
    assert.deepEqual(secondPage.parts.map((part) => part.partNumber), [3, 9]);
    assert.equal(secondPage.isTruncated, false);
    assert.deepEqual(secondPage.parts[0]!.checksum, { algorithm: 'SHA256', value: 'c2hhMjU2', type: 'COMPOSITE' });

    let finishedParts: number[] = [];
    const object = await engine.completeMultipartUpload(
      bucket,
      'mp/object',
      upload.uploadId,
      [
        { partNumber: 1, etag: info1.etag },
        { partNumber: 2, etag: `"${info2.etag.toUpperCase()}"` },
        { partNumber: 3, etag: info3.etag, checksum: 'c2hhMjU2' },
      ],
      (parts) => {
        finishedParts = parts.map((part) => part.partNumber);
        return { algorithm: 'SHA256', value: 'Y29tcG9zaXRl-3', type: 'COMPOSITE' };
      },
    );
    assert.deepEqual(finishedParts, [1, 2, 3]);
    const expectedEtag = createHash('md5')
      .update(Buffer.concat([part1, part2, part3].map((part) => createHash('md5').update(part).digest())))
      .digest('hex');
    assert.equal(object.etag, `${expectedEtag}-3`);
    assert.equal(object.sizeBytes, 2 * partSizeBytes + part3.length);
    assert.equal(object.contentType, 'video/mp4');
    assert.deepEqual(object.userMetadata, { 'x-amz-meta-a': 'b' });
    assert.deepEqual(object.checksum, { algorithm: 'SHA256', value: 'Y29tcG9zaXRl-3', type: 'COMPOSITE' });
    assert.deepEqual(await engine.statObject(bucket, 'mp/object'), object);

    const whole = Buffer.concat([part1, part2, part3]);
    assert.ok((await readRange(engine, bucket, 'mp/object')).equals(whole));
    const boundary = partSizeBytes;
    assert.ok((await readRange(engine, bucket, 'mp/object', boundary - 10, 2 * boundary + 10)).equals(whole.subarray(boundary - 10, 2 * boundary + 11)));
    assert.ok((await readRange(engine, bucket, 'mp/object', boundary, boundary)).equals(whole.subarray(boundary, boundary + 1)));

    const objectEntries = await listDir(path.join(drive, bucket, 'mp', 'object'));
    const dataDir = objectEntries.find((name) => name.endsWith('.data'))!;
    assert.deepEqual(await listDir(path.join(drive, bucket, 'mp', 'object', dataDir)), ['part.1', 'part.2', 'part.3']);
    assert.deepEqual(await listDir(path.join(drive, '.coffer.sys/multipart', bucket)), []);
    assert.deepEqual(await listDir(path.join(drive, '.coffer.sys/tmp')), []);

    await rejectsKind(engine.completeMultipartUpload(bucket, 'mp/object', upload.uploadId, [{ partNumber: 1, etag: info1.etag }]), 'NoSuchUpload');
    await rejectsKind(engine.listParts(bucket, 'mp/object', upload.uploadId, 0, 10), 'NoSuchUpload');
    await rejectsKind(engine.abortMultipartUpload(bucket, 'mp/object', upload.uploadId), 'NoSuchUpload');
  });

  it('validates the part list on complete', async () => {
    const key = 'mp/validate';
    const upload = await engine.createMultipartUpload(bucket, key, {});
    const small1 = await engine.putPart(bucket, key, upload.uploadId, 1, put(Buffer.from('one')));
    const small2 = await engine.putPart(bucket, key, upload.uploadId, 2, put(Buffer.from('two')));
    const complete = (parts: { partNumber: number; etag: string; checksum?: string }[]): Promise<unknown> =>
      engine.completeMultipartUpload(bucket, key, upload.uploadId, parts);
    await rejectsKind(complete([]), 'InvalidPartOrder');
    await rejectsKind(complete([{ partNumber: 2, etag: small2.etag }, { partNumber: 1, etag: small1.etag }]), 'InvalidPartOrder');
    await rejectsKind(complete([{ partNumber: 1, etag: small1.etag }, { partNumber: 1, etag: small1.etag }]), 'InvalidPartOrder');
    await rejectsKind(complete([{ partNumber: 1, etag: small1.etag }, { partNumber: 7, etag: small2.etag }]), 'InvalidPart');
    await rejectsKind(complete([{ partNumber: 1, etag: small2.etag }]), 'InvalidPart');
    await rejectsKind(complete([{ partNumber: 1, etag: small1.etag, checksum: 'bm9wZQ==' }]), 'InvalidPart');
    await rejectsKind(complete([{ partNumber: 1, etag: small1.etag }, { partNumber: 2, etag: small2.etag }]), 'EntityTooSmall');
    // failures leave the upload intact: a valid single small part completes
    const object = await complete([{ partNumber: 2, etag: small2.etag }]);
    assert.equal((object as ObjectInfo).sizeBytes, 3);
    assert.equal((await readRange(engine, bucket, key)).toString(), 'two');
    await rejectsKind(complete([{ partNumber: 2, etag: small2.etag }]), 'NoSuchUpload');
  });

  it('EntityTooSmall only for non-last parts below 5 MiB', async () => {
    const key = 'mp/sizes';
    const upload = await engine.createMultipartUpload(bucket, key, {});
    const big = await engine.putPart(bucket, key, upload.uploadId, 1, put(randomBytes(partSizeBytes - 1)));
    const last = await engine.putPart(bucket, key, upload.uploadId, 2, put(randomBytes(10)));
    await rejectsKind(engine.completeMultipartUpload(bucket, key, upload.uploadId, [
      { partNumber: 1, etag: big.etag },
      { partNumber: 2, etag: last.etag },
    ]), 'EntityTooSmall');
    await engine.abortMultipartUpload(bucket, key, upload.uploadId);
    await rejectsKind(engine.listParts(bucket, key, upload.uploadId, 0, 10), 'NoSuchUpload');
    await rejectsKind(engine.abortMultipartUpload(bucket, key, upload.uploadId), 'NoSuchUpload');
    await rejectsKind(engine.abortMultipartUpload(bucket, key, '../../../etc'), 'NoSuchUpload');
  });

  it('lists uploads in key order with markers and delimiters', async () => {
    const created: { key: string; uploadId: string }[] = [];
    for (const key of ['u/b', 'u/a', 'u/dir/x', 'u/a', 'u/dir/y', 'u/c']) {
      const upload = await engine.createMultipartUpload(bucket, key, {});
      created.push({ key, uploadId: upload.uploadId });
      await new Promise((resolve) => setTimeout(resolve, 2)); // distinct initiation times
    }
    const expected = [...created].sort((left, right) => utf8Compare(left.key, right.key) || (left.uploadId < right.uploadId ? -1 : 1));
    assert.equal(expected[0]!.uploadId, created[1]!.uploadId, 'same key: older upload first');

    const all = await engine.listMultipartUploads(bucket, { prefix: 'u/', delimiter: '', keyMarker: '', uploadIdMarker: '', maxUploads: 1000 });
    assert.deepEqual(all.uploads.map((upload) => [upload.key, upload.uploadId]), expected.map((upload) => [upload.key, upload.uploadId]));

    const paged: string[] = [];
    let keyMarker = '';
    let uploadIdMarker = '';
    for (;;) {
      const page = await engine.listMultipartUploads(bucket, { prefix: 'u/', delimiter: '', keyMarker, uploadIdMarker, maxUploads: 1 });
      paged.push(...page.uploads.map((upload) => upload.uploadId));
      if (!page.isTruncated) break;
      keyMarker = page.nextKeyMarker!;
      uploadIdMarker = page.nextUploadIdMarker ?? '';
    }
    assert.deepEqual(paged, expected.map((upload) => upload.uploadId));

    const delimited = await engine.listMultipartUploads(bucket, { prefix: 'u/', delimiter: '/', keyMarker: '', uploadIdMarker: '', maxUploads: 3 });
    assert.deepEqual(delimited.uploads.map((upload) => upload.key), ['u/a', 'u/a', 'u/b']);
    assert.equal(delimited.isTruncated, true);
    const rest = await engine.listMultipartUploads(bucket, {
      prefix: 'u/',
      delimiter: '/',
      keyMarker: delimited.nextKeyMarker!,
      uploadIdMarker: delimited.nextUploadIdMarker ?? '',
      maxUploads: 10,
    });
    assert.deepEqual(rest.uploads.map((upload) => upload.key), ['u/c']);
    assert.deepEqual(rest.commonPrefixes, ['u/dir/']);
    for (const upload of created) await engine.abortMultipartUpload(bucket, upload.key, upload.uploadId);
  });
});

describe('restart', () => {
  it('sees buckets, objects and uploads after close and open', async () => {
    const drive = await newDriveDir();
    const engine = await FsEngine.open([drive]);
    await engine.makeBucket('keep');
    const small = Buffer.from('small object');
    const large = randomBytes(3 * mebibyte);
    await engine.putObject('keep', 'dir/small', put(small, { userMetadata: { 'x-amz-meta-k': 'v' } }));
    await engine.putObject('keep', 'dir/large', put(large));
    await engine.putObject('keep', 'dir/', put(Buffer.alloc(0)));
    const upload = await engine.createMultipartUpload('keep', 'pending', {});
    const part = await engine.putPart('keep', 'pending', upload.uploadId, 1, put(Buffer.from('part')));
    await engine.close();

    const reopened = await FsEngine.open([drive]);
    assert.deepEqual((await reopened.listBuckets()).map((bucket) => bucket.name), ['keep']);
    assert.ok((await readRange(reopened, 'keep', 'dir/small')).equals(small));
    assert.ok((await readRange(reopened, 'keep', 'dir/large')).equals(large));
    assert.deepEqual((await reopened.statObject('keep', 'dir/small')).userMetadata, { 'x-amz-meta-k': 'v' });
    const page = await reopened.listObjects('keep', { prefix: '', delimiter: '', after: '', maxKeys: 100 });
    assert.deepEqual(page.objects.map((object) => object.key), ['dir/', 'dir/large', 'dir/small']);
    const parts = await reopened.listParts('keep', 'pending', upload.uploadId, 0, 10);
    assert.deepEqual(parts.parts.map((entry) => entry.etag), [part.etag]);
    const completed = await reopened.completeMultipartUpload('keep', 'pending', upload.uploadId, [{ partNumber: 1, etag: part.etag }]);
    assert.equal(completed.etag.endsWith('-1'), true);
    assert.equal((await readRange(reopened, 'keep', 'pending')).toString(), 'part');
    await reopened.close();
  });
});

describe('crash safety', () => {
  it('never exposes a torn object when the process is killed with SIGKILL mid-write', async () => {
    const drive = await newDriveDir();
    const setup = await FsEngine.open([drive]);
    await setup.makeBucket('crash');
    await setup.close();
    const engineModule = fileURLToPath(new URL('../engine/fs-engine.ts', import.meta.url));
    const script = path.join(path.dirname(drive), 'writer.mts');
    // Every body is one repeated byte, so any torn or mixed object is detectable without a log.
    await fs.writeFile(script, `
      import { FsEngine } from ${JSON.stringify(engineModule)};
      const engine = await FsEngine.open([${JSON.stringify(drive)}]);
      process.stdout.write('ready\\n');
      for (let round = 0; ; round++) {
        const sizeBytes = [0, 1000, 200 * 1024, 2 * 1024 * 1024][round % 4];
        const body = (async function* () {
          for (let sent = 0; sent < sizeBytes; sent += 64 * 1024) yield Buffer.alloc(Math.min(64 * 1024, sizeBytes - sent), round % 256);
        })();
        const key = 'k' + (round % 3) + (round % 2 === 0 ? '/nested' : '');
        if (round % 7 === 6) await engine.deleteObject('crash', key);
        else await engine.putObject('crash', key, { body });
      }
    `);
    let objectsChecked = 0;
    for (let kill = 0; kill < 4; kill++) {
      const child = spawn(process.execPath, ['--import', 'tsx', script], { cwd: path.dirname(engineModule), stdio: ['ignore', 'pipe', 'inherit'] });
      await new Promise<void>((resolve, reject) => {
        child.stdout.once('data', () => resolve());
        child.once('error', reject);
        child.once('exit', (code) => reject(new Error(`writer exited early with ${code}`)));
      });
      await new Promise((resolve) => setTimeout(resolve, 50 + Math.floor(Math.random() * 250)));
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;

      const engine = await FsEngine.open([drive]);
      const page = await engine.listObjects('crash', { prefix: '', delimiter: '', after: '', maxKeys: 1000 });
      for (const object of page.objects) {
        const data = await readRange(engine, 'crash', object.key, 0, object.sizeBytes - 1);
        assert.equal(data.length, object.sizeBytes);
        assert.equal(md5Hex(data), object.etag, `${object.key} is whole`);
        assert.ok(data.every((byte) => byte === data[0]), `${object.key} is not a mix of two writes`);
        objectsChecked++;
      }
      await engine.close();
    }
    assert.ok(objectsChecked > 0, 'the writer got some objects committed before being killed');
  });
});
