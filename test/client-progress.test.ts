// cp's progress bar: drawn in a real terminal (a tmux pane) while a throttled 200 MiB copy runs, absent when
// stdout is a pipe; plus the pure line renderer and the ≤ 10 redraws per second bound.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { open, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { ProgressBar, redrawIntervalMs, renderProgressLine } from '../cli/client/progress.ts';
import { clientArgv, runClient } from './helpers/client.ts';
import { accessKey, makeTempDir, removeDir, repoRoot, secretKey, startServer, type TestServer } from './helpers/server.ts';

const run = promisify(execFile);
const mebibyte = 1024 * 1024;

function shellQuote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

async function tmuxPath(): Promise<string | undefined> {
  try {
    const { stdout } = await run('sh', ['-c', 'command -v tmux']);
    return stdout.trim() || undefined;
  } catch {
    return undefined;
  }
}

describe('progress line rendering', () => {
  it('shows amounts, a bar, the percentage, the speed and the ETA within the terminal width', () => {
    const line = renderProgressLine({ label: 'big.bin', doneBytes: 50 * mebibyte, totalBytes: 200 * mebibyte, bytesPerSecond: 10 * mebibyte, columns: 100, unicode: true });
    assert.ok(line.length <= 100, line);
    assert.match(line, /^big\.bin: 50\.00 MiB \/ 200\.00 MiB ┃▓+░+┃ {2}25% +10\.00 MiB\/s ETA 15s$/);
    const ascii = renderProgressLine({ label: 'x', doneBytes: 1, totalBytes: 2, bytesPerSecond: undefined, columns: 80, unicode: false });
    assert.match(ascii, /\[#+\.+\] {2}50% +--\.-- B\/s ETA --$/);
  });

  it('drops the bar, then the label, when the terminal is narrow', () => {
    const narrow = renderProgressLine({ label: 'some-long-name.bin', doneBytes: 3, totalBytes: 4, bytesPerSecond: 1, columns: 60, unicode: true });
    assert.ok(narrow.length <= 60, narrow);
    assert.doesNotMatch(narrow, /┃/);
    assert.match(narrow, /75%/);
    const tiny = renderProgressLine({ label: 'some-long-name.bin', doneBytes: 3, totalBytes: 4, bytesPerSecond: 1, columns: 30, unicode: true });
    assert.ok(tiny.length <= 30, tiny);
    assert.match(tiny, /75%/);
  });

  it('redraws at most 10 times per second however often bytes arrive', async () => {
    const writes: string[] = [];
    const bar = new ProgressBar(100 * mebibyte, { write: (text: string) => writes.push(text), columns: 100 }, false);
    const startedMs = performance.now();
    while (performance.now() - startedMs < 1000) {
      bar.add(1024);
      await new Promise((resolve) => setImmediate(resolve));
    }
    bar.finish();
    const draws = writes.filter((text) => text.startsWith('\r')).length;
    // one initial draw, one per 100 ms tick (≤ 10 in a second, timers may run one late), one final
    assert.ok(draws <= 1000 / redrawIntervalMs + 2, `${draws} draws in one second`);
    assert.ok(draws >= 5, `${draws} draws: the timer should keep drawing`);
    assert.equal(writes[writes.length - 1], '\n');
  });
});

describe('cp progress bar in a terminal', () => {
  let work: string;
  let server: TestServer;
  let tmux: string | undefined;
  const socketName = `coffer-progress-${process.pid}`;
  const env = (): Record<string, string> => ({ COFFER_CONFIG_DIR: path.join(work, 'config') });

  before(async () => {
    tmux = await tmuxPath();
    work = await makeTempDir('progress');
    server = await startServer();
    assert.equal((await runClient(['alias', 'set', 'local', server.endpoint, accessKey, secretKey], { env: env() })).code, 0);
    assert.equal((await runClient(['mb', 'local/progress'], { env: env() })).code, 0);
  });

  after(async () => {
    if (tmux) await run(tmux, ['-L', socketName, 'kill-server']).catch(() => undefined);
    await server?.stop();
    if (server) await removeDir(server.dataDir);
    if (work) await removeDir(work);
  });

  it('shows a live bar with percentage and speed while a throttled 200 MiB cp runs in tmux', async (t) => {
    if (tmux === undefined) {
      t.skip('tmux is not installed (apt-get install tmux)');
      return;
    }
    const sizeBytes = 200 * mebibyte;
    const file = path.join(work, 'big.bin');
    const handle = await open(file, 'w');
    const block = randomBytes(4 * mebibyte);
    for (let written = 0; written < sizeBytes; written += block.length) await handle.write(block);
    await handle.close();

    // 50 MiB/s: about 4 s of transfer, long enough to catch the bar mid-way
    const exitFile = path.join(work, 'exit-code');
    const command = [
      `cd ${shellQuote(repoRoot)}`,
      `export COFFER_CONFIG_DIR=${shellQuote(env().COFFER_CONFIG_DIR)} COFFER_CLIENT_THROTTLE_BYTES_PER_S=${50 * mebibyte} LANG=C.UTF-8`,
      `${clientArgv(['cp', file, 'local/progress/big.bin']).map(shellQuote).join(' ')}`,
      `echo $? > ${shellQuote(exitFile)}`,
      'sleep 600',
    ].join('; ');
    await run(tmux, ['-L', socketName, '-f', '/dev/null', 'new-session', '-d', '-x', '120', '-y', '12', '-s', 'cp', command]);

    const capture = async (): Promise<string> => (await run(tmux!, ['-L', socketName, 'capture-pane', '-p', '-t', 'cp'])).stdout;
    let midway: string | undefined;
    let exitCode: string | undefined;
    const deadlineMs = performance.now() + 60_000;
    while (performance.now() < deadlineMs) {
      const screen = await capture();
      const percent = /(\d+)%/.exec(screen);
      if (midway === undefined && percent && Number(percent[1]) > 0 && Number(percent[1]) < 100 && /\d+\.\d\d [KMG]iB\/s/.test(screen)) midway = screen;
      exitCode = await readFile(exitFile, 'utf8').then((text) => text.trim(), () => undefined);
      if (exitCode !== undefined) break;
      await new Promise((resolve) => setTimeout(resolve, 150));
    }
    const finalScreen = await capture();
    assert.equal(exitCode, '0', `cp failed; screen:\n${finalScreen}`);
    assert.ok(midway !== undefined, `never saw a partial percentage with a speed; last screen:\n${finalScreen}`);
    const line = midway.split('\n').find((candidate) => /%/.test(candidate))!;
    assert.match(line, /^big\.bin: \d+\.\d\d MiB \/ 200\.00 MiB ┃▓*░+┃ +\d{1,2}% +\d+\.\d\d MiB\/s ETA \d+s$/);
    assert.ok(line.length <= 120, 'fits the pane');
    assert.match(finalScreen, /200\.00 MiB \/ 200\.00 MiB .* 100% /);
    assert.equal(finalScreen.split('\n').filter((candidate) => /%/.test(candidate)).length, 1, 'redrawn in place, not one line per update');

    const statted = await runClient(['stat', '--json', 'local/progress/big.bin'], { env: env() });
    assert.equal(JSON.parse(statted.stdout).size, sizeBytes);
  });

  it('prints no bar when stdout is a pipe, only the summary line', async () => {
    const file = path.join(work, 'piped.bin');
    await writeFile(file, randomBytes(8 * mebibyte));
    const piped = await runClient(['cp', file, 'local/progress/piped.bin'], { env: { ...env(), COFFER_CLIENT_THROTTLE_BYTES_PER_S: String(16 * mebibyte) } });
    assert.equal(piped.code, 0, piped.stderr);
    assert.doesNotMatch(piped.stdout, /\r|\x1b|┃|%/);
    assert.equal(piped.stderr, '');
    assert.match(piped.stdout, /^Total: 8\.00 MiB, Transferred: 8\.00 MiB, Speed: [\d.]+ MiB\/s, Objects: 1\n$/);
    const speed = Number(/Speed: ([\d.]+) MiB/.exec(piped.stdout)![1]);
    assert.ok(speed <= 21, `the throttle holds the speed near 16 MiB/s (${speed}; 20 at most with the first 1.6 MiB burst)`);
  });
});
