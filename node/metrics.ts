import type { EventEmitter } from 'node:events';
import { createServer, type Server } from 'node:http';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Chain } from '../consensus/chain.ts';
import type { NodeView } from './view.ts';
import type { CompactStats } from './gossip-types.ts';
import { NETWORK_METRIC_FAMILIES, networkMetrics } from './peer-records.ts';
import { historyCheckStatus } from './history-check.ts';
import { hostRefused } from './http/local-host.ts';
import { cutStalledWrites, WRITE_TIMEOUT_MS } from './http/write-timeout.ts';
import { requestTarget } from './http/request-target.ts';

/** Seconds: a block import is milliseconds when following the tip, seconds for a big block. */
const IMPORT_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Seconds from a block's timestamp to its arrival: timestamps are whole seconds, so coarse. */
const PROPAGATION_BUCKETS = [0.25, 0.5, 1, 2, 3, 5, 10, 20, 30, 60, 120];
const RPC_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30];
/** Blocks a reorganisation disconnected: one or two is proof of work's daily weather, more is news. */
const REORG_DEPTH_BUCKETS = [1, 2, 3, 4, 6, 10, 20, 50, 100, 1000, 10_000];
const QUEUE_BUCKETS = [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];
/** Seconds a batch write takes: a block's unit is a millisecond or two on an SSD, a slow or busy disk's seconds. */
const STORE_WRITE_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Open connections: a scraper needs one; uncapped, anyone who reaches the port could take every file descriptor the node has. */
export const MAX_METRICS_CONNECTIONS = 16;

/**
 * Gossip's compact-block counters (Gossip.compactStats), each a counter of its own: they overlap
 * (a fetch may be hedged, then fail), so no sum over a label of one family would mean anything.
 */
const COMPACT_BLOCK_COUNTERS: { readonly [K in keyof CompactStats]: readonly [name: string, help: string] } = {
  rebuilt: ['cairn_compact_blocks_rebuilt_total', 'Compact blocks rebuilt from the mempool alone'],
  fetched: ['cairn_compact_blocks_fetched_total', 'Compact blocks with transactions the mempool lacked, asked of peers'],
  fromOthers: ['cairn_compact_blocks_from_others_total', 'Fetches of a compact block\'s transactions answered by peers other than its forwarder'],
  hedged: ['cairn_compact_blocks_hedged_total', 'Fetches of a compact block\'s transactions whose forwarder was late, so that other peers were asked too'],
  failed: ['cairn_compact_blocks_failed_total', 'Compact blocks not rebuilt (their transactions not had): left to sync'],
  unknownParent: ['cairn_compact_blocks_unknown_parent_total', 'Compact blocks whose parent is unknown and whose target is far easier than the tip\'s: not rebuilt, the forwarder\'s chain asked for'],
  awaitedParent: ['cairn_compact_blocks_awaited_parent_total', 'Compact blocks that waited for their parent, being rebuilt or imported here'],
  repeated: ['cairn_compact_blocks_repeated_total', 'Compact blocks of a header their peer sent before (under other short ids): ignored'],
};

/** The main chain's tip as scrapes report it. */
interface TipFigures {
  readonly height: number;
  readonly timestamp: number;
}

/**
 * The tip's figures as of the last time the main chain was settled. Mid-way through a
 * reorganisation (or a snapshot's install, seconds long) the main chain ends at the fork point,
 * below the tip before and after: a scrape then showed the height falling, and an alert on a
 * falling height fired. Then, the figures from before it began, with no wait: a scrape is never
 * held by one. Read on every block connected too, so that they are the tip's then, not the last
 * scrape's.
 */
function settledTip(chain: Pick<Chain, 'tip' | 'reorganisationUnderWay'>): () => TipFigures {
  let last: TipFigures | undefined;
  const read = (): TipFigures => {
    // Made mid-way through one, there is no settled figure yet: the chain's as it stands.
    if (last === undefined || !chain.reorganisationUnderWay) last = { height: chain.tip.height, timestamp: chain.tip.header.timestamp };
    return last;
  };
  read();
  return read;
}

/**
 * Prometheus metrics on their own port, through prom-client (process and event-loop metrics come
 * with it). Gauges are read from the node when scraped; counters and histograms follow its
 * events. Whoever has another figure to show adds it to `registry` (a Gauge with `collect`, a
 * Counter fed from an event) in the constructor: every cairn_* name here is kept stable.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly blockImport: Histogram;
  readonly blockPropagation: Histogram;
  readonly rpcRequest: Histogram<'method'>;
  readonly verifyQueueWait: Histogram;
  readonly storeWrite: Histogram;
  private server: Server | undefined;
  /** Each takes back listeners the constructor added to the node's events. */
  private readonly unsubscribe: (() => void)[] = [];

  constructor(node: NodeView, options: { now?: () => number } = {}) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    // Gauges prom-client names like counters, which promtool refuses; the same figures stay, by
    // type, in nodejs_active_handles, nodejs_active_requests and nodejs_active_resources.
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) this.registry.removeSingleMetric(name);
    const gauge = (name: string, help: string, read: () => number) =>
      new Gauge({ name, help, registers, collect() { this.set(read()); } });
    const counter = (name: string, help: string) => new Counter({ name, help, registers });
    /** A counter kept by the node, read from it when scraped. */
    const counted = (name: string, help: string, read: () => number) =>
      new Counter({ name, help, registers, collect() { this.reset(); this.inc(read()); } });
    /** A counter kept by the node under one label, read from it when scraped: each label value's total. */
    const countedBy = (name: string, help: string, label: string, read: () => Record<string, number>) =>
      new Counter({
        name,
        help,
        labelNames: [label],
        registers,
        collect() {
          this.reset();
          for (const [value, total] of Object.entries(read())) this.inc({ [label]: value }, total);
        },
      });
    const n = node;
    const tip = settledTip(n.chain);
    // The sync's own target is at least the tip, which mid-way through a reorganisation is the fork point's.
    const syncTarget = () => Math.max(n.sync.targetHeight, tip().height);
    gauge('cairn_chain_height', 'Height of the main chain tip', () => tip().height);
    // prom-client's default metrics include process_resident_memory_bytes.
    gauge('nodejs_heap_used_bytes', 'V8 heap in use (main thread)', () => process.memoryUsage().heapUsed);
    gauge('cairn_peers', 'Connected peers', () => n.transport.peers().length);
    // Inbound only: nobody can reach us (a firewall, a port not forwarded); outbound only: our dials fail.
    new Gauge({
      name: 'cairn_peers_by_direction',
      help: 'Connected peers by who dialled: inbound (they did) or outbound (we did)',
      labelNames: ['direction'],
      registers,
      collect() {
        const count = { inbound: 0, outbound: 0 };
        for (const peer of n.transport.peers()) {
          const info = n.transport.connectionInfo(peer);
          if (info) count[info.direction]++;
        }
        for (const direction of ['inbound', 'outbound'] as const) this.set({ direction }, count[direction]);
      },
    });
    gauge('cairn_peers_banned', 'Peers currently banned', () => n.peers.bannedCount);
    gauge('cairn_mempool_transactions', 'Transactions in the mempool', () => n.mempool.size);
    gauge('cairn_mempool_bytes', 'Bytes of transactions in the mempool', () => n.mempool.bytes);
    gauge('cairn_mempool_gapped_bytes', 'Bytes of mempool transactions waiting for an earlier nonce of their sender (held to a share of the pool)', () => n.mempool.gappedBytes);
    gauge('cairn_orphan_blocks', 'Blocks waiting for their parent', () => n.chain.orphans.size);
    gauge('cairn_sync_target_height', 'While syncing, the height of the chain being fetched; the own height otherwise', syncTarget);
    gauge('cairn_best_peer_height', 'Highest chain a connected peer announced in its status (0 with none): minus cairn_chain_height, how far behind', () => {
      let best = 0;
      for (const { status } of n.sync.statuses.values()) best = Math.max(best, status.height);
      return best;
    });
    gauge('cairn_peers_apart', 'Peers claiming more work on a chain that forks deeper than this node reorganises: not followed (the log says which)', () => n.sync.peersApart);
    gauge('cairn_chain_tip_timestamp_seconds', "The main chain tip's block timestamp: time() minus it is the tip's age", () => tip().timestamp);
    gauge('cairn_pruned_height', 'Height up to which block bodies and undo data were pruned (0: none)', () => n.db.history.prunedHeight);
    gauge('cairn_mining_hash_rate', "This node's own hashes a second over about the last 10 s (0 when it does not mine)", () => n.miner?.hashRate ?? 0);
    gauge('cairn_mining_waiting', '1 while the miner waits (catching up with peers, a snapshot join to come: cairn status says why); 0 mining, or not a miner', () => (n.miner?.held !== undefined ? 1 : 0));
    gauge('cairn_syncing', '1 while catching up with peers', () => (n.sync.syncing ? 1 : 0));
    gauge('cairn_sync_progress_ratio', 'Own height over the best announced height', () => (syncTarget() > 0 ? tip().height / syncTarget() : 1));
    gauge('cairn_address_index_progress_ratio', 'Share of the address index built (1: ready; 0 without one)', () => n.addressIndex?.status().progress ?? 0);
    gauge('cairn_history_check_height', 'Blocks below the snapshot the state came from checked so far (the snapshot height once valid; 0 without one)', () => {
      const h = historyCheckStatus(n.db.history, n.historyCheck);
      return h && h.state !== 'invalid' ? h.height : 0;
    });
    gauge('cairn_history_check_invalid', '1 when the history below the snapshot the state came from broke a rule', () => (historyCheckStatus(n.db.history, n.historyCheck)?.state === 'invalid' ? 1 : 0));
    const imported = counter('cairn_blocks_imported_total', 'Blocks connected to the main chain');
    const reorgs = counter('cairn_reorgs_total', 'Reorganisations that disconnected blocks');
    const reorgDepth = new Histogram({ name: 'cairn_reorg_depth_blocks', help: 'Blocks each reorganisation disconnected', buckets: REORG_DEPTH_BUCKETS, registers });
    const invalidBlocks = counter('cairn_invalid_blocks_total', 'Blocks that failed validation on connection');
    const invalidMessages = counter('cairn_invalid_messages_total', 'Gossip messages rejected as invalid');
    const bans = counter('cairn_peer_bans_total', 'Peers banned for misbehaviour');
    this.blockImport = new Histogram({ name: 'cairn_block_import_seconds', help: 'Time a block spent in the import queue, from sanity checks to its outcome', buckets: IMPORT_BUCKETS, registers });
    this.blockPropagation = new Histogram({ name: 'cairn_block_propagation_seconds', help: 'Received blocks: arrival (connected) minus the block timestamp, while following the tip', buckets: PROPAGATION_BUCKETS, registers });
    this.rpcRequest = new Histogram({ name: 'cairn_rpc_request_seconds', help: 'JSON-RPC requests by method, from parsed to answered', labelNames: ['method'], buckets: RPC_BUCKETS, registers });
    this.verifyQueueWait = new Histogram({ name: 'cairn_verify_queue_wait_seconds', help: 'Time a batch of signatures waited for a verifier thread', buckets: QUEUE_BUCKETS, registers });
    this.storeWrite = new Histogram({ name: 'cairn_store_write_seconds', help: 'Time a batch write to the store (LevelDB) took: blocks\' units, prune chunks, snapshot pages', buckets: STORE_WRITE_BUCKETS, registers });

    // The node outlives its metrics (a test's, one closed by a stop that failed half-way): their
    // counters must not go on being fed, nor keep the registry reachable from the chain.
    this.follow(node.chain, 'connect', () => {
      imported.inc();
      tip();
    });
    this.follow(node.chain, 'tip', (e) => {
      if (e.disconnected.length === 0) return;
      reorgs.inc();
      reorgDepth.observe(e.disconnected.length);
    });
    this.follow(node.chain, 'invalid', () => invalidBlocks.inc());
    this.follow(node.chain, 'imported', (_block, _outcome, ms) => this.blockImport.observe(ms / 1000));
    this.follow(node.gossip, 'invalid', () => invalidMessages.inc());
    this.follow(node.peers, 'ban', () => bans.inc());
    // The network's counters (node/peer-records.ts: served bytes and busy answers by protocol,
    // evictions, refusals, bans by reason), read from its NetworkStats when scraped.
    const samples = (name: string) => networkMetrics(n.guard.stats, n.peers.bannedAddressCount).filter((m) => m.name === name);
    for (const family of NETWORK_METRIC_FAMILIES) {
      const config = { name: family.name, help: family.help, labelNames: [...family.labelNames], registers };
      if (family.type === 'gauge') {
        new Gauge({ ...config, collect() { this.reset(); for (const m of samples(family.name)) this.set(m.labels ?? {}, m.value); } });
      } else {
        new Counter({ ...config, collect() { this.reset(); for (const m of samples(family.name)) this.inc(m.labels ?? {}, m.value); } });
      }
    }
    // Whether the node cache below the tree's in-memory top holds what blocks touch: a block's own
    // reads wait on the store, a sync's prefetch reads ahead of its block (ledger/tree-store.ts).
    countedBy('cairn_state_tree_nodes_read_total', 'State tree nodes read from the store below the in-memory top: when needed (a block connecting, a proof), or ahead of a block while syncing', 'read', () => ({
      needed: n.db.treeReads.nodes,
      ahead: n.db.treeReads.prefetched,
    }));
    countedBy('cairn_mempool_dropped_total', 'Transactions dropped from the mempool unmined: evicted (the pool full, a better fee came; or, after a reorganisation or an adopted snapshot, more waiting for a missing nonce than their share) or expired (waited too long)', 'reason', () => ({
      evicted: n.mempool.dropped.evicted,
      expired: n.mempool.dropped.expired,
    }));
    for (const [field, [name, help]] of Object.entries(COMPACT_BLOCK_COUNTERS)) counted(name, help, () => n.gossip.compactStats[field as keyof CompactStats]);
    const now = options.now;
    if (now) {
      const onBlock: Parameters<NodeView['on']>[1] = (block, source) => {
        // A block downloaded while catching up is old news, not propagation.
        if (source !== 'received' || node.sync.syncing) return;
        const delay = now() / 1000 - block.header.timestamp;
        if (delay >= 0) this.blockPropagation.observe(delay);
      };
      node.on('block', onBlock);
      this.unsubscribe.push(() => node.off('block', onBlock));
    }
  }

  /** Adds `listener` to `target`'s `event`, and takes it back at close(). */
  private follow<T extends Record<keyof T, unknown[]>, K extends keyof T & string>(target: Pick<EventEmitter<T>, 'on' | 'off'>, event: K, listener: (...args: T[K]) => void): void {
    // Node's typings key an emitter's events by a conditional type a generic K does not meet.
    target.on(event as never, listener as never);
    this.unsubscribe.push(() => target.off(event as never, listener as never));
  }

  render(): Promise<string> {
    return this.registry.metrics();
  }

  /**
   * `writeTimeoutMs`: how long an answer may wait on a client that takes none of it
   * (cutStalledWrites); `maxConnections`: open connections at most (MAX_METRICS_CONNECTIONS).
   */
  async listen(port: number, host = '127.0.0.1', options: { writeTimeoutMs?: number; maxConnections?: number } = {}): Promise<number> {
    this.server = createServer((req, res) => {
      // A web page that points its own name here would read the node's figures (DNS rebinding).
      if (hostRefused(host, req.headers.host)) {
        res.writeHead(403, { 'content-type': 'text/plain' }).end('this port answers only requests addressed to localhost or an IP address\n');
        return;
      }
      // A scraper may add a query (Prometheus' `params`): the path is what names the page.
      if (requestTarget(req.url)?.pathname !== '/metrics') {
        res.writeHead(404).end();
        return;
      }
      this.render().then(
        (text) => res.writeHead(200, { 'content-type': this.registry.contentType }).end(text),
        (err: Error) => res.writeHead(500).end(err.message),
      );
    });
    this.server.headersTimeout = 10_000;
    this.server.maxConnections = options.maxConnections ?? MAX_METRICS_CONNECTIONS;
    cutStalledWrites(this.server, options.writeTimeoutMs ?? WRITE_TIMEOUT_MS);
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(port, host, () => resolve());
    });
    const address = this.server.address();
    return typeof address === 'object' && address ? address.port : port;
  }

  /** Stops following the node's events, and its server if it listens. */
  async close(): Promise<void> {
    for (const unsubscribe of this.unsubscribe.splice(0)) unsubscribe();
    if (!this.server) return;
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server!.close(() => resolve()));
  }
}
