import type { Logger } from 'pino';

/**
 * What a long-running command (a node, a light client) does with an error nothing handles: a
 * throw out of a timer's, an event handler's or a library's callback, or a promise rejected with
 * nothing to catch it. Node's default ended the process on the spot, its stack on stderr and not
 * in the log, whatever was under way cut short: the store not closed (the next start rebuilt the
 * state tree's top from a scan), the mempool not saved, rpc.json left behind. As bitcoind and
 * Lodestar do, the first is logged (fatal, with its stack and where it came from) and `stop` is
 * asked for: the command stops cleanly and fails with the error (exit 1), rather than run on in a
 * state nobody knows. Any more while it stops are logged as errors, and the stop goes on.
 */
export function stopOnUnexpectedErrors(logger: Logger, stop: (err: Error) => void): void {
  let stopping = false;
  const onError = (reason: unknown, origin: string) => {
    const err = reason instanceof Error ? reason : new Error(`a value that is not an Error was thrown: ${String(reason)}`);
    const fields = { origin, error: err.stack ?? err.message };
    if (stopping) return void logger.error(fields, `another unexpected error while stopping: ${err.message}`);
    stopping = true;
    logger.fatal(fields, `stopping: an unexpected error (a bug in cairn: please report it, with this record): ${err.message}`);
    stop(err);
  };
  process.on('uncaughtException', (err, origin) => onError(err, origin));
  process.on('unhandledRejection', (reason) => onError(reason, 'unhandledRejection'));
}
