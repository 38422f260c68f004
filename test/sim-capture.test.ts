/**
 * The simulator's capturer (sim/capture.ts): a cheap chain past the reorg depth, offered to a late
 * joiner that bootstraps off it alone. With the checkpoint an operator following the README gives
 * a new node, every invariant holds; with the joiner's checkpoint withheld, the joiner is captured
 * for good, so the adversary is known to bite.
 */
import assert from 'node:assert/strict';
import { simulate, type SimResult } from '../sim/run.ts';
import { scenario, type ScenarioOptions } from '../sim/scenario.ts';

const CAPTURE: ScenarioOptions = { adversaries: ['capturer'] };
const WITHHELD: ScenarioOptions = { ...CAPTURE, withholdCheckpoint: true };
/**
 * Seed 1 has a capturer of each kind (one just past the reorg depth, one to the honest height), 7
 * a long one, 8 a short one: with checkpoints, every invariant must hold for them.
 */
const SEEDS = ['1', '7', '8'];
/**
 * Whether a joiner with its checkpoint withheld is captured is a race with its discovery of honest
 * peers, which any change to a message's timing moves for some seed (seed 3's n6 escaped once a
 * blocks answer waited on store reads, 407948c). So the capture is judged over a sweep, not a
 * pinned seed: in seeds 1-10, 10 of 13 joiners are captured today.
 */
const SWEEP = Array.from({ length: 10 }, (_, i) => String(i + 1));

function explain(r: SimResult, withheld: boolean): string {
  const lines = Object.entries(r.violations).flatMap(([name, list]) => (list ?? []).map((v) => `  ${name}: ${v}`));
  return `seed ${r.seed} failed:\n${lines.join('\n')}\nreplay: simulate('${r.seed}', ${JSON.stringify(withheld ? WITHHELD : CAPTURE)})`;
}

/** The joiners the scenario gives its capturers: honest, bootstrapping off a capturer alone. */
function joiners(seed: string): string[] {
  const nodes = scenario(seed, CAPTURE).nodes;
  const capturers = new Set(nodes.filter((n) => n.role === 'capturer').map((n) => n.id));
  return nodes.filter((n) => n.role === 'honest' && n.bootstrapTo?.length === 1 && capturers.has(n.bootstrapTo[0]!)).map((n) => n.id);
}

describe('simulation: a capturer with a cheap chain, and joiners with checkpoints', function () {
  this.timeout(300_000);

  it('with checkpoints every invariant holds: its chains were built and offered, the one through the checkpoint banned, nobody captured', async () => {
    const acts: Record<string, number> = {};
    let banned = 0;
    for (const seed of SEEDS) {
      const r = await simulate(seed, CAPTURE);
      assert.ok(r.ok, explain(r, false));
      assert.deepEqual(Object.keys(r.roles).sort(), ['capturer', 'honest']);
      assert.deepEqual(r.captured, []);
      assert.ok(joiners(seed).length > 0, `seed ${seed} gives its capturers joiners`);
      for (const [k, v] of Object.entries(r.acts)) acts[k] = (acts[k] ?? 0) + v;
      banned += r.penalised['capturer'] ?? 0;
    }
    for (const act of ['short-cheap-chain', 'long-cheap-chain', 'offered']) assert.ok(acts[act]! > 0, `no ${act} in seeds ${SEEDS.join(', ')}: ${JSON.stringify(acts)}`);
    assert.ok(banned > 0, 'a chain with another block at a joiner\'s checkpoint height costs its capturer a ban');
  });

  it('with the joiner\'s checkpoint withheld, joiners are captured by each kind of cheap chain: they end on the capturer\'s, apart from the honest nodes', async () => {
    const joined: string[] = [];
    const captured: string[] = [];
    const capturedBy = new Set<string>();
    for (const seed of SWEEP) {
      const r = await simulate(seed, WITHHELD);
      const mine = joiners(seed);
      joined.push(...mine.map((j) => `${seed}:${j}`));
      for (const joiner of mine.filter((j) => r.captured?.includes(j))) {
        captured.push(`${seed}:${joiner}`);
        assert.match(r.violations.convergence?.join('\n') ?? '', new RegExp(`\\b${joiner}\\b`), `seed ${seed}: ${joiner} captured, and so apart from the honest tip`);
        assert.equal(r.ok, false, `seed ${seed}: a captured joiner is a violation`);
        // With one capturer in the run, the kind of chain that captured the joiner is the one built.
        const built = Object.keys(r.acts).filter((act) => act.endsWith('-cheap-chain'));
        if (built.length === 1) capturedBy.add(built[0]!);
      }
    }
    assert.ok(captured.length * 2 >= joined.length, `at least half the joiners are captured: ${captured.join(' ')} of ${joined.join(' ')}`);
    assert.deepEqual([...capturedBy].sort(), ['long-cheap-chain', 'short-cheap-chain'], `each kind captured a joiner alone (captured: ${captured.join(' ')})`);
  });

  it('a node below its checkpoint neither mines nor is judged for a gossiped block it may not take', async () => {
    // Seed 36: n7, at genesis below its checkpoint, won the lottery for block 1 (a real miner waits
    // there: CatchUpGate), and n8, at genesis below its own, was held to take it from gossip.
    const r = await simulate('36', CAPTURE);
    assert.ok(r.ok, explain(r, false));
  });

  it('a seed with capturers, run twice, gives the same trace byte for byte; the default mix has none', async () => {
    const a = await simulate('3', CAPTURE);
    const b = await simulate('3', CAPTURE);
    assert.deepEqual({ ...a, wallMs: 0 }, { ...b, wallMs: 0 });
    for (let seed = 1; seed <= 200; seed++) assert.ok(!scenario(String(seed)).nodes.some((n) => n.role === 'capturer' || n.checkpointed), `seed ${seed}`);
  });
});
