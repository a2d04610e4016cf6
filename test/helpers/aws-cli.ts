// The two aws CLIs the tests drive: Debian's aws 2.9 at /usr/bin/aws (installed by .ci/setup) and, when it
// is a different program, the `aws` first on PATH (the image's Python aws 1.x with a newer botocore).
import { execFile } from 'node:child_process';
import { existsSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
export const debianAws = '/usr/bin/aws';

function which(command: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    const candidate = path.join(dir, command);
    if (existsSync(candidate)) return candidate;
  }
  return undefined;
}

export function awsClis(): { name: string; bin: string }[] {
  const clis = [{ name: 'Debian aws 2.9', bin: debianAws }];
  const onPath = which('aws');
  if (onPath && existsSync(debianAws) && realpathSync(onPath) !== realpathSync(debianAws)) {
    clis.push({ name: 'aws on PATH (Python, new botocore)', bin: onPath });
  }
  return clis;
}

export interface AwsRunOptions {
  readonly bin: string;
  readonly endpoint: string;
  readonly accessKey: string;
  readonly secretKey: string;
  /** a scratch folder: the CLI must not read the user's ~/.aws */
  readonly workDir: string;
  readonly env?: Record<string, string>;
}

/** Run the aws CLI against `endpoint` with only these credentials; resolves to stdout. */
export async function aws(options: AwsRunOptions, ...args: string[]): Promise<string> {
  const { stdout } = await run(options.bin, ['--endpoint-url', options.endpoint, '--region', 'us-east-1', ...args], {
    env: {
      ...process.env,
      AWS_ACCESS_KEY_ID: options.accessKey,
      AWS_SECRET_ACCESS_KEY: options.secretKey,
      AWS_CONFIG_FILE: path.join(options.workDir, 'no-config'),
      AWS_SHARED_CREDENTIALS_FILE: path.join(options.workDir, 'no-credentials'),
      AWS_PAGER: '',
      ...options.env,
    },
    timeout: 120_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  return stdout;
}
