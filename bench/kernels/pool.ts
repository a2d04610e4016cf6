// Worker hand-off kernels: 1 MiB to a worker by structured-clone copy vs transferList (piscina, with
// bench/pool-bench.worker.mjs), and sealing 1 MiB blocks through workers/pool.ts with 0 (inline), 1 and 2
// threads, one block in flight and four. Process CPU counts every thread, so cpu/wall can exceed 1 here.
// bench/pool.bench.ts has the fuller pool study (block sizes, the MD5 question).

import { randomBytes } from 'node:crypto';
import { Piscina } from 'piscina';
import { ownedView } from '../../workers/crypto-task.ts';
import { randomDareNonce } from '../../workers/dare.ts';
import { createBlockCipherPool, type BlockCipherPool } from '../../workers/pool.ts';
import { mebibyte, type KernelSpec } from './harness.ts';

export const poolThreadCounts = [0, 1, 2] as const;
const inFlightCounts = [1, 4] as const;

export interface PoolKernels {
  readonly specs: KernelSpec[];
  close(): Promise<void>;
}

export async function poolKernels(): Promise<PoolKernels> {
  const group = 'pool';
  const benchPool = new Piscina({
    filename: new URL('../pool-bench.worker.mjs', import.meta.url).href,
    minThreads: 2,
    maxThreads: 2,
    idleTimeout: Number.POSITIVE_INFINITY,
  });
  const oneMiB = Buffer.allocUnsafeSlow(mebibyte).fill(1);
  const pools = new Map<number, BlockCipherPool>(poolThreadCounts.map((threads) => [threads, createBlockCipherPool(threads)]));
  const key = randomBytes(32);
  const nonce = randomDareNonce();
  const plaintext = randomBytes(mebibyte);
  // Start every worker (and its tsx module load) before measuring, so no task pays for it.
  for (const pool of pools.values()) {
    await Promise.all(Array.from({ length: Math.max(1, pool.threads) * 2 }, () => pool.seal(key, nonce, 0, Buffer.from(plaintext), true)));
  }
  await Promise.all([0, 1, 2, 3].map(() => benchPool.run({ data: new Uint8Array(1) }, { name: 'touch' })));

  const specs: KernelSpec[] = [
    { group, name: 'hand-off 1 MiB: copy (structured clone)', bytes: mebibyte, fn: () => benchPool.run({ data: oneMiB }, { name: 'touch' }) },
    {
      group, name: 'hand-off 1 MiB: transfer (fresh buffer + memcpy)', bytes: mebibyte, fn: () => {
        const data = ownedView(oneMiB.subarray(0, mebibyte - 1)); // a copy into a fresh ArrayBuffer, as encrypt-stream's blocks are
        return benchPool.run({ data }, { name: 'touch', transferList: [data.buffer] });
      },
    },
  ];
  const roundTrip: { data: Uint8Array } = { data: new Uint8Array(mebibyte) };
  specs.push({
    group, name: 'hand-off 1 MiB: transfer there and back (same buffer)', bytes: mebibyte, fn: async () => {
      roundTrip.data = (await benchPool.run({ data: roundTrip.data }, { name: 'touchBack', transferList: [roundTrip.data.buffer as ArrayBuffer] })) as Uint8Array;
    },
  });
  for (const inFlight of inFlightCounts) {
    for (const threads of poolThreadCounts) {
      const pool = pools.get(threads)!;
      specs.push({
        group,
        name: `seal 1 MiB blocks, pool threads=${threads}${threads === 0 ? ' (inline)' : ''}, ${inFlight} in flight`,
        bytes: inFlight * mebibyte,
        // seal() takes ownership of its input, so each block is a fresh copy (the same for every pool size)
        fn: () => Promise.all(Array.from({ length: inFlight }, (_, i) => pool.seal(key, nonce, i * 16, Buffer.from(plaintext), true))),
      });
    }
  }
  return {
    specs,
    close: async () => {
      for (const pool of pools.values()) await pool.close();
      await benchPool.close();
    },
  };
}
