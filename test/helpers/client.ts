// Run the client commands (`coffer alias|ls|mb|rb|cp|cat|rm|stat|encrypt|admin`) as a user would: a separate
// process per command, through test/helpers/client-entry.ts until cli/main.ts dispatches them.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { repoRoot } from './server.ts';

export const clientEntry = path.join(repoRoot, 'test', 'helpers', 'client-entry.ts');
/** tsx's loader by URL: `--import tsx` would be resolved from the working folder, which is a temporary one. */
const tsxLoader = import.meta.resolve('tsx');

export interface ClientRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stdoutBytes: Buffer;
  readonly stderr: string;
}

export interface ClientRunOptions {
  readonly cwd?: string;
  readonly env?: Record<string, string | undefined>;
  readonly timeoutMs?: number;
}

/** The argv that runs one client command: node --import tsx client-entry.ts ARGS (from any working folder). */
export function clientArgv(args: readonly string[]): string[] {
  return [process.execPath, '--import', tsxLoader, clientEntry, ...args];
}

export function runClient(args: readonly string[], options: ClientRunOptions = {}): Promise<ClientRun> {
  const [command, ...rest] = clientArgv(args);
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(process.env)) {
    // the developer's own mc/coffer aliases must not leak into a test
    if (value !== undefined && !/^(MC_HOST_|COFFER_HOST_)/.test(name)) env[name] = value;
  }
  for (const [name, value] of Object.entries(options.env ?? {})) {
    if (value === undefined) delete env[name];
    else env[name] = value;
  }
  return new Promise((resolve, reject) => {
    const child = spawn(command!, rest, { cwd: options.cwd ?? repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const stdout: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`coffer ${args.join(' ')} took longer than ${options.timeoutMs ?? 120_000} ms; stderr: ${stderr}`));
    }, options.timeoutMs ?? 120_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      const bytes = Buffer.concat(stdout);
      resolve({ code, stdout: bytes.toString('utf8'), stdoutBytes: bytes, stderr });
    });
  });
}
