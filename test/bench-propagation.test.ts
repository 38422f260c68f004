/**
 * The propagation suite's figures (bench/propagation-report.ts) from measured samples: each
 * figure must be made of the samples its label and bench/README.md name.
 */
import assert from 'node:assert/strict';
import { propagationMetrics, type PropagationMeasured } from '../bench/propagation-report.ts';

/** Two networks whose blocks differ, so that a figure taken from the wrong one shows. */
const measured: PropagationMeasured = {
  threaded: {
    perNodeMs: [
      [5, 20, 30, 40, 50],
      [5, 25, 35, 45, 300],
      [5, 22, 33, 44, 55],
    ],
    reachMs: [30, 40, 35],
    cpuShares: [1.5, 1.6, 1.7],
  },
  inProcess: {
    arrivals: [
      { perNodeMs: [5, 100, 200, 300, 400], importMs: [40, 41, 42, 43] },
      { perNodeMs: [5, 100, 200, 300, 900], importMs: [40, 41, 42, 43] },
      { perNodeMs: [5, 100, 200, 300, 500], importMs: [40, 41, 42, 43] },
    ],
    gossipMs: [1000, 1100, 1200],
    rebuilt: 12,
    fetched: 0,
  },
  hop: { times: [45, 46, 47], forwardTimes: [3, 3, 3] },
};

const byKey = (key: string) => {
  const found = propagationMetrics(measured).find((m) => m.key === key);
  assert.ok(found, `no ${key}`);
  return found;
};

describe('bench: propagation figures', () => {
  it('propagationP50Ms is the median over the threaded network blocks of their last connect', () => {
    const p50 = byKey('propagationP50Ms');
    assert.deepEqual(p50.runs, [50, 300, 55]);
    assert.equal(p50.value, 55);
  });

  it("propagationMaxMs is the slowest of propagationP50Ms's blocks, not of the in-process network's", () => {
    const p50 = byKey('propagationP50Ms');
    const max = byKey('propagationMaxMs');
    assert.equal(max.value, Math.max(...p50.runs));
    assert.equal(max.value, 300);
  });

  it('the in-process figure stays apart from the threaded one', () => {
    assert.deepEqual(byKey('propagationInProcessP50Ms').runs, [400, 900, 500]);
  });
});
