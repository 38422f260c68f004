import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { EventEmitter } from 'node:events';
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr';
import { peerIdFromString } from '@libp2p/peer-id';
import type { PeerId } from '@libp2p/interface';
import { ChainDB } from '../ledger/chaindb.ts';
import { Mempool, type MempoolPolicy } from '../ledger/mempool.ts';
import type { ChainParams } from '../ledger/genesis.ts';
import type { Transaction } from '../ledger/transaction.ts';
import type { Block } from '../ledger/block.ts';
import { Chain, type BlockOutcome, type Clock } from '../consensus/chain.ts';
import { Gossip } from './gossip.ts';
import { createHost, type Host } from './host.ts';
import { loadOrCreatePeerKey } from './identity.ts';
import { Miner } from './miner.ts';
import { PeerManager } from './peers.ts';
import { networkNames, type NetworkNames } from './protocols.ts';
import { Sync } from './sync.ts';
import { TxRelay } from './tx-relay.ts';
import { RpcServer } from './rpc.ts';
import { loadMempool, saveMempool } from './mempool-file.ts';
import { VerifyPool } from './verify-pool.ts';
import { serveBlockTxs } from './compact.ts';
import { TxSignatureVerifier } from './tx-signatures.ts';
import { CATCH_UP_BLOCKS, setHeapGrowth } from './heap-growth.ts';

export interface NodeConfig {
  readonly datadir: string;
  readonly params: ChainParams;
  readonly listen?: readonly string[];
  readonly bootstrap?: readonly string[];
  readonly mdns?: boolean;
  readonly maxConnections?: number;
  /** Mine to this address with this many worker threads. */
  readonly mine?: { readonly coinbase: Uint8Array; readonly threads: number };
  readonly mempool?: Partial<MempoolPolicy>;
  /** Seconds since the epoch; a parameter so tests can move time. */
  readonly clock?: Clock;
  readonly banSeconds?: number;
  /** How often to ask every peer for its status again (ms): how a node notices it fell behind. */
  readonly statusIntervalMs?: number;
  /** Serve JSON-RPC here (port 0: any free port); the endpoint and token go to <datadir>/rpc.json. */
  readonly rpc?: { readonly host?: string; readonly port?: number };
  /** Signature-verification threads (default: one per core). */
  readonly verifyThreads?: number;
}

export interface NodeEvents {
  log: [level: 'info' | 'warn' | 'debug', message: string, fields?: Record<string, unknown>];
  /** Someone asked over RPC for a clean stop; whoever runs the node decides how (cli/cmd-node.ts). */
  stopRequested: [];
}

const REDIAL_MIN_MS = 1_000;
const REDIAL_MAX_MS = 60_000;

/**
 * One validating node: the store, the chain, the mempool, the libp2p host with gossip and sync,
 * and optionally a miner, wired so that a block travels one road — gossip/sync/miner → chain →
 * events → mempool, miner, peers.
 */
export class CairnNode extends EventEmitter<NodeEvents> {
  readonly config: NodeConfig;
  readonly clock: Clock;
  db!: ChainDB;
  chain!: Chain;
  mempool!: Mempool;
  peers!: PeerManager;
  host!: Host;
  names!: NetworkNames;
  gossip!: Gossip;
  sync!: Sync;
  txRelay!: TxRelay;
  miner: Miner | undefined;
  rpc: RpcServer | undefined;
  verifyPool!: VerifyPool;
  signatures!: TxSignatureVerifier;
  private readonly timers: NodeJS.Timeout[] = [];
  /** Peers we have known, for redialing: id → addresses and backoff. */
  private readonly known = new Map<string, { addrs: Multiaddr[]; delayMs: number; nextAt: number }>();
  private stopped = false;

  constructor(config: NodeConfig) {
    super();
    this.config = config;
    this.clock = config.clock ?? (() => Math.floor(Date.now() / 1000));
  }

  async start(): Promise<void> {
    const c = this.config;
    await mkdir(c.datadir, { recursive: true });
    // A connected block's batch is built on the next turn of the event loop, after its connection
    // has been announced and relayed.
    this.db = await ChainDB.open(join(c.datadir, 'chain'), c.params, { scheduleFlush: (start) => setImmediate(start) });
    this.verifyPool = new VerifyPool(c.verifyThreads);
    this.signatures = new TxSignatureVerifier(this.verifyPool);
    this.chain = await Chain.open(this.db, { clock: this.clock, signatures: this.signatures });
    this.mempool = new Mempool(this.db, c.params, c.mempool, (tx) => this.signatures.checkTx(tx));
    this.peers = new PeerManager(this.clock, c.banSeconds);
    this.names = networkNames(this.db.genesis.header.hash);
    this.host = await createHost({
      privateKey: await loadOrCreatePeerKey(c.datadir),
      listen: c.listen ?? ['/ip4/0.0.0.0/tcp/0'],
      bootstrap: c.bootstrap ?? [],
      mdns: c.mdns ?? true,
      maxConnections: c.maxConnections ?? 64,
      names: this.names,
      maxMessageBytes: c.params.maxBlockBytes + 64 * 1024,
      gater: this.peers.gater(),
    });
    this.gossip = new Gossip({ host: this.host, names: this.names, chain: this.chain, mempool: this.mempool, peers: this.peers, clock: this.clock, signatures: this.signatures });
    this.sync = new Sync({
      host: this.host,
      names: this.names,
      chain: this.chain,
      peers: this.peers,
      clock: this.clock,
      preverify: (blocks) => this.signatures.preverify(blocks.flatMap((b) => b.txs)),
    });
    const restored = await loadMempool(c.datadir, this.mempool, this.clock());
    if (restored.admitted + restored.dropped > 0) this.emit('log', 'info', 'restored mempool', restored);
    this.txRelay = new TxRelay({ host: this.host, names: this.names, mempool: this.mempool, gossip: this.gossip, peers: this.peers, clock: this.clock, signatures: this.signatures });
    this.wire();
    this.gossip.start();
    await this.sync.start();
    await this.txRelay.start();
    await serveBlockTxs(this.host, this.names, async (hash) => (await this.db.getBlocksBytes([hash]))[0], (peer, err) => this.peers.badRequest(peer, err));
    for (const addr of c.bootstrap ?? []) this.remember(addr);

    if (c.mine) {
      this.miner = new Miner({
        chain: this.chain,
        mempool: this.mempool,
        coinbase: c.mine.coinbase,
        clock: this.clock,
        threads: c.mine.threads,
        pool: this.verifyPool,
        submit: (block) => this.importAndAnnounce(block),
      });
      this.miner.on('error', (err) => this.emit('log', 'warn', `mining: ${err.message}`));
      this.miner.start();
    }
    if (c.rpc) {
      this.rpc = new RpcServer(this, c.rpc);
      await this.rpc.start();
    }
    this.every(5_000, () => {
      void this.mempool.expire(this.clock());
      this.chain.orphans.expire(this.clock());
    });
    this.every(c.statusIntervalMs ?? 15_000, () => this.pollStatuses());
    this.every(60_000, () => void saveMempool(c.datadir, this.mempool).catch(() => {}));
    this.every(REDIAL_MIN_MS, () => this.redial());
    this.emit('log', 'info', 'node started', { peerId: this.host.peerId.toString(), height: this.chain.tip.height, listen: this.listenAddresses(), rpc: this.rpc?.url });
  }

  private wire(): void {
    this.chain.on('tip', (e) => {
      for (const block of e.connected) this.signatures.confirmed(block.txs);
      void this.mempool.update(e.connected, e.disconnected, this.clock()).then(() => this.regossip(e.disconnected));
      if (e.disconnected.length > 0) {
        this.emit('log', 'info', 'reorganised', { fork: e.fork.height, disconnected: e.disconnected.length, connected: e.connected.length });
      }
    });
    this.chain.on('invalid', (entry, err) => this.emit('log', 'warn', `invalid block ${entry.hashHex} at ${entry.height}: ${err.message}`));
    this.peers.on('ban', (id, reason) => {
      this.emit('log', 'warn', `banned peer ${id}: ${reason}`);
      this.sync.forget(id);
      void this.host.hangUp(peerIdFromString(id)).catch(() => {});
    });
    this.sync.on('foreign', (id) => this.peers.ban(id, 'another network (genesis or protocols differ)'));
    this.sync.on('download', (blocks) => blocks >= CATCH_UP_BLOCKS && setHeapGrowth('catch-up'));
    this.sync.on('idle', () => setHeapGrowth('follow'));
    this.gossip.on('orphan', (peer) => void this.sync.handshake(peer));
    this.host.addEventListener('peer:identify', (e) => {
      const { peerId, listenAddrs } = e.detail;
      const entry = this.known.get(peerId.toString());
      const addrs = listenAddrs.map((a) => a.encapsulate(`/p2p/${peerId.toString()}`));
      if (entry) {
        entry.addrs = addrs;
        entry.delayMs = REDIAL_MIN_MS;
      } else this.known.set(peerId.toString(), { addrs, delayMs: REDIAL_MIN_MS, nextAt: 0 });
      void this.sync.handshake(peerId).then((status) => status && this.txRelay.pushMempool(peerId));
    });
    this.host.addEventListener('peer:disconnect', (e) => this.sync.forget(e.detail));
  }

  /**
   * Transactions of blocks a reorganisation took away are back in our mempool, but the peers on
   * the winning side may never have seen them: push them so they get mined.
   */
  private async regossip(disconnected: readonly Block[]): Promise<void> {
    const back = disconnected.flatMap((b) => b.txs).filter((tx) => this.mempool.has(tx.id));
    await this.txRelay.pushToAll(back);
  }

  private every(ms: number, task: () => void): void {
    this.timers.push(setInterval(task, ms));
  }

  private remember(addr: string): void {
    const ma = multiaddr(addr);
    const id = ma.getComponents().find((c) => c.name === 'p2p')?.value;
    if (id && !this.known.has(id)) this.known.set(id, { addrs: [ma], delayMs: REDIAL_MIN_MS, nextAt: 0 });
  }

  /** Keeps dialing known peers we are not connected to, each with its own exponential backoff. */
  private redial(): void {
    if (this.stopped) return;
    const now = Date.now();
    for (const [id, k] of this.known) {
      if (k.nextAt > now || this.peers.isBanned(id)) continue;
      const peer = peerIdFromString(id);
      if (this.host.getConnections(peer).length > 0) continue;
      k.nextAt = now + k.delayMs;
      k.delayMs = Math.min(REDIAL_MAX_MS, k.delayMs * 2);
      void this.host.dial(k.addrs).catch(() => {});
    }
  }

  private pollStatuses(): void {
    for (const peer of this.host.getPeers()) void this.sync.handshake(peer);
  }

  /** Admits a transaction from this node's user and relays it (batched with others admitted now). */
  async submitTransaction(tx: Transaction): Promise<void> {
    await this.mempool.add(tx, this.clock());
    this.txRelay.announce(tx);
  }

  /** Gossips a block this node made. */
  async announce(block: Block): Promise<void> {
    await this.gossip.publishBlock(block);
  }

  /**
   * Imports a block this node made and gossips it the moment it is connected: not after the rest
   * of the import (the mempool's update, the miner's next template), which peers need not wait for.
   */
  async importAndAnnounce(block: Block): Promise<BlockOutcome> {
    const onConnect = (connected: Block) => {
      if (connected === block) void this.announce(block);
    };
    this.chain.on('connect', onConnect);
    try {
      return await this.chain.processBlock(block);
    } finally {
      this.chain.off('connect', onConnect);
    }
  }

  async connect(addr: string): Promise<PeerId> {
    this.remember(addr);
    const conn = await this.host.dial(multiaddr(addr));
    return conn.remotePeer;
  }

  listenAddresses(): string[] {
    return this.host.getMultiaddrs().map((a) => a.toString());
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    await this.rpc?.stop();
    await this.miner?.stop();
    this.gossip?.stop();
    this.txRelay?.stop();
    await this.host?.stop();
    await this.sync?.idle();
    await this.chain?.idle();
    if (this.mempool) await saveMempool(this.config.datadir, this.mempool).catch(() => {});
    await this.db?.close();
    await this.verifyPool?.close();
  }
}
