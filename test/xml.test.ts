import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  deleteObjectsPerRequestMax,
  escapeXml,
  parseCompleteMultipartUpload,
  parseCreateBucketConfiguration,
  parseDeleteObjects,
  parseXml,
  s3XmlNamespace,
  xmlDepthMax,
  xmlDocument,
  xmlSeq,
  xmlWithAttributes,
  type XmlElement,
} from '../api/xml.ts';
import { S3Error } from '../api/errors.ts';

const decl = '<?xml version="1.0" encoding="UTF-8"?>';
const b = (s: string): Buffer => Buffer.from(s, 'utf8');

function assertMalformed(fn: () => unknown, message?: string): void {
  assert.throws(fn, (e: unknown) => e instanceof S3Error && e.code === 'MalformedXML' && e.status === 400, message);
}

// --- writer ---------------------------------------------------------------------------------------------

test('xmlDocument: declaration, namespace, order, repeated elements, omitted undefined', () => {
  const xml = xmlDocument(
    'ListBucketResult',
    {
      Name: 'bucket',
      Prefix: '',
      Marker: undefined,
      MaxKeys: 1000,
      IsTruncated: false,
      Contents: [
        { Key: 'a', Size: 1 },
        { Key: 'b', Size: 2n },
      ],
      CommonPrefixes: [{ Prefix: 'p/' }],
      Empty: [],
      Null: null,
    },
    { xmlns: s3XmlNamespace },
  );
  assert.equal(
    xml,
    `${decl}<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>bucket</Name><Prefix></Prefix>` +
      '<MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated><Contents><Key>a</Key><Size>1</Size></Contents>' +
      '<Contents><Key>b</Key><Size>2</Size></Contents><CommonPrefixes><Prefix>p/</Prefix></CommonPrefixes></ListBucketResult>',
  );
  assert.equal(xmlDocument('R', {}), `${decl}<R></R>`);
});

test('xmlSeq interleaves differently named elements; attributes', () => {
  const xml = xmlDocument(
    'ListVersionsResult',
    xmlSeq([
      ['Name', 'b'],
      ['Version', { Key: 'a' }],
      ['DeleteMarker', { Key: 'b' }],
      ['Version', [{ Key: 'c' }, { Key: 'd' }]],
      ['Grantee', xmlWithAttributes({ 'xmlns:xsi': 'http://www.w3.org/2001/XMLSchema-instance', 'xsi:type': 'CanonicalUser' }, { ID: 'x' })],
    ]),
  );
  assert.equal(
    xml,
    `${decl}<ListVersionsResult><Name>b</Name><Version><Key>a</Key></Version><DeleteMarker><Key>b</Key></DeleteMarker>` +
      '<Version><Key>c</Key></Version><Version><Key>d</Key></Version>' +
      '<Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="CanonicalUser"><ID>x</ID></Grantee></ListVersionsResult>',
  );
});

test('escapeXml: markup characters and controls', () => {
  assert.equal(escapeXml('plain key/é日本'), 'plain key/é日本');
  assert.equal(escapeXml(`a&b<c>d"e'f`), 'a&amp;b&lt;c&gt;d&quot;e&apos;f');
  assert.equal(escapeXml('tab\tnl\ncr\r'), 'tab&#x9;nl&#xA;cr&#xD;');
  assert.equal(escapeXml('\u0001\u001f\u007f'), '&#x1;&#x1F;\u007f');
  assert.equal(escapeXml('\ufffe\uffff'), '&#xFFFE;&#xFFFF;');
  assert.equal(escapeXml('😀'), '😀'); // surrogate pair passes through
  assert.equal(escapeXml('a\ud800b\udc00'), 'a\ufffdb\ufffd'); // lone surrogates can't be UTF-8
  assert.throws(() => xmlDocument('bad name', {}));
  assert.throws(() => xmlDocument('R', { N: Number.NaN }));
});

test('writer output round-trips through the parser, text exact', () => {
  const keys = ['  spaced  ', 'a&b<c>"\'', 'line\r\nbreak\rcr\ttab', '\u0001ctl', 'unicode é 日本 😀', ']]>', ''];
  const xml = xmlDocument('Delete', { Object: keys.map((Key) => ({ Key })) }, { xmlns: s3XmlNamespace });
  assert.ok(!/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/.test(xml));
  const parsed = parseDeleteObjects(b(xml));
  assert.deepEqual(
    parsed.objects.map((o) => o.key),
    keys,
  );
});

// --- generic parser -------------------------------------------------------------------------------------

function strip(e: XmlElement): unknown {
  return { name: e.name, text: e.text, children: e.children.map(strip) };
}

test('parseXml: declaration, BOM, comments, PIs, CDATA, entities, char refs, attributes, prefixes', () => {
  const xml =
    '\ufeff<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<!-- leading comment -->\n<?pi stuff?>' +
    `<s3:Root xmlns:s3="${s3XmlNamespace}" a='1' b = "x&amp;y"><s3:A>&lt;&gt;&amp;&quot;&apos;&#65;&#x42;&#x1F600;</s3:A>` +
    '<B><![CDATA[<not> &markup;]]>tail</B><!-- inner --><C/><D attr="v" /></s3:Root>\n<!-- trailing -->\n';
  assert.deepEqual(strip(parseXml(b(xml))), {
    name: 'Root',
    text: '',
    children: [
      { name: 'A', text: `<>&"'AB😀`, children: [] },
      { name: 'B', text: '<not> &markup;tail', children: [] },
      { name: 'C', text: '', children: [] },
      { name: 'D', text: '', children: [] },
    ],
  });
});

test('parseXml: end-of-line normalization for raw text, not for references', () => {
  assert.equal(parseXml('<a>x\r\ny\rz&#xD;</a>').text, 'x\ny\nz\r');
});

test('parseXml rejects DOCTYPE / ENTITY (XXE, billion laughs)', () => {
  const xxe =
    '<?xml version="1.0"?><!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><Delete><Object><Key>&xxe;</Key></Object></Delete>';
  assertMalformed(() => parseXml(b(xxe)));
  assertMalformed(() => parseXml(b('<!DOCTYPE Delete><Delete/>')));
  assertMalformed(() => parseXml(b('<Delete><!ENTITY x "y"></Delete>')));
  assertMalformed(() => parseXml(b('<Delete>&xxe;</Delete>')));
  assertMalformed(() => parseXml(b('<Delete>&toString;</Delete>')));
  assertMalformed(() => parseXml(b('<Delete>&__proto__;</Delete>')));
  assertMalformed(() => parseXml(b('<Delete>&amp</Delete>')));
  assertMalformed(() => parseXml(b('<Delete>a & b</Delete>')));
});

test('parseXml rejects malformed documents', () => {
  const bad = [
    '',
    '   ',
    'garbage',
    '<a>',
    '<a></b>',
    '<a><b></a></b>',
    '<a></a><b></b>', // two roots
    'text<a></a>',
    '<a></a>text',
    '<a><!-- unterminated </a>',
    '<a><![CDATA[ unterminated </a>',
    '<a b="1></a>',
    '<a b=1></a>',
    '<a b="1" b="2"></a>',
    '<a b="1"c="2"></a>',
    '<a b="<"></a>',
    '<1a></1a>',
    '< a></a>',
    '<a></a',
    '<a>]]></a>',
    '<a><!-- a -- b --></a>',
    '<a></a><?xml version="1.0"?>',
    '<a>&#0;</a>',
    '<a>&#xD800;</a>',
    '<a>&#x110000;</a>',
    '<a>&#xZZ;</a>',
    '<a>\u0000</a>',
    '<a:></a:>',
  ];
  for (const xml of bad) assertMalformed(() => parseXml(b(xml)), JSON.stringify(xml));
  assertMalformed(() => parseXml(Buffer.from([0x3c, 0x61, 0x3e, 0xff, 0xfe, 0x3c, 0x2f, 0x61, 0x3e]))); // invalid UTF-8
});

test('parseXml: depth and size limits', () => {
  const nested = (depth: number): string => '<a>'.repeat(depth) + '</a>'.repeat(depth);
  assert.equal(parseXml(nested(xmlDepthMax)).name, 'a');
  assertMalformed(() => parseXml(nested(xmlDepthMax + 1)));
  assertMalformed(() => parseXml('<a>'.repeat(xmlDepthMax) + '<b/>' + '</a>'.repeat(xmlDepthMax)));
  assertMalformed(() => parseXml(nested(100_000)));
  assertMalformed(() => parseXml(b(`<a>${' '.repeat(2 * 1024 * 1024)}</a>`)));
  assertMalformed(() => parseXml(`<a>${' '.repeat(2 * 1024 * 1024)}</a>`));
});

test('parseXml: element count limit', () => {
  // 100,000 elements fit under 2 MiB only when tiny: <b/> is 4 bytes
  const ok = `<a>${'<b/>'.repeat(99_999)}</a>`;
  assert.equal(parseXml(ok).children.length, 99_999);
  assertMalformed(() => parseXml(`<a>${'<b/>'.repeat(100_000)}</a>`));
});

// --- CompleteMultipartUpload ---------------------------------------------------------------------------

test('parseCompleteMultipartUpload', () => {
  const xml = `${decl}<CompleteMultipartUpload xmlns="${s3XmlNamespace}">
    <Part><PartNumber> 1 </PartNumber><ETag>"etag1"</ETag><ChecksumCRC32>AAAAAA==</ChecksumCRC32></Part>
    <Part><ETag>&quot;etag2&quot;</ETag><PartNumber>2</PartNumber><ChecksumSHA256> abc= </ChecksumSHA256><ChecksumCRC64NVME>x</ChecksumCRC64NVME></Part>
    <Part><PartNumber>10000</PartNumber><ETag>etag3</ETag></Part>
  </CompleteMultipartUpload>`;
  assert.deepEqual(parseCompleteMultipartUpload(b(xml)), [
    { partNumber: 1, etag: 'etag1', checksums: { CRC32: 'AAAAAA==' } },
    { partNumber: 2, etag: 'etag2', checksums: { SHA256: 'abc=', CRC64NVME: 'x' } },
    { partNumber: 10000, etag: 'etag3', checksums: {} },
  ]);
  // prefixed tags
  const prefixed = `<x:CompleteMultipartUpload xmlns:x="${s3XmlNamespace}"><x:Part><x:PartNumber>3</x:PartNumber><x:ETag>&#34;e&#34;</x:ETag></x:Part></x:CompleteMultipartUpload>`;
  assert.deepEqual(parseCompleteMultipartUpload(b(prefixed)), [{ partNumber: 3, etag: 'e', checksums: {} }]);
});

test('parseCompleteMultipartUpload rejects bad input', () => {
  const wrap = (parts: string): Buffer => b(`<CompleteMultipartUpload>${parts}</CompleteMultipartUpload>`);
  assertMalformed(() => parseCompleteMultipartUpload(wrap('')));
  assertMalformed(() => parseCompleteMultipartUpload(b('')));
  assertMalformed(() => parseCompleteMultipartUpload(wrap('<Part><ETag>e</ETag></Part>')));
  for (const n of ['0', '-1', '10001', '1.5', 'abc', '', '1e3', '0x10', '１']) {
    assertMalformed(() => parseCompleteMultipartUpload(wrap(`<Part><PartNumber>${n}</PartNumber><ETag>e</ETag></Part>`)), n);
  }
  assertMalformed(() => parseCompleteMultipartUpload(wrap('<Part><PartNumber>1</PartNumber></Part>')));
  assertMalformed(() => parseCompleteMultipartUpload(wrap('<Part><PartNumber>1</PartNumber><PartNumber>2</PartNumber><ETag>e</ETag></Part>')));
  assertMalformed(() => parseCompleteMultipartUpload(wrap('<Part><PartNumber><x/>1</PartNumber><ETag>e</ETag></Part>')));
  assertMalformed(() => parseCompleteMultipartUpload(b('<Delete><Part><PartNumber>1</PartNumber><ETag>e</ETag></Part></Delete>')));
  const many = Array.from({ length: 10_001 }, (_, i) => `<Part><PartNumber>${(i % 10_000) + 1}</PartNumber><ETag>e</ETag></Part>`).join('');
  assertMalformed(() => parseCompleteMultipartUpload(wrap(many)));
});

// --- Delete ---------------------------------------------------------------------------------------------

test('parseDeleteObjects', () => {
  const xml = `${decl}<Delete xmlns="${s3XmlNamespace}"><Quiet> true </Quiet>
    <Object><Key>  lead and trail  </Key></Object>
    <Object><Key>a&amp;b</Key><VersionId>v1</VersionId></Object>
    <Object><Key><![CDATA[<cdata>]]></Key></Object>
  </Delete>`;
  assert.deepEqual(parseDeleteObjects(b(xml)), {
    quiet: true,
    objects: [{ key: '  lead and trail  ' }, { key: 'a&b', versionId: 'v1' }, { key: '<cdata>' }],
  });
  assert.deepEqual(parseDeleteObjects(b('<Delete><Object><Key>k</Key></Object></Delete>')), { quiet: false, objects: [{ key: 'k' }] });
  assert.equal(parseDeleteObjects(b('<Delete><Quiet>FALSE</Quiet><Object><Key>k</Key></Object></Delete>')).quiet, false);
  const prefixed = '<s:Delete xmlns:s="x"><s:Object><s:Key>k</s:Key></s:Object></s:Delete>';
  assert.deepEqual(parseDeleteObjects(b(prefixed)).objects, [{ key: 'k' }]);
});

test('parseDeleteObjects: object count limits and bad input', () => {
  const objects = (n: number): Buffer =>
    b(`<Delete>${Array.from({ length: n }, (_, i) => `<Object><Key>k${i}</Key></Object>`).join('')}</Delete>`);
  assert.equal(parseDeleteObjects(objects(deleteObjectsPerRequestMax)).objects.length, 1000);
  assertMalformed(() => parseDeleteObjects(objects(deleteObjectsPerRequestMax + 1)));
  assertMalformed(() => parseDeleteObjects(objects(0)));
  assertMalformed(() => parseDeleteObjects(b('<Delete><Quiet>yes</Quiet><Object><Key>k</Key></Object></Delete>')));
  assertMalformed(() => parseDeleteObjects(b('<Delete><Object><VersionId>v</VersionId></Object></Delete>')));
  assertMalformed(() => parseDeleteObjects(b('<Delete><Object><Key>a</Key><Key>b</Key></Object></Delete>')));
  assertMalformed(() => parseDeleteObjects(b('<Remove><Object><Key>k</Key></Object></Remove>')));
  assertMalformed(() => parseDeleteObjects(b('<Delete><Object><Key>k</Key></Object>')));
});

// --- CreateBucketConfiguration --------------------------------------------------------------------------

test('parseCreateBucketConfiguration', () => {
  assert.deepEqual(parseCreateBucketConfiguration(Buffer.alloc(0)), {});
  assert.deepEqual(parseCreateBucketConfiguration(b(' \n')), {});
  assert.deepEqual(
    parseCreateBucketConfiguration(
      b(`${decl}<CreateBucketConfiguration xmlns="${s3XmlNamespace}"><LocationConstraint> eu-west-1 </LocationConstraint></CreateBucketConfiguration>`),
    ),
    { locationConstraint: 'eu-west-1' },
  );
  assert.deepEqual(parseCreateBucketConfiguration(b('<CreateBucketConfiguration/>')), {});
  assert.deepEqual(parseCreateBucketConfiguration(b('<CreateBucketConfiguration><LocationConstraint/></CreateBucketConfiguration>')), {});
  assertMalformed(() => parseCreateBucketConfiguration(b('<Other/>')));
  assertMalformed(() => parseCreateBucketConfiguration(b('<CreateBucketConfiguration>')));
});
