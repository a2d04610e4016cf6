// What `coffer server` reports on /minio/v2/metrics/cluster and /coffer/admin/v1/info beyond request
// counters: KMS calls and key-cache behaviour, KES client health, bucket keys, worker-pool queue depth, the
// native addons in use, direct vs buffered data writes, and recycled coffer.meta files.
import { readFileSync } from 'node:fs';
import type { Observability } from '../api/context.ts';
import type { Gauge } from '../api/metrics.ts';
import type { BucketKeys } from '../engine/kms/bucket-keys.ts';
import type { CachingKms } from '../engine/kms/cache.ts';
import { KesKms } from '../engine/kms/kes-client.ts';
import type { Kms } from '../engine/kms/kms.ts';
import { fileWriteCounters } from '../engine/file-writer.ts';
import { metaRecycleCounters } from '../engine/meta-recycler.ts';
import { nativeFsStatus } from '../engine/native-fs.ts';
import { nativeHashStatus } from '../engine/crypto/sha256.ts';
import { md5Kernel } from '../workers/md5-kernel.ts';
import { nativeGcmStatus } from '../workers/native-gcm.ts';
import type { BlockCipherPool } from '../workers/pool.ts';

/** "native (OpenSSL 3.0.19 …)" → "native"; "node:crypto (COFFER_NATIVE_GCM=off)" → "node:crypto". */
function implementationOf(status: string): string {
  return status.split(' ')[0] ?? status;
}

function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

export function serverObservability(options: {
  readonly drives: readonly string[];
  readonly kms: CachingKms;
  readonly innerKms: Kms;
  readonly bucketKeys?: BucketKeys;
  readonly pool: BlockCipherPool;
}): Observability {
  const { kms, innerKms, bucketKeys, pool } = options;
  const counter = (name: string, help: string, samples: Gauge['samples']): Gauge => ({ name, help, type: 'counter', samples });
  const gauge = (name: string, help: string, samples: Gauge['samples']): Gauge => ({ name, help, type: 'gauge', samples });
  return {
    version: packageVersion(),
    drives: options.drives,
    gauges: () => {
      const stats = kms.stats();
      const families: Gauge[] = [
        counter('coffer_kms_calls_total', 'calls made to the KMS, by operation', Object.entries(stats.kmsCalls).map(([op, value]) => ({ labels: { op }, value }))),
        counter('coffer_kms_cache_hits_total', 'data-key unseals served from the key cache', [{ value: stats.hits }]),
        counter('coffer_kms_cache_misses_total', 'data-key unseals that needed the KMS', [{ value: stats.misses }]),
        counter('coffer_kms_cache_singleflight_joins_total', 'misses that joined a KMS call already in flight', [{ value: stats.singleflightJoins }]),
        counter('coffer_kms_batches_total', 'groups of KMS calls dispatched together', [{ value: stats.batches }]),
        gauge('coffer_kms_batch_size_max', 'largest batch of KMS calls so far', [{ value: stats.batchSizeMax }]),
        gauge('coffer_kms_cache_entries', 'unsealed data keys held in memory', [{ value: stats.entries }]),
        gauge('coffer_worker_pool_queue_depth', 'DARE blocks queued or running in the worker pool', [{ value: pool.queueDepth }]),
        gauge('coffer_worker_pool_threads', 'worker threads (0 = inline)', [{ value: pool.threads }]),
        counter('coffer_md5_batches_total', 'tasks that hashed the next blocks of large uploads (ETag MD5s)', [{ value: pool.md5Counters.batches }]),
        counter('coffer_md5_batch_lanes_total', 'upload blocks those tasks hashed; lanes / batches = uploads per task', [{ value: pool.md5Counters.lanes }]),
        gauge('coffer_native_info', 'which AES-GCM, one-shot SHA-256, ETag MD5 and metadata I/O run (1 per implementation in use)', [
          { labels: { component: 'aes_gcm', implementation: implementationOf(nativeGcmStatus) }, value: 1 },
          { labels: { component: 'sha256', implementation: implementationOf(nativeHashStatus) }, value: 1 },
          { labels: { component: 'md5', implementation: implementationOf(md5Kernel.status) }, value: 1 },
          { labels: { component: 'metadata_io', implementation: implementationOf(nativeFsStatus) }, value: 1 },
        ]),
        counter('coffer_file_write_bytes_total', 'object data written to drives, with O_DIRECT or through the page cache', [
          { labels: { path: 'direct' }, value: fileWriteCounters.directBytes },
          { labels: { path: 'buffered' }, value: fileWriteCounters.bufferedBytes },
        ]),
        counter('coffer_meta_files_retired_total', 'deleted objects\' coffer.meta files kept for reuse', [{ value: metaRecycleCounters.retired }]),
        counter('coffer_meta_files_reused_total', 'commits that rewrote a retired coffer.meta instead of creating a file', [{ value: metaRecycleCounters.reused }]),
      ];
      if (innerKms instanceof KesKms) {
        const kes = innerKms.stats();
        families.push(
          counter('coffer_kes_requests_total', 'requests sent to KES', [{ value: kes.requests }]),
          counter('coffer_kes_errors_total', 'KES requests that failed', [{ value: kes.errors }]),
          counter('coffer_kes_failovers_total', 'times a KES endpoint failed and another was tried', [{ value: kes.failovers }]),
          gauge('coffer_kes_benched_endpoints', 'KES endpoints currently benched', [{ value: kes.benchedEndpoints.length }]),
        );
      }
      if (bucketKeys) {
        const bucket = bucketKeys.stats();
        families.push(
          counter('coffer_kms_bucket_keys_generated_total', 'bucket keys generated', [{ value: bucket.generated }]),
          counter('coffer_kms_bucket_keys_reused_total', 'objects sealed with an already-used bucket key', [{ value: bucket.reused }]),
        );
      }
      return families;
    },
    kmsStatus: async () => {
      try {
        const status = await kms.status();
        const online = Object.values(status.endpoints).some((state) => state === 'online');
        return { name: status.name, defaultKey: status.defaultKeyName, status: online ? 'online' : 'offline', endpoints: status.endpoints };
      } catch {
        return { name: 'unknown', defaultKey: kms.defaultKeyName, status: 'offline', endpoints: {} };
      }
    },
  };
}
