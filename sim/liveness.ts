import { bytesEqual, toHex } from '../ledger/bytes.ts';
import type { Block } from '../ledger/block.ts';
import type { BlockIndexEntry } from '../consensus/block-index.ts';
import { maxFutureDrift } from '../consensus/header-rules.ts';
import type { CairnNode } from '../node/node.ts';
import type { SimNode } from './sim-node.ts';
import { SIM_EPOCH_MS, type World } from './world.ts';

/**
 * What a hop of gossip can take beyond its link's delays: the block's import or its header's
 * checks, the disk's 1–3 ms per write and 0–2 ms per read in turn, the uplink's queue. Generous:
 * a status poll, the only other road a block has, comes every 15 s.
 */
export const HOP_SLACK_MS = 300;
/** Added once to a whole path's bound: the miner's own announcement and the last node's import. */
export const PATH_SLACK_MS = 1_000;
type Fail = (name: 'blocks-propagate' | 'txs-confirm', message: string) => void;

/**
 * Liveness, which no safety invariant sees: a network whose nodes never relayed a block or a
 * transaction would keep every other invariant. Blocks: each block an honest node mines while no
 * partition or link fault is in effect, and no link loses messages, must reach every honest node
 * in step with the chain that is connected to its miner through such nodes, within the time
 * gossip takes along the shortest path, unless the network changes meanwhile (a fault, a node
 * going down, two honest nodes parted). In most seeds that is the quiet period's blocks only:
 * the faults end with every link lossless. Transactions: each one a node admitted from a user must
 * end up mined, or its nonce spent by another (a replacement, a conflict), unless every honest
 * node that held it, in its mempool or in a block only it had, went down with it (a mempool is
 * not kept across lives in the simulator, and a crash can take a block's import with it).
 */
export class Liveness {
  private readonly world: World;
  private readonly fail: Fail;
  /** When each honest node first connected each block, by node id, then block hash. */
  private readonly connected = new Map<string, Map<string, number>>();
  /**
   * Nonces whose every honest copy went down with a node, by sender, with when: the transactions admitted by then at that nonce (replaced there
   * by the one lost, say) or above it (which wait for it) may never be mined.
   */
  private readonly lost = new Map<string, { nonce: bigint; atMs: number }[]>();
  /** When each node's last snapshot join ended, by node id (node/sync.ts's 'joining'). */
  private readonly joinEnded = new Map<string, number>();
  /** The blocks honest nodes connected that carry each transaction, by its id. */
  private readonly carriedBy = new Map<string, string[]>();
  /**
   * Pairs (block, node) whose bound was judged; blocks not judged, mined with a fault in effect or
   * over lossy links; pairs not judged, the block's branch ahead of the node's clock; users'
   * transactions judged.
   */
  readonly counts = { judged: 0, faulty: 0, lossy: 0, aheadOfClock: 0, txsJudged: 0 };

  constructor(world: World, fail: Fail) {
    this.world = world;
    this.fail = fail;
    world.observe({
      onNode: (sim, node) => {
        if (!sim.honest) return;
        const times = this.connected.get(sim.id) ?? new Map<string, number>();
        this.connected.set(sim.id, times);
        node.chain.on('connect', (block, entry) => {
          if (times.has(entry.hashHex)) return;
          times.set(entry.hashHex, world.scheduler.now);
          for (const tx of block.txs) this.carriedBy.set(tx.idHex, [...(this.carriedBy.get(tx.idHex) ?? []), entry.hashHex]);
        });
        node.on('block', (block, how) => void (how === 'mined' && this.spreadFrom(sim, node, block)));
      },
      onStarted: (sim, node) => {
        if (!sim.honest) return;
        node.sync.on('joining', (active) => void (active || this.joinEnded.set(sim.id, world.scheduler.now)));
        // The surviving side of a connection says it ended (a crashed node says nothing).
        node.transport.on('peer:disconnect', (peer) => {
          if (world.nodes.find((n) => n.id === peer)?.honest) world.faults.disturbed();
        });
      },
      onDown: (sim, node) => {
        if (!sim.honest) return;
        const others = world.nodes.filter((n) => n !== sim && n.honest && !n.gone);
        // In a block another honest node connected (its disk keeps it), or in a running one's mempool.
        const elsewhere = (id: string, hashes: readonly string[]) =>
          others.some((n) => n.node?.mempool.has(Buffer.from(id, 'hex')) || hashes.some((h) => this.connected.get(n.id)?.has(h)));
        for (const { tx } of world.userTxs) {
          const hashes = this.carriedBy.get(tx.idHex) ?? [];
          const here = node.mempool.has(tx.id) || hashes.some((h) => this.connected.get(sim.id)?.has(h));
          if (!here || elsewhere(tx.idHex, hashes)) continue;
          const sender = toHex(tx.from);
          this.lost.set(sender, [...(this.lost.get(sender) ?? []), { nonce: tx.nonce, atMs: world.scheduler.now }]);
        }
      },
    });
  }

  /**
   * Honest node `miner` connected the block it mined: every honest node reachable from it now,
   * through honest nodes in step with the chain over lossless links, must connect it (or hold a
   * chain with as much work) by the time the shortest such path allows.
   */
  private spreadFrom(miner: SimNode, node: CairnNode, block: Block): void {
    const w = this.world;
    if (w.faults.inEffect.size > 0) {
      this.counts.faulty++;
      return;
    }
    const entry = node.chain.getEntry(block.header.hash);
    const parent = node.chain.getEntry(block.header.prevHash);
    if (!entry || !parent) return;
    const minedAt = w.scheduler.now;
    // A node below its checkpoint takes no block from gossip (node/gossip.ts), and forwards none: sync brings it the chain through the checkpoint.
    const inStep = w.nodes.filter((n) => n.honest && n.node && n.transport && n.node.chain.tip.totalWork >= parent.totalWork && !belowCheckpoint(n.node));
    const dist = this.shortestPaths(miner, inStep, block.header.prevHash, entry.totalWork);
    if (!dist) {
      this.counts.lossy++;
      return;
    }
    const hash = toHex(block.header.hash);
    for (const [sim, ms] of dist) {
      if (sim === miner) continue;
      const bound = ms + PATH_SLACK_MS;
      const life = sim.node;
      // A header beyond the node's clock and the drift is refused as it arrives, without blame
      // (a timewarper's, or an honest one on it, to a node whose clock is behind): the node takes
      // it when a status poll next brings it, once its clock has caught up. No path bounds that.
      if (life && aheadOfClock(entry, life, Math.floor((life.env.now() + ms) / 1000))) {
        this.counts.aheadOfClock++;
        continue;
      }
      w.scheduler.after(bound, () => {
        // The network changed meanwhile: the path may be gone, or a new one longer.
        if (w.faults.lastDisturbanceMs >= minedAt || sim.node !== life || !life) return;
        // A node joining by snapshot holds gossiped blocks until its join ends (node/sync.ts,
        // Sync.joining), and takes the chain after its pivot by sync: no gossip path holds for it.
        if (life.sync.joining || (this.joinEnded.get(sim.id) ?? -Infinity) >= minedAt) return;
        this.counts.judged++;
        // A chain with as much work makes the block moot (it lost a race, or was reorganised away).
        const held = () => this.connected.get(sim.id)?.has(hash) === true || life.chain.tip.totalWork >= entry.totalWork;
        if (held()) return;
        // Mid-way through a reorganisation the tip is the fork point: judged where the import ends
        // (seed 227 for 8 minutes caught two nodes between their blocks 119 of a race, and the
        // winner's, 4 ms before they connected it). Passing seeds never get here: traces hold.
        void life.chain.readSettled(async () => undefined).then(() => {
          if (!held()) this.fail('blocks-propagate', `${sim.id} had not connected ${miner.id}'s block ${block.header.height} ${hash.slice(0, 16)} ${bound} ms after it was mined (at ${((minedAt - SIM_EPOCH_MS) / 1000).toFixed(1)} s); its tip is ${life.chain.tip.height}`);
        });
      });
    }
  }

  /**
   * Dijkstra from `from` over the connections among `nodes`, or undefined if any connection in the
   * network is lossy: a node takes a block from whichever peer is first to send it, and asks that
   * peer for the transactions it lacks, so one lost answer anywhere costs its five-second timeout.
   * A hop costs its link's delay, then round trips over the slowest link in use: one for the
   * transactions the receiver lacks if the block builds on its tip, four if not (those, then its
   * status, the headers and the blocks of the branch, as sync fetches an orphan's), plus
   * HOP_SLACK_MS. No path goes on through a node whose chain has `work` already (a race's other
   * block at the height): a node forwards only a block that becomes its tip (node/gossip.ts), and
   * for it this one is moot.
   */
  private shortestPaths(from: SimNode, nodes: readonly SimNode[], parent: Uint8Array, work: bigint): Map<SimNode, number> | undefined {
    const net = this.world.net;
    let slowest = 0;
    for (const a of this.world.nodes) {
      for (const b of a.transport?.peers() ?? []) {
        const link = net.link(a.id, b);
        if (link.drop > 0) return undefined;
        slowest = Math.max(slowest, link.latencyMs + link.jitterMs);
      }
    }
    const dist = new Map<SimNode, number>([[from, 0]]);
    const done = new Set<SimNode>();
    for (;;) {
      let here: SimNode | undefined;
      for (const [n, d] of dist) if (!done.has(n) && (here === undefined || d < dist.get(here)!)) here = n;
      if (!here) return dist;
      done.add(here);
      if (here !== from && here.node!.chain.tip.totalWork >= work) continue;
      for (const next of nodes) {
        if (done.has(next) || !here.transport!.isConnected(next.id)) continue;
        const link = net.link(here.id, next.id);
        const roundTrips = bytesEqual(next.node!.chain.tip.hash, parent) ? 1 : 4;
        const d = dist.get(here)! + link.latencyMs + link.jitterMs + 2 * roundTrips * slowest + HOP_SLACK_MS;
        if (d < (dist.get(next) ?? Infinity)) dist.set(next, d);
      }
    }
  }

  /**
   * At the end: each transaction a node admitted from a user has its nonce spent on every honest
   * node's chain (by it, or by one that replaced it). Every one, up to the last second of the
   * faults: the quiet period has three blocks, 10, 25 and 40 s in, on a network whole and lossless
   * by then, where a transaction reaches every connected node in well under a second and every
   * new connection is pushed the mempool (what entered since, if its address group was sent it lately).
   */
  async final(nodes: readonly SimNode[], drive: <T>(work: Promise<T>) => Promise<{ value: T } | undefined>): Promise<void> {
    const w = this.world;
    const orphaned = (t: (typeof w.userTxs)[number]) => (this.lost.get(toHex(t.tx.from)) ?? []).some((l) => l.nonce <= t.tx.nonce && t.atMs <= l.atMs);
    const due = w.userTxs.filter((t) => !orphaned(t));
    this.counts.txsJudged = due.length;
    if (due.length === 0) return;
    for (const sim of nodes) {
      const node = sim.node;
      if (!node) continue;
      const read = await drive(node.db.getAccounts(due.map((t) => t.tx.from)));
      if (!read) continue; // a stall, reported by no-throw-or-stall
      const lost = due.filter((t, i) => (read.value[i]?.nonce ?? 0n) <= t.tx.nonce);
      if (lost.length === 0) continue;
      const first = lost[0]!;
      this.fail('txs-confirm', `${sim.id}: ${lost.length} of ${due.length} users' transactions neither mined nor replaced, the first ${first.tx.idHex.slice(0, 16)} (nonce ${first.tx.nonce}) admitted at ${((first.atMs - SIM_EPOCH_MS) / 1000).toFixed(1)} s`);
    }
  }
}

function belowCheckpoint(node: CairnNode): boolean {
  const checkpoint = node.chain.checkpoint;
  return checkpoint !== undefined && node.chain.tip.height < checkpoint.height;
}

/**
 * Whether a header of `entry`'s branch that `node` does not hold (from `entry` down to where its
 * chain index has one) is beyond `clock` (the node's, in seconds, as the block would arrive) and
 * the drift: HEADER_TIME_TOO_NEW there.
 */
function aheadOfClock(entry: BlockIndexEntry, node: CairnNode, clock: number): boolean {
  const limit = clock + maxFutureDrift(node.params.blockTime);
  for (let e: BlockIndexEntry | undefined = entry; e && !node.chain.getEntry(e.header.hash); e = e.parent) {
    if (e.header.timestamp > limit) return true;
  }
  return false;
}
