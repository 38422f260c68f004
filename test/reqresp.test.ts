/**
 * Request-response framing over real libp2p streams (node/libp2p/reqresp.ts), against a peer
 * that breaks it on purpose: a length prefix that never ends is refused as bad framing after the
 * few bytes a frame here can need, on either side; an asker that stops reading does not hold the
 * answerer's stream past the answer's deadline, and the answer counts as unsent (the responder's
 * `sent`, which the serving budgets count in flight) until it was written out or given up.
 */
import assert from 'node:assert/strict';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { lpStream } from '@libp2p/utils';
import type { Stream } from '@libp2p/interface';
import { createHost, type Host } from '../node/libp2p/host.ts';
import { frameLengthDecoder, request, serve } from '../node/libp2p/reqresp.ts';
import { networkNames } from '../node/protocols.ts';
import { TransportError } from '../node/transport.ts';
import { waitFor } from './helpers/network.ts';

const PROTOCOL = '/cairn/test/echo/1';

async function host(): Promise<Host> {
  return createHost({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [], mdns: false, maxConnections: 10, names: networkNames(new Uint8Array(32)), maxMessageBytes: 1 << 20, gater: {} });
}

describe('request-response framing against a peer that breaks it', function () {
  this.timeout(30_000);
  let server: Host;
  let client: Host;
  const bad: unknown[] = [];
  /** Each answer's `sent`, and whether it has settled. */
  const answers: { settled: boolean }[] = [];

  before(async () => {
    [server, client] = await Promise.all([host(), host()]);
    const respond = async (_request: Uint8Array, _peer: string, sent?: Promise<void>) => {
      const answer = { settled: false };
      answers.push(answer);
      void sent?.then(() => (answer.settled = true));
      return new Uint8Array(4 << 20).fill(7);
    };
    await serve(server, PROTOCOL, respond, { timeoutMs: 5_000, maxBytes: 1024, onBadRequest: (_peer, err) => void bad.push(err), answerTimeoutMs: 500 });
    await client.dial(server.getMultiaddrs()[0]!);
  });
  after(async () => {
    await Promise.all([server?.stop(), client?.stop()]);
  });

  const streamsOnServer = () => server.getConnections().reduce((n, c) => n + c.streams.filter((s) => s.protocol === PROTOCOL).length, 0);

  it('the prefix decoder: a frame of at most 1,024 bytes has a prefix of at most two bytes', () => {
    const decode = frameLengthDecoder(1024);
    assert.equal(decode(Uint8Array.of(0x80, 0x08)), 1024);
    assert.throws(() => decode(Uint8Array.of(0x80)), RangeError, 'one more byte wanted');
    assert.throws(() => decode(Uint8Array.of(0x80, 0x80)), (err: unknown) => err instanceof TransportError && err.code === 'TRANSPORT_BAD_FRAME');
    assert.equal(frameLengthDecoder(127)(Uint8Array.of(0x7f)), 127);
    assert.throws(() => frameLengthDecoder(127)(Uint8Array.of(0x80)), TransportError);
  });

  it('answering: a request whose length prefix never ends is bad framing, not a wait for the deadline', async () => {
    // From a review: lpStream read such a prefix a byte at a time until the deadline, unpunished,
    // starving the event loop's timers while the bytes kept coming.
    const stream = await client.dialProtocol(server.getMultiaddrs()[0]!, PROTOCOL);
    stream.send(new Uint8Array(4096).fill(0x80));
    await waitFor(() => bad.length > 0, 4_000, 'the request to be refused');
    assert.equal((bad[0] as TransportError).code, 'TRANSPORT_BAD_FRAME');
    stream.abort(new Error('done'));
  });

  it('asking: an answer whose length prefix never ends is bad framing', async () => {
    await client.handle('/cairn/test/endless/1', (stream: Stream) => {
      stream.send(new Uint8Array(4096).fill(0x80));
    });
    await assert.rejects(request(server, client.peerId, '/cairn/test/endless/1', new Uint8Array(1), { timeoutMs: 4_000, maxBytes: 1024 }), (err: unknown) => {
      assert.equal((err as TransportError).code, 'TRANSPORT_BAD_FRAME', String(err));
      return true;
    });
  });

  it('an asker that stops reading does not hold the answer past its deadline', async () => {
    // From a review: the answer's writes had no deadline; a peer that never read kept the stream
    // (and a 4 MB answer) for as long as the connection lasted.
    const stream = await client.dialProtocol(server.getMultiaddrs()[0]!, PROTOCOL);
    stream.pause();
    await lpStream(stream).write(new Uint8Array(1));
    await waitFor(() => streamsOnServer() === 1 && answers.length === 1, 4_000, 'the request to arrive');
    assert.equal(answers[0]!.settled, false, 'an answer not read is not sent');
    await waitFor(() => streamsOnServer() === 0, 5_000, 'the answerer to give the stream up');
    await waitFor(() => answers[0]!.settled, 2_000, 'the answer given up to count as sent');
    stream.abort(new Error('done'));
  });

  it('an answer read by its asker counts as sent once written', async () => {
    const reply = await request(client, server.peerId, PROTOCOL, new Uint8Array(1), { timeoutMs: 5_000, maxBytes: 8 << 20 });
    assert.equal(reply.byteLength, 4 << 20);
    await waitFor(() => answers.at(-1)!.settled, 2_000, 'the answer to count as sent');
  });
});
