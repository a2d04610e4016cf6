// The native SHA-256/HMAC-SHA256 addon (native/hash.c via engine/crypto/sha256.ts) against node:crypto: every
// message length around the 64-byte block, keys shorter than, equal to and longer than a block, strings in
// UTF-8 (the stack copy and the heap copy of long ones), several parts, the argument checks, and the module's
// fallback (COFFER_NATIVE_HASH=off) giving the same bytes.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import path from 'node:path';
import test from 'node:test';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { hmacSha256, hmacSha256Into, nativeHashAddonPath, nativeHashStatus, sha256, type HashPart } from '../engine/crypto/sha256.ts';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const buildHint = 'build it with `node native/build.mjs` (npm ci runs it; needs a C compiler, make and python3)';
const disabledByEnv = process.env.COFFER_NATIVE_HASH?.toLowerCase() === 'off';

/** Typed loosely: the tests pass what a careless caller might. */
interface NativeHash {
  sha256(out: unknown, ...parts: unknown[]): void;
  hmacSha256(out: unknown, ...keyAndParts: unknown[]): void;
}

function addon(): NativeHash {
  try {
    return createRequire(import.meta.url)(nativeHashAddonPath) as NativeHash;
  } catch (error) {
    assert.fail(`native SHA-256 addon ${nativeHashAddonPath} does not load (${(error as Error).message}); ${buildHint}`);
  }
}

function nodeSha256(...parts: HashPart[]): Buffer {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part);
  return hash.digest();
}

function nodeHmac(key: HashPart, ...parts: HashPart[]): Buffer {
  const mac = createHmac('sha256', key);
  for (const part of parts) mac.update(part);
  return mac.digest();
}

test('the addon is built, loads, and engine/crypto/sha256.ts uses it', () => {
  if (disabledByEnv) assert.match(nativeHashStatus, /COFFER_NATIVE_HASH=off/);
  else assert.equal(nativeHashStatus, 'native (one call per digest)', `${nativeHashStatus}; ${buildHint}`);
  const hash = addon();
  assert.equal(typeof hash.sha256, 'function');
  assert.equal(typeof hash.hmacSha256, 'function');
});

test('SHA-256 of every length 0–300 and of random long messages, whole and split into parts', () => {
  const hash = addon();
  const data = randomBytes(20_000);
  const out = Buffer.alloc(40, 0xaa);
  const lengths = [...Array.from({ length: 301 }, (_, i) => i), ...Array.from({ length: 40 }, () => Math.floor(Math.random() * data.length))];
  for (const length of lengths) {
    const message = data.subarray(0, length);
    const expected = nodeSha256(message);
    hash.sha256(out, message);
    assert.deepEqual(out.subarray(0, 32), expected, `length ${length}`);
    assert.deepEqual(out.subarray(32), Buffer.alloc(8, 0xaa), 'only 32 bytes of out are written');
    const cut1 = Math.floor(length / 3);
    const cut2 = Math.floor((2 * length) / 3);
    assert.deepEqual(sha256(message.subarray(0, cut1), message.subarray(cut1, cut2), message.subarray(cut2)), expected, `length ${length} in 3 parts`);
  }
  assert.deepEqual(sha256(), nodeSha256(), 'no parts: the empty message');
});

test('HMAC-SHA256 with keys of 0–130 bytes (hashed beyond the 64-byte block) and messages around a block', () => {
  const hash = addon();
  const out = Buffer.alloc(32);
  for (let keyLength = 0; keyLength <= 130; keyLength++) {
    const key = randomBytes(keyLength);
    for (const length of [0, 1, 31, 55, 56, 63, 64, 65, 119, 120, 128, 1000]) {
      const message = randomBytes(length);
      hash.hmacSha256(out, key, message);
      assert.deepEqual(out, nodeHmac(key, message), `key ${keyLength}, message ${length}`);
    }
  }
});

test('strings are hashed as UTF-8, as node:crypto hashes them: multi-byte, lone surrogates, and longer than the stack copy', () => {
  const strings = [
    '',
    'AWS4-HMAC-SHA256\n20261127T000000Z\n20261127/us-east-1/s3/aws4_request\n',
    'bücket/ø/日本語/🙂',
    'lone \ud800 surrogate \udc00 and a pair \ud83d\ude42',
    'x'.repeat(2047),
    'x'.repeat(2048),
    'é'.repeat(5000), // 10,000 UTF-8 bytes: the heap copy
  ];
  for (const text of strings) {
    assert.deepEqual(sha256(text), nodeSha256(text), `sha256 of ${text.length} chars`);
    assert.deepEqual(hmacSha256(text, text, 'and'), nodeHmac(text, text, 'and'), `string key and parts of ${text.length} chars`);
  }
  // Several strings in one call share the stack copy until it is full.
  const many = ['a'.repeat(900), 'b'.repeat(900), 'c'.repeat(900), 'é'.repeat(300), 'tail'];
  assert.deepEqual(sha256(...many), nodeSha256(...many));
  assert.deepEqual(hmacSha256('k'.repeat(1500), ...many), nodeHmac('k'.repeat(1500), ...many));
});

test('up to 8 parts go native; more fall back to node:crypto with the same result; hmacSha256Into writes a scratch', () => {
  const parts = Array.from({ length: 12 }, (_, i) => (i % 2 === 0 ? randomBytes(i * 7) : `part ${i}`));
  for (let count = 0; count <= parts.length; count++) {
    const slice = parts.slice(0, count);
    assert.deepEqual(sha256(...slice), nodeSha256(...slice), `${count} parts`);
    assert.deepEqual(hmacSha256('key', ...slice), nodeHmac('key', ...slice), `${count} parts`);
  }
  const scratch = Buffer.alloc(48, 1);
  const result = hmacSha256Into(scratch, parts[2]!, 'a', parts[4]!);
  assert.deepEqual(result, nodeHmac(parts[2]!, 'a', parts[4]!));
  assert.equal(result.buffer, scratch.buffer, 'the result is a view of the scratch');
  assert.deepEqual(scratch.subarray(32), Buffer.alloc(16, 1));
  assert.throws(() => hmacSha256Into(Buffer.alloc(31), 'k'), RangeError);
});

test('an HMAC result has memory of its own (it is often a key); a SHA-256 may be pooled', () => {
  const mac = hmacSha256(randomBytes(32), 'x');
  assert.equal(mac.byteOffset, 0);
  assert.equal(mac.buffer.byteLength, 32);
});

test('bad arguments throw: wrong types, a short out, too many parts', () => {
  const hash = addon();
  const out = Buffer.alloc(32);
  assert.throws(() => hash.sha256(Buffer.alloc(31), 'x'), RangeError);
  assert.throws(() => hash.sha256(new Uint16Array(16), 'x'), TypeError);
  assert.throws(() => hash.sha256('out', 'x'), TypeError);
  assert.throws(() => hash.sha256(out, 42), TypeError);
  assert.throws(() => hash.sha256(out, new Uint32Array(4)), TypeError);
  assert.throws(() => hash.hmacSha256(out), TypeError);
  assert.throws(() => hash.hmacSha256(out, {}, 'x'), TypeError);
  assert.throws(() => hash.sha256(out, ...Array.from({ length: 9 }, () => 'p')), RangeError);
  // A failed call leaves the context usable.
  hash.sha256(out, 'abc');
  assert.deepEqual(out, nodeSha256('abc'));
});

test('worker threads load their own instance and hash concurrently', async () => {
  const source = `
    const { parentPort, workerData } = require('node:worker_threads');
    const hash = require(workerData.addonPath);
    const out = Buffer.alloc(32);
    const results = [];
    for (let i = 0; i < 2000; i++) { hash.hmacSha256(out, 'key' + i, 'message ' + i); results.push(out.toString('hex')); }
    parentPort.postMessage(results);
  `;
  const runs = await Promise.all(
    [0, 1, 2].map(
      () =>
        new Promise<string[]>((resolve, reject) => {
          const worker = new Worker(source, { eval: true, workerData: { addonPath: nativeHashAddonPath } });
          worker.once('message', resolve);
          worker.once('error', reject);
        }),
    ),
  );
  const expected = Array.from({ length: 2000 }, (_, i) => nodeHmac(`key${i}`, `message ${i}`).toString('hex'));
  for (const results of runs) assert.deepEqual(results, expected);
});

test('COFFER_NATIVE_HASH=off: node:crypto computes the same bytes', () => {
  const script = `
    import { hmacSha256, nativeHashStatus, sha256 } from './engine/crypto/sha256.ts';
    console.log(JSON.stringify({ status: nativeHashStatus, sha: sha256('abc', Buffer.from([1, 2, 3])).toString('hex'), mac: hmacSha256('k'.repeat(100), 'é', Buffer.from([9])).toString('hex') }));
  `;
  const run = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: repoRoot,
    encoding: 'utf8',
    env: { ...process.env, COFFER_NATIVE_HASH: 'off' },
    timeout: 60_000,
  });
  assert.equal(run.status, 0, run.stderr);
  const result = JSON.parse(run.stdout.trim()) as { status: string; sha: string; mac: string };
  assert.match(result.status, /^node:crypto \(COFFER_NATIVE_HASH=off\)$/);
  assert.equal(result.sha, sha256('abc', Buffer.from([1, 2, 3])).toString('hex'));
  assert.equal(result.mac, hmacSha256('k'.repeat(100), 'é', Buffer.from([9])).toString('hex'));
});
