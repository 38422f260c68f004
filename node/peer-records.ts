import type { ConnectionInfo } from './transport.ts';
import { addressGroup, type AddressGroup } from './address-groups.ts';

/** The request protocols a node serves, each with a budget of its own (node/serving.ts). */
export const SERVED_PROTOCOLS = ['status', 'headers', 'blocks', 'txPush', 'blockTxs', 'headerRange', 'proofs', 'snapshot'] as const;
export type ServedProtocol = (typeof SERVED_PROTOCOLS)[number];

const perProtocol = (): Record<ServedProtocol, number> => ({ status: 0, headers: 0, blocks: 0, txPush: 0, blockTxs: 0, headerRange: 0, proofs: 0, snapshot: 0 });

/**
 * What the node's network has done, for metrics (node/metrics.ts reads it; it keeps no
 * formatting of its own, so that a change of metrics library leaves it alone).
 */
export class NetworkStats {
  /** Bytes of answers served, by protocol. */
  readonly servedBytes = perProtocol();
  readonly servedRequests = perProtocol();
  /** Requests answered "busy, retry later", by protocol. */
  readonly throttled = perProtocol();
  /** Inbound peers hung up to make room (node full), and inbound connections refused by address. */
  evictions = 0;
  refusedInbound = 0;
  /** Gossip messages over the size cap, dropped before decoding. */
  oversizedGossip = 0;
  /** Gossiped transaction batches ignored unvalidated: their address group's waiting room full, or their sender (or its address) banned while they waited (tx-batch-turns.ts). */
  ignoredTxBatches = 0;
  /** Bans, by the kind of offence (see banKind). */
  readonly bans: Record<string, number> = {};
}

/** A metric family: its name, type, help and label names, for whichever library exposes it. */
export interface NetworkMetricFamily {
  readonly name: string;
  readonly type: 'counter' | 'gauge';
  readonly help: string;
  readonly labelNames: readonly string[];
}

/** Every family networkMetrics gives samples of, known before any sample exists (a ban reason before the first ban). */
export const NETWORK_METRIC_FAMILIES: readonly NetworkMetricFamily[] = [
  { name: 'cairn_served_bytes_total', type: 'counter', help: 'Bytes of answers served to peers, by protocol', labelNames: ['protocol'] },
  { name: 'cairn_served_requests_total', type: 'counter', help: 'Requests served to peers, by protocol', labelNames: ['protocol'] },
  { name: 'cairn_throttled_requests_total', type: 'counter', help: 'Requests answered busy (a budget spent), by protocol', labelNames: ['protocol'] },
  { name: 'cairn_peer_evictions_total', type: 'counter', help: 'Inbound peers hung up to make room', labelNames: [] },
  { name: 'cairn_inbound_refused_total', type: 'counter', help: 'Inbound connections refused: banned address, or its share of slots taken', labelNames: [] },
  { name: 'cairn_oversized_gossip_total', type: 'counter', help: 'Gossip messages over the size cap, dropped unread', labelNames: [] },
  { name: 'cairn_ignored_tx_batches_total', type: 'counter', help: "Gossiped transaction batches ignored unvalidated: their address group's waiting room full, or their sender banned", labelNames: [] },
  { name: 'cairn_bans_total', type: 'counter', help: 'Peers banned, by reason', labelNames: ['reason'] },
  { name: 'cairn_banned_addresses', type: 'gauge', help: 'IP addresses currently banned', labelNames: [] },
];

/** One sample of a family of NETWORK_METRIC_FAMILIES. */
export interface NetworkMetric {
  readonly name: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly value: number;
}

/** The network's counters as samples (node/metrics.ts exposes them). */
export function networkMetrics(s: NetworkStats, bannedAddresses: number): NetworkMetric[] {
  const out: NetworkMetric[] = [];
  for (const protocol of SERVED_PROTOCOLS) {
    out.push({ name: 'cairn_served_bytes_total', labels: { protocol }, value: s.servedBytes[protocol] });
    out.push({ name: 'cairn_served_requests_total', labels: { protocol }, value: s.servedRequests[protocol] });
    out.push({ name: 'cairn_throttled_requests_total', labels: { protocol }, value: s.throttled[protocol] });
  }
  out.push({ name: 'cairn_peer_evictions_total', value: s.evictions });
  out.push({ name: 'cairn_inbound_refused_total', value: s.refusedInbound });
  out.push({ name: 'cairn_oversized_gossip_total', value: s.oversizedGossip });
  out.push({ name: 'cairn_ignored_tx_batches_total', value: s.ignoredTxBatches });
  for (const [reason, n] of Object.entries(s.bans)) out.push({ name: 'cairn_bans_total', labels: { reason }, value: n });
  out.push({ name: 'cairn_banned_addresses', value: bannedAddresses });
  return out;
}

/** One connected peer, as eviction and `cairn peers` see it. */
export interface PeerRecord {
  readonly peer: string;
  readonly direction: 'inbound' | 'outbound';
  readonly remoteAddr: string;
  readonly group: AddressGroup | undefined;
  /** When it connected (env monotonic ms, as every time here: they order peers, and time waits). */
  readonly connectedAt: number;
  /** Bytes it sent us (answers to our requests, gossip it forwarded) and bytes we served it. */
  bytesIn: number;
  bytesOut: number;
  /** The last time it was the first to bring us a valid block (gossip or sync), or new valid transactions. */
  lastBlockAt: number | undefined;
  lastTxAt: number | undefined;
  /** Its last status round trip (ms): how close it is. */
  rttMs: number | undefined;
  /** When it was last answered busy, on any protocol. */
  lastThrottledAt: number | undefined;
}

/** The connected peers' records, kept from the transport's events and from what the node sees them do. */
export class PeerRecords {
  private readonly records = new Map<string, PeerRecord>();

  connected(peer: string, info: ConnectionInfo, now: number): PeerRecord {
    const r: PeerRecord = {
      peer,
      direction: info.direction,
      remoteAddr: info.remoteAddr,
      group: addressGroup(info.remoteAddr),
      connectedAt: now,
      bytesIn: 0,
      bytesOut: 0,
      lastBlockAt: undefined,
      lastTxAt: undefined,
      rttMs: undefined,
      lastThrottledAt: undefined,
    };
    this.records.set(peer, r);
    return r;
  }

  disconnected(peer: string): PeerRecord | undefined {
    const r = this.records.get(peer);
    this.records.delete(peer);
    return r;
  }

  get(peer: string): PeerRecord | undefined {
    return this.records.get(peer);
  }

  all(): PeerRecord[] {
    return [...this.records.values()];
  }

  /** It gave us something valid first: what eviction protects. */
  gave(peer: string, what: 'block' | 'tx', now: number): void {
    const r = this.records.get(peer);
    if (!r) return;
    if (what === 'block') r.lastBlockAt = now;
    else r.lastTxAt = now;
  }
}

/** The kind of offence a ban reason names, for the bans-by-reason metric. */
export function banKind(reason: string): string {
  const kinds: [RegExp, string][] = [
    [/^invalid gossip|^gossip/, 'invalid_gossip'],
    [/^oversized gossip/, 'oversized_gossip'],
    [/^bad request/, 'bad_request'],
    [/^sync|^status|^its headers|^headers|^sent |more headers/, 'sync'],
    [/^pushed tx/, 'pushed_tx'],
    [/another network/, 'foreign'],
    [/retry-after/, 'request_flood'],
    [/re-downloads/, 'redownload'],
    [/connected without a working gossip stream/, 'gossip_stream'],
  ];
  return kinds.find(([re]) => re.test(reason))?.[1] ?? 'other';
}
