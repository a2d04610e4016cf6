// Operator endpoints beside S3: Prometheus metrics (MinIO's path, /minio/v2/metrics/cluster) and
// admin info (/coffer/admin/v1/info), both signed with the root credentials like any S3 request.
import fs from 'node:fs/promises';
import type { RequestContext } from '../context.ts';

export async function metrics(ctx: RequestContext): Promise<void> {
  const gauges = [...ctx.observe.gauges()];
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
  const drives = await Promise.all(
    ctx.observe.drives.map(async (drive) => {
      const usage = await driveUsage(drive);
      return { path: drive, state: usage ? 'ok' : 'offline', totalBytes: usage?.totalBytes ?? 0, freeBytes: usage?.freeBytes ?? 0 };
    }),
  );
  const info = {
    version: ctx.observe.version,
    uptimeSeconds: Math.floor((Date.now() - ctx.metrics.startedMs) / 1000),
    drives,
    kms: await ctx.observe.kmsStatus(),
    buckets: (await ctx.engine.listBuckets()).length,
  };
  ctx.res.send(200, [['Content-Type', 'application/json']], JSON.stringify(info));
}
