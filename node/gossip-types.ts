/** What Gossip (node/gossip.ts) is given, and what it tells: its options and events. */
import type { Transaction } from '../ledger/transaction.ts';
import type { Mempool } from '../ledger/mempool.ts';
import type { Chain } from '../consensus/chain.ts';
import type { Env } from './env.ts';
import type { PeerManager } from './peers.ts';
import type { NetworkStats, PeerRecords } from './peer-records.ts';
import type { NetworkNames } from './protocols.ts';
import type { Transport } from './transport.ts';
import type { TxSignatureVerifier } from './tx-signatures.ts';

export interface GossipEvents {
  /** A gossiped block we could not place (unknown parent, or not rebuildable): sync from that peer. */
  orphan: [peer: string];
  invalid: [peer: string, error: unknown];
  /** A compact block whose header holds failed its import: its miner's fault, not the forwarder's (no penalty). */
  failed: [peer: string, error: unknown];
  /** A block from `peer` connected: the peer has it (its status may say less, and is refreshed from it). */
  connected: [peer: string, hash: Uint8Array];
}

/**
 * What became of the compact blocks gossip judged past their proof of work (Gossip.compactStats,
 * shown as cairn_compact_blocks_* by node/metrics.ts). They overlap: a fetch may be hedged, then
 * answered by others or fail.
 */
export interface CompactStats {
  /** Rebuilt from the mempool alone. */
  rebuilt: number;
  /** Some transactions missing from the mempool, asked of peers. */
  fetched: number;
  /** Fetches answered by peers other than the forwarder. */
  fromOthers: number;
  /** Fetches whose forwarder was late, so that other peers were asked too (where any were left to ask). */
  hedged: number;
  /** Not rebuilt (their transactions not had): left to sync. */
  failed: number;
  /** Their parent unknown and their target far easier than the tip's: not rebuilt, the forwarder's chain asked for. */
  unknownParent: number;
  /** Their parent being rebuilt or imported here: waited for it. */
  awaitedParent: number;
  /** A header the same peer sent before (under other short ids): ignored. */
  repeated: number;
}

export interface GossipOptions {
  readonly transport: Transport;
  readonly names: NetworkNames;
  readonly chain: Chain;
  readonly mempool: Mempool;
  readonly peers: PeerManager;
  readonly clock: () => number;
  /** Timers (how long a compact block's forwarder has before other peers are asked too: node/compact-rebuild.ts), and the monotonic clock the records are noted by. */
  readonly env: Env;
  readonly signatures: TxSignatureVerifier;
  /** Where the peers that brought valid blocks and transactions first are noted, for eviction. */
  readonly records?: PeerRecords;
  readonly stats?: NetworkStats;
  /** True while no block may be imported from gossip (a snapshot join is under way: node/sync.ts). */
  readonly holdBlocks?: () => boolean;
  /** Relays a transaction admitted from a batch not forwarded whole (node/tx-relay.ts). */
  readonly announceTx?: (tx: Transaction) => void;
  /** Where a validation that failed on our side (a bug, the store) is told: it costs no peer. */
  readonly log?: (level: 'warn', message: string, fields?: Record<string, unknown>) => void;
}
