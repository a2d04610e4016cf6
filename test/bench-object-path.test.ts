// The in-process object-path bench (bench/object-path/run.ts) runs every case for PUTs and GETs, reads each one's
// object back through its SSE record, and reports per-request numbers for every round. Timing is not checked:
// that is the bench's job.

import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import os from 'node:os';
import test from 'node:test';
import { objectPathCases, runObjectPath } from '../bench/object-path/run.ts';

for (const op of ['put', 'get'] as const) test(`object-path bench, ${op}: every case in every round, paired against plain, the drive removed`, async () => {
  const before = new Set(readdirSync(os.tmpdir()));
  const result = await runObjectPath({ op, rounds: 2, ops: 24, concurrency: 4, sizeBytes: 5000, distinctKeys: 10 });
  assert.equal(result.options.op, op);
  assert.deepEqual(result.summary.map((row) => row.case), [...objectPathCases]);
  assert.equal(result.rounds.length, 2 * objectPathCases.length);
  assert.equal(result.opsPerCase, 3 * 24); // a warm-up round and two measured ones
  for (const row of result.rounds) {
    for (const value of [row.wallMicros, row.processMicros, row.systemMicros, row.gcMicros]) assert.ok(Number.isFinite(value) && value >= 0, `${row.case} ${value}`);
    if (process.platform === 'linux') assert.ok(row.mainMicros > 0);
  }
  assert.equal(result.summary[0]!.pairedMainMicros, undefined);
  for (const row of result.summary.slice(1)) assert.ok(Number.isFinite(row.pairedProcessMicros));
  assert.ok(!existsSync(result.options.drive));
  assert.deepEqual(readdirSync(os.tmpdir()).filter((name) => !before.has(name) && name.startsWith('coffer-object-path-')), []);
});

test('object-path bench: plain is required as the baseline', async () => {
  await assert.rejects(runObjectPath({ op: 'put', cases: ['sse-s3'], rounds: 1, ops: 1, concurrency: 1, sizeBytes: 1 }), /plain case is the baseline/);
});
