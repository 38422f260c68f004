import type { LinkProfile, SimNetwork } from './network.ts';
import type { Random } from './random.ts';
import type { Scheduler } from './scheduler.ts';
import type { SimNode } from './sim-node.ts';

/**
 * What the faults act on: the world (sim/world.ts), which makes them, seen from here without
 * importing it (the two would otherwise import each other).
 */
export interface FaultTarget {
  readonly o: { readonly defaultLink: LinkProfile; readonly links: readonly { a: string; b: string; profile: LinkProfile }[]; readonly faults: readonly Fault[] };
  readonly scheduler: Scheduler;
  readonly rng: Random;
  readonly net: SimNetwork;
  readonly nodes: readonly SimNode[];
  record(line: string): void;
  node(id: string): SimNode;
  countFault(kind: string): void;
  goingDown(sim: SimNode): void;
  startNode(sim: SimNode): Promise<void>;
  submitTx(style: 'valid' | 'conflicting' | 'replacing'): Promise<unknown>;
}

/** A fault the scenario applies at a simulated time. */
export type Fault =
  | { readonly kind: 'partition'; readonly atMs: number; readonly healMs: number; readonly sides: readonly (readonly string[])[] }
  /** A kill -9; `duringImport`: at the node's next block, within the few ms its writes take. */
  | { readonly kind: 'crash'; readonly atMs: number; readonly node: string; readonly restartMs: number; readonly duringImport?: boolean }
  | { readonly kind: 'restart'; readonly atMs: number; readonly node: string; readonly restartMs: number }
  | { readonly kind: 'link'; readonly atMs: number; readonly a: string; readonly b: string; readonly profile: LinkProfile; readonly untilMs: number }
  | { readonly kind: 'burst'; readonly atMs: number; readonly txs: number; readonly style: 'valid' | 'conflicting' | 'replacing' };

/**
 * What a seed does to its network, and its end: partitions, crashes and restarts, lossy links,
 * bursts of transactions, nodes that leave; then the quiet period, which must be quiet.
 */
export class Faults {
  private readonly world: FaultTarget;
  /** Partitions and link faults in effect now: while any is, blocks may take any time to spread. */
  readonly inEffect = new Set<Fault>();
  /**
   * When the network last changed for the worse: a fault began or ended, a node went down, two
   * honest nodes lost their connection. A bound on how fast a block spreads holds only over a
   * stretch of time with none of these.
   */
  lastDisturbanceMs = -Infinity;
  /** When the faults ended, and the network's loss counts then; and nodes taken down after. */
  private quietFrom: { atMs: number; dropped: number; duplicated: number } | undefined;
  private readonly quietBroken: string[] = [];

  constructor(world: FaultTarget) {
    this.world = world;
  }

  /** Once they have, what the faults scheduled for later does nothing. */
  private get ended(): boolean {
    return this.quietFrom !== undefined;
  }

  disturbed(): void {
    this.lastDisturbanceMs = this.world.scheduler.now;
  }

  /**
   * Every fault ends: links lose nothing again (a pair a link fault touched included: back to its
   * own latency), partitions heal, crashed nodes come back, and whatever a fault had scheduled for
   * later does nothing, so that the quiet period is quiet.
   */
  end(): void {
    this.world.record('faults end');
    this.disturbed();
    this.inEffect.clear();
    this.quietFrom = { atMs: this.world.scheduler.now, dropped: this.world.net.stats.dropped, duplicated: this.world.net.stats.duplicated };
    this.world.net.heal();
    this.world.net.defaultLink = { ...this.world.o.defaultLink, drop: 0, duplicate: 0 };
    for (const l of this.world.o.links) this.world.net.setLink(l.a, l.b, { ...l.profile, drop: 0, duplicate: 0 });
    for (const f of this.world.o.faults) if (f.kind === 'link') this.restoreLink(f.a, f.b);
    for (const sim of this.world.nodes) if (!sim.up && !sim.gone && sim.lives > 0) void this.world.startNode(sim);
  }

  /** The pair's own link as the scenario made it, or the network's default if it has none. */
  private restoreLink(a: string, b: string): void {
    const own = this.world.o.links.find((l) => (l.a === a && l.b === b) || (l.a === b && l.b === a));
    const lossless = (p: LinkProfile) => (this.ended ? { ...p, drop: 0, duplicate: 0 } : p);
    if (own) this.world.net.setLink(a, b, lossless(own.profile));
    else this.world.net.clearLink(a, b);
  }

  /** Node `sim` leaves for good, crashed or stopped. */
  leave(sim: SimNode): void {
    this.world.countFault('leave');
    this.world.record(`leave ${sim.id}`);
    sim.gone = true;
    this.takeDown(sim, this.world.rng.chance(0.5) ? 'crash' : 'stop');
  }

  private takeDown(sim: SimNode, how: 'crash' | 'stop'): void {
    this.disturbed();
    this.world.goingDown(sim);
    if (this.quietFrom) this.quietBroken.push(`${sim.id} went down (${how}) ${((this.world.scheduler.now - this.quietFrom.atMs) / 1000).toFixed(1)} s after the faults ended`);
    if (how === 'crash') sim.crash();
    else void sim.stop();
  }

  /**
   * What broke the quiet period's promise (no message lost or duplicated, no node down), which
   * convergence and the liveness checks rely on: a fault that outlived the end of the faults.
   */
  quietViolations(): string[] {
    if (!this.quietFrom) return [];
    const { dropped, duplicated } = this.world.net.stats;
    const lost = dropped - this.quietFrom.dropped;
    const twice = duplicated - this.quietFrom.duplicated;
    return [...this.quietBroken, ...(lost + twice > 0 ? [`${lost} messages lost and ${twice} duplicated after the faults ended`] : [])];
  }

  apply(f: Fault): void {
    if (this.ended) return;
    this.world.countFault(f.kind);
    const s = this.world.scheduler;
    switch (f.kind) {
      case 'partition': {
        this.world.record(`partition ${f.sides.map((side) => side.join(',')).join(' | ')}`);
        this.world.net.partition(f.sides);
        this.disturbed();
        this.inEffect.add(f);
        s.after(f.healMs, () => {
          if (this.ended) return;
          this.world.record('heal');
          this.world.net.heal();
          this.disturbed();
          // One heal ends every partition (there is one map of sides).
          for (const other of this.inEffect) if (other.kind === 'partition') this.inEffect.delete(other);
        });
        return;
      }
      case 'crash':
      case 'restart': {
        const sim = this.world.node(f.node);
        if (!sim.up || sim.gone) return;
        const down = () => {
          // An aimed crash waits for the node's next block, which may come after the faults end.
          if (!sim.up || sim.gone || this.ended) return;
          this.world.record(`${f.kind} ${sim.id}`);
          this.takeDown(sim, f.kind === 'crash' ? 'crash' : 'stop');
          s.after(f.restartMs, () => void this.world.startNode(sim));
        };
        if (f.kind === 'crash' && f.duringImport) {
          // Like the crash tests' aimed kills: while the block's batches are on their way to disk.
          const delay = this.world.rng.fork(`crash-${f.atMs}`).int(6);
          sim.node!.once('block', () => void s.after(delay, down));
        } else {
          down();
        }
        return;
      }
      case 'link': {
        this.world.net.setLink(f.a, f.b, f.profile);
        this.disturbed();
        this.inEffect.add(f);
        s.after(f.untilMs, () => {
          if (this.ended) return;
          this.restoreLink(f.a, f.b);
          this.disturbed();
          this.inEffect.delete(f);
        });
        return;
      }
      case 'burst':
        this.world.record(`burst ${f.style} ${f.txs}`);
        for (let i = 0; i < f.txs; i++) void this.world.submitTx(f.style);
        return;
    }
  }
}
