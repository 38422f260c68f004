/**
 * The devnet suite's RSS figures (bench/devnet-nodes.ts `rssPeaks`): issue #19 asks for node RSS
 * under the devnet load with every sample from start to end and no window excluded.
 */
import assert from 'node:assert/strict';
import { rssPeaks } from '../bench/devnet-nodes.ts';

describe('bench: devnet RSS', () => {
  it('counts every sample, those taken during the convergence check included', () => {
    const samples = [
      { mb: 90, auditing: false },
      { mb: 240, auditing: false },
      { mb: 262, auditing: true },
      { mb: 180, auditing: true },
    ];
    assert.deepEqual(rssPeaks(samples), { mb: 262, beforeAuditMb: 240 });
  });

  it('a node never sampled has no figure above zero (the suite then leaves the figure out)', () => {
    assert.deepEqual(rssPeaks([]), { mb: 0, beforeAuditMb: 0 });
  });
});
