// The native metadata I/O addon (native/fsops.c), if it was built: reading a coffer.meta, writing one
// durably and fsyncing a directory each become ONE libuv thread-pool job instead of three or four node:fs
// calls (open + fstat + read + close, open + write + fdatasync + close, open + fsync + close), each of which
// costs the event loop a pool round trip. `npm ci` builds it (native/build.mjs); without a C toolchain it is
// simply absent and engine/objects.ts and engine/drive.ts use node:fs, with the same files and the same
// error codes. COFFER_NATIVE_FS=off disables it. Loaded once per thread.

import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** What readFileHead resolves to. */
export interface FileHead {
  /** the first min(sizeBytes, maxBytes) bytes of the file (fewer if it shrank while being read) */
  readonly bytes: Buffer;
  /** the file's size (fstat's st_size) */
  readonly sizeBytes: number;
}

/**
 * native/fsops.c's exports. Each call is one thread-pool job; failures reject with errors shaped like
 * node:fs's (message "ENOENT: no such file or directory, open '/p'", code, errno (negative), syscall, path
 * — path on every error, including those of the fd steps). Bad arguments throw synchronously (TypeError, or
 * RangeError for maxBytes).
 */
export interface NativeFs {
  /** open, fstat, read from offset 0 up to min(st_size, maxBytes) bytes, close. A directory: EISDIR ('read'). */
  readFileHead(filePath: string, maxBytes: number): Promise<FileHead>;
  /**
   * open(O_WRONLY|O_CREAT|O_EXCL, 0666) — EEXIST if the file exists —, write all of `bytes`, fdatasync,
   * close. `bytes` is read during the job: do not change it before the Promise settles.
   */
  writeFileDurable(filePath: string, bytes: Uint8Array): Promise<void>;
  /**
   * open(O_WRONLY) an existing file — ENOENT if there is none —, write all of `bytes` from offset 0,
   * ftruncate to bytes.length, fdatasync, close (engine/meta-recycler.ts). Same rule for `bytes`.
   */
  rewriteFileDurable(filePath: string, bytes: Uint8Array): Promise<void>;
  /** open (O_DIRECTORY when `directory`: ENOTDIR on anything else), fsync, close. */
  fsyncPath(filePath: string, directory: boolean): Promise<void>;
}

export const nativeFsAddonPath = fileURLToPath(new URL('../native/build/Release/coffer_fs.node', import.meta.url));

function load(): { fs: NativeFs | undefined; status: string } {
  if (process.env.COFFER_NATIVE_FS?.toLowerCase() === 'off') return { fs: undefined, status: 'node:fs (COFFER_NATIVE_FS=off)' };
  let loaded: unknown;
  try {
    loaded = createRequire(import.meta.url)(nativeFsAddonPath);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'MODULE_NOT_FOUND' ? 'addon not built: node native/build.mjs' : `addon failed to load: ${(error as Error).message}`;
    return { fs: undefined, status: `node:fs (${why})` };
  }
  const fs = loaded as Partial<NativeFs>;
  if (typeof fs.readFileHead !== 'function' || typeof fs.writeFileDurable !== 'function' || typeof fs.rewriteFileDurable !== 'function' || typeof fs.fsyncPath !== 'function') {
    return { fs: undefined, status: 'node:fs (addon lacks readFileHead/writeFileDurable/rewriteFileDurable/fsyncPath: rebuild it)' };
  }
  return { fs: fs as NativeFs, status: 'native (one pool job per read/write)' };
}

const loaded = load();

/** The addon, or undefined when it is not built, fails to load, or COFFER_NATIVE_FS=off. */
export const nativeFs: NativeFs | undefined = loaded.fs;
/** For logs and reports: which metadata I/O runs and why, e.g. "native (one pool job per read/write)". */
export const nativeFsStatus: string = loaded.status;
/** The addon's functions one by one (undefined without the addon); they need no `this`. */
export const nativeReadFileHead: NativeFs['readFileHead'] | undefined = loaded.fs?.readFileHead;
export const nativeWriteFileDurable: NativeFs['writeFileDurable'] | undefined = loaded.fs?.writeFileDurable;
export const nativeRewriteFileDurable: NativeFs['rewriteFileDurable'] | undefined = loaded.fs?.rewriteFileDurable;
export const nativeFsyncPath: NativeFs['fsyncPath'] | undefined = loaded.fs?.fsyncPath;
