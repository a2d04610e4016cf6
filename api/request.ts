// A request as the S3 layer sees it, captured synchronously from uWS's stack-allocated HttpRequest
// (which is invalid after the handler's first await), with the bucket and key resolved from either
// path-style (`/bucket/key`) or virtual-host-style (`bucket.domain/key`) addressing.
import { secureRandomBytes } from '../workers/random-pool.ts';
import type { HttpRequest } from '@trufflesuite/uws-js-unofficial';
import { S3Error } from './errors.ts';

/** AWS caps the request header section at 8 KiB (user metadata alone at 2 KiB). */
export const maxHeaderSectionBytes = 8 * 1024;
export const maxUserMetadataBytes = 2 * 1024;
const maxQueryParams = 64;

export interface S3Request {
  readonly requestId: string;
  /** upper case */
  readonly method: string;
  /** the path as sent, still percent-encoded (SigV4 signs this) */
  readonly rawPath: string;
  readonly rawQuery: string;
  /** decoded query parameters (first value wins) */
  readonly query: ReadonlyMap<string, string>;
  /** lower-cased names; repeated headers joined with ',' */
  readonly headers: ReadonlyMap<string, string>;
  readonly headerBytes: number;
  /** '' when the request names no bucket */
  readonly bucket: string;
  /** '' when the request names no object */
  readonly key: string;
  readonly virtualHost: boolean;
}

export function newRequestId(): string {
  return secureRandomBytes(8).toString('hex').toUpperCase();
}

/** Form-style decoding as S3 (and Go's url.ParseQuery) applies it: '+' is a space. */
function decodeQueryComponent(text: string): string {
  try {
    return decodeURIComponent(text.replace(/\+/g, ' '));
  } catch {
    throw new S3Error('InvalidArgument', 'The query string is not properly percent-encoded.');
  }
}

export function parseQuery(rawQuery: string): Map<string, string> {
  const query = new Map<string, string>();
  if (rawQuery === '') return query;
  const pairs = rawQuery.split('&');
  if (pairs.length > maxQueryParams) throw new S3Error('InvalidArgument', 'Too many query parameters.');
  for (const pair of pairs) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    const name = decodeQueryComponent(eq < 0 ? pair : pair.slice(0, eq));
    const value = eq < 0 ? '' : decodeQueryComponent(pair.slice(eq + 1));
    if (!query.has(name)) query.set(name, value);
  }
  return query;
}

function decodePath(rawPath: string): string {
  try {
    // In paths '+' is a literal plus; only %XX escapes are decoded.
    return decodeURIComponent(rawPath);
  } catch {
    throw new S3Error('InvalidArgument', 'The request path is not properly percent-encoded.');
  }
}

/** The bucket named by the Host header, when it is `<bucket>.<one of domains>`. */
function bucketFromHost(host: string, domains: readonly string[]): string | undefined {
  const hostname = host.startsWith('[') ? host : host.replace(/:\d+$/, '').toLowerCase();
  for (const domain of domains) {
    if (hostname.length > domain.length + 1 && hostname.endsWith(`.${domain}`)) {
      return hostname.slice(0, hostname.length - domain.length - 1);
    }
  }
  return undefined;
}

/** Capture everything needed from the uWS request. Throws S3Error for malformed input. */
export function captureRequest(req: HttpRequest, requestId: string, domains: readonly string[]): S3Request {
  const headers = new Map<string, string>();
  let headerBytes = 0;
  req.forEach((name, value) => {
    headerBytes += name.length + value.length + 4;
    const previous = headers.get(name);
    headers.set(name, previous === undefined ? value : `${previous},${value}`);
  });
  const method = req.getCaseSensitiveMethod().toUpperCase();
  const rawPath = req.getUrl();
  const rawQuery = req.getQuery() ?? '';
  const request = { requestId, method, rawPath, rawQuery, headers, headerBytes };
  if (headerBytes > maxHeaderSectionBytes) {
    return { ...request, query: new Map(), bucket: '', key: '', virtualHost: false };
  }
  const query = parseQuery(rawQuery);
  const path = decodePath(rawPath);
  const hostBucket = bucketFromHost(headers.get('host') ?? '', domains);
  if (hostBucket !== undefined) {
    return { ...request, query, bucket: hostBucket, key: path.slice(1), virtualHost: true };
  }
  const withoutSlash = path.slice(1);
  const slash = withoutSlash.indexOf('/');
  const bucket = slash < 0 ? withoutSlash : withoutSlash.slice(0, slash);
  const key = slash < 0 ? '' : withoutSlash.slice(slash + 1);
  return { ...request, query, bucket, key, virtualHost: false };
}
