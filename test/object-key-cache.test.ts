// The cache of unwrapped SSE-S3/SSE-KMS object keys (engine/kms/object-key-cache.ts) and how openEnvelope
// uses it: hits only for byte-identical metadata, never for SSE-C, bounded, expiring, zeroed.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { createEnvelope, openEnvelope, recordKeys, type SseSettings } from '../api/sse.ts';
import { S3Error } from '../api/errors.ts';
import { BuiltinKms } from '../engine/kms/builtin.ts';
import { ObjectKeyCache } from '../engine/kms/object-key-cache.ts';

function settingsWith(objectKeys: ObjectKeyCache | undefined): SseSettings {
  const kms = BuiltinKms.fromMasterKey('test-key', randomBytes(32));
  return { kms, autoEncryption: false, allowSseCOverHttp: true, ...(objectKeys ? { objectKeys } : {}) };
}

describe('ObjectKeyCache', () => {
  it('returns copies, so a caller that wipes its key does not wipe the cache', () => {
    const cache = new ObjectKeyCache();
    const key = randomBytes(32);
    cache.set('a', key);
    const first = cache.get('a')!;
    assert.deepEqual(first, key);
    first.fill(0);
    assert.deepEqual(cache.get('a'), key);
    assert.equal(cache.hits, 2);
    assert.equal(cache.get('b'), undefined);
    assert.equal(cache.misses, 1);
  });

  it('evicts the least recently used entry beyond maxEntries', () => {
    const cache = new ObjectKeyCache({ maxEntries: 2 });
    cache.set('a', Buffer.alloc(32, 1));
    cache.set('b', Buffer.alloc(32, 2));
    assert.ok(cache.get('a')); // a is now the most recently used
    cache.set('c', Buffer.alloc(32, 3));
    assert.equal(cache.size, 2);
    assert.equal(cache.get('b'), undefined);
    assert.deepEqual(cache.get('a'), Buffer.alloc(32, 1));
    assert.deepEqual(cache.get('c'), Buffer.alloc(32, 3));
  });

  it('expires entries after ttlMs from when they were stored', () => {
    let nowMs = 1_000;
    const cache = new ObjectKeyCache({ ttlMs: 100, now: () => nowMs });
    cache.set('a', Buffer.alloc(32, 7));
    nowMs += 99;
    assert.ok(cache.get('a'));
    nowMs += 1;
    assert.equal(cache.get('a'), undefined);
    assert.equal(cache.size, 0);
  });

  it('ids are length-prefixed: no two different input lists share one', () => {
    assert.notEqual(ObjectKeyCache.id(['ab', 'c']), ObjectKeyCache.id(['a', 'bc']));
    assert.notEqual(ObjectKeyCache.id(['a;', 'b']), ObjectKeyCache.id(['a', ';b']));
    assert.notEqual(ObjectKeyCache.id([undefined, 'x']), ObjectKeyCache.id(['', 'x']));
    assert.equal(ObjectKeyCache.id(['a', undefined]), ObjectKeyCache.id(['a', undefined]));
  });

  it('refuses nonsense limits', () => {
    assert.throws(() => new ObjectKeyCache({ maxEntries: 0 }));
    assert.throws(() => new ObjectKeyCache({ ttlMs: 0 }));
  });
});

describe('openEnvelope with an object key cache', () => {
  it('serves the key stored at PUT, and unwraps again (through the KMS) when any input differs', async () => {
    const cache = new ObjectKeyCache();
    const settings = settingsWith(cache);
    const envelope = await createEnvelope({ type: 'SSE-S3' }, 'bucket', 'object', settings, false);
    assert.deepEqual(await openEnvelope(envelope.record, 'bucket', 'object', undefined, settings), envelope.objectKey);
    assert.equal(cache.hits, 1);

    // Same record under another name: a miss, and the unwrap (bound to bucket/object) refuses it.
    await assert.rejects(openEnvelope(envelope.record, 'bucket', 'other', undefined, settings), (error: unknown) => error instanceof S3Error);
    // A tampered sealed key: a miss, and authentication fails instead of a cached answer.
    const sealed = Buffer.from(envelope.record[recordKeys.s3SealedKey]!, 'base64');
    sealed[5]! ^= 1;
    const tampered = { ...envelope.record, [recordKeys.s3SealedKey]: sealed.toString('base64') };
    await assert.rejects(openEnvelope(tampered, 'bucket', 'object', undefined, settings), (error: unknown) => error instanceof S3Error);
    assert.equal(cache.hits, 1);
  });

  it('gives the same key with and without the cache', async () => {
    const settings = settingsWith(undefined);
    const envelope = await createEnvelope({ type: 'SSE-KMS', keyId: undefined, context: { project: 'x' } }, 'b', 'k', settings, false);
    const cached = { ...settings, objectKeys: new ObjectKeyCache() };
    assert.deepEqual(await openEnvelope(envelope.record, 'b', 'k', undefined, cached), envelope.objectKey);
    assert.equal(cached.objectKeys.misses, 1);
    assert.deepEqual(await openEnvelope(envelope.record, 'b', 'k', undefined, cached), envelope.objectKey);
    assert.equal(cached.objectKeys.hits, 1);
  });

  it('never caches SSE-C keys: a wrong customer key fails after a right one succeeded', async () => {
    const cache = new ObjectKeyCache();
    const settings = settingsWith(cache);
    const customerKey = randomBytes(32);
    const request = { type: 'SSE-C' as const, key: customerKey, keyMd5Base64: '' };
    const envelope = await createEnvelope(request, 'b', 'k', settings, false);
    const customer = request;
    assert.deepEqual(await openEnvelope(envelope.record, 'b', 'k', customer, settings), envelope.objectKey);
    await assert.rejects(
      openEnvelope(envelope.record, 'b', 'k', { type: 'SSE-C', key: randomBytes(32), keyMd5Base64: '' }, settings),
      (error: unknown) => error instanceof S3Error && error.code === 'AccessDenied',
    );
    assert.equal(cache.size, 0);
  });
});
