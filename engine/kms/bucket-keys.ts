// Opt-in per-bucket KMS data keys, in the spirit of AWS S3 Bucket Keys (reference/sse-kms-kes.md §15.3).
//
// What changes. Without bucket keys every object gets its own KMS data key (DEK), bound by the KMS context
// {"<bucket>":"<bucket>/<object>"}; a PUT costs one GenerateKey and every uncached read one Decrypt. With bucket
// keys, one DEK — generated under the bucket-level context {"<bucket>":"<bucket>"} (plus the client's SSE-KMS
// context) — serves as the external key (EK) of many objects of one bucket, for at most `maxUses` objects and
// `maxAgeMs`. PUTs then cost ~1/maxUses KMS calls, and reads of all those objects share one sealed DEK, so a
// decrypt cache (cache.ts) needs one Decrypt for all of them instead of one per object.
//
// What stays per object. The DEK is never used to encrypt data. For each object, api/sse.ts still derives
//   OEK = HMAC-SHA256(EK, "object-encryption-key generation" ‖ 32 fresh random bytes)   — a random object key
//   KEK = HMAC-SHA256(EK, fresh random IV ‖ domain ‖ "DAREv2-HMAC-SHA256" ‖ bucket/object) — bound to the path
// and stores the OEK sealed under the KEK. So object data is still encrypted under a key unique to the object,
// AEAD usage limits and nonce uniqueness stay per object (a shared *data* key would put every object's random
// DARE nonces and the deterministic multipart nonces under one key and make (key, nonce) reuse across objects
// possible), and the sealed OEK cannot be moved to another object: the KEK binds bucket/object, so the
// object-rebinding fix (§16 #1) does not depend on the KMS context. Someone with write access to metadata who
// copies one object's record onto another gets an authentication failure, as before.
//
// What a shared DEK exposes, versus per-object DEKs:
//   - Blast radius of one plaintext DEK. Whoever learns an EK (a memory disclosure of this process, a core dump,
//     or anyone allowed to call KMS Decrypt with the bucket-level context) can unseal the OEKs of every object
//     sealed under it — up to `maxUses` objects written within `maxAgeMs` — instead of one object. Hence the
//     bounds: they cap that group and how long a plaintext EK sits in memory. An attacker holding only the disks
//     gains nothing either way: the DEK is stored sealed by the KMS master key.
//   - Coarser KMS authorization and audit. The KMS sees the bucket, not the object: KMS policies or audit trails
//     keyed on the object (AWS: kms:EncryptionContext:aws:s3:arn) see only the bucket, and one Decrypt authorized
//     for the bucket context opens the DEK of many objects. The client's SSE-KMS context is still included, so
//     objects written with different client contexts never share a key, and keys are never shared across
//     buckets or master keys.
//   - Revocation. A master key deleted or disabled in the KMS can still be used by writes for up to `maxAgeMs`
//     through a bucket key already in memory (reads via the cache: its TTL). Crypto-erasure by deleting the
//     master key still works: every sealed DEK needs it.
//   - Portability. The S3 layer must record that an object used a bucket key and decrypt with
//     `bucketKeyContext(bucket, clientContext)`; MinIO knows nothing of this and would ask its KMS with the
//     per-object context, so such objects are readable only by Coffer. That is why this is opt-in.
//
// Key material: plaintext bucket keys live only in memory, are handed out as copies, and the kept copy is zeroed
// when it is rotated out, expires, is evicted, or `clear()` is called. Failed GenerateKey calls are not cached.

import { createHash } from 'node:crypto';
import { canonicalContextJson } from '../crypto/context.ts';
import type { DataKey, Kms } from './kms.ts';

export interface BucketKeyOptions {
  /** a bucket key is used for new objects at most this long after it was generated (default 5 min) */
  maxAgeMs?: number;
  /** a bucket key is used for at most this many objects (default 10,000) */
  maxUses?: number;
  /** most (key name, bucket, client context) groups holding a live key; least recently used beyond it (default 1,000) */
  maxEntries?: number;
  /** the clock for age decisions, in ms (tests); default Date.now */
  now?: () => number;
}

export const bucketKeyDefaults = { maxAgeMs: 5 * 60_000, maxUses: 10_000, maxEntries: 1_000 } as const;
const limits = { maxAgeMs: 24 * 60 * 60_000, maxUses: 1_000_000_000, maxEntries: 1_000_000 } as const;
const sweepIntervalMsMax = 60_000;

function option(name: keyof typeof limits, value: number | undefined): number {
  const chosen = value ?? bucketKeyDefaults[name];
  if (!Number.isSafeInteger(chosen) || chosen < 1 || chosen > limits[name]) {
    throw new RangeError(`BucketKeyOptions.${name} must be an integer in 1..${limits[name]}, got ${String(value)}`);
  }
  return chosen;
}

/**
 * The KMS context of a bucket key: canonical JSON of the client's context plus {"<bucket>":"<bucket>"} (the bucket
 * entry wins over a client entry of the same name, as in api/sse.ts for object contexts). The S3 layer passes the
 * same bytes to `Kms.decrypt` for objects that used a bucket key.
 */
export function bucketKeyContext(bucket: string, clientContext: Readonly<Record<string, string>>): Buffer {
  return canonicalContextJson({ ...clientContext, [bucket]: bucket });
}

interface Slot {
  readonly id: string;
  readonly plaintext: Buffer;
  readonly ciphertext: Buffer;
  readonly createdAtMs: number;
  uses: number;
  retired: boolean;
}

function privateCopy(bytes: Uint8Array): Buffer {
  const copy = Buffer.alloc(bytes.length);
  copy.set(bytes);
  return copy;
}

function slotId(keyName: string, context: Buffer): string {
  const name = Buffer.from(keyName, 'utf8');
  const prefix = Buffer.alloc(4);
  prefix.writeUInt32BE(name.length);
  return createHash('sha256').update(prefix).update(name).update(context).digest('base64');
}

export class BucketKeys {
  readonly #kms: Kms;
  readonly #maxAgeMs: number;
  readonly #maxUses: number;
  readonly #maxEntries: number;
  readonly #now: () => number;
  /** insertion order = recency order */
  readonly #slots = new Map<string, Slot>();
  readonly #flights = new Map<string, Promise<Slot>>();
  #epoch = 0;
  #generated = 0;
  #reused = 0;
  #sweepTimer: NodeJS.Timeout | undefined;

  constructor(kms: Kms, options: BucketKeyOptions = {}) {
    this.#kms = kms;
    this.#maxAgeMs = option('maxAgeMs', options.maxAgeMs);
    this.#maxUses = option('maxUses', options.maxUses);
    this.#maxEntries = option('maxEntries', options.maxEntries);
    this.#now = options.now ?? Date.now;
  }

  /**
   * A data key for one new object of `bucket` under master key `keyName`. Concurrent callers needing a new key
   * share one GenerateKey; the KmsError of a failed call reaches every one of them and nothing is kept.
   * The returned buffers are the caller's own.
   */
  async dataKey(
    keyName: string,
    bucket: string,
    clientContext: Readonly<Record<string, string>>,
  ): Promise<DataKey & { context: Buffer }> {
    const context = bucketKeyContext(bucket, clientContext);
    const id = slotId(keyName, context);
    for (;;) {
      const nowMs = this.#now();
      const slot = this.#slots.get(id);
      if (slot !== undefined) {
        if (nowMs - slot.createdAtMs < this.#maxAgeMs && slot.uses < this.#maxUses) {
          this.#slots.delete(id); // most recently used
          this.#slots.set(id, slot);
          return this.#take(slot, context);
        }
        this.#retire(slot);
      }
      const fresh = await (this.#flights.get(id) ?? this.#generate(id, keyName, context));
      // Waiters of a flight use its key even if a slow KMS call aged it meanwhile; this guarantees progress
      // (at least maxUses callers per GenerateKey). The rest loop and share the next GenerateKey.
      if (!fresh.retired && fresh.uses < this.#maxUses) return this.#take(fresh, context);
    }
  }

  stats(): { generated: number; reused: number } {
    return { generated: this.#generated, reused: this.#reused };
  }

  /** Zero and forget every bucket key (e.g. after the master key was rotated or disabled). */
  clear(): void {
    this.#epoch++;
    for (const slot of this.#slots.values()) this.#zero(slot);
    this.#slots.clear();
    this.#stopSweeper();
  }

  #take(slot: Slot, context: Buffer): DataKey & { context: Buffer } {
    if (slot.uses > 0) this.#reused++;
    slot.uses++;
    const dataKey = { plaintext: privateCopy(slot.plaintext), ciphertext: Buffer.from(slot.ciphertext), context: Buffer.from(context) };
    if (slot.uses >= this.#maxUses) this.#retire(slot); // used up: zero it now, not at the next request
    return dataKey;
  }

  #generate(id: string, keyName: string, context: Buffer): Promise<Slot> {
    const epoch = this.#epoch;
    const flight = (async () => {
      try {
        const dataKey = await this.#kms.generateKey(keyName, context);
        this.#generated++;
        const slot: Slot = {
          id,
          plaintext: privateCopy(dataKey.plaintext),
          ciphertext: Buffer.from(dataKey.ciphertext),
          createdAtMs: this.#now(),
          uses: 0,
          retired: false,
        };
        dataKey.plaintext.fill(0); // ours: the Kms contract hands the caller a fresh buffer
        if (epoch === this.#epoch) {
          this.#install(id, slot);
        } else {
          // clear() ran meanwhile: hand this key to the waiters (they are already resumed in microtasks before
          // setImmediate), but do not keep it.
          setImmediate(() => this.#zero(slot));
        }
        return slot;
      } finally {
        this.#flights.delete(id);
      }
    })();
    this.#flights.set(id, flight);
    return flight;
  }

  #install(id: string, slot: Slot): void {
    const previous = this.#slots.get(id);
    if (previous !== undefined) this.#retire(previous);
    while (this.#slots.size >= this.#maxEntries) {
      const oldest = this.#slots.entries().next().value;
      if (oldest === undefined) break;
      this.#retire(oldest[1]);
    }
    this.#slots.set(id, slot);
    this.#startSweeper();
  }

  #retire(slot: Slot): void {
    if (this.#slots.get(slot.id) === slot) this.#slots.delete(slot.id);
    this.#zero(slot);
  }

  #zero(slot: Slot): void {
    slot.retired = true;
    slot.plaintext.fill(0);
  }

  #sweep(): void {
    const nowMs = this.#now();
    for (const slot of this.#slots.values()) {
      if (nowMs - slot.createdAtMs >= this.#maxAgeMs) this.#retire(slot);
    }
    if (this.#slots.size === 0) this.#stopSweeper();
  }

  #startSweeper(): void {
    if (this.#sweepTimer !== undefined) return;
    this.#sweepTimer = setInterval(() => this.#sweep(), Math.min(this.#maxAgeMs, sweepIntervalMsMax));
    this.#sweepTimer.unref();
  }

  #stopSweeper(): void {
    if (this.#sweepTimer === undefined) return;
    clearInterval(this.#sweepTimer);
    this.#sweepTimer = undefined;
  }
}
