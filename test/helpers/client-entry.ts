// Test-only entry for the client commands until cli/main.ts dispatches them:
//   node --import tsx test/helpers/client-entry.ts COMMAND ARGS...
import { runClientCommand } from '../../cli/client/index.ts';

const [command = '', ...args] = process.argv.slice(2);
process.exitCode = await runClientCommand(command, args);
