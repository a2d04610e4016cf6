// AWS Signature Version 4 request signing, client side (Authorization header only), for Coffer's own tools:
// the load generator (bench/load.ts) and tests. Server-side verification lives in sigv4.ts; this file reuses its
// canonicalization so both sides agree by construction, and test/sign.test.ts cross-checks against AWS's own
// signer (@smithy/signature-v4) so that a bug shared by both sides would still show.
//
// Spec: S3 API reference, sig-v4-header-based-auth.html. We sign exactly the wire form the caller will send:
// `url.pathname` (already percent-encoded by URL) and `url.search`, so send the request with
// `url.pathname + url.search` unchanged.

import {
  canonicalQueryString, canonicalUri, deriveSigningKey, formatAmzDate, hmacSha256, parseQuery, sha256Hex,
  signingAlgorithm, streamingSignedPayload, streamingSignedPayloadTrailer, streamingUnsignedPayloadTrailer,
  unsignedPayload,
} from './sigv4.ts';

export interface SignRequestInput {
  readonly method: string;
  readonly url: URL;
  /** headers to send besides the ones the signer adds; names in any case, one value each */
  readonly headers?: Readonly<Record<string, string>>;
  /** 'UNSIGNED-PAYLOAD', a lower-case hex SHA-256 of the body, or one of the STREAMING-* modes */
  readonly payloadHash: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly region: string;
  /** the signing time, ms since the epoch (the server allows 15 minutes of skew) */
  readonly nowMs: number;
}

/**
 * Headers that proxies and HTTP stacks add, drop or rewrite, so signing them breaks requests in transit;
 * the same rule as @smithy/signature-v4 (ALWAYS_UNSIGNABLE_HEADERS plus proxy-* and sec-*).
 */
const unsignableHeaderNames: ReadonlySet<string> = new Set([
  'authorization', 'cache-control', 'connection', 'expect', 'from', 'keep-alive', 'max-forwards', 'pragma',
  'referer', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'user-agent', 'x-amzn-trace-id',
]);
const unsignableHeaderPattern = /^(?:proxy|sec)-/;
/** The server refuses more signed headers than this (sigv4.ts signedHeadersCountMax); fail here first. */
const signedHeadersCountMax = 128;
const payloadHashPattern = /^[0-9a-f]{64}$/;
const scopeService = 's3';

/**
 * Signing keys depend only on (secret, day, region), so a client signing thousands of requests derives one per
 * day instead of four HMACs per request. A handful of entries is plenty for a tool; the bound keeps it so.
 */
const signingKeyCacheEntriesMax = 16;
const signingKeyCache = new Map<string, { readonly secretAccessKey: string; readonly signingKey: Buffer }>();

function signingKeyFor(accessKeyId: string, secretAccessKey: string, date: string, region: string): Buffer {
  const cacheKey = `${accessKeyId}\n${date}\n${region}`;
  const hit = signingKeyCache.get(cacheKey);
  if (hit !== undefined && hit.secretAccessKey === secretAccessKey) return hit.signingKey;
  const signingKey = deriveSigningKey(secretAccessKey, date, region, scopeService);
  signingKeyCache.delete(cacheKey);
  signingKeyCache.set(cacheKey, { secretAccessKey, signingKey });
  if (signingKeyCache.size > signingKeyCacheEntriesMax) {
    const oldest = signingKeyCache.keys().next().value;
    if (oldest !== undefined) signingKeyCache.delete(oldest);
  }
  return signingKey;
}

/** The spec's Trimall: strip leading/trailing spaces and tabs, collapse inner runs to one space. */
function canonicalHeaderValue(value: string): string {
  return value.replace(/[ \t]+/g, ' ').replace(/^ | $/g, '');
}

function isValidPayloadHash(value: string): boolean {
  return value === unsignedPayload || value === streamingSignedPayload || value === streamingSignedPayloadTrailer ||
    value === streamingUnsignedPayloadTrailer || payloadHashPattern.test(value);
}

/**
 * Returns the headers to send (lower-case names): the caller's headers plus host, x-amz-date,
 * x-amz-content-sha256 and authorization. Every given header is signed except the unsignable ones above.
 */
export function signRequest(input: SignRequestInput): Record<string, string> {
  const { url, accessKeyId, secretAccessKey, region, payloadHash } = input;
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`cannot sign a ${url.protocol} URL`);
  if (url.username !== '' || url.password !== '') throw new Error('the URL must not carry user info');
  if (!isValidPayloadHash(payloadHash)) throw new Error(`invalid payload hash ${JSON.stringify(payloadHash)}`);
  if (!Number.isFinite(input.nowMs)) throw new Error('nowMs must be a finite time');
  if (accessKeyId.length === 0 || accessKeyId.includes('/')) throw new Error('invalid access key id');
  if (region.length === 0 || region.includes('/')) throw new Error('invalid region');

  const amzDate = formatAmzDate(input.nowMs);
  const date = amzDate.slice(0, 8);
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(input.headers ?? {})) {
    const lowerName = name.toLowerCase();
    if (lowerName in headers) throw new Error(`header ${name} given twice`);
    if (lowerName === 'authorization') throw new Error('the request already carries an authorization header');
    headers[lowerName] = value;
  }
  headers['host'] = url.host;
  headers['x-amz-date'] = amzDate;
  headers['x-amz-content-sha256'] = payloadHash;

  const signedNames = Object.keys(headers).filter((name) => !unsignableHeaderNames.has(name) && !unsignableHeaderPattern.test(name)).sort();
  if (signedNames.length > signedHeadersCountMax) throw new Error(`more than ${signedHeadersCountMax} headers to sign`);
  let canonicalHeaders = '';
  for (const name of signedNames) canonicalHeaders += `${name}:${canonicalHeaderValue(headers[name]!)}\n`;
  const signedHeadersText = signedNames.join(';');

  const canonicalRequest = [
    input.method.toUpperCase(),
    canonicalUri(url.pathname),
    canonicalQueryString(parseQuery(url.search.slice(1))),
    canonicalHeaders,
    signedHeadersText,
    payloadHash,
  ].join('\n');
  const scope = `${date}/${region}/${scopeService}/aws4_request`;
  const stringToSign = `${signingAlgorithm}\n${amzDate}\n${scope}\n${sha256Hex(canonicalRequest)}`;
  const signature = hmacSha256(signingKeyFor(accessKeyId, secretAccessKey, date, region), stringToSign).toString('hex');
  headers['authorization'] =
    // ', ' separators as the AWS SDKs send them
    `${signingAlgorithm} Credential=${accessKeyId}/${scope}, SignedHeaders=${signedHeadersText}, Signature=${signature}`;
  return headers;
}
