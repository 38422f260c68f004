/**
 * Scenario 1 of the resilience suite: three `cairn node` processes bootstrapped in a line
 * A ← B ← C, only C mining. Fifty transactions sent to A must travel to the miner, be mined, and
 * come back confirmed on all three, which end on the same head with identical account state.
 */
import assert from 'node:assert/strict';
import { encodeAddress } from '../../ledger/keys.ts';
import { testKey } from '../helpers/fixtures.ts';
import { cairnJson, clusters, commonHead, DEVNET_ADDRESS, DEVNET_KEY, devnetKeystore, report, secs, signedTransfer, waitFor } from '../helpers/cluster.ts';

describe('e2e: three nodes in a line', function () {
  this.timeout(120_000);
  const cluster = clusters();

  it('50 transactions sent to the first node are confirmed on all three; heads and state are identical', async () => {
    const started = Date.now();
    const c = cluster({ name: 'three' });
    const a = await c.startNode('a');
    const b = await c.startNode('b', { bootstrap: [a.addr] });
    const miner = c.node('c');
    await miner.start({ bootstrap: [b.addr], coinbase: encodeAddress(testKey(100).address) });
    const nodes = [a, b, miner];
    await waitFor('all three on one head above genesis', 30_000, async () => ((await commonHead(nodes))?.height ?? 0) > 0);

    // 47 signed here and submitted over RPC, 3 with `cairn send --wait`, all to A.
    const recipients = Array.from({ length: 10 }, (_, i) => testKey(110 + i).address);
    const expected = new Map<string, bigint>();
    const ids: string[] = [];
    let fees = 0n;
    const sendStart = Date.now();
    for (let i = 0; i < 47; i++) {
      const to = recipients[i % recipients.length]!;
      const amount = BigInt(1000 + i);
      const fee = BigInt(1 + (i % 3));
      const tx = signedTransfer(c.params, DEVNET_KEY, to, amount, BigInt(i), fee);
      fees += fee;
      assert.equal((await a.call('sendRawTransaction', { tx: tx.hex })).id, tx.id);
      ids.push(tx.id);
      expected.set(encodeAddress(to), (expected.get(encodeAddress(to)) ?? 0n) + amount);
    }
    const allConfirmed = (txIds: readonly string[]) => async () => {
      const perNode = await Promise.all(nodes.map((n) => Promise.all(txIds.map((id) => n.call('getTransaction', { id }).catch(() => undefined)))));
      return perNode.every((txs) => txs.every((t) => t?.status === 'confirmed')) ? perNode : undefined;
    };
    const raw = await waitFor('the 47 raw transactions confirmed on all three nodes', 60_000, allConfirmed(ids), 250);
    const rawMs = Date.now() - sendStart;
    const { keystore, passwordFile } = await devnetKeystore(c);
    const cliStart = Date.now();
    for (let i = 47; i < 50; i++) {
      const to = encodeAddress(recipients[i % recipients.length]!);
      const sent = await cairnJson<{ id: string; status: string; blockHeight: number }>(
        ['send', '--datadir', a.datadir, '--keystore', keystore, '--password-file', passwordFile, '--from', DEVNET_ADDRESS, '--to', to, '--amount', String(1000 + i), '--wait', '--timeout', '60'],
        90_000,
      );
      assert.equal(sent.status, 'confirmed');
      ids.push(sent.id);
      fees += 1n; // the CLI's default fee
      expected.set(to, (expected.get(to) ?? 0n) + BigInt(1000 + i));
    }

    const cliMs = Date.now() - cliStart;
    const confirmed = await waitFor('all 50 transactions confirmed on all three nodes', 60_000, allConfirmed(ids), 250);
    const blocks = new Set(confirmed.value[0]!.map((t) => t!.blockHeight));
    // In the same blocks everywhere.
    for (let i = 0; i < ids.length; i++) {
      const hashes = new Set(confirmed.value.map((txs) => txs[i]!.blockHash));
      assert.equal(hashes.size, 1, `tx ${ids[i]} confirmed in different blocks: ${[...hashes].join(', ')}`);
    }

    // Identical heads and state: audits taken while all three stand on one head (the miner
    // works in bursts once a second, so such moments come every second).
    const audited = await waitFor('all three audited at one head', 30_000, async () => {
      const audits = await Promise.all(nodes.map((n) => n.call('auditState', {})));
      return audits.every((x) => x.head === audits[0]!.head) ? audits : undefined;
    }, 200);
    const [first] = audited.value;
    for (const x of audited.value) {
      assert.equal(x.digest, first!.digest, 'identical state digest');
      assert.equal(x.supply, x.expectedSupply);
      assert.equal(BigInt(x.supply), c.supplyAt(x.height), 'supply = allocations + one reward per block');
    }
    // Account by account, through the CLI on each node for the sender, RPC for the recipients.
    const spent = [...expected.values()].reduce((s, v) => s + v, 0n) + fees;
    const devnetAlloc = c.params.alloc[0]!.balance;
    for (const n of nodes) {
      const sender = await cairnJson<{ balance: string; nonce: string }>(['account', DEVNET_ADDRESS, '--datadir', n.datadir]);
      assert.deepEqual([sender.balance, sender.nonce], [String(devnetAlloc - spent), '50'], `the sender on ${n.name}`);
      for (const [address, amount] of expected) assert.equal((await n.call('getAccount', { address })).balance, amount.toString(), `${address} on ${n.name}`);
    }

    const head = await waitFor('one head on all three', 10_000, () => commonHead(nodes));
    report(`47 txs signed here, sent to A over RPC: confirmed on A, B and C ${secs(rawMs)} after the first was sent (${raw.value[0]!.length} checked per node)`);
    report(`3 more by \`cairn send --wait\` to A: ${secs(cliMs)} for the three; all 50 in ${blocks.size} blocks, each in the same block on every node`);
    report(`head ${head.value.head.slice(0, 12)}… at height ${head.value.height} on all three; state digest ${first!.digest.slice(0, 12)}… at height ${first!.height}, ${first!.accounts} accounts; scenario ${secs(Date.now() - started)}`);
  });
});
