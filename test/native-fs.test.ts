// The native metadata I/O addon (native/fsops.c via engine/native-fs.ts): readFileHead, writeFileDurable,
// rewriteFileDurable and fsyncPath against node:fs — bytes, sizes, node:fs-shaped errors, odd memory,
// concurrency, worker threads, argument checks — and readObjectMeta / writeFileDurable / rewriteFileDurable /
// fsyncDir giving the same answers and errors
// with the addon and without it (COFFER_NATIVE_FS=off in a child process).

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { crc32c } from '@node-rs/crc32';
import { encodeObjectMeta, singleDriveErasure, type ObjectVersion } from '../engine/meta.ts';
import { nativeFs, nativeFsAddonPath, nativeFsStatus, type NativeFs } from '../engine/native-fs.ts';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const buildHint = 'build it with `node native/build.mjs` (npm ci runs it; needs a C compiler, make and python3)';
const disabledByEnv = process.env.COFFER_NATIVE_FS?.toLowerCase() === 'off';
const { errno } = os.constants;

let root = '';
before(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'coffer-native-fs-'));
});
after(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

/** The addon itself, loaded directly (whatever COFFER_NATIVE_FS says). */
function addon(): NativeFs {
  let loaded: NativeFs;
  try {
    loaded = createRequire(import.meta.url)(nativeFsAddonPath) as NativeFs;
  } catch (error) {
    assert.fail(`native metadata I/O addon ${nativeFsAddonPath} does not load (${(error as Error).message}); ${buildHint}`);
  }
  return loaded;
}

let counter = 0;
/** A fresh path inside the test directory. */
function fresh(name = 'file'): string {
  counter += 1;
  return path.join(root, `${name}-${counter}`);
}

/** Rejects with an Error shaped like node:fs's: message, code, errno, syscall and path. */
async function rejectsLikeFs(promise: Promise<unknown>, code: keyof typeof errno, syscall: string, filePath: string): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof Error, `an Error instance, got ${String(error)}`);
    const fields = error as NodeJS.ErrnoException;
    assert.equal(fields.code, code);
    assert.equal(fields.errno, -errno[code]);
    assert.equal(fields.syscall, syscall);
    assert.equal(fields.path, filePath);
    assert.ok(fields.message.startsWith(`${code}: `), `message starts with the code: ${fields.message}`);
    assert.ok(fields.message.endsWith(`, ${syscall} '${filePath}'`), `message ends with syscall and path: ${fields.message}`);
    return true;
  });
}

test('the addon is built and loads', () => {
  assert.ok(nativeFs !== undefined || disabledByEnv, `native metadata I/O is not in use: ${nativeFsStatus}; ${buildHint}`);
  const loaded = addon();
  for (const name of ['readFileHead', 'writeFileDurable', 'rewriteFileDurable', 'fsyncPath'] as const) {
    assert.equal(typeof loaded[name], 'function', `${name} is exported`);
  }
  if (disabledByEnv) {
    assert.equal(nativeFsStatus, 'node:fs (COFFER_NATIVE_FS=off)');
  } else {
    assert.match(nativeFsStatus, /^native /);
  }
});

test('readFileHead: exact bytes and sizes, and maxBytes below the size', async () => {
  const { readFileHead } = addon();
  // 64 KiB is where results switch from a copy to an external Buffer.
  for (const sizeBytes of [0, 1, 4095, 4096, 65536, 65537, 100_000]) {
    const file = fresh(`head-${sizeBytes}`);
    const bytes = randomBytes(sizeBytes);
    await fs.writeFile(file, bytes);
    const whole = await readFileHead(file, 1 << 20);
    assert.ok(Buffer.isBuffer(whole.bytes), `a Buffer for ${sizeBytes} bytes`);
    assert.equal(whole.sizeBytes, sizeBytes);
    assert.ok(whole.bytes.equals(bytes), `all ${sizeBytes} bytes read back`);
    const exact = await readFileHead(file, sizeBytes);
    assert.ok(exact.bytes.equals(bytes), `maxBytes = size reads all ${sizeBytes} bytes`);
    for (const maxBytes of [0, 1, 4096]) {
      const head = await readFileHead(file, maxBytes);
      assert.equal(head.sizeBytes, sizeBytes, 'sizeBytes is the whole file');
      assert.ok(head.bytes.equals(bytes.subarray(0, maxBytes)), `${sizeBytes} bytes, maxBytes ${maxBytes}: the first bytes`);
    }
  }
  // The result Buffers are independent copies: changing one changes neither the file nor another result.
  const file = fresh('independent');
  await fs.writeFile(file, Buffer.from('abc'));
  const first = await readFileHead(file, 10);
  const second = await readFileHead(file, 10);
  first.bytes.fill(0);
  assert.equal(second.bytes.toString(), 'abc');
  assert.equal((await fs.readFile(file)).toString(), 'abc');
});

test('readFileHead: ENOENT, ENOTDIR and EISDIR like node:fs', async () => {
  const { readFileHead } = addon();
  const missing = path.join(root, 'no-such-dir', 'coffer.meta');
  await rejectsLikeFs(readFileHead(missing, 10), 'ENOENT', 'open', missing);
  const file = fresh('plain');
  await fs.writeFile(file, 'x');
  const underFile = path.join(file, 'coffer.meta');
  await rejectsLikeFs(readFileHead(underFile, 10), 'ENOTDIR', 'open', underFile);
  const dir = fresh('dir');
  await fs.mkdir(dir);
  await rejectsLikeFs(readFileHead(dir, 10), 'EISDIR', 'read', dir);
  await rejectsLikeFs(readFileHead(dir, 0), 'EISDIR', 'read', dir);
  // node:fs agrees on the code
  await assert.rejects(fs.readFile(dir), { code: 'EISDIR' });
  await assert.rejects(fs.readFile(missing), { code: 'ENOENT', syscall: 'open', path: missing, errno: -errno.ENOENT });
});

test('writeFileDurable: exact content, EEXIST leaves the file alone, ENOENT, zero bytes', async () => {
  const { writeFileDurable } = addon();
  const file = fresh('durable');
  const bytes = randomBytes(70_000);
  assert.equal(await writeFileDurable(file, bytes), undefined);
  assert.ok((await fs.readFile(file)).equals(bytes), 'the file holds exactly the bytes');
  const reference = fresh('reference');
  await fs.writeFile(reference, ''); // node:fs creates with 0666 less the umask too
  assert.equal((await fs.stat(file)).mode & 0o777, (await fs.stat(reference)).mode & 0o777, 'mode 0666 less the umask');
  await rejectsLikeFs(writeFileDurable(file, Buffer.from('other')), 'EEXIST', 'open', file);
  assert.ok((await fs.readFile(file)).equals(bytes), 'EEXIST left the file untouched');
  const inMissingDir = path.join(root, 'no-such-dir', 'file');
  await rejectsLikeFs(writeFileDurable(inMissingDir, bytes), 'ENOENT', 'open', inMissingDir);
  const dir = fresh('dir');
  await fs.mkdir(dir);
  await rejectsLikeFs(writeFileDurable(dir, bytes), 'EEXIST', 'open', dir);
  const empty = fresh('empty');
  await writeFileDurable(empty, new Uint8Array(0));
  assert.equal((await fs.stat(empty)).size, 0);
});

test('writeFileDurable: Buffer views at an offset, shared memory, and a caller that drops its reference', async () => {
  const { writeFileDurable } = addon();
  const backing = randomBytes(10_000);
  const view = backing.subarray(1234, 1234 + 5000);
  const viewFile = fresh('view');
  await writeFileDurable(viewFile, view);
  assert.ok((await fs.readFile(viewFile)).equals(view), 'only the view is written');

  const shared = new Uint8Array(new SharedArrayBuffer(8192), 100, 3000);
  shared.set(randomBytes(3000));
  const sharedFile = fresh('shared');
  await writeFileDurable(sharedFile, shared);
  assert.ok((await fs.readFile(sharedFile)).equals(shared), 'a Uint8Array over a SharedArrayBuffer');

  const plain = new Uint8Array(randomBytes(777));
  const plainFile = fresh('plain-u8');
  await writeFileDurable(plainFile, plain);
  assert.ok((await fs.readFile(plainFile)).equals(plain), 'a plain Uint8Array');

  // The addon keeps the array alive during the job: nothing here references it after the call.
  const files = Array.from({ length: 20 }, () => fresh('dropped'));
  await Promise.all(files.map((file, index) => writeFileDurable(file, Buffer.alloc(50_000, index))));
  for (const [index, file] of files.entries()) {
    assert.ok((await fs.readFile(file)).equals(Buffer.alloc(50_000, index)), `dropped buffer ${index} written whole`);
  }
});

test('writeFileDurable: 200 concurrent calls', async () => {
  const { writeFileDurable, readFileHead } = addon();
  const dir = fresh('many');
  await fs.mkdir(dir);
  const contents = Array.from({ length: 200 }, (_, index) => randomBytes(index * 37));
  const results = await Promise.all(contents.map((bytes, index) => writeFileDurable(path.join(dir, `f${index}`), bytes)));
  assert.equal(results.length, 200);
  const heads = await Promise.all(contents.map((_, index) => readFileHead(path.join(dir, `f${index}`), 1 << 16)));
  for (const [index, bytes] of contents.entries()) {
    assert.ok(heads[index]!.bytes.equals(bytes), `file ${index} read back`);
    assert.ok((await fs.readFile(path.join(dir, `f${index}`))).equals(bytes), `file ${index} as node:fs sees it`);
  }
  // and 200 at once that all collide: every one EEXIST
  const collisions = await Promise.allSettled(contents.map((_, index) => writeFileDurable(path.join(dir, `f${index}`), Buffer.from('x'))));
  assert.ok(collisions.every((outcome) => outcome.status === 'rejected' && (outcome.reason as NodeJS.ErrnoException).code === 'EEXIST'), 'every collision is EEXIST');
});

test('rewriteFileDurable: longer, shorter and empty content in place (same inode); ENOENT; EISDIR', async () => {
  const { rewriteFileDurable, readFileHead } = addon();
  const file = fresh('rewrite');
  await fs.writeFile(file, randomBytes(10_000));
  const inode = (await fs.stat(file)).ino;
  for (const sizeBytes of [20_000, 4096, 1, 0, 70_000, 300]) {
    const bytes = randomBytes(sizeBytes);
    assert.equal(await rewriteFileDurable(file, bytes), undefined);
    const stat = await fs.stat(file);
    assert.equal(stat.size, sizeBytes, `cut to ${sizeBytes} bytes`);
    assert.equal(stat.ino, inode, 'the same file, not a new one');
    assert.ok((await fs.readFile(file)).equals(bytes), `exactly the ${sizeBytes} new bytes`);
    assert.ok((await readFileHead(file, 1 << 20)).bytes.equals(bytes), 'readFileHead agrees');
  }
  const missing = path.join(root, 'no-such-dir', 'rewrite');
  await rejectsLikeFs(rewriteFileDurable(missing, Buffer.from('x')), 'ENOENT', 'open', missing);
  const notCreated = fresh('not-created');
  await rejectsLikeFs(rewriteFileDurable(notCreated, Buffer.from('x')), 'ENOENT', 'open', notCreated);
  await assert.rejects(fs.stat(notCreated), { code: 'ENOENT' }, 'a rewrite never creates a file');
  const dir = fresh('rewrite-dir');
  await fs.mkdir(dir);
  await rejectsLikeFs(rewriteFileDurable(dir, Buffer.from('x')), 'EISDIR', 'open', dir);
  assert.throws(() => rewriteFileDurable(file, 'text' as unknown as Uint8Array), TypeError);
});

test('fsyncPath: a directory and a file; ENOENT; ENOTDIR for a file as a directory', async () => {
  const { fsyncPath } = addon();
  const dir = fresh('sync-dir');
  await fs.mkdir(dir);
  const file = path.join(dir, 'file');
  await fs.writeFile(file, 'x');
  assert.equal(await fsyncPath(dir, true), undefined);
  assert.equal(await fsyncPath(dir, false), undefined);
  assert.equal(await fsyncPath(file, false), undefined);
  const missing = path.join(dir, 'missing');
  await rejectsLikeFs(fsyncPath(missing, true), 'ENOENT', 'open', missing);
  await rejectsLikeFs(fsyncPath(missing, false), 'ENOENT', 'open', missing);
  await rejectsLikeFs(fsyncPath(file, true), 'ENOTDIR', 'open', file);
});

test('bad arguments throw TypeError or RangeError synchronously and touch nothing', async () => {
  const native = addon() as unknown as Record<keyof NativeFs, (...args: unknown[]) => unknown>;
  const file = fresh('args');
  const cases: [string, () => unknown, typeof TypeError | typeof RangeError][] = [
    ['readFileHead without maxBytes', () => native.readFileHead(file), TypeError],
    ['readFileHead with a number path', () => native.readFileHead(42, 10), TypeError],
    ['readFileHead with a Buffer path', () => native.readFileHead(Buffer.from(file), 10), TypeError],
    ['readFileHead with a NUL in the path', () => native.readFileHead(`${file}\0x`, 10), TypeError],
    ['readFileHead with a string maxBytes', () => native.readFileHead(file, '10'), TypeError],
    ['readFileHead with a negative maxBytes', () => native.readFileHead(file, -1), RangeError],
    ['readFileHead with a fractional maxBytes', () => native.readFileHead(file, 1.5), RangeError],
    ['readFileHead with NaN', () => native.readFileHead(file, Number.NaN), RangeError],
    ['readFileHead with 2^31', () => native.readFileHead(file, 2 ** 31), RangeError],
    ['writeFileDurable without bytes', () => native.writeFileDurable(file), TypeError],
    ['writeFileDurable with a string', () => native.writeFileDurable(file, 'text'), TypeError],
    ['writeFileDurable with an array', () => native.writeFileDurable(file, [1, 2]), TypeError],
    ['writeFileDurable with a Uint16Array', () => native.writeFileDurable(file, new Uint16Array(2)), TypeError],
    ['writeFileDurable with a DataView', () => native.writeFileDurable(file, new DataView(new ArrayBuffer(2))), TypeError],
    ['writeFileDurable with a NUL in the path', () => native.writeFileDurable(`${file}\0x`, Buffer.from('x')), TypeError],
    ['fsyncPath without directory', () => native.fsyncPath(root), TypeError],
    ['fsyncPath with a number', () => native.fsyncPath(root, 1), TypeError],
    ['fsyncPath with undefined path', () => native.fsyncPath(undefined, true), TypeError],
  ];
  for (const [what, call, kind] of cases) {
    assert.throws(call, kind, what);
  }
  assert.throws(() => native.readFileHead(`${file}\0x`, 10), { code: 'ERR_INVALID_ARG_VALUE' }, 'NUL path code');
  assert.throws(() => native.readFileHead(file, -1), { code: 'ERR_OUT_OF_RANGE' }, 'range code');
  await assert.rejects(fs.stat(file), { code: 'ENOENT' }, 'no call created the file');
  assert.equal((await fs.readdir(root)).some((name) => name.includes('\0')), false);
});

test('the addon works in worker threads, and a worker may exit with jobs in flight', async () => {
  const dir = fresh('workers');
  await fs.mkdir(dir);
  const source = `
    const { parentPort, workerData } = require('node:worker_threads');
    const path = require('node:path');
    const native = require(workerData.addonPath);
    (async () => {
      const file = path.join(workerData.dir, 'w' + workerData.id);
      await native.writeFileDurable(file, Buffer.from('worker ' + workerData.id));
      await native.fsyncPath(workerData.dir, true);
      const head = await native.readFileHead(file, 100);
      if (workerData.abandon) {
        // many jobs queued or running when the main thread terminates this worker on its message
        for (let index = 0; index < 50; index++) {
          native.readFileHead(file, 100).catch(() => {});
          native.writeFileDurable(file + '.' + index, Buffer.alloc(4096)).catch(() => {});
        }
      }
      parentPort.postMessage({ text: head.bytes.toString(), size: head.sizeBytes });
    })().catch((error) => parentPort.postMessage({ error: String(error) }));
  `;
  const runWorker = (id: number, abandon: boolean): Promise<{ text?: string; size?: number; error?: string }> =>
    new Promise((resolve, reject) => {
      const worker = new Worker(source, { eval: true, workerData: { addonPath: nativeFsAddonPath, dir, id, abandon } });
      let message: { text?: string; size?: number; error?: string } | undefined;
      worker.once('message', (received) => {
        message = received;
        void worker.terminate();
      });
      worker.once('error', reject);
      worker.once('exit', () => (message === undefined ? reject(new Error(`worker ${id} exited without an answer`)) : resolve(message)));
    });
  const results = await Promise.all([runWorker(1, false), runWorker(2, true), runWorker(3, true)]);
  for (const [index, result] of results.entries()) {
    assert.equal(result.error, undefined, `worker ${index + 1} failed: ${result.error}`);
    assert.equal(result.text, `worker ${index + 1}`);
    assert.equal(result.size, `worker ${index + 1}`.length);
  }
  // The main thread's calls still work afterwards.
  const head = await addon().readFileHead(path.join(dir, 'w1'), 100);
  assert.equal(head.bytes.toString(), 'worker 1');
});

// ------------------------------------------------------------- with the addon and without: same answers

/**
 * A module the test process (addon as COFFER_NATIVE_FS says) and a child with COFFER_NATIVE_FS=off both
 * run: readObjectMeta over good and damaged coffer.meta files, and writeFileDurable / fsyncDir errors.
 * Errno errors are compared by code and syscall (node:fs leaves path off its fd steps' errors; the addon
 * does not), everything else by name and message.
 */
const probeSource = (engineDir: string): string => `
import fs from 'node:fs/promises';
import path from 'node:path';
import { readObjectMeta } from ${JSON.stringify(pathToFileURL(path.join(engineDir, 'objects.ts')).href)};
import { fsyncDir, rewriteFileDurable, writeFileDurable } from ${JSON.stringify(pathToFileURL(path.join(engineDir, 'drive.ts')).href)};
import { nativeFsStatus } from ${JSON.stringify(pathToFileURL(path.join(engineDir, 'native-fs.ts')).href)};

function describe(error) {
  if (typeof error?.code === 'string' && typeof error?.syscall === 'string') return { code: error.code, syscall: error.syscall };
  return { name: error?.name, message: error?.message };
}

async function outcome(run) {
  try {
    return { value: await run() };
  } catch (error) {
    return { error: describe(error) };
  }
}

export async function probe(casesDir, scratchDir) {
  const results = { status: nativeFsStatus };
  for (const name of (await fs.readdir(casesDir)).sort()) {
    for (const withInline of [false, true]) {
      results[name + (withInline ? ' +inline' : '')] = await outcome(async () => {
        const meta = await readObjectMeta(path.join(casesDir, name), withInline);
        if (meta === undefined) return 'undefined';
        return {
          versions: meta.versions.map((version) => [version.etag, version.sizeBytes, version.parts.length]),
          inline: meta.inlineData.toString('base64'),
        };
      });
    }
  }
  await fs.mkdir(scratchDir, { recursive: true });
  const file = path.join(scratchDir, 'written');
  results.write = await outcome(async () => {
    await writeFileDurable(file, Buffer.from('first'));
    return (await fs.readFile(file)).toString();
  });
  results.writeExisting = await outcome(() => writeFileDurable(file, Buffer.from('second')));
  results.afterExisting = (await fs.readFile(file)).toString();
  results.writeMissingDir = await outcome(() => writeFileDurable(path.join(scratchDir, 'missing', 'x'), Buffer.from('x')));
  results.writeEmpty = await outcome(async () => {
    await writeFileDurable(path.join(scratchDir, 'empty'), Buffer.alloc(0));
    return (await fs.stat(path.join(scratchDir, 'empty'))).size;
  });
  results.rewriteShorter = await outcome(async () => {
    const inode = (await fs.stat(file)).ino;
    await rewriteFileDurable(file, Buffer.from('fir'));
    return [(await fs.readFile(file)).toString(), (await fs.stat(file)).ino === inode];
  });
  results.rewriteLonger = await outcome(async () => {
    await rewriteFileDurable(file, Buffer.from('a longer text'));
    return (await fs.readFile(file)).toString();
  });
  results.rewriteMissing = await outcome(() => rewriteFileDurable(path.join(scratchDir, 'not-there'), Buffer.from('x')));
  results.rewriteDirectory = await outcome(() => rewriteFileDurable(scratchDir, Buffer.from('x')));
  results.fsyncDir = await outcome(() => fsyncDir(scratchDir));
  results.fsyncDirsConcurrently = await outcome(async () => (await Promise.all(Array.from({ length: 10 }, () => fsyncDir(scratchDir)))).length);
  results.fsyncDirMissing = await outcome(() => fsyncDir(path.join(scratchDir, 'missing')));
  results.fsyncDirOnFile = await outcome(() => fsyncDir(file));
  return results;
}
`;

test('readObjectMeta, writeFileDurable and fsyncDir: the same answers and errors with and without the addon', async () => {
  const casesDir = path.join(root, 'parity-cases');
  await fs.mkdir(casesDir);
  const put = async (name: string, bytes: Uint8Array | undefined): Promise<void> => {
    await fs.mkdir(path.join(casesDir, name));
    if (bytes !== undefined) await fs.writeFile(path.join(casesDir, name, 'coffer.meta'), bytes);
  };
  const inlineData = randomBytes(20_000);
  const inlineVersion: ObjectVersion = {
    type: 'object',
    versionId: null,
    modTimeMs: 1700000000123,
    sizeBytes: inlineData.length,
    etag: 'e'.repeat(32),
    contentType: 'application/octet-stream',
    userMetadata: { 'x-amz-meta-a': 'b' },
    systemHeaders: {},
    parts: [{ n: 1, size: inlineData.length, etag: 'e'.repeat(32), mtime: 1700000000123 }],
    inline: true,
    inlineCrc32c: crc32c(inlineData),
    erasure: singleDriveErasure,
  };
  // 300 parts: a body of ~20 KB, far past the 4 KiB probe
  const parts = Array.from({ length: 300 }, (_, index) => ({ n: index + 1, size: 5 << 20, etag: index.toString(16).padStart(32, '0'), mtime: 1700000000000 + index }));
  const multipartVersion: ObjectVersion = {
    type: 'object',
    versionId: null,
    modTimeMs: 1700000000999,
    sizeBytes: parts.length * (5 << 20),
    etag: `${'a'.repeat(32)}-${parts.length}`,
    contentType: 'application/octet-stream',
    userMetadata: {},
    systemHeaders: {},
    parts,
    dataDir: '6f2b1d7e-3c4a-4b8e-9f10-2a3b4c5d6e7f',
    inline: false,
    erasure: singleDriveErasure,
  };
  const small = encodeObjectMeta({ versions: [{ ...inlineVersion, sizeBytes: 3, parts: [{ ...inlineVersion.parts[0]!, size: 3 }], inlineCrc32c: crc32c(Buffer.from('abc')) }], inlineData: Buffer.from('abc') });
  const inline = encodeObjectMeta({ versions: [inlineVersion], inlineData });
  const big = encodeObjectMeta({ versions: [multipartVersion], inlineData: Buffer.alloc(0) });
  assert.ok(big.length > 16_000, `the multipart metadata is bigger than the probe (${big.length} bytes)`);
  const badCrc = Buffer.from(big);
  badCrc[5000] ^= 1;
  await put('small', small);
  await put('inline', inline);
  await put('big', big);
  await put('big-bad-crc', badCrc);
  await put('big-truncated-in-body', big.subarray(0, 10_000));
  await put('big-truncated-at-probe', big.subarray(0, 4096));
  await put('small-truncated', small.subarray(0, small.length - 10));
  await put('inline-truncated-in-data', inline.subarray(0, inline.length - 100));
  await put('header-only-part', small.subarray(0, 5));
  await put('empty', new Uint8Array(0));
  await put('bad-magic', Buffer.concat([Buffer.from('XXXX'), small.subarray(4)]));
  await put('garbage', randomBytes(6000));
  await put('missing', undefined);
  await fs.mkdir(path.join(casesDir, 'meta-is-a-directory', 'coffer.meta'), { recursive: true });
  await fs.writeFile(path.join(casesDir, 'object-dir-is-a-file'), 'x');
  // A sparse coffer.meta past the size limit (~8.3 MB) that starts with a good small frame.
  await put('too-large', small);
  await fs.truncate(path.join(casesDir, 'too-large', 'coffer.meta'), 9 << 20);

  const probeFile = path.join(root, 'parity-probe.mts');
  await fs.writeFile(probeFile, probeSource(path.join(repoRoot, 'engine')));
  const here = (await import(pathToFileURL(probeFile).href)) as { probe(casesDir: string, scratchDir: string): Promise<Record<string, unknown>> };
  // through JSON, as the child's answers come
  const withAddon = JSON.parse(JSON.stringify(await here.probe(casesDir, path.join(root, 'parity-scratch-here')))) as Record<string, unknown>;

  const script = `
    const { probe } = await import(${JSON.stringify(pathToFileURL(probeFile).href)});
    process.stdout.write(JSON.stringify(await probe(${JSON.stringify(casesDir)}, ${JSON.stringify(path.join(root, 'parity-scratch-child'))})));
  `;
  const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '--eval', script], {
    cwd: repoRoot,
    env: { ...process.env, COFFER_NATIVE_FS: 'off' },
    encoding: 'utf8',
    timeout: 120_000,
  });
  assert.equal(child.status, 0, `child failed: ${child.stderr}`);
  const withoutAddon = JSON.parse(child.stdout) as Record<string, unknown>;

  assert.equal(withoutAddon['status'], 'node:fs (COFFER_NATIVE_FS=off)');
  assert.equal(withAddon['status'], nativeFsStatus);
  // The cases mean something: good files decode, damaged ones fail, missing ones are undefined.
  assert.equal((withAddon['big'] as { value: { versions: unknown[][] } }).value.versions[0]![2], 300, 'the big metadata decodes (no inline)');
  assert.equal((withAddon['inline +inline'] as { value: { inline: string } }).value.inline, inlineData.toString('base64'), 'inline data comes back');
  assert.deepEqual(withAddon['missing'], { value: 'undefined' });
  assert.deepEqual(withAddon['object-dir-is-a-file'], { value: 'undefined' });
  assert.deepEqual(withAddon['meta-is-a-directory'], { error: { code: 'EISDIR', syscall: 'read' } });
  assert.match(JSON.stringify(withAddon['too-large +inline']), /file too large/);
  assert.match(JSON.stringify(withAddon['big-truncated-in-body']), /truncated file/);
  assert.deepEqual(withAddon['writeExisting'], { error: { code: 'EEXIST', syscall: 'open' } });
  assert.deepEqual(withAddon['fsyncDirOnFile'], { error: { code: 'ENOTDIR', syscall: 'open' } });
  assert.deepEqual(withAddon['rewriteShorter'], { value: ['fir', true] }, 'rewritten in place and cut');
  assert.deepEqual(withAddon['rewriteLonger'], { value: 'a longer text' });
  assert.deepEqual(withAddon['rewriteMissing'], { error: { code: 'ENOENT', syscall: 'open' } });
  assert.deepEqual(withAddon['rewriteDirectory'], { error: { code: 'EISDIR', syscall: 'open' } });
  const scrub = (results: Record<string, unknown>): string => JSON.stringify({ ...results, status: undefined }).replaceAll('parity-scratch-here', 'parity-scratch-child');
  for (const key of Object.keys(withoutAddon)) {
    if (key === 'status') continue;
    assert.deepEqual(withAddon[key], withoutAddon[key], `${key}: with the addon (${nativeFsStatus}) and without it agree`);
  }
  assert.equal(scrub(withAddon), scrub(withoutAddon), 'every result agrees');
});
