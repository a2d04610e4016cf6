// The client-side signer (api/auth/sign.ts): AWS's published example, round trips through the server's
// verifyRequest, and a cross-check against AWS's own signer (@smithy/signature-v4), which shares no code with us.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { SignatureV4 } from '@smithy/signature-v4';
import { signRequest, type SignRequestInput } from '../api/auth/sign.ts';
import { verifyRequest, type RequestToVerify } from '../api/auth/sigv4.ts';
import { StaticCredentialStore } from '../api/auth/credentials.ts';
import { S3Error } from '../api/errors.ts';
import { NodeSha256 } from './helpers/node-sha256.ts';

const accessKeyId = 'AKIAIOSFODNN7EXAMPLE';
const secretAccessKey = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
const creds = new StaticCredentialStore([[accessKeyId, secretAccessKey], ['AKOTHER', 'other-secret']]);
const nowMs = Date.UTC(2026, 10, 27, 12, 34, 56);
const emptyHash = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

function sign(overrides: Partial<SignRequestInput> & Pick<SignRequestInput, 'method' | 'url'>): Record<string, string> {
  return signRequest({ payloadHash: 'UNSIGNED-PAYLOAD', accessKeyId, secretAccessKey, region: 'us-east-1', nowMs, ...overrides });
}

/** What the server sees when the request goes out as `url.pathname + url.search` with these headers. */
function asReceived(method: string, url: URL, headers: Record<string, string>): RequestToVerify {
  return { method, rawPath: url.pathname, rawQuery: url.search.slice(1), headers: new Map(Object.entries(headers)) };
}

test('reproduces the AWS example GET Object signature (sig-v4-header-based-auth.html)', () => {
  const headers = signRequest({
    method: 'GET',
    url: new URL('https://examplebucket.s3.amazonaws.com/test.txt'),
    headers: { Range: 'bytes=0-9' },
    payloadHash: emptyHash,
    accessKeyId,
    secretAccessKey,
    region: 'us-east-1',
    nowMs: Date.UTC(2013, 4, 24),
  });
  assert.equal(headers['authorization'],
    'AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, ' +
    'SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, ' +
    'Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41');
  assert.equal(headers['host'], 'examplebucket.s3.amazonaws.com');
  assert.equal(headers['x-amz-date'], '20130524T000000Z');
  assert.equal(headers['x-amz-content-sha256'], emptyHash);
});

const roundTripCases: ReadonlyArray<{ method: string; url: string; headers?: Record<string, string>; payloadHash?: string }> = [
  { method: 'PUT', url: 'http://127.0.0.1:9000/bucket/plain-key.bin', headers: { 'Content-Length': '4096', 'Content-Type': 'application/octet-stream' } },
  { method: 'PUT', url: 'http://127.0.0.1:9000/bucket/a b/c d.txt', headers: { 'x-amz-meta-note': '  two   spaces\tand tab  ' } },
  { method: 'GET', url: 'http://127.0.0.1:9000/bucket/1+1=2 & more!*\'().txt', headers: { Range: 'bytes=0-99' } },
  { method: 'GET', url: 'http://127.0.0.1:9000/bucket/日本語/émoji-😀.txt', payloadHash: emptyHash },
  { method: 'HEAD', url: 'http://localhost:9000/bucket/already%20encoded%2Bplus' },
  { method: 'DELETE', url: 'http://127.0.0.1:9000/bucket/~tilde/._-' },
  { method: 'GET', url: 'http://127.0.0.1:9000/bucket?list-type=2&prefix=a b+c/é&delimiter=/&max-keys=10' },
  { method: 'GET', url: 'http://127.0.0.1:9000/bucket?versions&key-marker=&encoding-type=url' },
  { method: 'POST', url: 'http://127.0.0.1:9000/bucket/big.bin?uploads', headers: { 'Content-Type': 'text/plain', 'User-Agent': 'x/1', Expect: '100-continue' } },
  { method: 'PUT', url: 'http://127.0.0.1:9000/bucket/big.bin?partNumber=3&uploadId=a%2Fb%3Dc', headers: { 'x-amz-copy-source': '/src/k%20ey' } },
  { method: 'POST', url: 'http://127.0.0.1:9000/bucket?delete', payloadHash: createHash('sha256').update('<Delete/>').digest('hex') },
  { method: 'GET', url: 'http://127.0.0.1:9000/' },
  { method: 'PUT', url: 'http://127.0.0.1:9000/bucket/streamed', payloadHash: 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD', headers: { 'Content-Encoding': 'aws-chunked', 'x-amz-decoded-content-length': '1024' } },
];

test('what signRequest signs, verifyRequest accepts (methods, spaces, unicode, +, queries)', () => {
  for (const c of roundTripCases) {
    const url = new URL(c.url);
    const headers = sign({ method: c.method, url, headers: c.headers, payloadHash: c.payloadHash ?? 'UNSIGNED-PAYLOAD' });
    const result = verifyRequest(asReceived(c.method, url, headers), creds, nowMs + 60_000);
    assert.equal(result.kind, 'signed', c.url);
    assert.equal(result.kind === 'signed' && result.accessKeyId, accessKeyId);
    assert.equal(result.kind === 'signed' && result.presigned, false);
    // unsignable headers are sent but not signed
    assert.doesNotMatch(headers['authorization']!, /SignedHeaders=[^,]*(user-agent|expect)/);
  }
});

test('a changed path, query, header, method or secret fails verification', () => {
  const url = new URL('http://127.0.0.1:9000/bucket/a b+c?partNumber=1&uploadId=xyz');
  const headers = sign({ method: 'PUT', url, headers: { 'x-amz-meta-a': '1' } });
  const tampered: RequestToVerify[] = [
    asReceived('PUT', new URL('http://127.0.0.1:9000/bucket/a b c?partNumber=1&uploadId=xyz'), headers),
    asReceived('PUT', new URL('http://127.0.0.1:9000/bucket/a b+c?partNumber=2&uploadId=xyz'), headers),
    asReceived('PUT', url, { ...headers, 'x-amz-meta-a': '2' }),
    asReceived('POST', url, headers),
    asReceived('PUT', url, sign({ method: 'PUT', url, headers: { 'x-amz-meta-a': '1' }, secretAccessKey: 'wrong' })),
  ];
  for (const req of tampered) {
    assert.throws(() => verifyRequest(req, creds, nowMs), (error: unknown) =>
      error instanceof S3Error && error.code === 'SignatureDoesNotMatch');
  }
});

test('the signing-key cache is keyed by day, region and secret', () => {
  const url = new URL('http://127.0.0.1:9000/bucket/key');
  const dayMs = 24 * 60 * 60 * 1000;
  for (const [atMs, region] of [[nowMs, 'us-east-1'], [nowMs + dayMs, 'us-east-1'], [nowMs, 'eu-west-3'], [nowMs, 'us-east-1']] as const) {
    const headers = sign({ method: 'GET', url, nowMs: atMs, region });
    assert.equal(verifyRequest(asReceived('GET', url, headers), creds, atMs).kind, 'signed');
  }
  // same access key id, another secret: must not reuse the cached key of the first secret
  const other = new StaticCredentialStore([[accessKeyId, 'rotated-secret']]);
  const headers = sign({ method: 'GET', url, secretAccessKey: 'rotated-secret' });
  assert.equal(verifyRequest(asReceived('GET', url, headers), other, nowMs).kind, 'signed');
  assert.throws(() => verifyRequest(asReceived('GET', url, headers), creds, nowMs), S3Error);
});

test('rejects inputs it cannot sign correctly', () => {
  const url = new URL('http://127.0.0.1:9000/b/k');
  assert.throws(() => sign({ method: 'GET', url, payloadHash: 'ABC' }), /payload hash/);
  assert.throws(() => sign({ method: 'GET', url, payloadHash: emptyHash.toUpperCase() }), /payload hash/);
  assert.throws(() => sign({ method: 'GET', url, headers: { 'X-A': '1', 'x-a': '2' } }), /twice/);
  assert.throws(() => sign({ method: 'GET', url, headers: { Authorization: 'x' } }), /authorization/);
  assert.throws(() => sign({ method: 'GET', url: new URL('http://u:p@127.0.0.1/b/k') }), /user info/);
});

// ---------------------------------------------------------------------------------------------------------------
// Cross-check with @smithy/signature-v4, configured as the S3 client does (path already encoded, not re-escaped).

/** RFC 3986 strict encoding, as the AWS SDK's S3 serializer encodes keys (encodeURIComponent plus !'()*). */
function awsEncode(text: string): string {
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

test('matches @smithy/signature-v4 byte for byte', async () => {
  const key = 'reports/Q1 2024+final~v2=ok&é/😀 (copy).pdf';
  const query = { partNumber: '7', uploadId: 'up/load+id=1', 'x-id': 'UploadPart' };
  const path = `/bucket/${key.split('/').map(awsEncode).join('/')}`;
  const search = Object.entries(query).map(([name, value]) => `${awsEncode(name)}=${awsEncode(value)}`).join('&');
  const url = new URL(`http://127.0.0.1:9000${path}?${search}`);
  assert.equal(url.pathname, path, 'URL must keep the SDK-encoded path as is');
  const extraHeaders = { 'content-type': 'application/pdf', 'content-length': '5242880', 'x-amz-meta-owner': ' Zoë  B ' };
  const region = 'eu-central-1';
  for (const payloadHash of ['UNSIGNED-PAYLOAD', createHash('sha256').update('part body').digest('hex')]) {
    const ours = signRequest({ method: 'PUT', url, headers: extraHeaders, payloadHash, accessKeyId, secretAccessKey, region, nowMs });
    const signer = new SignatureV4({ credentials: { accessKeyId, secretAccessKey }, region, service: 's3', sha256: NodeSha256, uriEscapePath: false });
    const theirs = await signer.sign(
      {
        method: 'PUT', protocol: 'http:', hostname: '127.0.0.1', port: 9000, path, query,
        headers: { host: '127.0.0.1:9000', 'x-amz-content-sha256': payloadHash, ...extraHeaders },
      },
      { signingDate: new Date(nowMs) },
    );
    assert.equal(ours['authorization'], theirs.headers['authorization']);
    assert.equal(ours['x-amz-date'], theirs.headers['x-amz-date']);
    assert.equal(verifyRequest(asReceived('PUT', url, ours), creds, nowMs).kind, 'signed');
  }
});
