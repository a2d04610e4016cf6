// AEAD package kernels: DARE 2.0 seal/open through workers/dare.ts (AES-256-GCM twice: through node:crypto
// and through the native addon, workers/native-gcm.ts, toggled with setDareNativeGcm), the same AEADs through
// raw node:crypto (one createCipheriv per 64 KiB package, like DARE), and @noble/ciphers (pure JS: the test
// oracle, not a candidate for the data path). 64 KiB = one package; 1 MiB = 16 packages, the pool's block size.

import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { gcm } from '@noble/ciphers/aes.js';
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import {
  dareHeaderBytes,
  darePayloadBytesMax,
  encryptedSizeBytes,
  openPackages,
  openPackagesInto,
  randomDareNonce,
  sealPackages,
  sealPackagesInto,
  setDareNativeGcm,
} from '../../workers/dare.ts';
import { nativeGcmAvailable, nativeGcmStatus } from '../../workers/native-gcm.ts';
import { must, mebibyte, type KernelSpec } from './harness.ts';

const packageBytes = darePayloadBytesMax;
const tagBytes = 16;

/**
 * DARE 2.0 with ChaCha20-Poly1305 (cipher id 1), as MinIO on arm64 writes it: Coffer only opens these, so
 * the bench seals them itself (same layout as workers/dare.ts sealInto; checked by opening them).
 */
function sealDareChaCha(key: Buffer, nonce: Buffer, plaintext: Buffer): Buffer {
  const pieces: Buffer[] = [];
  for (let offset = 0, sequence = 0; offset < plaintext.length; offset += packageBytes, sequence++) {
    const payload = plaintext.subarray(offset, offset + packageBytes);
    const header = Buffer.alloc(dareHeaderBytes);
    header[0] = 0x20;
    header[1] = 0x01;
    header.writeUInt16LE(payload.length - 1, 2);
    nonce.copy(header, 4);
    const final = offset + payload.length >= plaintext.length;
    header[4] = final ? header[4]! | 0x80 : header[4]! & 0x7f;
    const aeadNonce = Buffer.from(header.subarray(4, 16));
    aeadNonce.writeUInt32LE((aeadNonce.readUInt32LE(8) ^ sequence) >>> 0, 8);
    const cipher = createCipheriv('chacha20-poly1305', key, aeadNonce, { authTagLength: tagBytes });
    cipher.setAAD(header.subarray(0, 4), { plaintextLength: payload.length });
    pieces.push(header, cipher.update(payload), cipher.final(), cipher.getAuthTag());
  }
  return Buffer.concat(pieces);
}

type NodeAead = 'aes-256-gcm' | 'chacha20-poly1305';

/** Both AEADs take the same calls here; @types/node types them apart, so one name is used for the overload. */
const gcmTyped = (algorithm: NodeAead): 'aes-256-gcm' => algorithm as 'aes-256-gcm';

function nodeSeal(algorithm: NodeAead, key: Buffer, nonce: Buffer, aad: Buffer, plaintext: Buffer): number {
  let sealedBytes = 0;
  for (let offset = 0, sequence = 0; offset < plaintext.length; offset += packageBytes, sequence++) {
    nonce.writeUInt32LE(sequence, 8);
    const cipher = createCipheriv(gcmTyped(algorithm), key, nonce, { authTagLength: tagBytes });
    cipher.setAAD(aad);
    sealedBytes += cipher.update(plaintext.subarray(offset, offset + packageBytes)).length + cipher.final().length + cipher.getAuthTag().length;
  }
  return sealedBytes;
}

function nodeSealAll(algorithm: NodeAead, key: Buffer, nonce: Buffer, aad: Buffer, plaintext: Buffer): Buffer[] {
  const packages: Buffer[] = [];
  for (let offset = 0, sequence = 0; offset < plaintext.length; offset += packageBytes, sequence++) {
    nonce.writeUInt32LE(sequence, 8);
    const cipher = createCipheriv(gcmTyped(algorithm), key, nonce, { authTagLength: tagBytes });
    cipher.setAAD(aad);
    packages.push(Buffer.concat([cipher.update(plaintext.subarray(offset, offset + packageBytes)), cipher.final(), cipher.getAuthTag()]));
  }
  return packages;
}

function nodeOpen(algorithm: NodeAead, key: Buffer, nonce: Buffer, aad: Buffer, packages: readonly Buffer[]): number {
  let openedBytes = 0;
  packages.forEach((pkg, sequence) => {
    nonce.writeUInt32LE(sequence, 8);
    const decipher = createDecipheriv(gcmTyped(algorithm), key, nonce, { authTagLength: tagBytes });
    decipher.setAAD(aad);
    decipher.setAuthTag(pkg.subarray(pkg.length - tagBytes));
    openedBytes += decipher.update(pkg.subarray(0, pkg.length - tagBytes)).length;
    decipher.final();
  });
  return openedBytes;
}

type NobleAead = typeof gcm | typeof chacha20poly1305;

function nobleSealAll(aead: NobleAead, key: Uint8Array, nonce: Buffer, aad: Uint8Array, plaintext: Buffer): Uint8Array[] {
  const packages: Uint8Array[] = [];
  for (let offset = 0, sequence = 0; offset < plaintext.length; offset += packageBytes, sequence++) {
    nonce.writeUInt32LE(sequence, 8);
    packages.push(aead(key, nonce, aad).encrypt(plaintext.subarray(offset, offset + packageBytes)));
  }
  return packages;
}

function nobleOpen(aead: NobleAead, key: Uint8Array, nonce: Buffer, aad: Uint8Array, packages: readonly Uint8Array[]): number {
  let openedBytes = 0;
  packages.forEach((pkg, sequence) => {
    nonce.writeUInt32LE(sequence, 8);
    openedBytes += aead(key, nonce, aad).decrypt(pkg).length;
  });
  return openedBytes;
}

export function cryptoKernels(): KernelSpec[] {
  const group = 'aead';
  const key = randomBytes(32);
  const dareNonce = randomDareNonce();
  const rawNonce = randomBytes(12);
  const aad = randomBytes(4);
  const specs: KernelSpec[] = [];
  let sink = 0;
  for (const sizeBytes of [64 * 1024, mebibyte]) {
    const label = sizeBytes === mebibyte ? '1 MiB' : '64 KiB';
    const plaintext = randomBytes(sizeBytes);
    setDareNativeGcm(false);
    const dareAes = sealPackages(key, dareNonce, 0, plaintext, true);
    if (setDareNativeGcm(true)) must(sealPackages(key, dareNonce, 0, plaintext, true).equals(dareAes), 'DARE native AES-GCM equals node:crypto');
    const dareChaCha = sealDareChaCha(key, dareNonce, plaintext);
    must(openPackages(key, dareAes, 0).plaintext.equals(plaintext), 'DARE AES-GCM round trip');
    must(openPackages(key, dareChaCha, 0).plaintext.equals(plaintext), 'DARE ChaCha20-Poly1305 round trip');
    const nodeAes = nodeSealAll('aes-256-gcm', key, rawNonce, aad, plaintext);
    const nodeChaCha = nodeSealAll('chacha20-poly1305', key, rawNonce, aad, plaintext);
    const nobleAes = nobleSealAll(gcm, key, rawNonce, aad, plaintext);
    const nobleChaCha = nobleSealAll(chacha20poly1305, key, rawNonce, aad, plaintext);
    must(Buffer.from(nobleAes[0]!).equals(nodeAes[0]!), 'noble gcm output equals node:crypto');
    must(Buffer.from(nobleChaCha[0]!).equals(nodeChaCha[0]!), 'noble chacha20poly1305 output equals node:crypto');
    // The pool's recycled path: seal and open into buffers it reuses.
    const sealedOut = Buffer.allocUnsafe(encryptedSizeBytes(sizeBytes));
    const openedOut = Buffer.allocUnsafe(sizeBytes);
    const implementations = nativeGcmAvailable ? (['node:crypto', 'native'] as const) : (['node:crypto'] as const);
    for (const implementation of implementations) {
      const native = implementation === 'native';
      const note = nativeGcmAvailable ? undefined : nativeGcmStatus;
      const row = (name: string, fn: () => number): KernelSpec => ({
        group,
        name: `DARE ${name} AES-256-GCM ${label} (dare.ts, ${implementation})`,
        bytes: sizeBytes,
        fn: () => {
          setDareNativeGcm(native);
          sink += fn();
        },
        ...(note === undefined ? {} : { note }),
      });
      specs.push(
        row('seal', () => sealPackages(key, dareNonce, 0, plaintext, true).length),
        row('sealInto', () => sealPackagesInto(key, dareNonce, 0, plaintext, true, sealedOut)),
        row('open', () => openPackages(key, dareAes, 0).plaintext.length),
        row('openInto', () => openPackagesInto(key, dareAes, 0, undefined, openedOut).plaintextBytes),
      );
    }
    setDareNativeGcm(true);
    specs.push(
      { group, name: `DARE open ChaCha20-Poly1305 ${label} (workers/dare.ts)`, bytes: sizeBytes, fn: () => { sink += openPackages(key, dareChaCha, 0).plaintext.length; } },
      { group, name: `node:crypto AES-256-GCM seal ${label}`, bytes: sizeBytes, fn: () => { sink += nodeSeal('aes-256-gcm', key, rawNonce, aad, plaintext); } },
      { group, name: `node:crypto AES-256-GCM open ${label}`, bytes: sizeBytes, fn: () => { sink += nodeOpen('aes-256-gcm', key, rawNonce, aad, nodeAes); } },
      { group, name: `node:crypto ChaCha20-Poly1305 seal ${label}`, bytes: sizeBytes, fn: () => { sink += nodeSeal('chacha20-poly1305', key, rawNonce, aad, plaintext); } },
      { group, name: `node:crypto ChaCha20-Poly1305 open ${label}`, bytes: sizeBytes, fn: () => { sink += nodeOpen('chacha20-poly1305', key, rawNonce, aad, nodeChaCha); } },
      { group, name: `@noble/ciphers gcm seal ${label}`, bytes: sizeBytes, fn: () => { sink += nobleSealAll(gcm, key, rawNonce, aad, plaintext).length; } },
      { group, name: `@noble/ciphers gcm open ${label}`, bytes: sizeBytes, fn: () => { sink += nobleOpen(gcm, key, rawNonce, aad, nobleAes); } },
      { group, name: `@noble/ciphers chacha20poly1305 seal ${label}`, bytes: sizeBytes, fn: () => { sink += nobleSealAll(chacha20poly1305, key, rawNonce, aad, plaintext).length; } },
      { group, name: `@noble/ciphers chacha20poly1305 open ${label}`, bytes: sizeBytes, fn: () => { sink += nobleOpen(chacha20poly1305, key, rawNonce, aad, nobleChaCha); } },
    );
  }
  if (sink < 0) throw new Error('unreachable');
  return specs;
}
