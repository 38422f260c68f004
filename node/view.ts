import type { ChainDB } from '../ledger/chaindb.ts';
import type { AddressIndex } from '../ledger/address-index.ts';
import type { ChainParams } from '../ledger/genesis.ts';
import type { Mempool } from '../ledger/mempool.ts';
import type { Transaction } from '../ledger/transaction.ts';
import type { Block } from '../ledger/block.ts';
import type { Chain } from '../consensus/chain.ts';
import type { Gossip } from './gossip.ts';
import type { HistoryCheck } from './history-check.ts';
import type { PeerManager } from './peers.ts';
import type { NetworkStats, PeerRecords } from './peer-records.ts';
import type { Serving } from './serving.ts';
import type { Sync } from './sync.ts';
import type { Transport } from './transport.ts';
import type { Env } from './env.ts';

/**
 * What the RPC server and the metrics see of a node: reads, and the one write a user may make
 * (submitting transactions). CairnNode has this shape; the services depend on it, not on the
 * node, so neither imports the other.
 */
export interface NodeView {
  readonly params: ChainParams;
  readonly chain: Chain;
  readonly db: ChainDB;
  readonly mempool: Mempool;
  readonly sync: Pick<Sync, 'syncing' | 'targetHeight' | 'statuses' | 'peersAhead' | 'peersApart' | 'snapshotProgress'>;
  readonly peers: Pick<PeerManager, 'score' | 'bannedCount' | 'bannedAddressCount' | 'lastBan' | 'on' | 'off'>;
  readonly gossip: Pick<Gossip, 'on' | 'off' | 'compactStats'>;
  readonly transport: Pick<Transport, 'peers' | 'connectionInfo' | 'listenAddresses' | 'peerId'>;
  /** Per-peer records, budgets and the network's counters (metrics, getPeers). */
  readonly guard: { readonly records: Pick<PeerRecords, 'get'>; readonly serving: Pick<Serving, 'throttled'>; readonly stats: NetworkStats };
  readonly mining: boolean;
  /** The miner, on a mining node: why it waits (not on a chain it has not caught up with), and its hash rate. */
  readonly miner: { readonly held: string | undefined; readonly hashRate: number } | undefined;
  /** Present when the node keeps the address index. */
  readonly addressIndex: AddressIndex | undefined;
  /** Present when the node checks the history below a snapshot's state. */
  readonly historyCheck: Pick<HistoryCheck, 'checkedHeight' | 'waitingFor'> | undefined;
  /** Each block the node connected, and whether it mined it or received it. */
  on(event: 'block', listener: (block: Block, source: 'mined' | 'received') => void): unknown;
  off(event: 'block', listener: (block: Block, source: 'mined' | 'received') => void): unknown;
  /** Seconds since the epoch, by the node's clock. */
  clock(): number;
  /** The node's timers: how long status waits for a reorganisation to end. */
  readonly env: Pick<Env, 'setTimeout' | 'clearTimeout'>;
  submitTransaction(tx: Transaction): Promise<void>;
  submitTransactions(txs: readonly Transaction[]): Promise<(Error | undefined)[]>;
  /** Asks for a clean stop (the RPC method `stop`). */
  requestStop(): void;
  /** True once the node's stop has begun: a long read (an audit) ends there rather than hold the stop. */
  readonly stopBegun: boolean;
}
