// Object metadata on the wire: what a PUT/Copy/CreateMultipartUpload stores from request headers, and the
// headers GET/HEAD answer with.
import type { ObjectInfo } from '../../engine/types.ts';
import { checksumHeaderName } from '../checksum.ts';
import { S3Error } from '../errors.ts';
import { maxUserMetadataBytes, type S3Request } from '../request.ts';
import type { HeaderList } from '../response.ts';

const userMetadataPrefix = 'x-amz-meta-';
/** Standard headers S3 stores with an object and returns on GET/HEAD, in their canonical spelling. */
const storedSystemHeaders: Readonly<Record<string, string>> = {
  'cache-control': 'Cache-Control',
  'content-disposition': 'Content-Disposition',
  'content-encoding': 'Content-Encoding',
  'content-language': 'Content-Language',
  expires: 'Expires',
  'x-amz-website-redirect-location': 'x-amz-website-redirect-location',
};
const defaultContentType = 'binary/octet-stream';
const acceptedStorageClasses = new Set(['STANDARD', 'REDUCED_REDUNDANCY']);

export interface StoredMetadata {
  readonly contentType: string;
  readonly userMetadata: Record<string, string>;
  readonly systemHeaders: Record<string, string>;
}

/** Refuse requests asking for what this server cannot honour rather than silently ignoring them. */
export function refuseUnsupportedHeaders(req: S3Request): void {
  for (const name of req.headers.keys()) {
    if (name === 'x-amz-object-lock-mode' || name === 'x-amz-object-lock-retain-until-date' || name === 'x-amz-object-lock-legal-hold') {
      throw new S3Error('NotImplemented', 'Object lock is not implemented.');
    }
  }
  const storageClass = req.headers.get('x-amz-storage-class');
  if (storageClass !== undefined && !acceptedStorageClasses.has(storageClass)) throw new S3Error('InvalidStorageClass');
}

export function metadataFromHeaders(req: S3Request): StoredMetadata {
  const userMetadata: Record<string, string> = {};
  const systemHeaders: Record<string, string> = {};
  let userMetadataBytes = 0;
  for (const [name, value] of req.headers) {
    if (name.startsWith(userMetadataPrefix)) {
      userMetadata[name] = value;
      userMetadataBytes += name.length - userMetadataPrefix.length + value.length;
    } else if (name in storedSystemHeaders) {
      if (name === 'content-encoding') {
        // aws-chunked is a transfer detail of this request, not a property of the object.
        const encodings = value.split(',').map((e) => e.trim()).filter((e) => e !== '' && e.toLowerCase() !== 'aws-chunked');
        if (encodings.length > 0) systemHeaders[name] = encodings.join(',');
      } else {
        systemHeaders[name] = value;
      }
    }
  }
  if (userMetadataBytes > maxUserMetadataBytes) throw new S3Error('MetadataTooLarge');
  return { contentType: req.headers.get('content-type') || defaultContentType, userMetadata, systemHeaders };
}

export function quoteEtag(etag: string): string {
  return `"${etag}"`;
}

export function httpDate(ms: number): string {
  return new Date(ms).toUTCString();
}

/** ISO 8601 with milliseconds, as S3 XML writes timestamps. */
export function isoDate(ms: number): string {
  return new Date(ms).toISOString();
}

/** Headers of a GET/HEAD response describing the object (not the range or body length). */
export function objectHeaders(info: ObjectInfo, withChecksum: boolean): HeaderList {
  const headers: Array<readonly [string, string]> = [
    ['ETag', quoteEtag(info.etag)],
    ['Last-Modified', httpDate(info.modTimeMs)],
    ['Content-Type', info.contentType],
  ];
  for (const [name, value] of Object.entries(info.systemHeaders)) headers.push([storedSystemHeaders[name] ?? name, value]);
  for (const [name, value] of Object.entries(info.userMetadata)) headers.push([name, value]);
  if (info.parts.length > 1 || info.etag.includes('-')) headers.push(['x-amz-mp-parts-count', String(info.parts.length)]);
  if (withChecksum && info.checksum) {
    headers.push([checksumHeaderName(info.checksum.algorithm), info.checksum.value]);
    headers.push(['x-amz-checksum-type', info.checksum.type]);
  }
  return headers;
}
