/**
 * Block propagation against the number of nodes, in the deterministic simulator (sim/): the real
 * node code, many nodes in one process on simulated time, where 10 or 20 real processes would not
 * fit on the development machine. A calm scenario (no faults or adversaries; users send about 30
 * transfers a minute), every link with the same 50 ms latency and no jitter or loss; nodes take no
 * simulated time to compute: the figure is how many hops and round trips gossip and
 * compact-block relay need as the network grows, in milliseconds of links, not the CPU's cost.
 */
import { toHex } from '../ledger/bytes.ts';
import { scenario } from '../sim/scenario.ts';
import { SIM_EPOCH_MS, World } from '../sim/world.ts';
import { median } from './report.ts';
import type { CurvePoint } from './scaling-sync.ts';
import type { SuiteContext } from './report.ts';

const LINK = { latencyMs: 50, jitterMs: 0, drop: 0, duplicate: 0 };
/** Blocks before this are the network forming (nodes join 200 ms apart, discovery runs every 20 s). */
const WARMUP_MS = 60_000;

/** One seeded run: the p50 over its blocks of "the miner's connect to the last node's", and the blocks counted. */
async function propagationRun(nodes: number, seed: string, minutes: number): Promise<{ p50: number; blocks: number; wallMs: number }> {
  const started = performance.now();
  const options = { ...scenario(seed, { nodes, calm: true, minutes }), defaultLink: LINK, links: [] };
  const world = new World(options);
  const arrivals = new Map<string, number[]>();
  world.observe({
    onNode(_sim, node) {
      node.on('block', (block) => {
        const at = world.scheduler.now - SIM_EPOCH_MS;
        if (at < WARMUP_MS) return;
        const key = toHex(block.header.hash);
        const list = arrivals.get(key) ?? [];
        list.push(at);
        arrivals.set(key, list);
      });
    },
  });
  try {
    await world.run();
  } finally {
    for (const sim of world.nodes) sim.crash();
  }
  const spreads = [...arrivals.values()].filter((a) => a.length === nodes).map((a) => Math.max(...a) - Math.min(...a));
  if (spreads.length === 0) throw new Error(`no block reached all ${nodes} nodes in seed ${seed}`);
  return { p50: median(spreads), blocks: spreads.length, wallMs: performance.now() - started };
}

export async function propagationByNodes(ctx: SuiteContext, counts: readonly number[], runs: number, minutes: number): Promise<CurvePoint[]> {
  const points: CurvePoint[] = [];
  for (const nodes of counts) {
    const results = [];
    for (let r = 0; r < runs; r++) results.push(await propagationRun(nodes, `scaling-${nodes}-${r}`, minutes));
    const note =
      `simulated, 50 ms links; each run one seed (${minutes} simulated minutes), its value the p50 over ${results.map((x) => x.blocks).join('/')} blocks that reached every node; ` +
      `wall time per run ${results.map((x) => (x.wallMs / 1000).toFixed(1)).join('/')} s`;
    ctx.log(`scaling: propagation over ${nodes} nodes: p50 ${results.map((x) => x.p50).join(', ')} ms (${note})`);
    points.push({ x: nodes, runs: results.map((x) => x.p50), note });
  }
  return points;
}
