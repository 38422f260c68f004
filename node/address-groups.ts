/**
 * Where a connection comes from, as the limits on cheap identities see it: its IP (an IPv6
 * host's /64), and its subnet (/24 for IPv4, /48 for IPv6), read from the transport's address text
 * ("/ip4/10.1.2.3/tcp/…", "/ip6/2001:db8::1/tcp/…"). An identity costs nothing; an address does.
 */
export interface AddressGroup {
  readonly ip: string;
  readonly subnet: string;
  /** 127.0.0.0/8 or ::1: the machine's own processes. */
  readonly loopback: boolean;
}

/** The group of `addr`, or undefined for an address without an IP (a DNS name, another transport). */
export function addressGroup(addr: string): AddressGroup | undefined {
  const m = /^\/(ip4|ip6)\/([^/]+)/.exec(addr);
  if (!m) return undefined;
  if (m[1] === 'ip4') {
    const parts = m[2]!.split('.');
    if (parts.length !== 4 || parts.some((p) => !/^\d{1,3}$/.test(p) || Number(p) > 255)) return undefined;
    const ip = parts.map(Number).join('.');
    return { ip, subnet: `${parts.slice(0, 3).map(Number).join('.')}.0/24`, loopback: parts[0] === '127' };
  }
  const groups = expandIpv6(m[2]!);
  if (!groups) return undefined;
  // An IPv4-mapped address (::ffff:a.b.c.d) is that IPv4 address.
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return addressGroup(`/ip4/${groups[6]! >> 8}.${groups[6]! & 0xff}.${groups[7]! >> 8}.${groups[7]! & 0xff}`);
  }
  const hex = groups.map((g) => g.toString(16));
  // One IPv6 host gets a whole /64 (SLAAC, privacy addresses): its addresses cost nothing to
  // change, so the /64 is what the per-IP limit and a ban count, as an IPv4 address.
  return { ip: `${hex.slice(0, 4).join(':')}::/64`, subnet: `${hex.slice(0, 3).join(':')}::/48`, loopback: groups.slice(0, 7).every((g) => g === 0) && groups[7] === 1 };
}

/** The eight 16-bit groups of an IPv6 address, or undefined if it is not one. */
export function expandIpv6(text: string): number[] | undefined {
  let t = text.toLowerCase();
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(t);
  if (v4) {
    const b = v4.slice(1).map(Number);
    if (b.some((x) => x > 255)) return undefined;
    t = t.slice(0, v4.index) + `${((b[0]! << 8) | b[1]!).toString(16)}:${((b[2]! << 8) | b[3]!).toString(16)}`;
  }
  const halves = t.split('::');
  if (halves.length > 2) return undefined;
  const head = halves[0] ? halves[0].split(':') : [];
  const tail = halves.length === 2 && halves[1] ? halves[1].split(':') : [];
  const missing = 8 - head.length - tail.length;
  if ((halves.length === 1 && missing !== 0) || missing < 0) return undefined;
  const all = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill('0'), ...tail];
  if (all.length !== 8 || all.some((g) => !/^[0-9a-f]{1,4}$/.test(g))) return undefined;
  return all.map((g) => parseInt(g, 16));
}
