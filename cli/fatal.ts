import type { Logger } from 'pino';
import { UsageError } from './args.ts';

/** How long the stop after a failure may take (CAIRN_FAILED_STOP_SECONDS) before the process exits without it. */
export const DEFAULT_FAILED_STOP_MS = 60_000;

/** CAIRN_FAILED_STOP_SECONDS in milliseconds, checked when the command starts rather than when a failure needs it. */
export function failedStopMs(env: NodeJS.ProcessEnv = process.env): number {
  const v = env['CAIRN_FAILED_STOP_SECONDS'];
  if (v === undefined || v === '') return DEFAULT_FAILED_STOP_MS;
  if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > 86_400) throw new UsageError(`CAIRN_FAILED_STOP_SECONDS must be a whole number of seconds from 1 to 86400, got "${v}"`);
  return Number(v) * 1000;
}

/**
 * Bounds the stop that follows a failure. A stop a signal asked for has someone to end it if it
 * hangs (a second Ctrl-C, a service manager's kill); one that a failure began had nobody: a hang
 * there (a stream, a thread or a close that never answers) left the process running on for ever,
 * half stopped, its ports and datadir held, never exiting for a supervisor to restart it. After
 * `ms` it is logged and the process exits 1; the next start recovers the store as after a kill.
 */
export function exitIfStopHangs(logger: Logger, ms: number): void {
  const watchdog = setTimeout(() => {
    logger.fatal({ seconds: ms / 1000 }, `the stop after the failure did not end within ${ms / 1000} s: exiting without it (the next start recovers the store as after a kill; CAIRN_FAILED_STOP_SECONDS sets the wait)`);
    process.exit(1);
  }, ms);
  // A stop that ends leaves nothing to wait for.
  watchdog.unref();
}

/**
 * What a long-running command (a node, a light client) does with an error nothing handles: a
 * throw out of a timer's, an event handler's or a library's callback, or a promise rejected with
 * nothing to catch it. Node's default ended the process on the spot, its stack on stderr and not
 * in the log, whatever was under way cut short: the store not closed (the next start rebuilt the
 * state tree's top from a scan), the mempool not saved, rpc.json left behind. As bitcoind and
 * Lodestar do, the first is logged (fatal, with its stack and where it came from) and `stop` is
 * asked for: the command stops cleanly and fails with the error (exit 1), rather than run on in a
 * state nobody knows; within `stopMs` (exitIfStopHangs). Any more while it stops are logged as
 * errors, and the stop goes on.
 */
export function stopOnUnexpectedErrors(logger: Logger, stop: (err: Error) => void, stopMs: number): void {
  let stopping = false;
  const onError = (reason: unknown, origin: string) => {
    const err = reason instanceof Error ? reason : new Error(`a value that is not an Error was thrown: ${String(reason)}`);
    const fields = { origin, error: err.stack ?? err.message };
    if (stopping) return void logger.error(fields, `another unexpected error while stopping: ${err.message}`);
    stopping = true;
    logger.fatal(fields, `stopping: an unexpected error (a bug in cairn: please report it, with this record): ${err.message}`);
    exitIfStopHangs(logger, stopMs);
    stop(err);
  };
  process.on('uncaughtException', (err, origin) => onError(err, origin));
  process.on('unhandledRejection', (reason) => onError(reason, 'unhandledRejection'));
}
