// coffer mb [--ignore-existing] [--region R] ALIAS/BUCKET...
// coffer rb [--force] ALIAS/BUCKET...
//
// rb refuses a bucket that still holds objects (S3's BucketNotEmpty) unless --force, which first deletes every
// object (DeleteObjects, 1000 keys per request) and aborts unfinished multipart uploads.

import { escapeXml } from '../../api/xml.ts';
import { CommandError, remotePath, requireBucket, setUpCommand, UsageError, type ClientContext, type RemotePath } from './common.ts';
import { abortMultipartUpload, deleteBatchKeysMax, deleteObjects, listMultipartUploads, listObjects } from './operations.ts';
import { S3ClientError } from './s3-client.ts';

export const mbUsage = 'usage: coffer mb [--ignore-existing] [--region REGION] [--json] ALIAS/BUCKET...';
export const rbUsage = 'usage: coffer rb [--force] [--json] ALIAS/BUCKET...';

function bucketOnly(ctx: ClientContext, text: string, command: string): RemotePath {
  const path = remotePath(ctx, text);
  requireBucket(path, command);
  if (path.key !== '') throw new UsageError(`${command} takes ALIAS/BUCKET, not an object path ('${text}')`);
  return path;
}

export async function runMb(args: readonly string[]): Promise<number> {
  const setup = await setUpCommand(args, { 'ignore-existing': { type: 'boolean', short: 'p', default: false }, region: { type: 'string' } }, mbUsage);
  if (setup === undefined) return 0;
  const { values, positionals, ctx } = setup;
  if (positionals.length === 0) throw new UsageError('mb needs ALIAS/BUCKET');
  for (const text of positionals) {
    const path = bucketOnly(ctx, text, 'mb');
    const region = values.region;
    const body = region === undefined || region === 'us-east-1' ? undefined : Buffer.from(
      `<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><LocationConstraint>${escapeXml(region)}</LocationConstraint></CreateBucketConfiguration>`,
    );
    try {
      await path.client.send({ method: 'PUT', bucket: path.bucket, ...(body ? { body } : {}) });
    } catch (error) {
      const exists = error instanceof S3ClientError && (error.code === 'BucketAlreadyOwnedByYou' || error.code === 'BucketAlreadyExists');
      if (!(exists && values['ignore-existing'])) throw error;
    }
    ctx.out.line(`Bucket created successfully \`${path.text}\`.`);
    ctx.out.json({ status: 'success', bucket: path.bucket, region: region ?? path.client.region });
  }
  return 0;
}

/** Deletes every object under `prefix` (DeleteObjects, 1000 keys per request); returns how many. */
export async function emptyPrefix(path: RemotePath, prefix: string, onDeleted: (key: string) => void): Promise<number> {
  let batch: string[] = [];
  let deleted = 0;
  const flush = async (): Promise<void> => {
    const failures = await deleteObjects(path.client, path.bucket, batch);
    const failed = new Set(failures.map((failure) => failure.key));
    for (const key of batch) if (!failed.has(key)) onDeleted(key);
    deleted += batch.length - failures.length;
    if (failures.length > 0) {
      const first = failures[0]!;
      throw new CommandError(`could not delete ${failures.length} object(s), first ${path.alias.name}/${path.bucket}/${first.key}: ${first.message} (${first.code})`, first.code);
    }
    batch = [];
  };
  // Listing while deleting is safe with ListObjectsV2: the continuation token is a key position, not an offset.
  for await (const entry of listObjects(path.client, path.bucket, prefix, '')) {
    if (entry.kind !== 'object') continue;
    batch.push(entry.key);
    if (batch.length === deleteBatchKeysMax) await flush();
  }
  if (batch.length > 0) await flush();
  return deleted;
}

export async function runRb(args: readonly string[]): Promise<number> {
  const setup = await setUpCommand(args, { force: { type: 'boolean', default: false } }, rbUsage);
  if (setup === undefined) return 0;
  const { values, positionals, ctx } = setup;
  if (positionals.length === 0) throw new UsageError('rb needs ALIAS/BUCKET');
  for (const text of positionals) {
    const path = bucketOnly(ctx, text, 'rb');
    if (values.force) {
      await emptyPrefix(path, '', () => undefined);
      for await (const upload of listMultipartUploads(path.client, path.bucket, '')) {
        await abortMultipartUpload(path.client, path.bucket, upload.key, upload.uploadId);
      }
    }
    try {
      await path.client.send({ method: 'DELETE', bucket: path.bucket });
    } catch (error) {
      if (error instanceof S3ClientError && error.code === 'BucketNotEmpty') {
        throw new CommandError(`\`${path.text}\` is not empty: use 'coffer rb --force ${path.text}' to remove it with everything in it`, 'BucketNotEmpty');
      }
      throw error;
    }
    ctx.out.line(`Removed \`${path.text}\` successfully.`);
    ctx.out.json({ status: 'success', bucket: path.bucket });
  }
  return 0;
}
