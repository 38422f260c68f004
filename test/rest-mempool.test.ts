/**
 * REST's views of the mempool (node/http/rest.ts) on a pool of many fees: Esplora's fee histogram,
 * each bucket labelled with its least fee, the cheapest lumped into one; the totals and the
 * sorted fees behind them followed across admissions and replacements (they are computed once per
 * change of the pool, not per request); an address's pending count from the pool's own index; the
 * pool's ids (Esplora's /mempool/txids), made at most once a second; the last to enter, in
 * Esplora's fields too.
 */
import assert from 'node:assert/strict';
import { answerRest, MEMPOOL_TXIDS_MS, type RestShared } from '../node/http/rest.ts';
import type { SharedBody } from '../node/http/compress.ts';
import { txSummary, type EventFeed } from '../node/http/events.ts';
import type { NodeView } from '../node/view.ts';
import { Mempool } from '../ledger/mempool.ts';
import { MemoryAccounts } from '../ledger/audit.ts';
import { encodeAddress } from '../ledger/keys.ts';
import { TX_BYTES } from '../ledger/transaction.ts';
import { testKey, transfer } from './helpers/fixtures.ts';

describe('REST views of the mempool', () => {
  const senders = Array.from({ length: 45 }, (_, i) => testKey(200 + i));
  const sink = testKey(299).address;
  const state = new MemoryAccounts();
  for (const k of senders) state.set(k.address, { balance: 1_000_000n, nonce: 0n });
  const mempool = new Mempool(state, { chainId: 7 }, {}, () => {});
  const node = { mempool, chain: { tip: { height: 0 }, params: { maxBlockTxs: 10, maxBlockBytes: 1_000_000 }, mainAt: () => undefined, readSettled: <T>(read: () => Promise<T>) => read() }, db: { getAccount: async () => undefined }, addressIndex: undefined } as unknown as NodeView;
  const ask = async (path: string) => (await answerRest(node, {} as EventFeed, 'GET', path, new URLSearchParams(), undefined)) as { json: Record<string, unknown> };

  before(async () => {
    // Fees 1 to 45, one each.
    for (const [i, k] of senders.entries()) await mempool.add(transfer(k, sink, 1n, 0n, BigInt(i + 1)), 1_000);
  });

  it('the histogram: 39 buckets of one fee each, then the cheapest lumped and labelled with the least fee in them', async () => {
    const pool = (await ask('/mempool')).json as { count: number; total_fee: string; fee_histogram: [string, number][] };
    assert.equal(pool.count, 45);
    assert.equal(pool.total_fee, String((45 * 46) / 2));
    assert.equal(pool.fee_histogram.length, 40);
    assert.deepEqual(pool.fee_histogram.slice(0, 2), [['45', TX_BYTES], ['44', TX_BYTES]]);
    assert.deepEqual(pool.fee_histogram.at(-1), ['1', 6 * TX_BYTES], 'fees 1 to 6 together, at their lower bound');
  });

  it('follows the pool: an admission, and a replacement that changes a fee but not the size', async () => {
    await mempool.add(transfer(senders[0]!, sink, 1n, 1n, 100n), 1_000);
    let pool = (await ask('/mempool')).json as { count: number; total_fee: string; fee_histogram: [string, number][] };
    assert.deepEqual([pool.count, pool.total_fee, pool.fee_histogram[0]], [46, String((45 * 46) / 2 + 100), ['100', TX_BYTES]]);
    await mempool.add(transfer(senders[0]!, sink, 2n, 1n, 200n), 1_000);
    pool = (await ask('/mempool')).json as typeof pool;
    assert.deepEqual([pool.count, pool.total_fee, pool.fee_histogram[0]], [46, String((45 * 46) / 2 + 200), ['200', TX_BYTES]]);
    // Ten transactions a block: within one block, beat the tenth highest fee; within two, the twentieth.
    const estimates = (await ask('/fee-estimates')).json;
    assert.deepEqual([estimates['1'], estimates['2'], estimates['6']], ['38', '28', '1']);
  });

  it("/mempool/recent: Esplora's fields (txid, fee, value, vsize) beside ours", async () => {
    const tx = transfer(senders[2]!, sink, 5n, 0n, 3n);
    const feed = { recentTxs: () => [txSummary(tx)] } as unknown as EventFeed;
    const answer = (await answerRest(node, feed, 'GET', '/mempool/recent', new URLSearchParams(), undefined)) as { json: Record<string, unknown>[] };
    assert.deepEqual(answer.json, [{ txid: tx.idHex, from: encodeAddress(senders[2]!.address), to: encodeAddress(sink), amount: '5', fee: '3', size: TX_BYTES, value: '5', vsize: TX_BYTES }]);
  });

  it("an address's pending count: sent and received", async () => {
    const count = async (address: Uint8Array) => ((await ask(`/address/${encodeAddress(address)}`)).json.mempool_stats as { tx_count: number }).tx_count;
    assert.equal(await count(sink), 46);
    assert.equal(await count(senders[0]!.address), 2);
    assert.equal(await count(senders[1]!.address), 1);
    assert.equal(await count(testKey(300).address), 0);
  });

  it('fees above 2^53 come out exact: decimal strings, as every amount (a JSON number would round them)', async () => {
    const whales = [testKey(400), testKey(401)];
    const rich = new MemoryAccounts();
    for (const k of whales) rich.set(k.address, { balance: 1n << 60n, nonce: 0n });
    const pool = new Mempool(rich, { chainId: 7 }, {}, () => {});
    // One transaction a block: the next block's fee beats the highest.
    const whaleNode = { ...node, mempool: pool, chain: { ...node.chain, params: { maxBlockTxs: 1, maxBlockBytes: 1_000_000 } } } as unknown as NodeView;
    const fees = [(1n << 53n) + 1n, (1n << 53n) + 2n];
    for (const [i, k] of whales.entries()) await pool.add(transfer(k, sink, 0n, 0n, fees[i]!), 1_000);
    const answer = async (path: string) => ((await answerRest(whaleNode, {} as EventFeed, 'GET', path, new URLSearchParams(), undefined)) as { json: Record<string, unknown> }).json;
    const summary = await answer('/mempool');
    assert.equal(summary.total_fee, String(fees[0]! + fees[1]!));
    assert.deepEqual(summary.fee_histogram, [[String(fees[1]), TX_BYTES], [String(fees[0]), TX_BYTES]]);
    assert.equal((await answer('/fee-estimates'))['1'], String(fees[1]! + 1n));
  });

  it('/mempool/txids: every pending id, made at most once a second and the same bytes sent meanwhile', async () => {
    // From the API review: a 404 where Esplora lists the pool. A full pool's list is 13 MB, 50 ms to write out.
    let now = 5_000;
    const shared: RestShared = { now: () => now };
    const txids = async () => ((await answerRest(node, {} as EventFeed, 'GET', '/mempool/txids', new URLSearchParams(), undefined, shared)) as { shared: SharedBody }).shared;
    const first = await txids();
    assert.deepEqual((JSON.parse(first.bytes.toString()) as string[]).sort(), Array.from(mempool.entries(), (e) => e.tx.idHex).sort());
    const added = transfer(senders[1]!, sink, 1n, 1n, 7n);
    await mempool.add(added, 1_000);
    now += MEMPOOL_TXIDS_MS - 1;
    assert.equal(await txids(), first, 'within the second, the answer made before');
    now += 1;
    const next = JSON.parse((await txids()).bytes.toString()) as string[];
    assert.ok(next.includes(added.idHex) && next.length === mempool.size, 'then made again');
  });
});
