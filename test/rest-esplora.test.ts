/**
 * What a client written for Esplora does that Cairn's REST API took only its own way (node/http/):
 * hashes and ids in upper case, an address in upper case (a QR code's), an address's confirmed
 * lines paged by the last txid seen, the mempool's ids, and answers gzipped for a client that
 * takes them (never the event stream), no more than two at once.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { gunzipSync } from 'node:zlib';
import { toHex } from '../ledger/bytes.ts';
import { encodeAddress } from '../ledger/keys.ts';
import { HttpServer } from '../node/http/server.ts';
import { answerRest, RestError } from '../node/http/rest.ts';
import type { EventFeed } from '../node/http/events.ts';
import type { NodeView } from '../node/view.ts';
import { COINBASE_BYTES } from '../ledger/block.ts';
import { Mempool } from '../ledger/mempool.ts';
import { GZIP_MIN_BYTES, MAX_COMPRESSING, SharedBody } from '../node/http/compress.ts';
import { FUNDED_KEYS, testKey, transfer } from './helpers/fixtures.ts';
import { get } from './helpers/http.ts';
import { mineOn, networkParams, startNode, stopAll, type TestNode } from './helpers/network.ts';
import { heldReorganisation } from './helpers/reorg.ts';

/** A GET with exactly these headers (fetch adds and undoes gzip by itself): status, headers and the bytes as sent. */
function rawGet(url: string, headers: Record<string, string>): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers }, (res) => {
      const chunks: Buffer[] = [];
      // The event stream never ends by itself: its first chunk says how it is sent.
      const stream = res.headers['content-type'] === 'text/event-stream';
      res.on('data', (c: Buffer) => {
        chunks.push(c);
        if (stream) res.destroy();
      });
      const done = () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) });
      res.on('end', done);
      res.on('close', done);
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

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

  it('pages a miner\'s history, mostly coinbase lines, by the last txid seen: a coinbase line\'s txid is its block\'s hash', async () => {
    // From the project's list: a coinbase line's txid was null, so a page that ended on one gave
    // an Esplora client nothing to ask the next page after (and a wallet nothing to key it by).
    const minerKey = 43;
    const miner = encodeAddress(testKey(minerKey).address);
    const mined = await mineOn(t, 3, minerKey);
    await t.node.submitTransaction(transfer(FUNDED_KEYS[3]!, testKey(minerKey).address, 5n, 0n, 2n));
    mined.push(...(await mineOn(t, 3, minerKey)));
    type Line = { txid: string | null; kind: string; cursor: string; status: { block_hash: string } };
    const all = (await get(`${base}/address/${miner}/txs/chain?limit=100`)).json<Line[]>();
    assert.equal(all.length, 7, 'six coinbases and one payment');
    // Esplora's tx_count is every transaction of its history, a coinbase too: a client pages until it has that many.
    const stats = (await get(`${base}/address/${miner}`)).json<{ chain_stats: unknown }>().chain_stats;
    assert.deepEqual(stats, { tx_count: 7, sent_count: 0, received_count: 1, coinbase_count: 6 });
    for (const line of all.filter((l) => l.kind === 'coinbase')) assert.equal(line.txid, line.status.block_hash, line.cursor);
    assert.deepEqual(all.filter((l) => l.kind === 'coinbase').map((l) => l.txid), mined.map((b) => toHex(b.header.hash)).reverse());
    // Esplora's paging, two lines a page: after the last page's last txid, until an empty page.
    const paged: Line[] = [];
    for (let after = ''; ; ) {
      const page = (await get(`${base}/address/${miner}/txs/chain${after}?limit=2`)).json<Line[]>();
      if (page.length === 0) break;
      paged.push(...page);
      assert.ok(paged.length <= all.length, 'no page repeats');
      after = `/${page.at(-1)!.txid}`;
    }
    assert.deepEqual(paged, all);
    const ids = new Set(all.map((l) => l.txid));
    assert.equal(ids.size, all.length, 'a wallet can key the lines by txid');
  });

  it("answers /tx/:txid for a coinbase line's txid, its block's hash, with a coinbase transaction (Esplora's vin is_coinbase); 404 for no main-chain block", async () => {
    // From the project's list: a wallet that looks up the status of each txid of a history saw its
    // coinbases as unknown, 404, though the address page listed them under their blocks' hashes.
    const minerKey = 44;
    const miner = encodeAddress(testKey(minerKey).address);
    const [block] = await mineOn(t, 1, minerKey);
    const hash = toHex(block!.header.hash);
    const status = { confirmed: true, block_height: block!.header.height, block_hash: hash, block_time: block!.header.timestamp };
    const [line] = (await get(`${base}/address/${miner}/txs/chain`)).json<{ txid: string }[]>();
    assert.equal(line!.txid, hash);
    const tx = await get(`${base}/tx/${line!.txid}`);
    assert.equal(tx.status, 200, tx.text);
    assert.deepEqual(tx.json(), {
      txid: hash,
      version: 1,
      chain_id: params.chainId,
      vin: [{ is_coinbase: true, prevout: null }],
      from: null,
      to: miner,
      amount: block!.coinbase.amount.toString(),
      fee: '0',
      nonce: null,
      size: COINBASE_BYTES,
      status,
    });
    assert.deepEqual((await get(`${base}/tx/${hash.toUpperCase()}/status`)).json(), status);
    const raw = await get(`${base}/tx/${hash}/raw`);
    assert.deepEqual([raw.status, raw.json<{ error: { message: string } }>().error.message], [404, `${hash} is the coinbase of block ${block!.header.height}, which has no encoding of its own: its block's holds it (/block/${hash}/raw)`]);
    assert.equal((await get(`${base}/tx/${'ab'.repeat(32)}`)).status, 404);
  });

  it("answers a transfer with Esplora's vin: one input, not a coinbase, naming its sender and what it takes (amount plus fee), pending, confirmed and in its block's page", async () => {
    // From the gaps review: a transfer had no vin, and a client reading tx.vin[0].is_coinbase failed on undefined.
    const payer = FUNDED_KEYS[3]!;
    // Its next nonce, whichever of this file's tests ran before.
    const account = (await get(`${base}/address/${encodeAddress(payer.address)}`)).json<{ nonce: string; mempool_stats: { tx_count: number } }>();
    const tx = transfer(payer, carol, 1234n, BigInt(account.nonce) + BigInt(account.mempool_stats.tx_count), 7n);
    await t.node.submitTransaction(tx);
    const vin = [{ is_coinbase: false, prevout: { scriptpubkey_address: encodeAddress(payer.address), value: '1241' } }];
    const pending = (await get(`${base}/tx/${tx.idHex}`)).json<{ vin: unknown; status: { confirmed: boolean } }>();
    assert.deepEqual([pending.vin, pending.status.confirmed], [vin, false]);
    const [block] = await mineOn(t, 1);
    assert.ok(block!.txs.some((x) => x.idHex === tx.idHex), 'mined');
    const confirmed = (await get(`${base}/tx/${tx.idHex}`)).json<{ vin: unknown; status: { confirmed: boolean } }>();
    assert.deepEqual([confirmed.vin, confirmed.status.confirmed], [vin, true]);
    const page = (await get(`${base}/block/${toHex(block!.header.hash)}/txs`)).json<{ txid: string; vin: unknown }[]>();
    assert.deepEqual(page.find((x) => x.txid === tx.idHex)?.vin, vin);
  });

  it("pages a block's transactions as Esplora: a page past the last is 404, not an empty list (a block of no transfers has its one empty page); a height above the tip names the tip", async () => {
    // Bob's next nonce, whichever of this file's tests ran before.
    const account = (await get(`${base}/address/${encodeAddress(bob.address)}`)).json<{ nonce: string; mempool_stats: { tx_count: number } }>();
    const nonce = BigInt(account.nonce) + BigInt(account.mempool_stats.tx_count);
    for (let i = 0n; i < 26n; i++) await t.node.submitTransaction(transfer(bob, testKey(44).address, 1n, nonce + i, 1n));
    const [full] = await mineOn(t, 1);
    const [empty] = await mineOn(t, 1);
    assert.equal(full!.txs.length, 26);
    const page = async (block: { header: { hash: Uint8Array } }, start: number) => {
      const answer = await get(`${base}/block/${toHex(block.header.hash)}/txs/${start}`);
      return [answer.status, answer.status === 200 ? answer.json<unknown[]>().length : answer.json<{ error: { code: string } }>().error.code];
    };
    assert.deepEqual(await Promise.all([page(full!, 0), page(full!, 25), page(full!, 50), page(empty!, 0), page(empty!, 25)]), [
      [200, 25],
      [200, 1],
      [404, 'NOT_FOUND'],
      [200, 0],
      [404, 'NOT_FOUND'],
    ]);
    const above = await get(`${base}/block-height/${t.node.chain.tip.height + 1}`);
    assert.deepEqual([above.status, above.json<{ error: { message: string } }>().error.message], [404, `no main-chain block at height ${t.node.chain.tip.height + 1} (the tip is at ${t.node.chain.tip.height})`]);
  });

  it('answers 404 at /tx/ for a block off the main chain: its coinbase pays nobody', async () => {
    const r = await heldReorganisation();
    r.release();
    assert.equal(await r.reorganised, 'connected');
    const view = { params: r.params, chain: r.chain, db: r.db, mempool: new Mempool(r.db, r.params) } as unknown as NodeView;
    const status = (hash: Uint8Array) =>
      answerRest(view, {} as EventFeed, 'GET', `/tx/${toHex(hash)}/status`, new URLSearchParams(), undefined).then(
        () => 200,
        (err: RestError) => err.status,
      );
    assert.deepEqual(await Promise.all([status(r.main[9]!.header.hash), status(r.branch[2]!.header.hash)]), [404, 200], 'the old tip, off the main chain; the new one');
    await r.db.close();
  });

  it('serves /mempool/txids: every pending id', async () => {
    // From the API review: a 404, "no such path", where Esplora lists the pool.
    await t.node.submitTransaction(transfer(FUNDED_KEYS[2]!, carol, 1n, 0n, 2n));
    const answer = await get(`${base}/mempool/txids`);
    assert.equal(answer.status, 200, answer.text);
    const ids = answer.json<string[]>();
    assert.deepEqual(ids.sort(), Array.from(t.node.mempool.entries(), (e) => e.tx.idHex).sort());
    assert.ok(ids.length >= 1, 'one pending at least');
  });

  it('gzips an answer of GZIP_MIN_BYTES or more for a client that takes gzip, with Vary; not a small one, nor the event stream', async () => {
    // From the API review: a page of blocks went as it was to a client asking for gzip.
    await mineOn(t, 10);
    const plain = await rawGet(`${base}/blocks`, {});
    assert.ok(plain.body.length >= GZIP_MIN_BYTES, `a page of ten blocks is ${plain.body.length} bytes`);
    assert.equal(plain.headers['content-encoding'], undefined);
    assert.equal(plain.headers.vary, 'accept-encoding', 'a cache keeps the two forms apart');
    const packed = await rawGet(`${base}/blocks`, { 'accept-encoding': 'gzip, deflate, br' });
    assert.equal(packed.headers['content-encoding'], 'gzip');
    assert.equal(packed.headers.vary, 'accept-encoding');
    assert.deepEqual(gunzipSync(packed.body), plain.body);
    assert.ok(packed.body.length < plain.body.length / 2, `${plain.body.length} bytes gzipped to ${packed.body.length}`);
    assert.equal((await rawGet(`${base}/blocks`, { 'accept-encoding': 'gzip;q=0, br' })).headers['content-encoding'], undefined, 'q=0 refuses it');
    assert.equal((await rawGet(`${base}/blocks`, { 'accept-encoding': '*' })).headers['content-encoding'], 'gzip');
    const small = await rawGet(`${base}/blocks/tip/height`, { 'accept-encoding': 'gzip' });
    assert.deepEqual([small.headers['content-encoding'], small.headers.vary, small.body.toString()], [undefined, undefined, String(t.node.chain.tip.height)]);
    const stream = await rawGet(`${base}/events`, { 'accept-encoding': 'gzip' });
    assert.equal(stream.headers['content-encoding'], undefined, 'events go as they come');
    assert.match(stream.body.toString(), /^retry: /);
    // With CORS on, Vary names both.
    const cors = new HttpServer(t.node, { cors: '*' });
    try {
      const url = (await cors.start()).replace(/\/$/, '');
      assert.equal((await rawGet(`${url}/blocks`, { 'accept-encoding': 'gzip' })).headers.vary, 'origin, accept-encoding');
    } finally {
      await cors.stop();
    }
  });

  it(`compresses at most ${MAX_COMPRESSING} answers at once: a client asking for large ones fast cannot take every libuv thread (the store's reads use them too)`, async () => {
    const bodies = Array.from({ length: MAX_COMPRESSING + 1 }, (_, i) => new SharedBody(JSON.stringify(Array.from({ length: 20_000 }, (_, j) => `${i}:${j}`))));
    const packed = await Promise.all(bodies.map((b) => b.gzipped()));
    assert.deepEqual(packed.map((p) => p !== undefined), [...Array<boolean>(MAX_COMPRESSING).fill(true), false], 'the one over goes as it is');
    assert.deepEqual(gunzipSync((await bodies.at(-1)!.gzipped())!), bodies.at(-1)!.bytes, 'and is compressed when asked again, once the others are done');
  });
});
