/**
 * The deterministic simulation (sim/): a fixed sweep of short seeded scenarios, every invariant
 * checked in each, and determinism itself: one seed run twice gives the same trace, byte for
 * byte. A failing seed prints the command that replays it; a seed that once found a bug stays
 * in REGRESSIONS.
 */
import assert from 'node:assert/strict';
import { simulate, type SimResult } from '../sim/run.ts';

const SWEEP = 200;

/** Seeds that found bugs, and what they found (each also fails with the bug put back). */
const REGRESSIONS: readonly { seed: string; found: string }[] = [
  { seed: '3', found: 'sync charged 25 ban score for a timeout on a lossy link, so honest peers were banned' },
  { seed: '126', found: 'a body provider that tampered with a body got the honest header peer of the round banned too' },
  { seed: '148', found: 'the same, in a network with a liar besides the tamperer' },
];

function explain(r: SimResult): string {
  const lines = Object.entries(r.violations).flatMap(([name, list]) => (list ?? []).map((v) => `  ${name}: ${v}`));
  return `seed ${r.seed} failed:\n${lines.join('\n')}\nreplay: npm run sim -- --seed ${r.seed}`;
}

describe('simulation', function () {
  this.timeout(900_000);

  it('one seed, run twice, gives the same trace byte for byte', async () => {
    const a = await simulate('determinism', { nodes: 8, minutes: 4 });
    const b = await simulate('determinism', { nodes: 8, minutes: 4 });
    assert.equal(a.traceHash, b.traceHash);
    assert.deepEqual({ ...a, wallMs: 0 }, { ...b, wallMs: 0 });
    assert.ok(a.blocks > 10 && a.events > 1000, `a run that does something: ${a.blocks} blocks, ${a.events} events`);
  });

  it('regression seeds stay fixed', async () => {
    for (const { seed } of REGRESSIONS) {
      const r = await simulate(seed);
      assert.ok(r.ok, explain(r));
    }
  });

  it(`${SWEEP} seeded scenarios keep every invariant`, async () => {
    const failed: string[] = [];
    let blocks = 0;
    let reorgs = 0;
    let wallMs = 0;
    const faults: Record<string, number> = {};
    const roles: Record<string, number> = {};
    for (let seed = 1; seed <= SWEEP; seed++) {
      const r = await simulate(String(seed));
      blocks += r.blocks;
      reorgs += r.reorgs;
      wallMs += r.wallMs;
      for (const [k, v] of Object.entries(r.faults)) faults[k] = (faults[k] ?? 0) + v;
      for (const [k, v] of Object.entries(r.roles)) roles[k] = (roles[k] ?? 0) + v;
      if (!r.ok) failed.push(explain(r));
    }
    console.log(`      ${SWEEP} seeds in ${(wallMs / 1000).toFixed(1)} s: ${blocks} blocks, ${reorgs} reorgs; faults ${JSON.stringify(faults)}; nodes ${JSON.stringify(roles)}`);
    assert.deepEqual(failed, []);
  });
});
