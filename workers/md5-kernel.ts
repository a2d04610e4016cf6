// The MD5 behind every large upload's ETag, with its running state in memory the caller owns (a few dozen
// bytes per upload), so whichever thread is free continues an upload's hash, and one call hashes the next
// blocks of several uploads together (workers/md5-batcher.ts decides which).
//
// Native (native/md5.c, built by `npm ci`): OpenSSL's MD5 for one message, SIMD lanes for several (AVX2 or
// AVX-512VL: eight 1 MiB blocks in ~2 ms where OpenSSL takes 1.4 ms per block). Without the addon, or with
// COFFER_NATIVE_MD5=off: hash-wasm's MD5, one message after another, its state saved into the same memory.
// COFFER_MD5_LANES=1 keeps the addon but hashes one message at a time (for A/B measurements).
// Loaded once per thread; every thread of a process uses the same kind, so a state moves between them.

import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { createMD5 } from 'hash-wasm';

export interface Md5Kernel {
  /** for logs and reports, e.g. "native (avx512vl lanes)" */
  readonly status: string;
  /** messages one update() hashes for about the price of one: 8 with SIMD lanes, else 1 */
  readonly lanes: number;
  /** bytes of one running state */
  readonly stateBytes: number;
  /** start a new MD5 in `state` */
  init(state: Uint8Array): void;
  /** hash datas[i] into states[i] (no state twice) */
  update(states: readonly Uint8Array[], datas: readonly Uint8Array[]): void;
  /** the MD5 in hex; the state is spent */
  final(state: Uint8Array): string;
}

/** native/md5.c's exports */
interface NativeMd5 {
  readonly stateBytes: number;
  readonly kernels: readonly string[];
  init(state: Uint8Array): void;
  update(states: readonly Uint8Array[], datas: readonly Uint8Array[], kernel?: number): void;
  final(state: Uint8Array, out: Uint8Array): void;
}

export const nativeMd5AddonPath = fileURLToPath(new URL('../native/build/Release/coffer_md5.node', import.meta.url));

function loadNative(): { md5: NativeMd5 | undefined; why: string } {
  if (process.env.COFFER_NATIVE_MD5?.toLowerCase() === 'off') return { md5: undefined, why: 'COFFER_NATIVE_MD5=off' };
  try {
    const md5 = createRequire(import.meta.url)(nativeMd5AddonPath) as Partial<NativeMd5>;
    if (typeof md5.update !== 'function' || typeof md5.stateBytes !== 'number' || !Array.isArray(md5.kernels)) {
      return { md5: undefined, why: 'addon has no update' };
    }
    return { md5: md5 as NativeMd5, why: '' };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return { md5: undefined, why: code === 'MODULE_NOT_FOUND' ? 'addon not built: node native/build.mjs' : `addon failed to load: ${(error as Error).message}` };
  }
}

function nativeKernel(md5: NativeMd5, cap?: number): Md5Kernel {
  const oneLane = process.env.COFFER_MD5_LANES?.trim() === '1';
  const kernel = Math.min(cap ?? Number.POSITIVE_INFINITY, oneLane ? 0 : md5.kernels.length - 1);
  const digest = new Uint8Array(16);
  return {
    status: kernel === 0 ? `native (OpenSSL, one message at a time${oneLane ? ': COFFER_MD5_LANES=1' : ''})` : `native (${md5.kernels[kernel]} lanes)`,
    lanes: kernel === 0 ? 1 : 8,
    stateBytes: md5.stateBytes,
    init: (state) => md5.init(state),
    update: (states, datas) => md5.update(states, datas, kernel),
    final(state) {
      md5.final(state, digest);
      return Buffer.from(digest.buffer, digest.byteOffset, 16).toString('hex');
    },
  };
}

async function wasmKernel(why: string): Promise<Md5Kernel> {
  const hasher = await createMD5();
  hasher.init();
  const stateBytes = hasher.save().length;
  const resume = (state: Uint8Array) => hasher.load(state.subarray(0, stateBytes));
  return {
    status: `hash-wasm (${why})`,
    lanes: 1,
    stateBytes,
    init(state) {
      hasher.init();
      state.set(hasher.save());
    },
    update(states, datas) {
      states.forEach((state, i) => {
        resume(state).update(datas[i]!);
        state.set(hasher.save());
      });
    },
    final(state) {
      const hex = resume(state).digest('hex');
      state.fill(0, 0, stateBytes);
      return hex;
    },
  };
}

const native = loadNative();

/** The kernel this process uses. */
export const md5Kernel: Md5Kernel = native.md5 !== undefined ? nativeKernel(native.md5) : await wasmKernel(native.why);

/** For tests and benchmarks: every kernel this machine can run (the native ones best last), hash-wasm's first. */
export async function allMd5Kernels(): Promise<Md5Kernel[]> {
  const kernels = [await wasmKernel('the fallback')];
  if (native.md5 !== undefined) native.md5.kernels.forEach((_, index) => kernels.push(nativeKernel(native.md5!, index)));
  return kernels;
}
