// Operator endpoints beside S3: Prometheus metrics (MinIO's path, /minio/v2/metrics/cluster) and
// admin info (/coffer/admin/v1/info), both signed with the root credentials like any S3 request.
import fs from 'node:fs/promises';
import type { HealProgress, HealSummary } from '../../engine/types.ts';
import type { RequestContext } from '../context.ts';
import { S3Error } from '../errors.ts';

/** Progress lines of a heal are sent at most this often (the final line always). */
const healProgressIntervalMs = 250;
/** Progress lines held for a client that does not read them: beyond this, progress is dropped (not the end). */
const healPendingLinesMax = 1000;

export async function metrics(ctx: RequestContext): Promise<void> {
  const gauges = [...ctx.observe.gauges()];
  const erasure = ctx.engine.erasure;
  if (erasure !== undefined) {
    const states = erasure.drives();
    gauges.push(
      { name: 'coffer_erasure_shard_errors_total', help: 'shard or metadata copies that failed verification or could not be read', type: 'counter', samples: [{ value: erasure.shardErrors }] },
      { name: 'coffer_heal_objects_total', help: 'objects rebuilt on at least one drive', type: 'counter', samples: [{ value: erasure.objectsHealed }] },
      { name: 'coffer_drives_offline', help: 'drives of the erasure set that are offline', type: 'gauge', samples: [{ value: states.filter((drive) => drive.state === 'offline').length }] },
      { name: 'coffer_drives_healing', help: 'drives of the erasure set being healed', type: 'gauge', samples: [{ value: states.filter((drive) => drive.state === 'healing').length }] },
    );
  }
  for (const [index, drive] of ctx.observe.drives.entries()) {
    const usage = await driveUsage(drive);
    const labels = { drive: String(index + 1) };
    gauges.push(
      { name: 'coffer_drive_online', help: '1 when the drive answers', type: 'gauge', samples: [{ labels, value: usage ? 1 : 0 }] },
      { name: 'coffer_drive_total_bytes', help: 'drive capacity', type: 'gauge', samples: [{ labels, value: usage?.totalBytes ?? 0 }] },
      { name: 'coffer_drive_free_bytes', help: 'drive free space', type: 'gauge', samples: [{ labels, value: usage?.freeBytes ?? 0 }] },
    );
  }
  ctx.res.send(200, [['Content-Type', 'text/plain; version=0.0.4; charset=utf-8']], ctx.metrics.render(gauges));
}

async function driveUsage(drive: string): Promise<{ totalBytes: number; freeBytes: number } | undefined> {
  try {
    const stats = await fs.statfs(drive);
    return { totalBytes: stats.blocks * stats.bsize, freeBytes: stats.bavail * stats.bsize };
  } catch {
    return undefined;
  }
}

export async function adminInfo(ctx: RequestContext): Promise<void> {
  const erasure = ctx.engine.erasure;
  const states = erasure?.drives();
  const drives = await Promise.all(
    ctx.observe.drives.map(async (drive, index) => {
      const usage = await driveUsage(drive);
      const state = states?.[index]?.state ?? (usage ? 'ok' : 'offline');
      return { path: drive, state, totalBytes: usage?.totalBytes ?? 0, freeBytes: usage?.freeBytes ?? 0 };
    }),
  );
  const info = {
    version: ctx.observe.version,
    uptimeSeconds: Math.floor((Date.now() - ctx.metrics.startedMs) / 1000),
    drives,
    ...(erasure === undefined
      ? {}
      : { erasure: { sets: erasure.sets, setSize: erasure.setSize, dataShards: erasure.dataShards, parityShards: erasure.parityShards, shardErrors: erasure.shardErrors, objectsHealed: erasure.objectsHealed } }),
    kms: await ctx.observe.kmsStatus(),
    buckets: (await ctx.engine.listBuckets()).length,
  };
  ctx.res.send(200, [['Content-Type', 'application/json']], JSON.stringify(info));
}

/**
 * POST /coffer/admin/v1/heal?bucket=B&prefix=P: deep-heal every object under bucket/prefix (every bucket
 * without `bucket`), answering newline-delimited JSON as it goes: progress lines
 * `{"type":"progress",scanned,healed,failed,current}` and a last line `{"type":"done",scanned,healed,failed}`
 * (or `{"type":"error",message}`).
 */
export async function adminHeal(ctx: RequestContext): Promise<void> {
  const erasure = ctx.engine.erasure;
  if (erasure === undefined) throw new S3Error('NotImplemented', 'Healing needs a multi-drive (erasure-coded) deployment.');
  const bucket = ctx.req.query.get('bucket') ?? '';
  const prefix = ctx.req.query.get('prefix') ?? '';
  if (bucket === '' && prefix !== '') throw new S3Error('InvalidArgument', 'A prefix needs a bucket.');
  if (bucket !== '') await ctx.engine.headBucket(bucket); // NoSuchBucket as a proper S3 error, before streaming

  const pending: string[] = [];
  let wake: (() => void) | undefined;
  let finished = false;
  const push = (line: object): void => {
    pending.push(`${JSON.stringify(line)}\n`);
    wake?.();
  };
  let lastProgressMs = 0;
  const run = erasure
    .heal(bucket, prefix, (progress: HealProgress) => {
      const now = Date.now();
      if (pending.length >= healPendingLinesMax) return;
      if (now - lastProgressMs < healProgressIntervalMs && progress.result !== 'failed') return;
      lastProgressMs = now;
      push({ type: 'progress', scanned: progress.scanned, healed: progress.healed, failed: progress.failed, current: progress.current, result: progress.result });
    })
    .then(
      (summary: HealSummary) => push({ type: 'done', scanned: summary.scanned, healed: summary.healed, failed: summary.failed }),
      (error: unknown) => push({ type: 'error', message: error instanceof Error ? error.message : String(error) }),
    )
    .finally(() => {
      finished = true;
      wake?.();
    });
  async function* lines(): AsyncGenerator<string> {
    for (;;) {
      if (pending.length > 0) {
        yield pending.splice(0).join('');
        continue;
      }
      if (finished) return;
      await new Promise<void>((resolve) => {
        wake = () => {
          wake = undefined;
          resolve();
        };
      });
    }
  }
  await ctx.res.streamChunked(200, [['Content-Type', 'application/x-ndjson']], lines());
  await run;
}
