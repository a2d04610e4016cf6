// AWS Signature Version 4 request authentication for S3, server side.
//
// Spec: "Authenticating Requests (AWS Signature Version 4)" in the Amazon S3 API reference:
//   - sig-v4-header-based-auth.html       (Authorization header, canonical request, string to sign)
//   - sigv4-query-string-auth.html        (presigned URLs, X-Amz-* query parameters)
//   - sigv4-streaming.html / sigv4-streaming-trailers.html (seed signature for aws-chunked bodies, see chunked.ts)
//
// S3 differs from other services in two ways that matter here: the path is NOT double-encoded (the canonical
// URI is the URI-encoded object path), and the payload hash is always carried in x-amz-content-sha256 (or is
// UNSIGNED-PAYLOAD for presigned URLs). We canonicalize from the raw wire form: decode each path segment and
// query component to bytes, then re-encode with the one AWS rule, so equivalent spellings (%7E vs ~, %2b vs
// %2B, raw UTF-8 vs %XX) verify identically.

import { randomBytes, timingSafeEqual } from 'node:crypto';
import { hmacSha256, sha256 } from '../../engine/crypto/sha256.ts';
import { S3Error } from '../errors.ts';
import { accessKeyIdLengthMax, type CredentialStore } from './credentials.ts';
import { verifyHeaderV2, verifyPresignedV2 } from './sigv2.ts';

// ---------------------------------------------------------------------------------------------------------------
// Public types (the HTTP layer's contract).

export interface RequestToVerify {
  method: string;
  /** path exactly as received on the wire (still percent-encoded), e.g. '/bucket/a%20b' */
  rawPath: string;
  /** query string exactly as received, without '?', possibly '' */
  rawQuery: string;
  /** lower-cased names -> value (duplicates already joined with ',') */
  headers: ReadonlyMap<string, string>;
  /** the bucket named by the Host header (virtual-host style); SigV2 signs it as part of the resource */
  virtualHostBucket?: string;
}

export type PayloadMode =
  | { kind: 'unsigned' }
  | { kind: 'sha256'; hex: string }
  | { kind: 'streaming-signed'; trailer: boolean }
  | { kind: 'streaming-unsigned-trailer' };

export interface SigningContext {
  signingKey: Buffer;
  amzDate: string;
  scope: string;
  seedSignature: string;
}

export type AuthResult =
  | { kind: 'anonymous' }
  | { kind: 'signed'; accessKeyId: string; payload: PayloadMode; signing: SigningContext; presigned: boolean };

// ---------------------------------------------------------------------------------------------------------------
// Constants and limits.

export const signingAlgorithm = 'AWS4-HMAC-SHA256';
const signingAlgorithmV4a = 'AWS4-ECDSA-P256-SHA256';
export const emptySha256Hex = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
export const unsignedPayload = 'UNSIGNED-PAYLOAD';
export const streamingSignedPayload = 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD';
export const streamingSignedPayloadTrailer = 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER';
export const streamingUnsignedPayloadTrailer = 'STREAMING-UNSIGNED-PAYLOAD-TRAILER';
const streamingV4aPayloadPrefix = 'STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD';
const scopeService = 's3';
const scopeTerminator = 'aws4_request';

/** S3 rejects requests whose time differs from the server's by more than 15 minutes. */
export const clockSkewMsMax = 15 * 60 * 1000;
/** Presigned URLs live at most 7 days (X-Amz-Expires <= 604800). */
export const presignedExpiresSecondsMax = 7 * 24 * 60 * 60;
/** Real Authorization headers are ~200-600 bytes even with many signed headers. */
export const authorizationHeaderBytesMax = 8 * 1024;
export const signedHeadersCountMax = 128;
export const queryParametersCountMax = 1024;
export const regionLengthMax = 64;
/** Signing keys are valid for a day per (secret, region); a few thousand active keys is plenty. */
export const signingKeyCacheEntriesMax = 1024;

// ---------------------------------------------------------------------------------------------------------------
// Primitives shared with chunked.ts.

export { hmacSha256 };

export function sha256Hex(data: string | Uint8Array): string {
  return sha256(data).toString('hex');
}

/** kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request"). Uncached. */
export function deriveSigningKey(secretAccessKey: string, date: string, region: string, service: string): Buffer {
  const dateKey = hmacSha256(`AWS4${secretAccessKey}`, date);
  const regionKey = hmacSha256(dateKey, region);
  const serviceKey = hmacSha256(regionKey, service);
  return hmacSha256(serviceKey, scopeTerminator);
}

/** Constant-time comparison of a client-supplied 64-hex signature against our 32-byte digest. */
export function signatureMatches(expected: Buffer, providedHex: string): boolean {
  if (expected.length !== 32 || !isLowerOrUpperHex64(providedHex)) return false;
  const provided = Buffer.from(providedHex, 'hex');
  return provided.length === expected.length && timingSafeEqual(expected, provided);
}

const hex64Pattern = /^[0-9a-fA-F]{64}$/;
function isLowerOrUpperHex64(value: string): boolean {
  return hex64Pattern.test(value);
}

// Small LRU of derived signing keys. Keyed by an HMAC of the secret under a per-process random key so that
// the cache never holds secrets and its keys are useless outside this process. Never log keys or entries.
const cacheKeySalt = randomBytes(32);
const signingKeyCache = new Map<string, Buffer>();
/**
 * The tag of each secret seen, so a request does not pay an HMAC just to find its cache entry. It holds the
 * secret strings the credential store holds anyway; bounded like the cache, and emptied when full.
 */
const secretTags = new Map<string, string>();

function secretTagOf(secretAccessKey: string): string {
  let tag = secretTags.get(secretAccessKey);
  if (tag === undefined) {
    tag = hmacSha256(cacheKeySalt, secretAccessKey).toString('base64');
    if (secretTags.size >= signingKeyCacheEntriesMax) secretTags.clear();
    secretTags.set(secretAccessKey, tag);
  }
  return tag;
}

function cachedSigningKey(secretAccessKey: string, date: string, region: string, service: string): Buffer {
  const secretTag = secretTagOf(secretAccessKey);
  const cacheKey = `${secretTag}\n${date}\n${region}\n${service}`;
  const hit = signingKeyCache.get(cacheKey);
  if (hit !== undefined) {
    signingKeyCache.delete(cacheKey); // re-insert: Map iteration order is insertion order, so this is LRU
    signingKeyCache.set(cacheKey, hit);
    return hit;
  }
  const key = deriveSigningKey(secretAccessKey, date, region, service);
  signingKeyCache.set(cacheKey, key);
  if (signingKeyCache.size > signingKeyCacheEntriesMax) {
    const oldest = signingKeyCache.keys().next().value;
    if (oldest !== undefined) signingKeyCache.delete(oldest);
  }
  return key;
}

// ---------------------------------------------------------------------------------------------------------------
// URI encoding (S3 API reference, "URI encode" rules for SigV4): unreserved A-Z a-z 0-9 - . _ ~ stay, every
// other byte becomes %XX with upper-case hex. In the canonical URI '/' separators stay as they are.

const encodedByte: readonly string[] = Array.from({ length: 256 }, (_, byte) => {
  const c = String.fromCharCode(byte);
  return /[A-Za-z0-9\-._~]/.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
});
const alreadyCanonicalPattern = /^[A-Za-z0-9\-._~]*$/;

function uriEncodeBytes(bytes: Uint8Array): string {
  let out = '';
  for (let i = 0; i < bytes.length; i++) out += encodedByte[bytes[i]!];
  return out;
}

function hexValue(code: number): number {
  if (code >= 0x30 && code <= 0x39) return code - 0x30;
  if (code >= 0x41 && code <= 0x46) return code - 0x41 + 10;
  if (code >= 0x61 && code <= 0x66) return code - 0x61 + 10;
  return -1;
}

/**
 * Percent-decodes one path segment or query component to raw bytes. Non-ASCII characters that arrived
 * unescaped are taken as UTF-8. Returns undefined for a malformed escape ('%' not followed by two hex digits),
 * which we refuse rather than guess at: the signature and the handler must agree on what the bytes are.
 */
function percentDecode(raw: string, plusIsSpace: boolean): Buffer | undefined {
  const out = Buffer.allocUnsafe(raw.length * 3); // a UTF-16 code unit is at most 3 UTF-8 bytes
  let length = 0;
  for (let i = 0; i < raw.length; i++) {
    const code = raw.charCodeAt(i);
    if (code === 0x25 /* % */) {
      const high = i + 2 < raw.length ? hexValue(raw.charCodeAt(i + 1)) : -1;
      const low = high >= 0 ? hexValue(raw.charCodeAt(i + 2)) : -1;
      if (low < 0) return undefined;
      out[length++] = high * 16 + low;
      i += 2;
    } else if (code === 0x2b /* + */ && plusIsSpace) {
      out[length++] = 0x20;
    } else if (code < 0x80) {
      out[length++] = code;
    } else {
      // a run of non-ASCII characters: encode as UTF-8 (surrogate pairs stay together)
      let end = i + 1;
      while (end < raw.length && raw.charCodeAt(end) >= 0x80) end++;
      length += out.write(raw.slice(i, end), length, 'utf8');
      i = end - 1;
    }
  }
  return out.subarray(0, length);
}

/** The canonical URI for S3: each '/'-separated segment decoded then re-encoded; no '.'/'..' or '//' folding. */
export function canonicalUri(rawPath: string): string {
  if (rawPath.length === 0) return '/';
  const segments = rawPath.split('/');
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i]!;
    if (alreadyCanonicalPattern.test(segment)) continue;
    const bytes = percentDecode(segment, false);
    if (bytes === undefined) throw new S3Error('InvalidArgument', 'The request path contains a malformed percent-encoding.');
    segments[i] = uriEncodeBytes(bytes);
  }
  return segments.join('/');
}

interface QueryParameter {
  /** decoded name (UTF-8), for looking up X-Amz-* parameters */
  readonly name: string;
  /** decoded value (UTF-8) */
  readonly value: string;
  readonly encodedName: string;
  readonly encodedValue: string;
}

function canonicalComponent(raw: string): { decoded: string; encoded: string } {
  // '+' in a query string means space (application/x-www-form-urlencoded, as Go's and most servers' parsers
  // read it); SigV4 clients always send a literal '+' as %2B, so both spellings sign the same.
  if (alreadyCanonicalPattern.test(raw)) return { decoded: raw, encoded: raw };
  const bytes = percentDecode(raw, true);
  if (bytes === undefined) throw new S3Error('InvalidArgument', 'The query string contains a malformed percent-encoding.');
  return { decoded: bytes.toString('utf8'), encoded: uriEncodeBytes(bytes) };
}

/** Splits and decodes a raw query string. Empty segments ('a&&b', trailing '&') are ignored. */
export function parseQuery(rawQuery: string): QueryParameter[] {
  const parameters: QueryParameter[] = [];
  if (rawQuery.length === 0) return parameters;
  for (const part of rawQuery.split('&')) {
    if (part.length === 0) continue;
    if (parameters.length >= queryParametersCountMax) {
      throw new S3Error('InvalidArgument', `The query string has more than ${queryParametersCountMax} parameters.`);
    }
    const equals = part.indexOf('=');
    const name = canonicalComponent(equals < 0 ? part : part.slice(0, equals));
    const value = canonicalComponent(equals < 0 ? '' : part.slice(equals + 1));
    parameters.push({ name: name.decoded, value: value.decoded, encodedName: name.encoded, encodedValue: value.encoded });
  }
  return parameters;
}

/** Sorted by encoded name then encoded value (byte order; encoded strings are ASCII), 'name=value' joined by '&'. */
export function canonicalQueryString(parameters: readonly QueryParameter[], excludeName?: string): string {
  const kept = excludeName === undefined ? [...parameters] : parameters.filter((p) => p.name !== excludeName);
  kept.sort((a, b) =>
    a.encodedName < b.encodedName ? -1 : a.encodedName > b.encodedName ? 1
      : a.encodedValue < b.encodedValue ? -1 : a.encodedValue > b.encodedValue ? 1 : 0);
  return kept.map((p) => `${p.encodedName}=${p.encodedValue}`).join('&');
}

/** Trim and collapse runs of spaces/tabs (the spec's "Trimall"); only ASCII space and tab are whitespace here. */
function canonicalHeaderValue(value: string): string {
  // Almost every value is canonical already: skip the two regular expressions then.
  if (!value.includes('\t') && !value.includes('  ') && !value.startsWith(' ') && !value.endsWith(' ')) return value;
  return value.replace(/[ \t]+/g, ' ').replace(/^ | $/g, '');
}

// ---------------------------------------------------------------------------------------------------------------
// Parsing the pieces of a signature.

interface CredentialScope {
  readonly accessKeyId: string;
  readonly date: string; // YYYYMMDD
  readonly region: string;
  readonly service: string;
  readonly scope: string; // date/region/service/aws4_request
}

type AuthErrorCode = 'AuthorizationHeaderMalformed' | 'AuthorizationQueryParametersError';

function parseCredential(value: string, errorCode: AuthErrorCode): CredentialScope {
  const parts = value.split('/');
  if (parts.length !== 5) {
    throw new S3Error(errorCode, `The credential "${truncated(value)}" must have the form <access key id>/<date>/<region>/s3/aws4_request.`);
  }
  const [accessKeyId, date, region, service, terminator] = parts as [string, string, string, string, string];
  if (accessKeyId.length === 0 || accessKeyId.length > accessKeyIdLengthMax) {
    throw new S3Error(errorCode, 'The access key id in the credential is empty or too long.');
  }
  if (!/^\d{8}$/.test(date)) throw new S3Error(errorCode, `Invalid credential date "${truncated(date)}".`);
  if (region.length === 0 || region.length > regionLengthMax || /[\s\x00-\x1f]/.test(region)) {
    throw new S3Error(errorCode, `Invalid region "${truncated(region)}" in the credential.`);
  }
  if (service !== scopeService) {
    throw new S3Error(errorCode, `The credential is malformed; incorrect service "${truncated(service)}". This endpoint belongs to "s3".`);
  }
  if (terminator !== scopeTerminator) {
    throw new S3Error(errorCode, `The credential is malformed; incorrect terminal "${truncated(terminator)}". This endpoint uses "aws4_request".`);
  }
  return { accessKeyId, date, region, service, scope: `${date}/${region}/${service}/${terminator}` };
}

const headerNamePattern = /^[a-z0-9!#$%&'*+.^_`|~-]+$/;

/** SignedHeaders: ';'-separated lower-case names. We keep the client's order (it signed that string as-is). */
function parseSignedHeaders(value: string, errorCode: AuthErrorCode): string[] {
  const names = value.split(';');
  if (names.length > signedHeadersCountMax) {
    throw new S3Error(errorCode, `More than ${signedHeadersCountMax} signed headers.`);
  }
  const seen = new Set<string>();
  for (const name of names) {
    if (!headerNamePattern.test(name) || seen.has(name)) {
      throw new S3Error(errorCode, `Invalid SignedHeaders "${truncated(value)}".`);
    }
    seen.add(name);
  }
  if (!seen.has('host')) throw new S3Error(errorCode, 'The host header must be signed.');
  return names;
}

function parseSignature(value: string, errorCode: AuthErrorCode): string {
  if (!isLowerOrUpperHex64(value)) throw new S3Error(errorCode, 'The signature must be 64 hexadecimal characters.');
  return value.toLowerCase();
}

const amzDatePattern = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;

/** Parses an ISO 8601 basic timestamp (20130524T000000Z) strictly; undefined when malformed or impossible. */
export function parseAmzDate(value: string): number | undefined {
  const m = amzDatePattern.exec(value);
  if (m === null) return undefined;
  const [year, month, day, hour, minute, second] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  const timeMs = Date.UTC(year, month - 1, day, hour, minute, second);
  const back = new Date(timeMs);
  if (back.getUTCMonth() !== month - 1 || back.getUTCDate() !== day || hour > 23 || minute > 59 || second > 59) {
    return undefined;
  }
  return timeMs;
}

export function formatAmzDate(timeMs: number): string {
  return new Date(timeMs).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}Z$/, 'Z');
}

function payloadModeOf(value: string): PayloadMode {
  switch (value) {
    case unsignedPayload: return { kind: 'unsigned' };
    case streamingSignedPayload: return { kind: 'streaming-signed', trailer: false };
    case streamingSignedPayloadTrailer: return { kind: 'streaming-signed', trailer: true };
    case streamingUnsignedPayloadTrailer: return { kind: 'streaming-unsigned-trailer' };
  }
  if (isLowerOrUpperHex64(value)) return { kind: 'sha256', hex: value.toLowerCase() };
  if (value.startsWith(streamingV4aPayloadPrefix)) {
    throw new S3Error('NotImplemented', 'Signature Version 4A (AWS4-ECDSA-P256-SHA256) is not supported.');
  }
  throw new S3Error(
    'InvalidArgument',
    `x-amz-content-sha256 must be ${unsignedPayload}, ${streamingUnsignedPayloadTrailer}, ${streamingSignedPayload}, ` +
      `${streamingSignedPayloadTrailer} or a valid sha256 value.`,
    { ArgumentName: 'x-amz-content-sha256', ArgumentValue: truncated(value) },
  );
}

function truncated(value: string): string {
  return value.length <= 128 ? value : `${value.slice(0, 128)}...`;
}

// ---------------------------------------------------------------------------------------------------------------
// Verification.

interface ParsedSignature {
  readonly credential: CredentialScope;
  readonly signedHeaders: readonly string[];
  readonly signedHeadersText: string;
  readonly signature: string; // lower-case hex
  readonly amzDate: string;
  readonly payloadHash: string; // exactly as it enters the canonical request
  readonly presigned: boolean;
}

/**
 * Authenticates a request. Returns anonymous when it carries no signature at all; throws S3Error for every
 * malformed, expired or wrong signature. Does not read the body: the returned PayloadMode tells the caller how
 * to check it (sha256 at end of body, or aws-chunked via decodeAwsChunked with `signing`).
 */
export function verifyRequest(req: RequestToVerify, creds: CredentialStore, nowMs: number): AuthResult {
  const authorization = req.headers.get('authorization');
  const query = parseQuery(req.rawQuery);
  const isPresignAttempt = query.some((p) =>
    p.name === 'X-Amz-Signature' || p.name === 'X-Amz-Algorithm' || p.name === 'X-Amz-Credential');

  let parsed: ParsedSignature;
  if (authorization !== undefined && authorization.startsWith('AWS ')) {
    return verifyHeaderV2(req, authorization, creds, nowMs);
  }
  if (authorization !== undefined) {
    if (isPresignAttempt) {
      throw new S3Error('InvalidArgument', 'Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, ' +
        'Signature query string parameter or the Authorization header should be specified.');
    }
    parsed = parseHeaderAuth(req, authorization, nowMs);
  } else if (isPresignAttempt) {
    parsed = parseQueryAuth(req, query, nowMs);
  } else {
    if (query.some((p) => p.name === 'AWSAccessKeyId') && query.some((p) => p.name === 'Signature')) {
      return verifyPresignedV2(req, creds, nowMs);
    }
    return { kind: 'anonymous' };
  }

  // x-amz-* headers change what a request does (copy source, SSE keys, ACLs...), so like S3 we refuse any that
  // the client did not sign.
  const signed = new Set(parsed.signedHeaders);
  const notSigned: string[] = [];
  for (const name of req.headers.keys()) {
    if (name.startsWith('x-amz-') && !signed.has(name)) notSigned.push(name);
  }
  if (notSigned.length > 0) {
    notSigned.sort();
    throw new S3Error('AccessDenied', `There were headers present in the request which were not signed`, {
      HeadersNotSigned: truncated(notSigned.join(', ')),
    });
  }

  const payload = payloadModeOf(parsed.payloadHash);

  const secret = creds.secretFor(parsed.credential.accessKeyId);
  if (secret === undefined) {
    throw new S3Error('InvalidAccessKeyId', undefined, { AWSAccessKeyId: truncated(parsed.credential.accessKeyId) });
  }

  let canonicalHeaders = '';
  for (const name of parsed.signedHeaders) {
    const value = req.headers.get(name);
    if (value === undefined) {
      throw new S3Error('SignatureDoesNotMatch', `The request signature we calculated does not match the signature you provided: signed header "${name}" is missing from the request.`);
    }
    canonicalHeaders += `${name}:${canonicalHeaderValue(value)}\n`;
  }
  const canonicalRequest = [
    req.method,
    canonicalUri(req.rawPath),
    canonicalQueryString(query, parsed.presigned ? 'X-Amz-Signature' : undefined),
    canonicalHeaders,
    parsed.signedHeadersText,
    parsed.payloadHash,
  ].join('\n');
  const { credential } = parsed;
  const stringToSign = `${signingAlgorithm}\n${parsed.amzDate}\n${credential.scope}\n${sha256Hex(canonicalRequest)}`;
  const signingKey = cachedSigningKey(secret, credential.date, credential.region, credential.service);
  const expected = hmacSha256(signingKey, stringToSign);
  if (!signatureMatches(expected, parsed.signature)) {
    // AWS echoes StringToSign and CanonicalRequest to help clients debug; both are derived from what the client
    // sent and contain no secret, but we keep the body small and just name the access key.
    throw new S3Error('SignatureDoesNotMatch', undefined, { AWSAccessKeyId: truncated(credential.accessKeyId) });
  }

  return {
    kind: 'signed',
    accessKeyId: credential.accessKeyId,
    payload,
    signing: { signingKey, amzDate: parsed.amzDate, scope: credential.scope, seedSignature: parsed.signature },
    presigned: parsed.presigned,
  };
}

function parseHeaderAuth(req: RequestToVerify, authorization: string, nowMs: number): ParsedSignature {
  const code = 'AuthorizationHeaderMalformed';
  if (authorization.length > authorizationHeaderBytesMax) {
    throw new S3Error(code, `The Authorization header is longer than ${authorizationHeaderBytesMax} bytes.`);
  }
  const space = authorization.indexOf(' ');
  const algorithm = space < 0 ? authorization : authorization.slice(0, space);
  if (algorithm !== signingAlgorithm) {
    if (algorithm === signingAlgorithmV4a) {
      throw new S3Error('NotImplemented', 'Signature Version 4A (AWS4-ECDSA-P256-SHA256) is not supported.');
    }
    throw new S3Error('InvalidArgument', 'Unsupported Authorization Type', { ArgumentName: 'Authorization' });
  }
  const fields = new Map<string, string>();
  for (const item of authorization.slice(space + 1).split(',')) {
    const trimmed = item.trim();
    const equals = trimmed.indexOf('=');
    const key = equals < 0 ? trimmed : trimmed.slice(0, equals);
    if (equals < 0 || !(key === 'Credential' || key === 'SignedHeaders' || key === 'Signature') || fields.has(key)) {
      throw new S3Error(code, `The authorization header is malformed; unexpected component "${truncated(key)}".`);
    }
    fields.set(key, trimmed.slice(equals + 1));
  }
  const credentialText = fields.get('Credential');
  const signedHeadersText = fields.get('SignedHeaders');
  const signatureText = fields.get('Signature');
  if (credentialText === undefined || signedHeadersText === undefined || signatureText === undefined) {
    throw new S3Error(code, 'The authorization header is malformed; it must contain Credential, SignedHeaders and Signature.');
  }
  const credential = parseCredential(credentialText, code);
  const signedHeaders = parseSignedHeaders(signedHeadersText, code);
  const signature = parseSignature(signatureText, code);

  // x-amz-date wins over Date (sig-v4-header-based-auth: "either ... x-amz-date or Date").
  const amzDateHeader = req.headers.get('x-amz-date');
  const dateHeader = req.headers.get('date');
  let timeMs: number | undefined;
  if (amzDateHeader !== undefined) timeMs = parseAmzDate(amzDateHeader);
  else if (dateHeader !== undefined) {
    const parsedMs = Date.parse(dateHeader);
    timeMs = Number.isFinite(parsedMs) ? parsedMs : undefined;
  }
  if (timeMs === undefined) {
    throw new S3Error('AccessDenied', 'AWS authentication requires a valid Date or x-amz-date header');
  }
  // A parsed x-amz-date is already in this form (parseAmzDate is strict): format only a Date header's time.
  const amzDate = amzDateHeader !== undefined ? amzDateHeader : formatAmzDate(timeMs);
  if (credential.date !== amzDate.slice(0, 8)) {
    throw new S3Error(code, `The authorization header is malformed; Invalid credential date. Date is not the same as X-Amz-Date: "${amzDate.slice(0, 8)}".`);
  }
  if (Math.abs(nowMs - timeMs) > clockSkewMsMax) throw skewError(timeMs, nowMs);

  const payloadHash = req.headers.get('x-amz-content-sha256');
  if (payloadHash === undefined) {
    throw new S3Error('InvalidRequest', 'Missing required header for this request: x-amz-content-sha256');
  }
  return { credential, signedHeaders, signedHeadersText, signature, amzDate, payloadHash, presigned: false };
}

function parseQueryAuth(req: RequestToVerify, query: readonly QueryParameter[], nowMs: number): ParsedSignature {
  const code = 'AuthorizationQueryParametersError';
  const wanted = ['X-Amz-Algorithm', 'X-Amz-Credential', 'X-Amz-Date', 'X-Amz-Expires', 'X-Amz-SignedHeaders', 'X-Amz-Signature'];
  const found = new Map<string, string>();
  let contentSha256: string | undefined;
  for (const p of query) {
    if (wanted.includes(p.name)) {
      if (found.has(p.name)) throw new S3Error(code, `The ${p.name} parameter appears more than once.`);
      found.set(p.name, p.value);
    } else if (p.name.toLowerCase() === 'x-amz-content-sha256') {
      // the JS SDK presigner hoists its x-amz-content-sha256 header into the query under the header's name
      if (contentSha256 !== undefined) throw new S3Error(code, 'The X-Amz-Content-Sha256 parameter appears more than once.');
      contentSha256 = p.value;
    }
  }
  const algorithm = found.get('X-Amz-Algorithm');
  const credentialText = found.get('X-Amz-Credential');
  const amzDate = found.get('X-Amz-Date');
  const expiresText = found.get('X-Amz-Expires');
  const signedHeadersText = found.get('X-Amz-SignedHeaders');
  const signatureText = found.get('X-Amz-Signature');
  if (algorithm === undefined || credentialText === undefined || amzDate === undefined || expiresText === undefined ||
      signedHeadersText === undefined || signatureText === undefined) {
    throw new S3Error(code, 'Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, ' +
      'X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.');
  }
  if (algorithm !== signingAlgorithm) {
    if (algorithm === signingAlgorithmV4a) {
      throw new S3Error('NotImplemented', 'Signature Version 4A (AWS4-ECDSA-P256-SHA256) is not supported.');
    }
    throw new S3Error(code, `X-Amz-Algorithm only supports "${signingAlgorithm}"`);
  }
  const credential = parseCredential(credentialText, code);
  const signedHeaders = parseSignedHeaders(signedHeadersText, code);
  const signature = parseSignature(signatureText, code);
  const timeMs = parseAmzDate(amzDate);
  if (timeMs === undefined) {
    throw new S3Error(code, `X-Amz-Date must be in the ISO8601 Long Format "yyyyMMdd'T'HHmmss'Z'"`);
  }
  if (credential.date !== amzDate.slice(0, 8)) {
    throw new S3Error(code, `Invalid credential date. Date is not the same as X-Amz-Date: "${amzDate.slice(0, 8)}".`);
  }
  if (!/^\d{1,7}$/.test(expiresText)) {
    throw new S3Error(code, 'X-Amz-Expires should be a number of seconds');
  }
  const expiresSeconds = Number(expiresText);
  if (expiresSeconds < 1) throw new S3Error(code, 'X-Amz-Expires must be positive');
  if (expiresSeconds > presignedExpiresSecondsMax) {
    throw new S3Error(code, `X-Amz-Expires must be less than a week (in seconds) that is ${presignedExpiresSecondsMax}`);
  }
  if (timeMs - nowMs > clockSkewMsMax) throw skewError(timeMs, nowMs);
  if (nowMs > timeMs + expiresSeconds * 1000) {
    throw new S3Error('AccessDenied', 'Request has expired', {
      'X-Amz-Expires': expiresText,
      Expires: new Date(timeMs + expiresSeconds * 1000).toISOString(),
      ServerTime: new Date(nowMs).toISOString(),
    });
  }
  // Presigned URLs sign UNSIGNED-PAYLOAD unless the client said otherwise in a signed place.
  const signedHeaderHash = signedHeaders.includes('x-amz-content-sha256') ? req.headers.get('x-amz-content-sha256') : undefined;
  const payloadHash = contentSha256 ?? signedHeaderHash ?? unsignedPayload;
  return { credential, signedHeaders, signedHeadersText, signature, amzDate, payloadHash, presigned: true };
}

function skewError(requestMs: number, nowMs: number): S3Error {
  return new S3Error('RequestTimeTooSkewed', undefined, {
    RequestTime: new Date(requestMs).toISOString(),
    ServerTime: new Date(nowMs).toISOString(),
    MaxAllowedSkewMilliseconds: String(clockSkewMsMax),
  });
}
