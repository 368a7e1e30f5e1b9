import pino, { type Logger } from 'pino';

/**
 * Logs go to standard error so that standard output stays data (JSONL, reports).
 * JSON by default; readable when standard error is a terminal or NETPOL_AUDIT_LOG_PRETTY=1.
 */
export function createLogger(
  name = 'netpol-audit',
  level = process.env.NETPOL_AUDIT_LOG_LEVEL ?? 'info',
): Logger {
  const pretty =
    process.env.NETPOL_AUDIT_LOG_PRETTY === '1' ||
    (process.env.NETPOL_AUDIT_LOG_PRETTY !== '0' && process.stderr.isTTY === true);
  if (pretty) {
    return pino({
      name,
      level,
      transport: { target: 'pino-pretty', options: { destination: 2, colorize: true } },
    });
  }
  return pino({ name, level }, pino.destination({ dest: 2, sync: true }));
}

let shared: Logger | undefined;
export function log(): Logger {
  shared ??= createLogger();
  return shared;
}

export type { Logger };
