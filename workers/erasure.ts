// The erasure-coding API the multi-drive engine calls: one block (≤ 1 MiB) → k data + m parity shards,
// and back from any k of them. The shard format is defined in workers/reed-solomon.ts and docs/erasure.md;
// this file only splits, pads, validates and picks the kernel (WASM SIMD, else pure TypeScript).
// Both kernels give byte-identical shards, so the choice never reaches the disk.

import {
  assertErasureParameters, parityRows, reconstructionRows, typescriptKernel, type ShardKernel,
} from './reed-solomon.ts';
import { loadNativeKernel } from './rs-native.ts';

/** MinIO's blockSizeV2 (erasure-jbod.md §3.5): the most one encode() takes. */
export const erasureBlockSizeBytes = 1024 * 1024;

export interface ErasureCodec {
  readonly dataShards: number;
  readonly parityShards: number;
  readonly implementation: 'native' | 'typescript';
  /**
   * block (≤ erasureBlockSizeBytes) → k data shards (the block, zero-padded to k·ceil(len/k)) then m parity
   * shards; k+m Buffers of shardSizeBytes(len, k). They are views over one fresh allocation that owns
   * its whole ArrayBuffer (transferable as one piece); the input block is not kept.
   */
  encode(block: Uint8Array): Buffer[];
  /**
   * encode() into `out` (at least (k+m)·shardSizeBytes(len, k) bytes, reused by the caller across blocks to
   * spare the garbage collector): the returned shards are views of `out`.
   */
  encodeInto(block: Uint8Array, out: Buffer): Buffer[];
  /**
   * shards[i] undefined = missing (length k+m); needs ≥ k present, each exactly shardSizeBytes(blockLength, k)
   * long. Rebuilds every missing shard in place (data and parity) and returns the block's first
   * `blockLength` bytes. Fewer than k present → InsufficientShardsError.
   */
  reconstruct(shards: (Buffer | undefined)[], blockLength: number): { block: Buffer; rebuilt: number[] };
}

/** Fewer than k shards survive: the block is lost for this read (the engine maps it to a quorum error). */
export class InsufficientShardsError extends Error {
  override readonly name = 'InsufficientShardsError';
  constructor(readonly presentShards: number, readonly dataShards: number, readonly parityShards: number) {
    super(`erasure: only ${presentShards} of ${dataShards + parityShards} shards present, ` +
      `need ${dataShards} (${dataShards}+${parityShards} tolerates ${parityShards} lost)`);
  }
}

/** ceil(blockLength / k): every shard of a block has this size (erasure-jbod.md §3.5). */
export function shardSizeBytes(blockLength: number, dataShards: number): number {
  if (!Number.isInteger(blockLength) || blockLength < 0 || blockLength > erasureBlockSizeBytes) {
    throw new Error(`erasure: block length must be an integer 0..${erasureBlockSizeBytes}, got ${blockLength}`);
  }
  if (!Number.isInteger(dataShards) || dataShards < 1) throw new Error(`erasure: bad data shard count ${dataShards}`);
  return Math.ceil(blockLength / dataShards);
}

/** Reconstruction rows per (sources, targets) pattern; a drive that is down repeats one pattern per block. */
const reconstructionRowsCacheEntriesMax = 64;

class ReedSolomonCodec implements ErasureCodec {
  readonly implementation: 'native' | 'typescript';
  readonly #parityRows: Uint8Array;
  readonly #rowsCache = new Map<string, Uint8Array>();

  constructor(readonly dataShards: number, readonly parityShards: number, readonly kernel: ShardKernel) {
    this.implementation = kernel.implementation;
    this.#parityRows = parityRows(dataShards, parityShards);
  }

  encode(block: Uint8Array): Buffer[] {
    // allocUnsafeSlow: never a slice of Buffer's shared pool, so the shards can be transferred.
    return this.encodeInto(block, Buffer.allocUnsafeSlow((this.dataShards + this.parityShards) * shardSizeBytes(block.length, this.dataShards)));
  }

  encodeInto(block: Uint8Array, all: Buffer): Buffer[] {
    const k = this.dataShards;
    const totalShards = k + this.parityShards;
    const shardBytes = shardSizeBytes(block.length, k);
    if (all.length < totalShards * shardBytes) throw new Error(`erasure: output of ${all.length} bytes, need ${totalShards * shardBytes}`);
    all.set(block, 0);
    all.fill(0, block.length, k * shardBytes);
    const shards: Buffer[] = [];
    for (let i = 0; i < totalShards; i++) shards.push(all.subarray(i * shardBytes, (i + 1) * shardBytes));
    if (this.parityShards > 0 && shardBytes > 0) {
      this.kernel.multiplyRows(this.#parityRows, shards.slice(0, k), shards.slice(k), shardBytes);
    }
    return shards;
  }

  reconstruct(shards: (Buffer | undefined)[], blockLength: number): { block: Buffer; rebuilt: number[] } {
    const k = this.dataShards;
    const totalShards = k + this.parityShards;
    if (shards.length !== totalShards) throw new Error(`erasure: expected ${totalShards} shard slots, got ${shards.length}`);
    const shardBytes = shardSizeBytes(blockLength, k);
    const present: number[] = [];
    const missing: number[] = [];
    shards.forEach((shard, index) => {
      if (shard === undefined) {
        missing.push(index);
      } else {
        if (shard.length !== shardBytes) {
          throw new Error(`erasure: shard ${index} is ${shard.length} bytes, expected ${shardBytes} for a ${blockLength}-byte block`);
        }
        present.push(index);
      }
    });
    if (present.length < k) throw new InsufficientShardsError(present.length, k, this.parityShards);
    if (missing.length > 0) {
      // The first k present: data shards come first, so surviving data is used as is where possible.
      const sources = present.slice(0, k);
      const rows = this.#rows(sources, missing);
      const rebuiltAll = Buffer.allocUnsafeSlow(missing.length * shardBytes);
      const targets = missing.map((_, i) => rebuiltAll.subarray(i * shardBytes, (i + 1) * shardBytes));
      if (shardBytes > 0) this.kernel.multiplyRows(rows, sources.map((index) => shards[index]!), targets, shardBytes);
      missing.forEach((index, i) => { shards[index] = targets[i]!; });
    }
    const block = Buffer.allocUnsafeSlow(blockLength);
    for (let i = 0, offset = 0; i < k && offset < blockLength; i++, offset += shardBytes) {
      block.set(shards[i]!.subarray(0, Math.min(shardBytes, blockLength - offset)), offset);
    }
    return { block, rebuilt: missing };
  }

  #rows(sources: number[], targets: number[]): Uint8Array {
    const key = `${sources.join(',')}>${targets.join(',')}`;
    let rows = this.#rowsCache.get(key);
    if (rows === undefined) {
      rows = reconstructionRows(this.dataShards, this.parityShards, sources, targets);
      if (this.#rowsCache.size >= reconstructionRowsCacheEntriesMax) this.#rowsCache.clear();
      this.#rowsCache.set(key, rows);
    }
    return rows;
  }
}

/**
 * A codec for k data + m parity shards (1 ≤ k, 0 ≤ m ≤ k, k+m ≤ 16; m = 0 is a plain split).
 * `prefer` defaults to 'native' (the WASM SIMD kernel) and falls back to TypeScript where WebAssembly SIMD
 * is missing; `implementation` says which one runs. Codecs are cheap and synchronous: make one per (k,m)
 * per thread and reuse it.
 */
export function createErasureCodec(dataShards: number, parityShards: number, prefer: 'native' | 'typescript' = 'native'): ErasureCodec {
  assertErasureParameters(dataShards, parityShards);
  const kernel = prefer === 'native' ? (loadNativeKernel().kernel ?? typescriptKernel) : typescriptKernel;
  return new ReedSolomonCodec(dataShards, parityShards, kernel);
}
