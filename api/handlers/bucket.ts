// Bucket operations: CreateBucket, DeleteBucket, HeadBucket, ListBuckets, GetBucketLocation,
// GetBucketVersioning.
import { readVerifiedXmlBody } from '../payload.ts';
import { sendXml, type RequestContext } from '../context.ts';
import { S3Error } from '../errors.ts';
import { parseCreateBucketConfiguration, s3XmlNamespace, xmlDocument } from '../xml.ts';
import { isoDate } from './metadata.ts';

const ipAddressPattern = /^\d+\.\d+\.\d+\.\d+$/;

/** AWS bucket naming rules (S3 User Guide, "Bucket naming rules"). */
export function isValidBucketName(name: string): boolean {
  return (
    name.length >= 3 &&
    name.length <= 63 &&
    /^[a-z0-9][a-z0-9.-]*[a-z0-9]$/.test(name) &&
    !name.includes('..') &&
    !name.includes('.-') &&
    !name.includes('-.') &&
    !ipAddressPattern.test(name)
  );
}

export function assertBucketName(name: string): void {
  if (!isValidBucketName(name)) throw new S3Error('InvalidBucketName', undefined, { BucketName: name });
}

export const owner = { ID: '02d6176db174dc93cb1b899f7c6078f08654445fe8cf1b6ce98d8855f66bdbf4', DisplayName: 'coffer' };

export async function createBucket(ctx: RequestContext): Promise<void> {
  const { req } = ctx;
  assertBucketName(req.bucket);
  const config = parseCreateBucketConfiguration(await readVerifiedXmlBody(ctx));
  if (config.locationConstraint !== undefined && config.locationConstraint !== ctx.settings.region) {
    throw new S3Error('InvalidArgument', `Location constraint ${config.locationConstraint} does not match this server's region ${ctx.settings.region}.`);
  }
  await ctx.engine.makeBucket(req.bucket);
  ctx.res.send(200, [['Location', `/${req.bucket}`]], '');
}

export async function deleteBucket(ctx: RequestContext): Promise<void> {
  assertBucketName(ctx.req.bucket);
  await ctx.engine.deleteBucket(ctx.req.bucket);
  ctx.res.send(204, [], '');
}

export async function headBucket(ctx: RequestContext): Promise<void> {
  assertBucketName(ctx.req.bucket);
  await ctx.engine.headBucket(ctx.req.bucket);
  ctx.res.sendWithoutBody(200, [['x-amz-bucket-region', ctx.settings.region]], 0);
}

export async function listBuckets(ctx: RequestContext): Promise<void> {
  const buckets = await ctx.engine.listBuckets();
  const xml = xmlDocument(
    'ListAllMyBucketsResult',
    {
      Owner: owner,
      Buckets: { Bucket: buckets.map((bucket) => ({ Name: bucket.name, CreationDate: isoDate(bucket.createdMs) })) },
    },
    { xmlns: s3XmlNamespace },
  );
  sendXml(ctx, xml);
}

export async function getBucketLocation(ctx: RequestContext): Promise<void> {
  assertBucketName(ctx.req.bucket);
  await ctx.engine.headBucket(ctx.req.bucket);
  // us-east-1 is reported as an empty LocationConstraint, as AWS does.
  const region = ctx.settings.region === 'us-east-1' ? '' : ctx.settings.region;
  sendXml(ctx, `<?xml version="1.0" encoding="UTF-8"?><LocationConstraint xmlns="${s3XmlNamespace}">${region}</LocationConstraint>`);
}

export async function getBucketVersioning(ctx: RequestContext): Promise<void> {
  assertBucketName(ctx.req.bucket);
  await ctx.engine.headBucket(ctx.req.bucket);
  // Versioning is not implemented: every bucket is unversioned, which S3 reports as an empty configuration.
  sendXml(ctx, xmlDocument('VersioningConfiguration', {}, { xmlns: s3XmlNamespace }));
}
