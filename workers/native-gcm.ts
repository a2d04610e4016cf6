// The native AES-256-GCM addon (native/gcm.c), if it was built: seal/open one message straight into the
// caller's memory with Node's own OpenSSL, which spares DARE the Buffer that node:crypto's update() allocates
// and the copy out of it for every 64 KiB package (workers/dare.ts). `npm ci` builds it (native/build.mjs);
// without a C toolchain it is simply absent and DARE uses node:crypto, with byte-identical output.
// COFFER_NATIVE_GCM=off disables it. Loaded once per thread (each Piscina worker loads its own instance).

import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** native/gcm.c's exports. Every argument is a Uint8Array (any offset, shared memory too). */
export interface NativeGcm {
  /**
   * AES-256-GCM encrypt `src` into `dst` (same length; `dst` is exactly `src` or disjoint from it) and
   * write the 16-byte tag into `tag`. key 32 bytes, iv 12. Throws TypeError/RangeError on bad arguments.
   */
  seal(key: Uint8Array, iv: Uint8Array, aad: Uint8Array, src: Uint8Array, dst: Uint8Array, tag: Uint8Array): void;
  /**
   * Decrypt `src` into `dst` and verify `tag`; false on a wrong tag, and then `dst` has been zeroed (the
   * caller must still treat it as garbage).
   */
  open(key: Uint8Array, iv: Uint8Array, aad: Uint8Array, src: Uint8Array, dst: Uint8Array, tag: Uint8Array): boolean;
  /**
   * On libuv's thread pool, one job: unless fd is -1, pread `readBytes` at `position` into `buffer`; then, if
   * buffer[blockOffset, blockOffset + blockBytes) was all read, open its DARE 2.0 packages into `out` with
   * workers/dare.ts's checks (native/dare_open.c). A failed read rejects like node:fs (code, errno, syscall);
   * `buffer` and `out` must stay untouched until the Promise settles.
   */
  openBlock(
    fd: number, position: number, readBytes: number, buffer: Uint8Array, blockOffset: number, blockBytes: number,
    key: Uint8Array, firstSequence: number, out: Uint8Array,
  ): Promise<OpenedBlockResult>;
  /**
   * A new object key and its sealed form in one call (native/sse_keys.c): objectKeyOut ← HMAC-SHA256(externalKey,
   * "object-encryption-key generation" ‖ random); sealedKeyOut ← one final DARE 2.0 package of it (header nonce
   * `nonce`, sequence 0) under HMAC-SHA256(externalKey, iv ‖ kekTail). Same bytes as engine/crypto/keys.ts.
   */
  newSealedObjectKey(
    externalKey: Uint8Array, random: Uint8Array, iv: Uint8Array, nonce: Uint8Array, kekTail: string | Uint8Array,
    objectKeyOut: Uint8Array, sealedKeyOut: Uint8Array,
  ): void;
  /**
   * The built-in KMS's AES256 seal (engine/kms/builtin.ts): out = AES-256-GCM(plaintext) ‖ tag ‖ iv ‖ nonce under
   * HMAC-SHA256(masterKey, iv), with iv (16 bytes) and nonce (12) already at out's end; out is plaintext + 44 bytes.
   */
  kesSeal(masterKey: Uint8Array, aad: Uint8Array, plaintext: Uint8Array, out: Uint8Array): void;
  /** the OpenSSL it runs on, e.g. "OpenSSL 3.0.19 27 Jan 2026" */
  readonly openssl: string;
  /**
   * "vaes-avx512": seal and open run native/vaes_gcm.c (VAES + VPCLMULQDQ + AVX-512, ~2.4x OpenSSL 3.0 here);
   * "openssl": through OpenSSL (other CPUs, or COFFER_NATIVE_GCM_VAES=off). Same bytes either way.
   */
  readonly implementation: 'vaes-avx512' | 'openssl';
}

/** What openBlock found. */
export interface OpenedBlockResult {
  /** bytes read (the block's offset + length when fd was -1) */
  readonly gotBytes: number;
  /** false: the block was short (nothing opened), or ChaCha20-Poly1305 packages (open them with node:crypto) */
  readonly opened: boolean;
  /** the DARE reason when the packages did not check out ("authentication failed", …); out is then garbage */
  readonly error: string | undefined;
  readonly plaintextBytes: number;
  /** the block ends with the stream's final package */
  readonly final: boolean;
  /** the stream nonce in the block's headers (final flag cleared), when opened */
  readonly nonce: Buffer | undefined;
}

export const nativeGcmAddonPath = fileURLToPath(new URL('../native/build/Release/coffer_gcm.node', import.meta.url));

function load(): { gcm: NativeGcm | undefined; status: string } {
  if (process.env.COFFER_NATIVE_GCM?.toLowerCase() === 'off') return { gcm: undefined, status: 'node:crypto (COFFER_NATIVE_GCM=off)' };
  let loaded: unknown;
  try {
    loaded = createRequire(import.meta.url)(nativeGcmAddonPath);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'MODULE_NOT_FOUND' ? 'addon not built: node native/build.mjs' : `addon failed to load: ${(error as Error).message}`;
    return { gcm: undefined, status: `node:crypto (${why})` };
  }
  const gcm = loaded as Partial<NativeGcm>;
  if (typeof gcm.seal !== 'function' || typeof gcm.open !== 'function') {
    return { gcm: undefined, status: 'node:crypto (addon has no seal/open)' };
  }
  const vaes = gcm.implementation === 'vaes-avx512' ? 'VAES/AVX-512; ' : '';
  return { gcm: gcm as NativeGcm, status: `native (${vaes}${String(gcm.openssl)})` };
}

const loaded = load();

/** The addon, or undefined when it is not built, fails to load, or COFFER_NATIVE_GCM=off. */
export const nativeGcm: NativeGcm | undefined = loaded.gcm;
export const nativeGcmAvailable: boolean = loaded.gcm !== undefined;
/** The addon's openBlock, when the addon is loaded and has it. */
export const nativeOpenBlock: NativeGcm['openBlock'] | undefined = typeof loaded.gcm?.openBlock === 'function' ? loaded.gcm.openBlock : undefined;
/** For logs and reports: which AES-GCM runs DARE and why, e.g. "native (OpenSSL 3.0.19 …)". */
export const nativeGcmStatus: string = loaded.status;
/** The addon's one-call SSE key operations, when the addon is loaded and has them. */
export const nativeSseKeys: Pick<NativeGcm, 'newSealedObjectKey' | 'kesSeal'> | undefined =
  typeof loaded.gcm?.newSealedObjectKey === 'function' && typeof loaded.gcm.kesSeal === 'function' ? loaded.gcm : undefined;
