/**
 * Scenario 6 of the resilience suite: a `cairn node` process fed bad JSON-RPC input over HTTP —
 * malformed JSON, huge bodies, wrong parameter types, unknown methods, a missing or wrong token —
 * answers each with a JSON-RPC error or an HTTP error status, and keeps serving.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { toHex } from '../../ledger/bytes.ts';
import { signTransaction } from '../../ledger/transaction.ts';
import { RPC_ENDPOINT_FILE, RPC_ERRORS, type RpcEndpointFile } from '../../node/rpc-types.ts';
import { cairn, clusters, DEVNET_KEY, report, secs } from '../helpers/cluster.ts';

interface Answer {
  readonly status: number;
  readonly body: unknown;
}

describe('e2e: bad RPC input', function () {
  this.timeout(60_000);
  const cluster = clusters();

  it('answers malformed JSON, huge bodies, wrong types, unknown methods and bad tokens with errors, and keeps serving', async () => {
    const started = Date.now();
    const c = cluster({ name: 'rpc' });
    const n = await c.startNode('n');
    const endpoint = JSON.parse(readFileSync(join(n.datadir, RPC_ENDPOINT_FILE), 'utf8')) as RpcEndpointFile;
    const auth = { authorization: `Bearer ${endpoint.token}` };

    async function post(body: string | Uint8Array | ReadableStream<Uint8Array>, headers: Record<string, string> = auth, method = 'POST'): Promise<Answer> {
      const init: RequestInit & { duplex?: 'half' } = { method, headers: { 'content-type': 'application/json', ...headers }, signal: AbortSignal.timeout(20_000) };
      if (method === 'POST') init.body = body;
      if (body instanceof ReadableStream) init.duplex = 'half';
      const response = await fetch(endpoint.url, init);
      const text = await response.text();
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text);
      } catch {
        // kept as text: the assertion below says what came back
      }
      return { status: response.status, body: parsed };
    }
    const call = (method: string, params?: unknown) => post(JSON.stringify({ jsonrpc: '2.0', id: 1, method, ...(params === undefined ? {} : { params }) }));
    /** The error code of an answer, or of the first answer of a batch. */
    const errorCode = (a: Answer) => ((Array.isArray(a.body) ? a.body[0] : a.body) as { error?: { code?: number } } | undefined)?.error?.code;

    let checks = 0;
    /** After every bad request: the process is alive and an honest request still works. */
    async function stillServing(what: string): Promise<void> {
      assert.ok(n.alive, `the node exited after ${what}`);
      const s = await n.status();
      assert.equal(s.network, c.params.name, `status after ${what}`);
      checks++;
    }
    async function expectError(what: string, answer: Promise<Answer>, code: number, httpStatus = 200): Promise<void> {
      const a = await answer;
      assert.equal(a.status, httpStatus, `${what}: HTTP ${a.status} ${JSON.stringify(a.body).slice(0, 200)}`);
      assert.equal(errorCode(a), code, `${what}: ${JSON.stringify(a.body).slice(0, 200)}`);
      await stillServing(what);
    }

    // Malformed JSON.
    await expectError('truncated JSON', post('{"jsonrpc":"2.0","id":1,"method":"status"'), RPC_ERRORS.PARSE_ERROR);
    await expectError('not JSON', post('status please'), RPC_ERRORS.PARSE_ERROR);
    await expectError('invalid UTF-8', post(new Uint8Array([0x7b, 0xff, 0xfe, 0x7d])), RPC_ERRORS.PARSE_ERROR);
    await expectError('empty body', post(''), RPC_ERRORS.PARSE_ERROR);
    await expectError('a number', post('42'), RPC_ERRORS.INVALID_REQUEST);
    await expectError('no "jsonrpc"', post('{"id":1,"method":"status"}'), RPC_ERRORS.INVALID_REQUEST);
    await expectError('method not a string', post('{"jsonrpc":"2.0","id":1,"method":7}'), RPC_ERRORS.INVALID_REQUEST);
    await expectError('empty batch', post('[]'), RPC_ERRORS.INVALID_REQUEST);
    await expectError('a batch of 1001', post(JSON.stringify(Array.from({ length: 1001 }, (_, i) => ({ jsonrpc: '2.0', id: i, method: 'status' })))), RPC_ERRORS.INVALID_REQUEST);
    // Valid JSON, so a batch of one request that is not an object.
    await expectError('arrays nested 100,000 deep', post('['.repeat(100_000) + ']'.repeat(100_000)), RPC_ERRORS.INVALID_REQUEST);

    // Huge bodies: declared, and streamed without a length.
    const huge = new Uint8Array((1 << 20) + 1024).fill(0x20);
    await expectError('a 1 MiB + 1 KiB body', post(huge), RPC_ERRORS.INVALID_REQUEST, 413);
    const chunk = new Uint8Array(64 * 1024).fill(0x5b);
    let sentChunks = 0;
    const streamed = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sentChunks++ < 40) controller.enqueue(chunk);
        else controller.close();
      },
    });
    await expectError('a 2.5 MiB chunked body', post(streamed), RPC_ERRORS.INVALID_REQUEST, 413);

    // Wrong parameter types.
    await expectError('params an array', call('status', [1, 2]), RPC_ERRORS.INVALID_PARAMS);
    // Params neither an object nor an array make no valid request at all (JSON-RPC 2.0, as bitcoind).
    await expectError('params a string', call('getAccount', 'cairn1'), RPC_ERRORS.INVALID_REQUEST);
    await expectError('address a number', call('getAccount', { address: 42 }), RPC_ERRORS.INVALID_PARAMS);
    await expectError('address not an address', call('getAccount', { address: 'cairn1notanaddress' }), RPC_ERRORS.INVALID_PARAMS);
    await expectError('height negative', call('getBlock', { height: -1 }), RPC_ERRORS.INVALID_PARAMS);
    await expectError('height a string', call('getBlock', { height: '1' }), RPC_ERRORS.INVALID_PARAMS);
    await expectError('height 2^53', call('getBlock', { height: 2 ** 53 }), RPC_ERRORS.INVALID_PARAMS);
    await expectError('neither height nor hash', call('getBlock', {}), RPC_ERRORS.INVALID_PARAMS);
    await expectError('both height and hash', call('getBlock', { height: 0, hash: '00'.repeat(32) }), RPC_ERRORS.INVALID_PARAMS);
    await expectError('hash upper-case', call('getBlock', { hash: 'AB'.repeat(32) }), RPC_ERRORS.INVALID_PARAMS);
    await expectError('tx id short', call('getTransaction', { id: 'abcd' }), RPC_ERRORS.INVALID_PARAMS);
    await expectError('tx id an object', call('getTransaction', { id: { $gt: '' } }), RPC_ERRORS.INVALID_PARAMS);
    await expectError('raw tx not hex', call('sendRawTransaction', { tx: 'zz' }), RPC_ERRORS.INVALID_PARAMS);
    await expectError('raw tx truncated', call('sendRawTransaction', { tx: '01000005' }), RPC_ERRORS.INVALID_PARAMS);
    await expectError('raw tx missing', call('sendRawTransaction', {}), RPC_ERRORS.INVALID_PARAMS);
    await expectError('raw txs a string', call('sendRawTransactions', { txs: 'ab' }), RPC_ERRORS.INVALID_PARAMS);
    await expectError('raw txs of numbers', call('sendRawTransactions', { txs: [1, 2] }), RPC_ERRORS.INVALID_PARAMS);
    await expectError('5001 raw txs', call('sendRawTransactions', { txs: Array.from({ length: 5001 }, () => '00') }), RPC_ERRORS.INVALID_PARAMS);
    // Well formed but invalid: a signature over other fields, and another network's chain id.
    const good = signTransaction({ chainId: c.params.chainId, to: new Uint8Array(20).fill(1), amount: 5n, fee: 1n, nonce: 0n }, DEVNET_KEY.privateKey);
    const forged = good.bytes.slice();
    forged[forged.length - 40]! ^= 1; // inside r: still canonical, no longer the signer's
    await expectError('raw tx with a bad signature', call('sendRawTransaction', { tx: toHex(forged) }), RPC_ERRORS.REJECTED);
    const foreign = signTransaction({ chainId: c.params.chainId + 1, to: new Uint8Array(20).fill(1), amount: 5n, fee: 1n, nonce: 0n }, DEVNET_KEY.privateKey);
    await expectError('raw tx for another chain', call('sendRawTransaction', { tx: toHex(foreign.bytes) }), RPC_ERRORS.REJECTED);

    // A batch of garbage transactions is answered entry by entry, none admitted.
    const garbage = await call('sendRawTransactions', { txs: ['zz', '', '01', toHex(forged), toHex(foreign.bytes)] });
    const verdict = (garbage.body as { result: { accepted: string[]; rejected: { index: number }[] } }).result;
    assert.deepEqual([verdict.accepted, verdict.rejected.map((r) => r.index)], [[], [0, 1, 2, 3, 4]], JSON.stringify(garbage.body).slice(0, 300));
    assert.equal((await n.call('getMempool', {})).size, 0, 'nothing admitted');
    await stillServing('a batch of garbage transactions');

    // Unknown methods, including the names every JavaScript object has.
    for (const method of ['nope', 'eth_blockNumber', '__proto__', 'constructor', 'toString', 'hasOwnProperty', '']) {
      await expectError(`method "${method}"`, call(method), RPC_ERRORS.METHOD_NOT_FOUND);
    }

    // Tokens.
    const { token } = endpoint;
    await expectError('no Authorization header', post('{"jsonrpc":"2.0","id":1,"method":"status"}', {}), RPC_ERRORS.INVALID_REQUEST, 401);
    await expectError('a wrong token', post('{"jsonrpc":"2.0","id":1,"method":"status"}', { authorization: `Bearer ${token.replace(/^./, (ch) => (ch === 'a' ? 'b' : 'a'))}` }), RPC_ERRORS.INVALID_REQUEST, 401);
    await expectError('a token one character short', post('{"jsonrpc":"2.0","id":1,"method":"status"}', { authorization: `Bearer ${token.slice(1)}` }), RPC_ERRORS.INVALID_REQUEST, 401);
    await expectError('another scheme', post('{"jsonrpc":"2.0","id":1,"method":"status"}', { authorization: `Basic ${token}` }), RPC_ERRORS.INVALID_REQUEST, 401);
    await expectError('a huge body without a token', post(huge, {}), RPC_ERRORS.INVALID_REQUEST, 401);
    await expectError('GET', post('', auth, 'GET'), RPC_ERRORS.INVALID_REQUEST, 405);

    // A batch mixing good and bad requests answers each in place.
    const batch = await post(JSON.stringify([{ jsonrpc: '2.0', id: 1, method: 'status' }, { jsonrpc: '2.0', id: 2, method: 'nope' }, { jsonrpc: '2.0', id: 3, method: 'getBlock', params: { height: -1 } }]));
    assert.equal(batch.status, 200);
    const answers = batch.body as { id: number; result?: { network: string }; error?: { code: number } }[];
    assert.deepEqual(answers.map((a) => [a.id, a.result?.network ?? a.error?.code]), [[1, c.params.name], [2, RPC_ERRORS.METHOD_NOT_FOUND], [3, RPC_ERRORS.INVALID_PARAMS]]);

    // Two hundred bad requests at once.
    const burstStart = Date.now();
    const burst = await Promise.all(Array.from({ length: 200 }, (_, i) => (i % 2 ? post('{"broken', auth) : post('{}', {}))));
    assert.ok(burst.every((a, i) => (i % 2 ? a.status === 200 && errorCode(a) === RPC_ERRORS.PARSE_ERROR : a.status === 401)));
    await stillServing('200 concurrent bad requests');
    const burstMs = Date.now() - burstStart;

    // The CLI says so too: a wrong token is refused, the right one works.
    const refused = await cairn(['status', '--rpc', endpoint.url, '--rpc-token', 'f'.repeat(64)]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /refused the RPC token/);
    const ok = await cairn(['status', '--datadir', n.datadir, '--json']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal((JSON.parse(ok.stdout) as { network: string }).network, c.params.name);

    assert.ok(n.alive);
    report(`${checks} bad requests answered with errors, the node serving after each (pid ${n.pid} alive); 200 concurrent bad requests in ${burstMs} ms; scenario ${secs(Date.now() - started)}`);
  });
});
