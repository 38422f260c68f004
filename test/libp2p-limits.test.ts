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
import { createHost, type Host } from '../node/libp2p/host.ts';
import { networkNames } from '../node/protocols.ts';
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
