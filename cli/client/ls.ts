// coffer ls ALIAS[/BUCKET[/PREFIX]] [--recursive]
//
// As mc shows it: "[2026-11-27 12:39:48 UTC]  1.0MiB STANDARD name" per object, "… 0B name/" per bucket or
// folder, names relative to the folder listed. `ALIAS/BUCKET/NAME` without a trailing slash shows the object
// NAME if there is one, else the folder NAME/ if there is one, else what starts with NAME (as mc does).

import { humanBytes, humanDate, remotePath, setUpCommand, UsageError, type ClientContext, type RemotePath } from './common.ts';
import { listBuckets, listObjects, type ListEntry } from './operations.ts';

export const lsUsage = 'usage: coffer ls [--recursive] [--json] ALIAS[/BUCKET[/PREFIX]]...';

function sizeColumn(bytes: number): string {
  return humanBytes(bytes).replace(' ', '').padStart(7);
}

function printEntry(ctx: ClientContext, base: RemotePath, entry: ListEntry, shownName: string): void {
  if (entry.kind === 'prefix') {
    const now = new Date();
    ctx.out.line(`[${humanDate(now)}]${sizeColumn(0)} ${shownName}`);
    ctx.out.json({ status: 'success', type: 'folder', lastModified: now.toISOString(), size: 0, key: shownName, url: `${base.alias.url}/${base.bucket}/` });
    return;
  }
  ctx.out.line(`[${humanDate(entry.lastModified)}]${sizeColumn(entry.sizeBytes)} ${entry.storageClass} ${shownName}`);
  ctx.out.json({
    status: 'success', type: 'file', lastModified: entry.lastModified.toISOString(), size: entry.sizeBytes, key: shownName,
    etag: entry.etag, url: `${base.alias.url}/${base.bucket}/`, storageClass: entry.storageClass,
  });
}

async function listPath(ctx: ClientContext, path: RemotePath, recursive: boolean): Promise<number> {
  if (path.bucket === '') {
    const buckets = await listBuckets(path.client);
    if (recursive) {
      for (const bucket of buckets) await listPath(ctx, { ...path, bucket: bucket.name, key: '', text: `${path.alias.name}/${bucket.name}` }, true);
      return buckets.length;
    }
    for (const bucket of buckets) {
      ctx.out.line(`[${humanDate(bucket.created)}]${sizeColumn(0)} ${bucket.name}/`);
      ctx.out.json({ status: 'success', type: 'folder', lastModified: bucket.created.toISOString(), size: 0, key: `${bucket.name}/`, url: path.alias.url });
    }
    return buckets.length;
  }

  let prefix = path.key;
  if (prefix !== '' && !prefix.endsWith('/')) {
    // NAME: the object itself, else the folder NAME/, else everything starting with NAME
    let exact: ListEntry | undefined;
    let folder = false;
    for await (const entry of listObjects(path.client, path.bucket, prefix, '/')) {
      if (entry.kind === 'object' && entry.key === prefix) exact = entry;
      if (entry.kind === 'prefix' && entry.key === `${prefix}/`) folder = true;
      if (entry.key > `${prefix}/`) break;
    }
    if (exact !== undefined && !recursive) {
      printEntry(ctx, path, exact, prefix.slice(prefix.lastIndexOf('/') + 1));
      return 1;
    }
    if (folder) prefix = `${prefix}/`;
  }
  // names are shown relative to the folder the prefix is in
  const folderOf = prefix.slice(0, prefix.lastIndexOf('/') + 1);
  let count = 0;
  for await (const entry of listObjects(path.client, path.bucket, prefix, recursive ? '' : '/')) {
    printEntry(ctx, path, entry, entry.key.slice(folderOf.length));
    count++;
  }
  return count;
}

export async function runLs(args: readonly string[]): Promise<number> {
  const setup = await setUpCommand(args, { recursive: { type: 'boolean', short: 'r', default: false } }, lsUsage);
  if (setup === undefined) return 0;
  const { values, positionals, ctx } = setup;
  if (positionals.length === 0) throw new UsageError('ls needs ALIAS[/BUCKET[/PREFIX]]');
  for (const target of positionals) {
    const path = remotePath(ctx, target);
    await listPath(ctx, path, values.recursive);
  }
  return 0;
}
