/**
 * What a client written for Esplora does that Cairn's REST API took only its own way (node/http/):
 * hashes and ids in upper case, an address in upper case (a QR code's), and an address's
 * confirmed lines paged by the last txid seen.
 */
import assert from 'node:assert/strict';
import { toHex } from '../ledger/bytes.ts';
import { encodeAddress } from '../ledger/keys.ts';
import { HttpServer } from '../node/http/server.ts';
import { FUNDED_KEYS, testKey, transfer } from './helpers/fixtures.ts';
import { get } from './helpers/http.ts';
import { mineOn, networkParams, startNode, stopAll, type TestNode } from './helpers/network.ts';

describe('REST API as Esplora\'s clients use it', function () {
  this.timeout(60_000);
  const params = networkParams();
  const [alice, bob] = FUNDED_KEYS as [(typeof FUNDED_KEYS)[0], (typeof FUNDED_KEYS)[0]];
  const carol = testKey(41).address;
  const carolText = encodeAddress(carol);
  let t: TestNode;
  let http: HttpServer;
  let base: string;
  const paid: string[] = [];

  before(async () => {
    t = await startNode(params, [], { verifyThreads: 1, addressIndex: true });
    http = new HttpServer(t.node);
    base = (await http.start()).replace(/\/$/, '');
    // Three payments to carol in three blocks, newest last.
    for (let nonce = 0n; nonce < 3n; nonce++) {
      const tx = transfer(alice, carol, 10n + nonce, nonce, 2n);
      await t.node.submitTransaction(tx);
      await mineOn(t, 1);
      paid.push(tx.idHex);
    }
  });
  after(async () => {
    await http?.stop();
    await stopAll([t]);
  });

  const lines = async (path: string) => {
    const answer = await get(`${base}/address/${carolText}/txs/chain${path}`);
    assert.equal(answer.status, 200, `${path}: ${answer.text}`);
    return answer.json<{ txid: string }[]>().map((l) => l.txid);
  };

  it('takes hashes and ids in upper case, and an address all in upper case (mixed case stays refused)', async () => {
    // From the API review: each was 400 "must be 64 lower-case hex digits", where Esplora answers.
    const hash = t.node.chain.tip.hashHex;
    for (const path of [`/block/${hash}`, `/block/${hash}/status`, `/block/${hash}/header`, `/tx/${paid[0]}`, `/tx/${paid[0]}/hex`]) {
      const upper = path.replace(/[0-9a-f]{64}/, (h) => h.toUpperCase());
      const [lower, asked] = [await get(base + path), await get(base + upper)];
      assert.equal(asked.status, 200, `${upper}: ${asked.text}`);
      assert.equal(asked.text, lower.text, upper);
    }
    const account = await get(`${base}/address/${carolText.toUpperCase()}`);
    assert.equal(account.status, 200, account.text);
    assert.equal(account.json<{ address: string; balance: string }>().address, carolText, 'answered with the canonical lower-case form');
    const mixed = `${carolText.slice(0, 10)}${carolText.slice(10).toUpperCase()}`;
    assert.equal((await get(`${base}/address/${mixed}`)).status, 400);
    assert.equal((await get(`${base}/block/${'G'.repeat(64)}`)).status, 400);
  });

  it('pages an address\'s confirmed lines after the last txid seen, as after its cursor; an id that is no line of it ends the list, as Esplora', async () => {
    // From the API review: /txs/chain/:last_seen_txid was 400, "a cursor is HEIGHT-POSITION".
    assert.deepEqual(await lines('?limit=1'), [paid[2]]);
    assert.deepEqual(await lines(`/${paid[2]}?limit=1`), [paid[1]]);
    assert.deepEqual(await lines(`/${paid[1]!.toUpperCase()}`), [paid[0]]);
    assert.deepEqual(await lines(`/${paid[0]}`), [], 'after the oldest, nothing');
    const cursor = (await get(`${base}/address/${carolText}/txs/chain?limit=1`)).json<{ cursor: string }[]>()[0]!.cursor;
    assert.deepEqual(await lines(`/${cursor}?limit=1`), [paid[1]], 'a cursor still pages as before');
    // Unknown, pending, or another address's: Esplora's skip finds no such line, and answers [].
    const elsewhere = transfer(bob, testKey(42).address, 1n, 0n, 2n);
    await t.node.submitTransaction(elsewhere);
    await mineOn(t, 1);
    const pending = transfer(alice, carol, 1n, 3n, 2n);
    await t.node.submitTransaction(pending);
    for (const id of ['ab'.repeat(32), elsewhere.idHex, pending.idHex]) assert.deepEqual(await lines(`/${id}`), [], id);
    assert.equal((await get(`${base}/address/${carolText}/txs/chain/nonsense`)).status, 400);
  });
});
