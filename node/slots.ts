import type { PeerRecord, PeerRecords } from './peer-records.ts';
import { addressGroup } from './address-groups.ts';

/** How many inbound connections a node takes, in all and from one address or subnet. */
export interface SlotLimits {
  /** Inbound connections at most; the node's other connections are kept for the peers it dials. */
  readonly maxInbound: number;
  readonly maxInboundPerIp: number;
  /** Per /24 (IPv4) or /48 (IPv6). */
  readonly maxInboundPerSubnet: number;
  /** Whether loopback peers (127.0.0.0/8, ::1: this machine's own processes) count against the two above. */
  readonly limitLoopback: boolean;
}

/** 48 of libp2p's 64 connections inbound, 4 per IP, 8 per subnet: 16 kept for the peers a node dials. */
export const DEFAULT_SLOT_LIMITS: SlotLimits = { maxInbound: 48, maxInboundPerIp: 4, maxInboundPerSubnet: 8, limitLoopback: false };

/** How many peers each protection keeps (after Bitcoin Core's eviction, node/slots.ts chooseEviction). */
const PROTECT = { recentBlocks: 4, recentTxs: 4, subnets: 4, latency: 8 } as const;
/**
 * What a peer must have taken from us to count as a taker: more than the status answers and
 * pushes every connection is served. Below it, an honest peer that only handshook would go
 * before an idle attacker that never asked for anything (measured by a review: 8 honest peers of
 * 200 bytes each were the first 8 evicted, for 40 idle attacker connections).
 */
const TAKER_MIN_BYTES = 1024 * 1024;

/**
 * The inbound peer to hang up to make room, or undefined when every one is protected.
 *
 * Givers keep their slots: the four that most recently brought us a valid block first, and the
 * four that most recently brought new valid transactions. Then pure takers go first (they were
 * served at least TAKER_MIN_BYTES and never gave; the one that took the most). Then, as Bitcoin Core does, four peers from
 * distinct subnets are kept (by a keyed hash of the subnet, which an attacker cannot aim at), the
 * eight with the lowest status round trip, and the older half of the rest by connection time;
 * of what remains, the subnet with the most connections loses its youngest.
 */
export function chooseEviction(candidates: readonly PeerRecord[], salt: number): PeerRecord | undefined {
  let left = [...candidates];
  const protect = (ranked: PeerRecord[], n: number) => {
    const kept = new Set(ranked.slice(0, n));
    left = left.filter((p) => !kept.has(p));
  };
  protect(left.filter((p) => p.lastBlockAt !== undefined).sort((a, b) => b.lastBlockAt! - a.lastBlockAt!), PROTECT.recentBlocks);
  protect(left.filter((p) => p.lastTxAt !== undefined).sort((a, b) => b.lastTxAt! - a.lastTxAt!), PROTECT.recentTxs);
  const takers = left.filter((p) => p.bytesOut >= TAKER_MIN_BYTES && p.lastBlockAt === undefined && p.lastTxAt === undefined).sort((a, b) => b.bytesOut - a.bytesOut || b.connectedAt - a.connectedAt);
  if (takers.length > 0) return takers[0];
  const bySubnet = new Map<string, PeerRecord[]>();
  for (const p of left) bySubnet.set(subnetOf(p), [...(bySubnet.get(subnetOf(p)) ?? []), p]);
  const keyed = [...bySubnet.keys()].sort((a, b) => keyedHash(b, salt) - keyedHash(a, salt));
  protect(keyed.slice(0, PROTECT.subnets).map((k) => bySubnet.get(k)!.reduce((x, y) => (x.connectedAt <= y.connectedAt ? x : y))), PROTECT.subnets);
  protect(left.filter((p) => p.rttMs !== undefined).sort((a, b) => a.rttMs! - b.rttMs!), PROTECT.latency);
  protect([...left].sort((a, b) => a.connectedAt - b.connectedAt), Math.floor(left.length / 2));
  if (left.length === 0) return undefined;
  const groups = new Map<string, PeerRecord[]>();
  for (const p of left) groups.set(subnetOf(p), [...(groups.get(subnetOf(p)) ?? []), p]);
  const largest = [...groups.values()].sort((a, b) => b.length - a.length || youngest(b).connectedAt - youngest(a).connectedAt)[0]!;
  return youngest(largest);
}

function subnetOf(p: PeerRecord): string {
  return p.group?.subnet ?? p.remoteAddr;
}

function youngest(peers: readonly PeerRecord[]): PeerRecord {
  return peers.reduce((x, y) => (y.connectedAt > x.connectedAt ? y : x));
}

function keyedHash(text: string, salt: number): number {
  let h = (2166136261 ^ salt) >>> 0;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619) >>> 0;
  return h;
}

/**
 * Inbound slots: refuses an address that already holds its share (before any handshake, through
 * the transport's gate), and once a connection is up, says who must go — the newcomer if its
 * address is over its share (a race the gate could not see), or, when the node is full, the peer
 * chooseEviction picks (the newcomer itself if every other one is protected).
 */
export class Slots {
  readonly limits: SlotLimits;
  private readonly records: PeerRecords;
  private readonly salt: number;

  constructor(records: PeerRecords, limits: Partial<SlotLimits> = {}, salt = 0) {
    this.records = records;
    this.limits = { ...DEFAULT_SLOT_LIMITS, ...limits };
    this.salt = salt;
  }

  /**
   * Why an inbound connection from `remoteAddr` must be refused now, if it must. `open` (the
   * transport's inbound connections, handshakes unfinished included) counts beside the connected
   * peers: a socket that never finishes its handshake holds one of the transport's few pending
   * places, and from one address there would be no end of them.
   */
  refuse(remoteAddr: string, open: readonly string[] = []): string | undefined {
    const g = addressGroup(remoteAddr);
    if (!g || (g.loopback && !this.limits.limitLoopback)) return undefined;
    const connected = this.records.all().filter((r) => r.direction === 'inbound');
    const known = new Set(connected.map((r) => withoutPeerId(r.remoteAddr)));
    const handshaking = open.filter((a) => !known.has(withoutPeerId(a)));
    const groups = [...connected.flatMap((r) => r.group ?? []), ...handshaking.flatMap((a) => addressGroup(a) ?? [])];
    if (groups.filter((o) => o.ip === g.ip).length >= this.limits.maxInboundPerIp) return `${this.limits.maxInboundPerIp} inbound connections from ${g.ip} already`;
    if (groups.filter((o) => o.subnet === g.subnet).length >= this.limits.maxInboundPerSubnet) return `${this.limits.maxInboundPerSubnet} inbound connections from ${g.subnet} already`;
    return undefined;
  }

  /** After `peer` connected: the peer to hang up, and why, if one must go. */
  afterConnect(peer: string): { peer: string; reason: string; eviction: boolean } | undefined {
    const newcomer = this.records.get(peer);
    if (!newcomer || newcomer.direction !== 'inbound') return undefined;
    const inbound = this.records.all().filter((r) => r.direction === 'inbound');
    const g = newcomer.group;
    if (g && (!g.loopback || this.limits.limitLoopback)) {
      const others = inbound.filter((r) => r !== newcomer && r.group);
      if (others.filter((r) => r.group!.ip === g.ip).length >= this.limits.maxInboundPerIp) return { peer, reason: `over ${this.limits.maxInboundPerIp} inbound connections from ${g.ip}`, eviction: false };
      if (others.filter((r) => r.group!.subnet === g.subnet).length >= this.limits.maxInboundPerSubnet) return { peer, reason: `over ${this.limits.maxInboundPerSubnet} inbound connections from ${g.subnet}`, eviction: false };
    }
    if (inbound.length <= this.limits.maxInbound) return undefined;
    const victim = chooseEviction(inbound.filter((r) => r !== newcomer), this.salt);
    return victim ? { peer: victim.peer, reason: `evicted to make room for ${peer}`, eviction: true } : { peer, reason: `no room: all ${this.limits.maxInbound} inbound slots hold protected peers`, eviction: false };
  }
}

/** One connection's address as a socket's and as a connected peer's (which ends in its id). */
function withoutPeerId(addr: string): string {
  const at = addr.indexOf('/p2p/');
  return at < 0 ? addr : addr.slice(0, at);
}
