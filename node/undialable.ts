/**
 * Why a saved address (peers.json) could never reach the peer it names, read from its text as
 * address-groups.ts reads an IP: a hand-edited or damaged file, or a peer that announced its
 * wildcard listen address, must not have the node dial a relay it has no transport for, port 0,
 * a multicast group, or 0.0.0.0 (which Linux takes for this machine: the node would dial itself).
 * A DNS name is dialled (libp2p resolves it), as `--bootstrap` takes one.
 */
import { addressGroup, expandIpv6 } from './address-groups.ts';

/** The reasons `undialable` gives, each a short phrase the start's warning tallies. */
export const UNDIALABLE = {
  relay: 'a relay address (/p2p-circuit; this node dials TCP only)',
  shape: 'not /ip4|ip6|dns/HOST/tcp/PORT (this node dials TCP only)',
  port: 'port 0',
  unspecified: 'an unspecified IP (0.0.0.0/8, ::)',
  multicast: 'a multicast or broadcast IP',
} as const;

/** Why a node could never reach a peer by dialling `addr` (with or without its /p2p/ id), or undefined when it may. */
export function undialable(addr: string): string | undefined {
  if (addr.includes('/p2p-circuit')) return UNDIALABLE.relay;
  const m = /^\/(ip4|ip6|dns|dns4|dns6)\/([^/]+)\/tcp\/(\d{1,5})(\/p2p\/[^/]+)?$/.exec(addr);
  if (!m || Number(m[3]) > 65_535) return UNDIALABLE.shape;
  if (Number(m[3]) === 0) return UNDIALABLE.port;
  if (m[1] !== 'ip4' && m[1] !== 'ip6') return undefined;
  const group = addressGroup(addr);
  if (!group) return UNDIALABLE.shape;
  // An IPv4 address, or an IPv6 one mapping one (::ffff:a.b.c.d), which addressGroup gives as IPv4.
  if (!group.ip.includes(':')) return ipv4Problem(group.ip);
  const groups = expandIpv6(m[2]!)!;
  if (groups.every((g) => g === 0)) return UNDIALABLE.unspecified;
  if (groups[0]! >> 8 === 0xff) return UNDIALABLE.multicast;
  return undefined;
}

/** `ip`: a.b.c.d, as addressGroup writes it. */
function ipv4Problem(ip: string): string | undefined {
  const [a, b, c, d] = ip.split('.').map(Number) as [number, number, number, number];
  // 0.0.0.0/8 is "this network": 0.0.0.0 reaches this machine on Linux, the rest nothing.
  if (a === 0) return UNDIALABLE.unspecified;
  // 224.0.0.0/4, and the limited broadcast address: no one peer is there.
  if ((a >= 224 && a <= 239) || (a === 255 && b === 255 && c === 255 && d === 255)) return UNDIALABLE.multicast;
  return undefined;
}
