// The block-cipher kernels that the worker pool runs (workers/pool.ts). Piscina loads this module in each
// worker thread through workers/crypto-task.worker.mjs (worker threads do not inherit the tsx loader that
// bin/coffer.js registers on the main thread).
//
// Messages are structured-cloned, which turns Buffers into plain Uint8Arrays and every Error into a plain
// `Error` without its `name` or extra fields (a DareError would arrive as `Error` with no `reason`). So the
// handlers never throw: they return a tagged result, and pool.ts rebuilds the error on the calling thread.
// Output buffers go back by transfer, not by copy (perf-primitives.md §4: 72–97 µs vs 240–340 µs per MiB).

import { isMainThread, threadId } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { DareError, dareAesGcmImplementation, openPackages, openPackagesInto, sealPackages, sealPackagesInto, type DareErrorReason } from './dare.ts';
import { createErasureCodec, type ErasureCodec } from './erasure.ts';
import { md5Kernel } from './md5-kernel.ts';
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
}

/**
 * The next bytes of several uploads' MD5s, hashed together (workers/md5-kernel.ts): datas[i] goes into the
 * running state states[i] (shared memory with a worker pool, updated in place); where finals[i], the
 * state is then finished and its MD5 returned in md5Hex[i]. Where seals[i], datas[i] (an encrypted upload's
 * plaintext block) is also sealed into that lane's output, as SealTask does, in the same task.
 * workers/md5-batcher.ts makes these.
 */
export interface Md5Task {
  readonly states: readonly Uint8Array[];
  readonly datas: readonly Uint8Array[];
  readonly finals: readonly boolean[];
  readonly seals?: readonly (Md5LaneSeal | undefined)[];
}

/** A seal riding along with a lane's MD5: its plaintext is the lane's data, its output shared memory. */
export interface Md5LaneSeal {
  readonly key: Uint8Array;
  readonly nonce: Uint8Array;
  readonly firstSequence: number;
  readonly final: boolean;
  readonly output: Uint8Array;
}

export type Md5Result =
  | {
    readonly ok: true;
    readonly md5Hex: readonly (string | undefined)[];
    /** per lane with a seal: the sealed length, or why the seal failed (that lane only) */
    readonly sealed?: readonly (number | SerializedError | undefined)[];
  }
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
  | { readonly ok: true; readonly ciphertext?: Uint8Array; readonly sealedBytes?: number; readonly plaintext?: Uint8Array }
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

/** The error a SerializedError came from, as far as it can be rebuilt (a DareError with its reason). */
export function rebuildError(serialized: SerializedError): Error {
  const reason = serialized.fields['reason'];
  if (serialized.name === 'DareError' && typeof reason === 'string') {
    return new DareError(reason as DareErrorReason);
  }
  const error = new Error(serialized.message);
  error.name = serialized.name;
  Object.assign(error, serialized.fields);
  return error;
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

/** Shared by the worker task and the inline pool. */
export function md5Update(task: Md5Task): Md5Result {
  let md5Hex: (string | undefined)[];
  try {
    md5Kernel.update(task.states, task.datas);
    md5Hex = task.finals.map((final, i) => (final ? md5Kernel.final(task.states[i]!) : undefined));
  } catch (error) {
    return { ok: false, error: serializeError(error) };
  }
  if (task.seals === undefined) return { ok: true, md5Hex };
  const sealed = task.seals.map((seal, i) => {
    if (seal === undefined) return undefined;
    try {
      return sealPackagesInto(asBuffer(seal.key), asBuffer(seal.nonce), seal.firstSequence, task.datas[i]!, seal.final, asBuffer(seal.output));
    } catch (error) {
      return serializeError(error);
    }
  });
  return { ok: true, md5Hex, sealed };
}

export function md5(task: Md5Task): Md5Result {
  return md5Update(task);
}

export function seal(task: SealTask): SealResult {
  let ciphertext: Uint8Array<ArrayBuffer>;
  if (task.output !== undefined && task.output.buffer instanceof SharedArrayBuffer) {
    // Shared memory: sealed in place, nothing travels back but the length (no new ArrayBuffer on the
    // calling thread, so no external-memory pressure on its garbage collector).
    try {
      const sealedBytes = sealPackagesInto(asBuffer(task.key), asBuffer(task.nonce), task.firstSequence, task.plaintext, task.final, asBuffer(task.output));
      return { ok: true, sealedBytes };
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
    return moveResult({ ok: true, ciphertext: output, sealedBytes, plaintext }, [output.buffer, plaintext.buffer]);
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
