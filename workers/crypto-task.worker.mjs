// Piscina's entry point in each worker thread (workers/pool.ts). Worker threads do not inherit the tsx
// loader that bin/coffer.js registers with register() on the main thread, and `--import tsx` in execArgv
// would resolve tsx from the process's working directory. tsImport() resolves from this file and scopes
// the TypeScript loader to the task module and what it imports.
import { tsImport } from 'tsx/esm/api';

const task = await tsImport('./crypto-task.ts', import.meta.url);

export const seal = task.seal;
export const open = task.open;
export const probe = task.probe;
export const erasureEncode = task.erasureEncode;
export const md5 = task.md5;
