// coffer rm ALIAS/BUCKET/OBJECT...
// coffer rm --recursive --force ALIAS/BUCKET[/PREFIX]...
//
// A single object is checked with HEAD first, so a typo says "does not exist" instead of S3's silent 204.
// --recursive needs --force (as in mc): it deletes the object PREFIX itself and everything under PREFIX/
// (or the whole bucket's content for ALIAS/BUCKET), 1000 keys per DeleteObjects request.

import { emptyPrefix } from './bucket.ts';
import { CommandError, remotePath, requireObject, setUpCommand, UsageError } from './common.ts';
import { headObjectIfExists } from './operations.ts';
import { S3ClientError } from './s3-client.ts';

export const rmUsage = 'usage: coffer rm [--json] ALIAS/BUCKET/OBJECT...\n       coffer rm --recursive --force [--json] ALIAS/BUCKET[/PREFIX]...';

export async function runRm(args: readonly string[]): Promise<number> {
  const setup = await setUpCommand(args, {
    recursive: { type: 'boolean', short: 'r', default: false },
    force: { type: 'boolean', default: false },
  }, rmUsage);
  if (setup === undefined) return 0;
  const { values, positionals, ctx } = setup;
  if (positionals.length === 0) throw new UsageError('rm needs ALIAS/BUCKET/OBJECT');
  if (values.recursive && !values.force) throw new UsageError('rm --recursive deletes everything under the prefix: add --force to confirm');
  for (const text of positionals) {
    const path = remotePath(ctx, text);
    const removed = (key: string): void => {
      const shown = `${path.alias.name}/${path.bucket}/${key}`;
      ctx.out.line(`Removed \`${shown}\`.`);
      ctx.out.json({ status: 'success', key: shown });
    };
    if (values.recursive) {
      if (path.bucket === '') throw new UsageError('rm --recursive needs at least ALIAS/BUCKET');
      let count = 0;
      if (path.key !== '' && !path.key.endsWith('/')) {
        // the object PREFIX itself, then the folder PREFIX/ (not PREFIX2/…)
        const exact = await headObjectIfExists(path.client, path.bucket, path.key, {}).catch((error: unknown) => {
          if (error instanceof S3ClientError && error.status === 400) return true; // SSE-C object: it exists
          throw error;
        });
        if (exact !== undefined) {
          await path.client.send({ method: 'DELETE', bucket: path.bucket, key: path.key });
          removed(path.key);
          count++;
        }
        count += await emptyPrefix(path, `${path.key}/`, removed);
      } else {
        count += await emptyPrefix(path, path.key, removed);
      }
      if (count === 0) ctx.out.warn(`nothing to remove under \`${path.text}\``);
      continue;
    }
    requireObject(path, 'rm');
    try {
      const head = await headObjectIfExists(path.client, path.bucket, path.key, {});
      if (head === undefined) throw new CommandError(`\`${path.text}\` does not exist`, 'NoSuchKey');
    } catch (error) {
      // An SSE-C object answers HEAD without its key with 400: it exists, and DELETE needs no key.
      if (!(error instanceof S3ClientError && error.status === 400)) throw error;
    }
    await path.client.send({ method: 'DELETE', bucket: path.bucket, key: path.key });
    removed(path.key);
  }
  return 0;
}
