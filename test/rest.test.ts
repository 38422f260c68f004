/**
 * The REST API and live events over HTTP on a running node (real libp2p, LevelDB, the address
 * index on): Esplora's paths and shapes, JSON errors with codes, page limits, rate limits and
 * CORS; a reorganisation seen as events (disconnect and reconnect) with the address index rolled
 * back; and a client resuming after a disconnect without a gap, or told to resync.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { connect } from 'node:net';
import { toHex } from '../ledger/bytes.ts';
import { encodeAddress } from '../ledger/keys.ts';
import { HttpServer } from '../node/http/server.ts';
import { FUNDED_KEYS, testKey, transfer } from './helpers/fixtures.ts';
import { mineChild } from './helpers/mining.ts';
import { rememberState, stateOfStore } from './helpers/states.ts';
import { answered, checkConnectionCap, get, openStream, stallReader, type StreamEvent } from './helpers/http.ts';
import { mineOn, networkParams, startNode, stopAll, waitFor, type TestNode } from './helpers/network.ts';

describe('REST API and live events', function () {
  this.timeout(60_000);
  const params = networkParams();
  const [alice, bob] = FUNDED_KEYS as [(typeof FUNDED_KEYS)[0], (typeof FUNDED_KEYS)[0]];
  const carol = testKey(31).address;
  let t: TestNode;
  let http: HttpServer;
  let base: string;
  const servers: HttpServer[] = [];

  before(async () => {
    t = await startNode(params, [], { verifyThreads: 1, addressIndex: true });
    http = new HttpServer(t.node, { eventHistory: 50 });
    servers.push(http);
    base = (await http.start()).replace(/\/$/, '');
  });
  after(async () => {
    for (const s of servers) await s.stop();
    await stopAll([t]);
  });

  const post = (path: string, body: string) => get(base + path, { method: 'POST', body });
  const seqs = (events: StreamEvent[], type?: string) => events.filter((e) => !type || e.event === type).map((e) => e.data.seq as number);

  it('answers Esplora\'s paths: blocks, block, txs, raw, heights, tx, address pages, mempool, fees', async () => {
    const tx1 = transfer(alice, carol, 500n, 0n, 3n);
    const sent = await post('/tx', toHex(tx1.bytes));
    assert.equal(sent.status, 200, sent.text);
    assert.equal(sent.text, tx1.idHex);
    assert.equal((await get(`${base}/tx/${tx1.idHex}/status`)).json<{ confirmed: boolean }>().confirmed, false);
    const mempool = (await get(`${base}/mempool`)).json<{ count: number; fee_histogram: [string, number][] }>();
    assert.deepEqual([mempool.count, mempool.fee_histogram], [1, [['3', tx1.bytes.length]]]);
    assert.equal((await get(`${base}/mempool/recent`)).json<{ txid: string }[]>()[0]!.txid, tx1.idHex);
    const pending = (await get(`${base}/address/${encodeAddress(carol)}/txs`)).json<{ kind: string; cursor: string | null }[]>();
    assert.deepEqual(pending.map((l) => [l.kind, l.cursor]), [['received', null]], 'a pending payment leads the first page');
    const lines = async (path: string) => (await get(`${base}/address/${encodeAddress(carol)}/txs${path}`)).json<{ txid: string }[]>().map((l) => l.txid);
    assert.deepEqual(await lines('/mempool'), [tx1.idHex], 'Esplora\'s pending lines alone');
    assert.deepEqual(await lines('/chain'), [], 'Esplora\'s confirmed lines alone, from the newest');

    const [b1] = await mineOn(t, 1);
    const tx2 = transfer(alice, carol, 200n, 1n, 2n);
    assert.equal((await post('/tx', toHex(tx2.bytes))).status, 200);
    const [b2] = await mineOn(t, 1);
    const hash1 = toHex(b1!.header.hash);
    const hash2 = toHex(b2!.header.hash);

    assert.equal((await get(`${base}/blocks/tip/height`)).text, '2');
    assert.equal((await get(`${base}/blocks/tip/hash`)).text, hash2);
    assert.equal((await get(`${base}/block-height/1`)).text, hash1);
    const blocks = (await get(`${base}/blocks`)).json<{ id: string; height: number; tx_count: number }[]>();
    assert.deepEqual(blocks.map((b) => [b.height, b.tx_count]), [[2, 1], [1, 1], [0, 0]]);
    assert.deepEqual((await get(`${base}/blocks/1`)).json<{ height: number }[]>().map((b) => b.height), [1, 0]);
    const block = (await get(`${base}/block/${hash1}`)).json<Record<string, unknown>>();
    assert.equal(block.previousblockhash, toHex(b1!.header.prevHash));
    assert.equal(block.in_best_chain, true);
    assert.deepEqual((await get(`${base}/block/${hash1}/status`)).json(), { in_best_chain: true, height: 1, next_best: hash2 });
    assert.deepEqual((await get(`${base}/block/${hash1}/txs`)).json<{ txid: string }[]>().map((x) => x.txid), [tx1.idHex]);
    assert.deepEqual((await get(`${base}/block/${hash1}/raw`)).bytes, b1!.bytes);
    assert.deepEqual((await get(`${base}/tx/${tx1.idHex}/raw`)).bytes, tx1.bytes);
    // Esplora's other ways to the same: hex, a block's header alone, its ids all at once or by index.
    assert.equal((await get(`${base}/tx/${tx1.idHex}/hex`)).text, toHex(tx1.bytes));
    assert.equal((await get(`${base}/block/${hash1}/header`)).text, toHex(b1!.header.bytes));
    assert.deepEqual((await get(`${base}/block/${hash1}/txids`)).json(), [tx1.idHex]);
    assert.equal((await get(`${base}/block/${hash1}/txid/0`)).text, tx1.idHex);
    assert.equal((await get(`${base}/block/${hash1}/txid/1`)).status, 404);
    // Named by their hashes, the raw bytes never change: a cache may keep them; what moves with the tip may not be kept.
    for (const path of [`/block/${hash1}/raw`, `/tx/${tx1.idHex}/raw`]) assert.equal((await get(base + path)).headers.get('cache-control'), 'public, max-age=31536000, immutable', path);
    for (const path of ['/blocks/tip/hash', `/block/${hash1}`, `/tx/${tx1.idHex}`]) assert.equal((await get(base + path)).headers.get('cache-control'), 'no-store', path);
    const tx = (await get(`${base}/tx/${tx1.idHex}`)).json<{ from: string; amount: string; status: { block_height: number } }>();
    assert.deepEqual([tx.from, tx.amount, tx.status.block_height], [encodeAddress(alice.address), '500', 1]);

    const address = (await get(`${base}/address/${encodeAddress(carol)}`)).json<{ balance: string; chain_stats: Record<string, number> }>();
    assert.equal(address.balance, '700');
    assert.deepEqual(address.chain_stats, { tx_count: 2, sent_count: 0, received_count: 2, coinbase_count: 0 });
    const page1 = (await get(`${base}/address/${encodeAddress(carol)}/txs?limit=1`)).json<{ txid: string; cursor: string }[]>();
    assert.deepEqual(page1.map((l) => l.txid), [tx2.idHex]);
    const page2 = (await get(`${base}/address/${encodeAddress(carol)}/txs/chain/${page1[0]!.cursor}?limit=1`)).json<{ txid: string }[]>();
    assert.deepEqual(page2.map((l) => l.txid), [tx1.idHex], 'the next page goes on after the cursor');
    assert.deepEqual(await lines('/chain?limit=1'), [tx2.idHex]);
    assert.deepEqual(await lines('/mempool'), []);
    // A difficulty may pass 2^53, past which a JSON number rounds: a decimal string, as in the block object.
    const chart = (await get(`${base}/chart?count=2`)).json<{ height: number; difficulty: unknown }[]>();
    assert.deepEqual(chart.map((c) => [c.height, c.difficulty]), [[1, block.difficulty], [2, block.difficulty]]);
    const fees = (await get(`${base}/fee-estimates`)).json<Record<string, string>>();
    assert.ok(BigInt(fees['1']!) >= 1n && BigInt(fees['6']!) >= 1n, JSON.stringify(fees));
  });

  it('refuses bad input with JSON errors that carry a code, and caps page sizes', async () => {
    const expectError = async (path: string, status: number, code: string, init?: RequestInit) => {
      const a = await get(base + path, init);
      assert.equal(a.status, status, `${path}: ${a.text}`);
      assert.equal(a.headers.get('content-type'), 'application/json');
      assert.equal(a.json<{ error: { code: string } }>().error.code, code, path);
    };
    await expectError('/block/nothex', 400, 'BAD_REQUEST');
    await expectError(`/block/${'0'.repeat(64)}`, 404, 'NOT_FOUND');
    await expectError(`/tx/${'ab'.repeat(32)}`, 404, 'NOT_FOUND');
    await expectError('/block-height/99999', 404, 'NOT_FOUND');
    await expectError('/blocks/99999', 404, 'NOT_FOUND'); // as Esplora: not the tip's page, which a client paging up would take for new blocks
    await expectError('/address/cairn1nope', 400, 'BAD_REQUEST');
    await expectError(`/address/${encodeAddress(carol)}/txs?limit=101`, 400, 'BAD_REQUEST');
    await expectError(`/address/${encodeAddress(carol)}/txs/chain/garbage`, 400, 'BAD_REQUEST');
    await expectError('/no/such/path', 404, 'NOT_FOUND');
    await expectError('/tx', 400, 'BAD_REQUEST', { method: 'POST', body: 'zz' });
    await expectError('/tx', 413, 'TOO_LARGE', { method: 'POST', body: 'a'.repeat(20_000) });
    // A valid transaction the mempool refuses: its rule's code.
    await expectError('/tx', 400, 'MEMPOOL_NONCE_TOO_LOW', { method: 'POST', body: toHex(transfer(alice, carol, 1n, 0n, 5n).bytes) });
    // A % escape that is not UTF-8 used to escape as a 500.
    for (const path of ['/tx/%E0%A4%A', '/address/%ZZ', '/block/%', '/blocks/%FF']) await expectError(path, 400, 'BAD_REQUEST');
    await expectError('/events?types=bogus', 400, 'BAD_REQUEST');
    await expectError('/events?address=cairn1nope', 400, 'BAD_REQUEST');
  });

  it('a method a path does not answer is 405 with the methods it does (Allow), not a 404 that says the path does not exist', async () => {
    for (const [method, path, allow] of [['PUT', '/blocks', 'GET, HEAD'], ['DELETE', `/address/${encodeAddress(carol)}`, 'GET, HEAD'], ['POST', '/blocks/tip/height', 'GET, HEAD'], ['GET', '/tx', 'POST'], ['PUT', '/tx', 'POST'], ['HEAD', '/events', 'GET'], ['POST', '/', 'GET, HEAD']] as const) {
      const a = await get(base + path, { method, ...(method === 'POST' || method === 'PUT' ? { body: 'x' } : {}) });
      assert.equal(a.status, 405, `${method} ${path}: ${a.text}`);
      assert.equal(a.headers.get('allow'), allow, `${method} ${path}`);
      if (method !== 'HEAD') assert.equal(a.json<{ error: { code: string } }>().error.code, 'METHOD_NOT_ALLOWED');
    }
    assert.equal((await get(`${base}/no/such/path`, { method: 'PUT' })).status, 404, 'a path that is none of the API\'s is still not found');
    assert.equal((await get(`${base}/blocks/tip/height`, { method: 'HEAD' })).status, 200);
  });

  it('serves the explorer: its page and assets with content types, an ETag and revalidation; under 150 KB of script', async () => {
    const page = await get(`${base}/`);
    assert.equal(page.status, 200);
    assert.equal(page.headers.get('content-type'), 'text/html; charset=utf-8');
    assert.equal(page.headers.get('cache-control'), 'no-cache');
    const scripts = [...page.text.matchAll(/src="\/assets\/([a-z]+\.js)"/g)].map((m) => m[1]!);
    assert.deepEqual(scripts, ['app.js']);
    const app = await get(`${base}/assets/app.js`);
    assert.equal(app.headers.get('content-type'), 'text/javascript; charset=utf-8');
    const etag = app.headers.get('etag')!;
    assert.equal((await get(`${base}/assets/app.js`, { headers: { 'if-none-match': etag } })).status, 304);
    assert.equal((await get(`${base}/assets/style.css`)).headers.get('content-type'), 'text/css; charset=utf-8');
    assert.equal((await get(`${base}/assets/../package.json`)).status, 404);
    let bytes = 0;
    for (const name of ['app.js', 'dom.js', 'views.js', 'chart.js']) bytes += (await get(`${base}/assets/${name}`)).bytes.length;
    assert.ok(bytes < 150_000, `${bytes} bytes of script`);
  });

  it('/node tells whether the node mines, why its miner waits, and its own hash rate', async () => {
    const node = () => get(`${base}/node`).then((r) => r.json<{ mining: boolean; mining_waits: string | null; mining_hash_rate: number | null }>());
    const before = await node();
    assert.deepEqual([before.mining, before.mining_waits, before.mining_hash_rate], [false, null, null]);
    t.node.miner = { held: 'catching up with its peers', hashRate: 1234.4 };
    try {
      const mining = await node();
      assert.deepEqual([mining.mining, mining.mining_waits, mining.mining_hash_rate], [true, 'catching up with its peers', 1234]);
    } finally {
      t.node.miner = undefined;
    }
  });

  it('CORS is off unless asked for; a client over its rate gets 429 with a code', async () => {
    assert.equal((await get(`${base}/blocks/tip/height`)).headers.get('access-control-allow-origin'), null);
    const preflight = await get(`${base}/blocks/tip/height`, { method: 'OPTIONS' });
    assert.deepEqual([preflight.status, preflight.headers.get('allow')], [405, 'GET, HEAD'], 'a 405 says what the path answers (RFC 9110)');
    const limited = new HttpServer(t.node, { rateBurst: 5, ratePerSecond: 0.001, cors: 'https://example.org' });
    servers.push(limited);
    const url = (await limited.start()).replace(/\/$/, '');
    const first = await get(`${url}/blocks/tip/height`);
    assert.equal(first.headers.get('access-control-allow-origin'), 'https://example.org');
    const statuses = [];
    for (let i = 0; i < 5; i++) statuses.push((await get(`${url}/blocks/tip/height`)).status);
    assert.deepEqual(statuses, [200, 200, 200, 200, 429]);
    const refused = await get(`${url}/blocks/tip/height`);
    assert.equal(refused.json<{ error: { code: string } }>().error.code, 'RATE_LIMITED');
    assert.equal(refused.headers.get('retry-after'), '1');
    assert.equal(refused.headers.get('access-control-expose-headers'), 'retry-after, allow', 'a page of the allowed origin may read Retry-After');
  });

  it('behind a trusted local proxy each client named in X-Forwarded-For has its own rate; without the flag the header is ignored', async () => {
    // From the API review: behind the reverse proxy the docs describe, every visitor of a published
    // explorer was 127.0.0.1, and all of them shared one bucket of 50 requests a second.
    const as = (url: string, forwarded: string) => get(`${url}/blocks/tip/height`, { headers: { 'x-forwarded-for': forwarded } });
    const trusting = new HttpServer(t.node, { rateBurst: 2, ratePerSecond: 0.001, trustProxy: true });
    const plain = new HttpServer(t.node, { rateBurst: 2, ratePerSecond: 0.001 });
    servers.push(trusting, plain);
    const trustingUrl = (await trusting.start()).replace(/\/$/, '');
    const plainUrl = (await plain.start()).replace(/\/$/, '');
    const statuses = async (url: string, forwarded: string) => [(await as(url, forwarded)).status, (await as(url, forwarded)).status, (await as(url, forwarded)).status];
    assert.deepEqual(await statuses(trustingUrl, '203.0.113.7'), [200, 200, 429]);
    // The proxy's entry is the last: what the client wrote before it does not make it someone else.
    assert.deepEqual(await statuses(trustingUrl, '198.51.100.1, 203.0.113.7'), [429, 429, 429]);
    assert.deepEqual(await statuses(trustingUrl, '203.0.113.7, 203.0.113.8'), [200, 200, 429], 'another visitor has a bucket of its own');
    assert.deepEqual(await statuses(plainUrl, '203.0.113.7'), [200, 200, 429]);
    assert.deepEqual(await statuses(plainUrl, '203.0.113.8'), [429, 429, 429], 'untrusted, every request is the proxy\'s');
  });

  it('DNS rebinding: a request naming a host other than this machine is refused on every path; localhost, IPs and --http-host-name are answered', async () => {
    const withHost = (url: string, path: string, host: string) => new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = request(url + path, { headers: { host } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    });
    const port = new URL(base).port;
    for (const path of ['/node', '/', '/assets/app.js', '/blocks/tip/height', '/events']) {
      const refused = await withHost(base, path, `evil.example:${port}`);
      assert.equal(refused.status, 403, `${path}: ${refused.text}`);
      assert.equal((JSON.parse(refused.text) as { error: { code: string } }).error.code, 'HOST_REFUSED', path);
    }
    for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`, `explorer.localhost:${port}`, 'LOCALHOST']) {
      assert.equal((await withHost(base, '/blocks/tip/height', host)).status, 200, host);
    }
    const proxied = new HttpServer(t.node, { hostNames: ['explorer.example'] });
    servers.push(proxied);
    const proxiedUrl = (await proxied.start()).replace(/\/$/, '');
    assert.equal((await withHost(proxiedUrl, '/blocks/tip/height', 'Explorer.Example')).status, 200);
    assert.equal((await withHost(proxiedUrl, '/blocks/tip/height', 'evil.example')).status, 403);
  });

  it('a wall clock set back an hour does not leave a client over its rate for an hour', async () => {
    const limited = new HttpServer(t.node, { rateBurst: 5, ratePerSecond: 10 });
    servers.push(limited);
    const url = (await limited.start()).replace(/\/$/, '');
    assert.equal((await get(`${url}/blocks/tip/height`)).status, 200);
    const realNow = Date.now;
    Date.now = () => realNow() - 3_600_000;
    try {
      assert.equal((await get(`${url}/blocks/tip/height`)).status, 200, 'its bucket is not an hour in debt');
    } finally {
      Date.now = realNow;
    }
  });

  it('a reorganisation is a reorg event (disconnected, ancestor, connected) and the address index rolls back', async () => {
    const stream = await openStream(`${base}/events?types=block,reorg,address&address=${encodeAddress(carol)}`);
    try {
      const fork = t.node.chain.tip;
      rememberState(fork.hash, await stateOfStore(t.node.db));
      const tx3 = transfer(alice, carol, 50n, 2n, 2n);
      assert.equal((await post('/tx', toHex(tx3.bytes))).status, 200);
      const [b3] = await mineOn(t, 1);
      await stream.waitFor('block 3', (es) => es.some((e) => e.event === 'block' && e.data.height === 3));
      await stream.waitFor('carol\'s address event', (es) => es.some((e) => e.event === 'address' && e.data.cause === 'block'));
      assert.equal((await get(`${base}/address/${encodeAddress(carol)}/txs`)).json<unknown[]>().length, 3);

      // A heavier branch from block 2 where alice's nonce 2 pays bob instead: carol's third payment is gone.
      const c3 = mineChild(params, fork, [transfer(alice, bob.address, 9n, 2n, 2n)], { spacing: 1, miner: testKey(70).address });
      const c4 = mineChild(params, { hash: c3.header.hash, height: 3, header: c3.header, anchorTimestamp: fork.anchorTimestamp }, [], { spacing: 1, miner: testKey(70).address });
      assert.equal(await t.node.chain.processBlock(c3), 'side-branch');
      assert.equal(await t.node.chain.processBlock(c4), 'connected');
      await stream.waitFor('the reorg', (es) => es.some((e) => e.event === 'reorg'));
      await stream.waitFor('block 4', (es) => es.some((e) => e.event === 'block' && e.data.height === 4));
      const reorg = stream.events.find((e) => e.event === 'reorg')!;
      assert.deepEqual(reorg.data.common_ancestor, { height: 2, hash: fork.hashHex });
      assert.deepEqual(reorg.data.disconnected, [{ height: 3, hash: toHex(b3!.header.hash) }]);
      assert.deepEqual(reorg.data.connected, [{ height: 3, hash: toHex(c3.header.hash) }, { height: 4, hash: toHex(c4.header.hash) }]);
      const after = stream.events.slice(stream.events.indexOf(reorg));
      assert.deepEqual(after.filter((e) => e.event === 'block').map((e) => e.data.height), [3, 4], 'then the connected blocks, in order');
      const s = seqs(stream.events.filter((e) => e.event !== 'address'));
      assert.deepEqual(s, [...s].sort((a, b) => a - b), 'sequence numbers only grow');

      await waitFor(async () => (await get(`${base}/address/${encodeAddress(carol)}/txs`)).json<unknown[]>().length === 2, 10_000, 'carol\'s history without the disconnected payment');
      const lines = (await get(`${base}/address/${encodeAddress(carol)}/txs`)).json<{ txid: string }[]>();
      assert.ok(!lines.some((l) => l.txid === tx3.idHex), 'the payment left the index with its block (and the mempool: its nonce is spent)');
      assert.equal((await get(`${base}/tx/${tx3.idHex}`)).status, 404);
    } finally {
      stream.close();
    }
  });

  it('one client holds at most 16 event streams, so that it cannot take every slot', async () => {
    // Loopback is exempt by default (a proxy on the node's machine speaks for many): counted here.
    const limited = new HttpServer(t.node, { limitLoopback: true });
    servers.push(limited);
    const url = `${(await limited.start()).replace(/\/$/, '')}/events?types=block`;
    const fill = async () => {
      const held = [];
      for (let i = 0; i < 16; i++) held.push(await openStream(url));
      return held;
    };
    let held = await fill();
    try {
      const refused = await get(url);
      assert.equal(refused.status, 429);
      assert.equal(refused.json<{ error: { code: string } }>().error.code, 'RATE_LIMITED');
    } finally {
      for (const s of held) s.close();
    }
    // All its slots come back as its streams close (the server hears of each close a moment later).
    for (let attempt = 0; ; attempt++) {
      const again = await fill().catch((err: Error) => err);
      if (!(again instanceof Error)) {
        held = again;
        break;
      }
      assert.ok(attempt < 100, `not every slot came back: ${again.message}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    for (const s of held) s.close();
    // The node's own server, loopback exempt, refuses no local client for it.
    const local = [];
    for (let i = 0; i < 17; i++) local.push(await openStream(`${base}/events?types=block`));
    for (const s of local) s.close();
  });

  it('connections are capped, in all and for one client: a client cannot hold sockets until the node runs out of file descriptors', async () => {
    const total = new HttpServer(t.node, { maxConnections: 5 });
    servers.push(total);
    await checkConnectionCap(await total.start(), 5, '/blocks/tip/height');
    const perClient = new HttpServer(t.node, { limitLoopback: true });
    servers.push(perClient);
    await checkConnectionCap(await perClient.start(), 64, '/blocks/tip/height');
  });

  it('cuts a connection whose client reads none of its answers, never an event stream waiting for events', async () => {
    const cutting = new HttpServer(t.node, { maxConnections: 2, rateBurst: 10_000, writeTimeoutMs: 300 });
    servers.push(cutting);
    const url = (await cutting.start()).replace(/\/$/, '');
    const stream = await openStream(`${url}/events?types=block`);
    // Pipelined, more answers than the kernel's buffers take for a client that reads nothing.
    const stalled = stallReader(url, 'GET /assets/views.js HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n', 1_000);
    try {
      await waitFor(() => answered(`${url}/blocks/tip/height`), 20_000, 'the slot of the client that reads nothing back');
      // The stream sat idle longer than the timeout meanwhile.
      await mineOn(t, 1);
      await stream.waitFor('a block after the idle', (es) => es.length >= 1);
    } finally {
      stalled.socket.destroy();
      stream.close();
    }
  });

  it('a request whose body comes a byte at a time is answered 408 and its connection closed once its time is up; an event stream is never cut for it', async () => {
    // Node's default is 300 s: a slow POST /tx held its connection for five minutes.
    const timed = new HttpServer(t.node, { requestTimeoutMs: 400 });
    servers.push(timed);
    const url = new URL(await timed.start());
    const stream = await openStream(`${url.origin}/events?types=block`);
    const socket = connect(Number(url.port), url.hostname);
    let reply = '';
    socket.setEncoding('utf8').on('data', (d: string) => (reply += d));
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    socket.write('POST /tx HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\nContent-Length: 334\r\n\r\n0');
    const drip = setInterval(() => socket.write('0'), 50);
    try {
      const outcome = await Promise.race([closed.then(() => 'closed'), new Promise((resolve) => setTimeout(resolve, 10_000, 'still open after 10 s'))]);
      assert.equal(outcome, 'closed');
      assert.match(reply, /^HTTP\/1\.1 408/);
      // The stream, open for longer than the request's time, still gets what comes.
      await mineOn(t, 1);
      await stream.waitFor('a block', (es) => es.length >= 1);
    } finally {
      clearInterval(drip);
      socket.destroy();
      stream.close();
    }
  });

  it('a client that reconnects with Last-Event-ID gets exactly what it missed; one too far behind is told to resync', async () => {
    const first = await openStream(`${base}/events?types=block`);
    await mineOn(t, 1);
    await first.waitFor('a block', (es) => es.length >= 1);
    const lastSeen = first.events.at(-1)!;
    first.close();
    // Missed while away: two blocks and a transaction.
    await mineOn(t, 2);
    const tx = transfer(bob, carol, 1n, 0n, 2n);
    assert.equal((await post('/tx', toHex(tx.bytes))).status, 200);
    const again = await openStream(`${base}/events`, { 'last-event-id': lastSeen.id! });
    try {
      await again.waitFor('the missed events', (es) => es.some((e) => e.event === 'tx'));
      const got = seqs(again.events);
      const from = lastSeen.data.seq as number;
      assert.deepEqual(got, Array.from({ length: got.length }, (_, i) => from + 1 + i), 'every seq after the last seen, none skipped');
      assert.deepEqual(again.events.map((e) => e.event), ['block', 'block', 'tx']);
    } finally {
      again.close();
    }
    // The history keeps 50 events: fill it past the old id.
    for (let i = 0; i < 6; i++) await mineOn(t, 10);
    const late = await openStream(`${base}/events`, { 'last-event-id': lastSeen.id! });
    const restarted = await openStream(`${base}/events?since=other-run:1`);
    try {
      await late.waitFor('resync', (es) => es.some((e) => e.event === 'resync'));
      await restarted.waitFor('resync', (es) => es.some((e) => e.event === 'resync'));
      assert.equal(late.events[0]!.data.reason, 'too-old');
      assert.equal(restarted.events[0]!.data.reason, 'restarted');
    } finally {
      late.close();
      restarted.close();
    }
  });
});
