import { toHex } from '../ledger/bytes.ts';
import type { PeerManager } from './peers.ts';
import type { KeepConnected } from './keep-connected.ts';
import type { Sync } from './sync.ts';
import type { TxRelay } from './tx-relay.ts';
import type { ConnectionInfo, Transport } from './transport.ts';
import type { LogLevel } from './node-types.ts';

export interface ConnectionParts {
  /** Our genesis hash, named when a peer of another network is refused. */
  readonly genesis: Uint8Array;
  readonly links: KeepConnected;
  readonly sync: Sync;
  readonly txRelay: TxRelay;
  readonly peers: PeerManager;
  readonly stopped: () => boolean;
  readonly log: (level: LogLevel, message: string, fields?: Record<string, unknown>) => void;
}

/**
 * What a node does as connections come and go (CairnNode wires it once at start): the peer book
 * and the redial hear of them, a peer ready for our protocols is asked its status and sent our
 * mempool, one of another network is banned, a peer gone or banned is forgotten by the sync (a
 * banned one hung up on), and each connection, penalty and ban is logged with what it was.
 */
export function followConnections(t: Transport, o: ConnectionParts): void {
  // Said so that the operator of a node given the wrong genesis (or a peer of another network) sees the fix.
  const ours = toHex(o.genesis).slice(0, 12);
  o.sync.on('foreign', (peer) => o.peers.ban(peer, `another network: it does not speak ours (genesis ${ours}…) or answered with another genesis; every node of a network needs the same genesis.json (--genesis)`, { address: false }));
  // Each penalty, not only the ban it may end in: a ban's reason is its last penalty's.
  o.peers.on('penalty', (peer, score, reason) => o.log('info', 'penalised peer', { peer, score, total: o.peers.score(peer), reason }));
  o.peers.on('ban', (peer, reason) => {
    // In fields, as the penalties': a JSON log is searched by peer, which the message's prose hid.
    o.log('warn', 'banned peer', { peer, reason });
    o.sync.forget(peer);
    void t.hangUp(peer);
  });
  // What each connection was, for the line that says it ended (the transport has forgotten it by then).
  const connections = new Map<string, ConnectionInfo>();
  t.on('peer:connect', (peer, info) => {
    o.links.connected();
    connections.set(peer, info);
    o.log('info', 'peer connected', { peer, direction: info.direction, address: info.remoteAddr, peers: t.peers().length });
  });
  t.on('peer:disconnect', (peer) => {
    o.sync.forget(peer);
    o.links.book.disconnected(peer);
    const info = connections.get(peer);
    connections.delete(peer);
    o.log('info', 'peer disconnected', { peer, direction: info?.direction, address: info?.remoteAddr, peers: t.peers().length });
  });
  t.on('peer:ready', (peer, listenAddrs) => {
    o.links.book.connected(peer, listenAddrs);
    void o.sync.handshake(peer).then((status) => status && o.txRelay.pushMempool(peer));
  });
  t.on('peer:discovered', (peer, addrs) => {
    if (!o.links.book.discovered(peer, addrs)) return;
    o.log('debug', 'peer discovered', { peer, addrs });
    if (!o.stopped()) o.links.book.redial(); // now, not at the next second's round
  });
  t.on('peer:misbehaved', (peer, score, reason) => void o.peers.penalize(peer, score, reason));
  // libp2p refuses every connection between the two as one to itself, and says nothing; peers
  // take both for one node. Once: mDNS announces it every few seconds.
  let shared = false;
  t.on('identity:shared', (addrs) => {
    if (shared) return;
    shared = true;
    o.log('warn', `another node on the local network has this node's peer id ${t.peerId} (its key, p2p-key in the datadir): one datadir is a copy of the other, the two cannot connect, and peers take them for one node; stop one, delete the p2p-key in its datadir, and start it again: it makes a new one`, { addrs });
  });
}
