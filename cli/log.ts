import { pino, type Logger, type LevelWithSilent } from 'pino';

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export function isLogLevel(level: string): level is LevelWithSilent {
  return LEVELS.includes(level);
}

/**
 * Structured logs with pino: JSON lines when stdout is not a terminal (for collectors), a short
 * human line per record when it is.
 */
export function createLogger(level: LevelWithSilent, tty = process.stdout.isTTY === true): Logger {
  if (!tty) return pino({ level, base: { pid: process.pid } });
  const human = {
    write(line: string) {
      const { level: n, time, msg, pid: _pid, hostname: _host, ...fields } = JSON.parse(line) as Record<string, unknown>;
      const name = pino.levels.labels[n as number] ?? String(n);
      const extra = Object.entries(fields)
        .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
        .join(' ');
      const clock = new Date(time as number).toISOString().slice(11, 19);
      process.stdout.write(`${clock} ${name.toUpperCase().padEnd(5)} ${msg as string}${extra ? '  ' + extra : ''}\n`);
    },
  };
  return pino({ level, base: undefined }, human);
}
