// Structured JSON log lines on stderr. Request lines only at debug level (COFFER_LOG_LEVEL=debug).
// Callers pass field values that are safe to log: never keys, secrets, signatures or object data.
type Level = 'debug' | 'info' | 'warn' | 'error';
const levelRank: Readonly<Record<Level, number>> = { debug: 10, info: 20, warn: 30, error: 40 };

function configuredLevel(): Level {
  const wanted = (process.env.COFFER_LOG_LEVEL ?? 'info').toLowerCase();
  return wanted in levelRank ? (wanted as Level) : 'info';
}
const threshold = levelRank[configuredLevel()];

function write(level: Level, message: string, fields: Readonly<Record<string, unknown>>): void {
  if (levelRank[level] < threshold) return;
  process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level, message, ...fields })}\n`);
}

export const log = {
  debug: (message: string, fields: Readonly<Record<string, unknown>> = {}) => write('debug', message, fields),
  info: (message: string, fields: Readonly<Record<string, unknown>> = {}) => write('info', message, fields),
  warn: (message: string, fields: Readonly<Record<string, unknown>> = {}) => write('warn', message, fields),
  error: (message: string, fields: Readonly<Record<string, unknown>> = {}) => write('error', message, fields),
  request: (fields: Readonly<Record<string, unknown>>) => write('debug', 'request', fields),
};
