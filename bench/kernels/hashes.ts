// Per-byte hash kernels on 1 MiB: the ETag MD5, the signed-payload SHA-256, the bitrot/S3 checksum CRC32C
// and xxh3-128, each from every library we have (node:crypto, hash-wasm, @node-rs/crc32, node:zlib). And the
// per-request one-shots of SigV4 and the SSE key derivations, where the call costs more than the bytes:
// node:crypto's Hash/Hmac objects against engine/crypto/sha256.ts (native/hash.c when built).

import { createHash, createHmac, randomBytes } from 'node:crypto';
import zlib from 'node:zlib';
import { crc32 as rsCrc32, crc32c as rsCrc32c } from '@node-rs/crc32';
import { createCRC32, createMD5, createSHA256, createXXHash128 } from 'hash-wasm';
import { hmacSha256, nativeHashStatus, sha256 } from '../../engine/crypto/sha256.ts';
import { allMd5Kernels, type Md5Kernel } from '../../workers/md5-kernel.ts';
import { must, mebibyte, type KernelSpec } from './harness.ts';

export async function hashKernels(): Promise<KernelSpec[]> {
  const group = 'hash';
  const data = randomBytes(mebibyte);
  const [wasmMd5, wasmSha256, wasmCrc32c, wasmCrc32, wasmXxh128] = await Promise.all([
    createMD5(), createSHA256(), createCRC32(0x82f63b78), createCRC32(), createXXHash128(),
  ]);
  const wasm = (hasher: typeof wasmMd5): string => {
    hasher.init();
    hasher.update(data);
    return hasher.digest('hex');
  };
  must(wasm(wasmMd5) === createHash('md5').update(data).digest('hex'), 'hash-wasm MD5 = node:crypto');
  must(wasm(wasmSha256) === createHash('sha256').update(data).digest('hex'), 'hash-wasm SHA-256 = node:crypto');
  must(Number.parseInt(wasm(wasmCrc32c), 16) === rsCrc32c(data), 'hash-wasm CRC32C = @node-rs/crc32');
  must(Number.parseInt(wasm(wasmCrc32), 16) === rsCrc32(data), 'hash-wasm CRC32 = @node-rs/crc32');
  const zlibCrc32 = (zlib as unknown as { crc32?: (data: Uint8Array) => number }).crc32;
  // A SigV4 canonical request's size, and a KEK derivation's inputs (32-byte key, IV, domain, algorithm, path).
  const canonical = `PUT\n/bucket/prefix/object-1\n\nhost:127.0.0.1:9000\nx-amz-content-sha256:UNSIGNED-PAYLOAD\nx-amz-date:20261128T000000Z\n${'x'.repeat(180)}`;
  const key = randomBytes(32);
  const iv = randomBytes(32);
  must(sha256(canonical).equals(createHash('sha256').update(canonical).digest()), 'one-shot SHA-256 = node:crypto');
  must(hmacSha256(key, iv, 'SSE-S3', 'DAREv2-HMAC-SHA256', 'bucket/prefix/object').equals(createHmac('sha256', key).update(iv).update('SSE-S3').update('DAREv2-HMAC-SHA256').update('bucket/prefix/object').digest()), 'one-shot HMAC = node:crypto');
  // The ETag MD5 of several uploads at once (workers/md5-kernel.ts): N lanes of 1 MiB per call, per kernel.
  const md5Lanes = (kernel: Md5Kernel, lanes: number): KernelSpec => {
    const states = Array.from({ length: lanes }, () => new Uint8Array(kernel.stateBytes));
    const datas = Array.from({ length: lanes }, () => data);
    states.forEach((state) => kernel.init(state));
    kernel.update(states, datas);
    must(kernel.final(states[0]!) === createHash('md5').update(data).digest('hex'), `${kernel.status} MD5 = node:crypto`);
    states.forEach((state) => kernel.init(state));
    return { group, name: `MD5 ${lanes} × 1 MiB in one call (${kernel.status})`, bytes: lanes * mebibyte, fn: () => { kernel.update(states, datas); } };
  };
  const md5Kernels = (await allMd5Kernels()).filter((kernel) => kernel.lanes > 1);
  const oneShot = nativeHashStatus.startsWith('native') ? 'native/hash.c' : 'fallback: node:crypto';
  let sink = 0;
  const specs: KernelSpec[] = [
    { group, name: `SHA-256 of a ${canonical.length} B canonical request (node:crypto)`, fn: () => { sink += createHash('sha256').update(canonical).digest()[0]!; } },
    { group, name: `SHA-256 of a ${canonical.length} B canonical request (one-shot, ${oneShot})`, fn: () => { sink += sha256(canonical)[0]!; } },
    { group, name: 'HMAC-SHA256 of a KEK derivation, 4 parts (node:crypto)', fn: () => { sink += createHmac('sha256', key).update(iv).update('SSE-S3').update('DAREv2-HMAC-SHA256').update('bucket/prefix/object').digest()[0]!; } },
    { group, name: `HMAC-SHA256 of a KEK derivation, 4 parts (one-shot, ${oneShot})`, fn: () => { sink += hmacSha256(key, iv, 'SSE-S3', 'DAREv2-HMAC-SHA256', 'bucket/prefix/object')[0]!; } },
    { group, name: 'MD5 1 MiB (node:crypto)', bytes: mebibyte, fn: () => { sink += createHash('md5').update(data).digest()[0]!; } },
    { group, name: 'MD5 1 MiB (hash-wasm)', bytes: mebibyte, fn: () => { sink += wasm(wasmMd5).length; } },
    ...md5Kernels.flatMap((kernel) => [2, 4, 8].map((lanes) => md5Lanes(kernel, lanes))),
    { group, name: 'SHA-256 1 MiB (node:crypto)', bytes: mebibyte, fn: () => { sink += createHash('sha256').update(data).digest()[0]!; } },
    { group, name: 'SHA-256 1 MiB (hash-wasm)', bytes: mebibyte, fn: () => { sink += wasm(wasmSha256).length; } },
    { group, name: 'CRC32C 1 MiB (@node-rs/crc32)', bytes: mebibyte, fn: () => { sink += rsCrc32c(data); } },
    { group, name: 'CRC32C 1 MiB (hash-wasm)', bytes: mebibyte, fn: () => { sink += wasm(wasmCrc32c).length; } },
    { group, name: 'CRC32 1 MiB (@node-rs/crc32)', bytes: mebibyte, fn: () => { sink += rsCrc32(data); } },
    ...(zlibCrc32 === undefined ? [] : [{ group, name: 'CRC32 1 MiB (node:zlib)', bytes: mebibyte, fn: () => { sink += zlibCrc32(data); } }]),
    { group, name: 'xxh3-128 1 MiB (hash-wasm)', bytes: mebibyte, fn: () => { sink += wasm(wasmXxh128).length; }, note: 'node:crypto has no xxh3' },
  ];
  if (sink < 0) throw new Error('unreachable');
  return specs;
}
