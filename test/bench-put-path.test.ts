// The in-process PUT-path bench (bench/put-path/run.ts) runs every case, reads each one's object back through
// its SSE record, and reports per-PUT numbers for every round. Timing is not checked: that is the bench's job.

import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import os from 'node:os';
import test from 'node:test';
import { putPathCases, runPutPath } from '../bench/put-path/run.ts';

test('put-path bench: every case in every round, paired against plain, the drive removed', async () => {
  const before = new Set(readdirSync(os.tmpdir()));
  const result = await runPutPath({ rounds: 2, ops: 24, concurrency: 4, sizeBytes: 5000, distinctKeys: 10 });
  assert.deepEqual(result.summary.map((row) => row.case), [...putPathCases]);
  assert.equal(result.rounds.length, 2 * putPathCases.length);
  assert.equal(result.putsPerCase, 3 * 24); // a warm-up round and two measured ones
  for (const row of result.rounds) {
    for (const value of [row.wallMicros, row.processMicros, row.systemMicros, row.gcMicros]) assert.ok(Number.isFinite(value) && value >= 0, `${row.case} ${value}`);
    if (process.platform === 'linux') assert.ok(row.mainMicros > 0);
  }
  assert.equal(result.summary[0]!.pairedMainMicros, undefined);
  for (const row of result.summary.slice(1)) assert.ok(Number.isFinite(row.pairedProcessMicros));
  assert.ok(!existsSync(result.options.drive));
  assert.deepEqual(readdirSync(os.tmpdir()).filter((name) => !before.has(name) && name.startsWith('coffer-put-path-')), []);
});

test('put-path bench: plain is required as the baseline', async () => {
  await assert.rejects(runPutPath({ cases: ['sse-s3'], rounds: 1, ops: 1, concurrency: 1, sizeBytes: 1 }), /plain case is the baseline/);
});
