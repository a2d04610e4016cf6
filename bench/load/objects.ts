// The objects a load run creates, and the phases that act on them (PUT, GET, HEAD, list pages, batched
// DeleteObjects, a weighted mix, multipart). Every key lives under one run prefix, so a run only ever
// touches what it created, and cleanup (DELETE of every key a PUT was attempted for) is always possible.
//
// The client is kept cheap because it shares the CPUs with the server: one random buffer is reused for
// every object, and only the last 8 bytes differ (run id + object index), so ETags differ and the client
// knows each fixed-size object's MD5 from one MD5 state of the shared prefix (Hash.copy) instead of hashing
// every upload. With --obj.randsize the expected MD5 is the ETag the PUT returned (plain and SSE-S3).

import { createHash, randomBytes, type Hash } from 'node:crypto';
import { describeFailure, keyPath, LoadError, type S3Client } from './s3-client.ts';
import { runPhase, type AutotermOptions, type OpOutcome, type PhaseResult, type ProgressSnapshot, type StopSignal } from './phase.ts';

/** Per-object suffix: 4 bytes run id + 4 bytes object index. */
export const objectSuffixBytes = 8;
/** Smallest object with --obj.randsize (warp's log2 distribution starts at 2^7). */
export const randomSizeBytesMin = 128;
export const objectsMax = 1_000_000;
/** Cleanup gets at least this long, whatever --duration says, so a short run still removes its objects. */
export const cleanupTimeMsMin = 60_000;
/** S3's DeleteObjects limit. */
export const deleteBatchMax = 1000;
/** S3's multipart limits. */
export const partsMax = 10_000;
export const partSizeBytesMin = 5 * 1024 * 1024;

export type Sse = string; // none | s3 | kms | kms:KEY | c
export type Verify = 'md5' | 'length';

/** Settings every phase of a run shares. */
export interface PhaseCommon {
  readonly concurrency: number;
  readonly durationMs: number;
  readonly stop?: StopSignal;
  readonly serverPid?: number;
  readonly autoterm?: AutotermOptions;
  readonly timelineIntervalMs?: number;
  readonly progress?: (snapshot: ProgressSnapshot) => void;
}

export interface ObjectSetOptions {
  readonly bucket: string;
  /** keys are `${keyPrefix}/${index}`; the prefix must be unique to the run */
  readonly keyPrefix: string;
  /** the object size, or the largest with randomSize */
  readonly sizeBytes: number;
  readonly randomSize: boolean;
  readonly sse: Sse;
  readonly verify: Verify;
}

/** Errors carry the operation type so mixed phases can count them per type. */
class OpError extends LoadError {
  constructor(readonly op: string, message: string) {
    super(message);
  }
}

function failOp(op: string, error: unknown): never {
  if (error instanceof OpError) throw error;
  throw new OpError(op, `${op}: ${(error as Error).message}`);
}

export function sseHeaders(sse: Sse): { put: Record<string, string>; read: Record<string, string>; etagIsMd5: boolean } {
  if (sse === 'c') {
    const customerKey = randomBytes(32);
    const headers = {
      'x-amz-server-side-encryption-customer-algorithm': 'AES256',
      'x-amz-server-side-encryption-customer-key': customerKey.toString('base64'),
      'x-amz-server-side-encryption-customer-key-md5': createHash('md5').update(customerKey).digest('base64'),
    };
    return { put: headers, read: headers, etagIsMd5: false };
  }
  if (sse === 's3') return { put: { 'x-amz-server-side-encryption': 'AES256' }, read: {}, etagIsMd5: true };
  if (sse.startsWith('kms')) {
    const keyId = sse.startsWith('kms:') ? sse.slice(4) : undefined;
    return {
      put: { 'x-amz-server-side-encryption': 'aws:kms', ...(keyId ? { 'x-amz-server-side-encryption-aws-kms-key-id': keyId } : {}) },
      read: {},
      etagIsMd5: false,
    };
  }
  return { put: {}, read: {}, etagIsMd5: true };
}

/** A small deterministic PRNG (mulberry32): object sizes must be reproducible from the index. */
function uniform(seed: number): number {
  let t = (seed + 0x6d2b79f5) | 0;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}

function escapeXml(text: string): string {
  return text.replace(/[<>&'"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c]!);
}

export class ObjectSet {
  readonly options: ObjectSetOptions;
  readonly client: S3Client;
  readonly runId = randomBytes(4);
  /** indexes 0..attempted-1 have had a PUT attempted (a failed PUT may still have committed) */
  attempted = 0;
  /** indexes whose PUT succeeded and that were not deleted since */
  readonly stored = new Set<number>();
  /** indexes deleted by a measured phase (cleanup skips them) */
  readonly deleted = new Set<number>();
  /** ETags returned by PUT, kept only when the expected MD5 cannot be derived (randsize) */
  readonly #etags = new Map<number, string>();
  /** GET/HEAD requests in flight per index, so a mixed DELETE never races a read of the same object */
  readonly #reading = new Map<number, number>();
  readonly #sharedPrefix: Buffer;
  readonly #prefixMd5: Hash | undefined;
  readonly #sse: ReturnType<typeof sseHeaders>;

  constructor(client: S3Client, options: ObjectSetOptions) {
    if (options.sizeBytes < objectSuffixBytes) throw new Error(`objects must be at least ${objectSuffixBytes} bytes`);
    this.client = client;
    this.options = options;
    this.#sharedPrefix = randomBytes(options.sizeBytes - objectSuffixBytes);
    this.#prefixMd5 = options.randomSize ? undefined : createHash('md5').update(this.#sharedPrefix);
    this.#sse = sseHeaders(options.sse);
  }

  keyOf(index: number): string {
    return `${this.options.keyPrefix}/${String(index).padStart(7, '0')}`;
  }

  sizeOf(index: number): number {
    const { sizeBytes, randomSize } = this.options;
    if (!randomSize) return sizeBytes;
    // log-uniform between 128 B and the maximum (warp's --obj.randsize distribution)
    const low = Math.min(sizeBytes, Math.max(randomSizeBytesMin, objectSuffixBytes));
    const u = uniform(this.runId.readUInt32BE(0) ^ Math.imul(index + 1, 0x9e3779b1));
    return Math.max(objectSuffixBytes, Math.min(sizeBytes, Math.round(low * (sizeBytes / low) ** u)));
  }

  #suffixOf(index: number): Buffer {
    const suffix = Buffer.allocUnsafe(objectSuffixBytes);
    this.runId.copy(suffix, 0);
    suffix.writeUInt32BE(index >>> 0, 4);
    return suffix;
  }

  bodyOf(index: number, sizeBytes = this.sizeOf(index)): Buffer[] {
    return [this.#sharedPrefix.subarray(0, sizeBytes - objectSuffixBytes), this.#suffixOf(index)];
  }

  /** The object's MD5 when it is known without hashing the whole body. */
  #expectedMd5(index: number): string | undefined {
    if (this.#prefixMd5 !== undefined) return this.#prefixMd5.copy().update(this.#suffixOf(index)).digest('hex');
    return this.#etags.get(index);
  }

  // ----------------------------------------------------------------------------------------- requests

  async putOne(index: number, op = 'put'): Promise<OpOutcome> {
    const sizeBytes = this.sizeOf(index);
    try {
      const response = await this.client.send('PUT', keyPath(this.options.bucket, this.keyOf(index)),
        { 'content-type': 'application/octet-stream', ...this.#sse.put }, this.bodyOf(index, sizeBytes));
      if (response.status !== 200) throw describeFailure('PUT', response);
      const etag = response.headers.etag;
      if (this.#sse.etagIsMd5) {
        if (this.#prefixMd5 !== undefined) {
          const expected = `"${this.#expectedMd5(index)}"`;
          if (etag !== expected) throw new LoadError(`PUT returned ETag ${String(etag)}, expected ${expected}`);
        } else if (typeof etag === 'string' && /^"[0-9a-f]{32}"$/.test(etag)) {
          this.#etags.set(index, etag.slice(1, -1));
        } else {
          throw new LoadError(`PUT returned ETag ${String(etag)}, expected an MD5`);
        }
      }
      this.stored.add(index);
      return { bytes: sizeBytes, op };
    } catch (error) {
      failOp(op, error);
    }
  }

  async getOne(index: number, op = 'get'): Promise<OpOutcome> {
    const sizeBytes = this.sizeOf(index);
    this.#reading.set(index, (this.#reading.get(index) ?? 0) + 1);
    try {
      const expectedMd5 = this.#expectedMd5(index);
      const hash = this.options.verify === 'md5' && expectedMd5 !== undefined;
      const response = await this.client.send('GET', keyPath(this.options.bucket, this.keyOf(index)), this.#sse.read, [], hash ? 'md5' : 'discard');
      if (response.status !== 200) throw describeFailure('GET', response);
      if (response.bodyBytes !== sizeBytes) throw new LoadError(`GET returned ${response.bodyBytes} bytes, expected ${sizeBytes}`);
      if (response.headers['content-length'] !== String(sizeBytes)) {
        throw new LoadError(`GET Content-Length ${String(response.headers['content-length'])}, expected ${sizeBytes}`);
      }
      if (this.#sse.etagIsMd5 && expectedMd5 !== undefined && response.headers.etag !== `"${expectedMd5}"`) {
        throw new LoadError(`GET ETag ${String(response.headers.etag)}, expected "${expectedMd5}"`);
      }
      if (hash && response.md5Hex !== expectedMd5) throw new LoadError(`GET body MD5 ${String(response.md5Hex)} does not match "${expectedMd5}"`);
      return { bytes: response.bodyBytes, ttfbMs: response.ttfbMs, op };
    } catch (error) {
      failOp(op, error);
    } finally {
      this.#doneReading(index);
    }
  }

  async statOne(index: number, op = 'stat'): Promise<OpOutcome> {
    this.#reading.set(index, (this.#reading.get(index) ?? 0) + 1);
    try {
      const response = await this.client.send('HEAD', keyPath(this.options.bucket, this.keyOf(index)), this.#sse.read, []);
      if (response.status !== 200) throw describeFailure('HEAD', response);
      const sizeBytes = this.sizeOf(index);
      if (response.headers['content-length'] !== String(sizeBytes)) {
        throw new LoadError(`HEAD Content-Length ${String(response.headers['content-length'])}, expected ${sizeBytes}`);
      }
      return { bytes: 0, ttfbMs: response.ttfbMs, op };
    } catch (error) {
      failOp(op, error);
    } finally {
      this.#doneReading(index);
    }
  }

  #doneReading(index: number): void {
    const readers = (this.#reading.get(index) ?? 1) - 1;
    if (readers <= 0) this.#reading.delete(index);
    else this.#reading.set(index, readers);
  }

  async deleteOne(index: number, op = 'delete'): Promise<OpOutcome> {
    try {
      const response = await this.client.send('DELETE', keyPath(this.options.bucket, this.keyOf(index)), {}, []);
      if (response.status !== 204 && response.status !== 200) throw describeFailure('DELETE', response);
      this.stored.delete(index);
      this.deleted.add(index);
      return { bytes: 0, op };
    } catch (error) {
      failOp(op, error);
    }
  }

  /** One DeleteObjects request (Quiet) for `indexes`; any per-key <Error> fails the request. */
  async deleteBatch(indexes: readonly number[]): Promise<OpOutcome> {
    const xml = `<?xml version="1.0" encoding="UTF-8"?><Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Quiet>true</Quiet>${
      indexes.map((index) => `<Object><Key>${escapeXml(this.keyOf(index))}</Key></Object>`).join('')}</Delete>`;
    const body = Buffer.from(xml);
    const response = await this.client.send('POST', `/${this.options.bucket}?delete=`,
      { 'content-type': 'application/xml', 'content-md5': createHash('md5').update(body).digest('base64') }, [body], 'text');
    if (response.status !== 200) throw describeFailure('DeleteObjects', response);
    const failed = (response.text.match(/<Error>/g) ?? []).length;
    for (const index of indexes) {
      this.stored.delete(index);
      this.deleted.add(index);
    }
    if (failed > 0) throw new LoadError(`DeleteObjects: ${failed} of ${indexes.length} keys failed`);
    return { bytes: 0, objects: indexes.length };
  }

  // ----------------------------------------------------------------------------------------- phases

  #run(common: PhaseCommon, phase: string, count: number, operation: (index: number) => Promise<OpOutcome>, deadlineMs?: number): Promise<PhaseResult> {
    return runPhase({
      phase,
      count,
      concurrency: common.concurrency,
      deadlineMs: deadlineMs ?? performance.now() + common.durationMs,
      ...(common.stop === undefined ? {} : { stop: common.stop }),
      ...(common.serverPid === undefined ? {} : { serverPid: common.serverPid }),
      ...(common.autoterm === undefined ? {} : { autoterm: common.autoterm }),
      ...(common.timelineIntervalMs === undefined ? {} : { timelineIntervalMs: common.timelineIntervalMs }),
      ...(common.progress === undefined ? {} : { progress: common.progress }),
      operation,
    });
  }

  /** PUT `count` new objects. */
  putPhase(common: PhaseCommon, phase: string, count: number): Promise<PhaseResult> {
    const first = this.attempted;
    return this.#run(common, phase, count, (position) => {
      const index = first + position;
      this.attempted = Math.max(this.attempted, index + 1);
      return this.putOne(index, phase);
    });
  }

  /** Fill the set up to `count` stored objects (no autoterm: a pool must be complete). */
  fillPhase(common: PhaseCommon, phase: string, count: number): Promise<PhaseResult> {
    const { autoterm: _autoterm, ...rest } = common;
    return this.putPhase(rest, phase, Math.max(0, count - this.stored.size));
  }

  /** `ops` GETs over the stored objects, round robin from a random start. */
  getPhase(common: PhaseCommon, phase: string, ops: number): Promise<PhaseResult> {
    const pool = [...this.stored];
    if (pool.length === 0) throw new LoadError('nothing to GET: no object was stored');
    const start = Math.floor(Math.random() * pool.length);
    return this.#run(common, phase, ops, (position) => this.getOne(pool[(start + position) % pool.length]!, phase));
  }

  statPhase(common: PhaseCommon, phase: string, ops: number): Promise<PhaseResult> {
    const pool = [...this.stored];
    if (pool.length === 0) throw new LoadError('nothing to HEAD: no object was stored');
    const start = Math.floor(Math.random() * pool.length);
    return this.#run(common, phase, ops, (position) => this.statOne(pool[(start + position) % pool.length]!, phase));
  }

  /** `ops` ListObjectsV2 pages of `maxKeys` over the run's prefix; each concurrent lister keeps its own cursor. */
  listPhase(common: PhaseCommon, phase: string, ops: number, maxKeys: number): Promise<PhaseResult> {
    const expected = this.stored.size;
    const cursors: { token: string | undefined; seen: number }[] = Array.from({ length: common.concurrency }, () => ({ token: undefined, seen: 0 }));
    return this.#run(common, phase, ops, async () => {
      const cursor = cursors.pop() ?? { token: undefined, seen: 0 };
      try {
        const query = new URLSearchParams({ 'list-type': '2', prefix: `${this.options.keyPrefix}/`, 'max-keys': String(maxKeys) });
        if (cursor.token !== undefined) query.set('continuation-token', cursor.token);
        const response = await this.client.send('GET', `/${this.options.bucket}?${query.toString().replace(/\+/g, '%20')}`, {}, [], 'text');
        if (response.status !== 200) throw describeFailure('ListObjectsV2', response);
        const keys = (response.text.match(/<Key>/g) ?? []).length;
        const truncated = /<IsTruncated>true<\/IsTruncated>/.test(response.text);
        cursor.seen += keys;
        if (truncated) {
          const token = /<NextContinuationToken>([^<]*)<\/NextContinuationToken>/.exec(response.text)?.[1];
          if (token === undefined) throw new LoadError('ListObjectsV2: truncated without NextContinuationToken');
          cursor.token = token.replace(/&amp;/g, '&').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&apos;/g, "'");
        } else {
          if (cursor.seen !== expected) throw new LoadError(`ListObjectsV2 listed ${cursor.seen} keys, expected ${expected}`);
          cursor.token = undefined;
          cursor.seen = 0;
        }
        return { bytes: 0, objects: keys, ttfbMs: response.ttfbMs };
      } finally {
        cursors.push(cursor);
      }
    });
  }

  /** Batched DeleteObjects of every stored object, `batch` keys per request (the measured delete workload). */
  deleteBatchPhase(common: PhaseCommon, phase: string, batch: number): Promise<PhaseResult> {
    const pool = [...this.stored];
    const batches = Math.ceil(pool.length / batch);
    return this.#run(common, phase, batches, (position) => this.deleteBatch(pool.slice(position * batch, (position + 1) * batch)));
  }

  /**
   * warp's mixed workload over the stored set: GET 45, STAT 30, PUT 15, DELETE 10 by default. DELETE picks
   * an object no GET/HEAD is reading; PUT adds new objects, so the set stays about the same size.
   */
  mixedPhase(common: PhaseCommon, phase: string, ops: number, weights: Readonly<Record<'get' | 'stat' | 'put' | 'delete', number>>): Promise<PhaseResult> {
    const total = weights.get + weights.stat + weights.put + weights.delete;
    if (!(total > 0)) throw new Error('mixed weights must add up to more than 0');
    const live = [...this.stored];
    const pick = (): number | undefined => (live.length === 0 ? undefined : live[Math.floor(Math.random() * live.length)]);
    return this.#run(common, phase, ops, async () => {
      let draw = Math.random() * total;
      const choose = (weight: number): boolean => (draw -= weight) < 0;
      if (choose(weights.get)) {
        const index = pick();
        if (index !== undefined) return this.getOne(index, 'get');
      } else if (choose(weights.stat)) {
        const index = pick();
        if (index !== undefined) return this.statOne(index, 'stat');
      } else if (choose(weights.delete)) {
        for (let attempt = 0; attempt < 8 && live.length > 1; attempt++) {
          const position = Math.floor(Math.random() * live.length);
          const index = live[position]!;
          if (this.#reading.has(index)) continue;
          live[position] = live[live.length - 1]!;
          live.pop();
          return this.deleteOne(index, 'delete');
        }
      }
      const index = this.attempted++;
      const outcome = await this.putOne(index, 'put');
      live.push(index);
      return outcome;
    });
  }

  /** DELETE every key a PUT was attempted for and no measured phase deleted; not cut short by Ctrl-C. */
  cleanupPhase(common: PhaseCommon, phase = 'cleanup'): Promise<PhaseResult> {
    const pending: number[] = [];
    for (let index = 0; index < this.attempted; index++) if (!this.deleted.has(index)) pending.push(index);
    const { stop: _stop, autoterm: _autoterm, progress, ...rest } = common;
    return this.#run({ ...rest, ...(progress === undefined ? {} : { progress }) }, phase, pending.length,
      (position) => this.deleteOne(pending[position]!, phase), performance.now() + Math.max(common.durationMs, cleanupTimeMsMin));
  }

  /** Keys a PUT was attempted for that are neither deleted nor known to be absent. */
  get leftOver(): number {
    return this.attempted - this.deleted.size;
  }
}

// --------------------------------------------------------------------------------------------- multipart

export interface MultipartResult {
  readonly phases: PhaseResult[];
  readonly completeMs: number | undefined;
  readonly objectKey: string;
  readonly cleanedUp: boolean;
}

/**
 * One multipart object: CreateMultipartUpload, `parts` UploadPart of `partSizeBytes` (measured, concurrent),
 * CompleteMultipartUpload, then a GET of every part (`?partNumber=N`, measured), then DELETE (or Abort).
 */
export async function runMultipart(set: ObjectSet, common: PhaseCommon, parts: number): Promise<MultipartResult> {
  const { client } = set;
  const { bucket, sse } = set.options;
  const partSizeBytes = set.options.sizeBytes;
  const headers = sseHeaders(sse);
  const objectKey = `${set.options.keyPrefix}/multipart`;
  const path = keyPath(bucket, objectKey);
  const created = await client.send('POST', `${path}?uploads=`, { 'content-type': 'application/octet-stream', ...headers.put }, [], 'text');
  if (created.status !== 200) throw describeFailure('CreateMultipartUpload', created);
  const uploadId = /<UploadId>([^<]+)<\/UploadId>/.exec(created.text)?.[1];
  if (uploadId === undefined) throw new LoadError('CreateMultipartUpload: no UploadId');
  const etags: (string | undefined)[] = new Array(parts);
  const phases: PhaseResult[] = [];
  let completed = false;
  let completeMs: number | undefined;
  let cleanedUp = false;
  try {
    phases.push(await runPhase({
      phase: 'multipart-put', count: parts, concurrency: common.concurrency, deadlineMs: performance.now() + common.durationMs,
      ...(common.stop === undefined ? {} : { stop: common.stop }),
      ...(common.serverPid === undefined ? {} : { serverPid: common.serverPid }),
      ...(common.progress === undefined ? {} : { progress: common.progress }),
      operation: async (position) => {
        const partNumber = position + 1;
        const response = await client.send('PUT', `${path}?partNumber=${partNumber}&uploadId=${encodeURIComponent(uploadId)}`,
          sse === 'c' ? headers.read : {}, set.bodyOf(position, partSizeBytes));
        if (response.status !== 200) throw describeFailure(`UploadPart ${partNumber}`, response);
        etags[position] = String(response.headers.etag);
        return { bytes: partSizeBytes };
      },
    }));
    const uploaded = etags.findIndex((etag) => etag === undefined);
    if (uploaded >= 0) throw new LoadError(`part ${uploaded + 1} was not uploaded`);
    const xml = `<CompleteMultipartUpload>${etags.map((etag, i) => `<Part><PartNumber>${i + 1}</PartNumber><ETag>${escapeXml(etag!)}</ETag></Part>`).join('')}</CompleteMultipartUpload>`;
    const completeStartMs = performance.now();
    const complete = await client.send('POST', `${path}?uploadId=${encodeURIComponent(uploadId)}`, sse === 'c' ? headers.read : {}, [Buffer.from(xml)], 'text');
    completeMs = performance.now() - completeStartMs;
    if (complete.status !== 200 || /<Error>/.test(complete.text)) throw describeFailure('CompleteMultipartUpload', complete);
    completed = true;
    phases.push(await runPhase({
      phase: 'multipart-get', count: parts, concurrency: common.concurrency, deadlineMs: performance.now() + common.durationMs,
      ...(common.stop === undefined ? {} : { stop: common.stop }),
      ...(common.serverPid === undefined ? {} : { serverPid: common.serverPid }),
      ...(common.progress === undefined ? {} : { progress: common.progress }),
      operation: async (position) => {
        const response = await client.send('GET', `${path}?partNumber=${position + 1}`, headers.read, []);
        if (response.status !== 206 && response.status !== 200) throw describeFailure(`GET part ${position + 1}`, response);
        if (response.bodyBytes !== partSizeBytes) throw new LoadError(`GET part ${position + 1}: ${response.bodyBytes} bytes, expected ${partSizeBytes}`);
        return { bytes: response.bodyBytes, ttfbMs: response.ttfbMs };
      },
    }));
  } finally {
    const response = completed
      ? await client.send('DELETE', path, {}, []).catch(() => undefined)
      : await client.send('DELETE', `${path}?uploadId=${encodeURIComponent(uploadId)}`, {}, []).catch(() => undefined);
    cleanedUp = response !== undefined && (response.status === 204 || response.status === 200);
  }
  return { phases, completeMs, objectKey, cleanedUp };
}
