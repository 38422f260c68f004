/**
 * node/chain-info.ts: chain tips with forks, recent-block summaries, difficulty and hash rate, and
 * the fee suggestion (the minimum when blocks have room; what beats the block's worth of pending
 * transactions when the mempool is over a block; the cheapest fee of recent full blocks).
 */
import assert from 'node:assert/strict';
import { ChainDB } from '../ledger/chaindb.ts';
import { toHex } from '../ledger/bytes.ts';
import { encodeAddress } from '../ledger/keys.ts';
import { Mempool } from '../ledger/mempool.ts';
import { Chain } from '../consensus/chain.ts';
import { blockWork } from '../consensus/pow.ts';
import { blockCapacity, chainTips, estimateFee, networkHashRate, nextBlockDifficulty, recentBlocks } from '../node/chain-info.ts';
import { FUNDED_KEYS, tempDir, testKey, testParams, transfer } from './helpers/fixtures.ts';
import { asParent, mineChain, mineChild } from './helpers/mining.ts';

describe('chain-info: what status, blocks, tips and estimateFee answer', () => {
  // Three transactions fill a block, so "full" is cheap to reach.
  const params = testParams({ maxBlockTxs: 3 });
  let dir: ReturnType<typeof tempDir>;
  let db: ChainDB;
  let chain: Chain;
  let mempool: Mempool;
  const now = params.timestamp + 1_000_000;

  beforeEach(async () => {
    dir = tempDir();
    db = await ChainDB.open(dir.path, params);
    chain = await Chain.open(db, { clock: () => now });
    mempool = new Mempool(db, params, { minFee: 2n });
  });
  afterEach(async () => {
    await db.close();
    dir.remove();
  });
  const genesis = () => ({ hash: db.genesis.header.hash, height: 0, header: db.genesis.header });

  it('tips: the main tip first, then each fork with its length from the fork point', async () => {
    const main = mineChain(params, genesis(), 4, { miner: testKey(10).address });
    for (const b of main) await chain.processBlock(b);
    const fork = mineChain(params, asParent(main[1]!), 2, { miner: testKey(11).address });
    for (const b of fork) await chain.processBlock(b);
    const tips = chainTips(chain);
    assert.deepEqual(tips.map((t) => [t.status, t.height, t.branchLength, t.forkHeight]), [['active', 4, 0, 4], ['valid-fork', 4, 2, 2]]);
    assert.equal(tips[1]!.hash, toHex(fork[1]!.header.hash));
    assert.deepEqual(chainTips(await reopen()).map((t) => t.status), ['active', 'valid-fork'], 'the same after a restart');
  });

  it('recent blocks: newest first, with txs, size, fees and miner; genesis has no miner', async () => {
    const [a, b] = FUNDED_KEYS as [(typeof FUNDED_KEYS)[0], (typeof FUNDED_KEYS)[0]];
    const b1 = mineChild(params, genesis(), [transfer(a, b.address, 5n, 0n, 7n)], { miner: testKey(10).address });
    await chain.processBlock(b1);
    const list = await recentBlocks(chain, 10);
    assert.deepEqual(list.map((s) => [s.height, s.txs, s.fees, s.miner]), [[1, 1, '7', encodeAddress(testKey(10).address)], [0, 0, '0', null]]);
    assert.equal(list[0]!.size, b1.bytes.length);
    assert.deepEqual((await recentBlocks(chain, 1, 0)).map((s) => s.height), [0]);
  });

  it('difficulty is the next block\'s work; the hash rate is the recent work over its time', async () => {
    assert.equal(networkHashRate(chain), undefined, 'unknown before there are blocks to time');
    const blocks = mineChain(params, genesis(), 3);
    for (const b of blocks) await chain.processBlock(b);
    assert.equal(nextBlockDifficulty(chain), blockWork(chain.nextBlockRules().target));
    const span = blocks[2]!.header.timestamp - blocks[0]!.header.timestamp;
    assert.equal(networkHashRate(chain), Number(chain.tip.totalWork - chain.mainAt(1)!.totalWork) / span);
  });

  it('fee: the minimum while blocks have room; above the block\'s worth of pending; never below recent full blocks', async () => {
    assert.equal(blockCapacity(chain), 3);
    assert.deepEqual(await estimateFee(chain, mempool), { fee: '2', minFee: '2', basis: 'minimum', blockCapacity: 3, mempoolTxs: 0, fullRecentBlocks: 0, recentBlocks: 0 });
    const senders = FUNDED_KEYS;
    const sink = testKey(50).address;
    // Four pending at fees 9, 5, 4, 3: a fourth of them waits; to be in the next block, beat 4.
    for (const [i, fee] of [9n, 5n, 4n, 3n].entries()) await mempool.add(transfer(senders[i]!, sink, 1n, 0n, fee), now);
    const crowded = await estimateFee(chain, mempool);
    assert.deepEqual([crowded.fee, crowded.basis, crowded.mempoolTxs], ['5', 'mempool', 4]);

    // A full block whose cheapest transaction paid 6 sets the floor once the mempool is quiet again.
    const txs = [0, 1, 2].map((i) => transfer(senders[i]!, sink, 1n, 0n, BigInt(6 + i)));
    await chain.processBlock(mineChild(params, genesis(), txs));
    const quiet = new Mempool(db, params, { minFee: 2n });
    const after = await estimateFee(chain, quiet);
    assert.deepEqual([after.fee, after.basis, after.fullRecentBlocks, after.recentBlocks], ['6', 'recent-blocks', 1, 1]);
  });

  async function reopen(): Promise<Chain> {
    await chain.idle();
    await db.close();
    db = await ChainDB.open(dir.path, params);
    chain = await Chain.open(db, { clock: () => now });
    return chain;
  }
});
