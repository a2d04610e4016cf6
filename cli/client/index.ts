// The mc-style client commands of `coffer` (alias, ls, mb, rb, cp, cat, rm, stat, encrypt, admin): the one
// entry point cli/main.ts calls, `runClientCommand(command, args)`, which returns the exit code:
// 0 success, 1 a failure (stated on stderr, or as a JSON error line with --json), 2 a wrong command line.
// See docs/client.md.

import { runAdmin, adminUsage } from './admin.ts';
import { runAlias, aliasUsage } from './alias-command.ts';
import { mbUsage, rbUsage, runMb, runRb } from './bucket.ts';
import { catUsage, runCat } from './cat.ts';
import { describeError, UsageError } from './common.ts';
import { cpUsage, runCp } from './cp.ts';
import { encryptUsage, runEncrypt } from './encrypt.ts';
import { lsUsage, runLs } from './ls.ts';
import { rmUsage, runRm } from './rm.ts';
import { closeAllClients } from './s3-client.ts';
import { runStat, statUsage } from './stat.ts';

interface ClientCommand {
  readonly run: (args: readonly string[]) => Promise<number>;
  readonly usage: string;
  readonly summary: string;
}

const commands: Readonly<Record<string, ClientCommand>> = {
  alias: { run: runAlias, usage: aliasUsage, summary: 'set, list or remove a named endpoint (ALIAS)' },
  ls: { run: runLs, usage: lsUsage, summary: 'list buckets and objects' },
  mb: { run: runMb, usage: mbUsage, summary: 'make a bucket' },
  rb: { run: runRb, usage: rbUsage, summary: 'remove a bucket' },
  cp: { run: runCp, usage: cpUsage, summary: 'copy objects and files (local ↔ remote, remote ↔ remote)' },
  cat: { run: runCat, usage: catUsage, summary: 'write objects to stdout' },
  rm: { run: runRm, usage: rmUsage, summary: 'remove objects' },
  stat: { run: runStat, usage: statUsage, summary: 'show an object\'s or bucket\'s details' },
  encrypt: { run: runEncrypt, usage: encryptUsage, summary: 'set, clear or show a bucket\'s default encryption' },
  admin: { run: runAdmin, usage: adminUsage, summary: 'show server information' },
};

export const clientCommands: readonly string[] = Object.keys(commands);

/** One line per client command, for the main usage text. */
export const clientCommandsUsage: string = clientCommands
  .map((name) => `  coffer ${name.padEnd(8)} ${commands[name]!.summary}`)
  .join('\n');

export async function runClientCommand(command: string, args: readonly string[]): Promise<number> {
  const entry = commands[command];
  const json = args.includes('--json');
  const fail = (code: string, message: string, exitCode: number, usage?: string): number => {
    if (json) process.stdout.write(`${JSON.stringify({ status: 'error', error: { message, code } })}\n`);
    else process.stderr.write(`coffer ${command}: ${message}\n${usage === undefined ? '' : `${usage}\n`}`);
    return exitCode;
  };
  if (entry === undefined) return fail('UnknownCommand', `unknown client command (known: ${clientCommands.join(', ')})`, 2);
  // `coffer ls … | head -1`: a reader that goes away is not an error; the rest of the output is dropped.
  const onStdoutError = (error: NodeJS.ErrnoException): void => {
    if (error.code !== 'EPIPE') process.stderr.write(`coffer ${command}: stdout: ${error.message}\n`);
  };
  process.stdout.on('error', onStdoutError);
  try {
    return await entry.run(args);
  } catch (error) {
    if (error instanceof UsageError) return fail('UsageError', error.message, 2, entry.usage);
    const { message, code } = describeError(error);
    return fail(code, message, 1);
  } finally {
    closeAllClients();
    // onStdoutError stays: a broken pipe is reported asynchronously, after the command has returned
  }
}
