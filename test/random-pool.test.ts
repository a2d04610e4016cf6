// The pooled CSPRNG (workers/random-pool.ts): right sizes, memory of its own per result, no bytes handed out
// twice across pool refills, and output that looks random.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { secureRandomBytes, secureRandomFill } from '../workers/random-pool.ts';

test('every result has the asked size and an ArrayBuffer of its own', () => {
  for (const sizeBytes of [0, 1, 8, 12, 32, 255, 256, 257, 4096, 10_000]) {
    const bytes = secureRandomBytes(sizeBytes);
    assert.ok(Buffer.isBuffer(bytes));
    assert.equal(bytes.length, sizeBytes, `${sizeBytes} bytes`);
    assert.equal(bytes.byteOffset, 0, 'not a slice of a shared slab');
    assert.equal(bytes.buffer.byteLength, sizeBytes, 'not a slice of a shared slab');
  }
  // Results are independent: zeroing one (as key holders do) changes no other.
  const first = secureRandomBytes(32);
  const second = secureRandomBytes(32);
  const copy = Buffer.from(second);
  first.fill(0);
  assert.ok(second.equals(copy));
});

test('no 16-byte value repeats over many pool refills', () => {
  const seen = new Set<string>();
  for (let index = 0; index < 20_000; index++) {
    // mixed sizes, so results straddle the pool's refill points
    const bytes = secureRandomBytes(index % 3 === 0 ? 16 : index % 3 === 1 ? 32 : 12);
    const hex = bytes.subarray(0, 12).toString('hex');
    assert.ok(!seen.has(hex), `value ${index} repeats an earlier one`);
    seen.add(hex);
  }
});

test('the bits are balanced and every byte value occurs', () => {
  const counts = new Array<number>(256).fill(0);
  let ones = 0;
  const totalBytes = 32 * 8192;
  for (let index = 0; index < 8192; index++) {
    for (const byte of secureRandomBytes(32)) {
      counts[byte]! += 1;
      for (let bit = byte; bit !== 0; bit &= bit - 1) ones += 1;
    }
  }
  const share = ones / (totalBytes * 8);
  assert.ok(Math.abs(share - 0.5) < 0.005, `share of one bits ${share}`);
  // 1024 expected per value; a fair source stays far inside ±25%
  assert.ok(counts.every((count) => count > 768 && count < 1280), `byte value counts ${Math.min(...counts)}..${Math.max(...counts)}`);
});

test('secureRandomFill writes exactly its target (a view into a larger buffer too) and never repeats the pool\'s bytes', () => {
  const seen = new Set<string>();
  for (let index = 0; index < 5_000; index++) {
    const sizeBytes = index % 4 === 0 ? 12 : index % 4 === 1 ? 16 : index % 4 === 2 ? 32 : 300; // 300: past the pool
    const outer = Buffer.alloc(sizeBytes + 8, 0xee);
    const target = outer.subarray(4, 4 + sizeBytes);
    assert.equal(secureRandomFill(target), target);
    assert.ok(outer.subarray(0, 4).equals(Buffer.alloc(4, 0xee)) && outer.subarray(4 + sizeBytes).equals(Buffer.alloc(4, 0xee)), 'bytes outside the target untouched');
    const hex = target.subarray(0, 12).toString('hex');
    assert.ok(!seen.has(hex), `fill ${index} repeats an earlier value`);
    seen.add(hex);
  }
  // Fills and whole results come from the same pool without overlap.
  const a = secureRandomFill(Buffer.alloc(32));
  const b = secureRandomBytes(32);
  assert.ok(!a.equals(b));
});
