import { createServer, type Server } from 'node:http';
import type { NodeView } from './view.ts';
import { networkMetrics, type NetworkMetric } from './peer-records.ts';

/** Metrics with labels, each name's HELP and TYPE once. */
function renderLabelled(metrics: readonly NetworkMetric[]): string {
  const seen = new Set<string>();
  let out = '';
  for (const m of metrics) {
    if (!seen.has(m.name)) {
      seen.add(m.name);
      out += `# HELP ${m.name} ${m.help}\n# TYPE ${m.name} ${m.type}\n`;
    }
    const labels = m.labels ? `{${Object.entries(m.labels).map(([k, v]) => `${k}="${v}"`).join(',')}}` : '';
    out += `${m.name}${labels} ${m.value}\n`;
  }
  return out;
}

/**
 * Prometheus metrics on their own port (text exposition format 0.0.4). Gauges are read from the
 * node when scraped; counters are kept from its events.
 */
export class Metrics {
  private readonly node: NodeView;
  private server: Server | undefined;
  private readonly counters = { blocksImported: 0, reorgs: 0, invalidMessages: 0, invalidBlocks: 0, bans: 0 };

  constructor(node: NodeView) {
    this.node = node;
    node.chain.on('connect', () => this.counters.blocksImported++);
    node.chain.on('tip', (e) => {
      if (e.disconnected.length > 0) this.counters.reorgs++;
    });
    node.chain.on('invalid', () => this.counters.invalidBlocks++);
    node.gossip.on('invalid', () => this.counters.invalidMessages++);
    node.peers.on('ban', () => this.counters.bans++);
  }

  render(): string {
    const n = this.node;
    const rows: [string, 'gauge' | 'counter', string, number][] = [
      ['cairn_chain_height', 'gauge', 'Height of the main chain tip', n.chain.tip.height],
      ['process_resident_memory_bytes', 'gauge', 'Resident set size of the node process', process.memoryUsage.rss()],
      ['nodejs_heap_used_bytes', 'gauge', 'V8 heap in use (main thread)', process.memoryUsage().heapUsed],
      ['cairn_peers', 'gauge', 'Connected peers', n.transport.peers().length],
      ['cairn_peers_banned', 'gauge', 'Peers currently banned', n.peers.bannedCount],
      ['cairn_mempool_transactions', 'gauge', 'Transactions in the mempool', n.mempool.size],
      ['cairn_mempool_bytes', 'gauge', 'Bytes of transactions in the mempool', n.mempool.bytes],
      ['cairn_orphan_blocks', 'gauge', 'Blocks waiting for their parent', n.chain.orphans.size],
      ['cairn_sync_target_height', 'gauge', 'Height of the best chain peers announced', n.sync.targetHeight],
      ['cairn_syncing', 'gauge', '1 while catching up with peers', n.sync.syncing ? 1 : 0],
      ['cairn_sync_progress_ratio', 'gauge', 'Own height over the best announced height', n.sync.targetHeight > 0 ? n.chain.tip.height / n.sync.targetHeight : 1],
      ['cairn_blocks_imported_total', 'counter', 'Blocks connected to the main chain', this.counters.blocksImported],
      ['cairn_reorgs_total', 'counter', 'Reorganisations that disconnected blocks', this.counters.reorgs],
      ['cairn_invalid_blocks_total', 'counter', 'Blocks that failed validation on connection', this.counters.invalidBlocks],
      ['cairn_invalid_messages_total', 'counter', 'Gossip messages rejected as invalid', this.counters.invalidMessages],
      ['cairn_peer_bans_total', 'counter', 'Peers banned for misbehaviour', this.counters.bans],
    ];
    const text = rows.map(([name, type, help, value]) => `# HELP ${name} ${help}\n# TYPE ${name} ${type}\n${name} ${value}\n`).join('');
    return text + renderLabelled(networkMetrics(n.guard.stats, n.peers.bannedAddressCount));
  }

  async listen(port: number, host = '127.0.0.1'): Promise<number> {
    this.server = createServer((req, res) => {
      if (req.url !== '/metrics') {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(this.render());
    });
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(port, host, () => resolve());
    });
    const address = this.server.address();
    return typeof address === 'object' && address ? address.port : port;
  }

  async close(): Promise<void> {
    if (!this.server) return;
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server!.close(() => resolve()));
  }
}
