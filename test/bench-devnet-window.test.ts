/**
 * The devnet suite's confirmed rate is timed from the miner's block connects as its status
 * answers show them (bench/devnet-nodes.ts `pollStatuses`, bench/devnet-run.ts `countedBlocks`):
 * another node's stall must not move them.
 */
import assert from 'node:assert/strict';
import { pollStatuses, type StatusAnswer } from '../bench/devnet-nodes.ts';
import { countedBlocks } from '../bench/devnet-run.ts';
import type { StatusResult } from '../node/rpc-types.ts';

const atHeight = (height: number) => ({ height, mempool: 0 }) as StatusResult;
const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

describe('bench: devnet window', () => {
  it("a node that does not answer holds up no other node's answers", async () => {
    let answerSlow!: () => void;
    const slowAnswers = new Promise<void>((resolve) => (answerSlow = resolve));
    let polling = true;
    let minerAnswers = 0;
    const poll = pollStatuses(
      2,
      async (i) => {
        if (i === 1) {
          await slowAnswers;
          return atHeight(0);
        }
        minerAnswers++;
        if (minerAnswers === 5) {
          polling = false;
          answerSlow();
        }
        return atHeight(minerAnswers);
      },
      nextTurn,
      () => polling,
    );
    await poll.done;
    assert.deepEqual(
      poll.answers[0]!.map((a) => a.status.height),
      [1, 2, 3, 4, 5],
    );
    assert.equal(poll.answers[1]!.length, 1);
  });

  it('a failed question ends the poll with its error', async () => {
    const poll = pollStatuses(1, () => Promise.reject(new Error('node-0 is gone')), nextTurn, () => true);
    await assert.rejects(poll.done, /node-0 is gone/);
  });

  it('counts the blocks after the first connected in the window, over the time from the first to the last', () => {
    const miner: StatusAnswer[] = [
      { at: 900, status: atHeight(4) },
      { at: 1_100, status: atHeight(5) },
      { at: 2_000, status: atHeight(5) },
      { at: 3_100, status: atHeight(7) },
      { at: 5_100, status: atHeight(8) },
      { at: 7_000, status: atHeight(9) },
    ];
    assert.deepEqual(countedBlocks(miner, 1_000, 6_000), { hA: 5, hB: 8, spanMs: 4_000, blockToBlock: true });
  });

  it('with fewer than two blocks in the window, counts its blocks over the whole window', () => {
    const miner: StatusAnswer[] = [
      { at: 900, status: atHeight(4) },
      { at: 3_000, status: atHeight(5) },
      { at: 7_000, status: atHeight(6) },
    ];
    assert.deepEqual(countedBlocks(miner, 1_000, 6_000), { hA: 4, hB: 5, spanMs: 5_000, blockToBlock: false });
  });
});
