/**
 * The history check below a snapshot (node/history-check.ts) at the scale of a real chain, through
 * the real sync and serving code on the simulated network: a node joins by snapshot a chain of
 * over 4,096 blocks that carry transfers, from one server with the default serving limits, then
 * executes every block below its snapshot, fetched from that server alone.
 */
import assert from 'node:assert/strict';
import type { ChainParams } from '../ledger/genesis.ts';
import type { Transaction } from '../ledger/transaction.ts';
import { historyCheckStatus } from '../node/history-check.ts';
import { Checker } from '../sim/invariants.ts';
import { mineHistory } from '../sim/mining.ts';
import { Random } from '../sim/random.ts';
import { scenario, simParams } from '../sim/scenario.ts';
import { sign, Wallets } from '../sim/wallets.ts';
import { World } from '../sim/world.ts';

/** Past 4,096: what one connection was cut off at when the bodies below a snapshot counted as re-downloads. */
const HISTORY = 5_060;
const INTERVAL = 1_000;
/** The snapshot the joiner picks: the highest multiple of the interval at least the reorg depth below the tip. */
const BASE = 5_000;
const DEPTH = 16;
const TXS_PER_BLOCK = 2;

/** Transfers among the simulator's funded users, each sender's nonces in order. */
function transfers(params: ChainParams): (height: number) => Transaction[] {
  const users = new Wallets(8);
  const nonces = users.keys.map(() => 0n);
  return (height) =>
    Array.from({ length: TXS_PER_BLOCK }, (_, i) => {
      const from = (height * TXS_PER_BLOCK + i) % users.keys.length;
      const to = users.keys[(from + 1) % users.keys.length]!.address;
      return sign({ chainId: params.chainId, to, amount: 1n, fee: 1n, nonce: nonces[from]!++ }, users.keys[from]!);
    });
}

describe('history check of a long chain from one default server', function () {
  this.timeout(120_000);

  it(`executes all ${BASE} blocks below the snapshot, with their transfers, and nobody is punished`, async () => {
    const name = 'history-check-scale';
    const base = scenario(name, { calm: true, nodes: 2, minutes: 4 });
    const params = simParams(new Random(name), HISTORY);
    let history = 0;
    const world = new World({
      ...base,
      params,
      history: HISTORY,
      historyBlocks: () => {
        const blocks = mineHistory(params, HISTORY, base.wallets.minerAddress(0), transfers(params));
        history = blocks.reduce((sum, b) => sum + b.txs.length, 0);
        return blocks;
      },
      txPerMinute: 0,
      reorgDepth: DEPTH,
      // The server's block index holds the whole history in memory: every body the joiner asks for
      // is an ancestor of the tip it announced, which the old rule counted as a re-download.
      window: 2 * HISTORY,
      snapshotInterval: INTERVAL,
      nodes: [
        { ...base.nodes[0]!, hashShare: 0 },
        { ...base.nodes[1]!, hashShare: 0, joinAtMs: 10_000, snapshotSync: true, bootstrapTo: ['n0'] },
      ],
    });
    const checker = new Checker(world);
    checker.schedule(10_000);
    await world.run();
    await checker.final();
    const [n0, n1] = world.nodes.map((n) => n.node!);
    assert.deepEqual(Object.fromEntries(checker.violations), {});
    assert.equal(history, HISTORY * TXS_PER_BLOCK, 'every block carries transfers');
    assert.equal(n1!.db.history.stateBase, BASE, 'joined by snapshot');
    assert.equal(n1!.chain.tip.hashHex, n0!.chain.tip.hashHex, 'and caught up');
    assert.deepEqual(historyCheckStatus(n1!.db.history, n1!.historyCheck), { state: 'valid', height: BASE, target: BASE, reason: '' });
    for (const sim of world.nodes) sim.crash();
  });
});
