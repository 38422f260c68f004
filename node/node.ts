import { EventEmitter } from 'node:events';
import type { ChainParams } from '../ledger/genesis.ts';
import type { Transaction } from '../ledger/transaction.ts';
import type { Block } from '../ledger/block.ts';
import type { Chain, BlockOutcome, Clock } from '../consensus/chain.ts';
import type { ChainDB } from '../ledger/chaindb.ts';
import type { AddressIndex } from '../ledger/address-index.ts';
import type { Mempool } from '../ledger/mempool.ts';
import { blockTxRoom } from '../consensus/miner.ts';
import { secondsOf, type Env, type Timer } from './env.ts';
import { Gossip } from './gossip.ts';
import { PeerManager } from './peers.ts';
import { NetworkGuard } from './guard.ts';
import type { Serve } from './serving.ts';
import { networkNames, type NetworkNames } from './protocols.ts';
import { Sync } from './sync.ts';
import { TxRelay } from './tx-relay.ts';
import { BLOCK_TXS_DEPTH, serveBlockTxs } from './compact.ts';
import { serveLightClients } from './light/serve.ts';
import type { TxSignatureVerifier } from './tx-signatures.ts';
import type { Transport } from './transport.ts';
import { followConnections } from './connection-events.ts';
import { followBlocks } from './block-events.ts';
import { KeepConnected } from './keep-connected.ts';
import type { Pruner } from './pruner.ts';
import { openLedger } from './open-ledger.ts';
import { checkpointBansToLift } from './checkpoint.ts';
import { DEFAULT_SNAPSHOT_INTERVAL, SnapshotKeeper, serveSnapshots } from './snapshots.ts';
import { HistoryCheck, partsFromSync } from './history-check.ts';
import { backfillAddressIndex } from './address-backfill.ts';
import { StoppedDuringStart, type LogLevel, type NodeEvents, type NodePartsOf, type NodeService } from './node-types.ts';
import { OwnBlocks } from './own-blocks.ts';
import { checkpointText } from '../consensus/header-rules.ts';
import type { Miner } from './miner.ts';
import { fileReasonAt } from './file-errors.ts';

export type { LogLevel, MempoolStore, NodeEvents, NodeService } from './node-types.ts';
export { StoppedDuringStart } from './node-types.ts';

/** What a CairnNode is made of (node/node-types.ts), its services given the node itself. */
export type NodeParts = NodePartsOf<CairnNode>;

/**
 * One validating node: the store, the chain, the mempool, and a transport carrying gossip,
 * sync and transaction relay, wired so that a block travels one road — gossip/sync/miner →
 * chain → events → mempool, relay, services.
 */
export class CairnNode extends EventEmitter<NodeEvents> {
  readonly parts: NodeParts;
  readonly env: Env;
  readonly clock: Clock;
  readonly params: ChainParams;
  db!: ChainDB;
  chain!: Chain;
  mempool!: Mempool;
  peers!: PeerManager;
  transport!: Transport;
  names!: NetworkNames;
  gossip!: Gossip;
  sync!: Sync;
  txRelay!: TxRelay;
  signatures!: TxSignatureVerifier;
  pruner: Pruner | undefined;
  snapshots: SnapshotKeeper | undefined;
  /** Present when the node can check the history below a snapshot's state (NodeParts.historyStore). */
  historyCheck: HistoryCheck | undefined;
  /** Connection slots, serving budgets, and what each peer gave and took. */
  guard!: NetworkGuard;
  /** Present when the node keeps the address index (NodeParts.addressIndex). */
  addressIndex: AddressIndex | undefined;
  private backfill: Promise<void> | undefined;
  private links!: KeepConnected;
  private readonly services: NodeService[] = [];
  private readonly timers: Timer[] = [];
  private own!: OwnBlocks;
  private stopped = false;
  /** The start while under way: a stop asked meanwhile waits for its next step, where it ends. */
  private starting: Promise<void> | undefined;
  private stopping: Promise<void> | undefined;
  /** The mempool file was read: only then may a stop write it (a start that failed before it has an empty mempool). */
  private mempoolRestored = false;

  /** Where the parts' logs go: the node's 'log' event. */
  private readonly log = (level: LogLevel, message: string, fields?: Record<string, unknown>): void => void this.emit('log', level, message, fields);

  constructor(parts: NodeParts) {
    super();
    this.parts = parts;
    this.env = parts.env;
    this.params = parts.params;
    this.clock = secondsOf(parts.env);
  }

  /** The miner, while the miner service runs (it sets this): why it waits, if it does, and its hash rate. */
  miner: Pick<Miner, 'held' | 'hashRate'> | undefined;

  /** Peers it knows to dial: --bootstrap, those from before a restart, those found since. */
  get knownPeers(): number {
    return this.links?.book.size ?? 0;
  }

  /** Whether one of the node's services is a miner. */
  get mining(): boolean {
    return this.miner !== undefined;
  }

  /**
   * Opens the store, starts the transport, then the services. A stop asked meanwhile (a signal
   * during a long store open, as bitcoind checks for shutdown between its init steps) ends it
   * after the step under way, with StoppedDuringStart, and the stop closes what it opened.
   */
  start(): Promise<void> {
    this.starting = this.startSteps();
    return this.starting;
  }

  /** Between two steps of the start: a stop asked meanwhile ends it here. */
  private goOn(after: string): void {
    if (this.stopped) throw new StoppedDuringStart(after);
  }

  private async startSteps(): Promise<void> {
    const p = this.parts;
    const ledger = await openLedger(p, { env: this.env, clock: this.clock, log: this.log, fail: (err) => this.fail(err), opened: (db) => (this.db = db), goOn: (after) => this.goOn(after) });
    ({ db: this.db, addressIndex: this.addressIndex, signatures: this.signatures, chain: this.chain, mempool: this.mempool, pruner: this.pruner } = ledger);
    this.peers = new PeerManager(this.clock, { banSeconds: p.banSeconds, limitLoopback: p.connectionLimits?.limitLoopback });
    this.guard = new NetworkGuard({
      env: this.env,
      peers: this.peers,
      serving: p.serving,
      slots: p.connectionLimits,
      banStore: p.banStore,
      log: this.log,
    });
    await this.guard.restoreBans(checkpointBansToLift(this.chain.checkpoint, ledger.checkpointRenewed));
    this.names = networkNames(this.db.genesis.header.hash);
    this.transport = await p.createTransport({ ...this.guard.gate(), deniedDialPeer: (peer) => this.links?.book.holdsOff(peer) ?? false }, this.names);
    this.guard.attach(this.transport);
    this.goOn('the transport start');
    this.links = new KeepConnected({
      env: this.env,
      transport: this.transport,
      peers: this.peers,
      bootstrap: p.bootstrap,
      peerStore: p.peerStore,
      noPeersWarningMs: p.noPeersWarningMs,
      log: this.log,
    });
    const serve: Serve = (name, protocol, respond, options) => this.guard.handle(name, protocol, respond, options);
    const common = { transport: this.transport, names: this.names, chain: this.chain, peers: this.peers, clock: this.clock, env: this.env, records: this.guard.records };
    this.gossip = new Gossip({ ...common, mempool: this.mempool, signatures: this.signatures, stats: this.guard.stats, announceTx: (tx) => this.txRelay.announce(tx), holdBlocks: () => this.sync.joining, log: this.log });
    this.own = new OwnBlocks(this.chain, this.gossip, this.params);
    this.sync = new Sync({
      ...common,
      serve,
      admitBlocks: (peer, blocks, height) => this.guard.serving.serveBlocks(peer, blocks, height),
      roomForBlocks: (peer, count, eachBytes) => this.guard.serving.roomForBlocks(peer, count, eachBytes),
      preverify: (blocks) => this.signatures.preverify(blocks.flatMap((b) => b.txs), { urgent: true }),
      snapshotSync: p.snapshotSync ? { interval: p.snapshotInterval ?? DEFAULT_SNAPSHOT_INTERVAL } : undefined,
      log: this.log,
    });
    if (p.serveSnapshots !== false) {
      this.snapshots = new SnapshotKeeper({
        chain: this.chain,
        env: this.env,
        interval: p.snapshotInterval ?? DEFAULT_SNAPSHOT_INTERVAL,
        busy: () => this.sync.syncing,
        log: this.log,
      });
      this.sync.on('idle', () => this.snapshots?.schedule());
    }
    if (p.historyStore) {
      this.historyCheck = new HistoryCheck({
        env: this.env,
        chain: this.chain,
        store: p.historyStore,
        verifier: p.verifier,
        ...partsFromSync(this.sync, this.peers),
        log: this.log,
      });
      // A snapshot join ends in an idle sync: the state then has a base to check below.
      this.sync.on('idle', () => this.historyCheck?.start());
    }
    if (p.mempoolStore) {
      const restored = await p.mempoolStore.load(this.mempool, this.clock());
      if (restored.problem) this.emit('log', 'warn', restored.problem);
      if (restored.admitted + restored.dropped > 0) this.emit('log', 'info', 'restored mempool', { admitted: restored.admitted, dropped: restored.dropped });
      this.mempoolRestored = true;
    }
    this.goOn('the mempool file read');
    this.txRelay = new TxRelay({ ...common, mempool: this.mempool, gossip: this.gossip, signatures: this.signatures, serve, blockRoom: blockTxRoom(this.params) });
    followBlocks({ chain: this.chain, db: this.db, mempool: this.mempool, signatures: this.signatures, gossip: this.gossip, sync: this.sync, txRelay: this.txRelay, own: this.own, clock: this.clock, events: this });
    followConnections(this.transport, { genesis: this.db.genesis.header.hash, links: this.links, sync: this.sync, txRelay: this.txRelay, peers: this.peers, stopped: () => this.stopped, log: this.log });
    this.gossip.start();
    this.pruner?.start();
    await this.sync.start();
    await this.txRelay.start();
    const recent = (hash: Uint8Array) => {
      const entry = this.chain.getEntry(hash);
      return entry !== undefined && entry.height + BLOCK_TXS_DEPTH >= this.chain.tip.height;
    };
    await serveBlockTxs(serve, this.names, async (hash) => this.gossip.forwardedBlockBytes(hash) ?? (recent(hash) ? (await this.db.getBlocksBytes([hash]))[0] : undefined), (peer, err) => this.peers.badRequest(peer, err));
    await serveLightClients(this.chain, serve, this.names, this.env, (peer, err) => this.peers.badRequest(peer, err));
    if (this.snapshots) {
      await serveSnapshots(this.chain, serve, this.names, (peer, err) => this.peers.badRequest(peer, err));
      this.snapshots.start();
    }
    await this.links.start();
    if (p.peerStore) this.every(60_000, () => void this.links.save());

    this.every(5_000, () => {
      void this.mempool.expire(this.clock());
      this.chain.orphans.expire(this.clock());
    });
    this.every(p.statusIntervalMs ?? 15_000, () => this.pollStatuses());
    if (p.mempoolStore) this.every(60_000, () => void this.saveMempool());
    this.every(1_000, () => {
      if (!this.stopped) this.links.tick();
    });
    this.links.book.redial();
    for (const make of p.services ?? []) {
      this.goOn(this.services.length === 0 ? 'the network parts' : `${this.services.length} of its services`);
      const service = make(this);
      await service.start();
      this.services.push(service);
    }
    this.goOn('the services');
    this.historyCheck?.start();
    if (this.addressIndex && this.addressIndex.status().state === 'building') {
      this.backfill = backfillAddressIndex(this.addressIndex, {
        chain: this.chain,
        env: this.env,
        pruner: this.pruner,
        stopped: () => this.stopped,
        log: this.log,
      });
    }
    this.starting = undefined;
    const held = this.chain.checkpoint && { checkpoint: checkpointText(this.chain.checkpoint) };
    this.emit('log', 'info', 'node started', { peerId: this.transport.peerId, height: this.chain.tip.height, listen: this.listenAddresses(), ...held });
  }

  /** A save that fails (a full disk) is told: the file of the last save stays, and is read at the next start. */
  private async saveMempool(): Promise<void> {
    await this.parts.mempoolStore!.save(this.mempool).catch((err: Error) => this.emit('log', 'warn', `cannot save the mempool: ${fileReasonAt(err)}`));
  }

  private every(ms: number, task: () => void): void {
    this.timers.push(this.env.setInterval(task, ms));
  }

  private pollStatuses(): void {
    for (const peer of this.transport.peers()) void this.sync.handshake(peer);
  }

  /** Admits a transaction from this node's user and relays it (batched with others admitted now). */
  async submitTransaction(tx: Transaction): Promise<void> {
    await this.mempool.add(tx, this.clock());
    this.txRelay.announceLocal(tx);
  }

  /**
   * `submitTransaction` for each of `txs`: their signatures checked together on the pool first,
   * then admitted in one turn of the mempool. Undefined where admitted, else why not.
   */
  async submitTransactions(txs: readonly Transaction[]): Promise<(Error | undefined)[]> {
    await this.signatures.preverify(txs);
    const outcomes = await this.mempool.addMany(txs, this.clock());
    return outcomes.map((outcome, i) => {
      if (outcome instanceof Error) return outcome;
      this.txRelay.announceLocal(txs[i]!);
      return undefined;
    });
  }

  /** Imports a block this node made and gossips it (node/own-blocks.ts). */
  importAndAnnounce(block: Block): Promise<BlockOutcome> {
    return this.own.importAndAnnounce(block);
  }

  /**
   * A clean stop, asked for over RPC: after the current turn (so the answer is on its way before
   * the stop closes the RPC server), by whoever runs the node if it listens, else by the node.
   */
  requestStop(): void {
    this.env.defer(() => (this.listenerCount('stopRequested') > 0 ? this.emit('stopRequested') : void this.stop()));
  }

  /**
   * The store refused a write (a full disk, a read-only remount, a failing disk): the chain in
   * memory is ahead of the store, which takes nothing more, so going on would serve a tip the node
   * cannot keep and import nothing. Said once, as an error, and the node stops: by whoever runs it
   * if it listens ('failed'; cli/cmd-node.ts exits with the error), else by itself. The next start
   * opens the store at its last committed block. Found during a stop (its last flush), it is said
   * and told all the same: the blocks whose writes were queued are lost, and the stop is no clean one.
   */
  private fail(err: Error): void {
    this.emit('log', 'error', `${this.stopped ? 'the stop could not write the last blocks to the store' : 'stopping'}: ${err.message}`);
    if (this.stopped) return void (this.listenerCount('failed') > 0 && this.emit('failed', err));
    this.env.defer(() => (this.listenerCount('failed') > 0 ? this.emit('failed', err) : void this.stop()));
  }

  /** Dials `addr` now and keeps it among the peers to redial. */
  async connect(addr: string): Promise<string> {
    const id = this.links.book.remember(addr, 'user');
    if (id) this.links.book.retryNow(id);
    return this.transport.dial([addr]);
  }

  listenAddresses(): string[] {
    return this.transport.listenAddresses();
  }

  /** True once the node's stop has begun. */
  get stopBegun(): boolean {
    return this.stopped;
  }

  /**
   * Stops the node; a second call (a stop asked over RPC, then the test's own) waits for the first.
   * During a start, once the start has ended (at its next step, or failed).
   */
  stop(): Promise<void> {
    this.stopped = true;
    const start = this.starting;
    this.stopping ??= start ? start.then(() => this.stopNow(), () => this.stopNow()) : this.stopNow();
    return this.stopping;
  }

  private async stopNow(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) this.env.clearInterval(t);
    for (const service of this.services.reverse()) await service.stop().catch(() => {});
    this.gossip?.stop();
    this.txRelay?.stop();
    // One that fails to stop fails the stop at its end: the store must close all the same.
    const transportFailure = await this.transport?.stop().then(() => undefined, (err: unknown) => err);
    this.sync?.stop();
    await this.sync?.idle();
    // Before the imports and the mempool's queue are waited for: what gossip still validates ends
    // first (a block that waited on its parent or its forwarder refused, a transaction batch admitted).
    await this.gossip?.drained();
    await this.backfill?.catch(() => {});
    await this.historyCheck?.stop();
    await this.chain?.idle();
    // The last tip's mempool update reads the store: it must end before the store closes.
    await this.mempool?.settled();
    await this.pruner?.stop();
    await this.snapshots?.stop();
    // Bans last: an import still running above may yet find a block invalid and ban its peer.
    await this.guard?.stop();
    await this.links?.save();
    if (this.mempoolRestored) await this.saveMempool();
    try {
      await this.db?.close();
    } finally {
      await this.parts.release?.();
    }
    if (transportFailure !== undefined) throw transportFailure;
  }
}
