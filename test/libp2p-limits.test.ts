/**
 * The layer beneath Cairn's own protocols, against peers that abuse it over real libp2p on
 * 127.0.0.1 (other loopback addresses, 127.0.x.y, stand in for other hosts and subnets): sockets
 * that never finish their handshake, and the services libp2p runs for anyone who connects.
 */
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { generateKeyPair } from '@libp2p/crypto/keys';
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
