// coffer encrypt set sse-s3 ALIAS/BUCKET
// coffer encrypt set sse-kms KEY-ID ALIAS/BUCKET
// coffer encrypt clear ALIAS/BUCKET
// coffer encrypt info ALIAS/BUCKET
//
// A bucket's default encryption (PUT / DELETE / GET ?encryption), with mc encrypt's messages.

import { remotePath, requireBucket, setUpCommand, UsageError, type ClientContext, type RemotePath } from './common.ts';
import { deleteBucketEncryption, getBucketEncryption, putBucketEncryption } from './operations.ts';

export const encryptUsage = `usage: coffer encrypt set sse-s3 ALIAS/BUCKET
       coffer encrypt set sse-kms KEY-ID ALIAS/BUCKET
       coffer encrypt clear ALIAS/BUCKET
       coffer encrypt info ALIAS/BUCKET
  (each takes --json)`;

function bucketPath(ctx: ClientContext, text: string | undefined, command: string): RemotePath {
  if (text === undefined) throw new UsageError(`encrypt ${command} needs ALIAS/BUCKET`);
  const path = remotePath(ctx, text);
  requireBucket(path, `encrypt ${command}`);
  if (path.key !== '') throw new UsageError(`encrypt ${command} takes ALIAS/BUCKET, not an object path ('${text}')`);
  return path;
}

export async function runEncrypt(args: readonly string[]): Promise<number> {
  const setup = await setUpCommand(args, {}, encryptUsage);
  if (setup === undefined) return 0;
  const { positionals, ctx } = setup;
  const [subcommand, ...rest] = positionals;
  switch (subcommand) {
    case 'set': {
      const [type, ...more] = rest;
      let keyId: string | undefined;
      let target: string | undefined;
      if (type === 'sse-s3') {
        if (more.length !== 1) throw new UsageError('encrypt set sse-s3 takes exactly ALIAS/BUCKET');
        target = more[0];
      } else if (type === 'sse-kms') {
        if (more.length !== 2) throw new UsageError('encrypt set sse-kms takes KEY-ID ALIAS/BUCKET');
        [keyId, target] = more;
      } else {
        throw new UsageError(`encrypt set takes sse-s3 or sse-kms, not '${type ?? ''}'`);
      }
      const path = bucketPath(ctx, target, 'set');
      await putBucketEncryption(path.client, path.bucket, { algorithm: type === 'sse-s3' ? 'AES256' : 'aws:kms', ...(keyId === undefined ? {} : { kmsKeyId: keyId }) });
      ctx.out.line(`Auto encryption configuration has been set successfully for ${path.text}`);
      ctx.out.json({ status: 'success', url: path.text, encryption: { algorithm: type, ...(keyId === undefined ? {} : { keyId }) } });
      return 0;
    }
    case 'clear': {
      if (rest.length !== 1) throw new UsageError('encrypt clear takes exactly ALIAS/BUCKET');
      const path = bucketPath(ctx, rest[0], 'clear');
      await deleteBucketEncryption(path.client, path.bucket);
      ctx.out.line(`Auto encryption configuration has been cleared successfully.`);
      ctx.out.json({ status: 'success', url: path.text });
      return 0;
    }
    case 'info': {
      if (rest.length !== 1) throw new UsageError('encrypt info takes exactly ALIAS/BUCKET');
      const path = bucketPath(ctx, rest[0], 'info');
      const config = await getBucketEncryption(path.client, path.bucket);
      if (config === undefined) {
        ctx.out.line(`Auto encryption is not enabled`);
        ctx.out.json({ status: 'success', url: path.text, encryption: null });
        return 0;
      }
      const algorithm = config.algorithm === 'aws:kms' ? 'sse-kms' : config.algorithm === 'AES256' ? 'sse-s3' : config.algorithm;
      ctx.out.line(algorithm === 'sse-kms'
        ? `Auto encryption 'sse-kms' is enabled with KeyID: ${config.kmsKeyId ?? ''}`
        : `Auto encryption '${algorithm}' is enabled`);
      ctx.out.json({ status: 'success', url: path.text, encryption: { algorithm, ...(config.kmsKeyId === undefined ? {} : { keyId: config.kmsKeyId }) } });
      return 0;
    }
    default:
      throw new UsageError(subcommand === undefined ? 'encrypt needs set, clear or info' : `unknown encrypt subcommand '${subcommand}'`);
  }
}
