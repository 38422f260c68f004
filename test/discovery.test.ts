/**
 * Discovery without multicast: an announcement injected into a real node's libp2p (the event
 * mDNS and the DHT raise) must take the whole road a real one takes — Transport
 * 'peer:discovered' → PeerBook → dial → status handshake → sync — so that the road is proven on
 * machines where test/e2e/discovery.test.ts cannot multicast. Also: which bootstrap addresses a
 * node accepts.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { multiaddr } from '@multiformats/multiaddr';
import { peerIdFromString } from '@libp2p/peer-id';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { checkPeerAddress, PeerAddressError } from '../node/libp2p/addresses.ts';
import { createNode } from '../node/launch.ts';
import { createHost } from '../node/libp2p/host.ts';
import { networkNames } from '../node/protocols.ts';
import { libp2pHost, mineOn, networkParams, sameTip, startNode, stopAll, waitFor, type TestNode } from './helpers/network.ts';
import { tempDir } from './helpers/fixtures.ts';

const params = networkParams({ name: 'cairn-discovery-test' });

describe('discovery: an injected announcement takes the real road', function () {
  this.timeout(60_000);
  let nodes: TestNode[] = [];
  afterEach(async () => {
    await stopAll(nodes);
    nodes = [];
  });

  it('a peer announced to a node that knows nobody is dialled, handshaken and synced from', async () => {
    const a = await startNode(params);
    nodes.push(a);
    await mineOn(a, 20);
    const b = await startNode(params); // no bootstrap, no mDNS: it knows nobody
    nodes.push(b);
    const logs: string[] = [];
    b.node.on('log', (_level, message, fields) => logs.push(`${message} ${JSON.stringify(fields ?? {})}`));
    const aId = a.node.transport.peerId;
    // What @libp2p/mdns announces: the peer id, and its addresses without the /p2p/ part.
    libp2pHost(b.node).safeDispatchEvent('peer:discovery', { detail: { id: peerIdFromString(aId), multiaddrs: [multiaddr(a.addr).decapsulateCode(421)] } });
    const ms = await waitFor(() => sameTip([a, b]), 20_000, 'B to sync A\'s 20 blocks');
    assert.ok(logs.some((l) => l.startsWith('peer discovered') && l.includes(aId)), logs.join('\n'));
    assert.ok(logs.some((l) => l.startsWith('peer connected') && l.includes('"direction":"outbound"') && l.includes(aId)), logs.join('\n'));
    assert.equal(b.node.sync.statuses.get(aId)?.status.height, 20, 'the status handshake ran');
    console.log(`      B dialled, handshook and synced 20 blocks ${ms} ms after the announcement`);
  });
});

describe('discovery: a node that meets itself (a copied datadir)', function () {
  this.timeout(60_000);
  let nodes: TestNode[] = [];
  afterEach(async () => {
    await stopAll(nodes);
    nodes = [];
  });

  it('an mDNS announcement of our own peer id from another host is warned of once, with the fix; the DHT naming us is not', async () => {
    const a = await startNode(params);
    nodes.push(a);
    const warnings: string[] = [];
    a.node.on('log', (level, message, fields) => void (level === 'warn' && warnings.push(`${message} ${JSON.stringify(fields ?? {})}`)));
    const own = peerIdFromString(a.node.transport.peerId);
    // What libp2p hands the transport as mDNS or the DHT announce a peer (node/libp2p/host.ts).
    const heard = a.node.transport as unknown as { heardOf(peer: { id: typeof own; multiaddrs: ReturnType<typeof multiaddr>[] }, via: 'mdns' | 'dht'): void };
    heard.heardOf({ id: own, multiaddrs: [multiaddr('/ip4/127.0.0.1/tcp/7370')] }, 'dht');
    assert.equal(warnings.length, 0, warnings.join('\n'));
    for (let i = 0; i < 3; i++) heard.heardOf({ id: own, multiaddrs: [multiaddr('/ip4/192.0.2.9/tcp/7370')] }, 'mdns');
    assert.equal(warnings.length, 1, warnings.join('\n'));
    assert.ok(warnings[0]!.startsWith(`another node on the local network has this node's peer id ${own.toString()} (its key, p2p-key in the datadir): one datadir is a copy of the other, the two cannot connect, and peers take them for one node; stop one, delete the p2p-key in its datadir, and start it again: it makes a new one {"addrs":["/ip4/192.0.2.9/tcp/7370"]}`), warnings[0]);
  });
});

describe('discovery: what libp2p hears', function () {
  this.timeout(30_000);

  it('every announcement by the DHT (or mDNS) reaches the node, not only a peer\'s first: libp2p\'s own event fires once per peer', async () => {
    const heard: string[] = [];
    const host = await createHost({
      privateKey: await generateKeyPair('Ed25519'),
      listen: ['/ip4/127.0.0.1/tcp/0'],
      bootstrap: [],
      mdns: false,
      maxConnections: 10,
      names: networkNames(new Uint8Array(32)),
      maxMessageBytes: 1 << 20,
      gater: {},
      onDiscovered: (peer) => heard.push(peer.id.toString()),
    });
    try {
      const other = peerIdFromPrivateKey(await generateKeyPair('Ed25519'));
      // A peer that was forgotten after failed dials and is back: announced again and again.
      for (let i = 0; i < 3; i++) {
        (host.services.dht as unknown as EventTarget).dispatchEvent(new CustomEvent('peer', { detail: { id: other, multiaddrs: [multiaddr('/ip4/127.0.0.1/tcp/1')] } }));
      }
      assert.deepEqual(heard, [other.toString(), other.toString(), other.toString()]);
    } finally {
      await host.stop();
    }
  });
});

describe('bootstrap addresses', () => {
  let id: string;
  before(async () => {
    id = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString();
  });

  it('accepts a host, a TCP port and a peer id', () => {
    for (const addr of [`/ip4/127.0.0.1/tcp/7370/p2p/${id}`, `/ip6/::1/tcp/7370/p2p/${id}`, `/dns4/node.example/tcp/7370/p2p/${id}`]) assert.equal(checkPeerAddress(addr), id);
  });

  it('refuses, naming the value and why, what could never be dialled', () => {
    const cases: [string, RegExp][] = [
      ['127.0.0.1:7370', /must start with "\/"/],
      ['/ip4/300.1.1.1/tcp/7370', /Invalid IPv4/],
      ['/ip4/127.0.0.1/tcp/7370', /does not end in \/p2p\/PEER_ID/],
      [`/ip4/127.0.0.1/tcp/7370/p2p/not-a-peer-id`, /is not a peer id/],
      [`/ip4/127.0.0.1/udp/7370/p2p/${id}`, /no TCP port/],
      [`/p2p/${id}`, /does not start with \/ip4/],
      [`/ip4/127.0.0.1/tcp/7370/ws/p2p/${id}`, /only \/HOST\/tcp\/PORT\/p2p\/PEER_ID/],
    ];
    for (const [addr, why] of cases) {
      assert.throws(() => checkPeerAddress(addr), (err: unknown) => {
        assert.ok(err instanceof PeerAddressError);
        assert.equal(err.code, 'BAD_PEER_ADDRESS');
        assert.ok(err.message.startsWith(`"${addr}" is not a peer address: `), err.message);
        assert.match(err.message, why);
        return true;
      });
    }
  });

  it('a node refuses a malformed bootstrap address before it opens anything', () => {
    const dir = tempDir('cairn-bad-bootstrap-');
    try {
      assert.throws(() => createNode({ datadir: `${dir.path}/data`, params, bootstrap: ['/ip4/127.0.0.1/tcp/1'] }), PeerAddressError);
      assert.equal(existsSync(`${dir.path}/data`), false);
    } finally {
      dir.remove();
    }
  });
});
