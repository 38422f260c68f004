/**
 * The JSON-RPC server's own defences (node/rpc.ts), apart from any method table: what a process
 * or a web page on this machine without the token can make it do.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BATCH_RUNNING, JsonRpcServer, MAX_BATCH_ANSWER_BYTES, MAX_RPC_CONNECTIONS } from '../node/rpc.ts';
import { lightParamNames, lightRpcHandlers, type LightContext } from '../node/light/rpc.ts';
import { encodeAddress } from '../ledger/keys.ts';
import { tempDir, testKey } from './helpers/fixtures.ts';
import { answered, checkConnectionCap, stallReader } from './helpers/http.ts';
import { networkParams, startNode, stopAll, waitFor } from './helpers/network.ts';
import { RPC_ENDPOINT_FILE, RPC_ERRORS, type RpcEndpointFile } from '../node/rpc-types.ts';
import { GZIP_MIN_BYTES } from '../node/http/compress.ts';

describe('JSON-RPC server', () => {
  const dir = tempDir('cairn-rpc-');
  const servers: JsonRpcServer<object>[] = [];
  after(async () => {
    for (const s of servers) await s.stop();
    dir.remove();
  });

  it(`holds at most ${MAX_RPC_CONNECTIONS} connections (16 here): a client without the token cannot take every file descriptor the node has`, async () => {
    assert.equal(MAX_RPC_CONNECTIONS, 1024, 'above a client burst of 200 requests at once (test/e2e/rpc-input.test.ts), which 128 cut');
    const rpc = new JsonRpcServer({}, {}, { datadir: dir.path, maxConnections: 16 });
    servers.push(rpc);
    await checkConnectionCap(await rpc.start(), 16, '/');
  });

  it('cuts a connection whose client reads none of its answer (its slot comes back), never one that reads slowly', async () => {
    const big = 'x'.repeat(8_000_000); // more than the kernel's buffers take for a client that reads nothing
    const rpc = new JsonRpcServer({}, { big: async () => big }, { datadir: dir.path, maxConnections: 1, writeTimeoutMs: 300 });
    servers.push(rpc);
    const url = await rpc.start();
    const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'big' });
    const request = `POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${rpc.token}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
    const stalled = stallReader(url, request, 1);
    const probe = { method: 'POST', headers: { authorization: `Bearer ${rpc.token}` }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'none' }) };
    try {
      await waitFor(() => answered(url, probe), 20_000, 'the slot of the client that reads nothing back');
    } finally {
      stalled.socket.destroy();
    }

    const slow = new JsonRpcServer({}, { big: async () => big }, { datadir: dir.path, writeTimeoutMs: 1_000 });
    servers.push(slow);
    // Read once every 25 ms, 64 KB at most a time: seconds for the answer, no second without progress.
    const reader = stallReader(await slow.start(), request.replace(rpc.token, slow.token), 1, 25);
    try {
      await waitFor(() => reader.read().length > big.length || reader.ended(), 60_000, 'the whole answer');
      assert.ok(reader.read().length > big.length, 'a client that reads, however slowly, gets its whole answer');
    } finally {
      reader.socket.destroy();
    }
  });

  it('an id that is no string, number or null is an invalid request, and the method does not run', async () => {
    // From a review: such an id was answered as null, the method run: a client could not tell
    // which of its calls an answer was for.
    let runs = 0;
    const rpc = new JsonRpcServer({}, { async count() { return ++runs; } }, { datadir: dir.path });
    servers.push(rpc);
    const url = await rpc.start();
    const post = async (body: unknown) => (await fetch(url, { method: 'POST', headers: { authorization: `Bearer ${rpc.token}` }, body: JSON.stringify(body) })).json();
    for (const id of [{ n: 1 }, true, [1]]) {
      assert.deepEqual(await post({ jsonrpc: '2.0', id, method: 'count' }), { jsonrpc: '2.0', id: null, error: { code: RPC_ERRORS.INVALID_REQUEST, message: 'an "id" is a string, a number or null' } }, JSON.stringify(id));
    }
    assert.equal(runs, 0);
    const answers = await post([{ jsonrpc: '2.0', id: 'a', method: 'count' }, { jsonrpc: '2.0', id: 7, method: 'count' }, { jsonrpc: '2.0', id: null, method: 'count' }, { jsonrpc: '2.0', method: 'count' }]);
    assert.deepEqual((answers as { id: unknown }[]).map((a) => a.id).sort(), [7, 'a', null].sort(), 'strings, numbers and null come back as they went; a notification gets no answer');
    assert.equal(runs, 4);
  });

  it('a numeric id JavaScript cannot hold exactly comes back as the client wrote it; one over 64 characters is refused', async () => {
    // From the API review: 12345678901234567891 came back as 12345678901234567000 (JSON.parse's
    // double), and 1e400 as null: a client matching answers by id (a uint64 counter) found none.
    let runs = 0;
    const rpc = new JsonRpcServer({}, { async count() { return ++runs; } }, { datadir: dir.path });
    servers.push(rpc);
    const url = await rpc.start();
    const post = async (body: string) => (await fetch(url, { method: 'POST', headers: { authorization: `Bearer ${rpc.token}` }, body })).text();
    for (const id of ['12345678901234567891', '-98765432109876543210', '1e400', '18446744073709551615']) {
      const answer = await post(`{"jsonrpc":"2.0","id":${id},"method":"count"}`);
      assert.match(answer, new RegExp(`^\\{"jsonrpc":"2\\.0","id":${id.replace('+', '\\+')},"result":\\d+\\}$`), answer);
    }
    const batch = await post('[{"jsonrpc":"2.0","id":9007199254740993,"method":"count"},{"jsonrpc":"2.0","id":7,"method":"count"},{"jsonrpc":"2.0","id":"9007199254740993","method":"count"},{"jsonrpc":"2.0","method":"count","params":{"id":1e400}}]');
    assert.deepEqual([...batch.matchAll(/"id":([^,]+),/g)].map((m) => m[1]), ['9007199254740993', '7', '"9007199254740993"'], batch);
    const safe = await post('{"jsonrpc":"2.0","id":42,"method":"count"}');
    assert.match(safe, /^\{"jsonrpc":"2\.0","id":42,"result":\d+\}$/, 'an id JSON.parse holds goes back as it did');
    const long = '9'.repeat(65);
    const before = runs;
    assert.deepEqual(JSON.parse(await post(`{"jsonrpc":"2.0","id":${long},"method":"count"}`)), { jsonrpc: '2.0', id: null, error: { code: RPC_ERRORS.INVALID_REQUEST, message: 'a numeric "id" is at most 64 characters, not 65' } });
    assert.equal(runs, before, 'the method did not run');
    assert.match(await post(`{"jsonrpc":"2.0","id":${'9'.repeat(64)},"method":"count"}`), new RegExp(`"id":${'9'.repeat(64)},"result"`));
  });

  it('params by position are named by the order the server is given; too many, or a method without an order, is -32602; params neither, -32600', async () => {
    const seen: Record<string, unknown>[] = [];
    const handlers = { async echo(_: object, params: Record<string, unknown>) { seen.push(params); return params; }, async named(_: object, params: Record<string, unknown>) { return params; } };
    const rpc = new JsonRpcServer({}, handlers, { datadir: dir.path, paramNames: (method) => (method === 'echo' ? ['height', 'hash'] : undefined) });
    servers.push(rpc);
    const url = await rpc.start();
    const call = async (method: string, params: unknown) => (await fetch(url, { method: 'POST', headers: { authorization: `Bearer ${rpc.token}` }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }) })).json() as Promise<{ result?: unknown; error?: { code: number; message: string } }>;
    assert.deepEqual((await call('echo', [5])).result, { height: 5 });
    assert.deepEqual((await call('echo', [null, 'ab'])).result, { hash: 'ab' }, 'a null leaves an optional one out, as bitcoind takes it');
    assert.deepEqual((await call('echo', [])).result, {});
    assert.deepEqual((await call('echo', { hash: 'cd' })).result, { hash: 'cd' }, 'by name, as before');
    assert.deepEqual((await call('echo', [1, 'ab', true])).error, { code: RPC_ERRORS.INVALID_PARAMS, message: 'echo takes at most 2 params by position (height, hash), got 3' });
    assert.deepEqual((await call('named', [1])).error, { code: RPC_ERRORS.INVALID_PARAMS, message: 'params must be an object: named takes its params by name' });
    assert.deepEqual((await call('echo', 'x')).error, { code: RPC_ERRORS.INVALID_REQUEST, message: 'params, when given, are an object (by name) or an array (by position)' }, 'no structured value: no valid request');
    assert.equal(seen.length, 4, 'the refused calls did not run');
  });

  it(`runs a batch ${BATCH_RUNNING} requests at a time, and refuses those not yet run once its answers pass ${MAX_BATCH_ANSWER_BYTES} bytes`, async () => {
    // From the HTTP review: a batch of 1,000 getHeaders of 2,000 each (a 60 KB body) ran them all at
    // once and made a 600 MB answer, past the longest string V8 makes, after holding every part.
    const part = 1024 * 1024;
    let runs = 0;
    let running = 0;
    let mostRunning = 0;
    const handlers = {
      async big() {
        runs++;
        mostRunning = Math.max(mostRunning, ++running);
        await new Promise((resolve) => setImmediate(resolve));
        running--;
        return 'x'.repeat(part);
      },
    };
    const rpc = new JsonRpcServer({}, handlers, { datadir: dir.path });
    servers.push(rpc);
    const url = await rpc.start();
    const asked = 40;
    const batch = Array.from({ length: asked }, (_, i) => ({ jsonrpc: '2.0', id: i, method: 'big' }));
    batch.push({ jsonrpc: '2.0', method: 'big' } as (typeof batch)[number]); // a notification: it adds nothing to the answer, and runs
    const text = await (await fetch(url, { method: 'POST', headers: { authorization: `Bearer ${rpc.token}` }, body: JSON.stringify(batch) })).text();
    const answers = JSON.parse(text) as { id: number; result?: string; error?: { code: number; message: string } }[];
    assert.deepEqual(answers.map((a) => a.id), batch.slice(0, asked).map((r) => r.id), 'every request with an id answered, in order');
    const refused = answers.filter((a) => a.error);
    assert.ok(refused.length > 0 && refused.every((a) => a.error!.code === RPC_ERRORS.ANSWER_TOO_LARGE), JSON.stringify(refused.map((a) => a.error?.code)));
    assert.ok(answers.findIndex((a) => a.error) === asked - refused.length, 'the refused are those after the budget ran out');
    assert.ok(text.length <= MAX_BATCH_ANSWER_BYTES + (BATCH_RUNNING + 1) * (part + 100), `an answer within the budget and the requests running when it ran out: ${text.length}`);
    assert.equal(runs, asked - refused.length + 1, 'a refused request did not run; the notification did');
    assert.ok(mostRunning <= BATCH_RUNNING, `${mostRunning} at once`);
  });

  it("answers JSON-RPC 2.0's own examples (jsonrpc.org, section 7) as it says: codes, ids, batches, notifications", async () => {
    const ran: string[] = [];
    const arith = (f: (a: number, b: number) => number) => async (_: object, p: Record<string, unknown>) => f(p.minuend as number, p.subtrahend as number);
    const handlers = {
      subtract: arith((a, b) => a - b),
      async sum(_: object, p: Record<string, unknown>) { return Object.values(p).reduce((s: number, v) => s + (v as number), 0); },
      async update() { ran.push('update'); return null; },
      async notify_hello() { ran.push('notify_hello'); return null; },
      async get_data() { return ['hello', 5]; },
    };
    const order: Record<string, string[]> = { subtract: ['minuend', 'subtrahend'], sum: ['a', 'b', 'c'], update: ['a', 'b', 'c', 'd', 'e'], notify_hello: ['n'], get_data: [] };
    const rpc = new JsonRpcServer({}, handlers, { datadir: dir.path, paramNames: (m) => order[m] });
    servers.push(rpc);
    const url = await rpc.start();
    const send = async (body: string) => {
      const res = await fetch(url, { method: 'POST', headers: { authorization: `Bearer ${rpc.token}` }, body });
      const text = await res.text();
      return { status: res.status, answer: text === '' ? undefined : (JSON.parse(text) as unknown) };
    };
    type Answer = { jsonrpc: string; id: unknown; result?: unknown; error?: { code: number } };
    /** An answer as the spec writes it: id with result, or id with error code (messages are ours). */
    const brief = (a: unknown) => {
      const { jsonrpc, id, result, error } = a as Answer;
      assert.equal(jsonrpc, '2.0');
      assert.ok((result === undefined) !== (error === undefined), 'a result or an error, never both');
      return error ? { id, code: error.code } : { id, result };
    };
    const one = async (body: string) => brief((await send(body)).answer);
    const many = async (body: string) => {
      const { answer } = await send(body);
      assert.ok(Array.isArray(answer), `a batch is answered with an array: ${JSON.stringify(answer)}`);
      return answer.map(brief);
    };

    assert.deepEqual(await one('{"jsonrpc": "2.0", "method": "subtract", "params": [42, 23], "id": 1}'), { id: 1, result: 19 });
    assert.deepEqual(await one('{"jsonrpc": "2.0", "method": "subtract", "params": [23, 42], "id": 2}'), { id: 2, result: -19 });
    assert.deepEqual(await one('{"jsonrpc": "2.0", "method": "subtract", "params": {"subtrahend": 23, "minuend": 42}, "id": 3}'), { id: 3, result: 19 });
    assert.deepEqual(await one('{"jsonrpc": "2.0", "method": "subtract", "params": {"minuend": 42, "subtrahend": 23}, "id": "4"}'), { id: '4', result: 19 });
    assert.deepEqual(await one('{"jsonrpc": "2.0", "method": "subtract", "params": [42, 23], "id": null}'), { id: null, result: 19 }, 'an id null is no notification');
    // Notifications: run, never answered, known method or not.
    assert.deepEqual(await send('{"jsonrpc": "2.0", "method": "update", "params": [1,2,3,4,5]}'), { status: 204, answer: undefined });
    assert.deepEqual(await send('{"jsonrpc": "2.0", "method": "foobar"}'), { status: 204, answer: undefined });
    assert.deepEqual(ran, ['update']);
    assert.deepEqual(await one('{"jsonrpc": "2.0", "method": "foobar", "id": "1"}'), { id: '1', code: -32601 });
    assert.deepEqual(await one('{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]'), { id: null, code: -32700 });
    assert.deepEqual(await one('{"jsonrpc": "2.0", "method": 1, "params": "bar"}'), { id: null, code: -32600 });
    assert.deepEqual(await one('{"jsonrpc": "2.0", "method": "subtract", "params": "bar", "id": 5}'), { id: 5, code: -32600 }, 'params that are no structured value: no valid request');
    assert.deepEqual(await one('{"jsonrpc": "2.0", "method": "subtract", "params": "bar"}'), { id: null, code: -32600 }, 'answered as a notification too (940fae4): it went unanswered');
    assert.deepEqual(await one('{"jsonrpc": "1.0", "method": "subtract", "params": [1, 1], "id": 6}'), { id: 6, code: -32600 });
    assert.deepEqual(await one('{"method": "subtract", "params": [1, 1], "id": 7}'), { id: 7, code: -32600 });
    assert.deepEqual(await one('[{"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"}, {"jsonrpc": "2.0", "method"]'), { id: null, code: -32700 });
    assert.deepEqual(await one('[]'), { id: null, code: -32600 }, 'an empty batch: one error, not an array');
    assert.deepEqual(await many('[1]'), [{ id: null, code: -32600 }]);
    assert.deepEqual(await many('[1,2,3]'), [{ id: null, code: -32600 }, { id: null, code: -32600 }, { id: null, code: -32600 }]);
    assert.deepEqual(
      await many(`[
        {"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},
        {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]},
        {"jsonrpc": "2.0", "method": "subtract", "params": [42,23], "id": "2"},
        {"foo": "boo"},
        {"jsonrpc": "2.0", "method": "foo.get", "params": {"name": "myself"}, "id": "5"},
        {"jsonrpc": "2.0", "method": "get_data", "id": "9"}
      ]`),
      [{ id: '1', result: 7 }, { id: '2', result: 19 }, { id: null, code: -32600 }, { id: '5', code: -32601 }, { id: '9', result: ['hello', 5] }],
    );
    assert.deepEqual(await send('[{"jsonrpc": "2.0", "method": "notify_sum", "params": [1,2,4]}, {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]}]'), { status: 204, answer: undefined }, 'a batch of notifications: nothing');
    assert.deepEqual(ran, ['update', 'notify_hello', 'notify_hello']);
  });

  it('a light client\'s getAccount takes its address by position too', async () => {
    const address = encodeAddress(testKey(5).address);
    const client = { async getAccount() { return { account: undefined, height: 3, blockHash: new Uint8Array(32), peer: 'peer' }; } };
    const rpc = new JsonRpcServer({ client, requestStop() {} } as unknown as LightContext, lightRpcHandlers, { datadir: dir.path, paramNames: lightParamNames });
    servers.push(rpc as unknown as JsonRpcServer<object>);
    const url = await rpc.start();
    const call = async (method: string, params: unknown) => (await fetch(url, { method: 'POST', headers: { authorization: `Bearer ${rpc.token}` }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }) })).json() as Promise<{ result?: { address: string }; error?: { message: string } }>;
    assert.equal((await call('getAccount', [address])).result?.address, address);
    assert.equal((await call('getAccount', [address, 1])).error?.message, 'getAccount takes at most 1 param by position (address), got 2');
  });

  it('gzips an answer of GZIP_MIN_BYTES or more for a client that takes gzip, with Vary; not a small one', async () => {
    // From the API review: a large answer (getBlocks of 1000) went as it was to a client asking for gzip.
    const rpc = new JsonRpcServer({}, { async big() { return 'ab'.repeat(GZIP_MIN_BYTES); }, async small() { return 1; } }, { datadir: dir.path });
    servers.push(rpc);
    const url = await rpc.start();
    const call = async (method: string, encoding: string) => {
      const response = await fetch(url, { method: 'POST', headers: { authorization: `Bearer ${rpc.token}`, 'accept-encoding': encoding }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method }) });
      return { encoding: response.headers.get('content-encoding'), vary: response.headers.get('vary'), answer: (await response.json()) as { result: unknown } };
    };
    const packed = await call('big', 'gzip');
    assert.deepEqual([packed.encoding, packed.vary, packed.answer.result], ['gzip', 'accept-encoding', 'ab'.repeat(GZIP_MIN_BYTES)]);
    assert.deepEqual([(await call('big', 'identity')).encoding, (await call('big', 'identity')).vary], [null, 'accept-encoding']);
    const small = await call('small', 'gzip');
    assert.deepEqual([small.encoding, small.vary, small.answer.result], [null, null, 1]);
  });

  it('a browser (a GET, no token) is told this port speaks JSON-RPC over POST with the token in rpc.json, and where the explorer is: never the token', async function () {
    this.timeout(30_000);
    // From the gaps review: it read "missing or wrong RPC token" and nothing else.
    const withExplorer = await startNode(networkParams(), [], { verifyThreads: 1, rpc: { port: 0 }, http: { port: 0 } });
    const withoutExplorer = await startNode(networkParams(), [], { verifyThreads: 1, rpc: { port: 0 } });
    try {
      const endpoint = (n: typeof withExplorer) => JSON.parse(readFileSync(join(n.config.datadir, RPC_ENDPOINT_FILE), 'utf8')) as RpcEndpointFile;
      const browse = async (url: string) => {
        const res = await fetch(url, { headers: { accept: 'text/html' } });
        return { status: res.status, allow: res.headers.get('allow'), body: (await res.json()) as { error: { code: number; message: string } } };
      };
      const said = 'this port answers JSON-RPC 2.0 over POST, each request with the header "Authorization: Bearer TOKEN", the TOKEN from rpc.json in the datadir (cairn commands read it there; cairn help rpc lists the methods)';
      const one = endpoint(withExplorer);
      const a = await browse(one.url);
      assert.deepEqual([a.status, a.allow, a.body.error.code], [405, 'POST', RPC_ERRORS.INVALID_REQUEST]);
      assert.match(a.body.error.message, new RegExp(`^${escape(said)}; the explorer and REST API are at http://127\\.0\\.0\\.1:\\d+/$`));
      assert.ok(!a.body.error.message.includes(one.token));
      const page = await fetch(/ at (http:\S+)$/.exec(a.body.error.message)![1]!);
      assert.deepEqual([page.status, page.headers.get('content-type')?.split(';')[0]], [200, 'text/html'], 'the address named is the explorer\'s');
      const b = await browse(endpoint(withoutExplorer).url);
      assert.equal(b.body.error.message, `${said}; this node serves no explorer or REST API (it was started with --no-http)`);
      const unauthorized = await fetch(one.url, { method: 'POST', body: '{"jsonrpc":"2.0","id":1,"method":"status"}' });
      assert.equal(unauthorized.status, 401);
      assert.match(((await unauthorized.json()) as { error: { message: string } }).error.message, /^missing or wrong RPC token: send the one in rpc\.json in the datadir/);
      // A light client's server has no explorer to name.
      const light = new JsonRpcServer({}, {}, { datadir: dir.path });
      servers.push(light);
      assert.equal((await browse(await light.start())).body.error.message, said);
    } finally {
      await stopAll([withExplorer, withoutExplorer]);
    }
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
