// SHA-256 and HMAC-SHA256 of a few short parts in one call: the per-request SigV4 hashes (api/auth) and the
// per-object SSE key derivations (keys.ts, the KMS caches). The native addon (native/hash.c) does one of these
// in ~0.6 µs where node:crypto's createHmac(...).update(...).digest() costs ~2.5 µs, most of it building
// objects and fetching the digest; same bytes either way. `npm ci` builds it (native/build.mjs); without it,
// or with COFFER_NATIVE_HASH=off, node:crypto does the work. Streaming hashes (payloads, chunk bodies) stay
// on node:crypto's Hash objects.

import { createHash, createHmac } from 'node:crypto';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** A part of the hashed message: bytes, or a string hashed as UTF-8. */
export type HashPart = Uint8Array | string;

/** native/hash.c's exports: the 32-byte digest goes into `out`; at most 8 parts. */
interface NativeHash {
  sha256(out: Uint8Array, ...parts: HashPart[]): void;
  hmacSha256(out: Uint8Array, key: HashPart, ...parts: HashPart[]): void;
}

const partsMax = 8;
export const nativeHashAddonPath = fileURLToPath(new URL('../../native/build/Release/coffer_hash.node', import.meta.url));

function load(): { hash: NativeHash | undefined; status: string } {
  if (process.env.COFFER_NATIVE_HASH?.toLowerCase() === 'off') return { hash: undefined, status: 'node:crypto (COFFER_NATIVE_HASH=off)' };
  let loaded: Partial<NativeHash>;
  try {
    loaded = createRequire(import.meta.url)(nativeHashAddonPath) as Partial<NativeHash>;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'MODULE_NOT_FOUND' ? 'addon not built: node native/build.mjs' : `addon failed to load: ${(error as Error).message}`;
    return { hash: undefined, status: `node:crypto (${why})` };
  }
  if (typeof loaded.sha256 !== 'function' || typeof loaded.hmacSha256 !== 'function') {
    return { hash: undefined, status: 'node:crypto (addon has no sha256/hmacSha256: rebuild it)' };
  }
  return { hash: loaded as NativeHash, status: 'native (one call per digest)' };
}

const loaded = load();
const native = loaded.hash;
/** For logs and metrics: which code computes one-shot SHA-256/HMAC and why. */
export const nativeHashStatus: string = loaded.status;

/** SHA-256 of the concatenated parts. */
export function sha256(...parts: HashPart[]): Buffer {
  const out = Buffer.allocUnsafe(32);
  if (native !== undefined && parts.length <= partsMax) {
    native.sha256(out, ...parts);
    return out;
  }
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part);
  return hash.digest();
}

/**
 * HMAC-SHA256 under `key` of the concatenated parts. The result is often a key (object keys, KEKs, signing
 * keys), so it gets memory of its own, as node:crypto's digest() does: a pooled slice would share a slab with
 * unrelated Buffers, and a task posted to a worker would clone the whole slab.
 */
export function hmacSha256(key: HashPart, ...parts: HashPart[]): Buffer {
  if (native !== undefined && parts.length <= partsMax) {
    const out = Buffer.allocUnsafeSlow(32);
    native.hmacSha256(out, key, ...parts);
    return out;
  }
  const mac = createHmac('sha256', key);
  for (const part of parts) mac.update(part);
  return mac.digest();
}

/** HMAC-SHA256 into the first 32 bytes of `out` (a scratch the caller wipes after use); returns them. */
export function hmacSha256Into(out: Buffer, key: HashPart, ...parts: HashPart[]): Buffer {
  if (out.length < 32) throw new RangeError('hmacSha256Into: out must hold 32 bytes');
  if (native !== undefined && parts.length <= partsMax) native.hmacSha256(out, key, ...parts);
  else hmacSha256(key, ...parts).copy(out);
  return out.subarray(0, 32);
}
