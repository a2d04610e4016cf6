// SigV4 request verification: AWS's published S3 examples as golden vectors, error cases, and a randomized
// cross-check against the AWS SDK's own signer (@smithy/signature-v4) and presigner.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import { SignatureV4 } from '@smithy/signature-v4';
import { buildQueryString } from '@smithy/core/protocols';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import {
  canonicalQueryString, canonicalUri, deriveSigningKey, parseQuery, verifyRequest,
  type AuthResult, type RequestToVerify,
} from '../api/auth/sigv4.ts';
import { StaticCredentialStore } from '../api/auth/credentials.ts';
import { S3Error, type S3ErrorCode } from '../api/errors.ts';
import { NodeSha256 } from './helpers/node-sha256.ts';

// ---------------------------------------------------------------------------------------------------------------
// AWS example credentials and time (S3 API reference, sig-v4-header-based-auth.html, "Examples").

const exampleAccessKeyId = 'AKIAIOSFODNN7EXAMPLE';
const exampleSecret = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
const exampleNowMs = Date.UTC(2013, 4, 24, 0, 0, 0);
const emptyHash = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
const creds = new StaticCredentialStore([[exampleAccessKeyId, exampleSecret], ['AKOTHER', 'other-secret']]);

function exampleAuthorization(signedHeaders: string, signature: string): string {
  return `AWS4-HMAC-SHA256 Credential=${exampleAccessKeyId}/20130524/us-east-1/s3/aws4_request,` +
    `SignedHeaders=${signedHeaders},Signature=${signature}`;
}

function request(method: string, rawPath: string, rawQuery: string, headers: Record<string, string>): RequestToVerify {
  return { method, rawPath, rawQuery, headers: new Map(Object.entries(headers)) };
}

function signed(result: AuthResult): Extract<AuthResult, { kind: 'signed' }> {
  assert.equal(result.kind, 'signed');
  return result as Extract<AuthResult, { kind: 'signed' }>;
}

function assertS3Error(fn: () => unknown, code: S3ErrorCode, message?: RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof S3Error, `expected S3Error ${code}, got ${String(error)}`);
    assert.equal(error.code, code, `expected ${code}, got ${error.code}: ${error.message}`);
    if (message !== undefined) assert.match(error.message, message);
    return true;
  });
}

const getObjectHeaders = {
  host: 'examplebucket.s3.amazonaws.com',
  range: 'bytes=0-9',
  'x-amz-content-sha256': emptyHash,
  'x-amz-date': '20130524T000000Z',
  authorization: exampleAuthorization('host;range;x-amz-content-sha256;x-amz-date',
    'f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41'),
};

// ---------------------------------------------------------------------------------------------------------------
// Golden vectors.

test('AWS example: GET Object with Range', () => {
  const result = signed(verifyRequest(request('GET', '/test.txt', '', getObjectHeaders), creds, exampleNowMs));
  assert.equal(result.accessKeyId, exampleAccessKeyId);
  assert.equal(result.presigned, false);
  assert.deepEqual(result.payload, { kind: 'sha256', hex: emptyHash });
  assert.equal(result.signing.amzDate, '20130524T000000Z');
  assert.equal(result.signing.scope, '20130524/us-east-1/s3/aws4_request');
  assert.equal(result.signing.seedSignature, 'f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41');
  assert.deepEqual(result.signing.signingKey, deriveSigningKey(exampleSecret, '20130524', 'us-east-1', 's3'));
});

test('AWS example: PUT Object (Date and x-amz-date, $ in the key)', () => {
  const headers = {
    date: 'Fri, 24 May 2013 00:00:00 GMT',
    host: 'examplebucket.s3.amazonaws.com',
    'x-amz-date': '20130524T000000Z',
    'x-amz-storage-class': 'REDUCED_REDUNDANCY',
    'x-amz-content-sha256': '44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072',
    authorization: exampleAuthorization('date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class',
      '98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd'),
  };
  const result = signed(verifyRequest(request('PUT', '/test%24file.text', '', headers), creds, exampleNowMs));
  assert.deepEqual(result.payload, { kind: 'sha256', hex: '44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072' });
  // '$' arriving unescaped or with lower-case hex is the same canonical URI
  signed(verifyRequest(request('PUT', '/test$file.text', '', headers), creds, exampleNowMs));
  signed(verifyRequest(request('PUT', '/test%24file%2etext', '', headers), creds, exampleNowMs));
});

test('AWS example: GET Bucket Lifecycle (valueless query parameter)', () => {
  const headers = {
    host: 'examplebucket.s3.amazonaws.com',
    'x-amz-date': '20130524T000000Z',
    'x-amz-content-sha256': emptyHash,
    authorization: exampleAuthorization('host;x-amz-content-sha256;x-amz-date',
      'fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543'),
  };
  signed(verifyRequest(request('GET', '/', 'lifecycle', headers), creds, exampleNowMs));
  signed(verifyRequest(request('GET', '/', 'lifecycle=', headers), creds, exampleNowMs));
  signed(verifyRequest(request('GET', '', 'lifecycle', headers), creds, exampleNowMs));
});

test('AWS example: GET Bucket (List Objects), query sorted', () => {
  const headers = {
    host: 'examplebucket.s3.amazonaws.com',
    'x-amz-date': '20130524T000000Z',
    'x-amz-content-sha256': emptyHash,
    authorization: exampleAuthorization('host;x-amz-content-sha256;x-amz-date',
      '34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7'),
  };
  signed(verifyRequest(request('GET', '/', 'max-keys=2&prefix=J', headers), creds, exampleNowMs));
  signed(verifyRequest(request('GET', '/', 'prefix=J&max-keys=2', headers), creds, exampleNowMs));
  assertS3Error(() => verifyRequest(request('GET', '/', 'max-keys=3&prefix=J', headers), creds, exampleNowMs), 'SignatureDoesNotMatch');
});

const examplePresignedQuery = 'X-Amz-Algorithm=AWS4-HMAC-SHA256' +
  '&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request' +
  '&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host' +
  '&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404';

test('AWS example: presigned GET Object (sigv4-query-string-auth)', () => {
  const headers = { host: 'examplebucket.s3.amazonaws.com' };
  const result = signed(verifyRequest(request('GET', '/test.txt', examplePresignedQuery, headers), creds, exampleNowMs));
  assert.equal(result.presigned, true);
  assert.deepEqual(result.payload, { kind: 'unsigned' });
  // still valid just before expiry, expired just after
  signed(verifyRequest(request('GET', '/test.txt', examplePresignedQuery, headers), creds, exampleNowMs + 86400_000));
  assertS3Error(() => verifyRequest(request('GET', '/test.txt', examplePresignedQuery, headers), creds, exampleNowMs + 86400_001),
    'AccessDenied', /^Request has expired$/);
  // signed in the future beyond the allowed skew
  assertS3Error(() => verifyRequest(request('GET', '/test.txt', examplePresignedQuery, headers), creds, exampleNowMs - 16 * 60_000),
    'RequestTimeTooSkewed');
  // the signature covers the path, the host and every other query parameter
  assertS3Error(() => verifyRequest(request('GET', '/test2.txt', examplePresignedQuery, headers), creds, exampleNowMs), 'SignatureDoesNotMatch');
  assertS3Error(() => verifyRequest(request('GET', '/test.txt', examplePresignedQuery, { host: 'other' }), creds, exampleNowMs), 'SignatureDoesNotMatch');
  assertS3Error(() => verifyRequest(request('GET', '/test.txt', `${examplePresignedQuery}&versionId=1`, headers), creds, exampleNowMs), 'SignatureDoesNotMatch');
});

const streamingHeaders = {
  'content-encoding': 'aws-chunked',
  host: 's3.amazonaws.com',
  'x-amz-date': '20130524T000000Z',
  'x-amz-decoded-content-length': '66560',
  'x-amz-storage-class': 'REDUCED_REDUNDANCY',
};

test('AWS example: seed signature of the chunked PUT (sigv4-streaming)', () => {
  const headers = {
    ...streamingHeaders,
    'content-length': '66824',
    'x-amz-content-sha256': 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD',
    authorization: exampleAuthorization(
      'content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class',
      '4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9'),
  };
  const result = signed(verifyRequest(request('PUT', '/examplebucket/chunkObject.txt', '', headers), creds, exampleNowMs));
  assert.deepEqual(result.payload, { kind: 'streaming-signed', trailer: false });
  assert.equal(result.signing.seedSignature, '4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9');
});

test('AWS example: seed signature of the chunked PUT with a trailer (sigv4-streaming-trailers)', () => {
  const headers = {
    ...streamingHeaders,
    'x-amz-trailer': 'x-amz-checksum-crc32c',
    'x-amz-content-sha256': 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER',
    authorization: exampleAuthorization(
      'content-encoding;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class;x-amz-trailer',
      '106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e'),
  };
  const result = signed(verifyRequest(request('PUT', '/examplebucket/chunkObject.txt', '', headers), creds, exampleNowMs));
  assert.deepEqual(result.payload, { kind: 'streaming-signed', trailer: true });
});

// ---------------------------------------------------------------------------------------------------------------
// Canonicalization helpers.

test('canonicalUri decodes and re-encodes each segment with the AWS rule', () => {
  assert.equal(canonicalUri('/bucket/a%20b'), '/bucket/a%20b');
  assert.equal(canonicalUri('/bucket/a b'), '/bucket/a%20b');
  assert.equal(canonicalUri('/bucket/%7e%41-._'), '/bucket/~A-._');
  assert.equal(canonicalUri('/bucket/a+b=c'), '/bucket/a%2Bb%3Dc'); // '+' is literal in a path
  assert.equal(canonicalUri('/bucket/%c3%a9t%C3%A9'), '/bucket/%C3%A9t%C3%A9');
  assert.equal(canonicalUri('/bucket/été'), '/bucket/%C3%A9t%C3%A9');
  assert.equal(canonicalUri('/bucket/a%2Fb'), '/bucket/a%2Fb'); // an escaped slash stays inside its segment
  assert.equal(canonicalUri('/bucket//./../x/'), '/bucket//./../x/'); // S3 does not normalize dot segments
  assert.equal(canonicalUri(''), '/');
  assertS3Error(() => canonicalUri('/bucket/100%'), 'InvalidArgument');
  assertS3Error(() => canonicalUri('/bucket/%zz'), 'InvalidArgument');
});

test('canonical query: decoded, re-encoded, sorted by name then value, empty values kept', () => {
  const q = (raw: string) => canonicalQueryString(parseQuery(raw));
  assert.equal(q(''), '');
  assert.equal(q('b=2&a=x+y&a=1&c'), 'a=1&a=x%20y&b=2&c=');
  assert.equal(q('prefix=%7e~%2b&delimiter=/'), 'delimiter=%2F&prefix=~~%2B');
  assert.equal(q('k=a=b'), 'k=a%3Db');
  assert.equal(q('a&&b='), 'a=&b=');
  assert.equal(q('a-b=1&a=2'), 'a=2&a-b=1'); // by name first, not by the whole "name=value" string
  assert.equal(q('x=%E6%97%A5&y=日'), 'x=%E6%97%A5&y=%E6%97%A5');
  assert.equal(canonicalQueryString(parseQuery('X-Amz-Signature=ab&z=1'), 'X-Amz-Signature'), 'z=1');
  assertS3Error(() => parseQuery('a=%G0'), 'InvalidArgument');
});

// ---------------------------------------------------------------------------------------------------------------
// Error cases.

test('no signature at all is anonymous', () => {
  assert.deepEqual(verifyRequest(request('GET', '/b/k', '', { host: 'h' }), creds, Date.now()), { kind: 'anonymous' });
  assert.deepEqual(verifyRequest(request('GET', '/b', 'list-type=2&prefix=X-Amz-', { host: 'h' }), creds, Date.now()), { kind: 'anonymous' });
});

test('header auth errors', () => {
  const get = (headers: Record<string, string>, nowMs = exampleNowMs) =>
    () => verifyRequest(request('GET', '/test.txt', '', { ...getObjectHeaders, ...headers }), creds, nowMs);
  const withAuth = (value: string) => get({ authorization: value });
  const good = getObjectHeaders.authorization;

  assertS3Error(get({}, exampleNowMs + 15 * 60_000 + 1), 'RequestTimeTooSkewed');
  assertS3Error(get({}, exampleNowMs - 15 * 60_000 - 1), 'RequestTimeTooSkewed');
  signed(get({}, exampleNowMs + 15 * 60_000)());
  assertS3Error(get({ range: 'bytes=0-10' }), 'SignatureDoesNotMatch');
  assertS3Error(withAuth(good.replace('Signature=f0e8', 'Signature=f0e9')), 'SignatureDoesNotMatch');
  assertS3Error(withAuth(good.replace(exampleAccessKeyId, 'AKIAUNKNOWN')), 'InvalidAccessKeyId');
  assertS3Error(withAuth(good.replace('AKIAIOSFODNN7EXAMPLE', 'AKOTHER')), 'SignatureDoesNotMatch');
  assertS3Error(withAuth(good.replace('/s3/', '/ec2/')), 'AuthorizationHeaderMalformed', /incorrect service/);
  assertS3Error(withAuth(good.replace('aws4_request', 'aws5_request')), 'AuthorizationHeaderMalformed');
  assertS3Error(withAuth(good.replace('20130524/', '20130523/')), 'AuthorizationHeaderMalformed', /credential date/);
  assertS3Error(withAuth(good.replace('host;', '')), 'AuthorizationHeaderMalformed', /host/);
  assertS3Error(withAuth(good.replace('Signature=f0e8', 'Signature=zz')), 'AuthorizationHeaderMalformed');
  assertS3Error(withAuth(good.replace(',Signature=', ',Foo=')), 'AuthorizationHeaderMalformed');
  assertS3Error(withAuth(good.replace(',Signature=', ', Credential=x, Signature=')), 'AuthorizationHeaderMalformed');
  assertS3Error(withAuth(good.replace('Credential=', 'Credential=x/')), 'AuthorizationHeaderMalformed');
  // SigV2 headers go to api/auth/sigv2.ts (test/sigv2.test.ts); this request carries no Date it could check.
  assertS3Error(withAuth('AWS AKIAIOSFODNN7EXAMPLE:frJIUN8DYpKDtOLCwo//yllqDzg='), 'AccessDenied', /Date/);
  assertS3Error(withAuth(good.replace('AWS4-HMAC-SHA256', 'AWS4-ECDSA-P256-SHA256')), 'NotImplemented');
  assertS3Error(withAuth(good + 'x'.repeat(9000)), 'AuthorizationHeaderMalformed');
  assertS3Error(get({ 'x-amz-date': '20130524T000000' }), 'AccessDenied', /valid Date or x-amz-date/);
  assertS3Error(get({ 'x-amz-date': '20130532T000000Z' }), 'AccessDenied');
  assertS3Error(get({ 'x-amz-content-sha256': 'nope' }), 'InvalidArgument', /x-amz-content-sha256/);
  assertS3Error(get({ 'x-amz-meta-evil': '1' }), 'AccessDenied', /not signed/);
  assertS3Error(() => verifyRequest(request('GET', '/test.txt', examplePresignedQuery, getObjectHeaders), creds, exampleNowMs),
    'InvalidArgument', /Only one auth mechanism/);
  const { 'x-amz-content-sha256': _dropped, ...noPayloadHash } = getObjectHeaders;
  assertS3Error(() => verifyRequest(request('GET', '/test.txt', '', noPayloadHash), creds, exampleNowMs),
    'InvalidRequest', /x-amz-content-sha256/);
  const { host: _host, ...noHost } = getObjectHeaders;
  assertS3Error(() => verifyRequest(request('GET', '/test.txt', '', noHost), creds, exampleNowMs), 'SignatureDoesNotMatch');
});

test('upper-case hex in the provided signature is accepted (it is the same bytes)', () => {
  const headers = { ...getObjectHeaders, authorization: getObjectHeaders.authorization.replace(/Signature=([0-9a-f]+)/, (_, s: string) => `Signature=${s.toUpperCase()}`) };
  signed(verifyRequest(request('GET', '/test.txt', '', headers), creds, exampleNowMs));
});

test('Date header alone is an accepted request time', () => {
  // Signed by hand with the spec's canonical form: the Date header stands in for x-amz-date.
  const canonical = ['GET', '/b/k', '', `date:Fri, 24 May 2013 00:00:00 GMT\nhost:h\nx-amz-content-sha256:${emptyHash}\n`,
    'date;host;x-amz-content-sha256', emptyHash].join('\n');
  const stringToSign = `AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n${sha256(canonical)}`;
  const signature = createHmac('sha256', deriveSigningKey(exampleSecret, '20130524', 'us-east-1', 's3')).update(stringToSign).digest('hex');
  const headers = {
    host: 'h', date: 'Fri, 24 May 2013 00:00:00 GMT', 'x-amz-content-sha256': emptyHash,
    authorization: exampleAuthorization('date;host;x-amz-content-sha256', signature),
  };
  signed(verifyRequest(request('GET', '/b/k', '', headers), creds, exampleNowMs));
});

test('presigned errors', () => {
  const get = (query: string, nowMs = exampleNowMs) =>
    () => verifyRequest(request('GET', '/test.txt', query, { host: 'examplebucket.s3.amazonaws.com' }), creds, nowMs);
  const q = examplePresignedQuery;
  assertS3Error(get(q.replace('X-Amz-Expires=86400', 'X-Amz-Expires=604801')), 'AuthorizationQueryParametersError');
  assertS3Error(get(q.replace('X-Amz-Expires=86400', 'X-Amz-Expires=0')), 'AuthorizationQueryParametersError');
  assertS3Error(get(q.replace('X-Amz-Expires=86400', 'X-Amz-Expires=-1')), 'AuthorizationQueryParametersError');
  assertS3Error(get(q.replace('X-Amz-Expires=86400', 'X-Amz-Expires=1e3')), 'AuthorizationQueryParametersError');
  assertS3Error(get(q.replace('&X-Amz-Expires=86400', '')), 'AuthorizationQueryParametersError');
  assertS3Error(get(q.replace('&X-Amz-SignedHeaders=host', '')), 'AuthorizationQueryParametersError');
  assertS3Error(get(q.replace('X-Amz-Algorithm=AWS4-HMAC-SHA256', 'X-Amz-Algorithm=HMAC')), 'AuthorizationQueryParametersError');
  assertS3Error(get(q.replace('X-Amz-Date=20130524T000000Z', 'X-Amz-Date=2013-05-24')), 'AuthorizationQueryParametersError');
  assertS3Error(get(q.replace('%2Fs3%2F', '%2Fiam%2F')), 'AuthorizationQueryParametersError');
  assertS3Error(get(`${q}&X-Amz-Date=20130524T000000Z`), 'AuthorizationQueryParametersError');
  assertS3Error(get(q.replace('X-Amz-SignedHeaders=host', 'X-Amz-SignedHeaders=range')), 'AuthorizationQueryParametersError');
  assertS3Error(get(q.replace(exampleAccessKeyId, 'AKIAUNKNOWN')), 'InvalidAccessKeyId');
  assertS3Error(get(q.replace('X-Amz-Signature=aeee', 'X-Amz-Signature=aeef')), 'SignatureDoesNotMatch');
  assertS3Error(get(q.replace('&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404', '')),
    'AuthorizationQueryParametersError');
  assertS3Error(get('AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE&Expires=1141889120&Signature=vjbyPxybdZaNmGa%2ByT272YEAiv4%3D'),
    'AccessDenied', /expired/); // SigV2 presigned URLs are verified by api/auth/sigv2.ts; this one is from 2006
  assertS3Error(() => verifyRequest(request('GET', '/test.txt', q, { host: 'examplebucket.s3.amazonaws.com', 'x-amz-acl': 'public-read' }), creds, exampleNowMs),
    'AccessDenied', /not signed/);
});

// ---------------------------------------------------------------------------------------------------------------
// Cross-check against the AWS SDK's signer on random requests.

function smithySigner(region: string, credentials = { accessKeyId: exampleAccessKeyId, secretAccessKey: exampleSecret }): SignatureV4 {
  // S3 signs the already-encoded path as-is (no double encoding), hence uriEscapePath: false.
  return new SignatureV4({ credentials, region, service: 's3', sha256: NodeSha256, uriEscapePath: false });
}

function sha256(data: string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** mulberry32: deterministic so a failure can be replayed from its seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const oddPieces = ['a', 'Z', '0', '-', '.', '_', '~', ' ', '+', '=', '&', '?', '#', '%', '!', '*', "'", '(', ')', '$', ',', ';', ':', '@',
  '[', ']', '"', '<', '>', '\\', '^', '`', '{', '|', '}', 'é', 'ß', '日本', '😀', 'key', 'photos'];

function randomText(random: () => number, lengthMax: number, pieces = oddPieces): string {
  let out = '';
  const length = Math.floor(random() * lengthMax);
  for (let i = 0; i < length; i++) out += pieces[Math.floor(random() * pieces.length)];
  return out;
}

/** The AWS URI-encoding (what the SDK sends): encodeURIComponent plus !'()* escaped. */
function awsEncode(text: string): string {
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** Another spelling of the same bytes, as an unusual client or proxy might send it. */
function respell(random: () => number, text: string, inQuery: boolean): string {
  let out = '';
  for (const char of text) {
    const roll = random();
    if (/^[A-Za-z0-9\-._~]$/.test(char)) {
      out += roll < 0.2 ? `%${char.charCodeAt(0).toString(16).padStart(2, '0')}` : char; // needless lower-case escape
    } else if (char === ' ' && inQuery && roll < 0.5) {
      out += '+';
    } else if (!inQuery && /^[!$'()*,;:@=+]$/.test(char) && roll < 0.5) {
      out += char; // sub-delims are legal unescaped in a path
    } else if (char.charCodeAt(0) >= 0x80 && roll < 0.3) {
      out += char; // raw UTF-8 on the wire
    } else {
      const encoded = awsEncode(char);
      out += roll < 0.7 ? encoded : encoded.toLowerCase();
    }
  }
  return out;
}

test('random requests signed by @smithy/signature-v4 verify, and tampering is caught', async () => {
  const seed = Number(process.env['SIGV4_SEED'] ?? 20240601);
  const random = prng(seed);
  const nowMs = Date.UTC(2024, 5, 1, 12, 0, 0);
  const regions = ['us-east-1', 'eu-west-3', 'garage'];
  for (let round = 0; round < 300; round++) {
    const context = `seed ${seed} round ${round}`;
    const region = regions[round % regions.length]!;
    const method = ['GET', 'PUT', 'HEAD', 'DELETE', 'POST'][Math.floor(random() * 5)]!;
    const keySegments = Array.from({ length: 1 + Math.floor(random() * 3) }, () => randomText(random, 6) || 'k');
    const signedPath = `/bucket/${keySegments.map(awsEncode).join('/')}`;
    const rawPath = `/bucket/${keySegments.map((s) => respell(random, s, false)).join('/')}`;
    const query: Record<string, string | string[]> = {};
    const rawQueryParts: string[] = [];
    const parameterCount = Math.floor(random() * 4);
    for (let i = 0; i < parameterCount; i++) {
      const name = random() < 0.5 ? ['prefix', 'list-type', 'x-id', 'uploads', 'k~'][Math.floor(random() * 5)]! : randomText(random, 4) || 'n';
      if (name in query) continue;
      const values = Array.from({ length: random() < 0.2 ? 2 : 1 }, () => (random() < 0.2 ? '' : randomText(random, 5)));
      if (values.length === 2 && values[0] === values[1]) values.pop();
      query[name] = values.length === 1 ? values[0]! : values;
      for (const value of values) {
        const rawValue = respell(random, value, true);
        rawQueryParts.push(value === '' && random() < 0.5 ? respell(random, name, true) : `${respell(random, name, true)}=${rawValue}`);
      }
    }
    for (let i = rawQueryParts.length - 1; i > 0; i--) { // shuffle: order on the wire must not matter
      const j = Math.floor(random() * (i + 1));
      [rawQueryParts[i], rawQueryParts[j]] = [rawQueryParts[j]!, rawQueryParts[i]!];
    }
    const payloadHash = random() < 0.5 ? 'UNSIGNED-PAYLOAD' : sha256(String(round));
    const headers: Record<string, string> = {
      host: 'localhost:9000',
      'x-amz-content-sha256': payloadHash,
      'x-amz-meta-note': `  ${randomText(random, 4, ['a', ' ', '  ', '\t', 'b'])}  x  `,
      'content-type': 'text/plain; charset=utf-8',
    };
    if (random() < 0.3) headers['range'] = 'bytes=0-99';
    const signingDate = new Date(nowMs - Math.floor(random() * 14 * 60_000));
    const out = await smithySigner(region).sign(
      { method, protocol: 'http:', hostname: 'localhost', port: 9000, path: signedPath, query, headers },
      { signingDate },
    );
    const wireHeaders = new Map(Object.entries(out.headers).map(([k, v]) => [k.toLowerCase(), String(v)]));
    const rawQuery = rawQueryParts.join('&');
    const req = { method, rawPath, rawQuery, headers: wireHeaders };
    let result: AuthResult;
    try {
      result = verifyRequest(req, creds, nowMs);
    } catch (error) {
      assert.fail(`${context}: ${String(error)} for ${method} ${rawPath}?${rawQuery} (signed ${signedPath})`);
    }
    const ok = signed(result);
    assert.equal(ok.signing.scope.split('/')[1], region, context);
    assert.deepEqual(ok.payload, payloadHash === 'UNSIGNED-PAYLOAD' ? { kind: 'unsigned' } : { kind: 'sha256', hex: payloadHash }, context);

    // Tampering with any signed part must fail.
    const tampered: RequestToVerify[] = [
      { ...req, method: method === 'GET' ? 'PUT' : 'GET' },
      { ...req, rawPath: `${rawPath}x` },
      { ...req, rawQuery: rawQuery === '' ? 'x=1' : `${rawQuery}&zz=1` },
      { ...req, headers: new Map([...wireHeaders, ['x-amz-meta-note', 'changed']]) },
    ];
    for (const t of tampered) {
      assertS3Error(() => verifyRequest(t, creds, nowMs), 'SignatureDoesNotMatch');
    }
  }
});

test('random presigned URLs from @smithy/signature-v4 presign() verify', async () => {
  const seed = Number(process.env['SIGV4_SEED'] ?? 7);
  const random = prng(seed);
  for (let round = 0; round < 150; round++) {
    const context = `seed ${seed} round ${round}`;
    const key = randomText(random, 8) || 'k';
    const signedPath = `/bucket/${awsEncode(key)}`;
    const query: Record<string, string> = random() < 0.5 ? {} : { 'response-content-type': randomText(random, 4), versionId: '' };
    const signingDate = new Date(Date.UTC(2024, 0, 1) + Math.floor(random() * 1e9));
    const expiresIn = 1 + Math.floor(random() * 604800);
    const presigned = await smithySigner('eu-central-1').presign(
      // as S3RequestPresigner does: the payload hash header is hoisted into the query (without it smithy would
      // sign the empty-body hash, which S3 presigned URLs never use)
      { method: 'GET', protocol: 'https:', hostname: 'example.test', path: signedPath, query,
        headers: { host: 'example.test', 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' } },
      { signingDate, expiresIn },
    );
    const rawQuery = Object.entries(presigned.query ?? {})
      .map(([name, value]) => `${respell(random, name, true)}=${respell(random, String(value), true)}`).join('&');
    const req = { method: 'GET', rawPath: `/bucket/${respell(random, key, false)}`, rawQuery, headers: new Map([['host', 'example.test']]) };
    const atMs = signingDate.getTime() + Math.floor(random() * expiresIn * 1000);
    const ok = signed(verifyRequest(req, creds, atMs));
    assert.equal(ok.presigned, true, context);
    assert.deepEqual(ok.payload, { kind: 'unsigned' }, context);
    assert.ok(parseQuery(rawQuery).some((p) => p.name === 'x-amz-content-sha256' && p.value === 'UNSIGNED-PAYLOAD'), context);
    assertS3Error(() => verifyRequest(req, creds, signingDate.getTime() + expiresIn * 1000 + 1), 'AccessDenied', /expired/);
    assertS3Error(() => verifyRequest({ ...req, method: 'PUT' }, creds, atMs), 'SignatureDoesNotMatch');
  }
});

// ---------------------------------------------------------------------------------------------------------------
// End to end with the real S3 client: capture what it would put on the wire.

interface CapturedRequest {
  method: string;
  path: string;
  query: Record<string, string | string[] | null>;
  headers: Record<string, string>;
}

function capturingClient(captured: CapturedRequest[]): S3Client {
  return new S3Client({
    region: 'us-west-2',
    endpoint: 'http://127.0.0.1:9000',
    forcePathStyle: true,
    maxAttempts: 1,
    credentials: { accessKeyId: exampleAccessKeyId, secretAccessKey: exampleSecret },
    requestHandler: {
      async handle(req: CapturedRequest) {
        captured.push({ method: req.method, path: req.path, query: { ...req.query }, headers: { ...req.headers } });
        throw new Error('captured');
      },
    },
  });
}

function wireRequest(captured: CapturedRequest): RequestToVerify {
  return {
    method: captured.method,
    rawPath: captured.path,
    rawQuery: buildQueryString(captured.query as Record<string, string | string[]>), // what @smithy/node-http-handler sends
    headers: new Map(Object.entries(captured.headers).map(([k, v]) => [k.toLowerCase(), v])),
  };
}

test('S3Client requests (PutObject, GetObject with Range, ListObjectsV2) verify', async () => {
  const captured: CapturedRequest[] = [];
  const client = capturingClient(captured);
  const key = 'dir/a b+c~d=e&f?g#h%i!j*k(l)m\'n日本😀.txt';
  await client.send(new PutObjectCommand({ Bucket: 'bucket', Key: key, Body: Buffer.from('hello'), ContentType: 'text/plain', Metadata: { note: 'x  y' } })).catch(() => {});
  await client.send(new GetObjectCommand({ Bucket: 'bucket', Key: key, Range: 'bytes=0-1', VersionId: 'v+1 2' })).catch(() => {});
  await client.send(new ListObjectsV2Command({ Bucket: 'bucket', Prefix: 'a b+c/日本', Delimiter: '/', StartAfter: '' })).catch(() => {});
  assert.equal(captured.length, 3);
  for (const c of captured) {
    const result = signed(verifyRequest(wireRequest(c), creds, Date.now()));
    assert.equal(result.signing.scope.split('/')[1], 'us-west-2');
  }
  const put = signed(verifyRequest(wireRequest(captured[0]!), creds, Date.now()));
  assert.deepEqual(put.payload, { kind: 'sha256', hex: createHash('sha256').update('hello').digest('hex') });
});

test('getSignedUrl (s3-request-presigner) URLs verify', async () => {
  const client = capturingClient([]);
  const key = 'reports/Q1 2024+final~v2=ok&é.pdf';
  for (const command of [
    new GetObjectCommand({ Bucket: 'bucket', Key: key, ResponseContentDisposition: 'attachment; filename="a b.pdf"' }),
    new PutObjectCommand({ Bucket: 'bucket', Key: key }),
  ]) {
    const url = await getSignedUrl(client, command, { expiresIn: 3600 });
    const afterScheme = url.slice(url.indexOf('//') + 2);
    const pathAndQuery = afterScheme.slice(afterScheme.indexOf('/'));
    const question = pathAndQuery.indexOf('?');
    const req: RequestToVerify = {
      method: command instanceof PutObjectCommand ? 'PUT' : 'GET',
      rawPath: pathAndQuery.slice(0, question),
      rawQuery: pathAndQuery.slice(question + 1),
      headers: new Map([['host', '127.0.0.1:9000']]),
    };
    const result = signed(verifyRequest(req, creds, Date.now()));
    assert.equal(result.presigned, true);
    assert.deepEqual(result.payload, { kind: 'unsigned' });
  }
});
