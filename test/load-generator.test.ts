// The bench load generator against a real server: counts add up, GETs verify content, SSE modes work, and
// a server that dies mid-run gives a report with errors and a non-zero exit. Sequential 16 MiB SSE-S3 GETs
// are also the regression test for uWS resuming a promise from onWritable without a microtask checkpoint
// (the download stalled once the worker pool went quiet).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { accessKey, removeDir, repoRoot, secretKey, startServer } from './helpers/server.ts';
import { hostStealSeconds } from '../bench/load/phase.ts';
import { stealNote } from '../bench/load/report.ts';

const run = promisify(execFile);

interface PhaseJson {
  readonly phase: string;
  readonly attempted: number;
  readonly succeeded: number;
  readonly errors: number;
}

async function load(endpoint: string, ...args: string[]): Promise<{ code: number; json: { errors: number; phases: PhaseJson[] } | undefined; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'bench', 'load.ts'), '--endpoint', endpoint, '--json', ...args], {
      cwd: repoRoot,
      env: { ...process.env, MINIO_ROOT_USER: accessKey, MINIO_ROOT_PASSWORD: secretKey },
      timeout: 120_000,
      maxBuffer: 16 * 1024 * 1024,
    });
    return { code: 0, json: JSON.parse(stdout), stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    let json;
    try {
      json = JSON.parse(failed.stdout ?? '');
    } catch {
      json = undefined;
    }
    return { code: typeof failed.code === 'number' ? failed.code : -1, json, stderr: failed.stderr ?? '' };
  }
}

describe('bench/load.ts against coffer', () => {
  it('writes, reads back and deletes every object, plain and encrypted', async () => {
    const server = await startServer({ env: { COFFER_SSE_C_ALLOW_HTTP: 'on' } });
    try {
      for (const [sse, size, objects] of [['none', '64KiB', '40'], ['s3', '16MiB', '4'], ['c', '1MiB', '8'], ['kms', '100KiB', '8']] as const) {
        const result = await load(server.endpoint, '--sse', sse, '--size', size, '--objects', objects, '--concurrency', '2', '--duration', '60s');
        assert.equal(result.code, 0, `${sse}: ${result.stderr}`);
        const phases = Object.fromEntries(result.json!.phases.map((p) => [p.phase, p]));
        assert.equal(result.json!.errors, 0, sse);
        assert.equal(phases.put!.succeeded, Number(objects), `${sse} put`);
        assert.equal(phases.get!.succeeded, Number(objects), `${sse} get (content verified by MD5)`);
        assert.equal(phases.delete!.succeeded, Number(objects), `${sse} cleanup`);
      }
    } finally {
      await server.stop();
      await removeDir(server.dataDir);
    }
  });

  it('reports errors and exits non-zero when the server dies mid-run', async () => {
    const server = await startServer();
    try {
      const running = load(server.endpoint, '--size', '256KiB', '--objects', '3000', '--concurrency', '4', '--duration', '20s');
      await new Promise((resolve) => setTimeout(resolve, 1500));
      await server.kill();
      const result = await running;
      assert.notEqual(result.code, 0);
      assert.ok(result.json === undefined || result.json.errors > 0, 'errors are counted, not hidden');
    } finally {
      await server.stop();
      await removeDir(server.dataDir);
    }
  });
});

describe('host steal time', () => {
  it('reads /proc/stat steal as seconds that never run backwards, and notes it only when it is noticeable', async () => {
    const first = hostStealSeconds();
    if (process.platform !== 'linux') {
      assert.equal(first, undefined);
      return;
    }
    const ticks = Number(readFileSync('/proc/stat', 'latin1').split('\n')[0]!.trim().split(/\s+/)[8]);
    assert.ok(first !== undefined && first >= 0);
    assert.ok(Math.abs(first - ticks / 100) <= 1, `${first} s against ${ticks} ticks`);
    assert.ok(hostStealSeconds()! >= first);
    assert.deepEqual(stealNote({ stealSeconds: 0.5, wallSeconds: 10 }), ['host steal 0.50 s']);
    assert.deepEqual(stealNote({ stealSeconds: 0.05, wallSeconds: 10 }), []);
    assert.deepEqual(stealNote({ wallSeconds: 10 }), []);
  });
});
