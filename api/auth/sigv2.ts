// AWS Signature Version 2 (S3 Developer Guide, "Signing and authenticating REST requests", the legacy
// scheme): still what `aws s3 presign` of the Python aws CLI 1.x produces and what some older tools send
// in the Authorization header (`AWS AKID:signature`). HMAC-SHA1 over a string of the method, Content-MD5,
// Content-Type, Date (or Expires), the x-amz-* headers and the resource with its subresources.
// V2 cannot sign a payload, so the payload is treated as unsigned (Content-MD5 is still verified).
import { createHmac, timingSafeEqual } from 'node:crypto';
import { S3Error } from '../errors.ts';
import type { CredentialStore } from './credentials.ts';
import type { AuthResult, RequestToVerify } from './sigv4.ts';
import { clockSkewMsMax, presignedExpiresSecondsMax } from './sigv4.ts';

/** Subresources that are part of the V2 canonical resource (others are ignored by the signature). */
const signedSubresources = new Set([
  'accelerate', 'acl', 'analytics', 'cors', 'delete', 'encryption', 'inventory', 'legal-hold', 'lifecycle', 'location',
  'logging', 'metrics', 'notification', 'object-lock', 'partNumber', 'policy', 'replication', 'requestPayment',
  'response-cache-control', 'response-content-disposition', 'response-content-encoding', 'response-content-language',
  'response-content-type', 'response-expires', 'restore', 'retention', 'select', 'select-type', 'tagging', 'torrent',
  'uploadId', 'uploads', 'versionId', 'versioning', 'versions', 'website',
]);
const maxAccessKeyIdLength = 128;

function decode(text: string): string {
  try {
    return decodeURIComponent(text.replace(/\+/g, ' '));
  } catch {
    throw new S3Error('InvalidArgument', 'The query string is not properly percent-encoded.');
  }
}

function queryPairs(rawQuery: string): Array<[string, string | undefined]> {
  if (rawQuery === '') return [];
  return rawQuery.split('&').filter(Boolean).map((pair) => {
    const eq = pair.indexOf('=');
    return eq < 0 ? [decode(pair), undefined] : [decode(pair.slice(0, eq)), decode(pair.slice(eq + 1))];
  });
}

function canonicalResource(req: RequestToVerify, pairs: ReadonlyArray<[string, string | undefined]>): string {
  const subresources = pairs
    .filter(([name]) => signedSubresources.has(name))
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, value]) => (value === undefined || value === '' ? name : `${name}=${value}`));
  const path = req.virtualHostBucket === undefined ? req.rawPath : `/${req.virtualHostBucket}${req.rawPath}`;
  return subresources.length === 0 ? path : `${path}?${subresources.join('&')}`;
}

function canonicalAmzHeaders(req: RequestToVerify): string {
  const names = [...req.headers.keys()].filter((name) => name.startsWith('x-amz-')).sort();
  return names.map((name) => `${name}:${req.headers.get(name)!.trim()}\n`).join('');
}

function sign(secret: string, stringToSign: string): Buffer {
  return createHmac('sha1', secret).update(stringToSign, 'utf8').digest();
}

function matches(expected: Buffer, providedBase64: string): boolean {
  const provided = Buffer.from(providedBase64, 'base64');
  // Require canonical base64: otherwise the unused low bits of the last character give several spellings.
  if (provided.length !== expected.length || provided.toString('base64') !== providedBase64) return false;
  return timingSafeEqual(provided, expected);
}

function signedResult(accessKeyId: string, presigned: boolean): AuthResult {
  // No SigV4 signing context exists for V2; aws-chunked bodies (which need one) are refused by the caller
  // because V2 cannot announce them.
  return {
    kind: 'signed',
    accessKeyId,
    payload: { kind: 'unsigned' },
    signing: { signingKey: Buffer.alloc(0), amzDate: '', scope: '', seedSignature: '' },
    presigned,
  };
}

function secretOf(creds: CredentialStore, accessKeyId: string): string {
  const secret = accessKeyId.length <= maxAccessKeyIdLength ? creds.secretFor(accessKeyId) : undefined;
  if (secret === undefined) throw new S3Error('InvalidAccessKeyId');
  return secret;
}

/** `?AWSAccessKeyId=…&Expires=…&Signature=…` */
export function verifyPresignedV2(req: RequestToVerify, creds: CredentialStore, nowMs: number): AuthResult {
  const pairs = queryPairs(req.rawQuery);
  const get = (name: string) => pairs.find(([n]) => n === name)?.[1];
  const accessKeyId = get('AWSAccessKeyId') ?? '';
  const signature = get('Signature') ?? '';
  const expiresText = get('Expires') ?? '';
  if (!/^\d{1,12}$/.test(expiresText)) throw new S3Error('AccessDenied', 'Query-string authentication requires the Signature, Expires and AWSAccessKeyId parameters');
  const expiresSeconds = Number(expiresText);
  if (expiresSeconds * 1000 < nowMs) throw new S3Error('AccessDenied', 'Request has expired');
  if (expiresSeconds * 1000 > nowMs + presignedExpiresSecondsMax * 1000 + clockSkewMsMax) {
    throw new S3Error('AccessDenied', 'Request expiry is more than 7 days in the future');
  }
  const secret = secretOf(creds, accessKeyId);
  const stringToSign = [
    req.method,
    req.headers.get('content-md5') ?? '',
    req.headers.get('content-type') ?? '',
    expiresText,
    canonicalAmzHeaders(req) + canonicalResource(req, pairs),
  ].join('\n');
  if (!matches(sign(secret, stringToSign), signature)) throw new S3Error('SignatureDoesNotMatch');
  return signedResult(accessKeyId, true);
}

/** `Authorization: AWS AKID:signature` */
export function verifyHeaderV2(req: RequestToVerify, authorization: string, creds: CredentialStore, nowMs: number): AuthResult {
  const match = /^AWS ([^:\s]+):([A-Za-z0-9+/=]+)$/.exec(authorization.trim());
  if (!match) throw new S3Error('AuthorizationHeaderMalformed');
  const [, accessKeyId, signature] = match as unknown as [string, string, string];
  const amzDate = req.headers.get('x-amz-date');
  const dateText = amzDate ?? req.headers.get('date');
  const dateMs = dateText === undefined ? NaN : Date.parse(dateText);
  if (Number.isNaN(dateMs)) throw new S3Error('AccessDenied', 'AWS authentication requires a valid Date or x-amz-date header');
  if (Math.abs(dateMs - nowMs) > clockSkewMsMax) throw new S3Error('RequestTimeTooSkewed');
  const secret = secretOf(creds, accessKeyId);
  const pairs = queryPairs(req.rawQuery);
  const stringToSign = [
    req.method,
    req.headers.get('content-md5') ?? '',
    req.headers.get('content-type') ?? '',
    amzDate === undefined ? dateText! : '',
    canonicalAmzHeaders(req) + canonicalResource(req, pairs),
  ].join('\n');
  if (!matches(sign(secret, stringToSign), signature)) throw new S3Error('SignatureDoesNotMatch');
  return signedResult(accessKeyId, false);
}
