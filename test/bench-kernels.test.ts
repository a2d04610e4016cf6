// The kernel benchmarks' rows (bench/kernels) run: each group builds its specs (whose `must` checks compare every
// implementation against node:crypto or the reference library) and every row's function runs a few times without
// throwing. Timing is not checked here — that is what `coffer bench kernels` is for.

import assert from 'node:assert/strict';
import test from 'node:test';
import { cryptoKernels } from '../bench/kernels/crypto.ts';
import { hashKernels } from '../bench/kernels/hashes.ts';
import type { KernelSpec } from '../bench/kernels/harness.ts';
import { keyKernels } from '../bench/kernels/keys.ts';
import { requestKernels } from '../bench/kernels/request.ts';

async function runEach(specs: readonly KernelSpec[], times = 3): Promise<void> {
  assert.ok(specs.length > 0);
  for (const spec of specs) {
    assert.equal(typeof spec.name, 'string');
    for (let i = 0; i < times; i++) await spec.fn();
  }
}

test('aead rows run', async () => {
  const specs = cryptoKernels();
  assert.ok(specs.every((spec) => spec.group === 'aead'));
  await runEach(specs, 1);
});

test('hash rows run, the one-shot SHA-256/HMAC ones included', async () => {
  const specs = await hashKernels();
  assert.ok(specs.some((spec) => spec.name.includes('one-shot')));
  await runEach(specs, 1);
});

test('keys rows run, a whole SSE-S3 envelope included', async () => {
  const specs = keyKernels();
  assert.ok(specs.some((spec) => spec.name.startsWith('createEnvelope')));
  await runEach(specs);
});

test('sigv4 and meta rows run', async () => {
  await runEach(await requestKernels());
});
