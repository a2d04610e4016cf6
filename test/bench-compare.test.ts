// `coffer bench compare` (bench/cli.ts) against a real server: two cases (plain and SSE-S3) with tiny
// workloads give a JSON report with both cases, every round and the ratios, and a self-contained HTML report
// with its SVG charts; when Debian's chromium is installed, the HTML is rendered headless to a PNG that must
// be a real picture. Loopback only; every count and wait is bounded.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import { rawRequest } from './helpers/raw.ts';
import { accessKey, removeDir, repoRoot, secretKey, startServer, type TestServer } from './helpers/server.ts';
import { counterChanges, kmsCallsIn, parseCounters } from '../bench/compare/server-counters.ts';
import { formatOverBudget, kmsOverBudget, parseKmsBudget } from '../bench/compare/kms-budget.ts';
import { UsageError } from '../bench/load/units.ts';

const run = promisify(execFile);
const chromiumPath = '/usr/bin/chromium';
const rounds = 2;

interface CompareJson {
  kind: string;
  cases: { name: string; sse: string; serverPid?: number }[];
  steps: { label: string; objects: number; requests: number }[];
  cleanup: 'round' | 'end';
  warmupRounds: number;
  warmups: { round: number; step: string; case: string; measured: { succeeded: number; errors: number } }[];
  runs: { round: number; step: string; case: string; order: number; measured: { succeeded: number; errors: number; timeline: { bytes: number[] }; latencyHistogram: number[]; clientCpuSeconds: number; serverCpuSeconds?: number; stealSeconds?: number; monotonicStartSeconds: number; monotonicEndSeconds: number }; serverCounters?: Record<string, number>; kmsCalls?: number }[];
  cleanups: { round: number; case: string; phase: { succeeded: number; errors: number; monotonicStartSeconds: number } }[];
  summary: { step: string; case: string; mibPerSecond: { median: number } }[];
  ratios: { step: string; case: string; baseline: string; throughput: number; pairedThroughput: { median: number; min: number; max: number }; pairedInterval: { low: number; high: number; confidence: number } }[];
  errors: number;
}

/** Pixels of a PNG (8-bit RGB/RGBA, non-interlaced, as chromium writes): the bytes of the inflated scanlines. */
async function pngFacts(file: string): Promise<{ width: number; height: number; distinctBytes: number; nonWhiteRows: number }> {
  const png = await readFile(file);
  assert.ok(png.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])), 'PNG signature');
  const width = png.readUInt32BE(16);
  const height = png.readUInt32BE(20);
  const channels = png[25] === 6 ? 4 : 3;
  const idat: Buffer[] = [];
  for (let offset = 8; offset < png.length;) {
    const length = png.readUInt32BE(offset);
    if (png.toString('latin1', offset + 4, offset + 8) === 'IDAT') idat.push(png.subarray(offset + 8, offset + 8 + length));
    offset += 12 + length;
  }
  const raw = zlib.inflateSync(Buffer.concat(idat));
  const seen = new Set<number>();
  for (let i = 0; i < raw.length; i += 97) seen.add(raw[i]!);
  // Rows are filtered (PNG filter byte + deltas); a row that is not plain white has non-zero deltas or a non-0xff start.
  const stride = 1 + width * channels;
  let nonWhiteRows = 0;
  for (let row = 0; row < height; row++) {
    const line = raw.subarray(row * stride + 1, (row + 1) * stride);
    if (line.some((byte, i) => (png[25] === 6 && i % 4 === 3 ? false : raw[row * stride] === 0 ? byte !== 0xff : byte !== 0 && byte !== 0xff))) nonWhiteRows++;
  }
  return { width, height, distinctBytes: seen.size, nonWhiteRows };
}

describe('coffer bench compare', () => {
  let server: TestServer;
  let outDir: string;
  let report: CompareJson;
  let htmlFile: string;

  before(async () => {
    server = await startServer();
    outDir = await mkdtemp(path.join(tmpdir(), 'coffer-bench-compare-'));
  });
  after(async () => {
    await server.stop();
    await removeDir(server.dataDir);
    await rm(outDir, { recursive: true, force: true });
  });

  it('runs two cases in alternation and writes JSON with both cases and the ratios', async () => {
    const { stdout, stderr } = await run(process.execPath, [
      '--import', 'tsx', path.join(repoRoot, 'bench', 'cli.ts'), 'compare',
      '--case', `plain=${server.endpoint},metrics`, '--case', `sse-s3=${server.endpoint},sse=s3,metrics`,
      '--workload', 'put:64KiB*6,get:64KiB*6/15,put:4KiB*10',
      '--rounds', String(rounds), '--concurrency', '2', '--duration', '30s',
      '--server-pid', String(server.process.pid), '--out', outDir, '--no-progress',
    ], {
      cwd: repoRoot,
      env: { ...process.env, MINIO_ROOT_USER: accessKey, MINIO_ROOT_PASSWORD: secretKey },
      timeout: 120_000,
      maxBuffer: 16 * 1024 * 1024,
    });
    assert.match(stdout, /sse-s3 \/ plain: throughput/, stderr);
    const files = await readdir(outDir);
    const jsonName = files.find((name) => name.endsWith('.json'));
    const htmlName = files.find((name) => name.endsWith('.html'));
    assert.ok(jsonName !== undefined && htmlName !== undefined, `report files in ${files.join(', ')}`);
    htmlFile = path.join(outDir, htmlName);
    report = JSON.parse(await readFile(path.join(outDir, jsonName), 'utf8')) as CompareJson;

    assert.equal(report.kind, 'coffer-bench-compare');
    assert.equal(report.errors, 0);
    assert.deepEqual(report.cases.map((c) => [c.name, c.sse]), [['plain', 'none'], ['sse-s3', 's3']]);
    assert.deepEqual(report.steps.map((s) => [s.label, s.objects, s.requests]), [['put:64KiB', 6, 6], ['get:64KiB', 6, 15], ['put:4KiB', 10, 10]]);
    assert.equal(report.runs.length, rounds * 3 * 2);
    // alternation: within each round and step, plain then sse-s3, in that order
    const sequence = [...report.runs].sort((a, b) => a.order - b.order).map((r) => `${r.round} ${r.step} ${r.case}`);
    assert.deepEqual(sequence.slice(0, 6), ['1 put:64KiB plain', '1 put:64KiB sse-s3', '1 get:64KiB plain', '1 get:64KiB sse-s3', '1 put:4KiB plain', '1 put:4KiB sse-s3']);
    for (const r of report.runs) {
      assert.equal(r.measured.errors, 0, `${r.case} ${r.step}`);
      // the get step makes 15 requests over its 6 objects (/15)
      assert.equal(r.measured.succeeded, r.step === 'put:4KiB' ? 10 : r.step === 'get:64KiB' ? 15 : 6, `${r.case} ${r.step}`);
      assert.ok(r.measured.timeline.bytes.length > 0, 'timeline recorded');
      assert.equal(r.measured.latencyHistogram.reduce((a, b) => a + b, 0), r.measured.succeeded, 'histogram counts every request');
      assert.ok(r.measured.clientCpuSeconds >= 0);
      assert.ok(typeof r.measured.serverCpuSeconds === 'number', 'server CPU measured from /proc/<pid>/stat');
      assert.ok(typeof r.measured.stealSeconds === 'number' && r.measured.stealSeconds >= 0, 'host steal measured from /proc/stat');
      // metrics: the server's own counters over the measured requests, scraped before and after
      const api = r.step.startsWith('put') ? 'PutObject' : 'GetObject';
      assert.equal(r.serverCounters?.[`coffer_s3_requests_total{api="${api}",status="200"}`], r.measured.succeeded, `${r.case} ${r.step} requests`);
      // Every SSE PUT asks the KMS for one data key; every SSE GET finds its key cached since that PUT.
      const kmsCalls = r.case === 'sse-s3' && r.step.startsWith('put') ? r.measured.succeeded : 0;
      assert.equal(r.kmsCalls, kmsCalls, `${r.case} ${r.step} KMS calls`);
      assert.equal(r.serverCounters?.['coffer_kms_calls_total{op="generate"}'] ?? 0, kmsCalls);
    }
    assert.match(stdout + stderr, /sse-s3 +\d+(\.\d+)? MiB\/s.*KMS calls \d+/);
    assert.equal(report.summary.length, 6);
    assert.equal(report.ratios.length, 3);
    for (const ratio of report.ratios) {
      assert.equal(ratio.case, 'sse-s3');
      assert.equal(ratio.baseline, 'plain');
      assert.ok(Number.isFinite(ratio.throughput) && ratio.throughput > 0, `${ratio.step} ratio ${ratio.throughput}`);
      assert.ok(Number.isFinite(ratio.pairedThroughput.median) && ratio.pairedThroughput.median > 0);
      // two rounds: the interval is the whole range, at the 50% two values give
      assert.deepEqual(ratio.pairedInterval, { low: ratio.pairedThroughput.min, high: ratio.pairedThroughput.max, confidence: 0.5 });
    }
    assert.match(stdout, /\[[0-9.]+–[0-9.]+ @50%\]/, 'the ratio lines carry the interval');
    // the default cleanup deletes each round's objects before the next round starts
    assert.equal(report.cleanup, 'round');
    const round2Start = Math.min(...report.runs.filter((r) => r.round === 2).map((r) => r.measured.monotonicStartSeconds));
    const round1Cleanups = report.cleanups.filter((c) => c.round === 1);
    assert.equal(round1Cleanups.length, 4, 'two sizes (64 KiB, 4 KiB) per case');
    for (const c of round1Cleanups) assert.ok(c.phase.monotonicStartSeconds < round2Start, 'round 1 cleaned up before round 2');
  });

  it('with --cleanup end keeps every round\'s objects until the run ends, then deletes them all; --warmup rounds are not measured', async () => {
    const endOut = await mkdtemp(path.join(tmpdir(), 'coffer-bench-compare-end-'));
    try {
      await run(process.execPath, [
        '--import', 'tsx', path.join(repoRoot, 'bench', 'cli.ts'), 'compare',
        '--case', `plain=${server.endpoint},metrics`, '--case', `sse-s3=${server.endpoint},sse=s3,metrics`, '--bucket', 'compare-end',
        '--workload', 'put:4KiB*5,get:4KiB*5/8', '--rounds', '3', '--concurrency', '2', '--cleanup', 'end', '--warmup', '1', '--settle', '20ms',
        '--out', endOut, '--no-progress', '--json',
      ], {
        cwd: repoRoot,
        env: { ...process.env, MINIO_ROOT_USER: accessKey, MINIO_ROOT_PASSWORD: secretKey },
        timeout: 120_000,
        maxBuffer: 16 * 1024 * 1024,
      });
      const jsonName = (await readdir(endOut)).find((name) => name.endsWith('.json'))!;
      const endReport = JSON.parse(await readFile(path.join(endOut, jsonName), 'utf8')) as CompareJson;
      assert.equal(endReport.errors, 0);
      assert.equal(endReport.cleanup, 'end');
      assert.equal(endReport.runs.length, 3 * 2 * 2);
      assert.deepEqual(endReport.runs.map((r) => r.round).sort(), [1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3]);
      // the warmup round ran every step of every case (sse-s3 first, so round 1 starts with plain), apart from the report's numbers
      assert.equal(endReport.warmupRounds, 1);
      assert.deepEqual(endReport.warmups.map((r) => `${r.round} ${r.step} ${r.case} ${r.measured.succeeded}`),
        ['0 put:4KiB sse-s3 5', '0 put:4KiB plain 5', '0 get:4KiB sse-s3 8', '0 get:4KiB plain 8']);
      const lastRunEnd = Math.max(...endReport.runs.map((r) => r.measured.monotonicEndSeconds));
      assert.deepEqual(endReport.cleanups.map((c) => `${c.round} ${c.case}`).sort(), ['0 plain', '0 sse-s3', '1 plain', '1 sse-s3', '2 plain', '2 sse-s3', '3 plain', '3 sse-s3']);
      for (const c of endReport.cleanups) {
        assert.ok(c.phase.monotonicStartSeconds >= lastRunEnd, `round ${c.round} ${c.case} cleaned up after the last measured step`);
        assert.equal(c.phase.succeeded, 5, 'every object of the round deleted');
        assert.equal(c.phase.errors, 0);
      }
      // the server holds nothing the run created: the bucket lists empty
      const listing = await rawRequest(server.endpoint, { method: 'GET', path: '/compare-end', query: { 'list-type': '2' } });
      assert.equal(listing.status, 200, listing.body);
      assert.match(listing.body, /<KeyCount>0<\/KeyCount>/);
      assert.doesNotMatch(listing.body, /<Contents>/);
    } finally {
      await rm(endOut, { recursive: true, force: true });
    }
  });

  it('--kms-budget lists every step over its KMS calls per request and exits 3; within budget it exits 0', async () => {
    const budgetOut = await mkdtemp(path.join(tmpdir(), 'coffer-bench-compare-kms-'));
    const compareArgs = (budget: string) => [
      '--import', 'tsx', path.join(repoRoot, 'bench', 'cli.ts'), 'compare',
      '--case', `plain=${server.endpoint},metrics`, '--case', `sse-s3=${server.endpoint},sse=s3,metrics`, '--bucket', 'compare-kms',
      '--workload', 'put:4KiB*4,get:4KiB*4/6', '--rounds', '2', '--concurrency', '2', '--kms-budget', budget,
      '--out', budgetOut, '--no-progress', '--json',
    ];
    const options = { cwd: repoRoot, env: { ...process.env, MINIO_ROOT_USER: accessKey, MINIO_ROOT_PASSWORD: secretKey }, timeout: 120_000, maxBuffer: 16 * 1024 * 1024 };
    try {
      // Every SSE PUT asks for a data key: a budget of none per PUT is exceeded by both rounds of sse-s3's put step.
      const over = await run(process.execPath, compareArgs('put=0,get=0'), options).then(
        () => assert.fail('a run over its KMS budget exited 0'),
        (error: { code?: number; stdout: string; stderr: string }) => error,
      );
      assert.equal(over.code, 3, over.stderr);
      const overReport = JSON.parse(over.stdout) as { errors: number; kmsBudget: Record<string, number>; kmsOverBudget: { round: number; step: string; case: string; kmsCalls: number; requests: number }[] };
      assert.equal(overReport.errors, 0);
      assert.deepEqual(overReport.kmsBudget, { put: 0, get: 0 });
      assert.deepEqual(overReport.kmsOverBudget.map((o) => `${o.round} ${o.step} ${o.case} ${o.kmsCalls}/${o.requests}`).sort(), ['1 put:4KiB sse-s3 4/4', '2 put:4KiB sse-s3 4/4']);
      assert.match(over.stderr, /KMS budget exceeded:\n {2}round 1 put:4KiB sse-s3: 4 KMS calls for 4 requests \(budget 0 per request\)/);
      const html = await readFile(path.join(budgetOut, (await readdir(budgetOut)).find((name) => name.endsWith('.html'))!), 'utf8');
      assert.match(html, /KMS budget \(put=0, get=0 calls per request\)/);
      await rm(budgetOut, { recursive: true, force: true });
      const within = await run(process.execPath, compareArgs('put=1,get=0'), options);
      const withinReport = JSON.parse(within.stdout) as { kmsOverBudget: unknown[] };
      assert.deepEqual(withinReport.kmsOverBudget, []);
      assert.match(within.stderr, /KMS budget put=1,get=0: every step within it/);
    } finally {
      await rm(budgetOut, { recursive: true, force: true });
    }
  });

  it('writes a self-contained HTML report with SVG charts', async () => {
    assert.ok(htmlFile !== undefined, 'the compare run wrote an HTML file');
    const html = await readFile(htmlFile, 'utf8');
    assert.match(html, /^<!doctype html>/);
    const svgs = html.match(/<svg\b/g) ?? [];
    // overview: throughput (small objects only here), ratios, CPU; per step: throughput over time and latency histogram
    assert.equal(svgs.length, 3 + 2 * 3, `found ${svgs.length} SVG charts`);
    assert.match(html, /throughput over time/);
    assert.match(html, /latency histogram/);
    assert.match(html, /<polyline /);
    assert.match(html, /client CPU/);
    assert.doesNotMatch(html, /<script|<link |src="http|href="http|@import/i, 'no scripts and no network fetches');
    assert.doesNotMatch(html, new RegExp(secretKey), 'the secret key is not in the report');
  });

  it('renders in headless chromium to a non-trivial PNG', { timeout: 120_000 }, async (t) => {
    if (!existsSync(chromiumPath)) {
      t.skip(`${chromiumPath} is not installed (apt-get install -y chromium) — HTML rendering not checked`);
      return;
    }
    assert.ok(htmlFile !== undefined, 'the compare run wrote an HTML file');
    const profileDir = await mkdtemp(path.join(tmpdir(), 'coffer-chromium-'));
    const pngFile = path.join(outDir, 'report.png');
    try {
      await run(chromiumPath, [
        '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
        '--disable-sync', '--no-first-run', `--user-data-dir=${profileDir}`, '--window-size=1400,2400',
        `--screenshot=${pngFile}`, pathToFileURL(htmlFile).href,
      ], { timeout: 90_000, maxBuffer: 4 * 1024 * 1024 });
      const { size } = await stat(pngFile);
      assert.ok(size > 20_000, `PNG is ${size} bytes`);
      const facts = await pngFacts(pngFile);
      assert.equal(facts.width, 1400);
      assert.equal(facts.height, 2400);
      assert.ok(facts.distinctBytes > 32, `${facts.distinctBytes} distinct byte values: a picture, not a blank page`);
      assert.ok(facts.nonWhiteRows > 600, `${facts.nonWhiteRows} rows with ink`);
    } finally {
      await rm(profileDir, { recursive: true, force: true });
    }
  });
});

describe('the paired ratio\'s confidence interval', () => {
  it('brackets the median by order statistics with the binomial coverage', async () => {
    const { medianInterval } = await import(pathToFileURL(path.join(repoRoot, 'bench', 'compare', 'command.ts')).href) as typeof import('../bench/compare/command.ts');
    const ten = [0.95, 0.81, 0.9, 0.88, 1.02, 0.93, 0.7, 0.91, 0.89, 0.97];
    // n = 10: the 2nd and 9th smallest, 1 − 2·11/1024
    assert.deepEqual(medianInterval(ten), { low: 0.81, high: 0.97, confidence: 1 - 22 / 1024 });
    // n = 5 cannot reach 95%: min–max at 1 − 2/32
    assert.deepEqual(medianInterval([3, 1, 2, 5, 4]), { low: 1, high: 5, confidence: 1 - 2 / 32 });
    // n = 20: P(Bin(20, ½) ≤ 5) = 0.0207 ≤ 0.025 < P(≤ 6): the 6th and 15th
    const twenty = Array.from({ length: 20 }, (_, i) => 20 - i);
    const interval = medianInterval(twenty);
    assert.equal(interval.low, 6);
    assert.equal(interval.high, 15);
    assert.ok(Math.abs(interval.confidence - (1 - 2 * 21700 / 1048576)) < 1e-12, `${interval.confidence}`);
    // a lower level narrows it: the 3rd and 8th, 1 − 2·56/1024
    assert.deepEqual(medianInterval(ten, 0.8), { low: 0.88, high: 0.95, confidence: 1 - 112 / 1024 });
    assert.equal(medianInterval([]).confidence, 0);
    assert.deepEqual(medianInterval([7]), { low: 7, high: 7, confidence: 0 });
  });
});

describe('compare workload steps', () => {
  it('reads OP:SIZE[*OBJECTS][@CONCURRENCY][/REQUESTS] and refuses /REQUESTS on a put', async () => {
    const { parseWorkload } = await import(pathToFileURL(path.join(repoRoot, 'bench', 'compare', 'command.ts')).href) as typeof import('../bench/compare/command.ts');
    const [get, stat, put] = parseWorkload('get:4KiB*2000@16/20000,stat:1KiB*10,put:16MiB*32@4', 8);
    assert.deepEqual(
      [get, stat, put].map((step) => step && [step.op, step.sizeBytes, step.objects, step.requests, step.concurrency]),
      [['get', 4096, 2000, 20000, 16], ['stat', 1024, 10, 10, 8], ['put', 16 * 1024 * 1024, 32, 32, 4]],
    );
    assert.throws(() => parseWorkload('put:4KiB*10/20', 8), /REQUESTS is for get and stat/);
    assert.throws(() => parseWorkload('get:4KiB*10/0', 8), /requests/);
  });
});

describe('server counters around a compare step', () => {
  it('reads the *_total series of a Prometheus exposition and reports what changed', () => {
    const before = parseCounters([
      '# HELP coffer_kms_calls_total calls made to the KMS, by operation',
      '# TYPE coffer_kms_calls_total counter',
      'coffer_kms_calls_total{op="generate"} 10',
      'coffer_kms_calls_total{op="decrypt"} 3',
      'coffer_s3_requests_total{api="GetObject",status="200"} 7',
      'coffer_uptime_seconds 12.5',
      'odd_label_total{help="a b}"} 1',
    ].join('\n'));
    assert.deepEqual([...before.keys()], ['coffer_kms_calls_total{op="generate"}', 'coffer_kms_calls_total{op="decrypt"}', 'coffer_s3_requests_total{api="GetObject",status="200"}']);
    const after = parseCounters('coffer_kms_calls_total{op="generate"} 10\ncoffer_kms_calls_total{op="decrypt"} 5\ncoffer_s3_requests_total{api="GetObject",status="200"} 17\ncoffer_s3_errors_total{code="NoSuchKey"} 2\n');
    const changes = counterChanges(before, after);
    assert.deepEqual(changes, {
      'coffer_kms_calls_total{op="decrypt"}': 2,
      'coffer_s3_requests_total{api="GetObject",status="200"}': 10,
      'coffer_s3_errors_total{code="NoSuchKey"}': 2,
    });
    assert.equal(kmsCallsIn(changes, after), 2);
    assert.equal(kmsCallsIn({}, after), 0, 'a server with a KMS: zero calls is a number');
    assert.equal(kmsCallsIn({}, parseCounters('coffer_s3_requests_total{api="GetObject",status="200"} 1')), undefined, 'no KMS counter: unknown');
  });
});

describe('the KMS budget of a compare', () => {
  it('reads OP=CALLS per operation and refuses anything else', () => {
    assert.deepEqual(parseKmsBudget('get=0,put=1', ['put', 'get', 'stat']), { get: 0, put: 1 });
    assert.deepEqual(parseKmsBudget('stat=0.01', ['put', 'get', 'stat']), { stat: 0.01 });
    for (const bad of ['get', 'get=', 'get=-1', 'list=0', 'get=0,get=1', 'get=1e3', '']) {
      assert.throws(() => parseKmsBudget(bad, ['put', 'get', 'stat']), UsageError, bad);
    }
  });

  it('flags runs whose calls exceed budget × requests, and passes runs without counters or budget', () => {
    const runs = [
      { round: 1, step: 'get:4KiB', case: 'sse', kmsCalls: 0, measured: { succeeded: 100 } },
      { round: 2, step: 'get:4KiB', case: 'sse', kmsCalls: 1, measured: { succeeded: 100 } },
      { round: 1, step: 'put:4KiB', case: 'sse', kmsCalls: 100, measured: { succeeded: 100 } },
      { round: 2, step: 'put:4KiB', case: 'sse', kmsCalls: 101, measured: { succeeded: 100 } },
      { round: 1, step: 'put:4KiB', case: 'plain', measured: { succeeded: 100 } },
      { round: 1, step: 'stat:4KiB', case: 'sse', kmsCalls: 50, measured: { succeeded: 100 } },
    ];
    const over = kmsOverBudget(runs, (step) => step.split(':')[0], { get: 0, put: 1 });
    assert.deepEqual(over.map((o) => `${o.round} ${o.step}`), ['2 get:4KiB', '2 put:4KiB']);
    assert.equal(formatOverBudget(over[0]!), 'round 2 get:4KiB sse: 1 KMS calls for 100 requests (budget 0 per request)');
  });

  it('needs a case with metrics', async () => {
    const failed = await run(process.execPath, [
      '--import', 'tsx', path.join(repoRoot, 'bench', 'cli.ts'), 'compare', '--case', 'a=http://127.0.0.1:9', '--kms-budget', 'get=0',
    ], { cwd: repoRoot, timeout: 60_000 }).then(() => assert.fail('exited 0'), (error: { code?: number; stderr: string }) => error);
    assert.equal(failed.code, 2);
    assert.match(failed.stderr, /--kms-budget needs a case with metrics/);
  });
});
