// GetObject and HeadObject: conditional requests, a single byte range (RFC 7233 as S3 applies it),
// ?partNumber=N, response-* header overrides, and the stored checksum with x-amz-checksum-mode: ENABLED.
import type { ObjectInfo } from '../../engine/types.ts';
import type { RequestContext } from '../context.ts';
import { S3Error } from '../errors.ts';
import type { HeaderList } from '../response.ts';
import { assertBucketName } from './bucket.ts';
import { evaluateConditions } from './conditions.ts';
import { httpDate, objectHeaders, quoteEtag } from './metadata.ts';
import { keyForPartOf, openEnvelope, parseReadSse, sseResponseHeaders, sseTypeOf } from '../sse.ts';

export interface ByteRange {
  readonly start: number;
  readonly endInclusive: number;
}

function unsatisfiable(sizeBytes: number): never {
  throw new S3Error('InvalidRange', undefined, { RangeRequested: '', ActualObjectSize: String(sizeBytes) });
}

/**
 * A `Range: bytes=…` header against an object of sizeBytes. Syntax S3 does not understand (several ranges,
 * other units, garbage) is ignored and the whole object served, as S3 does; a well-formed but unsatisfiable
 * range is 416 InvalidRange.
 */
export function parseRange(header: string | undefined, sizeBytes: number): ByteRange | undefined {
  if (header === undefined) return undefined;
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match) return undefined;
  const [, firstText, lastText] = match as unknown as [string, string, string];
  if (firstText === '' && lastText === '') return undefined;
  if (firstText === '') {
    const suffixBytes = Number(lastText);
    if (suffixBytes === 0 || sizeBytes === 0) unsatisfiable(sizeBytes);
    return { start: Math.max(0, sizeBytes - suffixBytes), endInclusive: sizeBytes - 1 };
  }
  const start = Number(firstText);
  const last = lastText === '' ? Number.MAX_SAFE_INTEGER : Number(lastText);
  if (last < start) return undefined;
  if (start >= sizeBytes) unsatisfiable(sizeBytes);
  return { start, endInclusive: Math.min(last, sizeBytes - 1) };
}

/** The byte span of part N of a multipart object (GetObject/HeadObject with ?partNumber=N). */
function partRange(info: ObjectInfo, partNumberText: string): ByteRange {
  const partNumber = /^\d{1,5}$/.test(partNumberText) ? Number(partNumberText) : NaN;
  if (!(partNumber >= 1 && partNumber <= 10000)) throw new S3Error('InvalidArgument', 'Part number must be an integer between 1 and 10000, inclusive.', { ArgumentName: 'partNumber' });
  let start = 0;
  for (const [index, part] of info.parts.entries()) {
    if (index + 1 === partNumber) return { start, endInclusive: start + part.sizeBytes - 1 };
    start += part.sizeBytes;
  }
  throw new S3Error('InvalidPartNumber');
}

const responseOverrides: Readonly<Record<string, string>> = {
  'response-content-type': 'Content-Type',
  'response-content-language': 'Content-Language',
  'response-expires': 'Expires',
  'response-cache-control': 'Cache-Control',
  'response-content-disposition': 'Content-Disposition',
  'response-content-encoding': 'Content-Encoding',
};

function applyOverrides(headers: HeaderList, query: ReadonlyMap<string, string>): HeaderList {
  const overrides = new Map<string, string>();
  for (const [param, header] of Object.entries(responseOverrides)) {
    const value = query.get(param);
    if (value !== undefined) overrides.set(header.toLowerCase(), value);
  }
  if (overrides.size === 0) return headers;
  const result: Array<readonly [string, string]> = headers.filter(([name]) => !overrides.has(name.toLowerCase()));
  for (const [param, header] of Object.entries(responseOverrides)) {
    const value = query.get(param);
    if (value !== undefined) result.push([header, value]);
  }
  return result;
}

async function getOrHead(ctx: RequestContext, head: boolean): Promise<void> {
  const { req } = ctx;
  assertBucketName(req.bucket);
  const versionId = req.query.get('versionId');
  if (versionId !== undefined && versionId !== 'null') throw new S3Error('NoSuchVersion');
  const reader = await ctx.engine.openObject(req.bucket, req.key);
  try {
    const info = reader.info;
    const customer = parseReadSse(req.headers, ctx.secure, ctx.sse);
    let keyForPart: ((partNumber: number) => Buffer) | undefined;
    if (info.encryption === undefined) {
      if (customer) throw new S3Error('InvalidRequest', 'The encryption parameters are not applicable to this object.');
    } else if (!head || customer || sseTypeOf(info.encryption) === 'SSE-C') {
      // HEAD of an SSE-C object still proves the key (it unseals the object key); SSE-S3/KMS HEADs need no KMS call.
      keyForPart = keyForPartOf(info.encryption, await openEnvelope(info.encryption, req.bucket, req.key, customer, ctx.sse));
    }
    if (evaluateConditions(req.headers, info, '') === 'not-modified') {
      ctx.res.sendWithoutBody(304, [['ETag', quoteEtag(info.etag)], ['Last-Modified', httpDate(info.modTimeMs)]]);
      return;
    }
    const partNumberText = req.query.get('partNumber');
    let range: ByteRange | undefined;
    let isPartial = false;
    if (partNumberText !== undefined) {
      range = info.sizeBytes === 0 && partNumberText === '1' ? undefined : partRange(info, partNumberText);
      isPartial = info.parts.length > 1;
    } else {
      range = parseRange(req.headers.get('range'), info.sizeBytes);
      isPartial = range !== undefined;
    }
    const wholeObject = !isPartial;
    const checksumMode = (req.headers.get('x-amz-checksum-mode') ?? '').toUpperCase() === 'ENABLED';
    let headers = [...objectHeaders(info, checksumMode && wholeObject), ...sseResponseHeaders(info.encryption, customer)];
    headers = applyOverrides(headers, req.query);
    const start = range?.start ?? 0;
    const endInclusive = range?.endInclusive ?? info.sizeBytes - 1;
    const lengthBytes = endInclusive - start + 1;
    const status = isPartial ? 206 : 200;
    if (isPartial) headers = [...headers, ['Content-Range', `bytes ${start}-${endInclusive}/${info.sizeBytes}`]];
    if (head) {
      ctx.res.sendWithoutBody(status, headers, lengthBytes);
      return;
    }
    await ctx.res.stream(status, headers, lengthBytes, reader.read(start, endInclusive, keyForPart));
  } finally {
    await reader.close();
  }
}

export function getObject(ctx: RequestContext): Promise<void> {
  return getOrHead(ctx, false);
}

export function headObject(ctx: RequestContext): Promise<void> {
  return getOrHead(ctx, true);
}
