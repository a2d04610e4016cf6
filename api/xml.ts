// S3 XML on the wire: a tiny writer for response bodies and a small, strict, bounded parser for the request
// bodies S3 accepts (CompleteMultipartUpload, Delete, CreateBucketConfiguration, later
// ServerSideEncryptionConfiguration, Tagging, ...). No general-purpose XML library: we need ~1% of XML,
// and the 1% we leave out (DTDs, entity declarations) is exactly where XXE and entity-expansion bombs live.

import { S3Error } from './errors.ts';
import type { ChecksumAlgorithm } from '../engine/types.ts';

/** The S3 namespace every S3 response document carries on its root element. */
export const s3XmlNamespace = 'http://s3.amazonaws.com/doc/2006-03-01/';

const xmlDeclaration = '<?xml version="1.0" encoding="UTF-8"?>';

// ---------------------------------------------------------------------------------------------------------
// Writer
// ---------------------------------------------------------------------------------------------------------

export type XmlScalar = string | number | bigint | boolean;

/**
 * What goes inside one element: text (a scalar), child elements, or nothing. `undefined`/`null` omit the
 * element entirely (S3 leaves optional fields out rather than sending them empty).
 */
export type XmlContent = XmlScalar | XmlObject | XmlSeq | XmlWithAttributes | undefined | null;

/** A property of an XmlObject: one element, or an array = that element repeated once per item, in order. */
export type XmlValue = XmlContent | readonly XmlContent[];

/**
 * Child elements, in insertion order (JS objects keep string keys in insertion order, and XML names never
 * look like array indices, so the order is exactly the order written).
 */
export interface XmlObject {
  readonly [name: string]: XmlValue;
}

/**
 * Child elements as an explicit ordered list of [name, value] pairs, for when differently named elements
 * interleave (ListObjectVersions mixes <Version> and <DeleteMarker> in key order), which an object can't say.
 */
export class XmlSeq {
  constructor(readonly entries: readonly (readonly [name: string, value: XmlValue])[]) {}
}

export function xmlSeq(entries: readonly (readonly [name: string, value: XmlValue])[]): XmlSeq {
  return new XmlSeq(entries);
}

/** An element with attributes (e.g. <Grantee xmlns:xsi=".." xsi:type="CanonicalUser"> in ACL responses). */
export class XmlWithAttributes {
  constructor(
    readonly attributes: Readonly<Record<string, string>>,
    readonly content: XmlContent,
  ) {}
}

export function xmlWithAttributes(attributes: Readonly<Record<string, string>>, content: XmlContent): XmlWithAttributes {
  return new XmlWithAttributes(attributes, content);
}

// Characters that need escaping in text and attribute values. Besides the five markup characters:
// - all C0 controls (\t \n \r included, so they survive the parser's end-of-line normalization),
// - U+FFFE/U+FFFF and lone surrogates, which are not XML 1.0 characters.
// eslint-disable-next-line no-control-regex
const needsEscapeRegex = /[&<>"'\u0000-\u001f\ud800-\udfff\ufffe\uffff]/;
// eslint-disable-next-line no-control-regex
const escapeRegex = /[&<>"'\u0000-\u001f\ufffe\uffff]|[\ud800-\udbff][\udc00-\udfff]?|[\udc00-\udfff]/g;

function escapeChar(match: string): string {
  switch (match) {
    case '&': return '&amp;';
    case '<': return '&lt;';
    case '>': return '&gt;';
    case '"': return '&quot;';
    case "'": return '&apos;';
  }
  const code = match.charCodeAt(0);
  if (code >= 0xd800 && code <= 0xdfff) {
    // a well-formed surrogate pair passes through; a lone surrogate can't be encoded as UTF-8 at all
    return match.length === 2 ? match : '\ufffd';
  }
  // Controls other than \t \n \r (and U+FFFE/U+FFFF) are not legal XML 1.0 characters even as references.
  // AWS S3 writes them as character references anyway (which is why it offers encoding-type=url); we do the
  // same so they never appear raw and a lenient client still gets the exact key back.
  return `&#x${code.toString(16).toUpperCase()};`;
}

/** Escape text for element content or a double-quoted attribute value. */
export function escapeXml(text: string): string {
  return needsEscapeRegex.test(text) ? text.replace(escapeRegex, escapeChar) : text;
}

function scalarText(value: XmlScalar): string {
  switch (typeof value) {
    case 'string': return escapeXml(value);
    case 'boolean': return value ? 'true' : 'false';
    case 'bigint': return value.toString();
    case 'number':
      if (!Number.isFinite(value)) throw new Error(`xml: non-finite number ${value}`);
      return String(value);
  }
}

function assertElementName(name: string): void {
  // names come from our own code, never from clients: a bad one is a bug
  if (!/^[A-Za-z_][A-Za-z0-9._:-]*$/.test(name)) throw new Error(`xml: invalid element name ${JSON.stringify(name)}`);
}

function renderAttributes(attributes: Readonly<Record<string, string>>): string {
  let out = '';
  for (const [name, value] of Object.entries(attributes)) {
    assertElementName(name);
    out += ` ${name}="${escapeXml(value)}"`;
  }
  return out;
}

function renderElement(parts: string[], name: string, content: XmlContent, attributes: string): void {
  if (content === undefined || content === null) return;
  if (content instanceof XmlWithAttributes) {
    renderElement(parts, name, content.content, attributes + renderAttributes(content.attributes));
    return;
  }
  assertElementName(name);
  parts.push(`<${name}${attributes}>`);
  if (typeof content === 'object') renderChildren(parts, content);
  else parts.push(scalarText(content));
  parts.push(`</${name}>`);
}

function renderValue(parts: string[], name: string, value: XmlValue): void {
  if (Array.isArray(value)) {
    for (const item of value as readonly XmlContent[]) renderElement(parts, name, item, '');
  } else {
    renderElement(parts, name, value as XmlContent, '');
  }
}

function renderChildren(parts: string[], children: XmlObject | XmlSeq): void {
  if (children instanceof XmlSeq) {
    for (const [name, value] of children.entries) renderValue(parts, name, value);
  } else {
    for (const name of Object.keys(children)) renderValue(parts, name, children[name]);
  }
}

export interface XmlDocumentOptions {
  /** namespace for the root element; S3 responses use s3XmlNamespace */
  readonly xmlns?: string;
}

/**
 * Render a complete XML document: declaration, root element (with xmlns when asked), children in order.
 * `xmlDocument('ListAllMyBucketsResult', {Owner: {ID: id}, Buckets: {Bucket: [{Name: 'a'}, {Name: 'b'}]}},
 * {xmlns: s3XmlNamespace})`.
 */
export function xmlDocument(rootName: string, children: XmlObject | XmlSeq, options: XmlDocumentOptions = {}): string {
  assertElementName(rootName);
  const parts: string[] = [xmlDeclaration];
  parts.push(options.xmlns === undefined ? `<${rootName}>` : `<${rootName} xmlns="${escapeXml(options.xmlns)}">`);
  renderChildren(parts, children);
  parts.push(`</${rootName}>`);
  return parts.join('');
}

// ---------------------------------------------------------------------------------------------------------
// Parser
// ---------------------------------------------------------------------------------------------------------

/** Request XML bodies larger than this are refused (the caller should refuse them before buffering). */
export const xmlBodySizeBytesMax = 2 * 1024 * 1024;
/** Deepest element nesting accepted; S3 request documents are at most ~5 levels deep. */
export const xmlDepthMax = 16;
/** Most elements accepted in one document (a 1000-object Delete is ~3000). */
export const xmlElementCountMax = 100_000;
/** S3 limits (AWS "Amazon S3 multipart upload limits", DeleteObjects API reference). */
export const partsPerUploadMax = 10_000;
export const deleteObjectsPerRequestMax = 1000;

/** One parsed element: local name (namespace prefix stripped), child elements, and its direct text. */
export interface XmlElement {
  readonly name: string;
  readonly children: readonly XmlElement[];
  /** concatenation of the element's own text, CDATA and references, exactly as written (not trimmed) */
  readonly text: string;
}

interface MutableElement {
  name: string;
  /** qualified name as written, for matching the end tag */
  qualifiedName: string;
  children: MutableElement[];
  text: string;
}

function malformed(why: string): S3Error {
  // The client gets MalformedXML's standard message, as from AWS; the reason rides along as `cause` for our
  // logs and tests.
  const error = new S3Error('MalformedXML');
  error.cause = why;
  return error;
}

// a Map, not an object literal: `&toString;` must not find Object.prototype.toString
const predefinedEntities: ReadonlyMap<string, string> = new Map([['amp', '&'], ['lt', '<'], ['gt', '>'], ['quot', '"'], ['apos', "'"]]);

// A Name per XML 1.0, simplified to what request documents use (no exotic Unicode name characters needed, but
// allow them rather than reject valid XML): start char, then name chars, up to a delimiter.
const nameRegex = /[A-Za-z_:\u00C0-\uFFFD][A-Za-z0-9_:.\-\u00B7\u00C0-\uFFFD]*/y;
const whitespaceRegex = /[ \t\r\n]*/y;

class XmlScanner {
  pos = 0;
  elementCount = 0;
  constructor(readonly src: string) {}

  fail(why: string): never {
    throw malformed(`${why} at offset ${this.pos}`);
  }

  startsWith(s: string): boolean {
    return this.src.startsWith(s, this.pos);
  }

  skipWhitespace(): boolean {
    whitespaceRegex.lastIndex = this.pos;
    whitespaceRegex.exec(this.src);
    const skipped = whitespaceRegex.lastIndex > this.pos;
    this.pos = whitespaceRegex.lastIndex;
    return skipped;
  }

  readName(): string {
    nameRegex.lastIndex = this.pos;
    const m = nameRegex.exec(this.src);
    if (m === null) this.fail('expected a name');
    this.pos = nameRegex.lastIndex;
    return m[0];
  }

  /** position just after `terminator`, searching from pos; fails if absent */
  indexAfter(terminator: string, what: string): number {
    const i = this.src.indexOf(terminator, this.pos);
    if (i < 0) this.fail(`unterminated ${what}`);
    return i + terminator.length;
  }

  /** Decode raw character data: references, and end-of-line normalization (XML 1.0 §2.11). */
  decodeText(raw: string): string {
    if (raw.indexOf('\r') >= 0) raw = raw.replace(/\r\n?/g, '\n');
    let amp = raw.indexOf('&');
    if (amp < 0) return raw;
    let out = '';
    let from = 0;
    while (amp >= 0) {
      const semicolon = raw.indexOf(';', amp + 1);
      if (semicolon < 0) this.fail('unterminated reference');
      const ref = raw.slice(amp + 1, semicolon);
      out += raw.slice(from, amp) + this.decodeReference(ref);
      from = semicolon + 1;
      amp = raw.indexOf('&', from);
    }
    return out + raw.slice(from);
  }

  decodeReference(ref: string): string {
    const predefined = predefinedEntities.get(ref);
    if (predefined !== undefined) return predefined;
    if (ref.startsWith('#')) {
      const code = /^#x[0-9A-Fa-f]{1,6}$/.test(ref)
        ? parseInt(ref.slice(2), 16)
        : /^#[0-9]{1,7}$/.test(ref) ? parseInt(ref.slice(1), 10) : -1;
      // Accept any Unicode scalar value but NUL: XML 1.0 forbids references to most C0 controls, but S3
      // writes them (see escapeChar) and a client echoing such a key in a Delete must be able to.
      if (code <= 0 || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) this.fail('invalid character reference');
      return String.fromCodePoint(code);
    }
    // any other entity could only be declared in a DTD, which we never accept
    this.fail(`undefined entity &${ref.slice(0, 32)};`);
  }

  /** Parse `<?name ...?>` at pos (processing instruction); returns the target name. */
  skipProcessingInstruction(): string {
    this.pos += 2;
    const target = this.readName();
    this.pos = this.indexAfter('?>', 'processing instruction');
    return target;
  }

  skipComment(): void {
    this.pos += 4;
    const end = this.src.indexOf('-->', this.pos);
    if (end < 0) this.fail('unterminated comment');
    if (this.src.slice(this.pos, end).includes('--')) this.fail("'--' inside comment");
    this.pos = end + 3;
  }

  /** Misc* outside the root element: whitespace, comments, processing instructions. */
  skipMisc(): void {
    for (;;) {
      this.skipWhitespace();
      if (this.startsWith('<!--')) this.skipComment();
      else if (this.startsWith('<?')) {
        if (this.skipProcessingInstruction().toLowerCase() === 'xml') this.fail('misplaced XML declaration');
      } else if (this.startsWith('<!')) this.fail('DOCTYPE and other declarations are not accepted');
      else return;
    }
  }

  /** Parse attributes up to `>` or `/>`; returns true for an empty-element tag. Attributes are discarded. */
  readAttributes(): boolean {
    let seen: Set<string> | undefined;
    for (;;) {
      const hadSpace = this.skipWhitespace();
      if (this.startsWith('/>')) { this.pos += 2; return true; }
      if (this.startsWith('>')) { this.pos += 1; return false; }
      if (!hadSpace) this.fail('expected whitespace before attribute');
      const name = this.readName();
      seen ??= new Set<string>();
      if (seen.has(name)) this.fail(`duplicate attribute ${name}`);
      seen.add(name);
      this.skipWhitespace();
      if (!this.startsWith('=')) this.fail('expected = after attribute name');
      this.pos += 1;
      this.skipWhitespace();
      const quote = this.src[this.pos];
      if (quote !== '"' && quote !== "'") this.fail('expected quoted attribute value');
      this.pos += 1;
      const end = this.src.indexOf(quote, this.pos);
      if (end < 0) this.fail('unterminated attribute value');
      const raw = this.src.slice(this.pos, end);
      if (raw.includes('<')) this.fail("'<' in attribute value");
      this.decodeText(raw); // validates references
      this.pos = end + 1;
    }
  }

  /** Parse a start tag at pos (just at '<'). */
  readStartTag(): { element: MutableElement; selfClosing: boolean } {
    this.pos += 1;
    const qualifiedName = this.readName();
    const element: MutableElement = { name: localName(qualifiedName), qualifiedName, children: [], text: '' };
    if (element.name === '') this.fail('empty local name');
    if (++this.elementCount > xmlElementCountMax) this.fail('too many elements');
    return { element, selfClosing: this.readAttributes() };
  }

  parseDocument(): MutableElement {
    if (this.startsWith('\ufeff')) this.pos += 1;
    // XML 1.0 wants the declaration at offset 0; tolerate leading whitespace, as some hand-written clients send it
    this.skipWhitespace();
    if (this.startsWith('<?xml') && /[ \t\r\n?]/.test(this.src[this.pos + 5] ?? '')) {
      this.pos = this.indexAfter('?>', 'XML declaration');
    }
    this.skipMisc();
    if (!this.startsWith('<')) this.fail(this.pos >= this.src.length ? 'no root element' : 'text outside the root element');
    const { element: root, selfClosing } = this.readStartTag();
    if (!selfClosing) this.parseContent(root);
    this.skipMisc();
    if (this.pos < this.src.length) this.fail('content after the root element');
    return root;
  }

  /** Parse the content of `root` (whose start tag was just read) up to and including its end tag. */
  parseContent(root: MutableElement): void {
    const stack: MutableElement[] = [root];
    const src = this.src;
    while (stack.length > 0) {
      const current = stack[stack.length - 1]!;
      const lt = src.indexOf('<', this.pos);
      if (lt < 0) { this.pos = src.length; this.fail(`unterminated element <${current.qualifiedName}>`); }
      if (lt > this.pos) {
        const raw = src.slice(this.pos, lt);
        if (raw.includes(']]>')) this.fail("']]>' in text");
        current.text += this.decodeText(raw);
        this.pos = lt;
      }
      if (this.startsWith('</')) {
        this.pos += 2;
        const name = this.readName();
        if (name !== current.qualifiedName) this.fail(`end tag </${name}> does not match <${current.qualifiedName}>`);
        this.skipWhitespace();
        if (!this.startsWith('>')) this.fail('malformed end tag');
        this.pos += 1;
        stack.pop();
      } else if (this.startsWith('<![CDATA[')) {
        const start = this.pos + 9;
        const end = src.indexOf(']]>', start);
        if (end < 0) this.fail('unterminated CDATA section');
        current.text += src.slice(start, end).replace(/\r\n?/g, '\n');
        this.pos = end + 3;
      } else if (this.startsWith('<!--')) {
        this.skipComment();
      } else if (this.startsWith('<?')) {
        if (this.skipProcessingInstruction().toLowerCase() === 'xml') this.fail('misplaced XML declaration');
      } else if (this.startsWith('<!')) {
        this.fail('declarations are not accepted');
      } else {
        if (stack.length >= xmlDepthMax) this.fail('elements nested too deeply');
        const { element, selfClosing } = this.readStartTag();
        current.children.push(element);
        if (!selfClosing) stack.push(element);
      }
    }
  }
}

function localName(qualifiedName: string): string {
  const colon = qualifiedName.lastIndexOf(':');
  return colon < 0 ? qualifiedName : qualifiedName.slice(colon + 1);
}

const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Parse an XML request body into an element tree. Namespaces are ignored (prefixes stripped, xmlns attributes
 * discarded): S3 itself accepts bodies with or without the S3 namespace. Anything outside the subset we accept,
 * or malformed, or over a limit, is S3Error('MalformedXML').
 */
export function parseXml(body: Uint8Array | string): XmlElement {
  let src: string;
  if (typeof body === 'string') {
    if (body.length > xmlBodySizeBytesMax) throw malformed('body too large');
    src = body;
  } else {
    if (body.byteLength > xmlBodySizeBytesMax) throw malformed('body too large');
    try {
      src = utf8Decoder.decode(body);
    } catch {
      throw malformed('body is not valid UTF-8');
    }
  }
  if (src.includes('\0')) throw malformed('NUL character');
  return new XmlScanner(src).parseDocument();
}

// ---------------------------------------------------------------------------------------------------------
// Typed extractors
// ---------------------------------------------------------------------------------------------------------

/** All direct children called `name`. */
export function childElements(parent: XmlElement, name: string): XmlElement[] {
  return parent.children.filter((c) => c.name === name);
}

/** The direct child called `name`, if present; more than one is MalformedXML. */
export function optionalChild(parent: XmlElement, name: string): XmlElement | undefined {
  let found: XmlElement | undefined;
  for (const c of parent.children) {
    if (c.name !== name) continue;
    if (found !== undefined) throw malformed(`duplicate <${name}> in <${parent.name}>`);
    found = c;
  }
  return found;
}

/** Text of a leaf element (one without child elements), exactly as written. */
export function leafText(element: XmlElement): string {
  if (element.children.length > 0) throw malformed(`<${element.name}> must contain only text`);
  return element.text;
}

/** Text of the optional leaf child `name`, exactly as written. */
export function optionalChildText(parent: XmlElement, name: string): string | undefined {
  const child = optionalChild(parent, name);
  return child === undefined ? undefined : leafText(child);
}

function expectRoot(root: XmlElement, name: string): void {
  if (root.name !== name) throw malformed(`expected root <${name}>, got <${root.name}>`);
}

function parseBooleanText(text: string, what: string): boolean {
  const t = text.trim().toLowerCase();
  if (t === 'true') return true;
  if (t === 'false') return false;
  throw malformed(`${what} must be true or false`);
}

const checksumElementNames: readonly (readonly [string, ChecksumAlgorithm])[] = [
  ['ChecksumCRC32', 'CRC32'],
  ['ChecksumCRC32C', 'CRC32C'],
  ['ChecksumCRC64NVME', 'CRC64NVME'],
  ['ChecksumSHA1', 'SHA1'],
  ['ChecksumSHA256', 'SHA256'],
];

export interface CompleteMultipartPart {
  readonly partNumber: number;
  /** without surrounding quotes */
  readonly etag: string;
  /** checksums the client sent for this part, trimmed but not validated (api/checksum.ts does that) */
  readonly checksums: Partial<Record<ChecksumAlgorithm, string>>;
}

/** Strip whitespace and one pair of surrounding double quotes (clients send `"abc"`, `&quot;abc&quot;` or `abc`). */
export function stripEtagQuotes(etag: string): string {
  const t = etag.trim();
  return t.length >= 2 && t.startsWith('"') && t.endsWith('"') ? t.slice(1, -1) : t;
}

/**
 * CompleteMultipartUpload request body (AWS API reference "CompleteMultipartUpload"):
 * `<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>"…"</ETag><ChecksumCRC32>…</ChecksumCRC32></Part>…`
 * Part order is not checked here (InvalidPartOrder is the engine's); an empty list is MalformedXML as in AWS.
 */
export function parseCompleteMultipartUpload(body: Uint8Array): CompleteMultipartPart[] {
  const root = parseXml(body);
  expectRoot(root, 'CompleteMultipartUpload');
  const partElements = childElements(root, 'Part');
  if (partElements.length === 0) throw malformed('no parts');
  if (partElements.length > partsPerUploadMax) throw malformed('too many parts');
  return partElements.map((part) => {
    const partNumberText = optionalChildText(part, 'PartNumber');
    if (partNumberText === undefined) throw malformed('Part without PartNumber');
    const t = partNumberText.trim();
    const partNumber = /^[0-9]{1,5}$/.test(t) ? Number(t) : NaN;
    if (!(partNumber >= 1 && partNumber <= partsPerUploadMax)) throw malformed('invalid PartNumber');
    const etagText = optionalChildText(part, 'ETag');
    if (etagText === undefined) throw malformed('Part without ETag');
    const checksums: Partial<Record<ChecksumAlgorithm, string>> = {};
    for (const [elementName, algorithm] of checksumElementNames) {
      const value = optionalChildText(part, elementName);
      if (value !== undefined) checksums[algorithm] = value.trim();
    }
    return { partNumber, etag: stripEtagQuotes(etagText), checksums };
  });
}

export interface DeleteObjectsRequest {
  readonly quiet: boolean;
  readonly objects: readonly { readonly key: string; readonly versionId?: string }[];
}

/**
 * DeleteObjects request body (AWS API reference "DeleteObjects"):
 * `<Delete><Quiet>true</Quiet><Object><Key>…</Key><VersionId>…</VersionId></Object>…</Delete>`.
 * Keys are kept exactly (leading/trailing spaces are part of a key). 0 or more than 1000 objects is
 * MalformedXML, as in AWS.
 */
export function parseDeleteObjects(body: Uint8Array): DeleteObjectsRequest {
  const root = parseXml(body);
  expectRoot(root, 'Delete');
  const quietText = optionalChildText(root, 'Quiet');
  const quiet = quietText === undefined ? false : parseBooleanText(quietText, 'Quiet');
  const objectElements = childElements(root, 'Object');
  if (objectElements.length === 0) throw malformed('no objects');
  if (objectElements.length > deleteObjectsPerRequestMax) throw malformed('too many objects');
  const objects = objectElements.map((o) => {
    const key = optionalChildText(o, 'Key');
    if (key === undefined) throw malformed('Object without Key');
    const versionId = optionalChildText(o, 'VersionId')?.trim();
    return versionId === undefined ? { key } : { key, versionId };
  });
  return { quiet, objects };
}

export interface CreateBucketConfiguration {
  readonly locationConstraint?: string;
}

/** CreateBucket request body; optional (an empty body is no configuration). */
export function parseCreateBucketConfiguration(body: Uint8Array): CreateBucketConfiguration {
  if (isBlank(body)) return {};
  const root = parseXml(body);
  expectRoot(root, 'CreateBucketConfiguration');
  const location = optionalChildText(root, 'LocationConstraint')?.trim();
  return location === undefined || location === '' ? {} : { locationConstraint: location };
}

function isBlank(body: Uint8Array): boolean {
  for (const b of body) if (b !== 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0d) return false;
  return true;
}

export interface ServerSideEncryptionConfiguration {
  readonly algorithm: 'AES256' | 'aws:kms';
  readonly kmsMasterKeyId?: string;
}

/**
 * PutBucketEncryption body (AWS API reference "PutBucketEncryption"): exactly one
 * `<Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>AES256|aws:kms</SSEAlgorithm>[<KMSMasterKeyID>]`.
 * `BucketKeyEnabled` is accepted and ignored. Invalid combinations are MalformedXML, as in MinIO and AWS.
 */
export function parseServerSideEncryptionConfiguration(body: Uint8Array): ServerSideEncryptionConfiguration {
  const root = parseXml(body);
  expectRoot(root, 'ServerSideEncryptionConfiguration');
  const rules = childElements(root, 'Rule');
  if (rules.length !== 1) throw malformed('only one server-side encryption rule is allowed at a time');
  const apply = optionalChild(rules[0]!, 'ApplyServerSideEncryptionByDefault');
  if (apply === undefined) throw malformed('Rule without ApplyServerSideEncryptionByDefault');
  const algorithm = optionalChildText(apply, 'SSEAlgorithm')?.trim();
  const keyId = optionalChildText(apply, 'KMSMasterKeyID');
  if (algorithm !== 'AES256' && algorithm !== 'aws:kms') throw malformed('Unknown SSE algorithm');
  if (algorithm === 'AES256') {
    if (keyId !== undefined && keyId.trim() !== '') throw malformed('MasterKeyID is allowed with aws:kms only');
    return { algorithm };
  }
  if (keyId === undefined || keyId === '') return { algorithm };
  if (keyId.trim() !== keyId) throw malformed('MasterKeyID contains unsupported characters');
  return { algorithm, kmsMasterKeyId: keyId };
}
