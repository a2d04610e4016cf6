// One drive: its identity (format.json), its system directories, bucket metadata, and the durable file
// primitives every write is built from (docs/format.md, "Drive layout" and "Crash safety").

import { randomUUID } from 'node:crypto';
import fsCallbacks, { constants as fsConstants } from 'node:fs';
import { promisify } from 'node:util';
import fs from 'node:fs/promises';
import path from 'node:path';
import { MetaFileRecycler } from './meta-recycler.ts';
import { nativeFsyncPath, nativeRewriteFileDurable, nativeWriteFileDurable } from './native-fs.ts';
import { DrivePaths, isSafeBucketName, systemDirName, uuidPattern } from './paths.ts';
import { StorageError } from './types.ts';
import type { BucketEncryption, BucketInfo } from './types.ts';

export const formatVersion = 1;
export const formatName = 'coffer-xl';
/** format.json is tiny; refuse to parse anything bigger than this. */
export const maxFormatFileSizeBytes = 64 * 1024;
/** Entries a fresh filesystem may hold that do not make the drive "in use". */
const ignorableFreshDriveEntries = new Set([systemDirName, 'lost+found']);

/** The parsed `.coffer.sys/format.json`. */
export interface DriveFormat {
  readonly version: number;
  readonly format: string;
  /** the deployment UUID, identical on every drive */
  readonly deploymentId: string;
  /** the UUID of this drive */
  readonly thisDriveId: string;
  /** drive UUIDs, [set][position]; `[[thisDriveId]]` for one drive */
  readonly sets: readonly (readonly string[])[];
}

/** A drive that is not (or not validly) a Coffer drive: startup must stop. */
export class DriveFormatError extends Error {
  constructor(drivePath: string, reason: string) {
    super(`drive ${drivePath}: ${reason}`);
    this.name = 'DriveFormatError';
  }
}

interface BucketMetaRecord {
  readonly createdMs: number;
  /** default encryption (PutBucketEncryption); absent when none is configured */
  readonly encryption?: BucketEncryption;
}

export function isErrnoCode(error: unknown, code: string): boolean {
  return typeof error === 'object' && error !== null && (error as NodeJS.ErrnoException).code === code;
}

// Plain file descriptors on the hot paths (every PUT fsyncs directories and writes a coffer.meta): the fd
// calls cost about half the CPU of FileHandles (measured: 24 vs 54 µs for open + fstat + read + close).
const openFd = promisify(fsCallbacks.open);
const writeFd = promisify(fsCallbacks.write);
const fsyncFd = promisify(fsCallbacks.fsync);
const fdatasyncFd = promisify(fsCallbacks.fdatasync);
const closeFd = promisify(fsCallbacks.close);
const ftruncateFd = promisify(fsCallbacks.ftruncate);

async function fsyncDirOnce(dirPath: string): Promise<void> {
  // The native addon (engine/native-fs.ts) does open + fsync + close as one thread-pool job.
  if (nativeFsyncPath !== undefined) return nativeFsyncPath(dirPath, true);
  const fd = await openFd(dirPath, fsConstants.O_RDONLY | fsConstants.O_DIRECTORY);
  try {
    await fsyncFd(fd);
  } finally {
    await closeFd(fd);
  }
}

interface DirSync {
  /** the fsync in flight */
  current: Promise<void>;
  /** the one after it, shared by everyone who asked while `current` ran */
  queued: Promise<void> | undefined;
}
const dirSyncs = new Map<string, DirSync>();

function settleDirSync(dirPath: string, sync: DirSync): void {
  if (sync.queued === undefined) {
    dirSyncs.delete(dirPath);
    return;
  }
  const queued = sync.queued;
  sync.queued = undefined;
  sync.current = queued.finally(() => settleDirSync(dirPath, sync));
  sync.current.catch(() => undefined); // its callers hold `queued` and see the error there
}

/**
 * fsync a directory, making renames/creates of its entries durable. Resolves after an fsync that started
 * after this call; concurrent callers share one (group commit): 16 small PUTs into one bucket dir need
 * about two fsyncs of it instead of sixteen.
 */
export function fsyncDir(dirPath: string): Promise<void> {
  const sync = dirSyncs.get(dirPath);
  if (sync === undefined) {
    const created: DirSync = { current: Promise.resolve(), queued: undefined };
    created.current = fsyncDirOnce(dirPath).finally(() => settleDirSync(dirPath, created));
    dirSyncs.set(dirPath, created);
    return created.current;
  }
  // The running fsync may have started before the caller's change: wait for the next one.
  sync.queued ??= sync.current.catch(() => undefined).then(() => fsyncDirOnce(dirPath));
  return sync.queued;
}

/**
 * Write all of `bytes` to a new file (must not exist: EEXIST) and fdatasync it before closing. One
 * thread-pool job with the native addon (engine/native-fs.ts), four node:fs calls without it.
 */
export async function writeFileDurable(filePath: string, bytes: Uint8Array): Promise<void> {
  if (nativeWriteFileDurable !== undefined) return nativeWriteFileDurable(filePath, bytes);
  return writeFdDurable(await openFd(filePath, 'wx'), bytes, false);
}

/**
 * Overwrite an existing file (ENOENT if there is none) with exactly `bytes` — written from offset 0, cut to
 * length — and fdatasync it: a file reused without allocating an inode (engine/meta-recycler.ts).
 */
export async function rewriteFileDurable(filePath: string, bytes: Uint8Array): Promise<void> {
  if (nativeRewriteFileDurable !== undefined) return nativeRewriteFileDurable(filePath, bytes);
  return writeFdDurable(await openFd(filePath, fsConstants.O_WRONLY), bytes, true);
}

async function writeFdDurable(fd: number, bytes: Uint8Array, truncate: boolean): Promise<void> {
  try {
    let offsetBytes = 0;
    while (offsetBytes < bytes.length) {
      const { bytesWritten } = await writeFd(fd, bytes, offsetBytes, bytes.length - offsetBytes, offsetBytes);
      offsetBytes += bytesWritten;
    }
    if (truncate) await ftruncateFd(fd, bytes.length);
    await fdatasyncFd(fd);
  } finally {
    await closeFd(fd);
  }
}

/**
 * Publish `bytes` at `filePath` only if nothing is there yet: written to `tmpPath` (same directory, created
 * exclusively with `mode`), fsynced, then hard-linked into place — link(2) is an atomic rename that refuses to
 * replace, so two racing creators cannot both believe they won. Falls back to check-then-rename on file
 * systems without hard links. Returns false when the file already existed. Used for key files.
 */
export async function createFileExclusive(tmpPath: string, filePath: string, bytes: Uint8Array, mode: number): Promise<boolean> {
  try {
    const handle = await fs.open(tmpPath, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, mode);
    try {
      await handle.chmod(mode); // the umask can only narrow the mode; be explicit anyway
      let offsetBytes = 0;
      while (offsetBytes < bytes.length) {
        const { bytesWritten } = await handle.write(bytes, offsetBytes, bytes.length - offsetBytes);
        offsetBytes += bytesWritten;
      }
      await handle.sync();
    } finally {
      await handle.close();
    }
    try {
      await fs.link(tmpPath, filePath);
    } catch (error) {
      if (isErrnoCode(error, 'EEXIST')) return false;
      if (!isErrnoCode(error, 'EPERM') && !isErrnoCode(error, 'ENOTSUP') && !isErrnoCode(error, 'ENOSYS')) throw error;
      // No hard links: check, then rename (atomic, but a concurrent creator may win the gap).
      try {
        await fs.access(filePath);
        return false;
      } catch {
        await fs.rename(tmpPath, filePath);
      }
    }
    await fsyncDir(path.dirname(filePath));
    return true;
  } finally {
    await fs.rm(tmpPath, { force: true });
  }
}

/** Read a whole small file, refusing files larger than `maxSizeBytes`. */
export async function readSmallFile(filePath: string, maxSizeBytes: number): Promise<Buffer> {
  const handle = await fs.open(filePath, 'r');
  try {
    const { size } = await handle.stat();
    if (size > maxSizeBytes) throw new StorageError('InternalError', `${filePath} is ${size} bytes, over the limit`);
    const buffer = Buffer.allocUnsafe(size);
    let offsetBytes = 0;
    while (offsetBytes < size) {
      const { bytesRead } = await handle.read(buffer, offsetBytes, size - offsetBytes, offsetBytes);
      if (bytesRead === 0) break;
      offsetBytes += bytesRead;
    }
    return buffer.subarray(0, offsetBytes);
  } finally {
    await handle.close();
  }
}

/**
 * mkdir -p of `dirPath` below `baseDir`, then fsync the parent of every directory it created so the new path
 * survives a power loss. `baseDir` itself (a bucket dir, a drive's tmp/) is never created: on a drive that
 * was removed or unmounted the call fails with ENOENT instead of rebuilding the drive on the mount point.
 * Returns true when `dirPath` itself was created by this call (so it is empty). `sync` false skips the
 * fsyncs (staging dirs under tmp/, made durable by the commit that moves them).
 */
export async function mkdirsDurable(dirPath: string, baseDir: string, sync = true): Promise<boolean> {
  // Compared resolved: `coffer server ./data` hands out relative paths, which path.join normalizes ('data/…').
  const resolvedDir = path.resolve(dirPath);
  const resolvedBase = path.resolve(baseDir);
  if (resolvedDir === resolvedBase) return false;
  if (!resolvedDir.startsWith(resolvedBase + path.sep)) throw new Error(`mkdirsDurable: ${dirPath} is not below ${baseDir}`);
  if (dirPath !== resolvedDir || baseDir !== resolvedBase) return mkdirsDurable(resolvedDir, resolvedBase, sync);
  try {
    await fs.mkdir(dirPath);
  } catch (error) {
    if (isErrnoCode(error, 'EEXIST')) return false;
    if (!isErrnoCode(error, 'ENOENT')) throw error;
    const parent = path.dirname(dirPath);
    if (parent === baseDir) throw error; // the base is gone
    await mkdirsDurable(parent, baseDir, sync);
    try {
      await fs.mkdir(dirPath);
    } catch (retryError) {
      if (isErrnoCode(retryError, 'EEXIST')) return false;
      throw retryError;
    }
  }
  if (sync) await fsyncDir(path.dirname(dirPath));
  return true;
}

/**
 * Remove now-empty directories from `dirPath` upwards, stopping below `stopDir` (exclusive). A directory that
 * is not empty (a sibling key, or a concurrent PUT that just created it) or already gone ends the walk.
 */
export async function removeEmptyDirsUpTo(dirPath: string, stopDir: string): Promise<void> {
  for (let dir = dirPath; dir.startsWith(stopDir + path.sep); dir = path.dirname(dir)) {
    try {
      await fs.rmdir(dir);
    } catch (error) {
      if (isErrnoCode(error, 'ENOENT') || isErrnoCode(error, 'ENOTEMPTY') || isErrnoCode(error, 'EEXIST')) return;
      throw error;
    }
  }
}

function parseFormat(drivePath: string, text: string): DriveFormat {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new DriveFormatError(drivePath, `${systemDirName}/format.json is not valid JSON`);
  }
  if (typeof value !== 'object' || value === null) {
    throw new DriveFormatError(drivePath, `${systemDirName}/format.json is not a JSON object`);
  }
  const fields = value as Record<string, unknown>;
  if (fields['format'] !== formatName) {
    throw new DriveFormatError(drivePath, `format.json has format ${JSON.stringify(fields['format'])}, not "${formatName}"`);
  }
  if (fields['version'] !== formatVersion) {
    throw new DriveFormatError(drivePath, `unsupported format.json version ${JSON.stringify(fields['version'])}`);
  }
  const deploymentId = fields['deploymentId'];
  const thisDriveId = fields['thisDriveId'];
  const sets = fields['sets'];
  if (typeof deploymentId !== 'string' || !uuidPattern.test(deploymentId)) {
    throw new DriveFormatError(drivePath, 'format.json has no valid deploymentId');
  }
  if (typeof thisDriveId !== 'string' || !uuidPattern.test(thisDriveId)) {
    throw new DriveFormatError(drivePath, 'format.json has no valid thisDriveId');
  }
  const validSets =
    Array.isArray(sets) &&
    sets.length > 0 &&
    sets.every((set) => Array.isArray(set) && set.length > 0 && set.every((id) => typeof id === 'string'));
  if (!validSets) throw new DriveFormatError(drivePath, 'format.json has an invalid sets matrix');
  return { version: formatVersion, format: formatName, deploymentId, thisDriveId, sets: sets as string[][] };
}

export class Drive {
  readonly paths: DrivePaths;
  readonly format: DriveFormat;
  /** deleted objects' coffer.meta files, kept in tmp/ for the next commits to rewrite (engine/meta-recycler.ts) */
  readonly metaRecycler = new MetaFileRecycler();
  /** removal of the previous run's tmp dir, running in the background after open */
  #backgroundCleanup: Promise<void>;

  private constructor(paths: DrivePaths, format: DriveFormat, backgroundCleanup: Promise<void>) {
    this.paths = paths;
    this.format = format;
    this.#backgroundCleanup = backgroundCleanup;
  }

  /** Open (formatting on first use) a single-drive deployment on `drivePath`. */
  static async open(drivePath: string): Promise<Drive> {
    const paths = new DrivePaths(drivePath);
    await fs.mkdir(paths.root, { recursive: true });
    const probe = await Drive.probeFormat(paths.root);
    let format: DriveFormat;
    if (probe.state === 'formatted') {
      format = probe.format;
    } else {
      const driveId = randomUUID();
      format = { version: formatVersion, format: formatName, deploymentId: randomUUID(), thisDriveId: driveId, sets: [[driveId]] };
      await Drive.writeFormat(paths.root, format);
    }
    if (format.sets.length !== 1 || format.sets[0]!.length !== 1 || format.sets[0]![0] !== format.thisDriveId) {
      const driveCount = format.sets.reduce((sum, set) => sum + set.length, 0);
      throw new DriveFormatError(paths.root, `belongs to a ${driveCount}-drive deployment, but was started alone`);
    }
    return Drive.attach(paths.root, format);
  }

  /**
   * What `drivePath` holds: `missing` (no such directory: an unmounted or removed drive, never created
   * here), `fresh` (empty, or only a lost+found: may be formatted), or a parsed format.json. A non-empty
   * directory without format.json, or an invalid one, is a DriveFormatError: never adopt someone's data.
   */
  static async probeFormat(drivePath: string): Promise<{ state: 'missing' } | { state: 'fresh' } | { state: 'formatted'; format: DriveFormat }> {
    const paths = new DrivePaths(drivePath);
    let text: string | undefined;
    try {
      text = (await readSmallFile(paths.formatFile, maxFormatFileSizeBytes)).toString('utf8');
    } catch (error) {
      if (!isErrnoCode(error, 'ENOENT')) {
        if (error instanceof StorageError) throw new DriveFormatError(paths.root, error.message);
        if (isErrnoCode(error, 'ENOTDIR')) throw new DriveFormatError(paths.root, 'is not a directory');
        throw error;
      }
    }
    if (text !== undefined) return { state: 'formatted', format: parseFormat(paths.root, text) };
    let entries: string[];
    try {
      entries = await fs.readdir(paths.root);
    } catch (error) {
      if (isErrnoCode(error, 'ENOENT')) return { state: 'missing' };
      if (isErrnoCode(error, 'ENOTDIR')) throw new DriveFormatError(paths.root, 'is not a directory');
      throw error;
    }
    const foreign = entries.filter((name) => !ignorableFreshDriveEntries.has(name));
    if (foreign.length > 0) {
      throw new DriveFormatError(
        paths.root,
        `has no ${systemDirName}/format.json but is not empty (${foreign.slice(0, 3).join(', ')}); refusing to format it`,
      );
    }
    return { state: 'fresh' };
  }

  /** Write format.json durably (tmp + fsync + rename) on an existing drive directory. */
  static async writeFormat(drivePath: string, format: DriveFormat): Promise<void> {
    const paths = new DrivePaths(drivePath);
    await fs.mkdir(paths.systemDir, { recursive: true });
    const stagingFile = path.join(paths.systemDir, `format.json.${randomUUID()}.tmp`);
    await writeFileDurable(stagingFile, Buffer.from(JSON.stringify(format, null, 2) + '\n', 'utf8'));
    await fs.rename(stagingFile, paths.formatFile);
    await fsyncDir(paths.systemDir);
    await fsyncDir(paths.root);
  }

  /** Start using a formatted drive: system dirs, and the previous run's tmp/ set aside for removal. */
  static async attach(drivePath: string, format: DriveFormat): Promise<Drive> {
    const paths = new DrivePaths(drivePath);
    await fs.mkdir(paths.multipartDir, { recursive: true });
    await fs.mkdir(paths.bucketMetaDir, { recursive: true });
    // Everything in tmp/ is by definition unfinished or garbage: set it aside at once (cheap rename), so
    // this run starts with an empty tmp/, and delete it in the background.
    await fs.mkdir(paths.tmpOldDir, { recursive: true });
    try {
      await fs.rename(paths.tmpDir, path.join(paths.tmpOldDir, randomUUID()));
    } catch (error) {
      if (!isErrnoCode(error, 'ENOENT')) throw error;
    }
    await fs.mkdir(paths.tmpDir, { recursive: true });
    const backgroundCleanup = Drive.#removeDirContents(paths.tmpOldDir).catch(() => {
      // Best effort: whatever is left is retried on the next start.
    });
    return new Drive(paths, format, backgroundCleanup);
  }

  static async #removeDirContents(dirPath: string): Promise<void> {
    const names = await fs.readdir(dirPath);
    for (const name of names) await fs.rm(path.join(dirPath, name), { recursive: true, force: true });
  }

  /** Wait for background work started by open (tests, shutdown). */
  async close(): Promise<void> {
    await this.#backgroundCleanup;
  }

  /** A fresh, unique directory under tmp/ for staging one operation. */
  /**
   * A fresh staging path under tmp/ that is not created yet: writers create it when they first need it
   * (small inline PUTs never do, which saves an inode allocation, a mkdir and an rmdir per request).
   */
  stagingPath(): string {
    return path.join(this.paths.tmpDir, randomUUID());
  }

  async makeStagingDir(): Promise<string> {
    const dir = path.join(this.paths.tmpDir, randomUUID());
    await fs.mkdir(dir);
    return dir;
  }

  /**
   * Atomically move `target` out of the namespace into tmp/ (it then counts as garbage even across a crash).
   * Returns the new location, or undefined when `target` did not exist.
   */
  async moveToTrash(target: string): Promise<string | undefined> {
    const trashPath = path.join(this.paths.tmpDir, randomUUID());
    try {
      await fs.rename(target, trashPath);
      return trashPath;
    } catch (error) {
      if (isErrnoCode(error, 'ENOENT')) return undefined;
      throw error;
    }
  }

  async removeTree(target: string): Promise<void> {
    await fs.rm(target, { recursive: true, force: true });
  }

  // ------------------------------------------------------------------------------------- buckets

  async bucketExists(bucket: string): Promise<boolean> {
    if (!isSafeBucketName(bucket)) return false;
    try {
      return (await fs.stat(this.paths.bucketDir(bucket))).isDirectory();
    } catch (error) {
      if (isErrnoCode(error, 'ENOENT') || isErrnoCode(error, 'ENOTDIR')) return false;
      throw error;
    }
  }

  async assertBucketExists(bucket: string): Promise<void> {
    if (!(await this.bucketExists(bucket))) throw new StorageError('NoSuchBucket', `bucket ${bucket} does not exist`);
  }

  /**
   * Create a bucket: metadata first (via tmp + rename), then the bucket dir, which is the commit point
   * (existence of `DRIVE/<bucket>/` is what makes a bucket exist).
   */
  async createBucket(bucket: string, createdMs: number): Promise<void> {
    // Callers hold the bucket's exclusive lock, so this check cannot race another create or delete.
    if (await this.bucketExists(bucket)) throw new StorageError('BucketAlreadyOwnedByYou', `bucket ${bucket} exists`);
    this.#bucketEncryptionCache.delete(bucket);
    const record: BucketMetaRecord = { createdMs };
    const stagingFile = path.join(this.paths.tmpDir, randomUUID());
    await writeFileDurable(stagingFile, Buffer.from(JSON.stringify(record) + '\n', 'utf8'));
    await fs.rename(stagingFile, this.paths.bucketMetaFile(bucket));
    await fsyncDir(this.paths.bucketMetaDir);
    try {
      await fs.mkdir(this.paths.bucketDir(bucket));
    } catch (error) {
      if (isErrnoCode(error, 'EEXIST')) throw new StorageError('BucketAlreadyOwnedByYou', `bucket ${bucket} exists`);
      throw error;
    }
    await fsyncDir(this.paths.root);
  }

  async bucketInfo(bucket: string): Promise<BucketInfo> {
    let dirMtimeMs: number;
    try {
      const stat = await fs.stat(this.paths.bucketDir(bucket));
      if (!stat.isDirectory()) throw new StorageError('NoSuchBucket', `bucket ${bucket} does not exist`);
      dirMtimeMs = stat.birthtimeMs > 0 ? stat.birthtimeMs : stat.mtimeMs;
    } catch (error) {
      if (isErrnoCode(error, 'ENOENT')) throw new StorageError('NoSuchBucket', `bucket ${bucket} does not exist`);
      throw error;
    }
    try {
      const text = (await readSmallFile(this.paths.bucketMetaFile(bucket), maxFormatFileSizeBytes)).toString('utf8');
      const record = JSON.parse(text) as Partial<BucketMetaRecord>;
      if (typeof record.createdMs === 'number') return { name: bucket, createdMs: record.createdMs };
    } catch {
      // Missing or unreadable bucket metadata must not hide the bucket: fall back to the dir's time.
    }
    return { name: bucket, createdMs: Math.floor(dirMtimeMs) };
  }

  async #readBucketMeta(bucket: string): Promise<BucketMetaRecord | undefined> {
    try {
      const text = (await readSmallFile(this.paths.bucketMetaFile(bucket), maxFormatFileSizeBytes)).toString('utf8');
      return JSON.parse(text) as BucketMetaRecord;
    } catch (error) {
      if (isErrnoCode(error, 'ENOENT')) return undefined;
      throw error;
    }
  }

  /**
   * Bucket default encryption, consulted on every PUT: cached per bucket (this process owns the drive, and
   * every change goes through setBucketEncryption/createBucket/removeBucketMeta, which refresh the entry).
   */
  readonly #bucketEncryptionCache = new Map<string, BucketEncryption | null>();

  async bucketEncryption(bucket: string): Promise<BucketEncryption | undefined> {
    const cached = this.#bucketEncryptionCache.get(bucket);
    if (cached !== undefined) return cached ?? undefined;
    await this.assertBucketExists(bucket);
    const record = await this.#readBucketMeta(bucket);
    const encryption = record?.encryption;
    if (encryption !== undefined && encryption.algorithm !== 'AES256' && encryption.algorithm !== 'aws:kms') {
      throw new StorageError('InternalError', `bucket ${bucket}: corrupt encryption configuration`);
    }
    this.#bucketEncryptionCache.set(bucket, encryption ?? null);
    return encryption;
  }

  /** Rewrite the bucket record atomically with a new encryption configuration (callers hold the bucket lock). */
  async setBucketEncryption(bucket: string, encryption: BucketEncryption | undefined): Promise<void> {
    const info = await this.bucketInfo(bucket);
    const previous = await this.#readBucketMeta(bucket);
    const record: BucketMetaRecord = { createdMs: previous?.createdMs ?? info.createdMs, ...(encryption ? { encryption } : {}) };
    const stagingFile = path.join(this.paths.tmpDir, randomUUID());
    await writeFileDurable(stagingFile, Buffer.from(JSON.stringify(record) + '\n', 'utf8'));
    await fs.rename(stagingFile, this.paths.bucketMetaFile(bucket));
    await fsyncDir(this.paths.bucketMetaDir);
    this.#bucketEncryptionCache.set(bucket, encryption ?? null);
  }

  /** Names of all bucket dirs, unsorted. */
  async bucketNames(): Promise<string[]> {
    const entries = await fs.readdir(this.paths.root, { withFileTypes: true });
    return entries.filter((entry) => entry.isDirectory() && isSafeBucketName(entry.name)).map((entry) => entry.name);
  }

  /**
   * Take a bucket out of the namespace (the caller checked it is empty and holds its lock): moving the bucket
   * dir into tmp/ is the commit point. Returns the trashed paths for the caller to remove.
   */
  async deleteBucketDirs(bucket: string): Promise<string[]> {
    const garbage: string[] = [];
    const trashedBucketDir = await this.moveToTrash(this.paths.bucketDir(bucket));
    if (trashedBucketDir !== undefined) garbage.push(trashedBucketDir);
    await fsyncDir(this.paths.root);
    const trashedUploads = await this.moveToTrash(this.paths.bucketMultipartDir(bucket));
    if (trashedUploads !== undefined) garbage.push(trashedUploads);
    await this.removeBucketMeta(bucket);
    return garbage;
  }

  async removeBucketMeta(bucket: string): Promise<void> {
    this.#bucketEncryptionCache.delete(bucket);
    await fs.rm(this.paths.bucketMetaFile(bucket), { force: true });
  }
}
