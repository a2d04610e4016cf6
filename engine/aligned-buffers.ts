// Page-aligned, reusable 1 MiB buffers for O_DIRECT writes (engine/file-writer.ts).
//
// O_DIRECT needs the memory address aligned to the device's DMA alignment (512 B here, 4 KiB on some
// devices), and JavaScript cannot see an ArrayBuffer's address. A WebAssembly.Memory, however, is mapped by
// V8 on page boundaries (wasm pages are 64 KiB), so slices of one at 1 MiB offsets are aligned. The writer
// still treats alignment as a hypothesis: if the kernel refuses a direct write (EINVAL) it falls back to
// buffered I/O for that filesystem, so a runtime that maps memory differently loses speed, not data.
//
// Slabs are never grown and never freed: buffers circulate through a free list, so steady-state writes
// allocate nothing and add no external memory for the GC to chase. The memory is shared (a
// SharedArrayBuffer), so a worker can hash a buffer in place while it is being written (DigestStream).

export const alignedBufferBytes = 1024 * 1024;
const wasmPageBytes = 64 * 1024;
const buffersPerSlab = 16;
/**
 * Each WebAssembly.Memory reserves several GiB of address space (V8's guard region); 64 slabs = 1,024
 * buffers, enough for 512 concurrent large writes. Past that, writers get ordinary buffers and buffered I/O.
 */
const maxSlabs = 64;

export interface AlignedBufferPoolStats {
  readonly slabs: number;
  readonly free: number;
  readonly inUse: number;
}

// Node 20's @types/node does not declare the WebAssembly global (it lives in lib.dom); the constructor used:
interface WasmMemoryDescriptor {
  readonly initial: number;
  readonly maximum: number;
  readonly shared: boolean;
}
const WasmMemory = (globalThis as { WebAssembly?: { Memory: new (descriptor: WasmMemoryDescriptor) => { readonly buffer: SharedArrayBuffer } } })
  .WebAssembly?.Memory;

/** The memory of every slab: a view into one at a page-multiple offset starts on a page boundary. */
const slabMemories = new WeakSet<ArrayBufferLike>();

/** Whether `view` starts on a page boundary of a slab (so O_DIRECT can take it as it is). */
export function isPageAligned(view: Uint8Array): boolean {
  return slabMemories.has(view.buffer) && view.byteOffset % 4096 === 0;
}

/** Slab memory → its pool, for the pools whose buffers a writer may hold (holdWhileWriting). */
const holdableSlabs = new WeakMap<ArrayBufferLike, AlignedBufferPool>();

/**
 * Aligned buffers of one size, `buffersPerSlab` per WebAssembly.Memory slab, at most `slabsMax` slabs.
 *
 * A `holdable` pool lends its buffers by strict acquire/release (nobody rewrites a buffer without releasing
 * and acquiring it again), so a file writer may keep writing one after handing it back (holdWhileWriting):
 * its release then waits for the write.
 */
export class AlignedBufferPool {
  readonly #free: Buffer[] = [];
  readonly #owned = new WeakSet<Buffer>();
  /** slab memory → its buffers in address order (holdable pools only) */
  readonly #slabBuffers = new Map<ArrayBufferLike, Buffer[]>();
  /** buffers a write still reads; `releaseDue` once they were released meanwhile */
  readonly #held = new Map<Buffer, { releaseDue: boolean }>();
  #slabs = 0;
  #inUse = 0;

  /** `bufferBytes`: a multiple of 4 KiB (so every buffer in a slab starts on a page boundary). */
  constructor(readonly bufferBytes = alignedBufferBytes, readonly slabsMax = maxSlabs, readonly holdable = false) {
    if (!Number.isInteger(bufferBytes) || bufferBytes <= 0 || bufferBytes % 4096 !== 0) throw new Error(`aligned buffers must be a multiple of 4 KiB, got ${bufferBytes}`);
  }

  /** A buffer at a page-aligned address, or undefined when the pool is exhausted. Contents are stale. */
  acquire(): Buffer | undefined {
    if (this.#free.length === 0 && !this.#addSlab()) return undefined;
    this.#inUse++;
    return this.#free.pop();
  }

  /** Give a buffer from acquire() back; anything else is ignored. A held buffer comes back once its write is done. */
  release(buffer: Buffer): void {
    if (!this.#owned.has(buffer)) return;
    const hold = this.#held.get(buffer);
    if (hold !== undefined) {
      hold.releaseDue = true;
      return;
    }
    this.#inUse--;
    this.#free.push(buffer);
  }

  /** Whether `buffer` came from this pool (so it is aligned). */
  owns(buffer: Buffer): boolean {
    return this.#owned.has(buffer);
  }

  stats(): AlignedBufferPoolStats {
    return { slabs: this.#slabs, free: this.#free.length, inUse: this.#inUse };
  }

  /**
   * Keep the buffer `view` lies in out of the free list until `until` settles (holdable pools; false if
   * `view` is not inside one of its buffers, or that buffer is held already).
   */
  hold(view: Uint8Array, until: Promise<unknown>): boolean {
    const buffers = this.#slabBuffers.get(view.buffer);
    if (buffers === undefined) return false;
    const index = Math.floor(view.byteOffset / this.bufferBytes);
    const buffer = buffers[index];
    if (buffer === undefined || view.byteOffset + view.byteLength > (index + 1) * this.bufferBytes || this.#held.has(buffer)) return false;
    const hold = { releaseDue: false };
    this.#held.set(buffer, hold);
    const done = (): void => {
      this.#held.delete(buffer);
      if (hold.releaseDue) this.release(buffer);
    };
    until.then(done, done);
    return true;
  }

  #addSlab(): boolean {
    if (this.#slabs >= this.slabsMax || WasmMemory === undefined) return false;
    let memory: { readonly buffer: SharedArrayBuffer };
    const pages = (buffersPerSlab * this.bufferBytes) / wasmPageBytes; // whole: 16 × 4 KiB = one wasm page
    try {
      memory = new WasmMemory({ initial: pages, maximum: pages, shared: true });
    } catch {
      return false; // address space refused: fall back to ordinary buffers
    }
    this.#slabs++;
    slabMemories.add(memory.buffer);
    const inOrder: Buffer[] = [];
    for (let i = 0; i < buffersPerSlab; i++) inOrder.push(Buffer.from(memory.buffer, i * this.bufferBytes, this.bufferBytes));
    for (const buffer of inOrder) this.#owned.add(buffer);
    this.#free.push(...inOrder.toReversed());
    if (this.holdable) {
      this.#slabBuffers.set(memory.buffer, inOrder);
      holdableSlabs.set(memory.buffer, this);
    }
    return true;
  }
}

/** The process-wide pool (one per thread; only the main thread writes files). */
export const alignedBuffers = new AlignedBufferPool();

/**
 * Hold the holdable pool buffer `view` lies in until `until` settles (AlignedBufferPool.hold): a writer that
 * still reads a caller's buffer after returning to it. False for any other memory: the writer must wait.
 */
export function holdWhileWriting(view: Uint8Array, until: Promise<unknown>): boolean {
  return holdableSlabs.get(view.buffer)?.hold(view, until) ?? false;
}

/** Slabs per block pool: 16 × 16 blocks of ~1 MiB; past that, callers fall back to ordinary shared memory. */
const blockSlabsMax = 16;
const blockPools = new Map<number, AlignedBufferPool>();

/**
 * Page-aligned buffers that hold one `blockBytes` block (a DARE cipher block, 1,049,088 bytes) plus the pages
 * it straddles at any file offset: read into by engine/file-reader.ts readBlocks, sealed into by SSE PUTs
 * (workers/encrypt-stream.ts), written from with O_DIRECT by engine/file-writer.ts.
 */
export function alignedBlockBuffers(blockBytes: number): AlignedBufferPool {
  return blockPoolFor(blockPools, blockBytes, false);
}

const holdableBlockPools = new Map<number, AlignedBufferPool>();

/**
 * Like alignedBlockBuffers, but holdable (a pool of its own): the sealed blocks of SSE PUTs, which the file
 * writer keeps writing while the stream seals the next ones (engine/file-writer.ts).
 */
export function holdableBlockBuffers(blockBytes: number): AlignedBufferPool {
  return blockPoolFor(holdableBlockPools, blockBytes, true);
}

function blockPoolFor(pools: Map<number, AlignedBufferPool>, blockBytes: number, holdable: boolean): AlignedBufferPool {
  let pool = pools.get(blockBytes);
  if (pool === undefined) {
    pool = new AlignedBufferPool(Math.ceil((blockBytes + 2 * 4096 - 1) / 4096) * 4096, blockSlabsMax, holdable);
    pools.set(blockBytes, pool);
  }
  return pool;
}
