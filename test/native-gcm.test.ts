// The native AES-256-GCM addon (native/gcm.c via workers/native-gcm.ts) against node:crypto and
// @noble/ciphers, on every kind of memory a caller can hand it, in worker threads, and DARE sealed and
// opened through it byte-identical to the node:crypto path (workers/dare.ts).

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import test from 'node:test';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { gcm as nobleGcm } from '@noble/ciphers/aes.js';
import {
  DareError,
  dareAesGcmImplementation,
  darePackageBytesMax,
  darePayloadBytesMax,
  decryptStream,
  encryptStream,
  openPackages,
  openPackagesInto,
  sealPackages,
  setDareNativeGcm,
} from '../workers/dare.ts';
import { nativeGcm, nativeGcmAddonPath, nativeGcmAvailable, nativeGcmStatus, type NativeGcm } from '../workers/native-gcm.ts';
import { createBlockCipherPool, probePoolThread } from '../workers/pool.ts';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
// Around the VAES code's 64-byte registers and 256-byte (16-block) steps too.
const sizes = [0, 1, 15, 16, 17, 63, 64, 65, 255, 256, 257, 1023, 4095, 4097, 65536, 65537];
const buildHint = 'build it with `node native/build.mjs` (npm ci runs it; needs a C compiler, make and python3)';
/** The DARE comparisons need the addon in this process (COFFER_NATIVE_GCM=off turns it off). */
const disabledByEnv = process.env.COFFER_NATIVE_GCM?.toLowerCase() === 'off';
const dareTest = { skip: disabledByEnv ? 'COFFER_NATIVE_GCM=off' : false };

/** The addon itself, loaded directly (whatever COFFER_NATIVE_GCM says). */
function addon(): NativeGcm {
  let loaded: NativeGcm;
  try {
    loaded = createRequire(import.meta.url)(nativeGcmAddonPath) as NativeGcm;
  } catch (error) {
    assert.fail(`native AES-GCM addon ${nativeGcmAddonPath} does not load (${(error as Error).message}); ${buildHint}`);
  }
  return loaded;
}

function nodeSeal(key: Uint8Array, iv: Uint8Array, aad: Uint8Array, plaintext: Uint8Array): { ciphertext: Buffer; tag: Buffer } {
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(aad);
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return { ciphertext, tag: cipher.getAuthTag() };
}

function nodeOpen(key: Uint8Array, iv: Uint8Array, aad: Uint8Array, ciphertext: Uint8Array, tag: Uint8Array): Buffer {
  const decipher = createDecipheriv('aes-256-gcm', key, iv);
  decipher.setAAD(aad);
  decipher.setAuthTag(tag);
  return Buffer.concat([decipher.update(ciphertext), decipher.final()]);
}

/** Hands out views of `length` zeroed bytes at an odd offset inside some memory. */
type Memory = (length: number) => Uint8Array;

/** Successive views of one big buffer (wrapping around; one test step uses far less than all of it). */
function arena(buffer: ArrayBufferLike): Memory {
  let next = 0;
  return (length) => {
    if (next + length + 16 > buffer.byteLength) next = 0;
    const view = new Uint8Array(buffer, next + 7, length).fill(0);
    next += length + 13;
    return view;
  };
}

// Node 20's @types/node does not declare the WebAssembly global (lib.dom does); the one constructor used here.
const { Memory: WasmMemory } = (globalThis as unknown as {
  WebAssembly: { Memory: new (descriptor: { initial: number; maximum?: number; shared?: boolean }) => { buffer: ArrayBufferLike } };
}).WebAssembly;
const arenaPages = 32; // 2 MiB
const memories: Record<string, Memory> = {
  'Buffer at an offset': (length) => Buffer.alloc(length + 40).subarray(13, 13 + length),
  'pooled Buffer': (length) => Buffer.allocUnsafe(length).fill(0),
  'SharedArrayBuffer': arena(new SharedArrayBuffer(arenaPages * 65536)),
  'WebAssembly.Memory': arena(new WasmMemory({ initial: arenaPages }).buffer),
  'shared WebAssembly.Memory': arena(new WasmMemory({ initial: arenaPages, maximum: arenaPages, shared: true }).buffer),
};

function placed(memory: Memory, bytes: Uint8Array): Uint8Array {
  const view = memory(bytes.length);
  view.set(bytes);
  return view;
}

test('the addon is built and loads', () => {
  assert.ok(nativeGcmAvailable || disabledByEnv, `native AES-GCM is not in use: ${nativeGcmStatus}; ${buildHint}`);
  const gcm = addon();
  assert.equal(typeof gcm.seal, 'function');
  assert.equal(typeof gcm.open, 'function');
  assert.match(gcm.openssl, /^OpenSSL 3\./);
  if (!disabledByEnv) {
    assert.equal(nativeGcm?.openssl, gcm.openssl);
    assert.equal(dareAesGcmImplementation(), 'native');
  }
});

/** Whether this CPU has what native/vaes_gcm.c needs (Linux: /proc/cpuinfo flags). */
function cpuHasVaes(): boolean | undefined {
  let text: string;
  try {
    text = readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    return undefined;
  }
  const flags = new Set((/^flags\s*:(.*)$/m.exec(text)?.[1] ?? '').trim().split(/\s+/));
  return ['vaes', 'vpclmulqdq', 'avx512f', 'avx512bw', 'avx512vl', 'aes', 'pclmulqdq', 'sse4_1'].every((flag) => flags.has(flag));
}

test('the VAES/AVX-512 code runs where the CPU has it; COFFER_NATIVE_GCM_VAES=off keeps OpenSSL with the same bytes', () => {
  const gcm = addon();
  const vaesOff = process.env['COFFER_NATIVE_GCM_VAES']?.toLowerCase() === 'off';
  const expected = vaesOff ? false : cpuHasVaes();
  if (expected !== undefined) assert.equal(gcm.implementation, expected ? 'vaes-avx512' : 'openssl', 'implementation follows the CPU flags and COFFER_NATIVE_GCM_VAES');
  if (gcm.implementation === 'vaes-avx512' && !disabledByEnv) assert.match(nativeGcmStatus, /VAES\/AVX-512/);
  const script = `
    const { createRequire } = await import('node:module');
    const gcm = createRequire(import.meta.url)(${JSON.stringify(nativeGcmAddonPath)});
    const out = [];
    for (const length of [0, 1, 100, 255, 256, 257, 5000, 65536]) {
      const src = Buffer.alloc(length);
      for (let index = 0; index < length; index++) src[index] = (index * 7 + length) & 0xff;
      const dst = Buffer.alloc(length);
      const tag = Buffer.alloc(16);
      gcm.seal(Buffer.alloc(32, 0x5a), Buffer.alloc(12, length & 0xff), Buffer.from('aad!'), src, dst, tag);
      out.push(dst.toString('base64') + '.' + tag.toString('base64'));
    }
    process.stdout.write(JSON.stringify({ implementation: gcm.implementation, out }));
  `;
  const run = (vaes: string | undefined): { implementation: string; out: string[] } => {
    const env = { ...process.env };
    if (vaes === undefined) delete env['COFFER_NATIVE_GCM_VAES'];
    else env['COFFER_NATIVE_GCM_VAES'] = vaes;
    const child = spawnSync(process.execPath, ['--input-type=module', '--eval', script], { cwd: repoRoot, env, encoding: 'utf8', timeout: 60_000 });
    assert.equal(child.status, 0, `child failed: ${child.stderr}`);
    return JSON.parse(child.stdout) as { implementation: string; out: string[] };
  };
  const off = run('off');
  assert.equal(off.implementation, 'openssl');
  const standard = run(undefined);
  const cpu = cpuHasVaes();
  if (cpu !== undefined) assert.equal(standard.implementation, cpu ? 'vaes-avx512' : 'openssl', 'without the setting, the CPU decides');
  assert.deepEqual(standard.out, off.out, 'the same ciphertexts and tags as OpenSSL');
});

test('every length from 0 to 1,100 bytes and 300 random ones up to 300 KiB: the same bytes as node:crypto, and they open', () => {
  const gcm = addon();
  const lengths = [...Array.from({ length: 1101 }, (_, index) => index), ...Array.from({ length: 300 }, () => Math.floor(Math.random() * 300 * 1024))];
  for (const length of lengths) {
    const key = randomBytes(32);
    const iv = randomBytes(12);
    const aad = randomBytes(length % 7 === 0 ? 0 : 4);
    const backing = randomBytes(length + 3);
    const src = backing.subarray(3); // an odd offset
    const dst = Buffer.alloc(length);
    const tag = Buffer.alloc(16);
    gcm.seal(key, iv, aad, src, dst, tag);
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    cipher.setAAD(aad);
    const expected = Buffer.concat([cipher.update(src), cipher.final()]);
    assert.ok(dst.equals(expected), `ciphertext of ${length} bytes`);
    assert.ok(tag.equals(cipher.getAuthTag()), `tag of ${length} bytes`);
    const opened = Buffer.from(dst); // in place
    assert.equal(gcm.open(key, iv, aad, opened, opened, tag), true, `opens ${length} bytes`);
    assert.ok(opened.equals(src), `round trip of ${length} bytes`);
  }
});

test('seal/open agree with node:crypto and @noble/ciphers: sizes, AAD, in and out of place, every memory', () => {
  const gcm = addon();
  for (const size of sizes) {
    for (const aadBytes of [0, 4, 33]) {
      const key = randomBytes(32);
      const iv = randomBytes(12);
      const aad = randomBytes(aadBytes);
      const plaintext = randomBytes(size);
      const expected = nodeSeal(key, iv, aad, plaintext);
      const noble = nobleGcm(key, iv, aad).encrypt(plaintext);
      assert.ok(Buffer.from(noble).equals(Buffer.concat([expected.ciphertext, expected.tag])), `node:crypto and noble agree (${size} bytes)`);
      for (const [memoryName, memory] of Object.entries(memories)) {
        const what = `${size} bytes, ${aadBytes} bytes AAD, ${memoryName}`;
        const keyView = placed(memory, key);
        const ivView = placed(memory, iv);
        const aadView = placed(memory, aad);
        // Out of place.
        const src = placed(memory, plaintext);
        const dst = memory(size);
        const tag = memory(16);
        assert.equal(gcm.seal(keyView, ivView, aadView, src, dst, tag), undefined);
        assert.ok(Buffer.from(dst).equals(expected.ciphertext), `ciphertext equals node:crypto's (${what})`);
        assert.ok(Buffer.from(tag).equals(expected.tag), `tag equals node:crypto's (${what})`);
        assert.ok(Buffer.from(src).equals(plaintext), `src untouched (${what})`);
        const opened = memory(size);
        assert.equal(gcm.open(keyView, ivView, aadView, dst, opened, tag), true, `opens (${what})`);
        assert.ok(Buffer.from(opened).equals(plaintext), `round trip (${what})`);
        assert.ok(nodeOpen(key, iv, aad, dst, tag).equals(plaintext), `node:crypto opens it (${what})`);
        assert.ok(Buffer.from(nobleGcm(key, iv, aad).decrypt(Buffer.concat([Buffer.from(dst), Buffer.from(tag)]))).equals(plaintext), `noble opens it (${what})`);
        // In place: the very same view, and a second view of the same bytes.
        const inPlace = placed(memory, plaintext);
        const inPlaceTag = memory(16);
        gcm.seal(keyView, ivView, aadView, inPlace, inPlace, inPlaceTag);
        assert.ok(Buffer.from(inPlace).equals(expected.ciphertext), `in-place ciphertext (${what})`);
        assert.ok(Buffer.from(inPlaceTag).equals(expected.tag), `in-place tag (${what})`);
        const sameBytes = new Uint8Array(inPlace.buffer, inPlace.byteOffset, inPlace.byteLength);
        assert.equal(gcm.open(keyView, ivView, aadView, inPlace, sameBytes, inPlaceTag), true, `in-place open (${what})`);
        assert.ok(Buffer.from(inPlace).equals(plaintext), `in-place round trip (${what})`);
      }
    }
  }
});

test('open returns false for a tampered ciphertext, tag, AAD, IV or key, and zeroes dst', () => {
  const gcm = addon();
  for (const size of [1, 17, 65536]) {
    const key = randomBytes(32);
    const iv = randomBytes(12);
    const aad = randomBytes(4);
    const plaintext = randomBytes(size);
    const { ciphertext, tag } = nodeSeal(key, iv, aad, plaintext);
    const flip = (bytes: Uint8Array, index: number): Buffer => {
      const copy = Buffer.from(bytes);
      copy[index]! ^= 0x01;
      return copy;
    };
    const cases: [string, Uint8Array, Uint8Array, Uint8Array, Uint8Array, Uint8Array][] = [
      ['ciphertext first byte', key, iv, aad, flip(ciphertext, 0), tag],
      ['ciphertext last byte', key, iv, aad, flip(ciphertext, size - 1), tag],
      ['tag', key, iv, aad, ciphertext, flip(tag, 15)],
      ['aad', key, iv, flip(aad, 2), ciphertext, tag],
      ['aad dropped', key, iv, new Uint8Array(0), ciphertext, tag],
      ['iv', key, flip(iv, 11), aad, ciphertext, tag],
      ['key', flip(key, 0), iv, aad, ciphertext, tag],
    ];
    for (const [what, k, n, a, c, t] of cases) {
      const dst = Buffer.alloc(size, 0xaa);
      assert.equal(gcm.open(k, n, a, c, dst, t), false, `tampered ${what} (${size} bytes) is refused`);
      assert.ok(dst.every((byte) => byte === 0), `dst zeroed after a refused ${what} (${size} bytes)`);
    }
    const dst = Buffer.alloc(size);
    assert.equal(gcm.open(key, iv, aad, ciphertext, dst, tag), true, `the untampered message still opens (${size} bytes)`);
    assert.ok(dst.equals(plaintext), `untampered round trip (${size} bytes)`);
  }
  // An empty message: only the tag, AAD and IV can be wrong.
  const key = randomBytes(32);
  const iv = randomBytes(12);
  const { tag } = nodeSeal(key, iv, Buffer.from('aad'), Buffer.alloc(0));
  assert.equal(gcm.open(key, iv, Buffer.from('aad'), Buffer.alloc(0), Buffer.alloc(0), tag), true, 'empty message opens');
  assert.equal(gcm.open(key, iv, Buffer.from('aaD'), Buffer.alloc(0), Buffer.alloc(0), tag), false, 'empty message with other AAD is refused');
});

test('bad arguments throw TypeError or RangeError, overlaps included', () => {
  const gcm = addon();
  const key = randomBytes(32);
  const iv = randomBytes(12);
  const aad = Buffer.alloc(4);
  const src = Buffer.alloc(64);
  const dst = Buffer.alloc(64);
  const tag = Buffer.alloc(16);
  type Args = [unknown, unknown, unknown, unknown, unknown, unknown];
  const call = (fn: 'seal' | 'open', args: Args): unknown => (gcm[fn] as (...a: unknown[]) => unknown)(...args);
  const good: Args = [key, iv, aad, src, dst, tag];
  const withArg = (index: number, value: unknown): Args => good.map((arg, i) => (i === index ? value : arg)) as Args;
  for (const fn of ['seal', 'open'] as const) {
    for (const [index, bad] of [
      [0, Buffer.alloc(31)], [0, Buffer.alloc(33)], [0, Buffer.alloc(0)], [1, Buffer.alloc(11)], [1, Buffer.alloc(16)],
      [5, Buffer.alloc(15)], [5, Buffer.alloc(17)], [4, Buffer.alloc(63)], [3, Buffer.alloc(65)],
    ] as const) {
      assert.throws(() => call(fn, withArg(index, bad)), RangeError, `${fn}: argument ${index} of ${bad.length} bytes`);
    }
    for (const [index, bad] of [
      [0, 'k'.repeat(32)], [1, new Uint16Array(6)], [2, undefined], [2, null], [3, new DataView(new ArrayBuffer(64))],
      [4, new ArrayBuffer(64)], [5, 16], [0, new Int8Array(32)], [1, new Uint8ClampedArray(12)], [3, [1, 2, 3]],
    ] as const) {
      assert.throws(() => call(fn, withArg(index, bad)), TypeError, `${fn}: argument ${index} of type ${Object.prototype.toString.call(bad)}`);
    }
    assert.throws(() => (gcm[fn] as (...a: unknown[]) => unknown)(key, iv, aad, src, dst), TypeError, `${fn}: five arguments`);
    // dst partially overlapping src, in both directions, and the tag inside dst.
    const memory = Buffer.alloc(256);
    assert.throws(() => call(fn, [key, iv, aad, memory.subarray(0, 64), memory.subarray(1, 65), tag]), RangeError, `${fn}: dst one byte after src`);
    assert.throws(() => call(fn, [key, iv, aad, memory.subarray(63, 127), memory.subarray(0, 64), tag]), RangeError, `${fn}: dst ending inside src`);
    assert.throws(() => call(fn, [key, iv, aad, src, memory.subarray(0, 64), memory.subarray(48, 64)]), RangeError, `${fn}: tag inside dst`);
    // Adjacent is not overlapping.
    const adjacent = Buffer.alloc(144);
    call('seal', [key, iv, aad, adjacent.subarray(0, 64), adjacent.subarray(64, 128), adjacent.subarray(128, 144)]);
    assert.equal(gcm.open(key, iv, aad, adjacent.subarray(64, 128), adjacent.subarray(0, 64), adjacent.subarray(128, 144)), true, 'adjacent views round-trip');
  }
  // A detached buffer is just an empty view, so the length check refuses it.
  const detached = new Uint8Array(32);
  structuredClone(detached.buffer, { transfer: [detached.buffer] });
  assert.throws(() => gcm.seal(detached, iv, aad, src, dst, tag), RangeError, 'detached key');
});

test('the addon loads and works in worker threads, several at once, and survives their exit', async () => {
  const gcm = addon();
  const key = randomBytes(32);
  const iv = randomBytes(12);
  const aad = randomBytes(4);
  const plaintext = randomBytes(70_000);
  const expected = nodeSeal(key, iv, aad, plaintext);
  const source = `
    const { parentPort, workerData } = require('node:worker_threads');
    const gcm = require(workerData.addonPath);
    const { key, iv, aad, plaintext } = workerData;
    const ciphertext = new Uint8Array(plaintext.length);
    const tag = new Uint8Array(16);
    for (let round = 0; round < 20; round++) gcm.seal(key, iv, aad, plaintext, ciphertext, tag);
    const opened = new Uint8Array(plaintext.length);
    const ok = gcm.open(key, iv, aad, ciphertext, opened, tag);
    tag[0] ^= 1;
    const tampered = gcm.open(key, iv, aad, ciphertext, new Uint8Array(plaintext.length), tag);
    tag[0] ^= 1;
    parentPort.postMessage({ ciphertext, tag, ok, tampered, opened });
  `;
  const runWorker = (): Promise<{ ciphertext: Uint8Array; tag: Uint8Array; ok: boolean; tampered: boolean; opened: Uint8Array }> =>
    new Promise((resolve, reject) => {
      const worker = new Worker(source, { eval: true, workerData: { addonPath: nativeGcmAddonPath, key, iv, aad, plaintext } });
      worker.once('message', (message) => {
        resolve(message);
        void worker.terminate();
      });
      worker.once('error', reject);
      worker.once('exit', (code) => (code === 0 || code === 1 ? undefined : reject(new Error(`worker exited with ${code}`))));
    });
  for (const batch of [3, 2]) {
    const results = await Promise.all(Array.from({ length: batch }, runWorker));
    for (const result of results) {
      assert.ok(Buffer.from(result.ciphertext).equals(expected.ciphertext), 'worker ciphertext equals node:crypto');
      assert.ok(Buffer.from(result.tag).equals(expected.tag), 'worker tag equals node:crypto');
      assert.equal(result.ok, true);
      assert.equal(result.tampered, false);
      assert.ok(Buffer.from(result.opened).equals(plaintext), 'worker round trip');
    }
  }
  // The main thread's instance is its own: still fine after the workers' instances were finalized.
  const dst = Buffer.alloc(plaintext.length);
  assert.equal(gcm.open(key, iv, aad, expected.ciphertext, dst, expected.tag), true, 'main thread opens after workers exited');
  assert.ok(dst.equals(plaintext), 'main thread round trip');
});

test('pool worker threads seal and open DARE with the addon', dareTest, async () => {
  const pool = createBlockCipherPool(1);
  try {
    const probe = await probePoolThread(pool);
    assert.equal(probe?.isMainThread, false);
    assert.equal(probe?.aesGcm, 'native', 'a Piscina worker loaded the addon');
    const key = randomBytes(32);
    const nonce = randomBytes(12);
    const plaintext = randomBytes(darePayloadBytesMax * 3 + 100);
    const sealed = await pool.seal(key, nonce, 5, Buffer.from(plaintext), true);
    setDareNativeGcm(false);
    try {
      assert.ok(sealed.equals(sealPackages(key, nonce, 5, plaintext, true)), 'pool (native) equals node:crypto seal');
    } finally {
      setDareNativeGcm(true);
    }
    const opened = await pool.open(key, sealed, 5, undefined);
    assert.ok(opened.plaintext.equals(plaintext), 'pool open round trip');
  } finally {
    await pool.close();
  }
});

async function* iterate(pieces: readonly Uint8Array[]): AsyncGenerator<Uint8Array> {
  for (const piece of pieces) yield piece;
}

/** Run `body` with DARE's AES-GCM forced to one implementation, restoring the default after. */
function withImplementation<T>(native: boolean, body: () => T): T {
  const active = setDareNativeGcm(native);
  assert.equal(active, native, `setDareNativeGcm(${native}) took effect (${nativeGcmStatus})`);
  try {
    return body();
  } finally {
    setDareNativeGcm(true);
  }
}

const dareSizes = [0, 1, 17, darePayloadBytesMax - 1, darePayloadBytesMax, darePayloadBytesMax + 1, 3 * darePayloadBytesMax + 4095];

test('DARE: sealPackages is byte-identical native and node:crypto; opening crosses over and rejects tampering', dareTest, () => {
  const key = randomBytes(32);
  const nonce = randomBytes(12);
  for (const size of dareSizes) {
    const plaintext = randomBytes(size);
    for (const firstSequence of [0, 7, 0xffffffff - 3]) {
      const native = withImplementation(true, () => sealPackages(key, nonce, firstSequence, plaintext, true));
      const node = withImplementation(false, () => sealPackages(key, nonce, firstSequence, plaintext, true));
      assert.ok(native.equals(node), `seal ${size} bytes from sequence ${firstSequence}: native equals node:crypto`);
      for (const openNative of [true, false]) {
        const what = `${size} bytes, sequence ${firstSequence}, open ${openNative ? 'native' : 'node:crypto'}`;
        withImplementation(openNative, () => {
          const opened = openPackages(key, native, firstSequence);
          assert.ok(opened.plaintext.equals(plaintext), `openPackages round trip (${what})`);
          assert.equal(opened.final, size > 0);
          const out = Buffer.from(new SharedArrayBuffer(size + 10)).subarray(3, 3 + size);
          const into = openPackagesInto(key, native, firstSequence, undefined, out);
          assert.equal(into.plaintextBytes, size);
          assert.ok(out.equals(plaintext), `openPackagesInto round trip into shared memory (${what})`);
        });
      }
    }
    if (size % darePayloadBytesMax === 0 && size > 0) {
      const native = withImplementation(true, () => sealPackages(key, nonce, 2, plaintext, false));
      const node = withImplementation(false, () => sealPackages(key, nonce, 2, plaintext, false));
      assert.ok(native.equals(node), `non-final seal of ${size} bytes: native equals node:crypto`);
    }
  }
});

test('DARE: tampering gives the same DareError both ways, and openPackagesInto in place still works', dareTest, async () => {
  const key = randomBytes(32);
  const nonce = randomBytes(12);
  const plaintext = randomBytes(2 * darePayloadBytesMax + 300);
  const sealed = sealPackages(key, nonce, 0, plaintext, true);
  const reasonOf = (body: () => unknown): string => {
    try {
      body();
    } catch (error) {
      assert.ok(error instanceof DareError, `a DareError, got ${String(error)}`);
      return error.reason;
    }
    return 'no error';
  };
  const tamperings: [string, (bytes: Buffer) => void][] = [
    ['payload byte of the 2nd package', (bytes) => { bytes[darePackageBytesMax + 100]! ^= 1; }],
    ['tag byte of the last package', (bytes) => { bytes[bytes.length - 1]! ^= 0x80; }],
    ['length field of the last package', (bytes) => { bytes[2 * darePackageBytesMax + 2]! ^= 1; }],
    ['nonce of the 2nd package', (bytes) => { bytes[darePackageBytesMax + 10]! ^= 1; }],
    ['final flag of the 1st package', (bytes) => { bytes[4]! ^= 0x80; }],
    ['cipher id of the 1st package', (bytes) => { bytes[1] = 1; }],
  ];
  for (const [what, tamper] of tamperings) {
    const bad = Buffer.from(sealed);
    tamper(bad);
    const reasons = [true, false].map((native) =>
      withImplementation(native, () => [
        reasonOf(() => openPackages(key, bad, 0)),
        reasonOf(() => openPackagesInto(key, bad, 0, undefined, Buffer.alloc(plaintext.length + 64))),
      ]),
    );
    assert.deepEqual(reasons[0], reasons[1], `${what}: same errors native and node:crypto`);
    assert.notEqual(reasons[0]![0], 'no error', `${what} is refused`);
  }
  const bad = Buffer.from(sealed);
  bad[100]! ^= 1;
  assert.equal(withImplementation(true, () => reasonOf(() => openPackages(key, bad, 0))), 'authentication failed');
  // A wrong sequence number is an authentication failure too.
  assert.equal(withImplementation(true, () => reasonOf(() => openPackages(key, sealed, 1))), 'authentication failed');
  // decryptStream (PackageOpener.open) with the addon.
  await assert.rejects(async () => {
    for await (const piece of decryptStream(iterate([bad]), key, 0)) void piece;
  }, (error: unknown) => error instanceof DareError && error.reason === 'authentication failed');
  const chunks: Buffer[] = [];
  for await (const piece of decryptStream(encryptStream(iterate([plaintext.subarray(0, 1000), plaintext.subarray(1000)]), key, nonce), key, 0)) chunks.push(piece);
  assert.ok(Buffer.concat(chunks).equals(plaintext), 'encryptStream → decryptStream with the addon');
  // Opening into the very buffer that holds the packages (plaintext i lands before package i+1 starts).
  for (const native of [true, false]) {
    withImplementation(native, () => {
      const memory = Buffer.from(sealed);
      const opened = openPackagesInto(key, memory, 0, undefined, memory);
      assert.equal(opened.plaintextBytes, plaintext.length);
      assert.ok(memory.subarray(0, plaintext.length).equals(plaintext), `in-place openPackagesInto (${native ? 'native' : 'node:crypto'})`);
    });
  }
});

test('DARE: COFFER_NATIVE_GCM=off in a fresh process gives node:crypto and the same bytes', dareTest, () => {
  const key = Buffer.alloc(32, 0x11);
  const nonce = Buffer.alloc(12, 0x22);
  const plaintext = Buffer.alloc(darePayloadBytesMax + 1234);
  for (let index = 0; index < plaintext.length; index++) plaintext[index] = (index * 31) & 0xff;
  const script = `
    import { dareAesGcmImplementation, sealPackages } from ${JSON.stringify(path.join(repoRoot, 'workers', 'dare.ts'))};
    const plaintext = Buffer.alloc(${plaintext.length});
    for (let index = 0; index < plaintext.length; index++) plaintext[index] = (index * 31) & 0xff;
    const sealed = sealPackages(Buffer.alloc(32, 0x11), Buffer.alloc(12, 0x22), 3, plaintext, true);
    process.stdout.write(JSON.stringify({ implementation: dareAesGcmImplementation(), sealed: sealed.toString('base64') }));
  `;
  const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '--eval', script], {
    cwd: repoRoot,
    env: { ...process.env, COFFER_NATIVE_GCM: 'off' },
    encoding: 'utf8',
    timeout: 60_000,
  });
  assert.equal(child.status, 0, `child failed: ${child.stderr}`);
  const result = JSON.parse(child.stdout) as { implementation: string; sealed: string };
  assert.equal(result.implementation, 'node:crypto');
  const native = withImplementation(true, () => sealPackages(key, nonce, 3, plaintext, true));
  assert.ok(Buffer.from(result.sealed, 'base64').equals(native), 'node:crypto in the child equals native here');
});
