// Process-level helpers for bench commands: Ctrl-C handling and a description of the machine.

import os from 'node:os';
import type { StopSignal } from './phase.ts';

/** Ctrl-C sets the signal (the run cleans up and returns 130; twice exits); the handler is removed afterwards. */
export async function withInterrupt<T>(label: string, run: (stop: StopSignal) => Promise<T>): Promise<T> {
  const stop: StopSignal = { stopped: false };
  const onInterrupt = (): void => {
    if (stop.stopped) process.exit(130);
    stop.stopped = true;
    process.stderr.write(`\n${label}: interrupted, cleaning up (Ctrl-C again to abort)\n`);
  };
  process.on('SIGINT', onInterrupt);
  try {
    return await run(stop);
  } finally {
    process.off('SIGINT', onInterrupt);
  }
}

export function machineInfo(): Record<string, unknown> {
  return { node: process.version, cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? 'unknown', loadavg: os.loadavg(), hostname: os.hostname() };
}
