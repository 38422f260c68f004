/** What a Sync (node/sync.ts) is given, and what it tells: its options and events. */
import type { Chain } from '../consensus/chain.ts';
import type { SaneBlock } from '../consensus/sanity.ts';
import type { Env } from './env.ts';
import type { PeerManager } from './peers.ts';
import type { PeerRecords } from './peer-records.ts';
import type { Serve } from './serving.ts';
import type { AdmitBlocks, RoomForBlocks } from './chain-server.ts';
import type { NetworkNames } from './protocols.ts';
import type { Transport } from './transport.ts';

/** How often a sync's progress is logged: a line per batch would be one every few milliseconds. */
export const SYNC_LOG_INTERVAL_MS = 10_000;

export interface SyncProgress {
  readonly height: number;
  readonly target: number;
  readonly peer: string;
}

export interface SyncEvents {
  progress: [progress: SyncProgress];
  /** A peer answered our status with another genesis, or does not speak our protocols. */
  foreign: [peer: string];
  /** Headers checked up to this height of the peer's chain (bodies come after). */
  headers: [height: number];
  /** The headers are checked; bodies are about to be downloaded, this many blocks of them. */
  download: [blocks: number];
  /** A sync ended: caught up with every peer known ahead, or nobody left to ask. */
  idle: [];
  /** A peer's chain was taken: its blocks are downloaded and imported (our tip moved). */
  took: [];
  /** A peer of our network said what its chain is (after any sync it starts has begun). */
  status: [peer: string];
  /** A snapshot join began (true) or ended (false): gossip holds its blocks meanwhile. */
  joining: [active: boolean];
}

export interface SyncOptions {
  readonly transport: Transport;
  readonly env: Env;
  readonly names: NetworkNames;
  readonly chain: Chain;
  readonly peers: PeerManager;
  readonly clock: () => number;
  readonly serve: Serve;
  readonly admitBlocks?: AdmitBlocks;
  readonly roomForBlocks?: RoomForBlocks;
  /** Where round trips and blocks given are noted, for eviction. */
  readonly records?: PeerRecords;
  /** Verifies a batch's signatures on every core as it arrives, ahead of its import. */
  readonly preverify?: (blocks: readonly SaneBlock[]) => Promise<void>;
  /**
   * Snapshot sync (node/snapshot-sync.ts): a node at genesis joins from the state at a snapshot
   * height (multiples of `interval`) rather than from genesis, when the best chain is long enough.
   */
  readonly snapshotSync?: { readonly interval: number };
  readonly log?: (level: 'info' | 'warn' | 'debug', message: string, fields?: Record<string, unknown>) => void;
}
