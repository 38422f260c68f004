/**
 * A peer written from docs/PROTOCOL.md alone: plain libp2p (TCP, noise, yamux, identify, and
 * gossipsub when asked), none of the node's code. Its messages are built byte by byte as the spec
 * writes them, and it reads the node's answers as raw frames, so that what it sees is what any
 * implementation of the spec would see.
 */
import { createHash } from 'node:crypto';
import { createLibp2p, type Libp2p } from 'libp2p';
import { tcp } from '@libp2p/tcp';
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { identify, type Identify } from '@libp2p/identify';
import { gossipsub, StrictNoSign, type GossipSub, type GossipsubOpts, type Message, type PublishResult } from '@libp2p/gossipsub';
import { lpStream } from '@libp2p/utils';
import { multiaddr } from '@multiformats/multiaddr';
import type { Stream } from '@libp2p/interface';

type PubSub = GossipSub & { publish(topic: string, data: Uint8Array): Promise<PublishResult> };
export type SpecHost = Libp2p<{ identify: Identify; pubsub?: PubSub }>;

const sha256 = (data: Uint8Array) => new Uint8Array(createHash('sha256').update(data).digest());

/** The status message: 01 ‖ genesis ‖ u32 height ‖ tip ‖ u256 total work ‖ u32 pruned height (0: none pruned). */
export function statusBytes(genesis: Uint8Array, height: number, tip: Uint8Array, totalWork: bigint): Uint8Array {
  const out = new Uint8Array(105);
  out[0] = 1;
  out.set(genesis, 1);
  new DataView(out.buffer).setUint32(33, height);
  out.set(tip, 37);
  const work = totalWork.toString(16).padStart(64, '0');
  for (let i = 0; i < 32; i++) out[69 + i] = parseInt(work.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** getHeaders: 01 ‖ count (CompactSize: one byte below 0xfd) ‖ locator hashes ‖ u32 max. */
export function getHeadersBytes(locator: readonly Uint8Array[], max: number): Uint8Array {
  const out = new Uint8Array(2 + 32 * locator.length + 4);
  out[0] = 1;
  out[1] = locator.length;
  locator.forEach((h, i) => out.set(h, 2 + 32 * i));
  new DataView(out.buffer).setUint32(2 + 32 * locator.length, max);
  return out;
}

/** getBlocks: 01 ‖ count ‖ hashes. */
export function getBlocksBytes(hashes: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(2 + 32 * hashes.length);
  out[0] = 1;
  out[1] = hashes.length;
  hashes.forEach((h, i) => out.set(h, 2 + 32 * i));
  return out;
}

/** A header's size as PROTOCOL.md gives it (version 2: with the state root). */
const SPEC_HEADER_BYTES = 152;

/** The header hashes of a headers message (01 ‖ CompactSize count ‖ 152-byte headers), each the SHA-256 of its bytes. */
export function headerHashes(headers: Uint8Array): Uint8Array[] {
  let count = headers[1]!;
  let at = 2;
  if (count === 0xfd) {
    count = (headers[2]! << 8) | headers[3]!; // big-endian, as every integer in Cairn
    at = 4;
  }
  return Array.from({ length: count }, (_, i) => sha256(headers.subarray(at + SPEC_HEADER_BYTES * i, at + SPEC_HEADER_BYTES * (i + 1))));
}

/** The busy frame: FF ‖ u32 retry-after (ms); undefined for any other frame. */
export function busyRetryAfter(frame: Uint8Array): number | undefined {
  return frame.length === 5 && frame[0] === 0xff ? new DataView(frame.buffer, frame.byteOffset, 5).getUint32(1) : undefined;
}

export async function specHost(o: { gossip?: boolean; listen?: string } = {}): Promise<SpecHost> {
  const pubsub: Partial<GossipsubOpts> = { globalSignaturePolicy: StrictNoSign, msgIdFn: (m: Message) => sha256(m.data), allowPublishToZeroTopicPeers: true, maxInboundDataLength: 4 << 20 };
  return (await createLibp2p({
    addresses: { listen: [o.listen ?? '/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { identify: identify(), ...(o.gossip ? { pubsub: gossipsub(pubsub) } : {}) },
  })) as unknown as SpecHost;
}

/** Answers `protocol` with `answer(request)` (one frame). */
export async function answer(host: SpecHost, protocol: string, respond: (request: Uint8Array) => Uint8Array): Promise<void> {
  await host.handle(protocol, async (stream: Stream) => {
    const lp = lpStream(stream);
    const request = (await lp.read({ signal: AbortSignal.timeout(5000) })).subarray();
    await lp.write(respond(request));
    await stream.close();
  });
}

/**
 * Writes one request frame on a new stream to `addr` and reads frames until the empty one (or
 * one frame only, for protocols with a single answer). A busy answer comes back as its one frame.
 */
export async function ask(host: SpecHost, addr: string, protocol: string, request: Uint8Array, o: { many?: boolean; timeoutMs?: number } = {}): Promise<Uint8Array[]> {
  const signal = AbortSignal.timeout(o.timeoutMs ?? 10_000);
  const stream = await host.dialProtocol(multiaddr(addr), protocol, { signal });
  try {
    const lp = lpStream(stream, { maxDataLength: 8 << 20 });
    await lp.write(request, { signal });
    const frames: Uint8Array[] = [];
    for (;;) {
      const frame = (await lp.read({ signal })).subarray();
      if (!o.many || frame.length === 0 || busyRetryAfter(frame) !== undefined) {
        if (frame.length > 0 || !o.many) frames.push(frame);
        return frames;
      }
      frames.push(frame);
    }
  } finally {
    stream.abort(new Error('done'));
  }
}
