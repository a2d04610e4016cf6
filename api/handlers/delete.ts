// DeleteObject and DeleteObjects (multi-delete XML, Quiet mode).
import { StorageError } from '../../engine/types.ts';
import { sendXml, type RequestContext } from '../context.ts';
import { S3Error } from '../errors.ts';
import { readVerifiedXmlBody } from '../payload.ts';
import { parseDeleteObjects, s3XmlNamespace, xmlDocument, type XmlObject } from '../xml.ts';
import { assertBucketName } from './bucket.ts';

export async function deleteObject(ctx: RequestContext): Promise<void> {
  const { req } = ctx;
  assertBucketName(req.bucket);
  const versionId = req.query.get('versionId');
  if (versionId !== undefined && versionId !== 'null') throw new S3Error('NoSuchVersion');
  await ctx.engine.deleteObject(req.bucket, req.key);
  ctx.res.send(204, [], '');
}

export async function deleteObjects(ctx: RequestContext): Promise<void> {
  const { req } = ctx;
  assertBucketName(req.bucket);
  const request = parseDeleteObjects(await readVerifiedXmlBody(ctx));
  await ctx.engine.headBucket(req.bucket);
  const results: XmlObject[] = [];
  const errors: XmlObject[] = [];
  for (const object of request.objects) {
    try {
      if (object.versionId !== undefined && object.versionId !== 'null') throw new S3Error('NoSuchVersion');
      await ctx.engine.deleteObject(req.bucket, object.key);
      if (!request.quiet) results.push({ Key: object.key, VersionId: object.versionId });
    } catch (error) {
      const code = error instanceof S3Error ? error.code : error instanceof StorageError ? error.kind : 'InternalError';
      const message = error instanceof S3Error || error instanceof StorageError ? error.message : 'We encountered an internal error, please try again.';
      errors.push({ Key: object.key, VersionId: object.versionId, Code: code, Message: message });
    }
  }
  sendXml(ctx, xmlDocument('DeleteResult', { Deleted: results, Error: errors }, { xmlns: s3XmlNamespace }));
}
