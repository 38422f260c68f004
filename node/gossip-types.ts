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

export interface GossipOptions {
  readonly transport: Transport;
  readonly names: NetworkNames;
  readonly chain: Chain;
  readonly mempool: Mempool;
  readonly peers: PeerManager;
  readonly clock: () => number;
  /** Timers: how long a compact block's forwarder has before other peers are asked too (node/compact-rebuild.ts). */
  readonly env: Env;
  readonly signatures: TxSignatureVerifier;
  /** Where the peers that brought valid blocks and transactions first are noted, for eviction. */
  readonly records?: PeerRecords;
  readonly stats?: NetworkStats;
  /** The env's monotonic milliseconds, for the records. */
  readonly now?: () => number;
  /** True while no block may be imported from gossip (a snapshot join is under way: node/sync.ts). */
  readonly holdBlocks?: () => boolean;
  /** Relays a transaction admitted from a batch not forwarded whole (node/tx-relay.ts). */
  readonly announceTx?: (tx: Transaction) => void;
  /** Where a validation that failed on our side (a bug, the store) is told: it costs no peer. */
  readonly log?: (level: 'warn', message: string, fields?: Record<string, unknown>) => void;
}
