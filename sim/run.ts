import { Checker, INVARIANTS, type InvariantName } from './invariants.ts';
import { scenario, type ScenarioOptions } from './scenario.ts';
import { World } from './world.ts';
import { arm } from './adversary.ts';
import { SimLightClients, lightClientSpecs } from './light-clients.ts';
import { Capturers } from './capture.ts';

export interface SimResult {
  readonly seed: string;
  readonly nodes: number;
  readonly simulatedSeconds: number;
  readonly wallMs: number;
  readonly blocks: number;
  readonly txs: number;
  readonly reorgs: number;
  /** The most blocks one reorganisation took off a node's chain. */
  readonly deepestReorg: number;
  /** What the liveness checks judged (sim/liveness.ts): (block, node) pairs; blocks not judged, mined in faults or over lossy links; pairs not judged, the block's branch ahead of the node's clock; users' transactions. */
  readonly liveness: { readonly judged: number; readonly faulty: number; readonly lossy: number; readonly aheadOfClock: number; readonly txsJudged: number };
  /** Nodes that joined by snapshot sync. */
  readonly snapshotJoins: number;
  /** Tree nodes the nodes read from their stores below the top: when needed, and ahead of a block (TreeStore.prefetch). */
  readonly treeReads: { readonly nodes: number; readonly prefetched: number };
  readonly faults: Record<string, number>;
  /** What the adversaries that break no rule did: blocks at the timestamps' edges, equivocations, bodies withheld, replays. */
  readonly acts: Record<string, number>;
  readonly roles: Record<string, number>;
  /** Penalties honest nodes gave each adversary role (its identities' included). */
  readonly penalised: Record<string, number>;
  /** With light clients (ScenarioOptions.lightClients): how many, those judged at the end (on an honest node's tip), accounts proven, their crashes and clean stops; accounts asked for while the network ran, proven, and compared with an honest node at that block; bans they gave adversaries; clients left on a withholder's chain of as much work (not judged); ties taken (a move to a chain of as much work, away from a tip nobody proved against). */
  /** With a capturer (sim/capture.ts): the honest nodes that ended on a capturer's chain. */
  readonly captured?: readonly string[];
  readonly lightClients?: { readonly clients: number; readonly checked: number; readonly proofs: number; readonly crashes: number; readonly stops: number; readonly queries: number; readonly queriesProven: number; readonly queriesCompared: number; readonly adversariesBanned: number; readonly onWithheldChain: number; readonly ties: number };
  readonly events: number;
  readonly traceHash: string;
  readonly invariants: Record<InvariantName, 'pass' | 'fail'>;
  readonly violations: Partial<Record<InvariantName, string[]>>;
  readonly ok: boolean;
}

/**
 * Runs `work` on `world`, with errors thrown from node code meanwhile (unhandled rejections) kept
 * in world.crashes rather than crashing the simulator; then every node is taken down.
 */
export async function catchingRejections(world: World, work: () => Promise<void>): Promise<void> {
  const onRejection = (err: unknown) => world.crashes.push(`unhandled rejection: ${(err as Error)?.stack ?? String(err)}`);
  process.on('unhandledRejection', onRejection);
  try {
    await work();
  } finally {
    process.off('unhandledRejection', onRejection);
    for (const sim of world.nodes) sim.crash();
  }
}

/**
 * Runs one seeded scenario to the end and checks every invariant. Errors thrown from node code
 * while it runs (unhandled rejections) are caught and count as violations, not as a crash of
 * the simulator.
 */
export async function simulate(seed: string, options: ScenarioOptions = {}): Promise<SimResult> {
  const started = performance.now();
  const o = scenario(seed, options);
  const world = new World(o);
  const checker = new Checker(world);
  arm(world, checker);
  const capturers = o.nodes.some((n) => n.role === 'capturer') ? new Capturers(world) : undefined;
  let captured: string[] | undefined;
  const lights = options.lightClients ? new SimLightClients(world, lightClientSpecs(seed, options.lightClients, o.nodes.map((n) => n.id), o.durationMs)) : undefined;
  lights?.schedule();
  try {
    await catchingRejections(world, async () => {
      checker.schedule(10_000);
      await world.run();
      await checker.final();
      captured = await capturers?.captured();
      await lights?.final((message) => checker.fail('light-clients', message));
    });
  } finally {
    lights?.shutdown();
  }
  const roles: Record<string, number> = {};
  for (const n of o.nodes) roles[n.role] = (roles[n.role] ?? 0) + 1;
  const invariants = checker.results();
  return {
    seed,
    nodes: o.nodes.length,
    simulatedSeconds: (o.durationMs + o.quietMs) / 1000,
    wallMs: Math.round(performance.now() - started),
    blocks: world.counts.blocks,
    txs: world.counts.txs,
    reorgs: world.counts.reorgs,
    deepestReorg: world.counts.deepestReorg,
    liveness: { ...checker.liveness.counts },
    snapshotJoins: world.counts.snapshotJoins,
    treeReads: {
      nodes: world.nodes.reduce((sum, n) => sum + n.treeReads.nodes, 0),
      prefetched: world.nodes.reduce((sum, n) => sum + n.treeReads.prefetched, 0),
    },
    faults: world.counts.faults,
    acts: world.counts.acts,
    roles,
    penalised: { ...checker.penalised },
    ...(captured ? { captured } : {}),
    ...(lights ? { lightClients: { clients: lights.specs.length, ...lights.counts } } : {}),
    events: world.scheduler.events,
    traceHash: world.traceHash(),
    invariants,
    violations: Object.fromEntries(checker.violations),
    ok: INVARIANTS.every((name) => invariants[name] === 'pass'),
  };
}
