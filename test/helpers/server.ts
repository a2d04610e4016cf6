// Start a real `coffer server` process on a free loopback port for a test, and stop it afterwards.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const accessKey = 'coffer-test-access';
export const secretKey = 'coffer-test-secret-key';

export interface TestServer {
  readonly endpoint: string;
  readonly port: number;
  readonly dataDir: string;
  readonly process: ChildProcess;
  /** stderr collected so far */
  stderr(): string;
  /** SIGTERM and wait */
  stop(): Promise<void>;
  /** SIGKILL (crash) and wait */
  kill(): Promise<void>;
}

export async function makeTempDir(label: string): Promise<string> {
  return mkdtemp(path.join(tmpdir(), `coffer-${label}-`));
}

export async function startServer(options: { dataDir?: string; env?: Record<string, string>; port?: number } = {}): Promise<TestServer> {
  const dataDir = options.dataDir ?? (await makeTempDir('data'));
  const child = spawn(process.execPath, [path.join(repoRoot, 'bin', 'coffer.js'), 'server', '--address', `127.0.0.1:${options.port ?? 0}`, dataDir], {
    cwd: repoRoot,
    env: { ...process.env, MINIO_ROOT_USER: accessKey, MINIO_ROOT_PASSWORD: secretKey, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
    // COFFER_TEST_SERVER_LOG=1 (with COFFER_LOG_LEVEL=debug) shows the servers' logs while debugging a test
    if (process.env.COFFER_TEST_SERVER_LOG) process.stderr.write(chunk);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const endpoint = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start in time; stderr: ${stderr}`)), 20_000);
    child.stdout!.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      const match = /API: (http:\/\/\S+)/.exec(stdout);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code} before starting; stderr: ${stderr}`));
    });
  });
  const port = Number(new URL(endpoint).port);
  return {
    endpoint,
    port,
    dataDir,
    process: child,
    stderr: () => stderr,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
    kill: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}
