/**
 * The node's two HTTP faces fuzzed against a live node with a short chain: every JSON-RPC method
 * with values its schema lets through (where a handler's own checks are all that stands) and
 * values it does not, and REST paths, queries and bodies. Nothing may answer INTERNAL_ERROR or
 * HTTP 500 (a failure on our side), and nothing may change the chain or the mempool.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import fc from 'fast-check';
import { toHex } from '../ledger/bytes.ts';
import { encodeAddress } from '../ledger/keys.ts';
import { HttpServer } from '../node/http/server.ts';
import { Metrics } from '../node/metrics.ts';
import { RPC_DOC } from '../node/rpc-doc.ts';
import type { Schema } from '../node/json-schema.ts';
import { RPC_ENDPOINT_FILE, RPC_ERRORS, type RpcEndpointFile } from '../node/rpc-types.ts';
import { FUNDED_KEYS, testKey, transfer } from './helpers/fixtures.ts';
import { FUZZ_SEED as SEED, fuzzRuns as runs } from './helpers/fuzz.ts';
import { get } from './helpers/http.ts';
import { mineOn, networkParams, startNode, stopAll, type TestNode } from './helpers/network.ts';

/** Methods left out: `stop` ends the node, and `auditState` replays the chain (tested on its own). */
const LEFT_OUT = new Set(['stop', 'auditState']);

describe('RPC and REST under fuzzing', function () {
  this.timeout(120_000);
  const params = networkParams();
  const [alice, bob] = FUNDED_KEYS as [(typeof FUNDED_KEYS)[0], (typeof FUNDED_KEYS)[0]];
  let t: TestNode;
  let http: HttpServer;
  let rest: string;
  let endpoint: RpcEndpointFile;
  /** What the fuzz may name: the chain's own hashes, ids, heights and addresses, beside random ones. */
  const known = { hashes: [] as string[], ids: [] as string[], addresses: [] as string[], hexes: [] as string[] };
  let before_: { tip: string; pending: string[] };

  before(async () => {
    t = await startNode(params, [], { verifyThreads: 1, addressIndex: true, rpc: { port: 0 } });
    endpoint = JSON.parse(readFileSync(join(t.config.datadir, RPC_ENDPOINT_FILE), 'utf8')) as RpcEndpointFile;
    // The rate limit is tested on its own (rest.test.ts): here it would only answer the fuzz 429.
    http = new HttpServer(t.node, { eventHistory: 50, rateBurst: 1_000_000, ratePerSecond: 1_000_000 });
    rest = (await http.start()).replace(/\/$/, '');
    const confirmed = transfer(alice, bob.address, 1000n, 0n, 5n);
    await t.node.submitTransaction(confirmed);
    const blocks = await mineOn(t, 3);
    const pending = transfer(bob, testKey(40).address, 7n, 0n, 3n);
    await t.node.submitTransaction(pending);
    known.hashes.push(toHex(t.node.db.genesis.header.hash), ...blocks.map((b) => toHex(b.header.hash)));
    known.ids.push(confirmed.idHex, pending.idHex);
    known.addresses.push(...[alice.address, bob.address, testKey(40).address, blocks[0]!.coinbase.to].map(encodeAddress));
    known.hexes.push(toHex(confirmed.bytes), toHex(pending.bytes), toHex(transfer(alice, bob.address, 1n, 0n, 5n).bytes));
    before_ = state();
  });
  after(async () => {
    await http?.stop();
    await stopAll([t]);
  });

  /** The status of a GET of `url` sent with exactly `host` as its Host header (fetch sets its own). */
  function rawStatus(url: string, host: string): Promise<number> {
    return new Promise((resolve, reject) => {
      const req = request(url, { setHost: false, headers: { host } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode!));
      });
      req.on('error', reject);
      req.end();
    });
  }

  function state(): { tip: string; pending: string[] } {
    return { tip: t.node.chain.tip.hashHex, pending: [...t.node.mempool.entries()].map((e) => e.tx.idHex).sort() };
  }

  const hex = (min: number, max: number) => fc.uint8Array({ minLength: min, maxLength: max }).map((b) => toHex(b));
  const arbHeight = fc.oneof(fc.integer({ min: 0, max: 6 }), fc.constantFrom(2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1), fc.integer({ min: 0, max: 2 ** 32 - 1 }));
  const arbHash = fc.oneof(fc.constantFrom(0).chain(() => fc.constantFrom(...known.hashes, ...known.ids)), hex(32, 32));
  const arbAddress = fc.oneof(fc.constantFrom(0).chain(() => fc.constantFrom(...known.addresses)), fc.uint8Array({ minLength: 20, maxLength: 20 }).map(encodeAddress));
  /** A transaction's hex, its bytes edited: a wrong signature, a wrong nonce, garbage of its length. */
  const arbTxHex = fc.oneof(
    fc.constantFrom(0).chain(() => fc.constantFrom(...known.hexes)),
    fc.tuple(fc.constantFrom(0).chain(() => fc.constantFrom(...known.hexes)), fc.nat(), fc.integer({ min: 0, max: 255 })).map(([h, at, v]) => {
      const bytes = Buffer.from(h, 'hex');
      bytes[at % bytes.length] = v;
      return bytes.toString('hex');
    }),
    hex(0, 200),
  );
  const junk = fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.string({ maxLength: 80 }), fc.constantFrom(-1, 1.5, 2 ** 53, '0x10', '', null, [], {}, '00', 'cairn1'));

  /** Values `schema` admits, as the fuzz makes them (the doc's named schemas by their meaning). */
  function valid(schema: Schema): fc.Arbitrary<unknown> {
    const s = schema as { $ref?: string; type?: string; minimum?: number; maximum?: number; maxItems?: number; oneOf?: Schema[]; items?: Schema };
    if (s.$ref) {
      const name = s.$ref.split('/').pop();
      if (name === 'Hash') return arbHash;
      if (name === 'Address') return arbAddress;
      if (name === 'Height') return arbHeight;
      if (name === 'Hex') return arbTxHex;
      throw new Error(`no generator for ${s.$ref}`);
    }
    if (s.oneOf) return fc.oneof(...s.oneOf.map(valid));
    if (s.type === 'integer') return fc.oneof(fc.constantFrom(s.minimum ?? 0, s.maximum ?? 2 ** 32 - 1), fc.integer({ min: s.minimum ?? 0, max: s.maximum ?? 2 ** 32 - 1 }));
    if (s.type === 'array') return fc.array(fc.oneof(arbTxHex, fc.string({ maxLength: 20 })), { maxLength: Math.min(s.maxItems ?? 20, 20) });
    throw new Error(`no generator for ${JSON.stringify(schema)}`);
  }

  const methods = RPC_DOC.methods.filter((m) => !LEFT_OUT.has(m.name));
  /** A call: each param the method takes present or not, most of them valid, some junk, sometimes one it does not take. */
  const arbCall = fc.constantFrom(...methods).chain((m) =>
    fc
      .tuple(
        fc.tuple(...m.params.map((p) => fc.option(fc.oneof({ weight: 4, arbitrary: valid(p.schema) }, { weight: 1, arbitrary: junk }), { freq: 4 }))),
        // Now and then a parameter the method does not take (fc.option's freq is the odds of none: 1 in freq).
        fc.oneof({ weight: 7, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.tuple(fc.string({ maxLength: 8 }), junk) }),
        fc.boolean(),
      )
      .map(([values, extra, byPosition]) => {
        const named: Record<string, unknown> = {};
        m.params.forEach((p, i) => {
          if (values[i] !== null) named[p.name] = values[i];
        });
        if (extra) named[extra[0]] = extra[1];
        if (!byPosition || extra) return { method: m.name, params: named };
        // By position: up to the last one given (an absent one before it is a null, which its schema refuses).
        const positional = m.params.map((p) => (Object.hasOwn(named, p.name) ? named[p.name] : null));
        while (positional.length > 0 && positional.at(-1) === null) positional.pop();
        return { method: m.name, params: positional };
      }),
  );

  async function rpcBatch(calls: readonly { method: string; params: unknown }[]): Promise<{ id: number; error?: { code: number; message: string } }[]> {
    const response = await fetch(endpoint.url, {
      method: 'POST',
      headers: { authorization: `Bearer ${endpoint.token}`, 'content-type': 'application/json' },
      body: JSON.stringify(calls.map((c, id) => ({ jsonrpc: '2.0', id, ...c }))),
      signal: AbortSignal.timeout(60_000),
    });
    assert.equal(response.status, 200);
    return (await response.json()) as { id: number; error?: { code: number; message: string } }[];
  }

  it('every RPC method, given what its schema admits and what it does not, answers or refuses: never INTERNAL_ERROR, and nothing changes', async () => {
    const batches = fc.sample(fc.array(arbCall, { minLength: 100, maxLength: 200 }), { seed: SEED, numRuns: runs(15) });
    let calls = 0;
    const refused = new Map<number, number>();
    for (const batch of batches) {
      const answers = await rpcBatch(batch);
      assert.equal(answers.length, batch.length);
      for (const a of answers) {
        calls++;
        if (a.error) refused.set(a.error.code, (refused.get(a.error.code) ?? 0) + 1);
        assert.notEqual(a.error?.code, RPC_ERRORS.INTERNAL_ERROR, `${JSON.stringify(batch[a.id])} failed on our side: ${a.error?.message}`);
      }
    }
    if (process.env.CAIRN_FUZZ_SCALE) console.log(`      ${calls} calls, refused ${JSON.stringify([...refused])}`);
    assert.ok(calls > 1000, `${calls} calls`);
    // The fuzz reached the handlers, not only the schema check: some calls were answered, some found nothing.
    assert.ok(calls - [...refused.values()].reduce((x, y) => x + y, 0) > 100, `answered: ${calls} calls, refused ${JSON.stringify([...refused])}`);
    assert.ok(refused.get(RPC_ERRORS.NOT_FOUND), `some calls found nothing: refused ${JSON.stringify([...refused])}`);
    assert.deepEqual(state(), before_);
  });

  it('a target that reads as another host (//%40(…) is a path to the REST API and to the metrics page (404: neither has it): it ended the node from the metrics port; Host headers of every shape are refused or answered', async () => {
    const metrics = new Metrics(t.node);
    try {
      const port = await metrics.listen(0);
      for (const target of ['//%40(B%2BE%25%3C/status', '//x/blocks/tip/height']) {
        assert.equal((await get(`http://127.0.0.1:${port}${target}`)).status, 404, target);
        assert.equal((await get(`http://127.0.0.1:${port}/metrics`)).status, 200, 'still serving');
      }
      // Host headers of every shape (the DNS-rebinding check reads them): refused or answered, never a 500 or an end.
      const hosts = fc.sample(fc.oneof(fc.constantFrom('127.0.0.1', 'localhost', '[::1]', 'x.localhost.', 'evil.example', '127.0.0.1:1', '[::1', ':', '@', 'a@b', '%', '', '[', 'localhost/x', 'localhost?x', 'localhost#x'), fc.string({ maxLength: 20 }).filter((h) => /^[\x21-\x7e]*$/.test(h))), { seed: SEED, numRuns: runs(150) });
      for (const host of hosts) {
        for (const base of [`http://127.0.0.1:${port}/metrics`, `${rest}/blocks/tip/height`]) {
          const status = await rawStatus(base, host);
          assert.ok([200, 400, 403].includes(status), `${base} with Host ${JSON.stringify(host)}: ${status}`);
        }
      }
      assert.equal((await get(`http://127.0.0.1:${port}/metrics`)).status, 200, 'still serving');
      const odd = await get(`${rest}//%40(B%2BE%25%3C/status`);
      assert.equal(odd.status, 404, odd.text);
      // Not /blocks/tip/height on another "host": a path whose first segment is empty.
      assert.equal((await get(`${rest}//x/blocks/tip/height`)).status, 404);
    } finally {
      await metrics.close();
    }
  });

  it('REST paths, queries and bodies: answered or refused with 4xx, never a 500, and nothing changes', async () => {
    const first = fc.constantFrom('blocks', 'block', 'block-height', 'tx', 'address', 'mempool', 'fee-estimates', 'node', 'chart', 'api', '');
    const part = fc.oneof(
      fc.constantFrom('tip', 'height', 'hash', 'status', 'header', 'raw', 'hex', 'txids', 'txid', 'txs', 'chain', 'mempool', 'recent', '0', '1', '25', '-1', '1e3', '4294967296', '..', '%', '%ff', '%C3%A9', ' '),
      arbHeight.map(String),
      arbHash,
      arbAddress,
      fc.string({ maxLength: 30 }).map(encodeURIComponent),
    );
    const query = fc.option(
      fc.array(fc.tuple(fc.constantFrom('count', 'limit', 'cursor', 'after_txid', 'start', 'x'), fc.oneof(fc.constantFrom('0', '1', '2', '-5', '1001', 'abc', ''), arbHash, fc.nat().map(String))), { maxLength: 3 }),
      { freq: 3 },
    );
    const arbGet = fc.tuple(first, fc.array(part, { maxLength: 4 }), query).map(([f, rest_, q]) => `/${[f, ...rest_].join('/')}${q ? `?${new URLSearchParams(q).toString()}` : ''}`);
    const paths = fc.sample(arbGet, { seed: SEED, numRuns: runs(700) });
    const bodies = fc.sample(fc.oneof(arbTxHex, junk.map((j) => JSON.stringify(j))), { seed: SEED, numRuns: runs(100) });
    const statuses = new Map<number, number>();
    for (const path of paths) {
      const answer = await get(rest + path);
      statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
      assert.ok(answer.status < 500 || answer.status === 503, `GET ${path}: ${answer.status} ${answer.text.slice(0, 300)}`);
    }
    for (const body of bodies) {
      const answer = await get(`${rest}/tx`, { method: 'POST', body });
      assert.ok(answer.status === 400 || (answer.status === 200 && known.ids.includes(answer.text)), `POST /tx ${body.slice(0, 100)}: ${answer.status} ${answer.text.slice(0, 300)}`);
    }
    // The event stream: its kinds, addresses and resume points, from the query or Last-Event-ID.
    const streamAsks = fc.sample(
      fc.tuple(
        fc.array(fc.tuple(fc.constantFrom('types', 'address', 'since'), fc.oneof(fc.constantFrom('block', 'tx,reorg', 'address', 'block,,tx', '0', '1', '999999999999999', 'x:3', ''), arbAddress, fc.string({ maxLength: 20 }))), { maxLength: 4 }),
        fc.option(fc.oneof(fc.constantFrom('0', '2', '1e3', '-1', ':', 'a:b:1'), fc.string({ maxLength: 30 }).filter((x) => /^[\x20-\x7e]*$/.test(x)))),
      ),
      { seed: SEED, numRuns: runs(60) },
    );
    for (const [q, lastId] of streamAsks) {
      const abort = new AbortController();
      const response = await fetch(`${rest}/events?${new URLSearchParams(q).toString()}`, { headers: lastId === null ? {} : { 'last-event-id': lastId }, signal: abort.signal });
      statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
      const text = response.status === 200 ? '' : await response.text();
      abort.abort();
      assert.ok(response.status === 200 || response.status === 400, `/events?${new URLSearchParams(q).toString()} (Last-Event-ID ${lastId}): ${response.status} ${text}`);
    }
    if (process.env.CAIRN_FUZZ_SCALE) console.log(`      statuses ${JSON.stringify([...statuses])}`);
    assert.ok((statuses.get(200) ?? 0) > 50 && (statuses.get(404) ?? 0) > 50, `statuses ${JSON.stringify([...statuses])}`);
    assert.deepEqual(state(), before_);
  });
});
