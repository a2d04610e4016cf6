// PutObject: stream the verified payload into the engine; answer with the ETag and the stored checksum.
import type { RequestContext } from '../context.ts';
import { checksumHeaderName } from '../checksum.ts';
import { checksumRequest, requestPayload, verifiedPayload } from '../payload.ts';
import type { HeaderList } from '../response.ts';
import { assertBucketName } from './bucket.ts';
import { metadataFromHeaders, quoteEtag, refuseUnsupportedHeaders } from './metadata.ts';
import { createEnvelope, dataEncryptionFor, resolveWriteSse, sseResponseHeaders } from '../sse.ts';

export async function putObject(ctx: RequestContext): Promise<void> {
  const { req } = ctx;
  assertBucketName(req.bucket);
  refuseUnsupportedHeaders(req);
  const metadata = metadataFromHeaders(req);
  const payload = requestPayload(ctx, { reusableChunks: true });
  const checksum = checksumRequest(ctx);
  const sse = resolveWriteSse(req.headers, await ctx.engine.getBucketEncryption(req.bucket), ctx.secure, ctx.sse);
  const envelope = sse ? await createEnvelope(sse, req.bucket, req.key, ctx.sse, false) : undefined;
  const { body, finish } = verifiedPayload(ctx, payload, checksum);
  const info = await ctx.engine.putObject(req.bucket, req.key, {
    body,
    expectedSizeBytes: payload.sizeBytes,
    ...metadata,
    finish,
    ...(envelope ? { encryption: dataEncryptionFor(envelope, undefined, req.headers.has('content-md5')) } : {}),
  });
  const headers: HeaderList = [['ETag', quoteEtag(info.etag)], ...sseResponseHeaders(info.encryption, sse?.type === 'SSE-C' ? sse : undefined)];
  if (info.checksum) {
    headers.push([checksumHeaderName(info.checksum.algorithm), info.checksum.value]);
    headers.push(['x-amz-checksum-type', info.checksum.type]);
  }
  ctx.res.send(200, headers, '');
}
