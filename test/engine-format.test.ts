// Golden tests pinning the on-disk format (docs/format.md). If one of these fails, the format changed:
// bump the version and keep a reader for the old one, do not "fix" the vectors.
//
// Fixtures under test/fixtures/ were written once by this build's encoder and engine:
//   format-v1/*.meta, *.coffer.meta  single records (inputs: see the expectations below)
//   drive-v1/                        a whole drive: bucket "fixture-bucket" with hello.txt (inline),
//                                    dir/big.bin (200 KiB, byte i = i % 251), photos/ (directory object),
//                                    and an upload in progress for pending/upload with part 1 = "part one".

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import { crc32c } from '@node-rs/crc32';
import { unpack } from 'msgpackr';
import { FsEngine } from '../engine/fs-engine.ts';
import {
  decodeObjectMeta,
  decodePartMeta,
  decodeUploadMeta,
  encodeFrame,
  encodeObjectMeta,
  encodePartMeta,
  encodeUploadMeta,
  objectMetaMagic,
  singleDriveErasure,
} from '../engine/meta.ts';
import type { ObjectVersion } from '../engine/meta.ts';
import { multipartKeyHash, parseKey } from '../engine/paths.ts';
import { StorageError } from '../engine/types.ts';
import { BitrotWriter } from '../engine/erasure/bitrot.ts';
import { createXXHash128 } from 'hash-wasm';

const fixturesDir = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures');

const inlineData = Buffer.from('hello, coffer\n');
const inlineEtag = createHash('md5').update(inlineData).digest('hex');
const inlineVersion: ObjectVersion = {
  type: 'object',
  versionId: null,
  modTimeMs: 1700000000123,
  sizeBytes: inlineData.length,
  etag: inlineEtag,
  contentType: 'text/plain',
  userMetadata: { 'x-amz-meta-owner': 'ops' },
  systemHeaders: { 'cache-control': 'no-cache' },
  parts: [{ n: 1, size: inlineData.length, etag: inlineEtag, mtime: 1700000000123 }],
  inline: true,
  inlineCrc32c: crc32c(inlineData),
  erasure: singleDriveErasure,
};

const multipartVersion: ObjectVersion = {
  type: 'object',
  versionId: null,
  modTimeMs: 1700000000999,
  sizeBytes: 5242880 + 10,
  etag: '0123456789abcdef0123456789abcdef-2',
  contentType: 'application/octet-stream',
  userMetadata: {},
  systemHeaders: {},
  checksum: { algorithm: 'CRC32C', value: 'yZRlqg==-2', type: 'COMPOSITE' },
  parts: [
    { n: 1, size: 5242880, etag: 'a'.repeat(32), checksum: { algorithm: 'CRC32C', value: 'AAAAAA==', type: 'COMPOSITE' }, mtime: 1700000000500 },
    { n: 3, size: 10, etag: 'b'.repeat(32), mtime: 1700000000600 },
  ],
  dataDir: '6f2b1d7e-3c4a-4b8e-9f10-2a3b4c5d6e7f',
  inline: false,
  erasure: singleDriveErasure,
};

function str(text: string): Buffer {
  // msgpack fixstr (< 32 bytes): 0xa0 | length, then the bytes
  const bytes = Buffer.from(text, 'utf8');
  assert.ok(bytes.length < 32);
  return Buffer.concat([Buffer.from([0xa0 | bytes.length]), bytes]);
}

function isInternalError(pattern: RegExp) {
  return (error: unknown): boolean => {
    assert.ok(error instanceof StorageError);
    assert.equal(error.kind, 'InternalError');
    assert.match(error.message, pattern);
    return true;
  };
}

// One drive's copy of an inline object in a 4-drive 2+2 set (format minor version 1: erasure.bitrot). The
// drive is the set's second and holds shard 1, i.e. the first half of the data: its inline section is
// that shard framed as XXH3-128 digest ‖ shard bytes (docs/jbod.md §5).
const erasureShard = inlineData.subarray(0, 7);
const erasureInline = new BitrotWriter(7, 'xxh3-128').push(erasureShard);
const erasureVersion: ObjectVersion = {
  ...inlineVersion,
  inlineCrc32c: crc32c(erasureInline),
  erasure: { algorithm: 'rs', dataShards: 2, parityShards: 2, blockSizeBytes: 1048576, index: 1, distribution: [2, 1, 4, 3], bitrot: 'xxh3-128' },
};

describe('coffer.meta', () => {
  it('pins a multi-drive copy: minor version 1, erasure.bitrot, a framed inline shard', async () => {
    const bytes = encodeObjectMeta({ versions: [erasureVersion], inlineData: erasureInline });
    assert.equal(bytes.readUInt16LE(6), 1, 'minor version 1 once erasure.bitrot is present');
    const fixture = await fs.readFile(path.join(fixturesDir, 'format-v1/erasure.coffer.meta'));
    assert.equal(bytes.toString('hex'), fixture.toString('hex'));
    const decoded = decodeObjectMeta(fixture, true);
    assert.deepEqual(decoded.versions[0], erasureVersion);
    // The frame is digest ‖ shard, the digest an independent XXH3-128 of the shard (big-endian).
    const digest = (await createXXHash128()).init().update(erasureShard).digest('hex');
    assert.equal(decoded.inlineData.toString('hex'), digest + erasureShard.toString('hex'));
    // A single-drive record is unchanged by the new field: still minor version 0.
    assert.equal(encodeObjectMeta({ versions: [inlineVersion], inlineData }).readUInt16LE(6), 0);
  });

  it('refuses a multi-drive version without a bitrot algorithm or with a bad layout', () => {
    const { bitrot: _bitrot, ...unframed } = erasureVersion.erasure;
    const noBitrot = encodeObjectMeta({ versions: [{ ...erasureVersion, erasure: unframed }], inlineData: erasureInline });
    assert.throws(() => decodeObjectMeta(noBitrot, true), isInternalError(/without erasure.bitrot/));
    const badLayout = encodeObjectMeta({ versions: [{ ...erasureVersion, erasure: { ...erasureVersion.erasure, distribution: [1, 2] } }], inlineData: erasureInline });
    assert.throws(() => decodeObjectMeta(badLayout, true), isInternalError(/shard count/));
  });

  it('has the documented frame: magic, versions, length, msgpack body, CRC32C, inline data', async () => {
    const bytes = encodeObjectMeta({ versions: [inlineVersion], inlineData });
    assert.equal(bytes.toString('latin1', 0, 4), 'COF1');
    assert.equal(bytes.readUInt16LE(4), 1, 'major');
    assert.equal(bytes.readUInt16LE(6), 0, 'minor');
    const bodySizeBytes = bytes.readUInt32BE(8);
    const body = bytes.subarray(12, 12 + bodySizeBytes);
    assert.equal(bytes.readUInt32BE(12 + bodySizeBytes), crc32c(body));
    assert.deepEqual(bytes.subarray(16 + bodySizeBytes), inlineData);
    // The body is plain msgpack, readable by any decoder.
    const plain = unpack(body) as { versions: Record<string, unknown>[] };
    assert.equal(plain.versions.length, 1);
    assert.equal(plain.versions[0]!['etag'], inlineEtag);

    // Hand-built prefix: header, then {"versions": [ {"type": "object", "versionId": nil, "modTimeMs": ...
    const expectedPrefix = Buffer.concat([
      Buffer.from('COF1', 'latin1'),
      Buffer.from([0x01, 0x00, 0x00, 0x00]),
      Buffer.from([0x00, 0x00, 0x01, 0x83]), // body length 387, big-endian
      Buffer.from([0x81]), // map, 1 entry
      str('versions'),
      Buffer.from([0x91]), // array, 1 entry
      Buffer.from([0x8c]), // map, 12 entries (no checksum, no dataDir)
      str('type'),
      str('object'),
      str('versionId'),
      Buffer.from([0xc0]), // nil: the "null" version
      str('modTimeMs'),
      Buffer.from([0xcb]), // float64 (msgpackr writes integers >= 2^32 this way; readers accept any number)
      Buffer.from('4278bcfe5687b000', 'hex'), // 1700000000123
      str('sizeBytes'),
      Buffer.from([0x0e]), // 14
    ]);
    assert.equal(bytes.subarray(0, expectedPrefix.length).toString('hex'), expectedPrefix.toString('hex'));

    // And the whole record, byte for byte, equals the committed fixture.
    const fixture = await fs.readFile(path.join(fixturesDir, 'format-v1/inline.coffer.meta'));
    assert.equal(bytes.toString('hex'), fixture.toString('hex'));
  });

  it('decodes the committed fixtures to fixed fields', async () => {
    const inlineFixture = await fs.readFile(path.join(fixturesDir, 'format-v1/inline.coffer.meta'));
    assert.deepEqual(decodeObjectMeta(inlineFixture, true), { versions: [inlineVersion], inlineData });
    const headerOnly = decodeObjectMeta(inlineFixture.subarray(0, inlineFixture.length - inlineData.length), false);
    assert.deepEqual(headerOnly.versions, [inlineVersion]);

    const multipartFixture = await fs.readFile(path.join(fixturesDir, 'format-v1/multipart.coffer.meta'));
    assert.deepEqual(decodeObjectMeta(multipartFixture, true), { versions: [multipartVersion], inlineData: Buffer.alloc(0) });
    assert.equal(encodeObjectMeta({ versions: [multipartVersion], inlineData: Buffer.alloc(0) }).toString('hex'), multipartFixture.toString('hex'));
  });

  it('refuses damaged or unknown records instead of returning wrong data', async () => {
    const good = await fs.readFile(path.join(fixturesDir, 'format-v1/inline.coffer.meta'));
    const flippedBody = Buffer.from(good);
    flippedBody[40]! ^= 0x01;
    assert.throws(() => decodeObjectMeta(flippedBody, true), isInternalError(/CRC32C mismatch/));

    const flippedInline = Buffer.from(good);
    flippedInline[flippedInline.length - 2]! ^= 0x01;
    assert.throws(() => decodeObjectMeta(flippedInline, true), isInternalError(/inline data CRC32C/));

    const newerMajor = Buffer.from(good);
    newerMajor.writeUInt16LE(2, 4);
    assert.throws(() => decodeObjectMeta(newerMajor, true), isInternalError(/major version 2/));

    const newerMinor = Buffer.from(good);
    newerMinor.writeUInt16LE(7, 6);
    assert.deepEqual(decodeObjectMeta(newerMinor, true).versions, [inlineVersion], 'minor versions are additive');

    const badMagic = Buffer.from(good);
    badMagic.write('XL2 ', 0, 'latin1');
    assert.throws(() => decodeObjectMeta(badMagic, true), isInternalError(/bad magic/));
    assert.throws(() => decodeObjectMeta(good.subarray(0, 30), true), isInternalError(/truncated/));
    assert.throws(() => decodeObjectMeta(good.subarray(0, 8), true), isInternalError(/truncated/));

    const hugeLength = Buffer.from(good);
    hugeLength.writeUInt32BE(0xffffffff, 8);
    assert.throws(() => decodeObjectMeta(hugeLength, true), isInternalError(/exceeds the limit/));

    // `encryption` holds the SSE record (a string map); anything else is corruption, never guessed at.
    const baseVersion = (unpack(good.subarray(12, 12 + good.readUInt32BE(8))) as { versions: object[] }).versions[0];
    const badRecord = encodeFrame(objectMetaMagic, { versions: [{ ...baseVersion, encryption: { algorithm: 5 } }] });
    assert.throws(() => decodeObjectMeta(badRecord, false), isInternalError(/encryption/));
    const record = { 'x-coffer-sse': 'SSE-S3', 'x-coffer-sse-iv': 'AAAA' };
    const encrypted = encodeFrame(objectMetaMagic, { versions: [{ ...baseVersion, encryption: record }] });
    assert.deepEqual(decodeObjectMeta(encrypted, false).versions[0]!.encryption, record);
  });
});

describe('multipart records', () => {
  it('pins upload.meta', async () => {
    const upload = {
      bucket: 'b',
      key: 'k/1',
      uploadId: '018bcfe568000123456789abcdef01234567',
      initiatedMs: 1700000000000,
      contentType: 'text/plain',
      userMetadata: {},
      systemHeaders: {},
      checksumAlgorithm: 'SHA256' as const,
      checksumType: 'COMPOSITE' as const,
    };
    const fixture = await fs.readFile(path.join(fixturesDir, 'format-v1/upload.meta'));
    assert.equal(fixture.toString('latin1', 0, 4), 'COFU');
    assert.deepEqual(decodeUploadMeta(fixture), upload);
    assert.equal(encodeUploadMeta(upload).toString('hex'), fixture.toString('hex'));
  });

  it('pins part.N.meta', async () => {
    const part = { n: 2, size: 5, etag: '5d41402abc4b2a76b9719d911017c592', mtime: 1700000000001, file: 'part.2.0f8e2a5c-1b3d-4e6f-8a9b-0c1d2e3f4a5b' };
    const fixture = await fs.readFile(path.join(fixturesDir, 'format-v1/part.2.meta'));
    assert.equal(fixture.toString('latin1', 0, 4), 'COFP');
    assert.deepEqual(decodePartMeta(fixture), part);
    assert.equal(encodePartMeta(part).toString('hex'), fixture.toString('hex'));
  });
});

describe('names on disk', () => {
  it('maps keys to directories', () => {
    assert.deepEqual(parseKey('a/b/c').dirSegments, ['a', 'b', 'c']);
    assert.deepEqual(parseKey('photos/').dirSegments, ['photos__XLDIR__']);
    assert.deepEqual(parseKey('a/b/').dirSegments, ['a', 'b__XLDIR__']);
    assert.equal(multipartKeyHash('photos/2024/a.jpg'), '7b1c0b5dfadb22b42a16bbe0e8c971a830349ccafcf69e8e53bfb9f764cd12bf');
  });
});

describe('drive fixture', () => {
  const copies: string[] = [];
  after(async () => {
    for (const copy of copies) await fs.rm(copy, { recursive: true, force: true });
  });

  it('keeps opening and reading a drive written by format v1', async () => {
    const root = await fs.mkdtemp(path.join(os.tmpdir(), 'coffer-fixture-'));
    copies.push(root);
    const drive = path.join(root, 'drive');
    await fs.cp(path.join(fixturesDir, 'drive-v1'), drive, { recursive: true });
    const format = JSON.parse(await fs.readFile(path.join(drive, '.coffer.sys/format.json'), 'utf8'));
    assert.deepEqual(Object.keys(format), ['version', 'format', 'deploymentId', 'thisDriveId', 'sets']);

    const engine = await FsEngine.open([drive]);
    try {
      assert.equal(engine.deploymentId, format.deploymentId);
      assert.deepEqual((await engine.listBuckets()).map((bucket) => bucket.name), ['fixture-bucket']);
      const page = await engine.listObjects('fixture-bucket', { prefix: '', delimiter: '', after: '', maxKeys: 100 });
      assert.deepEqual(page.objects.map((object) => [object.key, object.sizeBytes]), [
        ['dir/big.bin', 200 * 1024],
        ['hello.txt', inlineData.length],
        ['photos/', 0],
      ]);

      const read = async (key: string): Promise<Buffer> => {
        const reader = await engine.openObject('fixture-bucket', key);
        const chunks: Buffer[] = [];
        for await (const chunk of reader.read(0, reader.info.sizeBytes - 1)) chunks.push(Buffer.from(chunk));
        await reader.close();
        return Buffer.concat(chunks);
      };
      assert.deepEqual(await read('hello.txt'), inlineData);
      assert.equal((await engine.statObject('fixture-bucket', 'hello.txt')).contentType, 'text/plain');
      const big = await read('dir/big.bin');
      assert.equal(big.length, 200 * 1024);
      assert.ok(big.every((byte, index) => byte === index % 251));
      assert.equal((await engine.statObject('fixture-bucket', 'dir/big.bin')).etag, createHash('md5').update(big).digest('hex'));

      const uploads = await engine.listMultipartUploads('fixture-bucket', { prefix: '', delimiter: '', keyMarker: '', uploadIdMarker: '', maxUploads: 10 });
      assert.deepEqual(uploads.uploads.map((upload) => upload.key), ['pending/upload']);
      const uploadId = uploads.uploads[0]!.uploadId;
      const parts = await engine.listParts('fixture-bucket', 'pending/upload', uploadId, 0, 10);
      const partOne = Buffer.from('part one');
      assert.deepEqual(parts.parts.map((part) => [part.partNumber, part.sizeBytes, part.etag]), [[1, partOne.length, createHash('md5').update(partOne).digest('hex')]]);
      await engine.completeMultipartUpload('fixture-bucket', 'pending/upload', uploadId, [{ partNumber: 1, etag: parts.parts[0]!.etag }]);
      assert.deepEqual(await read('pending/upload'), partOne);
    } finally {
      await engine.close();
    }
  });
});
