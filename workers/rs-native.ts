// The fast Reed-Solomon kernel: WebAssembly SIMD, assembled byte by byte below, so it needs no C toolchain
// at install time and no binary file in the repository. It computes exactly the GF(2^8) products that
// workers/reed-solomon.ts defines (same rows, same field), so its shards are byte-identical to the
// TypeScript ones; test/reed-solomon.test.ts checks that.
//
// Why not @ronomon/reed-solomon (native C, 16 GB/s at 4+2 here, perf-primitives.md §3)? It is a different
// code: a Cauchy *bit-matrix* code with w = 2, 4 or 8 and a polynomial chosen per (k,m), whose parity also
// depends on the shard size (packets of shardSize/w bytes), which must be a multiple of 8; it stops at
// m = 6 (our sets allow m = 8) and only runs asynchronously on the libuv threadpool, while ErasureCodec is
// synchronous. docs/erasure.md records the decision; bench/kernels/reed-solomon.ts still measures it.
//
// The kernel (perf-primitives.md §3, "WASM SIMD ... i8x16.swizzle nibble tables"): a product c·x is
// lowTable_c[x & 15] ^ highTable_c[x >> 4], 16 bytes at a time with i8x16.swizzle. One pass computes up to
// 4 target rows: each source vector is loaded and split into nibbles once, the accumulators stay in
// registers while the k sources are read, and each target vector is written once. Shards go through WASM
// memory in slices of about 256 KiB in total, so the copies in and out stay in the L2 cache.

import type { ShardKernel } from './reed-solomon.ts';
import { gfMultiply } from './reed-solomon.ts';

const wasmPageBytes = 64 * 1024;
/** Every region's stride is a multiple of this (the most bytes one inner step writes: 4 × v128). */
const columnBytes = 64;
/** Nibble tables for up to 16 × 16 coefficients of 32 bytes each, at address 0. */
const tablesBytesMax = 16 * 16 * 32;
/** Bytes of sources plus targets one kernel pass works on (half the L2 of the CPUs measured). */
const workingSetBytes = 256 * 1024;

// ---------------------------------------------------------------------------------------------------
// A tiny WebAssembly assembler: just the opcodes the kernel uses (WebAssembly core spec §5, SIMD §5.4.8).

function unsignedLeb(value: number): number[] {
  const out: number[] = [];
  do {
    let byte = value & 0x7f;
    value >>>= 7;
    if (value !== 0) byte |= 0x80;
    out.push(byte);
  } while (value !== 0);
  return out;
}

function signedLeb(value: number): number[] {
  const out: number[] = [];
  for (;;) {
    const byte = value & 0x7f;
    value >>= 7;
    const done = (value === 0 && (byte & 0x40) === 0) || (value === -1 && (byte & 0x40) !== 0);
    out.push(done ? byte : byte | 0x80);
    if (done) return out;
  }
}

function section(id: number, body: number[]): number[] {
  return [id, ...unsignedLeb(body.length), ...body];
}

function vector(items: number[][]): number[] {
  return [...unsignedLeb(items.length), ...items.flat()];
}

function name(text: string): number[] {
  const bytes = [...Buffer.from(text, 'utf8')];
  return [...unsignedLeb(bytes.length), ...bytes];
}

const op = {
  block: [0x02, 0x40],
  loop: [0x03, 0x40],
  end: [0x0b],
  br: (depth: number) => [0x0c, ...unsignedLeb(depth)],
  brIf: (depth: number) => [0x0d, ...unsignedLeb(depth)],
  localGet: (index: number) => [0x20, ...unsignedLeb(index)],
  localSet: (index: number) => [0x21, ...unsignedLeb(index)],
  localTee: (index: number) => [0x22, ...unsignedLeb(index)],
  i32Const: (value: number) => [0x41, ...signedLeb(value)],
  i32Eqz: [0x45],
  i32GeU: [0x4f],
  i32Add: [0x6a],
  i32Sub: [0x6b],
  simd: (opcode: number) => [0xfd, ...unsignedLeb(opcode)],
  /** memarg: log2(alignment) = 4 (16 bytes; all our addresses are), then the static offset */
  v128Load: (offset: number) => [0xfd, 0x00, 4, ...unsignedLeb(offset)],
  v128Store: (offset: number) => [0xfd, 0x0b, 4, ...unsignedLeb(offset)],
  v128ConstSplat: (byte: number) => [0xfd, 0x0c, ...new Array<number>(16).fill(byte)],
  i8x16Swizzle: [0xfd, 0x0e],
  v128And: [0xfd, 0x4e],
  v128Xor: [0xfd, 0x51],
  i16x8ShrU: [0xfd, 0x8d, 0x01],
};

const i32 = 0x7f;
const v128 = 0x7b;
/** Target rows one call computes, at most (dot1..dot4); the accumulators must fit the 16 xmm registers. */
const rowsPerCallMax = 4;

/**
 * export func dot<R>(tables, sources, strideBytes, sourceCount, targets, lengthBytes), R = 1..4:
 *   for pos in 0, 64, … < lengthBytes, for r < R:
 *     targets[r·stride + pos ..+64) = XOR over j < sourceCount of
 *       swizzle(T[j,r], src & 15) ^ swizzle(T[j,r]+16, src >> 4),   src = sources[j·stride + pos ..]
 *   where T[j,r] = tables + (j·R + r)·32 (16 products c·i, then 16 products c·(i<<4)).
 * Each source vector is loaded and split into nibbles once for all R rows. lengthBytes and strideBytes are
 * multiples of 64; every address is 16-byte aligned.
 */
function dotFunctionBody(rowCount: number): number[] {
  const unroll = rowCount === 1 ? 4 : 2;
  // params 0..5, then i32 locals 6..10 and v128 locals 11..
  const [tables, sources, stride, count, targets, length] = [0, 1, 2, 3, 4, 5];
  const [position, source, table, remaining, out] = [6, 7, 8, 9, 10];
  const mask = 11, low = 12, high = 13, value = 14, accumulator0 = 15;
  const accumulator = (r: number, u: number): number => accumulator0 + r * unroll + u;

  const body: number[] = [
    ...op.v128ConstSplat(0x0f), ...op.localSet(mask),
    ...op.i32Const(0), ...op.localSet(position),
    ...op.block, ...op.loop,
    ...op.localGet(position), ...op.localGet(length), ...op.i32GeU, ...op.brIf(1),
  ];
  for (let a = 0; a < rowCount * unroll; a++) body.push(...op.v128ConstSplat(0), ...op.localSet(accumulator0 + a));
  body.push(
    ...op.localGet(sources), ...op.localGet(position), ...op.i32Add, ...op.localSet(source),
    ...op.localGet(tables), ...op.localSet(table),
    ...op.localGet(count), ...op.localSet(remaining),
    ...op.block, ...op.loop,
    ...op.localGet(remaining), ...op.i32Eqz, ...op.brIf(1),
  );
  for (let u = 0; u < unroll; u++) {
    body.push(
      ...op.localGet(source), ...op.v128Load(16 * u), ...op.localTee(value),
      ...op.localGet(mask), ...op.v128And, ...op.localSet(low),
      // i16x8.shr_u then the mask: x86 has no byte shift, and V8's i8x16.shr_u costs more instructions.
      ...op.localGet(value), ...op.i32Const(4), ...op.i16x8ShrU, ...op.localGet(mask), ...op.v128And, ...op.localSet(high),
    );
    for (let r = 0; r < rowCount; r++) {
      body.push(
        ...op.localGet(table), ...op.v128Load(32 * r), ...op.localGet(low), ...op.i8x16Swizzle,
        ...op.localGet(table), ...op.v128Load(32 * r + 16), ...op.localGet(high), ...op.i8x16Swizzle,
        ...op.v128Xor,
        ...op.localGet(accumulator(r, u)), ...op.v128Xor, ...op.localSet(accumulator(r, u)),
      );
    }
  }
  body.push(
    ...op.localGet(source), ...op.localGet(stride), ...op.i32Add, ...op.localSet(source),
    ...op.localGet(table), ...op.i32Const(32 * rowCount), ...op.i32Add, ...op.localSet(table),
    ...op.localGet(remaining), ...op.i32Const(1), ...op.i32Sub, ...op.localSet(remaining),
    ...op.br(0),
    ...op.end, ...op.end,
    ...op.localGet(targets), ...op.localGet(position), ...op.i32Add, ...op.localSet(out),
  );
  for (let r = 0; r < rowCount; r++) {
    if (r > 0) body.push(...op.localGet(out), ...op.localGet(stride), ...op.i32Add, ...op.localSet(out));
    for (let u = 0; u < unroll; u++) body.push(...op.localGet(out), ...op.localGet(accumulator(r, u)), ...op.v128Store(16 * u));
  }
  body.push(
    ...op.localGet(position), ...op.i32Const(unroll * 16), ...op.i32Add, ...op.localSet(position),
    ...op.br(0),
    ...op.end, ...op.end,
    ...op.end,
  );
  const locals = vector([[...unsignedLeb(5), i32], [...unsignedLeb(4 + rowCount * unroll), v128]]);
  const functionBody = [...locals, ...body];
  return [...unsignedLeb(functionBody.length), ...functionBody];
}

function kernelModuleBytes(): Uint8Array {
  const functionCount = rowsPerCallMax;
  const exports = Array.from({ length: functionCount }, (_, f) => [...name(`dot${f + 1}`), 0x00, f]);
  return Uint8Array.from([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vector([[0x60, ...vector([[i32], [i32], [i32], [i32], [i32], [i32]]), ...vector([])]])),
    ...section(3, vector(Array.from({ length: functionCount }, () => unsignedLeb(0)))),
    ...section(5, vector([[0x00, ...unsignedLeb(1)]])),
    ...section(7, vector([...exports, [...name('memory'), 0x02, 0]])),
    ...section(10, vector(Array.from({ length: functionCount }, (_, f) => dotFunctionBody(f + 1)))),
  ]);
}

// ---------------------------------------------------------------------------------------------------

// Node 20's @types/node does not declare the WebAssembly global (it lives in lib.dom); the little used here:
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
interface WasmInstance {
  readonly exports: Record<string, unknown>;
}
interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  readonly Module: new (bytes: Uint8Array) => object;
  readonly Instance: new (module: object) => WasmInstance;
}
const webAssembly = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;

type DotFunction = (tables: number, sources: number, strideBytes: number, sourceCount: number, target: number, lengthBytes: number) => void;

/** nibbleTables[c*32 .. +16) = c·i, [c*32+16 .. +32) = c·(i<<4), i in 0..15 */
const nibbleTables: Uint8Array = (() => {
  const out = new Uint8Array(256 * 32);
  for (let c = 0; c < 256; c++) {
    for (let i = 0; i < 16; i++) {
      out[c * 32 + i] = gfMultiply(c, i);
      out[c * 32 + 16 + i] = gfMultiply(c, i << 4);
    }
  }
  return out;
})();

const roundUp = (value: number, multiple: number): number => Math.ceil(value / multiple) * multiple;

class WasmKernel implements ShardKernel {
  readonly implementation = 'native' as const;
  readonly #memory: WasmMemory;
  /** #dots[R - 1] computes R target rows per pass */
  readonly #dots: DotFunction[];

  constructor(instance: WasmInstance) {
    this.#memory = instance.exports['memory'] as WasmMemory;
    this.#dots = Array.from({ length: rowsPerCallMax }, (_, f) => instance.exports[`dot${f + 1}`] as DotFunction);
  }

  multiplyRows(rows: Uint8Array, sources: readonly Uint8Array[], targets: readonly Uint8Array[], lengthBytes: number): void {
    const k = sources.length;
    const targetCount = targets.length;
    if (rows.length !== targetCount * k) throw new Error('erasure kernel: rows do not match sources × targets');
    if (k * targetCount * 32 > tablesBytesMax) throw new Error('erasure kernel: more than 16 × 16 coefficients');
    for (const shard of sources) if (shard.length < lengthBytes) throw new Error('erasure kernel: source shorter than lengthBytes');
    for (const shard of targets) if (shard.length < lengthBytes) throw new Error('erasure kernel: target shorter than lengthBytes');
    if (lengthBytes === 0 || targetCount === 0) return;
    // Tables for every group of ≤ 4 rows, source-major within a group: T[j, r] at (first·k + j·rowCount + r)·32.
    const heapBefore = new Uint8Array(this.#memory.buffer);
    for (let first = 0; first < targetCount; first += rowsPerCallMax) {
      const rowCount = Math.min(rowsPerCallMax, targetCount - first);
      for (let j = 0; j < k; j++) {
        for (let r = 0; r < rowCount; r++) {
          const coefficient = rows[(first + r) * k + j]!;
          heapBefore.set(nibbleTables.subarray(coefficient * 32, coefficient * 32 + 32), (first * k + j * rowCount + r) * 32);
        }
      }
    }
    // Slices of every shard small enough that the copy in, the kernel and the copy out stay in the L2
    // cache: copying whole 1 MiB blocks through DRAM cost about as much as the kernel itself.
    const sliceBytesMax = Math.max(columnBytes, Math.floor(workingSetBytes / (k + targetCount) / columnBytes) * columnBytes);
    const strideBytes = Math.min(sliceBytesMax, roundUp(lengthBytes, columnBytes));
    const sourcesAddress = tablesBytesMax;
    const targetsAddress = sourcesAddress + k * strideBytes;
    const endAddress = targetsAddress + targetCount * strideBytes;
    const pagesShort = Math.ceil(endAddress / wasmPageBytes) - this.#memory.buffer.byteLength / wasmPageBytes;
    if (pagesShort > 0) this.#memory.grow(pagesShort);
    const heap = new Uint8Array(this.#memory.buffer);
    for (let offset = 0; offset < lengthBytes; offset += strideBytes) {
      const sliceBytes = Math.min(strideBytes, lengthBytes - offset);
      // Bytes past sliceBytes in a stride keep stale values: output byte i depends only on input byte i,
      // so they only reach target bytes that are never copied out.
      for (let j = 0; j < k; j++) heap.set(sources[j]!.subarray(offset, offset + sliceBytes), sourcesAddress + j * strideBytes);
      const computeBytes = roundUp(sliceBytes, columnBytes);
      for (let first = 0; first < targetCount; first += rowsPerCallMax) {
        const rowCount = Math.min(rowsPerCallMax, targetCount - first);
        this.#dots[rowCount - 1]!(first * k * 32, sourcesAddress, strideBytes, k, targetsAddress + first * strideBytes, computeBytes);
      }
      for (let r = 0; r < targetCount; r++) {
        const from = targetsAddress + r * strideBytes;
        targets[r]!.set(heap.subarray(from, from + sliceBytes), offset);
      }
    }
  }
}

let loaded: { kernel: WasmKernel | undefined; reason: string } | undefined;

/**
 * This thread's WASM SIMD kernel, or undefined (with the reason) where WebAssembly SIMD is unavailable.
 * One instance per thread (each worker_threads Worker loads its own); calls are synchronous, so the
 * instance's memory is never shared between two calls.
 */
export function loadNativeKernel(): { kernel: ShardKernel | undefined; reason: string } {
  if (loaded !== undefined) return loaded;
  try {
    const bytes = kernelModuleBytes();
    if (webAssembly === undefined || !webAssembly.validate(bytes)) {
      loaded = { kernel: undefined, reason: 'WebAssembly SIMD is not available' };
    } else {
      loaded = { kernel: new WasmKernel(new webAssembly.Instance(new webAssembly.Module(bytes))), reason: 'WebAssembly SIMD kernel' };
    }
  } catch (error) {
    loaded = { kernel: undefined, reason: `WebAssembly SIMD kernel failed to load: ${(error as Error).message}` };
  }
  return loaded;
}
