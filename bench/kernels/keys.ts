// Per-request key work of SSE-S3/SSE-KMS: random bytes (node:crypto per call vs the pooled CSPRNG,
// workers/random-pool.ts), the object-key cache at its 10,000-entry bound (CLOCK, engine/kms/clock-map.ts,
// against the Map-reinsertion LRU it replaced), the key derivations and seals of one object key, and a whole
// SSE-S3 envelope as the server makes it for each new object (built-in KMS behind its key cache).

import { randomBytes } from 'node:crypto';
import { createEnvelope, type SseSettings } from '../../api/sse.ts';
import { BuiltinKms } from '../../engine/kms/builtin.ts';
import { CachingKms } from '../../engine/kms/cache.ts';
import { generateObjectKey, sealObjectKey, unsealObjectKey } from '../../engine/crypto/keys.ts';
import { ObjectKeyCache, type ObjectKeyInputs } from '../../engine/kms/object-key-cache.ts';
import { secureRandomBytes } from '../../workers/random-pool.ts';
import type { KernelSpec } from './harness.ts';

const cacheEntries = 10_000;
/** sealed keys and inputs shaped like an SSE-S3 object's: type, bucket, key, KMS key, IV, sealed data key */
const sealedKeyOf = (index: number): string => `${index}`.padStart(88, 's');
const inputsOf = (index: number): ObjectKeyInputs => ['SSE-S3', 'bucket', `prefix/object-${index}`, 'key', 'i'.repeat(44), 'd'.repeat(104), undefined, undefined];

export function keyKernels(): KernelSpec[] {
  const key = randomBytes(32);
  const full = new ObjectKeyCache({ maxEntries: cacheEntries });
  for (let index = 0; index < cacheEntries; index++) full.set(sealedKeyOf(index), inputsOf(index), key);
  const hot = cacheEntries - 1;
  // Built apart from the stored ones: equal strings, not the same objects, as after a metadata decode. Built
  // once, so the hit measures the lookup and not the making of its arguments.
  const hotSealedKey = sealedKeyOf(hot);
  const hotInputs = inputsOf(hot);
  const churn = new ObjectKeyCache({ maxEntries: cacheEntries });
  for (let index = 0; index < cacheEntries; index++) churn.set(sealedKeyOf(index), inputsOf(index), key);
  let inserted = cacheEntries;

  // The replaced design, for comparison: recency by delete + set on every hit.
  const lru = new Map<string, Buffer>();
  for (let index = 0; index < cacheEntries; index++) lru.set(sealedKeyOf(index), key);

  const externalKey = randomBytes(32);
  const objectKey = generateObjectKey(externalKey);
  const sealed = sealObjectKey(objectKey, externalKey, 'SSE-S3', 'bucket', 'prefix/object');
  // As cli/server-command.ts sets them up: the object-key cache gets each new key, the KMS cache does not.
  const envelopeSettings: SseSettings = {
    kms: new CachingKms(BuiltinKms.fromMasterKey('bench-key', randomBytes(32)), { cacheGeneratedKeys: false }),
    objectKeys: new ObjectKeyCache({ maxEntries: cacheEntries }),
    autoEncryption: false,
    allowSseCOverHttp: false,
  };
  let envelopes = 0;
  let sink = 0;
  return [
    { group: 'keys', name: 'randomBytes(32) (node:crypto, one DRBG call each)', fn: () => { sink += randomBytes(32)[0]!; } },
    { group: 'keys', name: 'secureRandomBytes(32) (pooled, random-pool.ts)', fn: () => { sink += secureRandomBytes(32)[0]!; } },
    { group: 'keys', name: `object-key cache hit, ${cacheEntries} entries (CLOCK)`, fn: () => { sink += full.get(hotSealedKey, hotInputs)!.length; } },
    { group: 'keys', name: `object-key cache insert evicting, ${cacheEntries} entries`, fn: () => { churn.set(sealedKeyOf(inserted), inputsOf(inserted), key); inserted++; } },
    {
      group: 'keys',
      name: `Map LRU hit (delete + set), ${cacheEntries} entries (replaced)`,
      fn: () => {
        const value = lru.get(hotSealedKey)!;
        lru.delete(hotSealedKey);
        lru.set(hotSealedKey, value);
        sink += value.length;
      },
    },
    { group: 'keys', name: 'generateObjectKey (HMAC-SHA256)', fn: () => { sink += generateObjectKey(externalKey).length; } },
    { group: 'keys', name: 'sealObjectKey (KEK HMAC + DARE seal)', fn: () => { sink += sealObjectKey(objectKey, externalKey, 'SSE-S3', 'bucket', 'prefix/object').sealedKey.length; } },
    {
      group: 'keys',
      name: 'createEnvelope SSE-S3 (data key, object key, seal, cache insert)',
      fn: async () => { sink += (await createEnvelope({ type: 'SSE-S3' }, 'bucket', `prefix/object-${envelopes++}`, envelopeSettings, false)).objectKey.length; },
    },
    { group: 'keys', name: 'unsealObjectKey (a key-cache miss)', fn: () => { sink += unsealObjectKey(sealed.sealedKey, sealed.iv, externalKey, 'SSE-S3', 'bucket', 'prefix/object').length; } },
  ];
}
