import assert from 'node:assert/strict';
import { stateDigest } from '../ledger/audit.ts';
import { FUNDED_KEYS, testKey, transfer } from './helpers/fixtures.ts';
import { mineOn, networkParams, sameTip, startNode, stopAll, waitFor, type TestNode } from './helpers/network.ts';

const params = networkParams();
const [alice] = FUNDED_KEYS as [(typeof FUNDED_KEYS)[0]];

describe('network: gossip and sync between nodes on 127.0.0.1', function () {
  this.timeout(60_000);
  let nodes: TestNode[] = [];
  afterEach(async () => {
    await stopAll(nodes);
    nodes = [];
  });

  it('two nodes exchange transactions and blocks', async () => {
    const a = await startNode(params);
    const b = await startNode(params, [a.addr]);
    nodes.push(a, b);
    await waitFor(() => b.node.sync.statuses.size > 0 && a.node.sync.statuses.size > 0, 10_000, 'handshake');
    await mineOn(a, 1);
    const ms = await waitFor(() => sameTip([a, b]), 10_000, 'B to receive the block');
    const tx = transfer(alice, testKey(70).address, 1234n, 0n, 7n);
    await b.node.submitTransaction(tx);
    await waitFor(() => a.node.mempool.has(tx.id), 10_000, 'A to receive the transaction');
    await mineOn(a, 1);
    await waitFor(() => sameTip([a, b]), 10_000, 'B to receive the second block');
    assert.deepEqual(await b.node.db.getAccount(testKey(70).address), { balance: 1234n, nonce: 0n });
    assert.equal(b.node.mempool.has(tx.id), false);
    console.log(`      block reached B in ${ms} ms`);
  });
});

describe('network: convergence, late joiners, partitions', function () {
  this.timeout(120_000);
  let nodes: TestNode[] = [];
  afterEach(async () => {
    await stopAll(nodes);
    nodes = [];
  });

  it('five nodes in a line A–B–C–D–E converge after blocks are mined at both ends', async () => {
    const a = await startNode(params);
    nodes.push(a);
    for (let i = 1; i < 5; i++) nodes.push(await startNode(params, [nodes[i - 1]!.addr]));
    const e = nodes[4]!;
    await waitFor(() => nodes.every((n) => n.node.sync.statuses.size > 0), 15_000, 'every node to know a peer');
    await Promise.all([mineOn(a, 3, 61), mineOn(e, 4, 62)]);
    const ms = await waitFor(() => sameTip(nodes) && a.node.chain.tip.height === 4, 30_000, 'all five on the 4-block chain');
    const digests = await Promise.all(nodes.map((n) => stateDigest(n.node.db)));
    assert.equal(new Set(digests).size, 1, 'identical state everywhere');
    console.log(`      five nodes converged ${ms} ms after mining`);
  });

  it('a late joiner syncs a 500-block chain', async () => {
    const a = await startNode(params);
    nodes.push(a);
    const txs = Array.from({ length: 20 }, (_, i) => transfer(alice, testKey(80 + (i % 5)).address, 10n, BigInt(i)));
    for (const tx of txs) await a.node.mempool.add(tx, a.node.clock());
    await mineOn(a, 500);
    assert.equal(a.node.chain.tip.height, 500);
    const started = Date.now();
    const late = await startNode(params, [a.addr]);
    nodes.push(late);
    await waitFor(() => late.node.chain.tip.height === 500, 60_000, 'the late joiner to reach height 500');
    const seconds = (Date.now() - started) / 1000;
    assert.equal(late.node.chain.tip.hashHex, a.node.chain.tip.hashHex);
    assert.equal(await stateDigest(late.node.db), await stateDigest(a.node.db));
    console.log(`      synced 500 blocks in ${seconds.toFixed(2)} s (${Math.round(500 / seconds)} blocks/s)`);
  });

  it('partition and heal: every node ends on the most-work chain, and the losing side\'s transactions are mined again', async () => {
    const a = await startNode(params);
    const b = await startNode(params, [a.addr]);
    const c = await startNode(params);
    const d = await startNode(params, [c.addr]);
    nodes.push(a, b, c, d);
    await waitFor(() => b.node.sync.statuses.size > 0 && d.node.sync.statuses.size > 0, 15_000, 'both halves connected');
    const lost = transfer(alice, testKey(90).address, 500n, 0n, 3n);
    await a.node.submitTransaction(lost);
    await mineOn(a, 2, 63); // the losing side: 2 blocks, one carrying `lost`
    await mineOn(c, 4, 64); // the winning side: 4 blocks
    await waitFor(() => sameTip([a, b]) && sameTip([c, d]), 15_000, 'each side to agree within itself');
    assert.ok(await b.node.db.getTxLocation(lost.id), 'confirmed on the losing side');

    await b.node.connect(c.addr); // heal
    const ms = await waitFor(() => sameTip([a, b, c, d]) && a.node.chain.tip.height === 4, 30_000, 'all four on the 4-block chain');
    await waitFor(() => c.node.mempool.has(lost.id), 15_000, 'the orphaned transaction to reach the winning side');
    await mineOn(c, 1, 64);
    await waitFor(async () => sameTip([a, b, c, d]) && (await a.node.db.getTxLocation(lost.id)) !== undefined, 15_000, 'the transaction to be mined again everywhere');
    const digests = await Promise.all(nodes.map((n) => stateDigest(n.node.db)));
    assert.equal(new Set(digests).size, 1, 'identical state everywhere');
    assert.equal((await d.node.db.getAccount(testKey(90).address))?.balance, 500n);
    console.log(`      healed partition converged in ${ms} ms`);
  });
});
