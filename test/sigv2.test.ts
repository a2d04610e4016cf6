// Signature Version 2 (legacy): AWS's published example and a presigned round trip.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import { StaticCredentialStore } from '../api/auth/credentials.ts';
import { verifyRequest } from '../api/auth/sigv4.ts';
import { S3Error } from '../api/errors.ts';

const accessKeyId = 'AKIAIOSFODNN7EXAMPLE';
const secret = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
const creds = new StaticCredentialStore([[accessKeyId, secret]]);

describe('SigV2', () => {
  it('verifies the S3 developer guide example (GET /photos/puppy.jpg on johnsmith)', () => {
    const date = 'Tue, 27 Mar 2007 19:36:42 +0000';
    const headers = new Map([
      ['host', 'johnsmith.s3.amazonaws.com'],
      ['date', date],
      ['authorization', `AWS ${accessKeyId}:bWq2s1WEIj+Ydj0vQ697zp+IXMU=`],
    ]);
    const result = verifyRequest({ method: 'GET', rawPath: '/photos/puppy.jpg', rawQuery: '', headers, virtualHostBucket: 'johnsmith' }, creds, Date.parse(date));
    assert.equal(result.kind, 'signed');
    const tampered = new Map(headers).set('authorization', `AWS ${accessKeyId}:bWq2s1WEIj+Ydj0vQ697zp+IXMV=`);
    assert.throws(
      () => verifyRequest({ method: 'GET', rawPath: '/photos/puppy.jpg', rawQuery: '', headers: tampered, virtualHostBucket: 'johnsmith' }, creds, Date.parse(date)),
      (error: unknown) => error instanceof S3Error && error.code === 'SignatureDoesNotMatch',
    );
  });

  it('verifies presigned query authentication and refuses expired URLs', () => {
    const nowMs = Date.parse('2026-01-01T00:00:00Z');
    const expires = String(nowMs / 1000 + 60);
    const stringToSign = `GET\n\n\n${expires}\n/bucket/a%20key?versionId=null`;
    const signature = createHmac('sha1', secret).update(stringToSign).digest('base64');
    const rawQuery = `AWSAccessKeyId=${accessKeyId}&Expires=${expires}&Signature=${encodeURIComponent(signature)}&versionId=null`;
    const request = { method: 'GET', rawPath: '/bucket/a%20key', rawQuery, headers: new Map([['host', 'localhost']]) };
    assert.equal(verifyRequest(request, creds, nowMs).kind, 'signed');
    assert.throws(() => verifyRequest(request, creds, nowMs + 120_000), (error: unknown) => error instanceof S3Error && error.code === 'AccessDenied');
    assert.throws(() => verifyRequest({ ...request, method: 'PUT' }, creds, nowMs), (error: unknown) => error instanceof S3Error && error.code === 'SignatureDoesNotMatch');
  });
});
