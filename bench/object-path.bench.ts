// The object path in one process (bench/object-path/run.ts): `npx tsx bench/object-path.bench.ts [--op put|get]`
//   --dir DIR          where the drive goes (default the OS temp dir; /dev/shm takes the disk out)
//   --cases plain,sse-s3,sse-c   --rounds 10   --ops 2000   --concurrency 16   --size 4KiB
//   --distinct-keys N  keys per case (PUT: default --ops, later rounds overwrite; GET: default 500, read in turn)
//   --out FILE         also write the JSON there (default bench/results/object-path-<op>-<timestamp>.json; - for none)
// Prints µs per request: the event loop's CPU (main), all threads' CPU (process, sys of it), GC, wall; and for
// each encrypted case its paired difference against plain in the same round (median over rounds).

import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { parseSize } from './load/units.ts';
import { objectPathCases, runObjectPath, type ObjectPathCase } from './object-path/run.ts';

const { values } = parseArgs({
  options: {
    op: { type: 'string', default: 'put' },
    dir: { type: 'string' },
    cases: { type: 'string', default: objectPathCases.join(',') },
    rounds: { type: 'string', default: '10' },
    ops: { type: 'string', default: '2000' },
    concurrency: { type: 'string', default: '16' },
    size: { type: 'string', default: '4KiB' },
    'distinct-keys': { type: 'string' },
    out: { type: 'string' },
  },
});

const positive = (name: string, text: string): number => {
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 1) throw new Error(`--${name} must be a positive integer, not '${text}'`);
  return value;
};
const cases = values.cases.split(',').map((name) => {
  if (!(objectPathCases as readonly string[]).includes(name)) throw new Error(`unknown case '${name}' (${objectPathCases.join(', ')})`);
  return name as ObjectPathCase;
});
if (values.op !== 'put' && values.op !== 'get') throw new Error(`--op must be put or get, not '${values.op}'`);
const op = values.op;

const result = await runObjectPath({
  op,
  ...(values.dir === undefined ? {} : { parentDir: values.dir }),
  cases,
  rounds: positive('rounds', values.rounds),
  ops: positive('ops', values.ops),
  concurrency: positive('concurrency', values.concurrency),
  sizeBytes: parseSize(values.size),
  ...(values['distinct-keys'] === undefined ? {} : { distinctKeys: positive('distinct-keys', values['distinct-keys']) }),
});

const fixed = (value: number | undefined): string => (value === undefined ? '-' : value.toFixed(1));
const header = ['case', `main µs/${op.toUpperCase()}`, 'process µs', 'sys µs', 'GC µs', 'wall µs', 'main − plain', 'process − plain'];
const rows = result.summary.map((row) => [
  row.case, fixed(row.mainMicros), fixed(row.processMicros), fixed(row.systemMicros), fixed(row.gcMicros), fixed(row.wallMicros),
  fixed(row.pairedMainMicros), fixed(row.pairedProcessMicros),
]);
const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
const line = (cells: readonly string[]): string => cells.map((cell, column) => (column === 0 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!))).join('  ');
const { options } = result;
process.stdout.write(
  `${op} path, in process: ${options.ops} ${op.toUpperCase()}s of ${options.sizeBytes} B per case and round, ${options.rounds} rounds, concurrency ${options.concurrency}, drive ${path.dirname(options.drive)}\n` +
    `medians over rounds (paired: median of per-round differences)\n${line(header)}\n${rows.map(line).join('\n')}\n`,
);
if (values.out !== '-') {
  const resultsDir = path.join(path.dirname(fileURLToPath(import.meta.url)), 'results');
  const outFile = values.out ?? path.join(resultsDir, `object-path-${op}-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  mkdirSync(path.dirname(outFile), { recursive: true });
  writeFileSync(outFile, `${JSON.stringify(result, null, 2)}\n`);
  process.stdout.write(`wrote ${outFile}\n`);
}
