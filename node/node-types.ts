// What a CairnNode (node/node.ts) is made of and what it tells: its parts, the services that run
// beside it, the store of its pending transactions, its events. Kept apart from the class as
// consensus/chain-types.ts is from Chain, so that node.ts reads as the wiring; it re-exports them.

import type { PeerStore } from './peer-file.ts';
import type { KvStore } from '../ledger/kv.ts';
import type { Mempool } from '../ledger/mempool.ts';
import type { MempoolPolicy } from '../ledger/mempool-rules.ts';
import type { ChainParams } from '../ledger/genesis.ts';
import type { Block } from '../ledger/block.ts';
import type { OrphanLimits } from '../consensus/orphans.ts';
import type { Env } from './env.ts';
import type { BanStore } from './peers.ts';
import type { Checkpoint } from '../consensus/header-rules.ts';
import type { CheckpointStore } from './checkpoint.ts';
import type { ServingLimits } from './serving-limits.ts';
import type { SlotLimits } from './slots.ts';
import type { NetworkNames } from './protocols.ts';
import type { SignatureVerifier } from './tx-signatures.ts';
import type { ConnectionGate, Transport } from './transport.ts';
import type { HistoryStore } from './history-check.ts';
import { CairnError } from '../ledger/errors.ts';

/**
 * A start that a stop asked meanwhile ended between two of its steps (CairnNode.start): no
 * failure, the stop goes on to close what the start had opened.
 */
export class StoppedDuringStart extends CairnError {
  constructor(after: string) {
    super('NODE_STOPPED_DURING_START', `a stop was asked during the start: it ended after ${after}`);
  }
}

/** Pending transactions kept across restarts (a file for real nodes). */
export interface MempoolStore {
  /** `problem`: why the saved mempool was not read, or only in part (a damaged or unreadable file). */
  load(mempool: Mempool, now: number): Promise<{ admitted: number; dropped: number; problem?: string }>;
  save(mempool: Mempool): Promise<void>;
}

/** Something that runs beside a node and stops with it: the miner, the RPC server, metrics. */
export interface NodeService {
  start(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Everything a node is made of, passed in: the real launcher (node/launch.ts) gives LevelDB,
 * libp2p, worker threads and the machine's clock; the simulator (sim/) gives memory, its own
 * network and simulated time. `Node` is what the services are given: the CairnNode itself
 * (node/node.ts names this `NodeParts`), a parameter so that this file needs nothing of the class.
 */
export interface NodePartsOf<Node> {
  readonly params: ChainParams;
  readonly env: Env;
  readonly openStore: () => Promise<KvStore>;
  /** Makes the transport once the node knows its network names and who is banned. */
  readonly createTransport: (gate: ConnectionGate, names: NetworkNames) => Promise<Transport>;
  readonly verifier: SignatureVerifier;
  /** Addresses to keep connected to, dialled at start and redialled with backoff. */
  readonly bootstrap?: readonly string[];
  readonly mempool?: Partial<MempoolPolicy>;
  readonly mempoolStore?: MempoolStore;
  readonly orphanLimits?: OrphanLimits;
  /** The deepest reorganisation followed (consensus's DEFAULT_REORG_DEPTH unless given). */
  readonly reorgDepth?: number;
  /** Main-chain blocks kept in memory below the tip when nothing needs more (DEFAULT_WINDOW unless given). */
  readonly window?: number;
  /** Keep the bodies and undo data of only this many blocks below the tip (at least the reorg depth); undefined keeps all. */
  readonly pruneKeep?: number;
  /** Snapshot heights are the multiples of this (DEFAULT_SNAPSHOT_INTERVAL unless given): a convention of the network. */
  readonly snapshotInterval?: number;
  /** A node at genesis joins by snapshot sync when the best chain is long enough (node/snapshot-sync.ts). */
  readonly snapshotSync?: boolean;
  /** A block the user trusts (`--checkpoint`, node/checkpoint.ts), held instead of the one `checkpointStore` kept, and kept there. */
  readonly checkpoint?: Checkpoint;
  readonly checkpointStore?: CheckpointStore;
  /** Keep and serve copies of the state at snapshot heights (default on). */
  readonly serveSnapshots?: boolean;
  /**
   * Where a node whose state came from a snapshot re-executes the history below it in the
   * background (node/history-check.ts); absent, it does not.
   */
  readonly historyStore?: HistoryStore;
  readonly banSeconds?: number;
  /** How often to ask every peer for its status again (ms): how a node notices it fell behind. */
  readonly statusIntervalMs?: number;
  /** How long the node may be without a peer before it warns, and how often it repeats it (ms; default 30 s). */
  readonly noPeersWarningMs?: number;
  /** Per-peer budgets on the request protocols (default DEFAULT_SERVING_LIMITS). */
  readonly serving?: Partial<ServingLimits>;
  /** Inbound connections in all, per IP and per subnet (default DEFAULT_SLOT_LIMITS). */
  readonly connectionLimits?: Partial<SlotLimits>;
  /** Where bans are kept across restarts (a file in the datadir; memory in the simulator). */
  readonly banStore?: BanStore;
  /** Where the peers it was connected to are kept across restarts (peers.json in the datadir). */
  readonly peerStore?: PeerStore;
  /** Services started after the node and stopped before it (the miner, RPC, metrics). */
  readonly services?: readonly ((node: Node) => NodeService)[];
  /**
   * Keep the address index (ledger/address-index.ts: what the explorer and the REST API's address
   * pages read). Turning it on for a datadir that had none backfills it in the background.
   */
  readonly addressIndex?: boolean;
  /** State tree nodes below the top kept in memory (default ledger/tree-store.ts's, ~8.5 MB). */
  readonly cachedTreeNodes?: number;
  /** Milliseconds for measurements only (block import times in the metrics); none in the simulator. */
  readonly stopwatch?: () => number;
  /** Released once the node has stopped (the worker threads). */
  readonly release?: () => Promise<void>;
}

export type LogLevel = 'error' | 'info' | 'warn' | 'debug';

export interface NodeEvents {
  log: [level: LogLevel, message: string, fields?: Record<string, unknown>];
  /** A block this node connected, and where it came from. */
  block: [block: Block, source: 'mined' | 'received'];
  /** Someone asked over RPC for a clean stop; whoever runs the node decides how (cli/cmd-node.ts). */
  stopRequested: [];
  /** The node cannot go on (its store refused a write): whoever runs it stops it and reports `err`; without a listener it stops itself. */
  failed: [err: Error];
}
