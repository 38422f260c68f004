/**
 * Scenario 3 of the resilience suite: a network split in two. Group X (A mining, B) and group Y
 * (C mining, D) start with no link between them and mine apart, each confirming a transaction the
 * other never sees. Then X stops mining and a bridge node E that bootstraps from B and D joins the
 * halves: every node must end on Y's chain (the one with the most work), with identical state,
 * and X's transaction, reorganised out with X's whole chain, must be confirmed again on it.
 */
import assert from 'node:assert/strict';
import { encodeAddress } from '../../ledger/keys.ts';
import { RPC_ERRORS } from '../../node/rpc-types.ts';
import { RpcClientError } from '../../cli/rpc-client.ts';
import { testKey } from '../helpers/fixtures.ts';
import { clusters, commonHead, report, secs, signedTransfer, waitFor, type NodeProc } from '../helpers/cluster.ts';

const X_SENDER = testKey(301);
const Y_SENDER = testKey(302);

/** The transaction's status on `node`, or 'unknown' when the node has never heard of it. */
async function txStatus(node: NodeProc, id: string): Promise<{ status: string; blockHash: string | null }> {
  try {
    return await node.call('getTransaction', { id });
  } catch (err) {
    if (err instanceof RpcClientError && err.rpcCode === RPC_ERRORS.NOT_FOUND) return { status: 'unknown', blockHash: null };
    throw err;
  }
}

/** Who is connected to whom, by node name ("a→b,e; b→a,e; …"): what a failure needs to say. */
async function links(nodes: readonly NodeProc[]): Promise<string> {
  const names = new Map(nodes.map((n) => [n.peerId, n.name]));
  const peers = await Promise.all(nodes.map((n) => n.call('getPeers', {})));
  return nodes.map((n, i) => `${n.name}→${peers[i]!.map((p) => names.get(p.id) ?? p.id.slice(-6)).join(',')}`).join('; ');
}

describe('e2e: partition and heal', function () {
  this.timeout(180_000);
  const cluster = clusters();

  it('two groups mine apart, then reconnect: all end on the most-work chain with one state, and the losing side\'s transaction is confirmed again', async () => {
    const started = Date.now();
    const c = cluster({ name: 'partition', alloc: [{ address: X_SENDER.address, balance: 1_000_000n }, { address: Y_SENDER.address, balance: 1_000_000n }] });
    // Y starts first: with timestamps capping both miners at the same pace, its head start is its lead.
    const nodeC = await c.startNode('c', { coinbase: encodeAddress(testKey(320).address) });
    const nodeD = await c.startNode('d', { bootstrap: [nodeC.addr] });
    const nodeA = await c.startNode('a', { coinbase: encodeAddress(testKey(330).address) });
    const nodeB = await c.startNode('b', { bootstrap: [nodeA.addr] });
    const x = [nodeA, nodeB];
    const y = [nodeC, nodeD];

    // Gossip between partners is up once each pair agrees on a mined block (a transaction sent
    // before the pair's gossip links exist is lost: see the report on node/tx-relay.ts).
    await waitFor('A and B, and C and D, each on one head above genesis', 30_000, async () => ((await commonHead(x))?.height ?? 0) > 0 && ((await commonHead(y))?.height ?? 0) > 0);
    // One transaction per side, each sent to the side's non-mining node.
    const txX = signedTransfer(c.params, X_SENDER, testKey(311).address, 4000n, 0n);
    const txY = signedTransfer(c.params, Y_SENDER, testKey(312).address, 5000n, 0n);
    await nodeB.call('sendRawTransaction', { tx: txX.hex });
    await nodeD.call('sendRawTransaction', { tx: txY.hex });
    const confirmedApart = await waitFor('each side to confirm its own transaction', 30_000, async () => {
      const sx = await Promise.all(x.map((n) => txStatus(n, txX.id)));
      const sy = await Promise.all(y.map((n) => txStatus(n, txY.id)));
      return [...sx, ...sy].every((s) => s.status === 'confirmed') && sx[0]!.blockHash === sx[1]!.blockHash ? sx[0]!.blockHash! : undefined;
    }, 200);
    const xBlockOfTx = confirmedApart.value;
    for (const n of y) assert.equal((await txStatus(n, txX.id)).status, 'unknown', `${n.name} (Y) must not know X's transaction`);
    for (const n of x) assert.equal((await txStatus(n, txY.id)).status, 'unknown', `${n.name} (X) must not know Y's transaction`);
    for (const n of [...x, ...y]) assert.equal((await n.status()).peers, 1, `${n.name} has only its partner as a peer`);

    // X stops mining: A comes back without --mine, to its partner only. X's chain is now fixed.
    await nodeA.stop();
    await nodeA.start({ p2pPort: nodeA.p2pPort, bootstrap: [nodeB.addr] });
    const xFinal = (await waitFor('A and B on one head', 30_000, () => commonHead(x))).value;
    const yAtHeal = (await waitFor('Y ahead of X in total work', 60_000, async () => {
      const s = await nodeC.status();
      return BigInt(s.totalWork) > BigInt(xFinal.totalWork) ? s : undefined;
    })).value;

    // Heal: a bridge node that bootstraps from one node of each side.
    const bridge = c.node('e');
    const healAt = Date.now();
    await bridge.start({ bootstrap: [nodeB.addr, nodeD.addr] });
    const all = [nodeA, nodeB, nodeC, nodeD, bridge];
    const converged = await waitFor('all five on one head, on Y\'s chain', 60_000, async () => {
      const head = await commonHead(all);
      return head && BigInt(head.totalWork) >= BigInt(yAtHeal.totalWork) ? head : undefined;
    }, 100);
    const convergeMs = Date.now() - healAt;
    assert.equal((await nodeA.call('getBlock', { hash: xFinal.head })).mainChain, false, 'X\'s head is off the main chain');
    assert.equal((await nodeA.call('getBlock', { hash: yAtHeal.head })).mainChain, true, 'Y\'s head at the heal is on it');

    // X's transaction went back to the mempools with X's blocks, reached Y's miner and was mined again.
    const reconfirmed = await waitFor('X\'s transaction confirmed again on all five', 60_000, async () => {
      const s = await Promise.all(all.map((n) => txStatus(n, txX.id)));
      if (s.every((t) => t.status === 'confirmed' && t.blockHash === s[0]!.blockHash)) return s[0]!.blockHash!;
      throw new Error(`its status on A…E: ${s.map((t) => t.status).join(', ')}; links: ${await links(all)}`);
    }, 200);
    const reconfirmMs = Date.now() - healAt;
    assert.notEqual(reconfirmed.value, xBlockOfTx, 'confirmed in a block of the winning chain');
    for (const n of all) assert.equal((await txStatus(n, txY.id)).status, 'confirmed', `Y's transaction on ${n.name}`);

    const audited = await waitFor('all five audited at one head', 30_000, async () => {
      const audits = await Promise.all(all.map((n) => n.call('auditState', {})));
      return audits.every((a) => a.head === audits[0]!.head) ? audits : undefined;
    }, 200);
    for (const a of audited.value) {
      assert.equal(a.digest, audited.value[0]!.digest, 'identical state');
      assert.equal(BigInt(a.supply), c.supplyAt(a.height), 'supply = allocations + one reward per block');
    }
    for (const n of all) {
      assert.equal((await n.call('getAccount', { address: encodeAddress(testKey(311).address) })).balance, '4000');
      assert.equal((await n.call('getAccount', { address: encodeAddress(testKey(330).address) })).balance, '0', `X's coinbases are gone on ${n.name}`);
    }
    report(`apart: X reached height ${xFinal.height} (work ${xFinal.totalWork}), Y height ${yAtHeal.height} (work ${yAtHeal.totalWork}) when the bridge started`);
    report(`converged on Y's chain ${secs(convergeMs)} after the bridge was spawned (${xFinal.height} X blocks reorganised out on A and B); X's tx confirmed again ${secs(reconfirmMs)} after; one state digest at height ${audited.value[0]!.height}; scenario ${secs(Date.now() - started)}`);
  });
});
