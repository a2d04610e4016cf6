// openBlock (native/dare_open.c): a block of DARE 2.0 packages read and opened in one thread-pool job. Checked
// against workers/dare.ts's openPackagesInto (itself checked against @noble/ciphers in dare.test.ts): the same
// plaintext, final flag and nonce for whole streams and blocks from their middle, the same DARE reason for every
// kind of damage, ChaCha20-Poly1305 left to node:crypto, reads from files (short files, read errors), argument
// checks, and the same results with COFFER_NATIVE_GCM_VAES=off (OpenSSL instead of vaes_gcm.c).

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { DareError, darePackageBytesMax, darePayloadBytesMax, openPackagesInto, randomDareNonce, sealPackages } from '../workers/dare.ts';
import { nativeGcmAddonPath, nativeOpenBlock, type OpenedBlockResult } from '../workers/native-gcm.ts';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const skip = nativeOpenBlock === undefined ? 'the native AES-GCM addon is not loaded (COFFER_NATIVE_GCM=off or not built)' : false;
const openBlock = nativeOpenBlock!;

/** openPackagesInto's verdict on `ciphertext`: the plaintext or the DARE reason. */
function reference(key: Buffer, ciphertext: Buffer, firstSequence: number): { plaintext?: Buffer; final?: boolean; nonce?: Buffer; reason?: string } {
  const out = Buffer.alloc(ciphertext.length);
  try {
    const opened = openPackagesInto(key, ciphertext, firstSequence, undefined, out);
    return { plaintext: out.subarray(0, opened.plaintextBytes), final: opened.final, nonce: opened.nonce };
  } catch (error) {
    if (!(error instanceof DareError)) throw error;
    return { reason: error.reason };
  }
}

/** openBlock over `ciphertext` in memory (fd -1), at an odd offset of a larger buffer. */
async function openInMemory(key: Buffer, ciphertext: Buffer, firstSequence: number): Promise<{ result: OpenedBlockResult; out: Buffer }> {
  const buffer = Buffer.alloc(ciphertext.length + 7);
  ciphertext.copy(buffer, 3);
  const out = Buffer.alloc(Math.max(1, ciphertext.length));
  const result = await openBlock(-1, 0, 0, buffer, 3, ciphertext.length, key, firstSequence, out);
  return { result, out };
}

async function assertSameVerdict(key: Buffer, ciphertext: Buffer, firstSequence: number, what: string): Promise<void> {
  const expected = reference(key, ciphertext, firstSequence);
  const { result, out } = await openInMemory(key, ciphertext, firstSequence);
  assert.equal(result.opened, true, `${what}: opened`);
  assert.equal(result.gotBytes, ciphertext.length + 3, `${what}: gotBytes is the block's end`);
  if (expected.reason !== undefined) {
    assert.equal(result.error, expected.reason, `${what}: the same DARE reason`);
    return;
  }
  assert.equal(result.error, undefined, `${what}: no error`);
  assert.equal(result.plaintextBytes, expected.plaintext!.length, `${what}: plaintext length`);
  assert.ok(out.subarray(0, result.plaintextBytes).equals(expected.plaintext!), `${what}: plaintext`);
  assert.equal(result.final, expected.final, `${what}: final`);
  assert.ok(result.nonce !== undefined && result.nonce.equals(expected.nonce!), `${what}: nonce`);
}

/** One ChaCha20-Poly1305 final package, as MinIO on arm64 writes them. */
function chachaPackage(key: Buffer, payload: Buffer): Buffer {
  const header = Buffer.alloc(16);
  header[0] = 0x20;
  header[1] = 0x01;
  header.writeUInt16LE(payload.length - 1, 2);
  randomDareNonce().copy(header, 4);
  header[4]! |= 0x80;
  const cipher = createCipheriv('chacha20-poly1305', key, header.subarray(4, 16), { authTagLength: 16 });
  cipher.setAAD(header.subarray(0, 4), { plaintextLength: payload.length });
  const body = Buffer.concat([cipher.update(payload), cipher.final()]);
  return Buffer.concat([header, body, cipher.getAuthTag()]);
}

describe('openBlock (native/dare_open.c)', { skip }, () => {
  const key = randomBytes(32);

  it('opens whole streams and blocks from their middle exactly as openPackagesInto does', async () => {
    for (const size of [1, 100, darePayloadBytesMax - 1, darePayloadBytesMax, darePayloadBytesMax + 1, 16 * darePayloadBytesMax, 16 * darePayloadBytesMax + 5, 20 * darePayloadBytesMax + 100]) {
      for (const firstSequence of [0, 7]) {
        const sealed = sealPackages(key, randomDareNonce(), firstSequence, randomBytes(size), true);
        await assertSameVerdict(key, sealed, firstSequence, `${size} bytes from sequence ${firstSequence}`);
        const packages = Math.ceil(size / darePayloadBytesMax);
        if (packages > 2) {
          // Packages 1..2 alone: not final, sequence firstSequence + 1.
          const middle = sealed.subarray(darePackageBytesMax, 3 * darePackageBytesMax);
          await assertSameVerdict(key, middle, firstSequence + 1, `${size} bytes, packages 1-2`);
          const { result } = await openInMemory(key, middle, firstSequence + 1);
          assert.equal(result.final, false);
        }
      }
    }
  });

  it('gives the same DARE reason as openPackagesInto for every kind of damage', async () => {
    const nonce = randomDareNonce();
    const sealed = sealPackages(key, nonce, 0, randomBytes(3 * darePayloadBytesMax + 10), true);
    const other = sealPackages(key, randomDareNonce(), 0, randomBytes(3 * darePayloadBytesMax + 10), true);
    const damaged = (what: string, change: (bytes: Buffer) => Buffer): [string, Buffer] => [what, change(Buffer.from(sealed))];
    const cases: Array<[string, Buffer]> = [
      damaged('a flipped payload bit', (bytes) => { bytes[darePackageBytesMax + 500]! ^= 1; return bytes; }),
      damaged('a flipped tag bit', (bytes) => { bytes[2 * darePackageBytesMax - 1]! ^= 0x80; return bytes; }),
      damaged('a flipped AAD (length) bit', (bytes) => { bytes[darePackageBytesMax + 2]! ^= 1; return bytes; }),
      damaged('version 0x10', (bytes) => { bytes[darePackageBytesMax] = 0x10; return bytes; }),
      damaged('cipher id 2', (bytes) => { bytes[1] = 0x02; return bytes; }),
      damaged('the final flag set early', (bytes) => { bytes[4]! |= 0x80; return bytes; }),
      damaged('the final flag cleared', (bytes) => { bytes[3 * darePackageBytesMax + 4]! &= 0x7f; return bytes; }),
      damaged('a header nonce from another stream', (bytes) => { other.copy(bytes, darePackageBytesMax, darePackageBytesMax, 2 * darePackageBytesMax); return bytes; }),
      damaged('two packages swapped', (bytes) => {
        const first = Buffer.from(bytes.subarray(0, darePackageBytesMax));
        bytes.copy(bytes, 0, darePackageBytesMax, 2 * darePackageBytesMax);
        first.copy(bytes, darePackageBytesMax);
        return bytes;
      }),
      damaged('cut inside the last package', (bytes) => bytes.subarray(0, bytes.length - 5)),
      damaged('cut inside a header', (bytes) => bytes.subarray(0, darePackageBytesMax + 9)),
      damaged('bytes after the final package', (bytes) => Buffer.concat([bytes, bytes.subarray(0, 40)])),
    ];
    for (const [what, bytes] of cases) {
      assert.ok(reference(key, bytes, 0).reason !== undefined, `${what}: openPackagesInto refuses it`);
      await assertSameVerdict(key, bytes, 0, what);
    }
    await assertSameVerdict(key, sealed, 1, 'the wrong first sequence');
    const { result } = await openInMemory(randomBytes(32), sealed, 0);
    assert.equal(result.error, 'authentication failed', 'the wrong key');
  });

  it('leaves ChaCha20-Poly1305 packages to node:crypto (opened false)', async () => {
    const payload = randomBytes(1000);
    const sealed = chachaPackage(key, payload);
    assert.ok(reference(key, sealed, 0).plaintext!.equals(payload), 'openPackagesInto opens it');
    const { result } = await openInMemory(key, sealed, 0);
    assert.equal(result.opened, false);
    assert.equal(result.error, undefined);
  });

  describe('reading from a file', () => {
    let dir: string;
    before(async () => {
      dir = await fs.mkdtemp(path.join(os.tmpdir(), 'coffer-open-block-'));
    });
    after(async () => {
      await fs.rm(dir, { recursive: true, force: true });
    });

    it('reads the window around a block and opens the block in it; a short file is not opened', async () => {
      const plaintext = randomBytes(40 * darePayloadBytesMax + 321);
      const sealed = sealPackages(key, randomDareNonce(), 0, plaintext, true);
      const filePath = path.join(dir, 'part.1');
      await fs.writeFile(filePath, Buffer.concat([randomBytes(100), sealed]));
      const handle = await fs.open(filePath, 'r');
      try {
        const blockBytes = 16 * darePackageBytesMax;
        for (const block of [0, 1, 2]) {
          const start = 100 + block * blockBytes;
          const end = Math.min(100 + sealed.length, start + blockBytes);
          const windowStart = Math.floor(start / 4096) * 4096;
          const buffer = Buffer.alloc(blockBytes + 8192);
          const out = Buffer.alloc(16 * darePayloadBytesMax);
          const result = await openBlock(handle.fd, windowStart, Math.ceil((end - windowStart) / 4096) * 4096, buffer, start - windowStart, end - start, key, block * 16, out);
          assert.equal(result.opened, true, `block ${block}`);
          assert.equal(result.error, undefined, `block ${block}`);
          const expected = plaintext.subarray(block * 16 * darePayloadBytesMax, (block + 1) * 16 * darePayloadBytesMax);
          assert.ok(out.subarray(0, result.plaintextBytes).equals(expected), `block ${block}: plaintext`);
          assert.equal(result.final, block === 2, `block ${block}: final`);
        }
        // The file ends 5 bytes before the block does.
        await fs.truncate(filePath, 100 + sealed.length - 5);
        const start = 100 + 2 * blockBytes;
        const windowStart = Math.floor(start / 4096) * 4096;
        const buffer = Buffer.alloc(blockBytes + 8192);
        const result = await openBlock(handle.fd, windowStart, buffer.length, buffer, start - windowStart, sealed.length + 100 - start, key, 32, Buffer.alloc(16 * darePayloadBytesMax));
        assert.equal(result.opened, false, 'a short block is not opened');
        assert.equal(windowStart + result.gotBytes, 100 + sealed.length - 5, 'read up to the end of the file');
      } finally {
        await handle.close();
      }
    });

    it('rejects a failed read like node:fs does (code, errno, syscall)', async () => {
      const handle = await fs.open(dir, 'r'); // a directory: read(2) says EISDIR
      try {
        await assert.rejects(openBlock(handle.fd, 0, 4096, Buffer.alloc(4096), 0, 100, key, 0, Buffer.alloc(4096)), (error: NodeJS.ErrnoException) => {
          assert.equal(error.code, 'EISDIR');
          assert.equal(error.syscall, 'read');
          assert.equal(typeof error.errno, 'number');
          assert.doesNotMatch(error.message, new RegExp(key.toString('hex')));
          return true;
        });
      } finally {
        await handle.close();
      }
    });
  });

  it('checks its arguments synchronously', () => {
    const buffer = Buffer.alloc(1000);
    const out = Buffer.alloc(1000);
    assert.throws(() => openBlock(-1, 0, 0, buffer, 0, 100, Buffer.alloc(31), 0, out), RangeError, 'a short key');
    assert.throws(() => openBlock(-1, 0, 0, buffer, 950, 100, key, 0, out), RangeError, 'a block beyond the buffer');
    assert.throws(() => openBlock(-1, 0, 2000, buffer, 0, 100, key, 0, out), RangeError, 'a read beyond the buffer');
    assert.throws(() => openBlock(-1, 0, 0, buffer, 0, 100, key, 0, buffer.subarray(50)), RangeError, 'out overlapping the block');
    assert.throws(() => openBlock(-1, 0, 0, buffer, 0, 100, key, 2 ** 32, out), RangeError, 'a sequence beyond uint32');
    assert.throws(() => openBlock(-2, 0, 0, buffer, 0, 100, key, 0, out), RangeError, 'fd -2');
    assert.throws(() => openBlock(-1, 0.5, 0, buffer, 0, 100, key, 0, out), RangeError, 'a fractional position');
    assert.throws(() => openBlock(-1, 0, 0, [1, 2, 3] as unknown as Uint8Array, 0, 1, key, 0, out), TypeError, 'an array');
    assert.throws(() => (openBlock as unknown as (...args: unknown[]) => unknown)(-1, 0, 0, buffer), TypeError, 'missing arguments');
  });

  it('gives the same results through OpenSSL (COFFER_NATIVE_GCM_VAES=off)', () => {
    const fixedKey = Buffer.alloc(32, 0x42);
    const plaintext = Buffer.alloc(17 * darePayloadBytesMax + 3);
    for (let index = 0; index < plaintext.length; index++) plaintext[index] = (index * 13) & 0xff;
    const sealed = sealPackages(fixedKey, Buffer.alloc(12, 0x07), 0, plaintext, true);
    const script = `
      const { createRequire } = await import('node:module');
      const { createHash } = await import('node:crypto');
      const gcm = createRequire(import.meta.url)(${JSON.stringify(nativeGcmAddonPath)});
      const { readFileSync } = await import('node:fs');
      const sealed = readFileSync(0); // stdin
      const out = Buffer.alloc(sealed.length);
      const good = await gcm.openBlock(-1, 0, 0, sealed, 0, sealed.length, Buffer.alloc(32, 0x42), 0, out);
      const md5 = createHash('md5').update(out.subarray(0, good.plaintextBytes)).digest('hex');
      sealed[70000] ^= 1;
      const bad = await gcm.openBlock(-1, 0, 0, sealed, 0, sealed.length, Buffer.alloc(32, 0x42), 0, out);
      process.stdout.write(JSON.stringify({ implementation: gcm.implementation, md5, final: good.final, error: good.error ?? null, bad: bad.error }));
    `;
    const child = spawnSync(process.execPath, ['--input-type=module', '--eval', script], {
      input: sealed, cwd: repoRoot, env: { ...process.env, COFFER_NATIVE_GCM_VAES: 'off' }, encoding: 'utf8', timeout: 60_000,
    });
    assert.equal(child.status, 0, `child failed: ${child.stderr}`);
    const result = JSON.parse(child.stdout) as { implementation: string; md5: string; final: boolean; error: string | null; bad: string };
    assert.equal(result.implementation, 'openssl');
    assert.equal(result.md5, createHash('md5').update(plaintext).digest('hex'), 'the plaintext');
    assert.equal(result.final, true);
    assert.equal(result.error, null);
    assert.equal(result.bad, 'authentication failed');
  });
});
