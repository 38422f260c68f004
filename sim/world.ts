import { createHash, type Hash } from 'node:crypto';
import { toHex } from '../ledger/bytes.ts';
import type { Block } from '../ledger/block.ts';
import type { ChainParams } from '../ledger/genesis.ts';
import type { MempoolPolicy } from '../ledger/mempool-rules.ts';
import type { CairnNode } from '../node/node.ts';
import { SimNetwork, SimTransport, type LinkProfile } from './network.ts';
import { Random } from './random.ts';
import { Scheduler } from './scheduler.ts';
import { SimNode, type SimNodeSpec } from './sim-node.ts';
import { mineBlock, mineHistory } from './mining.ts';
import type { Wallets } from './wallets.ts';
import type { Transaction } from '../ledger/transaction.ts';
import type { Checkpoint } from '../consensus/header-rules.ts';
import { Faults, type Fault } from './faults.ts';

export interface WorldOptions {
  readonly seed: string;
  readonly params: ChainParams;
  readonly nodes: readonly SimNodeSpec[];
  readonly durationMs: number;
  /** After the faults stop: no mining, no faults, then every invariant is checked. */
  readonly quietMs: number;
  readonly defaultLink: LinkProfile;
  readonly links: readonly { a: string; b: string; profile: LinkProfile }[];
  readonly faults: readonly Fault[];
  /** Transactions a minute, spread over the honest nodes. */
  readonly txPerMinute: number;
  readonly mempool: Partial<MempoolPolicy>;
  readonly wallets: Wallets;
  /** Blocks the first node already holds when the run starts. */
  readonly history: number;
  /**
   * The deepest reorganisation the nodes follow: small, so that the block index's window moves
   * and its edge (blocks read back from the store by height) is crossed all the time.
   */
  readonly reorgDepth: number;
  /** Main-chain blocks a node keeps in memory below its tip when nothing needs more. */
  readonly window: number;
  /** Snapshot heights are its multiples (default the node's, 10,000: never reached in a simulation). */
  readonly snapshotInterval?: number;
  /** Those blocks themselves, when not coinbase-only ones (mineHistory). */
  readonly historyBlocks?: () => readonly Block[];
  /** The simulator's stand-in for mDNS and the DHT (default on). */
  readonly discovery?: boolean;
}

/** Hooks that see every node as it starts (its chain and peers exist, its transport not yet). */
export interface WorldObserver {
  onNode?(sim: SimNode, node: CairnNode): void;
  /** Once the node has started: its protocols are served, its timers run. */
  onStarted?(sim: SimNode, node: CairnNode): void;
  /** Just before a running node crashes, stops or leaves: what it holds is still there to see. */
  onDown?(sim: SimNode, node: CairnNode): void;
}

export const SIM_EPOCH_MS = 1_800_000_000_000;

/**
 * A whole Cairn network under one seed: the nodes (honest and not), their links, the miners'
 * lottery, the users' transactions and the faults, all on one Scheduler.
 */
export class World {
  readonly o: WorldOptions;
  readonly scheduler = new Scheduler(SIM_EPOCH_MS);
  readonly rng: Random;
  readonly net: SimNetwork;
  readonly nodes: SimNode[];
  private readonly trace: Hash = createHash('sha256');
  /** `acts`: what the adversaries that break no rule did (sim/lawful-adversaries.ts). */
  readonly counts = { blocks: 0, txs: 0, reorgs: 0, deepestReorg: 0, snapshotJoins: 0, faults: {} as Record<string, number>, acts: {} as Record<string, number> };
  private readonly observers: WorldObserver[] = [];
  private miningUntil: number;
  readonly faults: Faults;
  /** Errors thrown from node code (rejections nobody handled): a node must never throw. */
  readonly crashes: string[] = [];
  /** The users' transactions a node admitted when they were submitted, and when. */
  readonly userTxs: { readonly tx: Transaction; readonly atMs: number }[] = [];

  constructor(o: WorldOptions) {
    this.o = o;
    this.rng = new Random(o.seed);
    this.net = new SimNetwork(this.scheduler, this.rng.fork('links'));
    this.net.defaultLink = o.defaultLink;
    for (const l of o.links) this.net.setLink(l.a, l.b, l.profile);
    this.nodes = o.nodes.map((spec) => new SimNode(spec));
    this.miningUntil = SIM_EPOCH_MS + o.durationMs;
    this.faults = new Faults(this);
  }

  observe(observer: WorldObserver): void {
    this.observers.push(observer);
  }

  record(line: string): void {
    this.trace.update(`${this.scheduler.now - SIM_EPOCH_MS} ${line}\n`);
  }

  traceHash(): string {
    return this.trace.copy().digest('hex');
  }

  node(id: string): SimNode {
    const n = this.nodes.find((x) => x.id === id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  countFault(kind: string): void {
    this.counts.faults[kind] = (this.counts.faults[kind] ?? 0) + 1;
  }

  /** A node is about to go down: the observers see it as it is. */
  goingDown(sim: SimNode): void {
    if (sim.node) for (const o of this.observers) o.onDown?.(sim, sim.node);
  }

  /** Starts node `sim` (first start or a restart after a crash). */
  async startNode(sim: SimNode): Promise<void> {
    // A start takes simulated time (the store's reads) before the node is up: a second start asked
    // meanwhile (a crash's restart falling just after the faults' end restarted it) ran two lives
    // on one disk at once, which no datadir's lock allows, and their writes mixed.
    if (sim.up || sim.gone || this.starting.has(sim)) return;
    this.starting.add(sim);
    try {
      await this.startLife(sim);
    } finally {
      this.starting.delete(sim);
    }
  }

  /** Nodes whose start is under way. */
  private readonly starting = new Set<SimNode>();

  private async startLife(sim: SimNode): Promise<void> {
    const others = this.nodes.filter((n) => n !== sim && n.spec.joinAtMs <= this.scheduler.now - SIM_EPOCH_MS);
    // Like a user's --bootstrap: up to two nodes that were there before it (whoever they are).
    const chosen = sim.spec.bootstrapTo ? others.filter((n) => sim.spec.bootstrapTo!.includes(n.id)) : this.rng.fork(`bootstrap-${sim.id}-${sim.lives}`).shuffle(others).slice(0, 2);
    const bootstrap = chosen.map((n) => this.net.address(n.id));
    if (sim.spec.uplinkBytesPerMs) this.net.place(sim.id, { uplinkBytesPerMs: sim.spec.uplinkBytesPerMs });
    const checkpoint = sim.spec.checkpointed && sim.lives === 0 ? await this.trustedCheckpoint(sim) : undefined;
    const prepare = this.beforeTransport.get(sim.id);
    this.record(`start ${sim.id} life ${sim.lives + 1}`);
    await sim.start({
      scheduler: this.scheduler,
      net: this.net,
      rng: this.rng,
      params: this.o.params,
      bootstrap,
      mempool: this.o.mempool,
      reorgDepth: this.o.reorgDepth,
      window: this.o.window,
      snapshotInterval: this.o.snapshotInterval,
      onNode: (node) => this.watch(sim, node),
      beforeTransport: prepare && ((node) => prepare(sim, node)),
      checkpoint,
    });
    if (sim.node) for (const o of this.observers) o.onStarted?.(sim, sim.node);
    if (sim.node && sim === this.nodes[0] && sim.lives === 1 && this.o.history > 0) {
      for (const block of this.historyChain()) await sim.node.chain.processBlock(block);
      this.record(`history ${this.o.history} on ${sim.id}`);
    }
  }

  private history: readonly Block[] | undefined;

  /** The chain the first node holds at the start (WorldOptions.history). */
  historyChain(): readonly Block[] {
    this.history ??= this.o.historyBlocks?.() ?? mineHistory(this.o.params, this.o.history, this.o.wallets.minerAddress(0));
    return this.history;
  }

  /**
   * What an operator following the README gives a new node: a block from `cairn block HEIGHT` on a
   * node it trusts, deep enough that no reorganisation takes it off (the reorg depth below the tip
   * of the running honest node with the most work), or, while that node's chain is shorter, the tip
   * of the history the network had when the run began. None if there is neither.
   */
  private async trustedCheckpoint(sim: SimNode): Promise<Checkpoint | undefined> {
    const trusted = this.nodes.filter((n) => n !== sim && n.honest && n.node).map((n) => n.node!);
    const best = trusted.reduce<CairnNode | undefined>((a, b) => (a && a.chain.tip.totalWork >= b.chain.tip.totalWork ? a : b), undefined);
    const height = best ? best.chain.tip.height - this.o.reorgDepth : 0;
    if (best && height > 0) {
      const hash = await best.db.getHashAtHeight(height);
      if (hash) return { height, hash };
    }
    const tip = this.o.history > 0 ? this.historyChain().at(-1) : undefined;
    return tip && { height: tip.header.height, hash: tip.header.hash };
  }

  /**
   * Hooks for adversaries whose node must hold something before any peer reaches it (the
   * capturer's cheap chain), awaited at each start before its transport is made.
   */
  readonly beforeTransport = new Map<string, (sim: SimNode, node: CairnNode) => Promise<void>>();

  /** Hooks a node's events as it starts (its chain and peers exist, its transport not yet). */
  private watch(sim: SimNode, node: CairnNode): void {
    node.on('block', (block) => {
      this.record(`${sim.id} connect ${block.header.height} ${toHex(block.header.hash).slice(0, 16)}`);
    });
    node.chain.on('tip', (e) => {
      if (e.disconnected.length === 0) return;
      this.counts.reorgs++;
      this.counts.deepestReorg = Math.max(this.counts.deepestReorg, e.disconnected.length);
      this.record(`${sim.id} reorg -${e.disconnected.length} +${e.connected.length}`);
    });
    node.on('log', (_level, message, fields) => {
      if (message !== 'snapshot installed') return;
      this.counts.snapshotJoins++;
      this.record(`${sim.id} snapshot ${String(fields?.height)}`);
    });
    for (const o of this.observers) o.onNode?.(sim, node);
  }

  /** Runs the scenario: nodes join, mine, transact and suffer faults; then a quiet period. */
  async run(): Promise<void> {
    const s = this.scheduler;
    const t0 = SIM_EPOCH_MS;
    for (const sim of this.nodes) {
      s.at(t0 + sim.spec.joinAtMs, () => void this.startNode(sim).catch((err: Error) => this.crashes.push(`${sim.id} start: ${err.stack ?? err.message}`)));
      if (sim.spec.leaveAtMs !== undefined) s.at(t0 + sim.spec.leaveAtMs, () => this.faults.leave(sim));
    }
    for (const f of this.o.faults) s.at(t0 + f.atMs, () => this.faults.apply(f));
    this.scheduleBlock();
    this.scheduleTx();
    if (this.o.discovery !== false) this.scheduleDiscovery();
    await s.runUntil(t0 + this.o.durationMs);
    this.faults.end();
    this.settle();
    await s.runUntil(t0 + this.o.durationMs + this.o.quietMs);
  }

  /**
   * Two branches of equal work stay apart until a block breaks the tie, here as on any network.
   * So after the faults, one honest miner alone mines a few blocks, far enough apart that none
   * can tie, and then nobody mines.
   */
  private settle(): void {
    const t = SIM_EPOCH_MS + this.o.durationMs;
    for (const delay of [10_000, 25_000, 40_000]) {
      this.scheduler.at(t + delay, () => {
        const miner = this.nodes.find((n) => n.honest && n.up && !n.gone);
        if (miner) void this.mine(miner);
      });
    }
  }

  /** The miners' lottery: blocks arrive as a Poisson process; the winner is drawn by hash share. */
  private scheduleBlock(): void {
    const rng = this.rng.fork('mining');
    const next = () => {
      const wait = rng.exponential(this.o.params.blockTime * 1000);
      this.scheduler.after(wait, () => {
        if (this.scheduler.now >= this.miningUntil) return;
        const miners = this.nodes.filter((n) => n.up && n.spec.hashShare > 0);
        const total = miners.reduce((sum, n) => sum + n.spec.hashShare, 0);
        let draw = rng.next() * total;
        const winner = miners.find((n) => (draw -= n.spec.hashShare) < 0) ?? miners.at(-1);
        if (winner?.node) void this.mine(winner);
        next();
      });
    };
    next();
  }

  /** Hooks for adversaries that mine differently (a selfish miner keeps its blocks). */
  minedBy: Map<string, (sim: SimNode, block: Block) => Promise<void>> = new Map();

  private async mine(sim: SimNode): Promise<void> {
    const node = sim.node!;
    // A miner waits below its checkpoint (node/miner.ts, CatchUpGate): its block would be on a chain that cannot pass through it.
    const checkpoint = node.chain.checkpoint;
    if (checkpoint && node.chain.tip.height < checkpoint.height) return;
    const block = await mineBlock(node, this.o.wallets.minerAddress(sim.spec.minerKey));
    if (!block) return;
    this.counts.blocks++;
    this.record(`${sim.id} mined ${block.header.height} ${toHex(block.header.hash).slice(0, 16)}`);
    const custom = this.minedBy.get(sim.id);
    if (custom) return custom(sim, block);
    await node.importAndAnnounce(block).catch(() => {});
  }

  private scheduleTx(): void {
    if (this.o.txPerMinute <= 0) return;
    const rng = this.rng.fork('txs');
    const next = () => {
      this.scheduler.after(rng.exponential(60_000 / this.o.txPerMinute), () => {
        if (this.scheduler.now >= this.miningUntil) return;
        void this.submitTx('valid');
        next();
      });
    };
    next();
  }

  /** A user's transaction to a random honest node, as `cairn send` makes it. */
  async submitTx(style: 'valid' | 'conflicting' | 'replacing'): Promise<void> {
    const honest = this.nodes.filter((n) => n.up && n.honest);
    if (honest.length === 0) return;
    const rng = this.rng.fork(`tx-${this.counts.txs}`);
    const target = rng.pick(honest);
    const node = target.node!;
    const made = await this.o.wallets.transfer(node, rng, style);
    for (const [i, tx] of made.entries()) {
      // A conflicting pair goes to two different nodes; a replacement to the same one.
      const to = style === 'conflicting' && i === 1 ? rng.pick(honest) : target;
      if (!to.node) continue;
      this.counts.txs++;
      const atMs = this.scheduler.now;
      await to.node.submitTransaction(tx).then(
        () => void this.userTxs.push({ tx, atMs }),
        () => {},
      );
    }
  }

  /** The simulator's mDNS/DHT: now and then each node hears of a few others. */
  private scheduleDiscovery(): void {
    const rng = this.rng.fork('discovery');
    const round = () => {
      const up = this.nodes.filter((n) => n.up && n.transport);
      for (const n of up) {
        for (let i = 0; i < 2 && up.length > 1; i++) n.transport!.discover(rng.pick(up).id);
      }
      this.scheduler.after(20_000, round);
    };
    this.scheduler.after(5_000, round);
  }
}
