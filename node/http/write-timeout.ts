import type { Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/** How long a connection's answer may wait on a client that takes none of it, by default. */
export const WRITE_TIMEOUT_MS = 60_000;

/**
 * Cuts a connection whose answer has bytes waiting that the client took none of for `ms`. Without
 * it, a client that sends requests and never reads kept its answer buffered for ever, with a file
 * descriptor and a connection slot: a thousand such took every slot. Node's socket timeout starts
 * over each time the kernel takes more of a pending write (net.Socket watches its write queue), so
 * a slow client that reads is never cut; a connection with nothing to send (an event stream
 * between events, an answer still being made) is left alone; and one idle between requests still
 * closes at the keep-alive timeout, whose expiry nothing here answers.
 */
export function cutStalledWrites(server: Server, ms: number): void {
  server.timeout = ms;
  server.on('request', (_req, res: ServerResponse) => {
    // A listener here keeps the socket from the cut Node gives an unanswered timeout.
    res.on('timeout', (socket: Socket) => {
      if (socket.writableLength > 0) socket.destroy();
    });
  });
}
