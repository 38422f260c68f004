/**
 * Scenario 4 of the resilience suite: a `cairn node` process started once the network has more
 * than 300 blocks syncs them over the network from a running node that does not mine, then
 * follows the head as new blocks arrive by gossip.
 */
import assert from 'node:assert/strict';
import { encodeAddress } from '../../ledger/keys.ts';
import { testKey } from '../helpers/fixtures.ts';
import { clusters, commonHead, DEVNET_KEY, report, secs, signedTransfer, waitFor } from '../helpers/cluster.ts';

describe('e2e: late joiner', function () {
  this.timeout(120_000);
  const cluster = clusters();

  it('a node started after 300 blocks catches up and follows the head', async () => {
    const started = Date.now();
    const c = cluster({ name: 'late' });
    const miner = await c.startNode('miner', { coinbase: encodeAddress(testKey(400).address) });
    const relay = await c.startNode('relay', { bootstrap: [miner.addr] });
    await waitFor('the relay on the miner\'s head above genesis', 30_000, async () => ((await commonHead([miner, relay]))?.height ?? 0) > 0);
    // Some transactions, so the joiner replays state changes and not only coinbases.
    for (let nonce = 0n; nonce < 20n; nonce++) {
      const tx = signedTransfer(c.params, DEVNET_KEY, testKey(410 + Number(nonce % 4n)).address, 100n + nonce, nonce);
      await relay.call('sendRawTransaction', { tx: tx.hex });
    }
    await waitFor('300 blocks and the 20 transactions mined', 60_000, async () => {
      const s = await relay.status();
      return s.height >= 300 && s.mempool === 0 && (await miner.call('getMempool', {})).size === 0;
    }, 200);

    // The joiner knows only the relay: every block comes over the network from a node that does not mine.
    const joinedAt = (await relay.status()).height;
    const joiner = c.node('joiner');
    const spawnedAt = Date.now();
    await joiner.start({ bootstrap: [relay.addr] });
    const upAt = Date.now();
    const caughtUp = await waitFor(`the joiner to reach height ${joinedAt}`, 60_000, async () => {
      const s = await joiner.status();
      return s.height >= joinedAt ? s : undefined;
    }, 50);
    const syncMs = Date.now() - upAt;
    const totalMs = Date.now() - spawnedAt;
    const syncedBlocks = caughtUp.value.height;
    assert.ok(syncedBlocks >= 300);

    // Following: the joiner holds the miner's head after at least a dozen blocks more.
    const followFrom = caughtUp.value.height;
    const follow = await waitFor('the joiner on the miner\'s head, 12 blocks later', 30_000, async () => {
      const head = await commonHead([miner, relay, joiner]);
      return head && head.height >= followFrom + 12 ? head : undefined;
    }, 100);

    const audited = await waitFor('the three audited at one head', 30_000, async () => {
      const audits = await Promise.all([miner, relay, joiner].map((n) => n.call('auditState', {})));
      return audits.every((x) => x.head === audits[0]!.head) ? audits : undefined;
    }, 200);
    for (const x of audited.value) {
      assert.equal(x.digest, audited.value[0]!.digest, 'identical state');
      assert.equal(BigInt(x.supply), c.supplyAt(x.height));
    }
    const peers = await joiner.call('getPeers', {});
    assert.ok(peers.some((p) => p.id === relay.peerId), 'the joiner is connected to the relay');
    report(`joined at height ${joinedAt}: ${syncedBlocks} blocks synced in ${secs(syncMs)} after its RPC came up (${Math.round(syncedBlocks / Math.max(syncMs, 1) * 1000)} blocks/s; ${secs(totalMs)} from spawn)`);
    report(`followed the head to height ${follow.value.height} (${follow.value.height - followFrom} blocks by gossip); one state digest at height ${audited.value[0]!.height}; scenario ${secs(Date.now() - started)}`);
  });
});
