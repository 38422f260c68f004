/**
 * node/relayed-txs.ts, through TxRelay.pushPassedOver: transactions peers relayed to us, that blocks
 * with room for more keep passing over, are pushed to every peer again: a sender's next one with
 * its run, first a minute after a block with room first passed it over, then after two minutes,
 * four...; a full block says nothing; what waits for a missing nonce is not pushed, nor our users'
 * twice (local-txs.ts pushes those). A user's transaction whose origin crashed, left with nodes
 * that do not mine by a gossip message lost on the way to the miners, waited 3 h until it expired.
 */
import assert from 'node:assert/strict';
import { TxRelay } from '../node/tx-relay.ts';
import { RELAYED_PASSED_OVER_AFTER_MS } from '../node/relayed-txs.ts';
import type { Transport } from '../node/transport.ts';
import type { Env } from '../node/env.ts';
import type { NetworkNames } from '../node/protocols.ts';
import type { Block } from '../ledger/block.ts';
import type { Transaction } from '../ledger/transaction.ts';
import { Mempool } from '../ledger/mempool.ts';
import { MemoryAccounts } from '../ledger/audit.ts';
import { decodeTxBatch } from '../node/wire.ts';
import { FUNDED_KEYS, testKey, transfer } from './helpers/fixtures.ts';

const [alice, bob, carol] = FUNDED_KEYS as [(typeof FUNDED_KEYS)[0], (typeof FUNDED_KEYS)[0], (typeof FUNDED_KEYS)[0]];
const to = testKey(80).address;
const blockOf = (txs: readonly Transaction[]) => ({ txs }) as unknown as Block;

describe('relayed transactions that blocks with room keep passing over', () => {
  async function relayedNode() {
    let now = 1_000_000;
    const state = new MemoryAccounts();
    for (const key of [alice, bob, carol]) state.set(key.address, { balance: 1_000_000n, nonce: 0n });
    const mempool = new Mempool(state, { chainId: 7 }, {});
    const pushed: { peer: string; ids: string[] }[] = [];
    const transport = {
      peers: () => ['p1', 'p2'],
      request: async (peer: string, _protocol: string, body: Uint8Array) => {
        pushed.push({ peer, ids: decodeTxBatch(body).map((tx) => tx.idHex) });
        return new Uint8Array(0);
      },
      connectionInfo: () => ({ direction: 'outbound', remoteAddr: '/ip4/198.51.100.7/tcp/7370' }),
    } as unknown as Transport;
    const env = { monotonic: () => now, setTimeout: () => 0, clearTimeout: () => {} } as unknown as Env;
    const relay = new TxRelay({ transport, env, names: { txPush: '/push' } as NetworkNames, mempool, blockRoom: 3 } as unknown as TxRelay['o']);
    /** The tip moves to `block`: what it pushed, to whom. */
    const tip = async (block: Block) => {
      pushed.length = 0;
      await relay.pushPassedOver(block);
      return [...pushed];
    };
    return { mempool, relay, tip, later: (ms: number) => void (now += ms) };
  }

  it('pushes a sender\'s run to every peer a minute after a block with room first passed it over, then after two minutes, four...', async () => {
    const { mempool, tip, later } = await relayedNode();
    const run = [0n, 1n].map((nonce) => transfer(alice, to, 1n, nonce));
    const waiting = transfer(bob, to, 1n, 1n); // bob's nonce 0 is nowhere: no block could take it
    for (const tx of [...run, waiting]) await mempool.add(tx, 0);
    const roomy = blockOf([transfer(carol, to, 1n, 0n)]); // one of three
    assert.deepEqual(await tip(roomy), [], 'just passed over: it may have reached the miner after its template');
    later(RELAYED_PASSED_OVER_AFTER_MS - 1);
    assert.deepEqual(await tip(roomy), []);
    later(1);
    const ids = run.map((tx) => tx.idHex);
    assert.deepEqual(await tip(roomy), [{ peer: 'p1', ids }, { peer: 'p2', ids }]);
    later(2 * RELAYED_PASSED_OVER_AFTER_MS - 1);
    assert.deepEqual(await tip(roomy), [], 'pushed a minute ago: now two');
    later(1);
    assert.deepEqual(await tip(roomy), [{ peer: 'p1', ids }, { peer: 'p2', ids }]);
    later(10 * RELAYED_PASSED_OVER_AFTER_MS);
    assert.deepEqual(await tip(blockOf([1n, 2n, 3n].map((nonce) => transfer(carol, to, 1n, nonce)))), [], 'a full block says nothing of what its miner has');
    assert.deepEqual(await tip(roomy), [{ peer: 'p1', ids }, { peer: 'p2', ids }]);
  });

  it("leaves our users' own to local-txs.ts, which pushes them with their sender's earlier nonces, once", async () => {
    const { mempool, relay, tip, later } = await relayedNode();
    const relayedFirst = transfer(alice, to, 1n, 0n);
    const ours = transfer(alice, to, 1n, 1n);
    const oursAlone = transfer(bob, to, 1n, 0n);
    await mempool.add(relayedFirst, 0);
    for (const tx of [ours, oursAlone]) {
      await mempool.add(tx, 0);
      relay.announceLocal(tx);
    }
    const roomy = blockOf([]);
    assert.deepEqual(await tip(roomy), []);
    later(RELAYED_PASSED_OVER_AFTER_MS);
    const pushes = await tip(roomy);
    assert.deepEqual(pushes.map((p) => p.peer), ['p1', 'p2']);
    assert.deepEqual(pushes[0]!.ids.sort(), [relayedFirst, ours, oursAlone].map((tx) => tx.idHex).sort(), 'each once');
  });
});
