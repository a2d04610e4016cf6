// KES ciphertexts (reference/sse-kms-kes.md §14.5): `AEAD-output ‖ iv(16) ‖ nonce(12)`, per-message key
// HMAC-SHA256(master, iv) for AES256 and HChaCha20(master, iv) for ChaCha20. The byte layout is implemented once,
// in engine/kms/builtin.ts (MinIO's built-in KMS writes the same format); this file only adds what a multi-key
// server needs on top: the key's own type decides the AEAD, and the two legacy encodings KES still decrypts
// (minio/kes internal/crypto/ciphertext.go) are first converted to the binary layout:
//   - JSON     {"aead": …, "id"?: …, "iv": b64(16), "nonce": b64(12), "bytes": b64}
//   - msgpack  fixarray(5) [str algorithm, str id, bin iv(16), bin nonce(12), bin bytes]   (first byte 0x95)
// Like KES, the algorithm named inside a legacy ciphertext is ignored; the key's type is what counts.

import { createHmac } from 'node:crypto';
import {
  ivSizeBytes,
  nonceSizeBytes,
  openSecretKeyCiphertext,
  parseLegacyJsonCiphertext,
  sealSecretKeyCiphertext,
} from '../engine/kms/builtin.ts';
import type { KeyVersion } from './key-version.ts';

/** Encrypt `plaintext` under the key; `context` is the associated data (empty when the client sent none). */
export function encryptWithKey(version: KeyVersion, plaintext: Buffer, context: Buffer): Buffer {
  return sealSecretKeyCiphertext(version.key, version.algorithm, plaintext, context);
}

/** The plaintext, or undefined when the ciphertext is malformed or not authentic for this key and context. */
export function decryptWithKey(version: KeyVersion, ciphertext: Buffer, context: Buffer): Buffer | undefined {
  return openSecretKeyCiphertext(version.key, version.algorithm, toBinaryCiphertext(ciphertext), context);
}

/** HMAC-SHA256(hmacKey, message), or undefined for a key without an HMAC key. */
export function hmacWithKey(version: KeyVersion, message: Buffer): Buffer | undefined {
  if (version.hmacKey === undefined) return undefined;
  return createHmac('sha256', version.hmacKey).update(message).digest();
}

/** Legacy JSON / msgpack → binary layout; anything else is returned unchanged (and may still be binary). */
export function toBinaryCiphertext(ciphertext: Buffer): Buffer {
  if (ciphertext[0] === 0x7b) return parseLegacyJsonCiphertext(ciphertext)?.ciphertext ?? ciphertext;
  if (ciphertext[0] === 0x95) return parseLegacyMsgpackCiphertext(ciphertext) ?? ciphertext;
  return ciphertext;
}

/** KES msgpack ciphertext → binary layout, or undefined when it is not exactly that shape. */
export function parseLegacyMsgpackCiphertext(bytes: Buffer): Buffer | undefined {
  let offset = 0;
  const need = (count: number): boolean => offset + count <= bytes.length;
  const readLength = (kind: 'str' | 'bin'): number | undefined => {
    if (!need(1)) return undefined;
    const marker = bytes[offset++]!;
    if (kind === 'str' && marker >= 0xa0 && marker <= 0xbf) return marker & 0x1f;
    const widths: Record<number, number> = kind === 'str' ? { 0xd9: 1, 0xda: 2, 0xdb: 4 } : { 0xc4: 1, 0xc5: 2, 0xc6: 4 };
    const width = widths[marker];
    if (width === undefined || !need(width)) return undefined;
    const length = bytes.readUIntBE(offset, width);
    offset += width;
    return length;
  };
  const read = (kind: 'str' | 'bin'): Buffer | undefined => {
    const length = readLength(kind);
    if (length === undefined || !need(length)) return undefined;
    const value = bytes.subarray(offset, offset + length);
    offset += length;
    return value;
  };
  if (bytes[offset++] !== 0x95) return undefined;
  if (read('str') === undefined || read('str') === undefined) return undefined; // algorithm, id
  const iv = read('bin');
  const nonce = read('bin');
  const sealed = read('bin');
  if (iv?.length !== ivSizeBytes || nonce?.length !== nonceSizeBytes || sealed === undefined || offset !== bytes.length) return undefined;
  return Buffer.concat([sealed, iv, nonce]);
}
