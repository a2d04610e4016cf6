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

/** Aligned buffers of one size, `buffersPerSlab` per WebAssembly.Memory slab, at most `slabsMax` slabs. */
export class AlignedBufferPool {
  readonly #free: Buffer[] = [];
  readonly #owned = new WeakSet<Buffer>();
  #slabs = 0;
  #inUse = 0;

  /** `bufferBytes`: a multiple of 4 KiB (so every buffer in a slab starts on a page boundary). */
  constructor(readonly bufferBytes = alignedBufferBytes, readonly slabsMax = maxSlabs) {
    if (!Number.isInteger(bufferBytes) || bufferBytes <= 0 || bufferBytes % 4096 !== 0) throw new Error(`aligned buffers must be a multiple of 4 KiB, got ${bufferBytes}`);
  }

  /** A buffer at a page-aligned address, or undefined when the pool is exhausted. Contents are stale. */
  acquire(): Buffer | undefined {
    if (this.#free.length === 0 && !this.#addSlab()) return undefined;
    this.#inUse++;
    return this.#free.pop();
  }

  /** Give a buffer from acquire() back; anything else is ignored. */
  release(buffer: Buffer): void {
    if (!this.#owned.has(buffer)) return;
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
    for (let i = buffersPerSlab - 1; i >= 0; i--) {
      const buffer = Buffer.from(memory.buffer, i * this.bufferBytes, this.bufferBytes);
      this.#owned.add(buffer);
      this.#free.push(buffer);
    }
    return true;
  }
}

/** The process-wide pool (one per thread; only the main thread writes files). */
export const alignedBuffers = new AlignedBufferPool();
