// The object path in one process, without HTTP: PUTs (envelope of api/sse.ts + engine.putObject) or GETs
// (engine.openObject + the envelope's key + the plaintext read) on a single drive, plain vs SSE-S3 vs SSE-C in
// alternating rounds. Over loopback a 4 KiB SSE request's extra cost drowns in the client's CPU, ext4's
// allocator state and the other cases' round-to-round drift; here each round measures the event loop's own CPU
// per request (its thread's schedstat), which is what bounds small requests on the server, and the paired
// difference against plain names the encryption's share. Put the drive on tmpfs (/dev/shm) to take the disk
// out as well.
//
// The built-in KMS behind the server's key cache and object-key cache, set up as cli/server-command.ts does.
// After the rounds every case's last object is read back and compared, and the encrypted ones must carry their
// SSE record: a run that measured the wrong thing fails instead of printing numbers.

import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PerformanceObserver } from 'node:perf_hooks';
import { createEnvelope, dataEncryptionFor, keyForPartOf, openEnvelope, type SseRequest, type SseSettings } from '../../api/sse.ts';
import { FsEngine } from '../../engine/fs-engine.ts';
import { BuiltinKms } from '../../engine/kms/builtin.ts';
import { CachingKms } from '../../engine/kms/cache.ts';
import { ObjectKeyCache } from '../../engine/kms/object-key-cache.ts';
import { createBlockCipherPool, defaultPoolThreads } from '../../workers/pool.ts';

export const objectPathCases = ['plain', 'sse-s3', 'sse-c'] as const;
export type ObjectPathCase = (typeof objectPathCases)[number];
export type ObjectPathOp = 'put' | 'get';

export interface ObjectPathOptions {
  readonly op: ObjectPathOp;
  /** a directory to create the drive in (removed afterwards); default the OS temp dir */
  readonly parentDir?: string;
  readonly cases?: readonly ObjectPathCase[];
  readonly rounds: number;
  /** requests per case per round */
  readonly ops: number;
  readonly concurrency: number;
  readonly sizeBytes: number;
  /**
   * keys per case: PUTs overwrite them once `ops` × rounds exceeds it (default `ops`: new keys in the warm-up
   * round only); GETs read them in turn after they were written (default 500)
   */
  readonly distinctKeys?: number;
}

export interface ObjectPathRound {
  readonly case: ObjectPathCase;
  readonly round: number;
  /** wall µs per request (concurrency overlaps them) */
  readonly wallMicros: number;
  /** µs of CPU per request on the calling thread (the event loop), from its schedstat */
  readonly mainMicros: number;
  /** µs of process CPU per request, all threads */
  readonly processMicros: number;
  /** of which in the kernel */
  readonly systemMicros: number;
  /** µs of garbage collection per request */
  readonly gcMicros: number;
}

export interface ObjectPathSummary {
  readonly case: ObjectPathCase;
  readonly wallMicros: number;
  readonly mainMicros: number;
  readonly processMicros: number;
  readonly systemMicros: number;
  readonly gcMicros: number;
  /** median over rounds of (this case − plain) in the same round, main thread and process; absent for plain */
  readonly pairedMainMicros?: number;
  readonly pairedProcessMicros?: number;
}

export interface ObjectPathResult {
  readonly options: Required<Omit<ObjectPathOptions, 'parentDir'>> & { readonly drive: string };
  readonly rounds: readonly ObjectPathRound[];
  readonly summary: readonly ObjectPathSummary[];
  /** measured requests made per case, warm-up included */
  readonly opsPerCase: number;
}

const bucket = 'object-path';

/** CPU ns of one thread of this process so far (Linux); undefined elsewhere. */
function threadCpuNs(tid: number): number | undefined {
  try {
    return Number(readFileSync(`/proc/self/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
  } catch {
    return undefined;
  }
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

function sseRequestOf(testCase: ObjectPathCase, customerKey: Buffer): SseRequest | undefined {
  if (testCase === 'sse-s3') return { type: 'SSE-S3' };
  if (testCase === 'sse-c') return { type: 'SSE-C', key: customerKey, keyMd5Base64: '' };
  return undefined;
}

export async function runObjectPath(options: ObjectPathOptions): Promise<ObjectPathResult> {
  const cases = options.cases ?? objectPathCases;
  if (!cases.includes('plain')) throw new Error('object-path: the plain case is the baseline and must run');
  const distinctKeys = options.distinctKeys ?? (options.op === 'put' ? options.ops : 500);
  const drive = mkdtempSync(path.join(options.parentDir ?? os.tmpdir(), 'coffer-object-path-'));
  const pool = createBlockCipherPool(defaultPoolThreads);
  const kms = new CachingKms(BuiltinKms.fromMasterKey('object-path-key', randomBytes(32)), { cacheGeneratedKeys: false });
  const sse: SseSettings = { kms, objectKeys: new ObjectKeyCache(), autoEncryption: false, allowSseCOverHttp: true };
  const customerKey = randomBytes(32);
  const body = randomBytes(options.sizeBytes);
  let gcMs = 0;
  const gcObserver = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) gcMs += entry.duration;
  });
  gcObserver.observe({ entryTypes: ['gc'] });
  const engine = await FsEngine.open([drive], { cipherPool: pool });
  try {
    await engine.makeBucket(bucket);
    let requests = 0;
    const putOne = async (testCase: ObjectPathCase, key: string): Promise<void> => {
      const request = sseRequestOf(testCase, customerKey);
      const envelope = request ? await createEnvelope(request, bucket, key, sse, false) : undefined;
      await engine.putObject(bucket, key, {
        body: once(body),
        expectedSizeBytes: body.length,
        ...(envelope ? { encryption: dataEncryptionFor(envelope, undefined, false) } : {}),
      });
    };
    const getOne = async (testCase: ObjectPathCase, key: string): Promise<void> => {
      let readBytes = 0;
      await readStored(engine, sse, testCase, key, customerKey, (chunk) => {
        readBytes += chunk.length;
      });
      if (readBytes !== body.length) throw new Error(`object-path: ${testCase} object ${key} read ${readBytes} bytes, not ${body.length}`);
    };
    const request = options.op === 'put' ? putOne : getOne;
    if (options.op === 'get') {
      for (const testCase of cases) for (let index = 0; index < distinctKeys; index++) await putOne(testCase, `${testCase}/${index}`);
    }
    const runRound = async (testCase: ObjectPathCase, round: number): Promise<ObjectPathRound> => {
      let next = 0;
      const mainStart = threadCpuNs(process.pid);
      const cpuStart = process.cpuUsage();
      const gcStart = gcMs;
      const wallStart = process.hrtime.bigint();
      const worker = async (): Promise<void> => {
        while (next < options.ops) await request(testCase, `${testCase}/${next++ % distinctKeys}`);
      };
      await Promise.all(Array.from({ length: options.concurrency }, worker));
      const wallNs = Number(process.hrtime.bigint() - wallStart);
      // GC entries arrive asynchronously: let the observer run before reading its sum.
      await new Promise<void>((resolve) => setImmediate(resolve));
      const cpu = process.cpuUsage(cpuStart);
      const mainEnd = threadCpuNs(process.pid);
      requests += options.ops;
      const per = (micros: number): number => micros / options.ops;
      return {
        case: testCase,
        round,
        wallMicros: per(wallNs / 1e3),
        mainMicros: mainStart === undefined || mainEnd === undefined ? Number.NaN : per((mainEnd - mainStart) / 1e3),
        processMicros: per(cpu.user + cpu.system),
        systemMicros: per(cpu.system),
        gcMicros: per((gcMs - gcStart) * 1e3),
      };
    };

    // Warm-up: every case once (JIT, the drive's directories, the KMS and key caches).
    for (const testCase of cases) await runRound(testCase, 0);
    const rounds: ObjectPathRound[] = [];
    for (let round = 1; round <= options.rounds; round++) {
      // Alternate the order so that no case always runs right after the same other one.
      const order = round % 2 === 1 ? cases : [...cases].reverse();
      for (const testCase of order) rounds.push(await runRound(testCase, round));
    }

    for (const testCase of cases) await verifyStored(engine, sse, testCase, `${testCase}/${(options.ops - 1) % distinctKeys}`, body, customerKey);

    const summary = cases.map((testCase): ObjectPathSummary => {
      const own = rounds.filter((row) => row.case === testCase);
      const summaryRow: ObjectPathSummary = {
        case: testCase,
        wallMicros: median(own.map((row) => row.wallMicros)),
        mainMicros: median(own.map((row) => row.mainMicros)),
        processMicros: median(own.map((row) => row.processMicros)),
        systemMicros: median(own.map((row) => row.systemMicros)),
        gcMicros: median(own.map((row) => row.gcMicros)),
      };
      if (testCase === 'plain') return summaryRow;
      const plainOf = (round: number): ObjectPathRound => rounds.find((row) => row.case === 'plain' && row.round === round)!;
      return {
        ...summaryRow,
        pairedMainMicros: median(own.map((row) => row.mainMicros - plainOf(row.round).mainMicros)),
        pairedProcessMicros: median(own.map((row) => row.processMicros - plainOf(row.round).processMicros)),
      };
    });
    return {
      options: { op: options.op, cases, rounds: options.rounds, ops: options.ops, concurrency: options.concurrency, sizeBytes: options.sizeBytes, distinctKeys, drive },
      rounds,
      summary,
      opsPerCase: requests / cases.length,
    };
  } finally {
    gcObserver.disconnect();
    await engine.close();
    await kms.close();
    await pool.close();
    rmSync(drive, { recursive: true, force: true });
  }
}

/** One chunk, as a small PUT's body arrives. */
async function* once(chunk: Buffer): AsyncGenerator<Buffer> {
  yield chunk;
}

/**
 * Read a stored object whole through its SSE record (the way a GET does), handing each chunk to `onChunk`
 * (valid until the next); the record must be there exactly when the case encrypts.
 */
async function readStored(engine: FsEngine, sse: SseSettings, testCase: ObjectPathCase, key: string, customerKey: Buffer, onChunk: (chunk: Buffer) => void): Promise<void> {
  const reader = await engine.openObject(bucket, key);
  try {
    const record = reader.info.encryption;
    if ((record !== undefined) !== (testCase !== 'plain')) throw new Error(`object-path: ${testCase} object ${key} is ${record ? '' : 'not '}encrypted`);
    const customer = testCase === 'sse-c' ? { type: 'SSE-C' as const, key: customerKey, keyMd5Base64: '' } : undefined;
    const keyForPart = record === undefined ? undefined : keyForPartOf(record, await openEnvelope(record, bucket, key, customer, sse));
    for await (const chunk of reader.read(0, reader.info.sizeBytes - 1, keyForPart)) onChunk(chunk);
  } finally {
    await reader.close();
  }
}

/** The stored object reads back as `expected`. */
async function verifyStored(engine: FsEngine, sse: SseSettings, testCase: ObjectPathCase, key: string, expected: Buffer, customerKey: Buffer): Promise<void> {
  const chunks: Buffer[] = [];
  await readStored(engine, sse, testCase, key, customerKey, (chunk) => chunks.push(Buffer.from(chunk)));
  if (!Buffer.concat(chunks).equals(expected)) throw new Error(`object-path: ${testCase} object ${key} read back different bytes`);
}
