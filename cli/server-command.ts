// `coffer server [--address HOST:PORT] DIR...`
import { settingsFromEnv } from '../api/config.ts';
import { S3Server } from '../api/server.ts';
import { FsEngine } from '../engine/fs-engine.ts';

const defaultAddress = '127.0.0.1:9000';

export function parseAddress(address: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(address);
  if (!match) throw new Error(`invalid --address '${address}': expected HOST:PORT, [IPv6]:PORT or :PORT`);
  const host = match[1] ?? (match[2] === '' ? '0.0.0.0' : match[2]!);
  const port = Number(match[3]);
  if (port > 65535) throw new Error(`invalid port in --address '${address}'`);
  return { host, port };
}

export async function runServerCommand(args: readonly string[]): Promise<number> {
  let address = defaultAddress;
  const dirs: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--address') address = args[++i] ?? '';
    else if (arg.startsWith('--address=')) address = arg.slice('--address='.length);
    else if (arg.startsWith('-')) throw new Error(`unknown flag ${arg}`);
    else dirs.push(arg);
  }
  if (dirs.length === 0) {
    process.stderr.write('coffer server: name at least one data directory, e.g. `coffer server ./data`\n');
    return 2;
  }
  const settings = settingsFromEnv(process.env);
  const { host, port } = parseAddress(address);
  const engine = await FsEngine.open(dirs);
  const server = new S3Server({ engine, settings, host, port });
  const running = await server.listen();
  const lines = [
    `Coffer is serving ${dirs.join(' ')}`,
    `API: ${running.endpoint}`,
    `RootUser: ${settings.accessKey}`,
    `RootPass: ${settings.usingDefaultCredentials ? settings.secretKey : '(as set in the environment)'}`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  if (settings.usingDefaultCredentials) {
    process.stderr.write(
      'WARNING: using the default credentials minioadmin:minioadmin. Anyone who can reach this port has full access.\n' +
        '         Set MINIO_ROOT_USER and MINIO_ROOT_PASSWORD to secure this server.\n',
    );
  }
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await running.close();
  return 0;
}
