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
  const inputs = ['SSE-S3', 'bucket', 'object', 'key', 'iv', 'data-key', undefined, undefined] as const;

  it('returns copies, so a caller that wipes its key does not wipe the cache', () => {
    const cache = new ObjectKeyCache();
    const key = randomBytes(32);
    cache.set('a', inputs, key);
    const first = cache.get('a', inputs)!;
    assert.deepEqual(first, key);
    first.fill(0);
    assert.deepEqual(cache.get('a', inputs), key);
    assert.equal(cache.hits, 2);
    assert.equal(cache.get('b', inputs), undefined);
    assert.equal(cache.misses, 1);
  });

  it('hits only when every input is equal, string for string', () => {
    const cache = new ObjectKeyCache();
    const key = randomBytes(32);
    cache.set('sealed', inputs, key);
    // Fresh strings with the same text, as a metadata decode makes them: a hit.
    assert.deepEqual(cache.get('sealed', inputs.map((input) => (input === undefined ? undefined : `${input} `.slice(0, -1)))), key);
    for (let index = 0; index < inputs.length; index++) {
      const changed: Array<string | undefined> = [...inputs];
      changed[index] = inputs[index] === undefined ? '' : `${inputs[index]}x`;
      assert.equal(cache.get('sealed', changed), undefined, `input ${index} changed`);
    }
    assert.equal(cache.get('sealed', inputs.slice(0, -1)), undefined, 'fewer inputs');
    assert.equal(cache.misses, inputs.length + 1);
    // The latest unwrap replaces the entry: the old inputs miss, the new ones hit.
    const other = ['SSE-S3', 'bucket', 'copy', 'key', 'iv', 'data-key', undefined, undefined];
    cache.set('sealed', other, Buffer.alloc(32, 9));
    assert.equal(cache.get('sealed', inputs), undefined);
    assert.deepEqual(cache.get('sealed', other), Buffer.alloc(32, 9));
    assert.equal(cache.size, 1);
  });

  it('evicts beyond maxEntries what was not used since the hand last passed', () => {
    const cache = new ObjectKeyCache({ maxEntries: 3 });
    for (const [index, id] of ['a', 'b', 'c', 'd'].entries()) cache.set(id, inputs, Buffer.alloc(32, index + 1));
    assert.equal(cache.size, 3);
    assert.equal(cache.get('a', inputs), undefined); // all new: the first in the ring went
    assert.ok(cache.get('b', inputs)); // b used since the hand passed it
    cache.set('e', inputs, Buffer.alloc(32, 5));
    assert.equal(cache.get('c', inputs), undefined);
    assert.deepEqual(cache.get('b', inputs), Buffer.alloc(32, 2));
    assert.deepEqual(cache.get('d', inputs), Buffer.alloc(32, 4));
    assert.deepEqual(cache.get('e', inputs), Buffer.alloc(32, 5));
  });

  it('keeps the keys of new objects until their first read once full (PUT, then GET, at the bound)', () => {
    const cache = new ObjectKeyCache({ maxEntries: 1000 });
    const key = randomBytes(32);
    // Earlier rounds: written and read back.
    for (let index = 0; index < 900; index++) {
      cache.set(`old${index}`, inputs, key);
      assert.ok(cache.get(`old${index}`, inputs));
    }
    // This round's 400 uploads overflow the cache; every one of them is still there for its first GET.
    for (let index = 0; index < 400; index++) cache.set(`new${index}`, inputs, key);
    for (let index = 0; index < 400; index++) assert.ok(cache.get(`new${index}`, inputs), `new${index}`);
    assert.equal(cache.misses, 0);
  });

  it('expires entries after ttlMs from when they were stored', () => {
    let nowMs = 1_000;
    const cache = new ObjectKeyCache({ ttlMs: 100, now: () => nowMs });
    cache.set('a', inputs, Buffer.alloc(32, 7));
    nowMs += 99;
    assert.ok(cache.get('a', inputs));
    nowMs += 1;
    assert.equal(cache.get('a', inputs), undefined);
    assert.equal(cache.size, 0);
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
    // The same sealed key with another IV or sealed data key: a miss too, and the unwrap refuses it.
    for (const field of [recordKeys.iv, recordKeys.kmsDataKey]) {
      const bytes = Buffer.from(envelope.record[field]!, 'base64');
      bytes[3]! ^= 1;
      const changed = { ...envelope.record, [field]: bytes.toString('base64') };
      await assert.rejects(openEnvelope(changed, 'bucket', 'object', undefined, settings), (error: unknown) => error instanceof S3Error, field);
    }
    assert.equal(cache.hits, 1);
    // The untouched record still hits: the failed unwraps cached nothing over it.
    assert.deepEqual(await openEnvelope(envelope.record, 'bucket', 'object', undefined, settings), envelope.objectKey);
    assert.equal(cache.hits, 2);
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
