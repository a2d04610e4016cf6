// Where an object's shards go, and how big they are (reference/erasure-jbod.md §1.5, §3.3, §3.5;
// docs/jbod.md §3). Everything here is deterministic from the object name, so no placement table exists.
//
// * Set:   SipHash-2-4 of the object key (bucket not included) keyed with the 16 bytes of the deployment
//          UUID, mod the set count. This is MinIO's SIPMOD rule; our SipHash is checked against the
//          reference vectors and OpenSSL in the tests.
// * Order: start = CRC32-IEEE("bucket/key") mod N; drive i of the set holds shard 1 + ((start + i + 1) mod N).
//          A rotation, as MinIO's hashOrder, so parity lands on different drives for different keys.

import { crc32 } from '@node-rs/crc32';
import { uuidPattern } from '../paths.ts';

/** MinIO's erasure block size for all new data (`EcBSize`). */
export const defaultErasureBlockSizeBytes = 1024 * 1024;
/** Largest block size we accept (MinIO's legacy blockSizeV1 was 10 MiB). */
export const maxErasureBlockSizeBytes = 16 * 1024 * 1024;
/** MinIO's `storage_class inline_block` default: a shard this small goes into the metadata file. */
export const defaultInlineBlockSizeBytes = 128 * 1024;
/** Versioned buckets inline only shards up to inline_block / 8 (MinIO PR #11922). */
export const versionedInlineDivisor = 8;
/** Shards per set: the set size limit (sets.ts) and the RS limit of GF(2^8) both bound this. */
export const maxShardCount = 256;

function assertPositiveInteger(name: string, value: number, max: number): void {
  if (!Number.isSafeInteger(value) || value < 1 || value > max) throw new RangeError(`${name} ${value} is not an integer in 1..${max}`);
}

// ------------------------------------------------------------------------------------------ SipHash-2-4

// 64-bit lanes as (hi, lo) uint32 pairs: v0h v0l v1h v1l v2h v2l v3h v3l.
const sipState = new Uint32Array(8);

function sipAdd(dst: number, src: number): void {
  const lo = (sipState[dst + 1]! + sipState[src + 1]!) >>> 0;
  const carry = lo < sipState[dst + 1]! ? 1 : 0;
  sipState[dst] = (sipState[dst]! + sipState[src]! + carry) >>> 0;
  sipState[dst + 1] = lo;
}

function sipXor(dst: number, src: number): void {
  sipState[dst] = (sipState[dst]! ^ sipState[src]!) >>> 0;
  sipState[dst + 1] = (sipState[dst + 1]! ^ sipState[src + 1]!) >>> 0;
}

/** Rotate lane `at` left by 1..31 bits. */
function sipRotl(at: number, bits: number): void {
  const hi = sipState[at]!;
  const lo = sipState[at + 1]!;
  sipState[at] = ((hi << bits) | (lo >>> (32 - bits))) >>> 0;
  sipState[at + 1] = ((lo << bits) | (hi >>> (32 - bits))) >>> 0;
}

function sipRotl32(at: number): void {
  const hi = sipState[at]!;
  sipState[at] = sipState[at + 1]!;
  sipState[at + 1] = hi;
}

const V0 = 0;
const V1 = 2;
const V2 = 4;
const V3 = 6;

function sipRound(): void {
  sipAdd(V0, V1); sipRotl(V1, 13); sipXor(V1, V0); sipRotl32(V0);
  sipAdd(V2, V3); sipRotl(V3, 16); sipXor(V3, V2);
  sipAdd(V0, V3); sipRotl(V3, 21); sipXor(V3, V0);
  sipAdd(V2, V1); sipRotl(V1, 17); sipXor(V1, V2); sipRotl32(V2);
}

function sipMix(hi: number, lo: number): void {
  sipState[V3] = (sipState[V3]! ^ hi) >>> 0;
  sipState[V3 + 1] = (sipState[V3 + 1]! ^ lo) >>> 0;
  sipRound();
  sipRound();
  sipState[V0] = (sipState[V0]! ^ hi) >>> 0;
  sipState[V0 + 1] = (sipState[V0 + 1]! ^ lo) >>> 0;
}

/** SipHash-2-4 of `message` under a 16-byte key, as [hi, lo] uint32 halves of the 64-bit result. */
function sipHash24Halves(key: Uint8Array, message: Uint8Array): [number, number] {
  if (key.length !== 16) throw new RangeError(`SipHash key must be 16 bytes, got ${key.length}`);
  const keyView = new DataView(key.buffer, key.byteOffset, 16);
  const k0h = keyView.getUint32(4, true);
  const k0l = keyView.getUint32(0, true);
  const k1h = keyView.getUint32(12, true);
  const k1l = keyView.getUint32(8, true);
  sipState[0] = (k0h ^ 0x736f6d65) >>> 0; sipState[1] = (k0l ^ 0x70736575) >>> 0;
  sipState[2] = (k1h ^ 0x646f7261) >>> 0; sipState[3] = (k1l ^ 0x6e646f6d) >>> 0;
  sipState[4] = (k0h ^ 0x6c796765) >>> 0; sipState[5] = (k0l ^ 0x6e657261) >>> 0;
  sipState[6] = (k1h ^ 0x74656462) >>> 0; sipState[7] = (k1l ^ 0x79746573) >>> 0;
  const view = new DataView(message.buffer, message.byteOffset, message.byteLength);
  const fullEnd = message.length - (message.length % 8);
  for (let offset = 0; offset < fullEnd; offset += 8) sipMix(view.getUint32(offset + 4, true), view.getUint32(offset, true));
  // Last word: the remaining 0..7 bytes little-endian, length mod 256 in the top byte.
  let lastLo = 0;
  let lastHi = (message.length & 0xff) << 24;
  for (let i = fullEnd; i < message.length; i++) {
    const shift = (i - fullEnd) * 8;
    if (shift < 32) lastLo |= message[i]! << shift;
    else lastHi |= message[i]! << (shift - 32);
  }
  sipMix(lastHi >>> 0, lastLo >>> 0);
  sipState[V2 + 1] = (sipState[V2 + 1]! ^ 0xff) >>> 0;
  sipRound();
  sipRound();
  sipRound();
  sipRound();
  const hi = (sipState[0]! ^ sipState[2]! ^ sipState[4]! ^ sipState[6]!) >>> 0;
  const lo = (sipState[1]! ^ sipState[3]! ^ sipState[5]! ^ sipState[7]!) >>> 0;
  return [hi, lo];
}

/** SipHash-2-4 (Aumasson & Bernstein) of `message` under a 16-byte key. */
export function sipHash24(key: Uint8Array, message: Uint8Array): bigint {
  const [hi, lo] = sipHash24Halves(key, message);
  return (BigInt(hi) << 32n) | BigInt(lo);
}

/** The 16 bytes of a UUID in textual order (MinIO's `[16]byte` of the deployment ID). */
export function uuidBytes(uuid: string): Buffer {
  if (!uuidPattern.test(uuid)) throw new RangeError(`not a UUID: ${JSON.stringify(uuid)}`);
  return Buffer.from(uuid.replaceAll('-', ''), 'hex');
}

/**
 * Index (0-based) of the erasure set that holds `objectKey`: SipHash-2-4(key = deployment UUID bytes,
 * message = UTF-8 object key) mod setCount. The bucket is not part of the hash (as in MinIO).
 */
export function setIndexForObject(objectKey: string, setCount: number, deploymentId: string): number {
  assertPositiveInteger('set count', setCount, 1 << 20);
  const key = uuidBytes(deploymentId);
  if (setCount === 1) return 0;
  const [hi, lo] = sipHash24Halves(key, Buffer.from(objectKey, 'utf8'));
  // (hi·2^32 + lo) mod n without BigInt; every product stays below 2^53 for n < 2^20.
  const twoTo32ModN = 2 ** 32 % setCount;
  return ((hi % setCount) * twoTo32ModN + (lo % setCount)) % setCount;
}

// ------------------------------------------------------------------------------------ shard order

/** The key the shard order is hashed from: MinIO hashes `bucket/object`. */
export function distributionKey(bucket: string, objectKey: string): string {
  return `${bucket}/${objectKey}`;
}

/**
 * `distribution[i]` = the 1-based shard index stored on the set's i-th drive (format.md `erasure.distribution`,
 * MinIO `EcDist`). A rotation starting at CRC32-IEEE(key) mod setSize.
 */
export function shardDistribution(key: string, setSize: number): number[] {
  assertPositiveInteger('set size', setSize, maxShardCount);
  const start = crc32(Buffer.from(key, 'utf8')) % setSize;
  const distribution: number[] = [];
  for (let i = 0; i < setSize; i++) distribution.push(1 + ((start + i + 1) % setSize));
  return distribution;
}

/** Set drives reordered so that entry s holds shard s+1: `drives[i]` moves to `distribution[i] - 1`. */
export function drivesInShardOrder<T>(drives: readonly T[], distribution: readonly number[]): T[] {
  if (drives.length !== distribution.length) throw new RangeError(`${drives.length} drives, ${distribution.length} distribution entries`);
  const ordered = new Array<T>(drives.length);
  const seen = new Set<number>();
  distribution.forEach((shard, i) => {
    if (!Number.isInteger(shard) || shard < 1 || shard > drives.length || seen.has(shard)) {
      throw new RangeError(`distribution ${JSON.stringify(distribution)} is not a permutation of 1..${drives.length}`);
    }
    seen.add(shard);
    ordered[shard - 1] = drives[i]!;
  });
  return ordered;
}

// ------------------------------------------------------------------------------------------ sizes

/** Bytes of one shard of a full block: ceil(blockSize / dataShards). */
export function shardSizeBytes(blockSizeBytes: number, dataShards: number): number {
  assertPositiveInteger('block size', blockSizeBytes, maxErasureBlockSizeBytes);
  assertPositiveInteger('data shard count', dataShards, maxShardCount);
  return Math.ceil(blockSizeBytes / dataShards);
}

/**
 * Payload bytes of one drive's shard file (without bitrot checksums) for an object (or part) of
 * `objectSizeBytes`: full blocks give S each, the tail block ceil(tail / k) (reference §3.5).
 */
export function shardFileSizeBytes(objectSizeBytes: number, blockSizeBytes: number, dataShards: number): number {
  if (!Number.isSafeInteger(objectSizeBytes) || objectSizeBytes < 0) throw new RangeError(`invalid object size ${objectSizeBytes}`);
  const fullShardBytes = shardSizeBytes(blockSizeBytes, dataShards);
  const fullBlocks = Math.floor(objectSizeBytes / blockSizeBytes);
  const tailBytes = objectSizeBytes % blockSizeBytes;
  return fullBlocks * fullShardBytes + Math.ceil(tailBytes / dataShards);
}

/** Number of erasure blocks (and so of bitrot frames per shard file) of an object. */
export function erasureBlockCount(objectSizeBytes: number, blockSizeBytes: number): number {
  if (!Number.isSafeInteger(objectSizeBytes) || objectSizeBytes < 0) throw new RangeError(`invalid object size ${objectSizeBytes}`);
  assertPositiveInteger('block size', blockSizeBytes, maxErasureBlockSizeBytes);
  return Math.ceil(objectSizeBytes / blockSizeBytes);
}

export interface InlineInput {
  /** undefined: size not known in advance, never inline */
  readonly objectSizeBytes: number | undefined;
  readonly blockSizeBytes: number;
  readonly dataShards: number;
  readonly versioned: boolean;
  /** MinIO's `storage_class inline_block`; default 128 KiB */
  readonly inlineBlockSizeBytes?: number;
}

/** Largest per-drive shard payload that is stored inline. */
export function inlineShardLimitBytes(versioned: boolean, inlineBlockSizeBytes = defaultInlineBlockSizeBytes): number {
  assertPositiveInteger('inline block size', inlineBlockSizeBytes, maxErasureBlockSizeBytes);
  return versioned ? Math.floor(inlineBlockSizeBytes / versionedInlineDivisor) : inlineBlockSizeBytes;
}

/**
 * Inline decision (reference §1.5): the per-drive shard payload (checksums not counted) is at most
 * inline_block (unversioned) or inline_block / 8 (versioned).
 */
export function shouldInline(input: InlineInput): boolean {
  if (input.objectSizeBytes === undefined) return false;
  const shardBytes = shardFileSizeBytes(input.objectSizeBytes, input.blockSizeBytes, input.dataShards);
  return shardBytes <= inlineShardLimitBytes(input.versioned, input.inlineBlockSizeBytes);
}
