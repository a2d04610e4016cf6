// A server's Prometheus counters around a compare step (`--case …,metrics`): what the server did during the
// measured requests besides answering them. Coffer's KMS calls are the case in point: every SSE object a
// compare reads was written moments before, so an SSE GET step should make no KMS call at all, and a key
// cache that dropped fresh keys (session 17's CLOCK bug) showed only there. Coffer and MinIO serve the
// counters at /minio/v2/metrics/cluster; Coffer takes a SigV4-signed GET, which S3Client.send makes.

import type { S3Client } from '../load/s3-client.ts';

export const metricsPath = '/minio/v2/metrics/cluster';

/** Counter series (`name{labels}` → value): the `*_total` lines of a Prometheus text exposition. */
export type Counters = ReadonlyMap<string, number>;

export function parseCounters(text: string): Map<string, number> {
  const counters = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([A-Za-z_:][A-Za-z0-9_:]*_total(?:\{[^}]*\})?)\s+(\S+)/.exec(line);
    if (match === null) continue;
    const value = Number(match[2]);
    if (Number.isFinite(value)) counters.set(match[1]!, value);
  }
  return counters;
}

/** The counters now, or the reason they could not be read. */
export async function scrapeCounters(client: S3Client): Promise<Counters | Error> {
  try {
    const response = await client.send('GET', metricsPath, {}, [], 'text');
    if (response.status !== 200) return new Error(`${metricsPath} answered ${response.status}`);
    return parseCounters(response.text);
  } catch (error) {
    return error instanceof Error ? error : new Error(String(error));
  }
}

/** The series that changed from `before` to `after`, by how much (a series new in `after` counts from 0). */
export function counterChanges(before: Counters, after: Counters): Record<string, number> {
  const changes: Record<string, number> = {};
  for (const [series, value] of after) {
    const delta = value - (before.get(series) ?? 0);
    if (delta !== 0) changes[series] = delta;
  }
  return changes;
}

const kmsCallsSeries = 'coffer_kms_calls_total';

/** KMS calls (all operations) among the changes; undefined when the server reports no such counter. */
export function kmsCallsIn(changes: Readonly<Record<string, number>>, after: Counters): number | undefined {
  let reported = false;
  for (const series of after.keys()) if (series.startsWith(kmsCallsSeries)) reported = true;
  if (!reported) return undefined;
  let calls = 0;
  for (const [series, delta] of Object.entries(changes)) if (series.startsWith(kmsCallsSeries)) calls += delta;
  return calls;
}
