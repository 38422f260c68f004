import { toHex } from '../ledger/bytes.ts';
import type { Block } from '../ledger/block.ts';
import type { CairnNode } from '../node/node.ts';
import { blockWork } from '../consensus/pow.ts';
import { mineHistory } from './mining.ts';
import { Random } from './random.ts';
import type { SimNode, SimNodeSpec } from './sim-node.ts';
import type { World } from './world.ts';

/**
 * The capturer (`--adversaries capturer`): the attack a checkpoint exists for (node/checkpoint.ts).
 * Its node holds, from before any peer reaches it, the cheapest chain the rules allow that is
 * longer than the reorg depth: block 1 a second after genesis (the ASERT anchor), the rest as far
 * behind schedule as no timestamp ahead of any honest clock allows, so each is at the easiest
 * target ASERT gives (a hash a block under a short half-life), and all of it lighter than the
 * honest chain. It mines nothing more and follows nothing: the honest chain forks below its floor.
 * Half the capturers hold just past the reorg depth, the least that captures; half the honest
 * height less two (no earlier than schedule), through any checkpoint a joiner holds. A node that
 * meets it alone, and takes its chain, can never reorganise to the honest one: the scenario gives
 * each capturer a late joiner that bootstraps off it alone, as a user given a bad address would.
 */
export class Capturers {
  private readonly world: World;
  /** Each capturer's chain once built (its first start), by its id. */
  private readonly chains = new Map<string, readonly Block[]>();

  /** Each honest node's chain as it starts (before it is reached: SimNode.node is set only once its start ends). */
  private readonly honestChains = new Map<string, CairnNode['chain']>();

  constructor(world: World) {
    this.world = world;
    world.observe({ onNode: (sim, node) => void (sim.honest && this.honestChains.set(sim.id, node.chain)) });
    for (const sim of world.nodes) {
      if (sim.spec.role !== 'capturer') continue;
      // (A fork draws from the world's stream: only for capturers, so other seeds' draws stay as they were.)
      const rng = world.rng.fork(`capturer-${sim.id}`);
      world.beforeTransport.set(sim.id, (s, node) => this.hold(s, node, rng));
      world.observe({
        onStarted: (s, node) => {
          if (s !== sim) return;
          // A node whose chain is lighter than the cheap one is offered it: its first peers decide.
          node.transport.on('peer:connect', (peer) => {
            const chain = this.honestChains.get(peer);
            if (chain && chain.tip.totalWork < node.chain.tip.totalWork) this.act('offered');
          });
        },
      });
    }
  }

  /**
   * At each start, the cheap chain (built at the first, against the honest chain then) is imported
   * again: a crash may have lost its last writes, and a duplicate imports nothing.
   */
  private async hold(sim: SimNode, node: CairnNode, rng: Random): Promise<void> {
    let blocks = this.chains.get(sim.id);
    if (!blocks) {
      blocks = this.build(sim, node, rng);
      this.chains.set(sim.id, blocks);
    }
    for (const block of blocks) await node.chain.processBlock(block);
    if (sim.lives > 1) return;
    const honest = this.honestChain();
    const tip = node.chain.tip;
    // A chain heavier than the honest one is no attack, only the network's new chain: the capturer is broken.
    if (tip.totalWork >= honest.totalWork) throw new Error(`capturer ${sim.id}: its chain of ${tip.height} blocks (work ${tip.totalWork}) is not lighter than the honest chain (work ${honest.totalWork})`);
    this.act(tip.height === this.world.o.reorgDepth + 1 ? 'short-cheap-chain' : 'long-cheap-chain');
    this.world.record(`${sim.id} cheap chain ${tip.height} ${toHex(tip.hash).slice(0, 16)} work ${tip.totalWork} against ${honest.totalWork}`);
  }

  /**
   * The honest chain as the capturer can tell it: the running honest node's with the most work, or
   * the history (the network's chain at the start, which the honest chain extends) while that is
   * more, as when the first node is down and the others have yet to sync.
   */
  private honestChain(): { height: number; totalWork: bigint } {
    const history = this.world.historyChain();
    let best = { height: history.length, totalWork: history.reduce((sum, b) => sum + blockWork(b.header.target), blockWork(this.world.o.params.target)) };
    for (const n of this.world.nodes) {
      const tip = n.honest ? n.node?.chain.tip : undefined;
      if (tip && tip.totalWork > best.totalWork) best = tip;
    }
    return best;
  }

  private build(sim: SimNode, node: CairnNode, rng: Random): readonly Block[] {
    const params = node.params;
    const depth = this.world.o.reorgDepth;
    // Honest clocks are skewed by at most 20 s: 30 s back is behind every one of them.
    const end = Math.floor(this.world.scheduler.now / 1000) - 30;
    const onSchedule = Math.floor((end - params.timestamp) / params.blockTime) - 1;
    const honest = this.honestChain().height;
    const length = rng.chance(0.5) ? depth + 1 : Math.min(honest - 2, onSchedule);
    if (length <= depth) throw new Error(`capturer ${sim.id}: the honest chain (${honest} blocks) is too short for a cheap one past the reorg depth (${depth})`);
    const stamp = (height: number, parentTimestamp: number) => (height === 1 ? params.timestamp + 1 : Math.max(parentTimestamp + 1, end - (length - height) * params.blockTime));
    return mineHistory(params, length, this.world.o.wallets.minerAddress(sim.spec.minerKey), () => [], stamp);
  }

  private act(what: string): void {
    this.world.counts.acts[what] = (this.world.counts.acts[what] ?? 0) + 1;
  }

  /** The honest nodes running on a capturer's chain (its block 1 on their main chain): captured. */
  async captured(): Promise<string[]> {
    const firsts = new Set([...this.chains.values()].map((blocks) => toHex(blocks[0]!.header.hash)));
    const out: string[] = [];
    for (const sim of this.world.nodes) {
      if (!sim.honest || !sim.node) continue;
      const first = await this.world.scheduler.drive(sim.node.db.getHashAtHeight(1), 60_000);
      if (first?.value && firsts.has(toHex(first.value))) out.push(sim.id);
    }
    return out;
  }
}

/** A capturer starts no earlier: the first node's history is in and spread, the honest chain long. */
const CAPTURER_JOIN_MS = 20_000;

/**
 * A seed's nodes with its capturers in place (from a stream of their own): each starts once the
 * honest chain is there to undercut, and is given a joiner of its own, honest and not mining,
 * that bootstraps off it alone some seconds later. Every honest node but the first (the network's
 * origin, which holds the history) joins with a checkpoint (SimNodeSpec.checkpointed), the
 * capturers' joiners too unless `withhold`: one that joined early may not have the history yet
 * when a capturer comes, and would take the cheap chain, the heaviest it knows, for good.
 */
export function withCapturers(seed: string, nodes: readonly SimNodeSpec[], withhold: boolean): SimNodeSpec[] {
  const capturers = nodes.filter((n) => n.role === 'capturer');
  if (capturers.length === 0) return [...nodes];
  const rng = new Random(`capture:${seed}`);
  const placed = nodes.map((spec) => (spec.role === 'capturer' ? { ...spec, joinAtMs: Math.max(spec.joinAtMs, CAPTURER_JOIN_MS) } : spec));
  const joiners = placed
    .filter((n) => n.role === 'capturer')
    .map((capturer, k): SimNodeSpec => ({
      id: `n${nodes.length + k}`,
      role: 'honest',
      hashShare: 0,
      joinAtMs: capturer.joinAtMs + rng.range(5_000, 30_000),
      skewMs: rng.range(-20_000, 20_000),
      minerKey: nodes.length + k,
      bootstrapTo: [capturer.id],
      checkpointed: !withhold,
    }));
  const checkpointed = placed.map((spec, i) => (i > 0 && spec.role === 'honest' ? { ...spec, checkpointed: true } : spec));
  return [...checkpointed, ...joiners];
}
