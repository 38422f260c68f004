/**
 * The layer beneath Cairn's own protocols, against peers that abuse it over real libp2p on
 * 127.0.0.1 (other loopback addresses, 127.0.x.y, stand in for other hosts and subnets): sockets
 * that never finish their handshake, and the services libp2p runs for anyone who connects.
 */
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { generateKeyPair, publicKeyToProtobuf } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { multiaddr } from '@multiformats/multiaddr';
import { TopicValidatorResult } from '@libp2p/gossipsub';
import { createLibp2p, type Libp2p } from 'libp2p';
import { tcp } from '@libp2p/tcp';
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { identify } from '@libp2p/identify';
import type { Stream } from '@libp2p/interface';
import { MAX_INBOUND_STREAMS_PER_CONNECTION, createHost, type Host } from '../node/libp2p/host.ts';
import { Libp2pTransport } from '../node/libp2p/transport.ts';
import { gossipTopics, networkNames } from '../node/protocols.ts';
import { networkParams, startNode, stopAll, waitFor, type TestNode } from './helpers/network.ts';

async function plainHost(): Promise<Host> {
  return createHost({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [], mdns: false, maxConnections: 10, names: networkNames(new Uint8Array(32)), maxMessageBytes: 1 << 20, gater: {} });
}

/** A TCP socket from `localAddress` to `port` that says nothing: a handshake never finished. `closed` hears when the target ends it. */
function silentSocket(localAddress: string, port: number, closed: () => void): Socket {
  const socket = connect({ host: '127.0.0.1', port, localAddress });
  socket.on('error', () => {}); // a refused socket is reset: its 'close' is what counts
  socket.once('close', closed);
  return socket;
}

describe('libp2p limits: sockets that never finish their handshake', function () {
  this.timeout(60_000);
  let target: TestNode | undefined;
  let honest: Host | undefined;
  const sockets: Socket[] = [];

  after(async () => {
    for (const s of sockets) s.destroy();
    await honest?.stop();
    await stopAll([target]);
  });

  it('hold only their addresses\' shares of the pending handshakes: a peer from elsewhere still connects', async () => {
    // From a review: libp2p keeps 10 inbound handshakes pending for the whole node, each up to
    // 10 s, and the gate counted only finished connections, so 10 silent sockets from one address
    // (or a few subnets) refused every other inbound connection, again and again.
    target = await startNode(networkParams(), [], { connectionLimits: { limitLoopback: true } });
    const port = Number(target.addr.split('/')[4]);
    let closedByTarget = 0;
    // One host with more silent sockets than the node has connections, two more in other subnets
    // with six each: the per-IP share is four, so twelve handshakes are pending, all in vain.
    const silent = { '127.0.1.2': 70, '127.0.2.2': 6, '127.0.3.2': 6 };
    for (const [from, count] of Object.entries(silent)) {
      for (let i = 0; i < count; i++) sockets.push(silentSocket(from, port, () => closedByTarget++));
    }
    // Once the target closed what is beyond those shares, it has seen every socket.
    await waitFor(() => closedByTarget >= sockets.length - 12, 5_000, 'the sockets beyond each address\'s share to be refused');
    honest = await plainHost();
    const conn = await honest.dial(multiaddr(target.addr), { signal: AbortSignal.timeout(5_000) }).catch((err: Error) => assert.fail(`an honest peer was refused: ${err.message}`));
    assert.equal(conn.remotePeer.toString(), target.node.transport.peerId);
  });
});

describe('libp2p limits: the DHT keeps nothing strangers ask it to store', function () {
  this.timeout(60_000);
  let target: Host | undefined;
  let stranger: Host | undefined;

  after(async () => {
    await Promise.all([stranger?.stop(), target?.stop()]);
  });

  it('provider records and values put by a peer are not kept (each cost it nothing, and they were kept a day, without bound)', async () => {
    // From a review: kad-dht, in server mode, stored every ADD_PROVIDER (any key, the sender as
    // provider) and every valid PUT_VALUE (a "/pk/" record is any public key under its own hash)
    // in libp2p's in-memory datastore; a peer in a loop grew the node's heap without end.
    [target, stranger] = await Promise.all([plainHost(), plainHost()]);
    const dht = networkNames(new Uint8Array(32)).dht;
    await stranger.dial(target.getMultiaddrs()[0]!);
    await waitFor(async () => (await stranger!.peerStore.get(target!.peerId)).protocols.includes(dht), 10_000, 'the stranger to know the node as a DHT server');
    // Keys as CIDs of SHA-256 multihashes (an RSA peer id's), what kad-dht takes provider records for.
    const keys = await Promise.all(Array.from({ length: 3 }, async () => peerIdFromPrivateKey(await generateKeyPair('RSA', 2048))));
    const drain = async (events: AsyncIterable<{ name: string }>): Promise<string[]> => {
      const names: string[] = [];
      try {
        for await (const event of events) names.push(event.name);
      } catch (err) {
        if ((err as Error).name !== 'TimeoutError' && (err as Error).name !== 'AbortError') throw err;
      }
      return names;
    };
    for (const key of keys) assert.ok((await drain(stranger.services.dht.provide(key.toCID(), { signal: AbortSignal.timeout(5_000) }))).includes('PEER_RESPONSE'), 'the node was asked');
    const pk = keys[0]!;
    const pkKey = Uint8Array.from([...new TextEncoder().encode('/pk/'), ...pk.toMultihash().bytes]);
    await drain(stranger.services.dht.put(pkKey, publicKeyToProtobuf(pk.publicKey!), { signal: AbortSignal.timeout(5_000) }));
    // Its DHT streams end once it has handled what came on them.
    const dhtStreams = () => target!.getConnections().reduce((n, c) => n + c.streams.filter((s) => s.protocol === dht).length, 0);
    await waitFor(() => dhtStreams() === 0, 5_000, 'the node to handle every DHT message');
    await stranger.stop();
    stranger = undefined;
    // With nobody to ask, what the node tells first is what it keeps.
    for (const key of keys) assert.ok(!(await drain(target.services.dht.findProviders(key.toCID(), { signal: AbortSignal.timeout(1_000) }))).includes('PROVIDER'), `a provider record for ${key.toCID().toString()} was kept`);
    assert.ok(!(await drain(target.services.dht.get(pkKey, { signal: AbortSignal.timeout(1_000) }))).includes('VALUE'), 'a /pk/ record was kept');
  });
});

/** What a test reads of gossipsub's insides, and the raw RPCs a hostile peer writes. */
interface GossipInsides {
  mcache: { msgs: Map<string, { message: { topic: string } }> };
  streamsOutbound: Map<string, unknown>;
  sendRpc(peer: string, rpc: { subscriptions: { subscribe: boolean; topic: string }[]; messages: { topic: string; data: Uint8Array }[] }): boolean;
}

describe('libp2p limits: gossip on topics the node does not take', function () {
  this.timeout(60_000);
  let target: Host | undefined;
  let stranger: Host | undefined;

  after(async () => {
    await Promise.all([stranger?.stop(), target?.stop()]);
  });

  it('is dropped: no subscriptions kept, nothing cached', async () => {
    // From a review: gossipsub checks a message against the topic's validator, and scores its
    // sender by the topic's parameters; on a topic without either, every message was valid, put
    // in the message cache and served to whoever asked for it, its sender never scored, and a
    // peer could fill the node's memory with 8 MiB messages at the speed of its link.
    [target, stranger] = await Promise.all([plainHost(), plainHost()]);
    const topic = gossipTopics(networkNames(new Uint8Array(32)))[0]!;
    target.services.pubsub.subscribe(topic);
    await stranger.dial(target.getMultiaddrs()[0]!);
    const insides = (host: Host) => host.services.pubsub as unknown as GossipInsides;
    const targetId = target.peerId.toString();
    await waitFor(() => insides(stranger!).streamsOutbound.has(targetId), 10_000, 'a gossip stream to the node');
    const junk = Array.from({ length: 20 }, (_, i) => `junk-${i}`);
    const sent = insides(stranger).sendRpc(targetId, {
      subscriptions: junk.map((t) => ({ subscribe: true, topic: t })),
      messages: junk.map((t, i) => ({ topic: t, data: new Uint8Array(1024).fill(i) })),
    });
    assert.ok(sent);
    // A message on the node's own topic after them: once its validator has seen it, the junk was read.
    let seen = false;
    target.services.pubsub.topicValidators.set(topic, () => {
      seen = true;
      return TopicValidatorResult.Ignore;
    });
    insides(stranger).sendRpc(targetId, { subscriptions: [], messages: [{ topic, data: Uint8Array.of(1) }] });
    await waitFor(() => seen, 5_000, 'the message on the node\'s topic');
    const cached = [...insides(target).mcache.msgs.values()].filter((m) => m.message.topic.startsWith('junk-'));
    assert.equal(cached.length, 0, 'messages on topics the node does not take were cached');
    assert.deepEqual(junk.filter((t) => target!.services.pubsub.getSubscribers(t).length > 0), [], 'subscriptions to topics the node does not take were kept');
  });
});

describe('libp2p limits: streams that never say their protocol', function () {
  this.timeout(60_000);
  let target: Host | undefined;
  let stranger: Host | undefined;

  after(async () => {
    await Promise.all([stranger?.stop(), target?.stop()]);
  });

  it(`a peer holds at most ${MAX_INBOUND_STREAMS_PER_CONNECTION} of them at once on a connection`, async () => {
    // From a review: yamux let a connection open 1,000 streams, each waiting 10 s for its
    // protocol at about 17 KB of the node's heap: 15 MB a connection, and 1 GB over 64 of them,
    // kept for a few bytes every 10 s.
    [target, stranger] = await Promise.all([plainHost(), plainHost()]);
    const conn = await stranger.dial(target.getMultiaddrs()[0]!);
    await waitFor(async () => (await stranger!.peerStore.get(target!.peerId)).protocols.length > 0, 10_000, 'identify to be done');
    const muxer = (conn as unknown as { muxer: { createStream(): Promise<{ status: string }> } }).muxer;
    const opened: { status: string }[] = [];
    // Raw yamux streams: opened, and then not a byte on them.
    for (let i = 0; i < 600; i++) opened.push(await muxer.createStream());
    const onTarget = () => target!.getConnections().reduce((n, c) => n + c.streams.filter((s) => s.direction === 'inbound').length, 0);
    const refused = () => opened.filter((s) => s.status !== 'open').length;
    await waitFor(() => onTarget() + refused() >= opened.length, 5_000, 'the node to take or refuse every stream');
    assert.ok(onTarget() <= MAX_INBOUND_STREAMS_PER_CONNECTION, `${onTarget()} streams held`);
  });
});

/** A gossipsub RPC, length-prefixed, that subscribes to `topic` (protobuf by hand: RPC.subscriptions = [{ subscribe: true, topic }]). */
function subscribeRpc(topic: string): Uint8Array {
  const name = new TextEncoder().encode(topic);
  const sub = Uint8Array.from([0x08, 0x01, 0x12, name.length, ...name]);
  const rpc = Uint8Array.from([0x0a, sub.length, ...sub]);
  return Uint8Array.from([rpc.length, ...rpc]);
}

describe('libp2p limits: a gossip peer that never reads', function () {
  this.timeout(60_000);
  let target: Host | undefined;
  let stranger: Libp2p | undefined;

  after(async () => {
    await Promise.all([stranger?.stop(), target?.stop()]);
  });

  it("costs the node at most a bounded queue of what it sends it: its gossip stream is cut once that is full", async () => {
    // From a review: gossipsub writes to a peer's stream without waiting for it to drain, and
    // libp2p's streams queue without bound: a peer subscribed to the node's topics that stopped
    // reading (its yamux window shut) had every block and batch the node sent it kept in memory
    // for as long as the connection lasted.
    target = await plainHost();
    const topic = gossipTopics(networkNames(new Uint8Array(32)))[0]!;
    target.services.pubsub.subscribe(topic);
    stranger = await createLibp2p({ addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] }, transports: [tcp()], connectionEncrypters: [noise()], streamMuxers: [yamux()], services: { identify: identify() } });
    // It takes the node's gossip stream and never reads it: yamux gives the node no more window.
    await stranger.handle(['/meshsub/1.1.0', '/meshsub/1.2.0'], (stream: Stream) => stream.pause());
    await stranger.dial(target.getMultiaddrs()[0]!);
    const mine = await stranger.dialProtocol(target.peerId, '/meshsub/1.1.0');
    mine.send(subscribeRpc(topic));
    const strangerId = stranger.peerId;
    await waitFor(() => target!.services.pubsub.getSubscribers(topic).some((p) => p.equals(strangerId)), 10_000, 'the stranger to subscribe');
    const toStranger = () => target!.getConnections(strangerId).flatMap((c) => c.streams).filter((s) => s.direction === 'outbound' && s.protocol?.startsWith('/meshsub/'));
    await waitFor(() => toStranger().length === 1, 10_000, "the node's gossip stream to the stranger");
    const stream = toStranger()[0]!;
    // 12 MiB of gossip, more than the node queues for one peer.
    for (let i = 0; i < 24; i++) await target.services.pubsub.publish(topic, new Uint8Array(512 << 10).fill(i));
    await waitFor(() => stream.status !== 'open', 5_000, 'the stream to the peer that never reads to be cut');
  });

  it('is then hung up on, unpunished: gossipsub writes to it no more, and it held its places in the meshes', async () => {
    // From a review: gossipsub cut the stream, and never made another, but kept the peer in its
    // meshes, where it took a place (of 6 to 12 a topic) that a peer that reads would have had,
    // for as long as it kept the connection.
    const names = networkNames(new Uint8Array(32));
    const stopLater: Libp2p[] = [];
    const node = await Libp2pTransport.create({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [], mdns: false, maxConnections: 10, names, maxMessageBytes: 1 << 20, gate: { denied: () => false } });
    try {
      const penalties: string[] = [];
      node.on('peer:misbehaved', (_peer, score, reason) => penalties.push(`${score} ${reason}`));
      const topic = gossipTopics(names)[0]!;
      node.subscribe(topic, async () => 'ignore');
      const stalled = await createLibp2p({ addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] }, transports: [tcp()], connectionEncrypters: [noise()], streamMuxers: [yamux()], services: { identify: identify() } });
      stopLater.push(stalled);
      await stalled.handle(['/meshsub/1.1.0', '/meshsub/1.2.0'], (stream: Stream) => stream.pause());
      await stalled.dial(node.host.getMultiaddrs()[0]!);
      (await stalled.dialProtocol(node.host.peerId, '/meshsub/1.1.0')).send(subscribeRpc(topic));
      const stalledId = stalled.peerId.toString();
      const pubsub = node.host.services.pubsub;
      await waitFor(() => pubsub.getMeshPeers(topic).includes(stalledId), 10_000, 'the peer in the mesh');
      for (let i = 0; i < 24; i++) await node.publish(topic, new Uint8Array(512 << 10).fill(i));
      await waitFor(() => !pubsub.streamsOutbound.has(stalledId), 5_000, 'its gossip stream to be cut');
      await waitFor(() => node.peers().length === 0, 15_000, 'the peer that never reads to be hung up on');
      assert.deepEqual(pubsub.getMeshPeers(topic), []);
      assert.deepEqual(penalties, [], 'not reading is no offence');
    } finally {
      await Promise.all([node.stop(), ...stopLater.map((p) => p.stop())]);
    }
  });
});
