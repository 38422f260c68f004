/**
 * The simulator's adversaries that break no rule (sim/lawful-adversaries.ts): a miner at the edges of
 * the timestamp rules, an equivocator, a withholder of bodies, a replayer of old blocks and
 * transactions, an eclipser announcing identities of one host. Each runs in seeds of its own,
 * does what it is for (its acts are counted), and every invariant holds against it; a seed with
 * all of them (the capturer too: test/sim-capture.test.ts) is deterministic; and the default mix,
 * which every other seed runs, never has them.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { simulate, type SimResult } from '../sim/run.ts';
import { EXTRA_ADVERSARIES, scenario } from '../sim/scenario.ts';
import type { Role } from '../sim/sim-node.ts';

function explain(r: SimResult, roles: readonly Role[]): string {
  const lines = Object.entries(r.violations).flatMap(([name, list]) => (list ?? []).map((v) => `  ${name}: ${v}`));
  return `seed ${r.seed} failed:\n${lines.join('\n')}\nreplay: npm run sim -- --seed ${r.seed} --adversaries ${roles.join(',')}`;
}

/** Short seeds where each role acts (from sweeps of seeds 1-25 with it), and what it must have done there. */
const CASES: readonly { role: Role; seeds: readonly string[]; acts: readonly string[] }[] = [
  { role: 'timewarper', seeds: ['10', '4'], acts: ['future-edge', 'past-edge'] },
  { role: 'equivocator', seeds: ['10', '16'], acts: ['equivocation'] },
  { role: 'withholder', seeds: ['4', '10'], acts: ['block-withheld', 'bodies-withheld'] },
  { role: 'replayer', seeds: ['21', '2'], acts: ['block-replayed', 'tx-replayed', 'stale-block-replayed'] },
  // Its identities take up to all of the target's WANTED_PEERS outbound connections (node/peer-book.ts):
  // no invariant breaks (inbound and bootstrap peers stay honest), and how many it held is measured.
  { role: 'eclipser', seeds: ['3', '5'], acts: ['outbound-held'] },
];

describe('simulation: adversaries that break no rule', function () {
  this.timeout(300_000);

  for (const { role, seeds, acts } of CASES) {
    it(`${role}: every invariant holds, and it did what it is for (${acts.join(', ')})`, async () => {
      const done: Record<string, number> = {};
      for (const seed of seeds) {
        const r = await simulate(seed, { adversaries: [role] });
        assert.ok(r.roles[role]! > 0, `seed ${seed} has a ${role}: ${JSON.stringify(r.roles)}`);
        assert.ok(r.ok, explain(r, [role]));
        assert.deepEqual(Object.keys(r.roles).sort(), ['honest', role].sort());
        for (const [k, v] of Object.entries(r.acts)) done[k] = (done[k] ?? 0) + v;
      }
      for (const act of acts) assert.ok(done[act]! > 0, `no ${act} in seeds ${seeds.join(', ')}: ${JSON.stringify(done)}`);
    });
  }

  it('a seed with all of them, run twice, gives the same trace byte for byte', async () => {
    for (const seed of ['3', '5']) {
      const a = await simulate(seed, { adversaries: EXTRA_ADVERSARIES });
      const b = await simulate(seed, { adversaries: EXTRA_ADVERSARIES });
      assert.equal(a.traceHash, b.traceHash, `seed ${seed}`);
      assert.deepEqual({ ...a, wallMs: 0 }, { ...b, wallMs: 0 });
      assert.ok(Object.keys(a.acts).length > 0, `seed ${seed}: the adversaries acted`);
    }
  });

  it('the default mix never has them, so every other seed runs as it did', () => {
    for (let seed = 1; seed <= 1000; seed++) {
      const roles = scenario(String(seed)).nodes.map((n) => n.role);
      assert.ok(!roles.some((r) => EXTRA_ADVERSARIES.includes(r)), `seed ${seed}: ${roles.join(' ')}`);
    }
  });

  it('--adversaries with a role that does not exist says which, with the roles there are, and exits 2', () => {
    const run = spawnSync(process.execPath, [fileURLToPath(new URL('../sim/cli.ts', import.meta.url)), '--seed', '1', '--adversaries', 'equivocator,bogus'], { encoding: 'utf8' });
    assert.equal(run.status, 2);
    assert.match(run.stderr, /--adversaries takes roles among .*timewarper, equivocator, withholder, replayer.*not "bogus"/);
    assert.equal(run.stdout, '', 'nothing ran');
  });
});
