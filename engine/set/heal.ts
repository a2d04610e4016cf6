// Healing an erasure set (docs/jbod.md §7): give every drive back its shard of every object.
//
// healObject reads all drives' metadata under the key's lock, takes the version a read quorum agrees on,
// finds the drives that lack it (offline while it was written, stale, wiped, corrupt metadata) and — in a
// deep heal — the drives whose shard data fails its bitrot digests, decodes the data from the good shards
// and re-encodes only the missing shards into tmp/, then commits them on those drives like a PUT. An
// object that a quorum of drives no longer has (a delete the drive missed) is deleted there.
//
// Triggers: a read that met a bad or missing shard (queued, deep), a PUT/DELETE that missed drives
// (queued), a fresh or returning drive (every object, sizes checked), `coffer admin heal` (deep), and the
// background scanner (deep, one object per interval).

import { randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { bitrotShardFileSizeBytes, readVerifiedShard, verifyFramedShard } from '../erasure/bitrot.ts';
import { shardFileSizeBytes, shardSizeBytes } from '../erasure/distribution.ts';
import { QuorumError } from '../erasure/quorum.ts';
import { bucketLockKey, objectLockKey } from '../locks.ts';
import type { ObjectVersion } from '../meta.ts';
import { readSmallFile } from '../drive.ts';
import { commitObject, deleteObjectFiles, removeGarbage } from '../objects.ts';
import { dataDirName, parseKey } from '../paths.ts';
import type { ParsedKey } from '../paths.ts';
import { StorageError } from '../types.ts';
import type { HealProgress, HealSummary } from '../types.ts';
import { encryptedSizeBytes } from '../../workers/dare.ts';
import type { ErasureSetEngine } from './set-engine.ts';
import { versionForDrive } from './set-engine.ts';
import { BufferShardSource, DriveOfflineError, drivesByShard, FileShardSink, FileShardSource, onEachDrive } from './set-io.ts';
import { readErasureStream, writeErasureStream } from './shard-stream.ts';
import type { ShardSource } from './shard-stream.ts';

export type HealResult = HealProgress['result'];

/** Keys waiting for a heal; more than this are dropped (the scanner or an admin heal finds them later). */
const maxQueuedHeals = 10_000;
/**
 * The queue (keys waiting, and keys whose heal failed and waits for a retry) is written to every drive's
 * `.coffer.sys/heal-queue.json` at most this often, and read back at startup: a PUT that missed a drive
 * is healed after a restart too, not only when the scanner gets to it (MinIO's MRF).
 */
export const healQueueFlushIntervalMs = 1000;
/** Failed heals (a drive still read-only, full, or flapping) are tried again this often. */
export const healRetryIntervalMs = 10_000;
export const healQueueFileName = 'heal-queue.json';
const maxHealQueueFileBytes = 16 * 1024 * 1024;

type QueueEntry = { readonly bucket: string; readonly key: string };

export interface HealerOptions {
  readonly onObjectHealed: () => void;
  readonly scannerIntervalMs: number;
}

export class Healer {
  readonly #engine: ErasureSetEngine;
  readonly #options: HealerOptions;
  readonly #queue = new Map<string, QueueEntry>();
  /** heals that failed, tried again every healRetryIntervalMs */
  readonly #retry = new Map<string, QueueEntry>();
  #queueDirty = false;
  #inFlight: QueueEntry | undefined;
  #draining: Promise<void> | undefined;
  readonly #background = new Set<Promise<unknown>>();
  #scanner: NodeJS.Timeout | undefined;
  #queueTimers: NodeJS.Timeout[] = [];
  #closed = false;

  constructor(engine: ErasureSetEngine, options: HealerOptions) {
    this.#engine = engine;
    this.#options = options;
  }

  /** Heal bucket/key soon, in the background (deep: shard data is verified). */
  enqueue(bucket: string, key: string): void {
    if (this.#closed || this.#queue.size >= maxQueuedHeals) return;
    this.#queue.set(`${bucket}/${key}`, { bucket, key });
    this.#queueDirty = true;
    if (this.#draining === undefined) {
      this.#draining = this.#track(
        (async () => {
          // Let the request that found the damage finish first.
          await new Promise((resolve) => setTimeout(resolve, 50));
          while (this.#queue.size > 0 && !this.#closed) {
            const [id, entry] = this.#queue.entries().next().value as [string, QueueEntry];
            this.#queue.delete(id);
            this.#inFlight = entry; // still saved by a flush while it runs
            const result = await this.healObject(entry.bucket, entry.key, true).catch((): HealResult => 'failed');
            this.#inFlight = undefined;
            if (result === 'failed' && this.#retry.size < maxQueuedHeals) this.#retry.set(id, entry);
            else this.#retry.delete(id);
            this.#queueDirty = true;
          }
        })().finally(() => {
          this.#draining = undefined;
        }),
      );
    }
  }

  #track<T>(promise: Promise<T>): Promise<T> {
    this.#background.add(promise);
    void promise.finally(() => this.#background.delete(promise)).catch(() => undefined);
    return promise;
  }

  /** Resume the queue saved by the previous run, and keep saving it (see healQueueFlushIntervalMs). */
  async startQueue(): Promise<void> {
    const saved = new Map<string, QueueEntry>();
    await onEachDrive(this.#engine.set, async (drive) => {
      let entries: unknown;
      try {
        entries = JSON.parse((await readSmallFile(path.join(drive.paths.systemDir, healQueueFileName), maxHealQueueFileBytes)).toString('utf8'));
      } catch {
        return; // none, or unreadable: the scanner covers what it held
      }
      if (!Array.isArray(entries)) return;
      for (const entry of entries) {
        if (Array.isArray(entry) && typeof entry[0] === 'string' && typeof entry[1] === 'string') saved.set(`${entry[0]}/${entry[1]}`, { bucket: entry[0], key: entry[1] });
      }
    });
    for (const entry of saved.values()) this.enqueue(entry.bucket, entry.key);
    const flush = setInterval(() => void this.#flushQueue().catch(() => undefined), healQueueFlushIntervalMs);
    const retry = setInterval(() => {
      const entries = [...this.#retry.values()];
      this.#retry.clear();
      for (const entry of entries) this.enqueue(entry.bucket, entry.key);
    }, healRetryIntervalMs);
    flush.unref();
    retry.unref();
    this.#queueTimers = [flush, retry];
  }

  /** Write the waiting and failed heals to every online drive (tmp + rename), when they changed. */
  async #flushQueue(): Promise<void> {
    if (!this.#queueDirty) return;
    this.#queueDirty = false;
    const all = new Map([...this.#queue, ...this.#retry]);
    if (this.#inFlight !== undefined) all.set(`${this.#inFlight.bucket}/${this.#inFlight.key}`, this.#inFlight);
    const entries = [...all.values()].slice(0, maxQueuedHeals).map((entry) => [entry.bucket, entry.key]);
    const bytes = Buffer.from(JSON.stringify(entries), 'utf8');
    await onEachDrive(this.#engine.set, async (drive) => {
      const target = path.join(drive.paths.systemDir, healQueueFileName);
      if (entries.length === 0) {
        await fs.rm(target, { force: true });
        return;
      }
      const staged = path.join(drive.paths.tmpDir, `${healQueueFileName}.${randomUUID()}`);
      await fs.writeFile(staged, bytes);
      await fs.rename(staged, target);
    });
  }

  /** Heal a fresh or returning drive: every bucket and object, then mark it healed. */
  healDriveInBackground(driveIndex: number): void {
    if (this.#closed) return;
    this.#track(
      (async () => {
        const summary = await this.healNamespace('', '', undefined, false);
        if (summary.failed === 0 && this.#engine.set.drive(driveIndex) !== undefined) this.#engine.set.markHealed(driveIndex);
      })().catch(() => undefined),
    );
  }

  /** Heal all objects of bucket/prefix (every bucket when bucket is ''). */
  async healNamespace(bucket: string, prefix: string, onProgress?: (progress: HealProgress) => void, deep = true): Promise<HealSummary> {
    const buckets = bucket === '' ? await this.#healBuckets() : [bucket];
    if (bucket !== '') await this.#healBucket(bucket); // NoSuchBucket from its headBucket
    let scanned = 0;
    let healed = 0;
    let failed = 0;
    for (const name of buckets) {
      for await (const key of this.#engine.keys(name, prefix)) {
        if (this.#closed) break;
        const result = await this.healObject(name, key, deep).catch((): HealResult => 'failed');
        scanned += 1;
        if (result === 'healed' || result === 'deleted') healed += 1;
        if (result === 'failed') failed += 1;
        onProgress?.({ scanned, healed, failed, current: `${name}/${key}`, result });
      }
    }
    return { scanned, healed, failed };
  }

  /** Buckets by quorum, created on the drives that miss them (with their metadata). */
  async #healBuckets(): Promise<string[]> {
    const buckets = await this.#engine.listBuckets();
    for (const bucket of buckets) await this.#healBucket(bucket.name);
    return buckets.map((bucket) => bucket.name);
  }

  async #healBucket(bucket: string): Promise<void> {
    const engine = this.#engine;
    const info = await engine.headBucket(bucket);
    const encryption = await engine.getBucketEncryption(bucket).catch(() => undefined);
    await engine.locks.withExclusive(bucketLockKey(bucket), () =>
      onEachDrive(engine.set, async (drive) => {
        if (await drive.bucketExists(bucket)) return;
        await drive.createBucket(bucket, info.createdMs);
        if (encryption !== undefined) await drive.setBucketEncryption(bucket, encryption);
      }),
    );
  }

  /**
   * Bring bucket/key to every online drive. `deep` verifies every shard's bitrot digests; otherwise a
   * shard file of the right size counts as good.
   */
  async healObject(bucket: string, key: string, deep: boolean): Promise<HealResult> {
    const engine = this.#engine;
    const parsed = parseKey(key);
    return engine.locks.withShared(bucketLockKey(bucket), () =>
      engine.locks.withExclusive(objectLockKey(bucket, key), async () => {
        const metas = await engine.readDriveMetas(bucket, parsed, true);
        const agreement = engine.agree(metas);
        if (agreement instanceof QuorumError) {
          const notFound = agreement.errorInQuorum instanceof StorageError && agreement.errorInQuorum.kind === 'NoSuchKey';
          if (!notFound) return 'failed';
          // Gone by quorum: remove the leftovers of a delete (or a rolled-back write) that some drive missed.
          let deleted = false;
          await onEachDrive(engine.set, async (drive, index) => {
            if (metas[index] instanceof Error && !(metas[index] instanceof StorageError && (metas[index] as StorageError).kind === 'InternalError')) return;
            await removeGarbage(drive, await deleteObjectFiles(drive, drive.paths.bucketDir(bucket), drive.paths.objectDir(bucket, parsed)));
            deleted = true;
          });
          return deleted ? 'deleted' : 'ok';
        }
        const version = agreement.version;
        const targets = new Set<number>();
        for (let index = 0; index < engine.set.size; index++) {
          if (engine.set.drive(index) !== undefined && !agreement.agreeingDrives.includes(index)) targets.add(index);
        }
        await Promise.all(
          agreement.agreeingDrives.map(async (index) => {
            const drive = engine.set.drive(index);
            const meta = metas[index];
            if (drive === undefined || meta === undefined || meta instanceof Error) return;
            const good = await shardsIntact(version, drive.paths.objectDir(bucket, parsed), meta.inlineData, deep);
            if (!good) {
              targets.add(index);
              engine.reportShardError(`${bucket}/${key} on drive ${index + 1}`, new StorageError('InternalError', 'shard failed verification'));
            }
          }),
        );
        if (targets.size === 0) return 'ok';
        const sources = agreement.agreeingDrives.filter((index) => !targets.has(index));
        if (sources.length < version.erasure.dataShards) return 'failed';
        const rebuilt = await this.#rebuild(bucket, parsed, version, metas, sources, targets);
        if (rebuilt) this.#options.onObjectHealed();
        return rebuilt ? 'healed' : 'failed';
      }),
    );
  }

  /** Decode from `sources` and write the shards of `targets`, then commit them there. */
  async #rebuild(
    bucket: string,
    parsed: ParsedKey,
    version: ObjectVersion,
    metas: Awaited<ReturnType<ErasureSetEngine['readDriveMetas']>>,
    sources: readonly number[],
    targets: ReadonlySet<number>,
  ): Promise<boolean> {
    const engine = this.#engine;
    const { dataShards, parityShards, blockSizeBytes, distribution } = version.erasure;
    const algorithm = version.erasure.bitrot!;
    const byShard = drivesByShard(distribution);
    const stageId = `heal-${randomUUID()}`;
    const failedTargets = new Set<number>();
    const opened: Promise<FileHandle>[] = [];
    let inlineShards: readonly Buffer[] | undefined;
    try {
      for (const part of version.parts) {
        const storedSizeBytes = version.encryption === undefined ? part.size : encryptedSizeBytes(part.size);
        const shardSources: (ShardSource | undefined)[] = byShard.map((driveIndex) => {
          if (!sources.includes(driveIndex)) return undefined;
          const meta = metas[driveIndex]!;
          if (meta instanceof Error) return undefined;
          if (version.inline) return new BufferShardSource(meta.inlineData);
          const filePath = path.join(engine.set.drive(driveIndex)!.paths.objectDir(bucket, parsed), dataDirName(version.dataDir!), `part.${part.n}`);
          let handle: ReturnType<typeof fs.open> | undefined;
          return new FileShardSource(() => {
            if (handle === undefined) {
              handle = fs.open(filePath, 'r');
              opened.push(handle);
            }
            return handle;
          });
        });
        const body = readErasureStream({
          dataShards, parityShards, blockSizeBytes, algorithm, sizeBytes: storedSizeBytes, sources: shardSources, start: 0, endExclusive: storedSizeBytes,
        });
        const sinks: (FileShardSink | undefined)[] = new Array(engine.set.size).fill(undefined);
        const written = await writeErasureStream({
          body,
          dataShards,
          parityShards,
          blockSizeBytes,
          algorithm,
          writeQuorum: 1,
          inlineMaxSizeBytes: version.inline ? Number.MAX_SAFE_INTEGER : -1,
          openSinks: () => engine.openShardSinks(version.erasure, stageId, path.join(dataDirName(version.dataDir ?? 'inline'), `part.${part.n}`), sinks, targets),
          maxSizeBytes: storedSizeBytes,
          expectedSizeBytes: storedSizeBytes,
          computeMd5: false,
        });
        if (version.inline) {
          inlineShards = written.inlineShards;
        } else {
          const failed = await engine.finishSinks(sinks, written.failedShards, version.erasure);
          for (const index of targets) if (failed.has(index)) failedTargets.add(index);
        }
      }
      const results = await onEachDrive(engine.set, async (drive, index) => {
        if (!targets.has(index) || failedTargets.has(index)) throw new DriveOfflineError(index);
        const objectDir = drive.paths.objectDir(bucket, parsed);
        const stagingDir = path.join(drive.paths.tmpDir, stageId);
        const garbage: string[] = [];
        if (version.dataDir !== undefined) {
          // A corrupt copy of the same data dir is in the way of the rename: set it aside first.
          const trashed = await drive.moveToTrash(path.join(objectDir, dataDirName(version.dataDir)));
          if (trashed !== undefined) garbage.push(trashed);
        }
        const shardIndex = distribution[index]! - 1;
        const inlineShard = inlineShards?.[shardIndex];
        garbage.push(
          ...(await commitObject(drive, {
            bucketDir: drive.paths.bucketDir(bucket),
            objectDir,
            version: versionForDrive(version, index, inlineShard),
            inlineData: inlineShard ?? Buffer.alloc(0),
            stagingDir,
            ...(version.inline ? { stagedMetaPath: `${stagingDir}.meta` } : {}),
          })),
        );
        await removeGarbage(drive, garbage);
      });
      return results.some((result) => !(result instanceof Error));
    } catch {
      return false;
    } finally {
      await Promise.all(opened.map(async (pending) => (await pending.catch(() => undefined))?.close().catch(() => undefined)));
      await engine.removeStaging(stageId);
    }
  }

  /** The background scanner: one deep heal per interval over every object, forever (bounded rate). */
  startScanner(): void {
    const interval = this.#options.scannerIntervalMs;
    if (interval <= 0) return;
    const run = async (): Promise<void> => {
      while (!this.#closed) {
        try {
          for (const bucket of await this.#engine.listBuckets()) {
            for await (const key of this.#engine.keys(bucket.name, '')) {
              if (this.#closed) return;
              await new Promise<void>((resolve) => {
                this.#scanner = setTimeout(resolve, interval);
                this.#scanner.unref();
              });
              if (this.#closed) return;
              await this.healObject(bucket.name, key, true).catch(() => 'failed');
            }
          }
        } catch {
          // quorum lost for a while: try again next round
        }
        await new Promise<void>((resolve) => {
          this.#scanner = setTimeout(resolve, interval * 10);
          this.#scanner.unref();
        });
      }
    };
    void this.#track(run());
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#scanner !== undefined) clearTimeout(this.#scanner);
    for (const timer of this.#queueTimers) clearInterval(timer);
    await Promise.allSettled([...this.#background]);
    // What is still waiting (or failed) is saved for the next run.
    this.#queueDirty = true;
    await this.#flushQueue().catch(() => undefined);
    this.#queue.clear();
    this.#retry.clear();
  }
}

/**
 * Whether a drive's copy of `version` has all its shard data: files of the right size, and with `deep`
 * every bitrot digest verified.
 */
async function shardsIntact(version: ObjectVersion, objectDir: string, inlineData: Buffer, deep: boolean): Promise<boolean> {
  const { dataShards, blockSizeBytes } = version.erasure;
  const algorithm = version.erasure.bitrot!;
  const shardBytes = shardSizeBytes(blockSizeBytes, dataShards);
  for (const part of version.parts) {
    const storedSizeBytes = version.encryption === undefined ? part.size : encryptedSizeBytes(part.size);
    const payloadBytes = shardFileSizeBytes(storedSizeBytes, blockSizeBytes, dataShards);
    const framedBytes = payloadBytes === 0 ? 0 : bitrotShardFileSizeBytes(payloadBytes, shardBytes, algorithm);
    if (version.inline) {
      if (inlineData.length !== framedBytes) return false;
      if (deep && payloadBytes > 0 && !Array.isArray(verifyFramedShard(inlineData, shardBytes, payloadBytes, algorithm))) return false;
      continue;
    }
    const filePath = path.join(objectDir, dataDirName(version.dataDir!), `part.${part.n}`);
    try {
      if ((await fs.stat(filePath)).size !== framedBytes) return false;
      if (deep && payloadBytes > 0) {
        for await (const _block of readVerifiedShard(createReadStream(filePath, { highWaterMark: 1024 * 1024 }), {
          shardSizeBytes: shardBytes,
          payloadSizeBytes: payloadBytes,
          algorithm,
        })) {
          // verified as it streams
        }
      }
    } catch {
      return false;
    }
  }
  return true;
}
