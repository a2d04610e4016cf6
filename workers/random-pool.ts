// Random bytes for keys, IVs and nonces, taken from a pooled CSPRNG buffer. Every crypto.randomBytes call
// enters OpenSSL's DRBG, which takes a lock and makes a getpid() system call (its fork check): 5–10 µs on
// this VM, and an SSE PUT needs five of them (object key, seal IV, two DARE nonces, the KMS's data key and
// its IV and nonce). Here one randomFillSync fills 4 KiB, and each caller gets its bytes copied into memory
// of its own while the pool's copy is zeroed at once, so no byte is ever handed out twice or left behind.
//
// Fork safety, OpenSSL's reason for the getpid(): Node never forks without exec (child_process and cluster
// start new processes), so no two processes can hold the same pool. Each thread (Piscina worker) loads its
// own copy of this module and so its own pool.
import { randomBytes, randomFillSync } from 'node:crypto';

const poolBytes = 4096;
/** Bigger requests bypass the pool: they are rare, and a pool refill per call would gain nothing. */
const pooledMaxBytes = 256;

const pool = Buffer.alloc(poolBytes);
let offset = poolBytes; // empty until first use

/** `sizeBytes` cryptographically secure random bytes, in a Buffer with memory of its own. */
export function secureRandomBytes(sizeBytes: number): Buffer {
  if (sizeBytes > pooledMaxBytes) return randomBytes(sizeBytes);
  // Its own ArrayBuffer, as randomBytes gives: a key must not share a slab with unrelated small Buffers.
  return secureRandomFill(Buffer.allocUnsafeSlow(sizeBytes));
}

/**
 * Fill `target` with cryptographically secure random bytes and return it: for randomness that goes straight
 * into a larger buffer (an IV inside a ciphertext) or a scratch, without a Buffer of its own.
 */
export function secureRandomFill<T extends Uint8Array>(target: T): T {
  const sizeBytes = target.length;
  if (sizeBytes > pooledMaxBytes) return randomFillSync(target);
  if (offset + sizeBytes > poolBytes) {
    randomFillSync(pool);
    offset = 0;
  }
  pool.copy(target, 0, offset, offset + sizeBytes);
  pool.fill(0, offset, offset + sizeBytes);
  offset += sizeBytes;
  return target;
}
