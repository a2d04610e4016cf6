// Bucket default encryption: PutBucketEncryption, GetBucketEncryption, DeleteBucketEncryption (what
// `mc encrypt set|info|clear` and `aws s3api put-bucket-encryption` send).
import { canonicalContextJson } from '../../engine/crypto/context.ts';
import { sendXml, type RequestContext } from '../context.ts';
import { S3Error } from '../errors.ts';
import { readVerifiedXmlBody } from '../payload.ts';
import { kmsFailure } from '../sse.ts';
import { parseServerSideEncryptionConfiguration, s3XmlNamespace, xmlDocument } from '../xml.ts';
import { assertBucketName } from './bucket.ts';

const arnPrefix = 'arn:aws:kms:';

export async function putBucketEncryption(ctx: RequestContext): Promise<void> {
  const { req } = ctx;
  assertBucketName(req.bucket);
  const config = parseServerSideEncryptionConfiguration(await readVerifiedXmlBody(ctx));
  await ctx.engine.headBucket(req.bucket);
  const kms = ctx.sse.kms;
  if (!kms) throw new S3Error('NotImplemented', 'Server side encryption specified but KMS is not configured.');
  let kmsKeyId = config.kmsMasterKeyId;
  if (kmsKeyId?.startsWith(arnPrefix)) kmsKeyId = kmsKeyId.slice(kmsKeyId.lastIndexOf(':') + 1).replace(/^key\//, '');
  if (config.algorithm === 'aws:kms') {
    // Refuse a key the KMS does not have now rather than failing every later PUT into the bucket.
    const keyName = kmsKeyId ?? kms.defaultKeyName;
    try {
      await kms.generateKey(keyName, canonicalContextJson({ [req.bucket]: 'PutBucketEncryption key check' }));
    } catch (error) {
      kmsFailure(error, keyName);
    }
  }
  await ctx.engine.setBucketEncryption(req.bucket, { algorithm: config.algorithm, ...(kmsKeyId === undefined ? {} : { kmsKeyId }) });
  ctx.res.send(200, [], '');
}

export async function getBucketEncryption(ctx: RequestContext): Promise<void> {
  assertBucketName(ctx.req.bucket);
  const config = await ctx.engine.getBucketEncryption(ctx.req.bucket);
  if (!config) throw new S3Error('ServerSideEncryptionConfigurationNotFoundError', undefined, { BucketName: ctx.req.bucket });
  const xml = xmlDocument(
    'ServerSideEncryptionConfiguration',
    {
      Rule: {
        ApplyServerSideEncryptionByDefault: {
          SSEAlgorithm: config.algorithm,
          KMSMasterKeyID: config.kmsKeyId === undefined ? undefined : `${arnPrefix}${config.kmsKeyId}`,
        },
        BucketKeyEnabled: false,
      },
    },
    { xmlns: s3XmlNamespace },
  );
  sendXml(ctx, xml);
}

export async function deleteBucketEncryption(ctx: RequestContext): Promise<void> {
  assertBucketName(ctx.req.bucket);
  await ctx.engine.setBucketEncryption(ctx.req.bucket, undefined);
  ctx.res.send(204, [], '');
}
