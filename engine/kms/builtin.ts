// The built-in single-key KMS: MinIO's `MINIO_KMS_SECRET_KEY` (reference/sse-kms-kes.md §13.4).
// One named 32-byte master key seals fresh data keys. The sealed form is the KES `AES256` ciphertext (§14.5), so
// the key can later be imported into KES and every sealed DEK stays readable:
//
//   offset  size  field
//   0       n     AES-256-GCM(key = HMAC-SHA256(masterKey, iv), nonce, AAD = context) of the DEK (n = 32 + 16 tag)
//   n       16    iv     (random)
//   n+16    12    nonce  (random)
//
// Decrypt also reads the legacy JSON ciphertexts older MinIO releases wrote:
//   {"aead":"AES-256-GCM-HMAC-SHA-256"|"ChaCha20Poly1305","iv":b64(16),"nonce":b64(12),"bytes":b64(AEAD output)}
// where the ChaCha20 key is HChaCha20(masterKey, iv). The binary KES `ChaCha20` layout has exactly the same shape as
// the AES256 one; only the key's type tells them apart, and this key is AES256 (MinIO's `secretKey.Decrypt` reads
// every binary ciphertext as AES256), so binary ChaCha20 is not accepted here.

import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { hchacha } from '@noble/ciphers/chacha.js';
import { createFileExclusive, isErrnoCode, mkdirsDurable, readSmallFile } from '../drive.ts';
import { systemDirName } from '../paths.ts';
import { hmacSha256Into } from '../crypto/sha256.ts';
import { nativeGcm, nativeSseKeys } from '../../workers/native-gcm.ts';
import { secureRandomBytes, secureRandomFill } from '../../workers/random-pool.ts';
import { dataKeySizeBytes, KmsError, type DataKey, type Kms, type KmsStatus } from './kms.ts';

export const masterKeySizeBytes = 32;
export const ivSizeBytes = 16;
export const nonceSizeBytes = 12;
export const tagSizeBytes = 16;
/** tag + iv + nonce: a sealed 32-byte DEK is 76 bytes. */
export const sealOverheadBytes = tagSizeBytes + ivSizeBytes + nonceSizeBytes;
/** Larger than any ciphertext we or MinIO ever wrote (binary 76 B, legacy JSON ~ 200 B); untrusted metadata input. */
export const ciphertextSizeBytesMax = 4096;
/** Canonical context JSON (bucket/object names plus the client's SSE-KMS context); far above any header limit. */
export const contextSizeBytesMax = 64 * 1024;
/** A `name:base64` secret-key value is ~ 45 B + name; a key file is never larger. */
export const secretKeySizeBytesMax = 1024;
export const keyNameSizeBytesMax = 255;

export const devKeyName = 'coffer-default-key';
export const devKeyDirName = 'kms';
export const devKeyFileName = 'dev-secret.key';

const standardBase64Pattern = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const keyNameForbiddenPattern = /[\s\x00-\x1f\x7f]/;

/** The two AEAD constructions a KES-compatible secret key uses (§14.5). */
export type SecretKeyType = 'AES256' | 'ChaCha20';

/** Strict RFC 4648 §4 base64 (with padding), like Go's `base64.StdEncoding`; Buffer.from alone accepts garbage. */
export function decodeStandardBase64(text: string): Buffer | undefined {
  if (!standardBase64Pattern.test(text)) return undefined;
  return Buffer.from(text, 'base64');
}

/** HChaCha20(key, input16) → 32-byte subkey (the XChaCha20 construction, as Go's `chacha20.HChaCha20`). */
export function hchacha20(key: Uint8Array, input: Uint8Array): Buffer {
  if (key.length !== 32 || input.length !== 16) throw new Error('hchacha20: key must be 32 bytes, input 16 bytes');
  // "expand 32-byte k" as little-endian words
  const sigma = new Uint32Array([0x61707865, 0x3320646e, 0x79622d32, 0x6b206574]);
  const keyWords = new Uint32Array(8);
  const inputWords = new Uint32Array(4);
  const outWords = new Uint32Array(8);
  const keyView = new DataView(key.buffer, key.byteOffset, key.byteLength);
  const inputView = new DataView(input.buffer, input.byteOffset, input.byteLength);
  for (let i = 0; i < 8; i++) keyWords[i] = keyView.getUint32(i * 4, true);
  for (let i = 0; i < 4; i++) inputWords[i] = inputView.getUint32(i * 4, true);
  hchacha(sigma, keyWords, inputWords, outWords);
  const out = Buffer.alloc(32);
  for (let i = 0; i < 8; i++) out.writeUInt32LE(outWords[i]! >>> 0, i * 4);
  keyWords.fill(0);
  outWords.fill(0);
  return out;
}

/** The AES256 sealing key of the seal/open in progress (both synchronous); callers wipe it in `finally`. */
const sealingKeyScratch = Buffer.alloc(32);

function sealingKey(masterKey: Buffer, keyType: SecretKeyType, iv: Buffer): Buffer {
  return keyType === 'AES256' ? hmacSha256Into(sealingKeyScratch, masterKey, iv) : hchacha20(masterKey, iv);
}

/** KES binary ciphertext: AEAD(plaintext) ‖ tag ‖ iv ‖ nonce. `iv` and `nonce` are random unless a test pins them. */
export function sealSecretKeyCiphertext(
  masterKey: Buffer,
  keyType: SecretKeyType,
  plaintext: Buffer,
  associatedData: Buffer,
  random?: { readonly iv: Buffer; readonly nonce: Buffer },
): Buffer {
  if (masterKey.length !== masterKeySizeBytes) throw new Error('secret key: master key must be 32 bytes');
  if (random !== undefined && (random.iv.length !== ivSizeBytes || random.nonce.length !== nonceSizeBytes)) throw new Error('secret key: bad iv/nonce size');
  // The IV and nonce are drawn straight into their place at the end of the ciphertext.
  const out = Buffer.allocUnsafe(plaintext.length + sealOverheadBytes);
  const tagStart = plaintext.length;
  const ivStart = tagStart + tagSizeBytes;
  if (random === undefined) {
    secureRandomFill(out.subarray(ivStart)); // the IV and the nonce: adjacent
  } else {
    random.iv.copy(out, ivStart);
    random.nonce.copy(out, ivStart + ivSizeBytes);
  }
  if (keyType === 'AES256' && nativeSseKeys !== undefined) {
    // The sealing key's HMAC and the seal in one call (native/sse_keys.c); the key never reaches JS memory.
    nativeSseKeys.kesSeal(masterKey, associatedData, plaintext, out);
    return out;
  }
  const iv = out.subarray(ivStart, ivStart + ivSizeBytes);
  const nonce = out.subarray(ivStart + ivSizeBytes);
  const key = sealingKey(masterKey, keyType, iv);
  try {
    if (keyType === 'AES256' && nativeGcm !== undefined) {
      // Same bytes as node:crypto's, without its cipher object (a third of an SSE-S3 PUT's KMS cost).
      nativeGcm.seal(key, nonce, associatedData, plaintext, out.subarray(0, tagStart), out.subarray(tagStart, ivStart));
      return out;
    }
    const options = { authTagLength: tagSizeBytes };
    const cipher =
      keyType === 'AES256'
        ? createCipheriv('aes-256-gcm', key, nonce, options)
        : createCipheriv('chacha20-poly1305', key, nonce, options);
    cipher.setAAD(associatedData);
    const body = cipher.update(plaintext);
    cipher.final();
    body.copy(out, 0);
    cipher.getAuthTag().copy(out, tagStart);
    return out;
  } finally {
    key.fill(0);
  }
}

/**
 * Open a KES binary ciphertext (layout in the header comment) with a known key type. Returns undefined when the
 * ciphertext is too short or not authentic; the caller decides which error that is.
 */
export function openSecretKeyCiphertext(
  masterKey: Buffer,
  keyType: SecretKeyType,
  ciphertext: Buffer,
  associatedData: Buffer,
): Buffer | undefined {
  if (masterKey.length !== masterKeySizeBytes) throw new Error('secret key: master key must be 32 bytes');
  if (ciphertext.length < sealOverheadBytes) return undefined;
  const randomStart = ciphertext.length - ivSizeBytes - nonceSizeBytes;
  const tagStart = randomStart - tagSizeBytes;
  const iv = ciphertext.subarray(randomStart, randomStart + ivSizeBytes);
  const nonce = ciphertext.subarray(randomStart + ivSizeBytes);
  const key = sealingKey(masterKey, keyType, iv);
  try {
    const options = { authTagLength: tagSizeBytes };
    const decipher =
      keyType === 'AES256'
        ? createDecipheriv('aes-256-gcm', key, nonce, options)
        : createDecipheriv('chacha20-poly1305', key, nonce, options);
    decipher.setAAD(associatedData);
    decipher.setAuthTag(ciphertext.subarray(tagStart, randomStart));
    const body = decipher.update(ciphertext.subarray(0, tagStart));
    decipher.final(); // throws when the tag does not verify
    return body;
  } catch {
    return undefined;
  } finally {
    key.fill(0);
  }
}

/**
 * Legacy JSON ciphertext → (key type, the same bytes in binary layout), or undefined when `bytes` is not such a
 * JSON document. Like MinIO's `parseCiphertext`: anything that fails to parse is then tried as binary, since a
 * random binary ciphertext may start with `{` and end with `}`.
 */
export function parseLegacyJsonCiphertext(
  bytes: Buffer,
): { readonly keyType: SecretKeyType; readonly ciphertext: Buffer } | undefined {
  if (bytes.length < 2 || bytes[0] !== 0x7b || bytes[bytes.length - 1] !== 0x7d) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const record = value as Record<string, unknown>;
  let keyType: SecretKeyType;
  if (record.aead === 'AES-256-GCM-HMAC-SHA-256') keyType = 'AES256';
  else if (record.aead === 'ChaCha20Poly1305') keyType = 'ChaCha20';
  else return undefined;
  const field = (name: string): Buffer | undefined =>
    typeof record[name] === 'string' ? decodeStandardBase64(record[name]) : undefined;
  const iv = field('iv');
  const nonce = field('nonce');
  const sealed = field('bytes');
  if (iv?.length !== ivSizeBytes || nonce?.length !== nonceSizeBytes || sealed === undefined) return undefined;
  return { keyType, ciphertext: Buffer.concat([sealed, iv, nonce]) };
}

/** Open a ciphertext as MinIO's built-in KMS does: legacy JSON first, else binary AES256. */
export function openBuiltinCiphertext(masterKey: Buffer, ciphertext: Buffer, associatedData: Buffer): Buffer | undefined {
  const legacy = parseLegacyJsonCiphertext(ciphertext);
  if (legacy !== undefined) return openSecretKeyCiphertext(masterKey, legacy.keyType, legacy.ciphertext, associatedData);
  return openSecretKeyCiphertext(masterKey, 'AES256', ciphertext, associatedData);
}

/** `name:base64(32 bytes)`. Errors name the `source` (env var or file path), never the value. */
function parseSecretKey(value: string, source: string): { readonly keyName: string; readonly masterKey: Buffer } {
  const expected = `expected '<key-name>:<base64 of ${masterKeySizeBytes} bytes>'`;
  if (typeof value !== 'string') throw new Error(`${source}: ${expected}`);
  if (value.length > secretKeySizeBytesMax) throw new Error(`${source}: longer than ${secretKeySizeBytesMax} characters; ${expected}`);
  const trimmed = value.trim(); // a trailing newline from a file or `echo` is not part of the key
  const colonIndex = trimmed.indexOf(':');
  if (colonIndex < 0) throw new Error(`${source}: no ':' found; ${expected}`);
  const keyName = trimmed.slice(0, colonIndex);
  if (keyName.length === 0) throw new Error(`${source}: the key name before ':' is empty; ${expected}`);
  if (Buffer.byteLength(keyName, 'utf8') > keyNameSizeBytesMax || keyNameForbiddenPattern.test(keyName)) {
    throw new Error(`${source}: the key name must be 1..${keyNameSizeBytesMax} bytes without whitespace or control characters`);
  }
  const masterKey = decodeStandardBase64(trimmed.slice(colonIndex + 1));
  if (masterKey === undefined) throw new Error(`${source}: the part after ':' is not valid standard base64; ${expected}`);
  if (masterKey.length !== masterKeySizeBytes) {
    const length = masterKey.length;
    masterKey.fill(0);
    throw new Error(`${source}: the key decodes to ${length} bytes, not ${masterKeySizeBytes}; ${expected}`);
  }
  return { keyName, masterKey };
}

function validateContext(context: Buffer): void {
  // §7.3: the KMS always gets canonical JSON, at least `{}` — an absent context is a caller bug, and `{}` vs
  // empty would silently be different associated data.
  if (!Buffer.isBuffer(context) || context.length < 2 || context[0] !== 0x7b || context[context.length - 1] !== 0x7d) {
    throw new KmsError('InvalidArgument', 'KMS context must be canonical context JSON (at least "{}")');
  }
  if (context.length > contextSizeBytesMax) {
    throw new KmsError('InvalidArgument', `KMS context is ${context.length} bytes, over ${contextSizeBytesMax}`);
  }
}

export class BuiltinKms implements Kms {
  readonly defaultKeyName: string;
  #masterKey: Buffer | undefined;

  private constructor(keyName: string, masterKey: Buffer) {
    this.defaultKeyName = keyName;
    this.#masterKey = masterKey;
  }

  /** MINIO_KMS_SECRET_KEY format `name:base64(32 bytes)`; throws a clear Error on a bad format, never echoing it. */
  static fromSecretKey(value: string, source = 'MINIO_KMS_SECRET_KEY'): BuiltinKms {
    const { keyName, masterKey } = parseSecretKey(value, source);
    return new BuiltinKms(keyName, masterKey);
  }

  /** A copy of `masterKey` is kept; the caller may wipe its own. */
  static fromMasterKey(keyName: string, masterKey: Uint8Array): BuiltinKms {
    if (masterKey.length !== masterKeySizeBytes) throw new Error(`builtin KMS: master key must be ${masterKeySizeBytes} bytes`);
    if (keyName.length === 0 || keyNameForbiddenPattern.test(keyName)) throw new Error('builtin KMS: invalid key name');
    return new BuiltinKms(keyName, Buffer.from(masterKey));
  }

  /**
   * The development default when no KMS is configured: `<dataDir>/.coffer.sys/kms/dev-secret.key` holding
   * `coffer-default-key:<base64>`, created 0600 on first start and read on later starts. `created` tells the caller
   * to warn loudly: the key sits next to the data it protects.
   *
   * The file is written to a temp name, fsynced, then published with link(2) (an atomic rename that refuses to
   * replace): if two processes race on a fresh data dir, both end up with the winner's key instead of one of them
   * sealing data under a key that was overwritten a moment later.
   */
  static async fromDevKeyFile(dataDir: string): Promise<{ kms: BuiltinKms; created: boolean; path: string }> {
    const kmsDir = path.join(dataDir, systemDirName, devKeyDirName);
    const filePath = path.join(kmsDir, devKeyFileName);
    const existing = await readDevKeyFile(filePath);
    if (existing !== undefined) return { kms: existing, created: false, path: filePath };

    await mkdirsDurable(kmsDir, dataDir);
    await fs.chmod(kmsDir, 0o700);
    const masterKey = randomBytes(masterKeySizeBytes);
    const text = Buffer.from(`${devKeyName}:${masterKey.toString('base64')}\n`, 'utf8');
    const tmpPath = path.join(kmsDir, `.${devKeyFileName}.tmp-${process.pid}-${randomBytes(8).toString('hex')}`);
    if (!(await createFileExclusive(tmpPath, filePath, text, 0o600))) {
      // Lost a race with another process: use its key.
      masterKey.fill(0);
      const winner = await readDevKeyFile(filePath);
      if (winner === undefined) throw new Error(`${filePath}: vanished while starting the builtin KMS`);
      return { kms: winner, created: false, path: filePath };
    }
    return { kms: new BuiltinKms(devKeyName, masterKey), created: true, path: filePath };
  }

  /**
   * The development key of a multi-drive deployment: whichever drive has the key file provides it (the
   * first given wins), and every present drive gets a copy, so losing drives never loses the key. Drives
   * that do not exist are skipped. Returns the path used.
   */
  static async fromDevKeyFiles(dataDirs: readonly string[]): Promise<{ kms: BuiltinKms; created: boolean; path: string }> {
    const present: string[] = [];
    for (const dir of dataDirs) {
      try {
        if ((await fs.stat(dir)).isDirectory()) present.push(dir);
      } catch {
        // an offline drive
      }
    }
    if (present.length === 0) throw new Error('no drive is present to hold the development KMS key');
    let source = present[0]!;
    for (const dir of present) {
      if ((await readDevKeyFile(path.join(dir, systemDirName, devKeyDirName, devKeyFileName))) !== undefined) {
        source = dir;
        break;
      }
    }
    const result = await BuiltinKms.fromDevKeyFile(source);
    const bytes = await fs.readFile(result.path);
    for (const dir of present) {
      if (dir === source) continue;
      const kmsDir = path.join(dir, systemDirName, devKeyDirName);
      await mkdirsDurable(kmsDir, dir);
      await fs.chmod(kmsDir, 0o700);
      const tmpPath = path.join(kmsDir, `.${devKeyFileName}.tmp-${process.pid}-${randomBytes(8).toString('hex')}`);
      await createFileExclusive(tmpPath, path.join(kmsDir, devKeyFileName), bytes, 0o600);
    }
    bytes.fill(0);
    return result;
  }

  #key(): Buffer {
    if (this.#masterKey === undefined) throw new KmsError('Unavailable', 'builtin KMS is closed');
    return this.#masterKey;
  }

  #checkKeyName(keyName: string): void {
    if (keyName !== this.defaultKeyName) throw new KmsError('KeyNotFound', `key '${keyName}' does not exist`);
  }

  async generateKey(keyName: string, context: Buffer): Promise<DataKey> {
    return this.generateKeySync(keyName, context);
  }

  readonly generateKeySync = (keyName: string, context: Buffer): DataKey => {
    const masterKey = this.#key();
    this.#checkKeyName(keyName);
    validateContext(context);
    const plaintext = secureRandomBytes(dataKeySizeBytes);
    const ciphertext = sealSecretKeyCiphertext(masterKey, 'AES256', plaintext, context);
    return { plaintext, ciphertext };
  };

  async decrypt(keyName: string, ciphertext: Buffer, context: Buffer): Promise<Buffer> {
    const masterKey = this.#key();
    this.#checkKeyName(keyName);
    validateContext(context);
    if (!Buffer.isBuffer(ciphertext) || ciphertext.length > ciphertextSizeBytesMax) {
      throw new KmsError('DecryptionFailed', 'decryption failed: ciphertext is not authentic');
    }
    const plaintext = openBuiltinCiphertext(masterKey, ciphertext, context);
    if (plaintext === undefined) throw new KmsError('DecryptionFailed', 'decryption failed: ciphertext is not authentic');
    return plaintext;
  }

  async createKey(keyName: string): Promise<void> {
    this.#key();
    if (keyName === this.defaultKeyName) throw new KmsError('KeyExists', `key '${keyName}' already exists`);
    throw new KmsError('NotSupported', 'the builtin KMS has a single key and cannot create others');
  }

  async describeKey(keyName: string): Promise<{ name: string }> {
    this.#key();
    this.#checkKeyName(keyName);
    return { name: this.defaultKeyName };
  }

  async status(): Promise<KmsStatus> {
    this.#key();
    return { name: 'builtin', defaultKeyName: this.defaultKeyName, endpoints: { '127.0.0.1': 'online' } };
  }

  async close(): Promise<void> {
    this.#masterKey?.fill(0);
    this.#masterKey = undefined;
  }
}

/** Read and parse the dev key file; undefined when it does not exist. */
async function readDevKeyFile(filePath: string): Promise<BuiltinKms | undefined> {
  let bytes: Buffer;
  try {
    bytes = await readSmallFile(filePath, secretKeySizeBytesMax);
  } catch (error) {
    if (isErrnoCode(error, 'ENOENT')) return undefined;
    throw error;
  }
  try {
    return BuiltinKms.fromSecretKey(bytes.toString('utf8'), filePath);
  } finally {
    bytes.fill(0);
  }
}
