import { pino, type DestinationStream, type Logger, type LevelWithSilent } from 'pino';

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export function isLogLevel(level: string): level is LevelWithSilent {
  return LEVELS.includes(level);
}

/**
 * Structured logs with pino: JSON lines when stdout is not a terminal (for collectors), a short
 * human line per record when it is, written to `write` (stdout).
 *
 * A human line starts with the time in UTC, ISO 8601 with its Z, to the second: what Bitcoin
 * Core's debug.log shows, and how the CLI prints block times. A clock without its zone is misread
 * as soon as the reader's zone is not the node's.
 */
export function createLogger(level: LevelWithSilent, tty = process.stdout.isTTY === true, write: (text: string) => void = (text) => void process.stdout.write(text)): Logger {
  if (!tty) return pino({ level, base: { pid: process.pid } }, jsonLines());
  const human = {
    write(line: string) {
      const { level: n, time, msg, pid: _pid, hostname: _host, ...fields } = JSON.parse(line) as Record<string, unknown>;
      const name = pino.levels.labels[n as number] ?? String(n);
      const extra = Object.entries(fields)
        .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
        .join(' ');
      const clock = `${new Date(time as number).toISOString().slice(0, 19)}Z`;
      write(`${clock} ${name.toUpperCase().padEnd(5)} ${msg as string}${extra ? '  ' + extra : ''}\n`);
    },
  };
  return pino({ level, base: undefined }, human);
}

/** Log bytes kept while the output takes none (a full disk, a reader that stopped reading); newer lines are dropped beyond. */
const MAX_BACKLOG_BYTES = 4 * 1024 * 1024;

/**
 * Standard output for JSON lines: pino's own, written behind the caller, with what its default
 * lacks for a full disk. There a line's write failed with an 'error' no one handled, and at the
 * exit that followed pino's last flush retried every failing write but EAGAIN for ever, a
 * process stuck asleep in a loop, its ports and datadir held. Now a failed write is retried with
 * the next line (the log resumes once there is room, up to MAX_BACKLOG_BYTES kept meanwhile), and
 * the last flush is left out while the output fails. A closed pipe (EPIPE) ends logging: pino's.
 */
function jsonLines(): DestinationStream {
  const out = pino.destination({ dest: 1, sync: false, maxLength: MAX_BACKLOG_BYTES });
  let failing = false;
  out.on('error', () => void (failing = true));
  out.on('write', () => void (failing = false));
  const flushSync = out.flushSync.bind(out);
  out.flushSync = () => {
    if (!failing) flushSync();
  };
  return out;
}
