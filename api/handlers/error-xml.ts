// S3 error documents: <Error><Code/><Message/>…<RequestId/><HostId/></Error>.
import type { S3Error } from '../errors.ts';
import type { S3Request } from '../request.ts';
import { xmlDocument, type XmlObject } from '../xml.ts';

export function renderError(error: S3Error, req: S3Request | undefined): string {
  const body: Record<string, string | undefined> = {
    Code: error.code,
    Message: error.message,
  };
  for (const [name, value] of Object.entries(error.details)) body[name] = value;
  if (req) {
    if (req.bucket && body.BucketName === undefined) body.BucketName = req.bucket;
    if (req.key && body.Key === undefined) body.Key = req.key;
    body.Resource = req.rawPath;
    body.RequestId = req.requestId;
    body.HostId = req.requestId;
  }
  return xmlDocument('Error', body as XmlObject);
}
