/**
 * The snapshot block a node joins at (node/snapshot-sync.ts) is a block of its main chain whose body
 * it keeps, as a pruned node keeps the bodies above its mark: its transactions are found by id, and
 * its lines are in the address index, as a node that executed it has them.
 */
import assert from 'node:assert/strict';
import { toHex } from '../ledger/bytes.ts';
import { layout } from '../ledger/layout.ts';
import { encodeAddress } from '../ledger/keys.ts';
import { answerRest, RestError } from '../node/http/rest.ts';
import type { EventFeed } from '../node/http/events.ts';
import { sign, Wallets } from '../sim/wallets.ts';
import { testKey } from './helpers/fixtures.ts';
import { joinWorld } from './helpers/snapshot-world.ts';

describe('the snapshot block a node joins at', function () {
  this.timeout(120_000);

  it('has its transactions in the transaction index and its lines in the address index, as where it was executed', async () => {
    const users = new Wallets(1);
    const payee = testKey(41).address;
    // A transfer in each block that may be the pivot (the chain grows while n2 starts).
    const paid = new Map<number, string>();
    const world = joinWorld('snapshot-pivot-indexes', {
      historyTxs: (height, params) => {
        if (height % 20 !== 0 || height < 100) return [];
        const tx = sign({ chainId: params.chainId, to: payee, amount: 5n, fee: 1n, nonce: BigInt(height / 20 - 5) }, users.keys[0]!);
        paid.set(height, tx.idHex);
        return [tx];
      },
    });
    await world.run();
    // The stores answer on the simulated disk: reads after the run are driven on its scheduler.
    const drive = async <T>(work: Promise<T>): Promise<T> => {
      const done = await world.scheduler.drive(work, 60_000);
      assert.ok(done, 'a read of a store answered');
      return done.value;
    };
    const [n0, , n2] = world.nodes.map((n) => n.node!);
    const base = n2!.db.history.stateBase;
    assert.ok(paid.has(base), `n2 joined at a block that pays (${base})`);
    assert.equal(n2!.chain.tip.hashHex, n0!.chain.tip.hashHex, 'and caught up');
    const pivot = (await drive(n2!.db.getBlockAtHeight(base)))!;
    const tx = pivot.txs[0]!;
    assert.equal(tx.idHex, paid.get(base), 'the pivot block holds the transfer');
    const location = await drive(n2!.db.getTxLocation(tx.id));
    assert.equal(location && toHex(location.blockHash), toHex(pivot.header.hash), 'found by its id');
    // Every record of the address index from the pivot up is the executing node's.
    const records = (node: typeof n0) => drive((async () => {
      const out: string[] = [];
      for await (const [key, value] of node!.db.records(layout.range('X'))) if (new DataView(key.buffer, key.byteOffset).getUint32(21) >= base) out.push(`${toHex(key)} ${toHex(value)}`);
      return out;
    })());
    assert.ok(n0!.addressIndex && n2!.addressIndex, 'both keep the address index');
    const lines = await drive(n2!.addressIndex!.history(payee, 10));
    assert.deepEqual(lines.map((l) => l.height).filter((h) => h >= base).at(-1), base, "the payee's line in the pivot block");
    assert.deepEqual(await records(n2), await records(n0));
    // Esplora's paging after the last txid seen, that transfer: the lines before it (none), not
    // "pruned" (it was: the id was unknown here, and the node has pruned below its pivot).
    const rest = (path: string) =>
      drive(
        answerRest(n2!, undefined as unknown as EventFeed, 'GET', path, new URLSearchParams(), undefined).then(
          (answer) => ({ status: 200, answer }),
          (err: unknown) => (err instanceof RestError ? { status: err.status, answer: err.code } : Promise.reject(err)),
        ),
      );
    assert.deepEqual(await rest(`/address/${encodeAddress(payee)}/txs/chain/${tx.idHex}`), { status: 200, answer: { json: [] } });
    for (const sim of world.nodes) sim.crash();
  });
});
