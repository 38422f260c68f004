import { lpStream } from '@libp2p/utils';
import type { PeerId, Stream } from '@libp2p/interface';
import type { Host } from './host.ts';

/**
 * Length-prefixed request-response over libp2p streams. Every read has a size cap and a deadline;
 * a response of several frames ends with an empty frame (lpStream cannot tell a clean end of
 * stream from a cut one).
 */
export interface RequestOptions {
  readonly timeoutMs: number;
  readonly maxBytes: number;
}

/** Frames capped at `maxBytes` when read (writes are ours, and sized by our own limits). */
function framed(stream: Stream, maxBytes: number) {
  return lpStream(stream, { maxDataLength: maxBytes, maxBufferSize: Math.max(4 << 20, 2 * maxBytes) });
}

export async function request(host: Host, peer: PeerId, protocol: string, body: Uint8Array, o: RequestOptions): Promise<Uint8Array> {
  const signal = AbortSignal.timeout(o.timeoutMs);
  const stream = await host.dialProtocol(peer, protocol, { signal });
  try {
    const lp = framed(stream, o.maxBytes);
    await lp.write(body, { signal });
    const response = await lp.read({ signal });
    await stream.close({ signal });
    return response.subarray();
  } catch (err) {
    stream.abort(err as Error);
    throw err;
  }
}

/** Sends one request and collects frames until the empty terminator, at most `maxFrames`. */
export async function requestMany(
  host: Host,
  peer: PeerId,
  protocol: string,
  body: Uint8Array,
  maxFrames: number,
  o: RequestOptions,
): Promise<Uint8Array[]> {
  const signal = AbortSignal.timeout(o.timeoutMs);
  const stream = await host.dialProtocol(peer, protocol, { signal });
  try {
    const lp = framed(stream, o.maxBytes);
    await lp.write(body, { signal });
    await stream.close({ signal });
    const frames: Uint8Array[] = [];
    for (;;) {
      const frame = (await lp.read({ signal })).subarray();
      if (frame.byteLength === 0) return frames;
      if (frames.length === maxFrames) throw new Error(`more than ${maxFrames} frames in a response`);
      frames.push(frame);
    }
  } catch (err) {
    stream.abort(err as Error);
    throw err;
  }
}

export type Responder = (request: Uint8Array, peer: PeerId) => Promise<Uint8Array | Uint8Array[]>;

/**
 * Serves `protocol`: reads one capped request, answers with one frame, or several frames and the
 * empty terminator. A handler error resets the stream; the asker sees it fail.
 */
export async function serve(
  host: Host,
  protocol: string,
  respond: Responder,
  o: RequestOptions & { onBadRequest: (peer: PeerId, err: unknown) => void },
): Promise<void> {
  await host.handle(
    protocol,
    async (stream: Stream, connection) => {
      const lp = framed(stream, o.maxBytes);
      let answer: Uint8Array | Uint8Array[];
      try {
        const req = (await lp.read({ signal: AbortSignal.timeout(o.timeoutMs) })).subarray();
        answer = await respond(req, connection.remotePeer);
      } catch (err) {
        // Garbage, oversized or missing requests are the asker's doing: it pays for them.
        o.onBadRequest(connection.remotePeer, err);
        throw err;
      }
      if (Array.isArray(answer)) {
        for (const frame of answer) await lp.write(frame);
        await lp.write(new Uint8Array(0));
      } else {
        await lp.write(answer);
      }
      await stream.close();
    },
    { maxInboundStreams: 8, maxOutboundStreams: 8 },
  );
}
