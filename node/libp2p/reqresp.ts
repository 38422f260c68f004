import { lpStream } from '@libp2p/utils';
import type { PeerId, Stream } from '@libp2p/interface';
import { CairnError } from '../../ledger/errors.ts';
import { MAX_STREAMS_PER_PEER, TransportError, busyError, decodeBusy, encodeBusy, isBusy, type Busy, type RequestLimits, type Responder, type ServeOptions } from '../transport.ts';
import type { Host } from './host.ts';

/**
 * Length-prefixed request-response over libp2p streams. Every read has a size cap and a deadline;
 * a response of several frames ends with an empty frame (lpStream cannot tell a clean end of
 * stream from a cut one). Failures leave here as TransportErrors, so nothing above reads libp2p's
 * error names.
 */

/**
 * An answerer gives up writing its answer after this long: no asker waits longer for one
 * (PROTOCOL.md, Framing), and one that stops reading would otherwise hold the stream, and the
 * answer in memory, for as long as the connection lasts.
 */
export const ANSWER_TIMEOUT_MS = 30_000;

/** Frames capped at `maxBytes` when read (writes are ours, and sized by our own limits). */
function framed(stream: Stream, maxBytes: number) {
  return lpStream(stream, { maxDataLength: maxBytes, maxBufferSize: Math.max(4 << 20, 2 * maxBytes), lengthDecoder: frameLengthDecoder(maxBytes) });
}

/**
 * Reads a frame's LEB128 length prefix, refusing one longer than `maxBytes` can need. lpStream
 * checks the prefix's length only once it ends, and reads it a byte at a time while its decoder
 * says "more" (a RangeError): a peer sending continuation bytes for ever was read until the
 * deadline, a promise and a slice a byte, the event loop's timers (the deadline among them)
 * starved while the bytes kept coming.
 */
export function frameLengthDecoder(maxBytes: number): (prefix: { readonly byteLength: number; get(i: number): number } | Uint8Array) => number {
  let maxPrefix = 1;
  while (maxBytes >= 2 ** (7 * maxPrefix)) maxPrefix++;
  return (prefix) => {
    let length = 0;
    for (let i = 0; i < prefix.byteLength; i++) {
      const byte = prefix instanceof Uint8Array ? prefix[i]! : prefix.get(i);
      length += (byte & 0x7f) * 2 ** (7 * i);
      if ((byte & 0x80) === 0) return length;
      if (i + 1 >= maxPrefix) throw new TransportError('TRANSPORT_BAD_FRAME', `a length prefix of more than ${maxPrefix} bytes (frames here are at most ${maxBytes} bytes)`);
    }
    throw new RangeError('the length prefix goes on'); // lpStream reads another byte
  };
}

/** What a libp2p or stream error means for the caller. */
export function classify(err: unknown): TransportError {
  if (err instanceof TransportError) return err;
  const e = err as Error;
  const name = e?.name ?? '';
  const message = e?.message ?? String(err);
  if (name === 'UnsupportedProtocolError') return new TransportError('TRANSPORT_UNSUPPORTED', message);
  if (name === 'AbortError' || name === 'TimeoutError') return new TransportError('TRANSPORT_TIMEOUT', message);
  // StreamBufferError: more sent than a read may buffer, which no honest answer needs.
  if (/^Invalid.*(Length|Data)/.test(name) || name === 'StreamBufferError') return new TransportError('TRANSPORT_BAD_FRAME', message);
  return new TransportError('TRANSPORT_CLOSED', message);
}

/**
 * A stream on the connection we have. Never a dial: libp2p's dialProtocol would connect to a
 * peer that hung up, so every retried request would reconnect to it, outside the PeerBook's
 * backoff.
 */
async function openStream(host: Host, peer: PeerId, protocol: string, signal: AbortSignal): Promise<Stream> {
  const connection = host.getConnections(peer).find((c) => c.status === 'open');
  if (!connection) throw new TransportError('TRANSPORT_CLOSED', `not connected to ${peer.toString()}`);
  try {
    return await connection.newStream(protocol, { signal });
  } catch (err) {
    throw classify(err);
  }
}

export async function request(host: Host, peer: PeerId, protocol: string, body: Uint8Array, o: RequestLimits): Promise<Uint8Array> {
  const signal = AbortSignal.timeout(o.timeoutMs);
  const stream = await openStream(host, peer, protocol, signal);
  try {
    const lp = framed(stream, o.maxBytes);
    await lp.write(body, { signal });
    const response = (await lp.read({ signal })).subarray();
    await stream.close({ signal });
    const retryAfter = decodeBusy(response);
    if (retryAfter !== undefined) throw busyError(peer.toString(), protocol, retryAfter);
    return response;
  } catch (err) {
    stream.abort(err as Error);
    throw classify(err);
  }
}

/** Sends one request and collects frames until the empty terminator, at most `maxFrames`. */
export async function requestMany(host: Host, peer: PeerId, protocol: string, body: Uint8Array, maxFrames: number, o: RequestLimits): Promise<Uint8Array[]> {
  const signal = AbortSignal.timeout(o.timeoutMs);
  const stream = await openStream(host, peer, protocol, signal);
  try {
    const lp = framed(stream, o.maxBytes);
    await lp.write(body, { signal });
    await stream.close({ signal });
    const frames: Uint8Array[] = [];
    for (;;) {
      const frame = (await lp.read({ signal })).subarray();
      if (frames.length === 0) {
        const retryAfter = decodeBusy(frame);
        if (retryAfter !== undefined) {
          stream.abort(new Error('busy'));
          throw busyError(peer.toString(), protocol, retryAfter);
        }
      }
      if (frame.byteLength === 0) return frames;
      if (frames.length === maxFrames) throw new TransportError('TRANSPORT_BAD_FRAME', `more than ${maxFrames} frames in a response`);
      frames.push(frame);
    }
  } catch (err) {
    stream.abort(err as Error);
    throw classify(err);
  }
}

/**
 * Serves `protocol`: reads one capped request, answers with one frame, or several frames and the
 * empty terminator, or the one busy frame. A handler error resets the stream; the asker sees it fail.
 */
export async function serve(host: Host, protocol: string, respond: Responder, o: ServeOptions): Promise<void> {
  await host.handle(
    protocol,
    async (stream: Stream, connection) => {
      const peer = connection.remotePeer.toString();
      const lp = framed(stream, o.maxBytes);
      let written!: () => void;
      const sent = new Promise<void>((resolve) => (written = resolve));
      try {
        let answer: Uint8Array | Uint8Array[] | Busy;
        try {
          const req = (await lp.read({ signal: AbortSignal.timeout(o.timeoutMs) })).subarray();
          answer = await respond(req, peer, sent);
        } catch (err) {
          // Garbage, oversized or missing requests are the asker's doing: it pays for them.
          o.onBadRequest(peer, err instanceof CairnError ? err : classify(err));
          throw err;
        }
        const signal = AbortSignal.timeout(o.answerTimeoutMs ?? ANSWER_TIMEOUT_MS);
        if (isBusy(answer)) {
          await lp.write(encodeBusy(answer.retryAfterMs), { signal });
        } else if (Array.isArray(answer)) {
          for (const frame of answer) await lp.write(frame, { signal });
          await lp.write(new Uint8Array(0), { signal });
        } else {
          await lp.write(answer, { signal });
        }
        await stream.close({ signal });
      } finally {
        written();
      }
    },
    { maxInboundStreams: o.maxStreamsPerPeer ?? MAX_STREAMS_PER_PEER, maxOutboundStreams: MAX_STREAMS_PER_PEER },
  );
}
