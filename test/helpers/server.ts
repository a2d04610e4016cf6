// Start a real `coffer server` process on a free loopback port for a test, and stop it afterwards.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const serverMallocTunables = 'glibc.malloc.trim_threshold=268435456:glibc.malloc.mmap_threshold=4194304';
export const accessKey = 'coffer-test-access';
export const secretKey = 'coffer-test-secret-key';

export interface TestServer {
  readonly endpoint: string;
  readonly port: number;
  /**
   * The single data folder; with `driveArgs`, the folder the first drive argument lives in (the part before
   * any `{`, then its parent: `/tmp/x/d{1...4}` and `/tmp/x/d1` both give `/tmp/x`), unless `dataDir` was given.
   */
  readonly dataDir: string;
  readonly process: ChildProcess;
  /** stdout collected so far (the startup banner: `Erasure: …`, `API: …`, …) */
  stdout(): string;
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

export interface StartOptions {
  readonly dataDir?: string;
  /**
   * Drive arguments passed to `coffer server` instead of the single `dataDir`: literal paths (`/tmp/x/d1`
   * `/tmp/x/d2` …) or ellipsis patterns (`/tmp/x/d{1...4}`), passed as given. The folders are not created here.
   */
  readonly driveArgs?: readonly string[];
  readonly env?: Record<string, string>;
  readonly port?: number;
  /** serve TLS with public.crt/private.key from this folder (default: an empty folder, so plain HTTP) */
  readonly certsDir?: string;
  /** the server's working directory (default the repository), for relative drive arguments */
  readonly cwd?: string;
}

export async function startServer(options: StartOptions = {}): Promise<TestServer> {
  const driveArgs = options.driveArgs !== undefined && options.driveArgs.length > 0 ? options.driveArgs : undefined;
  const dataDir = options.dataDir ?? (driveArgs ? path.dirname(driveArgs[0]!.split('{')[0]!) : await makeTempDir('data'));
  // Never pick up certificates from the user's ~/.minio/certs by accident. With driveArgs this is a
  // folder beside the drives (never created), so no drive gets an unexpected entry.
  const certsDir = options.certsDir ?? path.join(dataDir, '.no-certs');
  const args = [
    path.join(repoRoot, 'bin', 'coffer.js'), 'server', '--address', `127.0.0.1:${options.port ?? 0}`, '--certs-dir', certsDir,
    ...(driveArgs ?? [dataDir]),
  ];
  const child = spawn(process.execPath, args, {
    cwd: options.cwd ?? repoRoot,
    // The malloc settings the README recommends for the server (perf-primitives: large Buffers otherwise
    // cost an mmap + page faults each).
    env: { GLIBC_TUNABLES: serverMallocTunables, ...process.env, MINIO_ROOT_USER: accessKey, MINIO_ROOT_PASSWORD: secretKey, ...options.env },
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
      const match = /API: (https?:\/\/\S+)/.exec(stdout);
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
    stdout: () => stdout,
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

/** A self-signed certificate for 127.0.0.1/localhost in `dir` (public.crt, private.key), made with openssl. */
export async function makeCertificate(dir: string): Promise<{ certFile: string; keyFile: string }> {
  const { execFile } = await import('node:child_process');
  const { promisify } = await import('node:util');
  const certFile = path.join(dir, 'public.crt');
  const keyFile = path.join(dir, 'private.key');
  await promisify(execFile)('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
    '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
    '-keyout', keyFile, '-out', certFile,
  ]);
  return { certFile, keyFile };
}
