// KMS key cache (engine/kms/cache.ts) and per-bucket data keys (engine/kms/bucket-keys.ts), against a counting
// fake that wraps the real builtin KMS, with delay and failure injection. No timing assertions: TTL and max age
// use a fake clock; delays only make calls overlap.

import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { canonicalContextJson } from '../engine/crypto/context.ts';
import { generateObjectKey, KeyUnsealError, sealObjectKey, unsealObjectKey } from '../engine/crypto/keys.ts';
import { BucketKeys, bucketKeyContext } from '../engine/kms/bucket-keys.ts';
import { BuiltinKms } from '../engine/kms/builtin.ts';
import { CachingKms } from '../engine/kms/cache.ts';
import { KmsError, type DataKey, type Kms, type KmsErrorKind, type KmsStatus } from '../engine/kms/kms.ts';

const keyName = 'test-key';

/** A real Kms (BuiltinKms) that counts calls, tracks concurrency, and can be slowed down or made to fail. */
class CountingKms implements Kms {
  readonly inner = BuiltinKms.fromSecretKey(`${keyName}:${randomBytes(32).toString('base64')}`);
  readonly defaultKeyName = keyName;
  calls = { generate: 0, decrypt: 0, create: 0, describe: 0 };
  inFlight = 0;
  inFlightMax = 0;
  delayMs = 0;
  /** every call fails with this kind while set */
  failing: KmsErrorKind | undefined;
  /** the next N calls fail with `failNextKind` */
  failNext = 0;
  failNextKind: KmsErrorKind = 'Unavailable';

  async #call<T>(run: () => Promise<T>): Promise<T> {
    this.inFlight++;
    this.inFlightMax = Math.max(this.inFlightMax, this.inFlight);
    try {
      if (this.delayMs > 0) await sleep(this.delayMs);
      if (this.failing !== undefined) throw new KmsError(this.failing, `injected ${this.failing}`);
      if (this.failNext > 0) {
        this.failNext--;
        throw new KmsError(this.failNextKind, `injected ${this.failNextKind}`);
      }
      return await run();
    } finally {
      this.inFlight--;
    }
  }

  generateKey(name: string, context: Buffer): Promise<DataKey> {
    this.calls.generate++;
    return this.#call(() => this.inner.generateKey(name, context));
  }
  decrypt(name: string, ciphertext: Buffer, context: Buffer): Promise<Buffer> {
    this.calls.decrypt++;
    return this.#call(() => this.inner.decrypt(name, ciphertext, context));
  }
  createKey(name: string): Promise<void> {
    this.calls.create++;
    return this.#call(() => this.inner.createKey(name));
  }
  describeKey(name: string): Promise<{ name: string }> {
    this.calls.describe++;
    return this.#call(() => this.inner.describeKey(name));
  }
  status(): Promise<KmsStatus> {
    return this.inner.status();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

function objectContext(bucket: string, object: string): Buffer {
  return canonicalContextJson({ [bucket]: `${bucket}/${object}` });
}

/** `count` data keys generated directly (so the cache is cold), each under its own object context. */
async function sealedKeys(fake: CountingKms, count: number): Promise<Array<DataKey & { context: Buffer }>> {
  const keys = [];
  for (let i = 0; i < count; i++) {
    const context = objectContext('bucket', `object-${i}`);
    keys.push({ ...(await fake.inner.generateKey(keyName, context)), context });
  }
  return keys;
}

async function rejectsWithKind(promise: Promise<unknown>, kind: KmsErrorKind): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof KmsError, `expected KmsError, got ${String(error)}`);
    assert.equal(error.kind, kind);
    return true;
  });
}

function fakeClock(startMs = 1_000_000): { now: () => number; advance: (ms: number) => void } {
  let t = startMs;
  return { now: () => t, advance: (ms) => (t += ms) };
}

describe('CachingKms', () => {
  test('1,000 decrypts of 10 distinct data keys make at most 10 inner calls', async () => {
    const fake = new CountingKms();
    const cache = new CachingKms(fake);
    const keys = await sealedKeys(fake, 10);
    // Half concurrent (singleflight + batching), half sequential (hits).
    const concurrent = await Promise.all(
      Array.from({ length: 500 }, (_, i) => {
        const key = keys[i % 10]!;
        return cache.decrypt(keyName, key.ciphertext, key.context).then((plaintext) => ({ i, plaintext }));
      }),
    );
    for (const { i, plaintext } of concurrent) assert.deepEqual(plaintext, keys[i % 10]!.plaintext);
    for (let i = 0; i < 500; i++) {
      const key = keys[i % 10]!;
      assert.deepEqual(await cache.decrypt(keyName, key.ciphertext, key.context), key.plaintext);
    }
    assert.ok(fake.calls.decrypt <= 10, `inner decrypt calls: ${fake.calls.decrypt}`);
    const stats = cache.stats();
    assert.equal(stats.kmsCalls.decrypt, fake.calls.decrypt);
    assert.equal(stats.hits + stats.misses, 1000);
    assert.equal(stats.misses - stats.singleflightJoins, stats.kmsCalls.decrypt);
    assert.equal(stats.entries, 10);
  });

  test('100 concurrent decrypts of one entry make one inner call and get independent copies', async () => {
    const fake = new CountingKms();
    fake.delayMs = 5;
    const cache = new CachingKms(fake);
    const [key] = await sealedKeys(fake, 1);
    const results = await Promise.all(Array.from({ length: 100 }, () => cache.decrypt(keyName, key!.ciphertext, key!.context)));
    assert.equal(fake.calls.decrypt, 1);
    assert.equal(cache.stats().singleflightJoins, 99);
    for (const plaintext of results) assert.deepEqual(plaintext, key!.plaintext);
    results[0]!.fill(0); // a caller wiping its copy affects nobody else
    assert.deepEqual(results[1], key!.plaintext);
    assert.deepEqual(await cache.decrypt(keyName, key!.ciphertext, key!.context), key!.plaintext);
    assert.equal(fake.calls.decrypt, 1);
  });

  test('100 concurrent distinct decrypts respect maxBatch and maxConcurrentCalls', async () => {
    const fake = new CountingKms();
    fake.delayMs = 3;
    const cache = new CachingKms(fake, { maxBatch: 8, maxConcurrentCalls: 4 });
    const keys = await sealedKeys(fake, 100);
    const results = await Promise.all(keys.map((key) => cache.decrypt(keyName, key.ciphertext, key.context)));
    results.forEach((plaintext, i) => assert.deepEqual(plaintext, keys[i]!.plaintext));
    const stats = cache.stats();
    assert.equal(fake.calls.decrypt, 100);
    assert.ok(fake.inFlightMax <= 4, `inner calls in flight at once: ${fake.inFlightMax}`);
    assert.ok(stats.batchSizeMax <= 4, `largest batch: ${stats.batchSizeMax}`); // a batch never exceeds free slots
    assert.ok(stats.batches >= 25, `batches: ${stats.batches}`);
  });

  test('misses arriving together are dispatched in full batches of maxBatch', async () => {
    const fake = new CountingKms();
    const cache = new CachingKms(fake, { maxBatch: 32, maxConcurrentCalls: 128 });
    const keys = await sealedKeys(fake, 100);
    await Promise.all(keys.map((key) => cache.decrypt(keyName, key.ciphertext, key.context)));
    const stats = cache.stats();
    assert.equal(stats.batches, 4); // 32 + 32 + 32 + 4 (the last after the window)
    assert.equal(stats.batchSizeMax, 32);
    assert.ok(fake.inFlightMax <= 100);
  });

  test('defaults bound a burst: at most 16 inner calls in flight, batches of at most 32', async () => {
    const fake = new CountingKms();
    fake.delayMs = 2;
    const cache = new CachingKms(fake);
    const keys = await sealedKeys(fake, 200);
    await Promise.all(keys.map((key) => cache.decrypt(keyName, key.ciphertext, key.context)));
    assert.ok(fake.inFlightMax <= 16, `inner calls in flight at once: ${fake.inFlightMax}`);
    assert.ok(cache.stats().batchSizeMax <= 32);
    // generateKey shares the bound
    await Promise.all(Array.from({ length: 100 }, (_, i) => cache.generateKey(keyName, objectContext('b', `g${i}`))));
    assert.ok(fake.inFlightMax <= 16, `inner calls in flight at once: ${fake.inFlightMax}`);
  });

  test('a queue beyond maxQueuedCalls fails fast as Unavailable', async () => {
    const fake = new CountingKms();
    fake.delayMs = 5;
    const cache = new CachingKms(fake, { maxConcurrentCalls: 1, maxBatch: 1, maxQueuedCalls: 4 });
    const keys = await sealedKeys(fake, 10);
    const settled = await Promise.allSettled(keys.map((key) => cache.decrypt(keyName, key.ciphertext, key.context)));
    const rejected = settled.filter((result) => result.status === 'rejected');
    assert.ok(rejected.length > 0 && rejected.length < 10, `rejected: ${rejected.length}`);
    for (const result of rejected) {
      assert.ok(result.reason instanceof KmsError && result.reason.kind === 'Unavailable');
    }
  });

  test('the first decrypt after generateKey is a hit', async () => {
    const fake = new CountingKms();
    const cache = new CachingKms(fake);
    const context = objectContext('bucket', 'new-object');
    const dataKey = await cache.generateKey(keyName, context);
    assert.equal(fake.calls.generate, 1);
    assert.deepEqual(await cache.decrypt(keyName, dataKey.ciphertext, context), dataKey.plaintext);
    assert.equal(fake.calls.decrypt, 0);
    // generateKey itself is never cached: each call yields a fresh key
    const second = await cache.generateKey(keyName, context);
    assert.notDeepEqual(second.plaintext, dataKey.plaintext);
    assert.equal(fake.calls.generate, 2);
  });

  test('cacheGeneratedKeys: false leaves new data keys out of the cache (the server has an object-key cache in front)', async () => {
    const fake = new CountingKms();
    const cache = new CachingKms(fake, { cacheGeneratedKeys: false });
    const context = objectContext('bucket', 'new-object');
    const dataKey = await cache.generateKey(keyName, context);
    assert.equal(fake.calls.generate, 1);
    assert.equal(cache.stats().entries, 0);
    // the first decrypt goes to the KMS, and from then on it is cached as usual
    assert.deepEqual(await cache.decrypt(keyName, dataKey.ciphertext, context), dataKey.plaintext);
    assert.deepEqual(await cache.decrypt(keyName, dataKey.ciphertext, context), dataKey.plaintext);
    assert.equal(fake.calls.decrypt, 1);
    assert.equal(cache.stats().entries, 1);
  });

  test('generateKeySync: only over an in-process KMS; counted, cached like generateKey, and its keys open in the KMS', async () => {
    assert.equal(new CachingKms(new CountingKms()).generateKeySync, undefined); // the fake has no sync path: callers await
    const inner = BuiltinKms.fromSecretKey(`${keyName}:${randomBytes(32).toString('base64')}`);
    const context = objectContext('bucket', 'new-object');
    for (const cacheGeneratedKeys of [true, false]) {
      const cache = new CachingKms(inner, { cacheGeneratedKeys });
      const dataKey = cache.generateKeySync!(keyName, context);
      assert.equal(dataKey.plaintext.length, 32);
      assert.equal(cache.stats().kmsCalls.generate, 1);
      assert.equal(cache.stats().entries, cacheGeneratedKeys ? 1 : 0);
      assert.deepEqual(await inner.decrypt(keyName, dataKey.ciphertext, context), dataKey.plaintext);
      assert.deepEqual(await cache.decrypt(keyName, dataKey.ciphertext, context), dataKey.plaintext);
      assert.equal(cache.stats().kmsCalls.decrypt, cacheGeneratedKeys ? 0 : 1);
      assert.notDeepEqual(cache.generateKeySync!(keyName, context).plaintext, dataKey.plaintext);
      // errors are thrown as generateKey rejects them
      assert.throws(() => cache.generateKeySync!('no-such-key', context), (error: unknown) => error instanceof KmsError && error.kind === 'KeyNotFound');
      assert.throws(() => cache.generateKeySync!(keyName, Buffer.alloc(0)), (error: unknown) => error instanceof KmsError && error.kind === 'InvalidArgument');
      await assert.rejects(cache.generateKey('no-such-key', context), (error: unknown) => error instanceof KmsError && error.kind === 'KeyNotFound');
      cache.clear();
    }
    const closed = new CachingKms(BuiltinKms.fromSecretKey(`${keyName}:${randomBytes(32).toString('base64')}`));
    await closed.close();
    assert.throws(() => closed.generateKeySync!(keyName, context), (error: unknown) => error instanceof KmsError && error.kind === 'Unavailable');
  });

  test('entries expire after ttlMs (fake clock)', async () => {
    const fake = new CountingKms();
    const clock = fakeClock();
    const cache = new CachingKms(fake, { ttlMs: 1_000, now: clock.now });
    const [key] = await sealedKeys(fake, 1);
    await cache.decrypt(keyName, key!.ciphertext, key!.context);
    clock.advance(999);
    await cache.decrypt(keyName, key!.ciphertext, key!.context);
    assert.equal(fake.calls.decrypt, 1);
    clock.advance(1); // TTL is absolute from the inner call: hits do not extend it
    assert.equal(cache.stats().entries, 0);
    assert.deepEqual(await cache.decrypt(keyName, key!.ciphertext, key!.context), key!.plaintext);
    assert.equal(fake.calls.decrypt, 2);
    assert.ok(cache.stats().evictions >= 1);
  });

  test('the cache holds at most maxEntries and evicts what was not used since the hand last passed', async () => {
    const fake = new CountingKms();
    const cache = new CachingKms(fake, { maxEntries: 3 });
    const [a, b, c, d, e] = await sealedKeys(fake, 5);
    const get = (key: DataKey & { context: Buffer }) => cache.decrypt(keyName, key.ciphertext, key.context);
    await get(a!);
    await get(b!);
    await get(c!);
    assert.equal(fake.calls.decrypt, 3);
    await get(d!); // all three are new since the hand last passed: it clears them and evicts the first, a
    let stats = cache.stats();
    assert.equal(stats.entries, 3);
    assert.equal(stats.evictions, 1);
    await get(b!); // hit: b is used again
    assert.equal(fake.calls.decrypt, 4);
    await get(e!); // b is spared once, c goes
    await get(b!);
    await get(d!);
    await get(e!);
    assert.equal(fake.calls.decrypt, 5);
    await get(c!); // miss
    assert.equal(fake.calls.decrypt, 6);
    stats = cache.stats();
    assert.equal(stats.entries, 3);
    // 1,000 distinct keys through a small cache never hold more than the bound
    const small = new CachingKms(fake, { maxEntries: 50 });
    for (const key of await sealedKeys(fake, 200)) await small.decrypt(keyName, key.ciphertext, key.context);
    assert.equal(small.stats().entries, 50);
    assert.equal(small.stats().evictions, 150);
  });

  test('a cached key is never served for another context or key name', async () => {
    const fake = new CountingKms();
    const cache = new CachingKms(fake);
    const context = objectContext('bucket', 'a');
    const dataKey = await cache.generateKey(keyName, context);
    assert.deepEqual(await cache.decrypt(keyName, dataKey.ciphertext, context), dataKey.plaintext);
    await rejectsWithKind(cache.decrypt(keyName, dataKey.ciphertext, objectContext('bucket', 'b')), 'DecryptionFailed');
    await rejectsWithKind(cache.decrypt(keyName, dataKey.ciphertext, Buffer.from('{}')), 'DecryptionFailed');
    await rejectsWithKind(cache.decrypt('other-key', dataKey.ciphertext, context), 'KeyNotFound');
    // a context that differs in one byte is a different entry too
    const tweaked = Buffer.from(context);
    tweaked[tweaked.length - 3] ^= 1;
    await rejectsWithKind(cache.decrypt(keyName, dataKey.ciphertext, tweaked), 'DecryptionFailed');
    assert.equal(fake.calls.decrypt, 4); // every foreign lookup went to the KMS
    // and the caller's buffers are snapshotted: mutating them after the call does not poison the cache
    const ciphertext = Buffer.from(dataKey.ciphertext);
    const pending = cache.decrypt(keyName, ciphertext, objectContext('bucket', 'c'));
    ciphertext.fill(0);
    await rejectsWithKind(pending, 'DecryptionFailed');
  });

  test('failed inner calls are not cached; every joiner sees the error', async () => {
    const fake = new CountingKms();
    fake.delayMs = 3;
    const cache = new CachingKms(fake);
    const [key] = await sealedKeys(fake, 1);
    fake.failNext = 1;
    const settled = await Promise.allSettled(Array.from({ length: 10 }, () => cache.decrypt(keyName, key!.ciphertext, key!.context)));
    assert.equal(fake.calls.decrypt, 1);
    for (const result of settled) {
      assert.equal(result.status, 'rejected');
      assert.ok(result.status === 'rejected' && result.reason instanceof KmsError && result.reason.kind === 'Unavailable');
    }
    assert.equal(cache.stats().entries, 0);
    assert.deepEqual(await cache.decrypt(keyName, key!.ciphertext, key!.context), key!.plaintext);
    assert.equal(fake.calls.decrypt, 2);
    // a bad ciphertext is asked about every time (no negative caching)
    const bad = Buffer.from(key!.ciphertext);
    bad[0] ^= 1;
    await rejectsWithKind(cache.decrypt(keyName, bad, key!.context), 'DecryptionFailed');
    await rejectsWithKind(cache.decrypt(keyName, bad, key!.context), 'DecryptionFailed');
    assert.equal(fake.calls.decrypt, 4);
  });

  test('inner Unavailable: cached entries serve until their TTL, misses fail, recovery is automatic', async () => {
    const fake = new CountingKms();
    const clock = fakeClock();
    const cache = new CachingKms(fake, { ttlMs: 60_000, now: clock.now });
    const [warm, cold] = await sealedKeys(fake, 2);
    await cache.decrypt(keyName, warm!.ciphertext, warm!.context);
    fake.failing = 'Unavailable';
    clock.advance(30_000);
    assert.deepEqual(await cache.decrypt(keyName, warm!.ciphertext, warm!.context), warm!.plaintext);
    await rejectsWithKind(cache.decrypt(keyName, cold!.ciphertext, cold!.context), 'Unavailable');
    await rejectsWithKind(cache.generateKey(keyName, objectContext('bucket', 'x')), 'Unavailable');
    clock.advance(30_000); // TTL over: the offline KMS cannot renew it
    await rejectsWithKind(cache.decrypt(keyName, warm!.ciphertext, warm!.context), 'Unavailable');
    fake.failing = undefined;
    assert.deepEqual(await cache.decrypt(keyName, warm!.ciphertext, warm!.context), warm!.plaintext);
    assert.deepEqual(await cache.decrypt(keyName, cold!.ciphertext, cold!.context), cold!.plaintext);
  });

  test('createKey/describeKey are counted and passed through; clear and close drop everything', async () => {
    const fake = new CountingKms();
    const cache = new CachingKms(fake);
    assert.equal(cache.defaultKeyName, keyName);
    assert.deepEqual(await cache.describeKey(keyName), { name: keyName });
    await rejectsWithKind(cache.createKey(keyName), 'KeyExists');
    assert.deepEqual(cache.stats().kmsCalls, { generate: 0, decrypt: 0, create: 1, describe: 1 });
    assert.equal((await cache.status()).name, 'builtin');
    const context = objectContext('bucket', 'o');
    const dataKey = await cache.generateKey(keyName, context);
    assert.equal(cache.stats().entries, 1);
    cache.clear();
    assert.equal(cache.stats().entries, 0);
    assert.deepEqual(await cache.decrypt(keyName, dataKey.ciphertext, context), dataKey.plaintext);
    assert.equal(fake.calls.decrypt, 1);
    await cache.close();
    assert.equal(cache.stats().entries, 0);
    await rejectsWithKind(cache.decrypt(keyName, dataKey.ciphertext, context), 'Unavailable');
  });

  test('invalid options are rejected', () => {
    const fake = new CountingKms();
    assert.throws(() => new CachingKms(fake, { maxEntries: 0 }), RangeError);
    assert.throws(() => new CachingKms(fake, { ttlMs: -1 }), RangeError);
    assert.throws(() => new CachingKms(fake, { maxBatch: 1.5 }), RangeError);
    assert.throws(() => new CachingKms(fake, { maxConcurrentCalls: Number.NaN }), RangeError);
    assert.doesNotThrow(() => new CachingKms(fake, { batchWindowMs: 0 }));
  });
});

describe('BucketKeys', () => {
  test('bucketKeyContext is canonical JSON of the client context plus {"<bucket>":"<bucket>"}', () => {
    assert.equal(bucketKeyContext('photos', {}).toString(), '{"photos":"photos"}');
    assert.equal(bucketKeyContext('b', { z: '1', a: '<&>' }).toString(), '{"a":"\\u003c\\u0026\\u003e","b":"b","z":"1"}');
    assert.equal(bucketKeyContext('b', { b: 'spoof' }).toString(), '{"b":"b"}');
  });

  test('1,000 objects in one bucket share one generateKey; each object still gets its own key', async () => {
    const fake = new CountingKms();
    const bucketKeys = new BucketKeys(fake);
    const results = [];
    for (let i = 0; i < 1000; i++) results.push(await bucketKeys.dataKey(keyName, 'photos', {}));
    assert.equal(fake.calls.generate, 1);
    assert.deepEqual(bucketKeys.stats(), { generated: 1, reused: 999 });
    const first = results[0]!;
    assert.deepEqual(first.context, bucketKeyContext('photos', {}));
    for (const result of results) assert.deepEqual(result.plaintext, first.plaintext);
    // the S3 layer decrypts with the bucket context
    assert.deepEqual(await fake.inner.decrypt(keyName, first.ciphertext, first.context), first.plaintext);
    await rejectsWithKind(fake.inner.decrypt(keyName, first.ciphertext, objectContext('photos', 'a.jpg')), 'DecryptionFailed');
    // per-object OEK and path-bound KEK (api/sse.ts): a sealed object key cannot be moved to another object
    const oekA = generateObjectKey(first.plaintext);
    const oekB = generateObjectKey(results[1]!.plaintext);
    assert.notDeepEqual(oekA, oekB);
    const sealedA = sealObjectKey(oekA, first.plaintext, 'SSE-KMS', 'photos', 'a.jpg');
    assert.deepEqual(unsealObjectKey(sealedA.sealedKey, sealedA.iv, first.plaintext, 'SSE-KMS', 'photos', 'a.jpg'), oekA);
    assert.throws(() => unsealObjectKey(sealedA.sealedKey, sealedA.iv, first.plaintext, 'SSE-KMS', 'photos', 'b.jpg'), KeyUnsealError);
    // handed-out keys are copies
    results[0]!.plaintext.fill(0);
    assert.deepEqual((await bucketKeys.dataKey(keyName, 'photos', {})).plaintext, results[1]!.plaintext);
  });

  test('rotation after maxUses and after maxAgeMs (fake clock)', async () => {
    const fake = new CountingKms();
    const clock = fakeClock();
    const bucketKeys = new BucketKeys(fake, { maxUses: 10, maxAgeMs: 60_000, now: clock.now });
    const keys = [];
    for (let i = 0; i < 25; i++) keys.push(await bucketKeys.dataKey(keyName, 'b', {}));
    assert.equal(fake.calls.generate, 3);
    assert.deepEqual(bucketKeys.stats(), { generated: 3, reused: 22 });
    assert.deepEqual(keys[9]!.plaintext, keys[0]!.plaintext);
    assert.notDeepEqual(keys[10]!.plaintext, keys[9]!.plaintext);
    assert.notDeepEqual(keys[20]!.plaintext, keys[10]!.plaintext);
    assert.notDeepEqual(keys[0]!.plaintext, Buffer.alloc(32)); // rotation zeroes our copy, never the caller's

    clock.advance(59_999);
    const beforeExpiry = await bucketKeys.dataKey(keyName, 'b', {});
    assert.deepEqual(beforeExpiry.plaintext, keys[20]!.plaintext);
    clock.advance(1);
    const afterExpiry = await bucketKeys.dataKey(keyName, 'b', {});
    assert.notDeepEqual(afterExpiry.plaintext, keys[20]!.plaintext);
    assert.equal(fake.calls.generate, 4);
  });

  test('distinct buckets, client contexts and master keys get distinct keys', async () => {
    const fake = new CountingKms();
    const bucketKeys = new BucketKeys(fake);
    const a = await bucketKeys.dataKey(keyName, 'bucket-a', {});
    const b = await bucketKeys.dataKey(keyName, 'bucket-b', {});
    const aWithContext = await bucketKeys.dataKey(keyName, 'bucket-a', { project: 'x' });
    assert.equal(fake.calls.generate, 3);
    assert.notDeepEqual(a.plaintext, b.plaintext);
    assert.notDeepEqual(a.plaintext, aWithContext.plaintext);
    assert.notDeepEqual(a.context, b.context);
    assert.equal(aWithContext.context.toString(), '{"bucket-a":"bucket-a","project":"x"}');
    await rejectsWithKind(bucketKeys.dataKey('missing-key', 'bucket-a', {}), 'KeyNotFound');
    assert.deepEqual((await bucketKeys.dataKey(keyName, 'bucket-a', {})).plaintext, a.plaintext);
  });

  test('concurrent first requests share one generateKey (and maxUses still holds)', async () => {
    const fake = new CountingKms();
    fake.delayMs = 5;
    const bucketKeys = new BucketKeys(fake);
    const results = await Promise.all(Array.from({ length: 100 }, () => bucketKeys.dataKey(keyName, 'b', {})));
    assert.equal(fake.calls.generate, 1);
    for (const result of results) assert.deepEqual(result.plaintext, results[0]!.plaintext);

    const bounded = new BucketKeys(fake, { maxUses: 10 });
    const boundedResults = await Promise.all(Array.from({ length: 100 }, () => bounded.dataKey(keyName, 'c', {})));
    assert.equal(bounded.stats().generated, 10);
    const uses = new Map<string, number>();
    for (const result of boundedResults) {
      const hex = result.plaintext.toString('hex');
      uses.set(hex, (uses.get(hex) ?? 0) + 1);
    }
    assert.equal(uses.size, 10);
    for (const count of uses.values()) assert.equal(count, 10);
  });

  test('a failed generateKey is not kept; every waiter sees it; the next request retries', async () => {
    const fake = new CountingKms();
    fake.delayMs = 3;
    const bucketKeys = new BucketKeys(fake);
    fake.failNext = 1;
    const settled = await Promise.allSettled(Array.from({ length: 5 }, () => bucketKeys.dataKey(keyName, 'b', {})));
    assert.equal(fake.calls.generate, 1);
    assert.ok(settled.every((result) => result.status === 'rejected' && result.reason instanceof KmsError));
    await bucketKeys.dataKey(keyName, 'b', {});
    assert.equal(fake.calls.generate, 2);
    assert.deepEqual(bucketKeys.stats(), { generated: 1, reused: 0 });
  });

  test('clear() forgets keys; maxEntries bounds the groups held', async () => {
    const fake = new CountingKms();
    const bucketKeys = new BucketKeys(fake, { maxEntries: 2 });
    const first = await bucketKeys.dataKey(keyName, 'a', {});
    bucketKeys.clear();
    assert.notDeepEqual((await bucketKeys.dataKey(keyName, 'a', {})).plaintext, first.plaintext);
    await bucketKeys.dataKey(keyName, 'b', {});
    await bucketKeys.dataKey(keyName, 'c', {}); // evicts a
    assert.equal(fake.calls.generate, 4);
    await bucketKeys.dataKey(keyName, 'a', {});
    assert.equal(fake.calls.generate, 5);
    assert.throws(() => new BucketKeys(fake, { maxUses: 0 }), RangeError);
  });

  test('with the cache: PUTs of 1,000 objects → 1 generateKey, their GETs → 0 decrypts (cold: 1)', async () => {
    const fake = new CountingKms();
    const cache = new CachingKms(fake);
    const bucketKeys = new BucketKeys(cache);
    const objects: Array<DataKey & { context: Buffer }> = [];
    for (let i = 0; i < 1000; i++) objects.push(await bucketKeys.dataKey(keyName, 'b', { tenant: 't1' }));
    const reads = await Promise.all(objects.map((object) => cache.decrypt(keyName, object.ciphertext, bucketKeyContext('b', { tenant: 't1' }))));
    reads.forEach((plaintext, i) => assert.deepEqual(plaintext, objects[i]!.plaintext));
    assert.deepEqual(fake.calls, { generate: 1, decrypt: 0, create: 0, describe: 0 });
    cache.clear();
    await Promise.all(objects.map((object) => cache.decrypt(keyName, object.ciphertext, object.context)));
    assert.equal(fake.calls.decrypt, 1);
  });
});
