import { multiaddr } from '@multiformats/multiaddr';
import { peerIdFromString } from '@libp2p/peer-id';
import { CairnError } from '../../ledger/errors.ts';

/** A peer address this node could never dial: refused before the node starts, naming the value. */
export class PeerAddressError extends CairnError {
  readonly address: string;
  constructor(address: string, why: string) {
    super('BAD_PEER_ADDRESS', `"${address}" is not a peer address: ${why}; expected /ip4/HOST/tcp/PORT/p2p/PEER_ID (a node prints its own in "node started" and cairn status)`);
    this.address = address;
  }
}

const HOSTS = new Set(['ip4', 'ip6', 'dns', 'dns4', 'dns6']);

/**
 * Checks a bootstrap address: a multiaddr of a host and a TCP port (the one transport a Cairn
 * node speaks) ending in /p2p/ and a valid peer id. Without the id a dial cannot check whom it
 * reached, and the node could not tell a bootstrap peer from any other. Returns the peer id.
 */
export function checkPeerAddress(address: string): string {
  let components;
  try {
    components = multiaddr(address).getComponents();
  } catch (err) {
    throw new PeerAddressError(address, (err as Error).message);
  }
  const [host, tcp] = components;
  const last = components.at(-1);
  if (!host || !HOSTS.has(host.name)) throw new PeerAddressError(address, 'it does not start with /ip4, /ip6 or /dns');
  if (tcp?.name !== 'tcp') throw new PeerAddressError(address, 'it names no TCP port after the host');
  if (last?.name !== 'p2p' || last.value === undefined) throw new PeerAddressError(address, 'it does not end in /p2p/PEER_ID');
  try {
    peerIdFromString(last.value);
  } catch {
    throw new PeerAddressError(address, `"${last.value}" is not a peer id`);
  }
  if (components.length !== 3) throw new PeerAddressError(address, 'only /HOST/tcp/PORT/p2p/PEER_ID is dialled');
  return last.value;
}
