// The file-system key store (KES `keystore.fs.path`, reference/sse-kms-kes.md §14.8): one file per key, named
// exactly like the key, holding the JSON of key-version.ts. Key material never sits in a file another user can
// read: the directory is 0700 and every key file 0600.
//
// Create is atomic and never overwrites: the entry is written to a temporary name (O_EXCL, 0600), fsynced, then
// published with link(2), which fails with EEXIST if the name is taken — so two concurrent creates of one name
// (two servers sharing the directory, or a race with startup `keys:`) end with exactly one winner, and a crash
// leaves either no key or the whole key, never a torn file. The directory is fsynced after link and unlink.
// Temporary names start with '.', which no valid key name does, so listings skip them (and a crash's leftovers).

import { randomBytes } from 'node:crypto';
import { constants as fsConstants, promises as fs } from 'node:fs';
import path from 'node:path';
import { createFileExclusive, fsyncDir, isErrnoCode, readSmallFile } from '../../engine/drive.ts';
import { kesErrors } from '../errors.ts';
import { encodeKeyVersion, keyVersionSizeBytesMax, parseKeyVersion, type KeyVersion } from '../key-version.ts';
import { isValidName } from '../names.ts';
import { KeyStoreUnreachableError, listNamesMax, pageOfNames, type KeyListPage, type KeyStore, type KeyStoreStatus } from './keystore.ts';

export const keyFileMode = 0o600;
export const keyDirMode = 0o700;
const tmpPrefix = '.tmp-';

export class FsKeyStore implements KeyStore {
  readonly description: string;
  readonly #dir: string;

  private constructor(dir: string) {
    this.#dir = dir;
    this.description = `fs:${dir}`;
  }

  /** Open (and create, 0700) the key directory. An existing directory keeps its mode but gets a warning from the caller. */
  static async open(dir: string): Promise<FsKeyStore> {
    const absolute = path.resolve(dir);
    await fs.mkdir(absolute, { recursive: true, mode: keyDirMode });
    const stat = await fs.stat(absolute);
    if (!stat.isDirectory()) throw new Error(`keystore.fs.path '${absolute}' is not a directory`);
    return new FsKeyStore(absolute);
  }

  /** Permission bits of the key directory, so startup can warn when others may read it. */
  async directoryMode(): Promise<number> {
    return (await fs.stat(this.#dir)).mode & 0o777;
  }

  #path(name: string): string {
    // Names reach here validated by the server; checked again because this is what keeps `../` out of the path.
    if (!isValidName(name)) throw new Error(`fs key store: invalid key name '${name}'`);
    return path.join(this.#dir, name);
  }

  async create(name: string, version: KeyVersion): Promise<void> {
    const filePath = this.#path(name);
    const bytes = encodeKeyVersion(version);
    const tmpPath = path.join(this.#dir, `${tmpPrefix}${name}-${randomBytes(8).toString('hex')}`);
    try {
      if (!(await createFileExclusive(tmpPath, filePath, bytes, keyFileMode))) throw kesErrors.keyExists();
    } finally {
      bytes.fill(0);
    }
  }

  async get(name: string): Promise<KeyVersion> {
    let bytes: Buffer;
    try {
      bytes = await readSmallFile(this.#path(name), keyVersionSizeBytesMax);
    } catch (error) {
      if (isErrnoCode(error, 'ENOENT')) throw kesErrors.keyNotFound();
      throw error;
    }
    try {
      return parseKeyVersion(bytes);
    } finally {
      bytes.fill(0);
    }
  }

  async delete(name: string): Promise<void> {
    try {
      await fs.unlink(this.#path(name));
    } catch (error) {
      if (isErrnoCode(error, 'ENOENT')) throw kesErrors.keyNotFound();
      throw error;
    }
    await fsyncDir(this.#dir);
  }

  async list(prefix: string, options: { readonly startAt?: string; readonly limit?: number } = {}): Promise<KeyListPage> {
    const entries = await fs.readdir(this.#dir, { withFileTypes: true });
    const names = entries
      .filter((entry) => entry.isFile() && isValidName(entry.name))
      .map((entry) => entry.name)
      .sort();
    return pageOfNames(names, prefix, options.startAt, options.limit ?? listNamesMax);
  }

  async status(): Promise<KeyStoreStatus> {
    const startedMs = performance.now();
    try {
      await fs.access(this.#dir, fsConstants.R_OK | fsConstants.W_OK | fsConstants.X_OK);
    } catch (error) {
      throw new KeyStoreUnreachableError(`fs key store ${this.#dir} is not accessible`, { cause: error });
    }
    return { latencyMs: performance.now() - startedMs };
  }

  async close(): Promise<void> {}
}
