// Multi-drive layout building blocks: ellipsis expansion, set sizing and parity, shard distribution and
// sizes, quorum and metadata agreement (engine/erasure/*, docs/jbod.md). Expected values come from
// /work/shared/reference/erasure-jbod.md §1.5, §3.2–3.7, §6 and MinIO's documented examples.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { crc32 as zlibCrc32 } from 'node:zlib';
import { EllipsisError, expandDriveArgs, expandDrivePools } from '../engine/erasure/ellipsis.ts';
import { SetPlanError, candidateSetSizes, defaultParityShards, planSets } from '../engine/erasure/sets.ts';
import {
  drivesInShardOrder,
  erasureBlockCount,
  inlineShardLimitBytes,
  setIndexForObject,
  shardDistribution,
  shardFileSizeBytes,
  shardSizeBytes,
  shouldInline,
  sipHash24,
  uuidBytes,
} from '../engine/erasure/distribution.ts';
import {
  QuorumError,
  agreeOnVersion,
  canonicalJson,
  quorumFromVersions,
  readQuorum,
  reduceErrs,
  reduceQuorumErrs,
  versionSignature,
  writeQuorum,
  type VersionAgreement,
} from '../engine/erasure/quorum.ts';
import type { ObjectVersion } from '../engine/meta.ts';
import { StorageError } from '../engine/types.ts';

const MiB = 1024 * 1024;
const KiB = 1024;

/** deterministic PRNG so failures reproduce (mulberry32) */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) >>> 0;
    let t = seed;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomKeys(count: number, seed: number): string[] {
  const random = prng(seed);
  const keys: string[] = [];
  for (let i = 0; i < count; i++) {
    const segments = 1 + Math.floor(random() * 3);
    const parts: string[] = [];
    for (let s = 0; s < segments; s++) parts.push(Math.floor(random() * 2 ** 32).toString(36));
    keys.push(`${parts.join('/')}.obj`);
  }
  return keys;
}

/** Pearson chi-square of observed counts against a uniform expectation. */
function chiSquare(counts: readonly number[]): number {
  const total = counts.reduce((a, b) => a + b, 0);
  const expected = total / counts.length;
  return counts.reduce((sum, count) => sum + (count - expected) ** 2 / expected, 0);
}

// ============================================================================================ ellipsis

test('ellipsis: MinIO documentation examples', () => {
  assert.deepEqual(expandDriveArgs(['/mnt/disk{1...4}']), ['/mnt/disk1', '/mnt/disk2', '/mnt/disk3', '/mnt/disk4']);

  const controllers = expandDriveArgs(['/mnt/controller{1...4}/data{1...16}']);
  assert.equal(controllers.length, 64);
  // The first ellipsis varies fastest, so consecutive drives (and so sets) span controllers/hosts.
  assert.deepEqual(controllers.slice(0, 5), [
    '/mnt/controller1/data1',
    '/mnt/controller2/data1',
    '/mnt/controller3/data1',
    '/mnt/controller4/data1',
    '/mnt/controller1/data2',
  ]);
  assert.equal(controllers[63], '/mnt/controller4/data16');
  assert.equal(new Set(controllers).size, 64);

  const hosts = expandDriveArgs(['http://host{1...4}/export{1...16}']);
  assert.equal(hosts.length, 64);
  assert.deepEqual(hosts.slice(0, 2), ['http://host1/export1', 'http://host2/export1']);

  // Two ellipsis arguments are two pools.
  const pools = expandDrivePools(['/mnt/a{1...4}', '/mnt/b{1...8}/d{1...2}']);
  assert.equal(pools.length, 2);
  assert.deepEqual(pools[0]!.rangeLengths, [4]);
  assert.deepEqual(pools[1]!.rangeLengths, [8, 2]);
  assert.equal(pools[1]!.drives.length, 16);
  assert.deepEqual(expandDriveArgs(['/mnt/a{1...4}', '/mnt/b{1...2}']).slice(3), ['/mnt/a4', '/mnt/b1', '/mnt/b2']);
});

test('ellipsis: zero padding, hexadecimal, several patterns in one argument', () => {
  assert.deepEqual(expandDriveArgs(['/d{01...16}']).slice(0, 3), ['/d01', '/d02', '/d03']);
  assert.equal(expandDriveArgs(['/d{01...16}'])[15], '/d16');
  assert.deepEqual(expandDriveArgs(['/d{001...100}']).slice(98), ['/d099', '/d100']);
  assert.deepEqual(expandDriveArgs(['/d{08...10}']), ['/d08', '/d09', '/d10']);
  assert.deepEqual(expandDriveArgs(['/d{8...10}']), ['/d8', '/d9', '/d10']);
  assert.deepEqual(expandDriveArgs(['/d{1...10}']).slice(8), ['/d9', '/d10']);
  // Hex (lower case) and the letters a–f that are hex digits.
  assert.deepEqual(expandDriveArgs(['/mnt/disk{1...4}/data{a...b}']), [
    '/mnt/disk1/dataa', '/mnt/disk2/dataa', '/mnt/disk3/dataa', '/mnt/disk4/dataa',
    '/mnt/disk1/datab', '/mnt/disk2/datab', '/mnt/disk3/datab', '/mnt/disk4/datab',
  ]);
  assert.deepEqual(expandDriveArgs(['/d{a...f}']), ['/da', '/db', '/dc', '/dd', '/de', '/df']);
  assert.deepEqual(expandDriveArgs(['/d{0...f}']).length, 16);
  assert.deepEqual(expandDriveArgs(['/d{0a...0c}']), ['/d0a', '/d0b', '/d0c']);
  assert.deepEqual(expandDriveArgs(['/d{e...11}']), ['/de', '/df', '/d10', '/d11']);
  assert.deepEqual(expandDriveArgs(['/d{3...3}']), ['/d3']);
  // Three patterns, and a pattern in the middle of a segment.
  const three = expandDriveArgs(['http://rack{1...2}-node{1...2}.lan/disk{1...2}/x']);
  assert.equal(three.length, 8);
  assert.deepEqual(three.slice(0, 3), ['http://rack1-node1.lan/disk1/x', 'http://rack2-node1.lan/disk1/x', 'http://rack1-node2.lan/disk1/x']);
  // Plain lists: one pool, no ranges; one argument is single-drive mode.
  assert.deepEqual(expandDrivePools(['/a', '/b', '/c', '/d']), [{ drives: ['/a', '/b', '/c', '/d'], rangeLengths: [] }]);
  assert.deepEqual(expandDriveArgs(['/data']), ['/data']);
});

test('ellipsis: malformed patterns and duplicate drives are refused', () => {
  const refused: readonly (readonly string[])[] = [
    [],
    [''],
    ['/d{1..4}'], // two dots: the shell's syntax
    ['/d{1....4}'],
    ['/d{1...4'],
    ['/d1...4}'],
    ['/d{1...4}}'],
    ['/d{{1...4}}'],
    ['/d...'],
    ['/d{4...1}'],
    ['/d{A...F}'], // upper case is not MinIO's syntax
    ['/d{x...z}'],
    ['/d{...4}'],
    ['/d{1...}'],
    ['/d{}'],
    ['/d{1...2...3}'],
    ['/d{-1...3}'],
    ['/d{1...100000}'], // over maxEllipsisRangeLength
    ['/a{1...4096}/b{1...4096}'], // over maxDriveCount
    ['/mnt/a{1...4}', '/mnt/b'], // mixed plain and ellipsis
    ['/d{1...4}', '/d{3...6}'], // d3, d4 twice
    ['/d{1...2}/x{1...2}', '/d1/x{1...2}'],
    ['/a', '/a'],
    ['/a', '/a/'],
    ['/a//b', '/a/b'],
    ['/a/./b', '/a/b'],
    ['http://h1/d', 'http://h1/d/'],
  ];
  for (const args of refused) {
    assert.throws(() => expandDriveArgs(args), EllipsisError, `expected ${JSON.stringify(args)} to be refused`);
  }
  assert.throws(() => expandDriveArgs(['/d{1..4}']), /three dots/);
  assert.throws(() => expandDriveArgs(['/d{1...4}', '/d{4...5}']), /more than once/);
  assert.throws(() => expandDriveArgs(['/a', '/a/']), /same drive/);
  // Distinct drives that merely look alike are fine.
  assert.equal(expandDriveArgs(['/d{1...2}', '/d{1...2}0']).length, 4);
});

// ================================================================================================ sets

test('sets: plans for 1..32 drives', () => {
  // [drives, setCount, setSize, dataShards, parityShards]; undefined = no valid layout.
  // Rules (reference §3.2, §3.4): largest set size 2..16 dividing the count; parity 1 → 0, 2–3 → 1,
  // 4–5 → 2, 6–7 → 3, 8+ → 4.
  const table: readonly (readonly [number, number, number, number, number] | readonly [number])[] = [
    [1, 1, 1, 1, 0],
    [2, 1, 2, 1, 1],
    [3, 1, 3, 2, 1],
    [4, 1, 4, 2, 2],
    [5, 1, 5, 3, 2],
    [6, 1, 6, 3, 3],
    [7, 1, 7, 4, 3],
    [8, 1, 8, 4, 4],
    [9, 1, 9, 5, 4],
    [10, 1, 10, 6, 4],
    [11, 1, 11, 7, 4],
    [12, 1, 12, 8, 4],
    [13, 1, 13, 9, 4],
    [14, 1, 14, 10, 4],
    [15, 1, 15, 11, 4],
    [16, 1, 16, 12, 4],
    [17],
    [18, 2, 9, 5, 4],
    [19],
    [20, 2, 10, 6, 4],
    [21, 3, 7, 4, 3],
    [22, 2, 11, 7, 4],
    [23],
    [24, 2, 12, 8, 4],
    [25, 5, 5, 3, 2],
    [26, 2, 13, 9, 4],
    [27, 3, 9, 5, 4],
    [28, 2, 14, 10, 4],
    [29],
    [30, 2, 15, 11, 4],
    [31],
    [32, 2, 16, 12, 4],
  ];
  assert.equal(table.length, 32);
  for (const row of table) {
    const drives = row[0];
    if (row.length === 1) {
      assert.throws(() => planSets(drives, {}), SetPlanError, `${drives} drives`);
      continue;
    }
    const [, setCount, setSize, dataShards, parityShards] = row;
    const plan = planSets(drives, {});
    assert.deepEqual(
      { setCount: plan.setCount, setSize: plan.setSize, dataShards: plan.dataShards, parityShards: plan.parityShards },
      { setCount, setSize, dataShards, parityShards },
      `${drives} drives`,
    );
    assert.equal(plan.singleDrive, drives === 1);
    assert.equal(plan.reducedRedundancyParityShards, drives === 1 ? 0 : 1);
    assert.deepEqual(plan.warnings, []);
  }
  assert.deepEqual([1, 2, 3, 4, 5, 6, 7, 8, 16].map(defaultParityShards), [0, 1, 1, 2, 2, 3, 3, 4, 4]);
});

test('sets: reference examples, including the symmetry rule', () => {
  const plan = (args: string[]) => {
    const [pool] = expandDrivePools(args);
    const result = planSets(pool!.drives.length, {}, { rangeLengths: pool!.rangeLengths });
    return [result.setCount, result.setSize];
  };
  assert.deepEqual(plan(['/data{1...4}']), [1, 4]);
  assert.deepEqual(plan(['/d{1...12}']), [1, 12]);
  assert.deepEqual(plan(['/d{1...18}']), [2, 9]);
  assert.deepEqual(plan(['/d{1...24}']), [2, 12]);
  assert.deepEqual(plan(['/dir{1...64}']), [4, 16]);
  assert.deepEqual(plan(['/mnt/controller{1...4}/data{1...16}']), [4, 16]);
  assert.deepEqual(plan(['http://host{1...32}/disk{1...32}']), [64, 16]);
  // 38 hosts × 12 drives: 456 drives are divisible by 2, 3, 4, 6, 8 and 12, but only 2 divides 38 (#16268).
  assert.deepEqual(plan(['http://host{1...38}/disk{1...12}']), [228, 2]);
  assert.deepEqual(candidateSetSizes(456), [2, 3, 4, 6, 8, 12]);
  assert.deepEqual(candidateSetSizes(456, [38, 12]), [2]);
  // 3 hosts × 8 drives: 12 = 3 × 4 is symmetric with the host range (each host gives 4 drives per set).
  assert.deepEqual(plan(['http://host{1...3}/disk{1...8}']), [2, 12]);
  // A plain list skips the symmetry check.
  assert.equal(planSets(456, {}).setSize, 12);
});

test('sets: storage class and set size overrides', () => {
  const standard = (value: string) => ({ MINIO_STORAGE_CLASS_STANDARD: value });
  assert.deepEqual(
    (({ setSize, dataShards, parityShards }) => ({ setSize, dataShards, parityShards }))(planSets(16, standard('EC:2'))),
    { setSize: 16, dataShards: 14, parityShards: 2 },
  );
  assert.equal(planSets(16, standard('EC:8')).dataShards, 8);
  assert.equal(planSets(4, standard('EC:1')).parityShards, 1);
  assert.equal(planSets(3, standard('EC:1')).parityShards, 1);
  assert.equal(planSets(1, standard('EC:0')).parityShards, 0);
  assert.equal(planSets(16, standard('')).parityShards, 4, 'empty means unset');
  const zero = planSets(4, standard('EC:0'));
  assert.equal(zero.parityShards, 0);
  assert.equal(zero.reducedRedundancyParityShards, 0);
  assert.equal(zero.warnings.length, 1);
  for (const [drives, value] of [
    [16, 'EC:9'], // more than half the set
    [4, 'EC:3'],
    [3, 'EC:2'],
    [2, 'EC:2'],
    [1, 'EC:1'],
    [16, 'EC:x'],
    [16, 'ec:2'],
    [16, '2'],
    [16, 'EC:'],
    [16, 'EC:2 '],
    [16, 'EC:-1'],
  ] as const) {
    assert.throws(() => planSets(drives, standard(value)), SetPlanError, `${drives} drives, ${value}`);
  }
  // RRS: at most half the set, and STANDARD must be at least RRS.
  assert.equal(planSets(8, { MINIO_STORAGE_CLASS_RRS: 'EC:2' }).reducedRedundancyParityShards, 2);
  assert.throws(() => planSets(8, { MINIO_STORAGE_CLASS_STANDARD: 'EC:2', MINIO_STORAGE_CLASS_RRS: 'EC:3' }), SetPlanError);
  assert.throws(() => planSets(8, { MINIO_STORAGE_CLASS_RRS: 'EC:5' }), SetPlanError);
  // Set size override: must divide the drive count within 2..16 and keep the symmetry.
  const override = planSets(32, { MINIO_ERASURE_SET_DRIVE_COUNT: '8' });
  assert.deepEqual([override.setCount, override.setSize, override.parityShards], [4, 8, 4]);
  assert.throws(() => planSets(32, { MINIO_ERASURE_SET_DRIVE_COUNT: '5' }), SetPlanError);
  assert.throws(() => planSets(32, { MINIO_ERASURE_SET_DRIVE_COUNT: '32' }), SetPlanError);
  assert.throws(() => planSets(32, { MINIO_ERASURE_SET_DRIVE_COUNT: 'eight' }), SetPlanError);
  assert.throws(() => planSets(456, { MINIO_ERASURE_SET_DRIVE_COUNT: '12' }, { rangeLengths: [38, 12] }), SetPlanError);
  assert.throws(() => planSets(0, {}), SetPlanError);
  assert.throws(() => planSets(2.5, {}), SetPlanError);
});

// ======================================================================================== distribution

test('distribution: shard order is a rotation by CRC32-IEEE("bucket/key") mod N', () => {
  // CRC32("123456789") = 0xcbf43926; mod 16 = 6, so the set's first drive holds shard 8.
  assert.deepEqual(shardDistribution('123456789', 16), [8, 9, 10, 11, 12, 13, 14, 15, 16, 1, 2, 3, 4, 5, 6, 7]);
  assert.deepEqual(shardDistribution('anything', 1), [1]);
  for (const key of randomKeys(300, 1)) {
    for (let setSize = 1; setSize <= 16; setSize++) {
      const distribution = shardDistribution(key, setSize);
      // A permutation of 1..N ...
      assert.deepEqual([...distribution].sort((a, b) => a - b), Array.from({ length: setSize }, (_, i) => i + 1));
      // ... that is a rotation with the start computed independently (node:zlib's CRC32) ...
      const start = zlibCrc32(Buffer.from(key, 'utf8')) % setSize;
      distribution.forEach((shard, i) => assert.equal(shard, 1 + ((start + i + 1) % setSize)));
      // ... and deterministic.
      assert.deepEqual(shardDistribution(key, setSize), distribution);
    }
  }
  // Non-ASCII keys hash their UTF-8 bytes.
  const key = 'bücket/ключ/😀';
  assert.equal(shardDistribution(key, 7)[0], 1 + ((zlibCrc32(Buffer.from(key, 'utf8')) % 7) + 1) % 7);
});

test('distribution: drives reorder into shard order', () => {
  const distribution = shardDistribution('photos/cat.jpg', 6);
  const drives = ['d0', 'd1', 'd2', 'd3', 'd4', 'd5'];
  const ordered = drivesInShardOrder(drives, distribution);
  distribution.forEach((shard, i) => assert.equal(ordered[shard - 1], drives[i]));
  assert.throws(() => drivesInShardOrder(drives, [1, 1, 2, 3, 4, 5]), RangeError);
  assert.throws(() => drivesInShardOrder(drives, [1, 2, 3]), RangeError);
});

test('distribution: 10,000 keys spread evenly over shard positions and sets', () => {
  const keys = randomKeys(10_000, 42);
  for (const setSize of [4, 6, 12, 16]) {
    // Which shard the set's first drive holds: uniform over 1..N if the rotation start is.
    const counts = new Array<number>(setSize).fill(0);
    for (const key of keys) counts[shardDistribution(`bucket/${key}`, setSize)[0]! - 1]! += 1;
    // χ² with N−1 ≤ 15 degrees of freedom: mean ≤ 15, p = 1e-6 at about 55. 80 is generous.
    assert.ok(chiSquare(counts) < 80, `shard order, N=${setSize}: χ² ${chiSquare(counts).toFixed(1)} for ${counts}`);
    // Parity (the last P shards) lands on every drive position about equally often.
    const parityShards = Math.floor(setSize / 4);
    const parityPerDrive = new Array<number>(setSize).fill(0);
    for (const key of keys) {
      shardDistribution(`bucket/${key}`, setSize).forEach((shard, drive) => {
        if (shard > setSize - parityShards) parityPerDrive[drive]! += 1;
      });
    }
    const expected = (keys.length * parityShards) / setSize;
    for (const count of parityPerDrive) assert.ok(Math.abs(count - expected) < expected * 0.2, `parity per drive ${parityPerDrive}`);
  }
  const deploymentId = '0ba3f4f2-6f5e-4b0a-9c52-2f9b2f3c8e11';
  for (const setCount of [2, 3, 7, 16, 64]) {
    const counts = new Array<number>(setCount).fill(0);
    for (const key of keys) counts[setIndexForObject(key, setCount, deploymentId)]! += 1;
    // df = setCount − 1 (≤ 63): p = 1e-6 at about 125 for 63 df.
    const bound = setCount === 64 ? 140 : 80;
    assert.ok(chiSquare(counts) < bound, `sets=${setCount}: χ² ${chiSquare(counts).toFixed(1)}`);
  }
});

test('distribution: SipHash-2-4 matches the reference vectors and OpenSSL; set choice is keyed', () => {
  // The SipHash paper's test vectors: key 00..0f, message 00..(n−1), output as little-endian bytes.
  const paperVectors = [
    '310e0edd47db6f72', 'fd67dc93c539f874', '5a4fa9d909806c0d', '2d7efbd796666785',
    'b7877127e09427cf', '8da699cd64557618', 'cee3fe586e46c9cb', '37d1018bf50002ab',
    '6224939a79f5f593', 'b0e4a90bdf82009e', 'f3b9dd94c5bb5d7a', 'a7ad6b22462fb3f4',
    'fbe50e86bc8f1e75', '903d84c02756ea14', 'eef27a8e90ca23f7', 'e545be4961ca29a1',
  ];
  const paperKey = Buffer.from('000102030405060708090a0b0c0d0e0f', 'hex');
  const asLeHex = (value: bigint) => {
    const bytes = Buffer.alloc(8);
    bytes.writeBigUInt64LE(value);
    return bytes.toString('hex');
  };
  paperVectors.forEach((expected, length) => {
    const message = Buffer.from(Array.from({ length }, (_, i) => i));
    assert.equal(asLeHex(sipHash24(paperKey, message)), expected, `length ${length}`);
  });
  // Keyed with a deployment UUID, computed with `openssl mac -macopt hexkey:<uuid hex> -macopt size:8 SIPHASH`.
  const deploymentId = '0ba3f4f2-6f5e-4b0a-9c52-2f9b2f3c8e11';
  const openssl: readonly (readonly [string, string])[] = [
    ['', '05381ba28056fbc9'],
    ['object', '2ecf720c0e6a8c32'],
    ['a/b/c.txt', '4b3a5f08184657eb'],
    ['photos/2024/ünïcødé-ключ.jpg', 'e09cd8b5bed5dd2b'],
    ['k'.repeat(100), '6581c4d19dae2659'],
  ];
  for (const [objectKey, expected] of openssl) {
    const hash = sipHash24(uuidBytes(deploymentId), Buffer.from(objectKey, 'utf8'));
    assert.equal(asLeHex(hash), expected, objectKey);
    for (const setCount of [1, 2, 3, 7, 16, 100, 1000, 999_983]) {
      assert.equal(setIndexForObject(objectKey, setCount, deploymentId), Number(hash % BigInt(setCount)), `${objectKey} mod ${setCount}`);
    }
  }
  // Another deployment places keys differently; the bucket is not part of the set hash.
  const other = '7d0c2f0e-1111-4222-8333-944455556666';
  const keys = randomKeys(200, 7);
  const moved = keys.filter((key) => setIndexForObject(key, 16, deploymentId) !== setIndexForObject(key, 16, other)).length;
  assert.ok(moved > 150, `only ${moved} of 200 keys moved`);
  assert.throws(() => setIndexForObject('k', 4, 'not-a-uuid'), RangeError);
});

test('distribution: shard sizes match the reference and a brute-force split', () => {
  // S for B = 1 MiB (reference §3.5).
  const expectedShardSizes: Record<number, number> = { 1: 1048576, 2: 524288, 3: 349526, 4: 262144, 6: 174763, 8: 131072, 10: 104858, 12: 87382, 14: 74899 };
  for (const [dataShards, expected] of Object.entries(expectedShardSizes)) assert.equal(shardSizeBytes(MiB, Number(dataShards)), expected);
  assert.equal(shardFileSizeBytes(10 * MiB, MiB, 8), 10 * 131072);
  assert.equal(shardFileSizeBytes(0, MiB, 4), 0);
  assert.equal(erasureBlockCount(0, MiB), 0);
  assert.equal(erasureBlockCount(MiB + 1, MiB), 2);

  // Brute force: cut the object into blocks, each block into k shards of ceil(len/k), sum one drive's shards.
  const bruteForce = (objectSize: number, blockSize: number, dataShards: number) => {
    let total = 0;
    for (let offset = 0; offset < objectSize; offset += blockSize) total += Math.ceil(Math.min(blockSize, objectSize - offset) / dataShards);
    return total;
  };
  const random = prng(3);
  for (const blockSize of [1, 7, 64, 1000, 1024]) {
    for (let dataShards = 1; dataShards <= 16; dataShards++) {
      const sizes = [0, 1, blockSize - 1, blockSize, blockSize + 1, 3 * blockSize, 3 * blockSize + dataShards - 1, 50 * blockSize + 13];
      for (let i = 0; i < 10; i++) sizes.push(Math.floor(random() * 40 * blockSize));
      for (const size of sizes) {
        if (size < 0) continue;
        assert.equal(shardFileSizeBytes(size, blockSize, dataShards), bruteForce(size, blockSize, dataShards), `L=${size} B=${blockSize} k=${dataShards}`);
        assert.equal(erasureBlockCount(size, blockSize), Math.ceil(size / blockSize));
      }
    }
  }
  // Big objects stay exact (5 TiB, the S3 maximum).
  assert.equal(shardFileSizeBytes(5 * 1024 ** 4, MiB, 12), 5 * 1024 * 1024 * 87382);
  assert.throws(() => shardFileSizeBytes(-1, MiB, 4), RangeError);
  assert.throws(() => shardSizeBytes(MiB, 0), RangeError);
});

test('distribution: inline threshold (reference §1.5 table)', () => {
  const inline = (objectSizeBytes: number, dataShards: number, versioned = false) =>
    shouldInline({ objectSizeBytes, blockSizeBytes: MiB, dataShards, versioned });
  // [D, largest unversioned inline size, largest versioned inline size]
  const table: readonly (readonly [number, number, number])[] = [
    [1, 128 * KiB, 16 * KiB],
    [2, 256 * KiB, 32 * KiB],
    [4, 512 * KiB, 64 * KiB],
    [8, MiB, 128 * KiB],
    // one block at 87,382 B/shard plus a tail of ≤ 43,690 B/shard: 1 MiB + 12 × 43,690
    [12, MiB + 12 * 43_690, 192 * KiB],
  ];
  for (const [dataShards, unversioned, versioned] of table) {
    assert.equal(inline(unversioned, dataShards), true, `D=${dataShards} ${unversioned}`);
    assert.equal(inline(unversioned + 1, dataShards), false, `D=${dataShards} ${unversioned + 1}`);
    assert.equal(inline(versioned, dataShards, true), true, `D=${dataShards} versioned ${versioned}`);
    assert.equal(inline(versioned + 1, dataShards, true), false, `D=${dataShards} versioned ${versioned + 1}`);
  }
  assert.equal(inline(0, 4), true);
  assert.equal(shouldInline({ objectSizeBytes: undefined, blockSizeBytes: MiB, dataShards: 4, versioned: false }), false);
  assert.equal(inlineShardLimitBytes(false), 128 * KiB);
  assert.equal(inlineShardLimitBytes(true), 16 * KiB);
  assert.equal(shouldInline({ objectSizeBytes: 64 * KiB, blockSizeBytes: MiB, dataShards: 1, versioned: false, inlineBlockSizeBytes: 32 * KiB }), false);
});

// ============================================================================================== quorum

test('quorum: read and write quorum (reference §3.7 table)', () => {
  // [N, P, D, RQ, WQ]
  const table = [
    [1, 0, 1, 1, 1],
    [2, 1, 1, 1, 2],
    [4, 2, 2, 2, 3],
    [6, 3, 3, 3, 4],
    [8, 4, 4, 4, 5],
    [12, 4, 8, 8, 8],
    [16, 4, 12, 12, 12],
  ] as const;
  for (const [setSize, parity, data, rq, wq] of table) {
    assert.equal(setSize, parity + data);
    assert.equal(readQuorum(data, parity), rq, `N=${setSize}`);
    assert.equal(writeQuorum(data, parity), wq, `N=${setSize}`);
  }
  assert.throws(() => readQuorum(1, 2), RangeError);
  assert.throws(() => writeQuorum(0, 0), RangeError);
});

function version(overrides: Partial<ObjectVersion> = {}, index = 1): ObjectVersion {
  return {
    type: 'object',
    versionId: null,
    modTimeMs: 1_700_000_000_000,
    sizeBytes: 5 * MiB,
    etag: '9e107d9d372bb6826bd81d3542a419d6',
    contentType: 'image/jpeg',
    userMetadata: { 'x-amz-meta-owner': 'alice', 'x-amz-meta-album': 'holiday' },
    systemHeaders: {},
    parts: [{ n: 1, size: 5 * MiB, etag: '9e107d9d372bb6826bd81d3542a419d6', mtime: 1_700_000_000_000 }],
    dataDir: '2f1e0c55-58a4-4c8e-b0d4-3f0b6c6f6a11',
    inline: false,
    erasure: { algorithm: 'rs', dataShards: 4, parityShards: 2, blockSizeBytes: MiB, index, distribution: [3, 4, 5, 6, 1, 2] },
    ...overrides,
  };
}

/** The copy drive `drive` of a 6-drive set holds: its own shard index and inline CRC. */
function driveCopy(base: ObjectVersion, drive: number): ObjectVersion {
  return { ...base, erasure: { ...base.erasure, index: base.erasure.distribution[drive]! }, inlineCrc32c: 1000 + drive };
}

const notFound = () => new StorageError('NoSuchKey', 'coffer.meta not found');
const corrupt = () => new StorageError('InternalError', 'corrupt object metadata: CRC mismatch');

function agreed(result: VersionAgreement<ObjectVersion> | QuorumError): VersionAgreement<ObjectVersion> {
  if (result instanceof QuorumError) assert.fail(`unexpected ${result.message}`);
  return result;
}

test('quorum: signature ignores per-drive fields and key order, sees every shared field', () => {
  const base = version();
  const signatures = new Set([0, 1, 2, 3, 4, 5].map((drive) => versionSignature(driveCopy(base, drive))));
  assert.equal(signatures.size, 1);
  const reordered = Object.fromEntries(Object.entries(base).reverse()) as unknown as ObjectVersion;
  assert.equal(versionSignature(reordered), versionSignature(base));
  assert.equal(versionSignature({ ...base, userMetadata: { 'x-amz-meta-album': 'holiday', 'x-amz-meta-owner': 'alice' } }), versionSignature(base));
  const changed: readonly Partial<ObjectVersion>[] = [
    { modTimeMs: base.modTimeMs + 1 },
    { etag: '0'.repeat(32) },
    { sizeBytes: 5 * MiB + 1 },
    { userMetadata: { 'x-amz-meta-owner': 'mallory' } },
    { dataDir: '00000000-0000-4000-8000-000000000000' },
    { erasure: { ...base.erasure, distribution: [4, 5, 6, 1, 2, 3] } },
    { erasure: { ...base.erasure, parityShards: 3, dataShards: 3 } },
    { encryption: { 'x-coffer-sse': 'SSE-S3' } },
  ];
  for (const overrides of changed) assert.notEqual(versionSignature(version(overrides)), versionSignature(base), JSON.stringify(overrides));
  assert.equal(canonicalJson({ b: 1, a: [true, null, 'x'], c: undefined }), '{"a":[true,null,"x"],"b":1}');
  assert.throws(() => canonicalJson({ a: Number.NaN }), TypeError);
  assert.throws(() => canonicalJson({ a: new Date(0) }), TypeError);
});

test('quorum: agreement with stale, corrupt and missing drives', () => {
  const current = version();
  const stale = version({ modTimeMs: current.modTimeMs - 60_000, etag: 'a'.repeat(32) });
  const copies = (base: ObjectVersion) => [0, 1, 2, 3, 4, 5].map((drive) => driveCopy(base, drive));
  const now = copies(current);
  const old = copies(stale);

  // All six agree.
  const all = agreed(agreeOnVersion(now, 4));
  assert.deepEqual(all.agreeingDrives, [0, 1, 2, 3, 4, 5]);
  assert.equal(all.version.etag, current.etag);

  // Two stale drives (missed the last overwrite), read quorum D = 4.
  const withStale = agreed(agreeOnVersion([now[0]!, old[1]!, now[2]!, now[3]!, old[4]!, now[5]!], 4));
  assert.deepEqual(withStale.agreeingDrives, [0, 2, 3, 5]);
  assert.deepEqual(withStale.outdatedDrives, [1, 4]);
  assert.equal(withStale.version.modTimeMs, current.modTimeMs);
  assert.equal(withStale.signature, versionSignature(current));

  // One corrupt, one missing, one bit-flipped copy (decodes, but its content differs): still 3 ≥ RQ 3.
  const flipped = { ...now[3]!, etag: current.etag.replace('9', '8') };
  const mixed = agreed(agreeOnVersion([now[0]!, corrupt(), now[2]!, flipped, notFound(), now[5]!], 3));
  assert.deepEqual(mixed.agreeingDrives, [0, 2, 5]);
  assert.deepEqual(mixed.outdatedDrives, [3]);
  assert.deepEqual(mixed.failedDrives, [1, 4]);

  // Same faults with RQ 4: no quorum, and no error in quorum either.
  const short = agreeOnVersion([now[0]!, corrupt(), now[2]!, flipped, notFound(), now[5]!], 4);
  assert.ok(short instanceof QuorumError);
  assert.equal(short.kind, 'read');
  assert.equal(short.agreeing, 3);
  assert.equal(short.quorum, 4);
  assert.equal(short.errorInQuorum, undefined);

  // Missing on most drives: the "not found" is in quorum, so the caller answers NoSuchKey, not SlowDown.
  const gone = agreeOnVersion([notFound(), notFound(), now[2]!, notFound(), notFound(), corrupt()], 4);
  assert.ok(gone instanceof QuorumError);
  assert.ok(gone.errorInQuorum instanceof StorageError);
  assert.equal((gone.errorInQuorum as StorageError).kind, 'NoSuchKey');

  // Half old, half new with a quorum of half: the newer version wins, whatever the drive order.
  const split = [now[0]!, now[1]!, now[2]!, old[3]!, old[4]!, old[5]!];
  assert.equal(agreed(agreeOnVersion(split, 3)).version.modTimeMs, current.modTimeMs);
  assert.equal(agreed(agreeOnVersion([...split].reverse(), 3)).version.modTimeMs, current.modTimeMs);

  // Write-side agreement reports a write quorum error.
  const write = agreeOnVersion([now[0]!, old[1]!, old[2]!, notFound()], 3, 'write');
  assert.ok(write instanceof QuorumError && write.kind === 'write');
  assert.throws(() => agreeOnVersion(now, 7), RangeError);
  assert.throws(() => agreeOnVersion(now, 0), RangeError);
});

test('quorum: errors reduce like reduceErrs', () => {
  const enoent = () => Object.assign(new Error('ENOENT: no such file'), { code: 'ENOENT' });
  const eio = () => Object.assign(new Error('EIO: i/o error'), { code: 'EIO' });
  // Success wins ties.
  assert.deepEqual(reduceErrs([undefined, null, enoent(), enoent()]), { count: 2, error: undefined });
  const reduced = reduceErrs([enoent(), undefined, enoent(), eio(), enoent()]);
  assert.equal(reduced.count, 3);
  assert.equal((reduced.error as NodeJS.ErrnoException).code, 'ENOENT');
  // Errors of the same kind group even with different messages.
  assert.equal(reduceErrs([corrupt(), new StorageError('InternalError', 'other'), undefined]).count, 2);
  assert.equal(reduceQuorumErrs([undefined, undefined, undefined, enoent()], 3, 'write'), undefined);
  assert.equal((reduceQuorumErrs([enoent(), enoent(), enoent(), undefined], 3, 'read') as NodeJS.ErrnoException).code, 'ENOENT');
  const noQuorum = reduceQuorumErrs([undefined, undefined, enoent(), eio()], 3, 'write');
  assert.ok(noQuorum instanceof QuorumError);
  assert.equal(noQuorum.agreeing, 2);
  // Ignored kinds do not count for anything.
  assert.equal(reduceQuorumErrs([undefined, undefined, eio(), eio(), eio()], 2, 'read', ['code:EIO']), undefined);
});

test('quorum: read and write quorum from the drives\' metadata', () => {
  const base = version();
  const copies = [0, 1, 2, 3, 4, 5].map((drive) => driveCopy(base, drive));
  assert.deepEqual(quorumFromVersions(copies, 2), { dataShards: 4, parityShards: 2, readQuorum: 4, writeQuorum: 4 });
  // One drive offline, another with a copy written at a different parity (e.g. an upgraded parity).
  const upgraded = { ...copies[1]!, erasure: { ...copies[1]!.erasure, dataShards: 3, parityShards: 3 } };
  assert.deepEqual(quorumFromVersions([copies[0]!, upgraded, copies[2]!, copies[3]!, notFound(), copies[5]!], 2), {
    dataShards: 4, parityShards: 2, readQuorum: 4, writeQuorum: 4,
  });
  // 0-byte objects count as parity N/2: RQ = 3, WQ = 4 on 6 drives.
  const empty = version({ sizeBytes: 0, parts: [{ n: 1, size: 0, etag: 'd41d8cd98f00b204e9800998ecf8427e', mtime: 1 }] });
  assert.deepEqual(quorumFromVersions([0, 1, 2, 3, 4, 5].map((d) => driveCopy(empty, d)), 2), {
    dataShards: 3, parityShards: 3, readQuorum: 3, writeQuorum: 4,
  });
  // Metadata missing on 4 of 6: the pre-check (N/2 = 3) reports the "not found" in quorum.
  const missing = quorumFromVersions([copies[0]!, notFound(), notFound(), copies[3]!, notFound(), notFound()], 2);
  assert.ok(missing instanceof QuorumError);
  assert.equal((missing.errorInQuorum as StorageError).kind, 'NoSuchKey');
  // Default parity 0 (one drive, or EC:0): every drive must answer.
  const single = version({ erasure: { algorithm: 'rs', dataShards: 1, parityShards: 0, blockSizeBytes: MiB, index: 1, distribution: [1] } });
  assert.deepEqual(quorumFromVersions([single], 0), { dataShards: 1, parityShards: 0, readQuorum: 1, writeQuorum: 1 });
  assert.ok(quorumFromVersions([notFound()], 0) instanceof QuorumError);
  // Parity votes split 2/2/2 with offline drives: no parity is reported by D drives.
  const p1 = { ...copies[0]!, erasure: { ...copies[0]!.erasure, dataShards: 5, parityShards: 1 } };
  const p3 = { ...copies[0]!, erasure: { ...copies[0]!.erasure, dataShards: 3, parityShards: 3 } };
  assert.ok(quorumFromVersions([copies[0]!, copies[1]!, p1, p1, p3, p3], 2) instanceof QuorumError);
});
