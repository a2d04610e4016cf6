// mc's encryption flags on cp, cat and stat:
//   --enc-s3  "ALIAS/BUCKET/PREFIX[,…]"               SSE-S3 for objects written under the prefix
//   --enc-kms "ALIAS/BUCKET/PREFIX=KEY-ID[,…]"        SSE-KMS with that key
//   --enc-c   "ALIAS/BUCKET/PREFIX=BASE64-KEY[,…]"    SSE-C with that 32-byte key (base64, or 64 hex digits)
// Each flag may also be repeated. An object gets the rule with the longest matching prefix.
// SSE-S3/SSE-KMS only matter when writing; an SSE-C key is needed to write, read, stat and copy from.

import { createHash } from 'node:crypto';
import { UsageError } from './common.ts';

export type Sse =
  | { readonly type: 'none' }
  | { readonly type: 's3' }
  | { readonly type: 'kms'; readonly keyId: string }
  | { readonly type: 'c'; readonly key: Buffer };

interface SseRule {
  readonly prefix: string;
  readonly sse: Sse;
}

const customerKeyBytes = 32;
const rulesMax = 1000;

export const sseOptions = {
  'enc-s3': { type: 'string', multiple: true },
  'enc-kms': { type: 'string', multiple: true },
  'enc-c': { type: 'string', multiple: true },
} as const;

export interface SseFlags {
  readonly 'enc-s3'?: string[] | undefined;
  readonly 'enc-kms'?: string[] | undefined;
  readonly 'enc-c'?: string[] | undefined;
}

function splitList(values: readonly string[] | undefined): string[] {
  return (values ?? []).flatMap((value) => value.split(',')).map((item) => item.trim()).filter((item) => item !== '');
}

function splitAssignment(item: string, flag: string): [string, string] {
  const equals = item.indexOf('=');
  if (equals <= 0 || equals === item.length - 1) throw new UsageError(`--${flag} expects ALIAS/BUCKET/PREFIX=VALUE, got '${item}'`);
  return [item.slice(0, equals), item.slice(equals + 1)];
}

export function parseCustomerKey(text: string): Buffer {
  const key = /^[0-9a-fA-F]{64}$/.test(text) ? Buffer.from(text, 'hex') : Buffer.from(text, 'base64');
  if (key.length !== customerKeyBytes || (!/^[0-9a-fA-F]{64}$/.test(text) && key.toString('base64') !== text)) {
    throw new UsageError(`an SSE-C key must be ${customerKeyBytes} bytes in base64 (44 characters) or 64 hex digits`);
  }
  return key;
}

function normalizePrefix(prefix: string): string {
  return prefix.replace(/^\/+/, '').replace(/\/{2,}/g, '/');
}

export class SseRules {
  private readonly rules: readonly SseRule[];

  constructor(flags: SseFlags) {
    const rules: SseRule[] = [];
    for (const prefix of splitList(flags['enc-s3'])) rules.push({ prefix: normalizePrefix(prefix), sse: { type: 's3' } });
    for (const item of splitList(flags['enc-kms'])) {
      const [prefix, keyId] = splitAssignment(item, 'enc-kms');
      rules.push({ prefix: normalizePrefix(prefix), sse: { type: 'kms', keyId } });
    }
    for (const item of splitList(flags['enc-c'])) {
      const [prefix, keyText] = splitAssignment(item, 'enc-c');
      rules.push({ prefix: normalizePrefix(prefix), sse: { type: 'c', key: parseCustomerKey(keyText) } });
    }
    if (rules.length > rulesMax) throw new UsageError(`more than ${rulesMax} encryption rules`);
    this.rules = rules;
  }

  /** The rule for the object `ALIAS/BUCKET/KEY`: the longest matching prefix wins. */
  for(objectPath: string): Sse {
    let best: SseRule | undefined;
    for (const rule of this.rules) {
      if (objectPath.startsWith(rule.prefix) && (best === undefined || rule.prefix.length > best.prefix.length)) best = rule;
    }
    return best?.sse ?? { type: 'none' };
  }
}

function customerHeaders(key: Buffer, prefix: string): Record<string, string> {
  return {
    [`${prefix}-algorithm`]: 'AES256',
    [`${prefix}-key`]: key.toString('base64'),
    [`${prefix}-key-md5`]: createHash('md5').update(key).digest('base64'),
  };
}

/** Headers for writing an object (PUT, CreateMultipartUpload, CopyObject's destination). */
export function sseWriteHeaders(sse: Sse): Record<string, string> {
  switch (sse.type) {
    case 'none':
      return {};
    case 's3':
      return { 'x-amz-server-side-encryption': 'AES256' };
    case 'kms':
      return { 'x-amz-server-side-encryption': 'aws:kms', 'x-amz-server-side-encryption-aws-kms-key-id': sse.keyId };
    case 'c':
      return customerHeaders(sse.key, 'x-amz-server-side-encryption-customer');
  }
}

/** Headers for reading an object (GET, HEAD) and for UploadPart / CompleteMultipartUpload: SSE-C only. */
export function sseReadHeaders(sse: Sse): Record<string, string> {
  return sse.type === 'c' ? customerHeaders(sse.key, 'x-amz-server-side-encryption-customer') : {};
}

/** Headers naming the source's SSE-C key in CopyObject / UploadPartCopy. */
export function sseCopySourceHeaders(sse: Sse): Record<string, string> {
  return sse.type === 'c' ? customerHeaders(sse.key, 'x-amz-copy-source-server-side-encryption-customer') : {};
}
