// `coffer <command>`: the entry point behind bin/coffer.js.
import { clientCommands, clientCommandsUsage, runClientCommand } from './client/index.ts';
import { runKesCommand } from './kes-command.ts';
import { runServerCommand } from './server-command.ts';

const usage = `usage:
  coffer server [--address HOST:PORT] [--certs-dir DIR] DIR...   serve S3 from DIR (default address 127.0.0.1:9000)
  coffer kes server --config kes.yml                          a KES-compatible key server (docs/kes.md)
  coffer kes identity new|of …, coffer kes key create|list|describe|delete …
  coffer bench put|get|mixed|multipart|list|delete|stat|compare|kernels …   load generator (docs: bench/RESULTS.md)
`;

async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command !== undefined && clientCommands.includes(command)) return runClientCommand(command, rest);
  switch (command) {
    case 'server':
      return runServerCommand(rest);
    case 'kes':
      return runKesCommand(rest);
    case 'bench':
      return (await import('../bench/cli.ts')).runBenchCommand(rest);
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(`${usage}${clientCommandsUsage}\n`);
      return command === undefined ? 2 : 0;
    default:
      process.stderr.write(`coffer: unknown command '${command}'\n${usage}`);
      return 2;
  }
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (error) {
  // Startup failures (bad configuration, an unreachable KMS, a wrong certificate) are stated plainly.
  process.stderr.write(`coffer: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
}
