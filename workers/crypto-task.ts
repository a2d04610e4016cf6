// The block-cipher kernels that the worker pool runs (workers/pool.ts). Piscina loads this module in each
// worker thread through workers/crypto-task.worker.mjs (worker threads do not inherit the tsx loader that
// bin/coffer.js registers on the main thread).
//
// Messages are structured-cloned, which turns Buffers into plain Uint8Arrays and every Error into a plain
// `Error` without its `name` or extra fields (a DareError would arrive as `Error` with no `reason`). So the
// handlers never throw: they return a tagged result, and pool.ts rebuilds the error on the calling thread.
// Output buffers go back by transfer, not by copy (perf-primitives.md §4: 72–97 µs vs 240–340 µs per MiB).

import { createHash, type Hash } from 'node:crypto';
import { isMainThread, threadId } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { dareAesGcmImplementation, openPackages, openPackagesInto, sealPackages, sealPackagesInto } from './dare.ts';
import { createErasureCodec, type ErasureCodec } from './erasure.ts';
import { bitrotHasher, type BitrotAlgorithm } from '../engine/erasure/bitrot.ts';

export interface SealTask {
  readonly key: Uint8Array;
  readonly nonce: Uint8Array;
  readonly firstSequence: number;
  /** transferred from the calling thread; owns its whole ArrayBuffer */
  readonly plaintext: Uint8Array;
  readonly final: boolean;
  /** transferred too: seal into it and send both buffers back (recycling; see BlockCipherPool.sealRecycled) */
  readonly output?: Uint8Array;
  /** also hash the plaintext into this thread's running MD5 of that stream first (DigestTask) */
  readonly digest?: { readonly streamId: number; readonly sequence: number; readonly final: boolean };
}

/**
 * Feed `data` to the running MD5 of stream `streamId`, which lives on the thread that runs the task (the pool
 * sends every task of a stream to the same thread, in order). `final` digests and forgets it; `drop`
 * forgets it without a digest (an abandoned upload).
 */
export interface DigestTask {
  readonly streamId: number;
  /** 0, 1, 2 … per stream: a task out of order fails the stream instead of producing a wrong MD5 */
  readonly sequence: number;
  readonly data?: Uint8Array;
  readonly final: boolean;
  readonly drop?: boolean;
}

export type DigestResult =
  | { readonly ok: true; readonly md5Hex?: string }
  | { readonly ok: false; readonly error: SerializedError };

export interface OpenTask {
  readonly key: Uint8Array;
  readonly ciphertext: Uint8Array;
  readonly firstSequence: number;
  readonly expectNonce?: Uint8Array;
  /** shared memory to open into (recycling): only the length travels back */
  readonly output?: Uint8Array;
}

/** An error crossing the thread boundary: the fields structured clone would drop, kept by hand. */
export interface SerializedError {
  readonly name: string;
  readonly message: string;
  /** own enumerable string/number/boolean fields of the error (DareError's `reason`, Node's `code`) */
  readonly fields: Readonly<Record<string, string | number | boolean>>;
}

export type SealResult =
  | { readonly ok: true; readonly ciphertext?: Uint8Array; readonly sealedBytes?: number; readonly plaintext?: Uint8Array; readonly md5Hex?: string }
  | { readonly ok: false; readonly error: SerializedError };

export type OpenResult =
  | { readonly ok: true; readonly plaintext?: Uint8Array; readonly plaintextBytes?: number; readonly final: boolean; readonly nonce: Uint8Array }
  | { readonly ok: false; readonly error: SerializedError };

/**
 * Erasure-code one block and digest every shard (the per-block work of a multi-drive PUT), in shared
 * memory: `block` is read, `shards` ((k+m)·ceil(blockBytes/k) bytes) and `digests` ((k+m)·digest size)
 * are written; nothing but the answer travels back.
 */
export interface ErasureEncodeTask {
  readonly dataShards: number;
  readonly parityShards: number;
  readonly algorithm: BitrotAlgorithm;
  readonly block: Uint8Array;
  readonly blockBytes: number;
  readonly shards: Uint8Array;
  readonly digests: Uint8Array;
}

export type ErasureEncodeResult =
  | { readonly ok: true; readonly implementation: 'native' | 'typescript'; readonly isMainThread: boolean }
  | { readonly ok: false; readonly error: SerializedError };

/** What `probe` answers: lets tests check that tasks really run off the main thread. */
export interface ProbeResult {
  readonly isMainThread: boolean;
  readonly threadId: number;
  /** which AES-256-GCM this thread's DARE kernels use (the native addon loads once per thread) */
  readonly aesGcm: 'native' | 'node:crypto';
}

/** A Buffer view over a cloned Uint8Array, without copying. */
export function asBuffer(view: Uint8Array): Buffer {
  return Buffer.from(view.buffer, view.byteOffset, view.byteLength);
}

/**
 * A view that owns its entire ArrayBuffer, so transferring that ArrayBuffer moves exactly these bytes and
 * detaches nothing else. Copies when `view` is a slice of a larger (or pooled, or shared) buffer:
 * structured clone of such a view would otherwise copy the whole backing store, and transferring it would
 * detach bytes that belong to someone else.
 */
export function ownedView(view: Uint8Array): Uint8Array<ArrayBuffer> {
  const backing = view.buffer;
  if (backing instanceof ArrayBuffer && view.byteOffset === 0 && view.byteLength === backing.byteLength) {
    return view as Uint8Array<ArrayBuffer>;
  }
  const copy = Buffer.allocUnsafeSlow(view.byteLength); // its own ArrayBuffer, never the shared pool
  copy.set(view);
  return new Uint8Array(copy.buffer as ArrayBuffer, copy.byteOffset, copy.byteLength);
}

export function serializeError(error: unknown): SerializedError {
  if (!(error instanceof Error)) {
    return { name: 'Error', message: String(error), fields: {} };
  }
  const fields: Record<string, string | number | boolean> = {};
  for (const [field, value] of Object.entries(error)) {
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') {
      fields[field] = value;
    }
  }
  return { name: error.name, message: error.message, fields };
}

/** Wrap a result so piscina transfers `buffers` back instead of cloning them. */
function moveResult<T extends object>(value: T, buffers: readonly ArrayBuffer[]): T {
  const transferable = {
    [Piscina.transferableSymbol]: buffers,
    [Piscina.valueSymbol]: value,
  };
  // Piscina.move() marks an object implementing its Transferable interface as movable; the worker then
  // posts transferable[valueSymbol] with transferable[transferableSymbol] as the transfer list.
  return Piscina.move(transferable as never) as unknown as T;
}

/** Running MD5s of the streams whose tasks run on this thread. */
const digestStates = new Map<number, { readonly hash: Hash; nextSequence: number }>();

/** Shared by the worker task and the inline pool. */
export function digestUpdate(task: DigestTask): DigestResult {
  try {
    if (task.drop === true) {
      digestStates.delete(task.streamId);
      return { ok: true };
    }
    let state = digestStates.get(task.streamId);
    if (state === undefined) digestStates.set(task.streamId, (state = { hash: createHash('md5'), nextSequence: 0 }));
    if (task.sequence !== state.nextSequence) {
      throw new Error(`digest stream ${task.streamId}: block ${task.sequence} arrived, expected ${state.nextSequence}`);
    }
    state.nextSequence++;
    if (task.data !== undefined && task.data.byteLength > 0) state.hash.update(task.data);
    if (!task.final) return { ok: true };
    digestStates.delete(task.streamId);
    return { ok: true, md5Hex: state.hash.digest('hex') };
  } catch (error) {
    digestStates.delete(task.streamId);
    return { ok: false, error: serializeError(error) };
  }
}

export function digest(task: DigestTask): DigestResult {
  return digestUpdate(task);
}

export function seal(task: SealTask): SealResult {
  let ciphertext: Uint8Array<ArrayBuffer>;
  let md5Hex: string | undefined;
  if (task.digest !== undefined) {
    const digested = digestUpdate({ ...task.digest, data: task.plaintext });
    if (!digested.ok) return digested;
    md5Hex = digested.md5Hex;
  }
  if (task.output !== undefined && task.output.buffer instanceof SharedArrayBuffer) {
    // Shared memory: sealed in place, nothing travels back but the length (no new ArrayBuffer on the
    // calling thread, so no external-memory pressure on its garbage collector).
    try {
      const sealedBytes = sealPackagesInto(asBuffer(task.key), asBuffer(task.nonce), task.firstSequence, task.plaintext, task.final, asBuffer(task.output));
      return { ok: true, sealedBytes, ...(md5Hex === undefined ? {} : { md5Hex }) };
    } catch (error) {
      return { ok: false, error: serializeError(error) };
    }
  }
  if (task.output !== undefined) {
    const output = task.output as Uint8Array<ArrayBuffer>;
    const plaintext = task.plaintext as Uint8Array<ArrayBuffer>;
    let sealedBytes: number;
    try {
      sealedBytes = sealPackagesInto(asBuffer(task.key), asBuffer(task.nonce), task.firstSequence, plaintext, task.final, asBuffer(output));
    } catch (error) {
      return { ok: false, error: serializeError(error) };
    }
    return moveResult({ ok: true, ciphertext: output, sealedBytes, plaintext, ...(md5Hex === undefined ? {} : { md5Hex }) }, [output.buffer, plaintext.buffer]);
  }
  try {
    const sealed = sealPackages(asBuffer(task.key), asBuffer(task.nonce), task.firstSequence, task.plaintext, task.final);
    ciphertext = ownedView(sealed);
  } catch (error) {
    return { ok: false, error: serializeError(error) };
  }
  return moveResult({ ok: true, ciphertext }, [ciphertext.buffer]);
}

export function open(task: OpenTask): OpenResult {
  if (task.output !== undefined && task.output.buffer instanceof SharedArrayBuffer) {
    try {
      const expectNonce = task.expectNonce === undefined ? undefined : asBuffer(task.expectNonce);
      const opened = openPackagesInto(asBuffer(task.key), task.ciphertext, task.firstSequence, expectNonce, asBuffer(task.output));
      return { ok: true, plaintextBytes: opened.plaintextBytes, final: opened.final, nonce: new Uint8Array(opened.nonce) };
    } catch (error) {
      return { ok: false, error: serializeError(error) };
    }
  }
  let plaintext: Uint8Array<ArrayBuffer>;
  let final: boolean;
  let nonce: Uint8Array;
  try {
    const expectNonce = task.expectNonce === undefined ? undefined : asBuffer(task.expectNonce);
    const opened = openPackages(asBuffer(task.key), task.ciphertext, task.firstSequence, expectNonce);
    plaintext = ownedView(opened.plaintext);
    final = opened.final;
    nonce = new Uint8Array(opened.nonce); // 12 bytes of its own: a pooled Buffer slice would clone its whole 8 KiB pool
  } catch (error) {
    return { ok: false, error: serializeError(error) };
  }
  return moveResult({ ok: true, plaintext, final, nonce }, [plaintext.buffer]);
}

export function probe(): ProbeResult {
  return { isMainThread, threadId, aesGcm: dareAesGcmImplementation() };
}

const codecs = new Map<string, ErasureCodec>();

/** Shared by the worker task and the inline pool, so both do exactly the same work. */
export function erasureEncodeInto(task: ErasureEncodeTask): ErasureEncodeResult {
  try {
    const key = `${task.dataShards}+${task.parityShards}`;
    let codec = codecs.get(key);
    if (codec === undefined) codecs.set(key, (codec = createErasureCodec(task.dataShards, task.parityShards)));
    const shards = codec.encodeInto(task.block.subarray(0, task.blockBytes), asBuffer(task.shards));
    const hasher = bitrotHasher(task.algorithm);
    shards.forEach((shard, index) => hasher.digestInto(shard, task.digests, index * hasher.digestSizeBytes));
    return { ok: true, implementation: codec.implementation, isMainThread };
  } catch (error) {
    return { ok: false, error: serializeError(error) };
  }
}

export function erasureEncode(task: ErasureEncodeTask): ErasureEncodeResult {
  return erasureEncodeInto(task);
}
