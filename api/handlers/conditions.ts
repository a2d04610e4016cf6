// HTTP conditional requests as S3 evaluates them (RFC 7232 §6 order): If-Match / If-Unmodified-Since
// (412), then If-None-Match / If-Modified-Since (304 for GET/HEAD). CopyObject uses the same rules on the
// x-amz-copy-source-if-* headers, where every failure is 412.
import type { ObjectInfo } from '../../engine/types.ts';
import { S3Error } from '../errors.ts';

export type ConditionOutcome = 'proceed' | 'not-modified';

function parseHttpDateMs(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? undefined : ms;
}

function etagMatches(list: string, etag: string): boolean {
  return list.split(',').some((candidate) => {
    const trimmed = candidate.trim().replace(/^W\//, '');
    return trimmed === '*' || trimmed.replace(/^"|"$/g, '') === etag;
  });
}

/** Compare at one-second resolution: HTTP dates carry no sub-second part. */
function secondsOf(ms: number): number {
  return Math.floor(ms / 1000);
}

export function evaluateConditions(
  headers: ReadonlyMap<string, string>,
  info: ObjectInfo,
  prefix: '' | 'x-amz-copy-source-',
): ConditionOutcome {
  const ifMatch = headers.get(`${prefix}if-match`);
  const ifNoneMatch = headers.get(`${prefix}if-none-match`);
  const ifModifiedSince = parseHttpDateMs(headers.get(`${prefix}if-modified-since`));
  const ifUnmodifiedSince = parseHttpDateMs(headers.get(`${prefix}if-unmodified-since`));
  const modifiedSeconds = secondsOf(info.modTimeMs);
  if (ifMatch !== undefined) {
    if (!etagMatches(ifMatch, info.etag)) throw new S3Error('PreconditionFailed', undefined, { Condition: 'If-Match' });
  } else if (ifUnmodifiedSince !== undefined && modifiedSeconds > secondsOf(ifUnmodifiedSince)) {
    throw new S3Error('PreconditionFailed', undefined, { Condition: 'If-Unmodified-Since' });
  }
  const notModified =
    ifNoneMatch !== undefined
      ? etagMatches(ifNoneMatch, info.etag)
      : ifModifiedSince !== undefined && modifiedSeconds <= secondsOf(ifModifiedSince);
  if (!notModified) return 'proceed';
  if (prefix !== '') {
    throw new S3Error('PreconditionFailed', undefined, { Condition: ifNoneMatch !== undefined ? 'If-None-Match' : 'If-Modified-Since' });
  }
  return 'not-modified';
}
