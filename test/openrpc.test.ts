/**
 * The OpenRPC document (node/rpc-doc.ts) is the API: every method it lists is called on a running
 * node with the document's example params and its result checked against the document's schema;
 * `help` and `rpc.discover` answer from it; params it does not list are refused; and docs/RPC.md
 * is what scripts/rpc-docs.ts renders from it.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fromHex } from '../ledger/bytes.ts';
import { parseGenesis } from '../ledger/genesis.ts';
import { decodeTransaction } from '../ledger/transaction.ts';
import { EXAMPLE, RPC_DOC } from '../node/rpc-doc.ts';
import { validate } from '../node/json-schema.ts';
import { RPC_ENDPOINT_FILE, RPC_ERRORS, type RpcEndpointFile } from '../node/rpc-types.ts';
import { BATCH_RUNNING, MAX_BATCH, MAX_BATCH_ANSWER_BYTES, MAX_RPC_BODY_BYTES } from '../node/rpc.ts';
import { MAX_ID_TEXT } from '../node/rpc-body.ts';
import { GZIP_MIN_BYTES } from '../node/http/compress.ts';
import { renderRpcMarkdown, RPC_MD } from '../scripts/rpc-docs.ts';
import { mineOn, startNode, stopAll, type TestNode } from './helpers/network.ts';

describe('OpenRPC: the document is the API', function () {
  this.timeout(60_000);
  // The bundled devnet (its public key funds the examples), with a trivial target and a genesis a month ago.
  const devnet = parseGenesis(readFileSync(new URL('../genesis.json', import.meta.url), 'utf8'));
  const params = { ...devnet, target: (1n << 255n) - 1n, timestamp: Math.floor(Date.now() / 1000) - 30 * 86_400 };
  let t: TestNode;
  let endpoint: RpcEndpointFile;

  before(async () => {
    t = await startNode(params, [], { verifyThreads: 1, rpc: { port: 0 } });
    endpoint = JSON.parse(readFileSync(join(t.config.datadir, RPC_ENDPOINT_FILE), 'utf8')) as RpcEndpointFile;
    const tx0 = decodeTransaction(fromHex(EXAMPLE.tx0));
    assert.equal(tx0.idHex, EXAMPLE.txid);
    await t.node.submitTransaction(tx0);
    await mineOn(t, 1);
  });
  after(() => stopAll([t]));

  async function call(method: string, params: Record<string, unknown> | unknown[]): Promise<{ result?: unknown; error?: { code: number; message: string } }> {
    const response = await fetch(endpoint.url, {
      method: 'POST',
      headers: { authorization: `Bearer ${endpoint.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
      signal: AbortSignal.timeout(20_000),
    });
    return (await response.json()) as { result?: unknown; error?: { code: number; message: string } };
  }

  it('docs/RPC.md is what the document renders (npm run docs:rpc)', () => {
    assert.equal(readFileSync(RPC_MD, 'utf8'), renderRpcMarkdown(), 'docs/RPC.md is out of date: run npm run docs:rpc');
  });

  it('refuses params the document does not list, and missing required ones', async () => {
    const unknown = await call('getBlock', { height: 1, verbose: true });
    assert.equal(unknown.error?.code, RPC_ERRORS.INVALID_PARAMS);
    assert.match(unknown.error!.message, /unknown parameter "verbose": getBlock takes "height", "hash"/);
    assert.match((await call('status', { x: 1 })).error!.message, /unknown parameter "x": status takes none/);
    assert.match((await call('getAccount', {})).error!.message, /"address" is required/);
    assert.match((await call('getBlocks', { count: 0 })).error!.message, /"count": must be at least 1/);
  });

  it('takes params by position too, in the order the document lists them (bitcoind\'s clients send arrays)', async () => {
    // From the API review: every positional call was -32602, "params must be an object".
    const byPosition = (method: string, params: unknown[]) => call(method, params);
    const block = await call('getBlock', { height: 1 });
    assert.deepEqual((await byPosition('getBlock', [1])).result, block.result);
    assert.deepEqual((await byPosition('getBlock', [null, (block.result as { hash: string }).hash])).result, block.result, 'a null leaves an optional param out');
    assert.deepEqual((await byPosition('getHeaders', [0, 2])).result, (await call('getHeaders', { from: 0, count: 2 })).result);
    assert.deepEqual((await byPosition('getAccount', [EXAMPLE.address])).result, (await call('getAccount', { address: EXAMPLE.address })).result);
    assert.deepEqual((await byPosition('status', [])).error, undefined);
    assert.deepEqual((await byPosition('status', [1])).error, { code: RPC_ERRORS.INVALID_PARAMS, message: 'status takes no params, got 1' });
    assert.deepEqual((await byPosition('getBlock', [1, null, 3])).error, { code: RPC_ERRORS.INVALID_PARAMS, message: 'getBlock takes at most 2 params by position (height, hash), got 3' });
    assert.match((await byPosition('getAccount', [7])).error!.message, /"address": must be string/, 'checked against the schema as by name');
    assert.match(RPC_DOC.info.description, /by position/);
    assert.ok(RPC_DOC.info.description.includes(`at most ${MAX_ID_TEXT} characters`), 'the longest numeric id, as the server takes it');
    assert.ok(RPC_DOC.info.description.includes(`${GZIP_MIN_BYTES} bytes or more is gzipped`), 'the gzip threshold, as the server has it');
  });

  it('says what a body may be, as the server takes it: one request, or a batch answered as an array, within the limits it enforces', async () => {
    const description = RPC_DOC.info.description;
    assert.match(description, /batch/);
    assert.ok(description.includes(`1 to ${MAX_BATCH} requests`), `the batch limit, ${MAX_BATCH}: ${description}`);
    assert.ok(description.includes(`${MAX_RPC_BODY_BYTES} bytes`), `the body limit, ${MAX_RPC_BODY_BYTES} bytes: ${description}`);
    assert.ok(description.includes(`run ${BATCH_RUNNING} at a time`) && description.includes(`pass ${MAX_BATCH_ANSWER_BYTES} bytes of JSON`) && description.includes(String(RPC_ERRORS.ANSWER_TOO_LARGE)), `a batch's answer budget, as the server has it: ${description}`);
    const response = await fetch(endpoint.url, {
      method: 'POST',
      headers: { authorization: `Bearer ${endpoint.token}`, 'content-type': 'application/json' },
      body: JSON.stringify([{ jsonrpc: '2.0', id: 1, method: 'getBlocks', params: { count: 1 } }, { jsonrpc: '2.0', id: 2, method: 'estimateFee' }]),
      signal: AbortSignal.timeout(20_000),
    });
    const answers = (await response.json()) as { id: number; result?: unknown }[];
    assert.deepEqual(answers.map((a) => [a.id, a.result !== undefined]), [[1, true], [2, true]]);
  });

  it('every method, called with its example params, answers what its schema says (stop last)', async () => {
    const methods = [...RPC_DOC.methods].sort((a, b) => Number(a.name === 'stop') - Number(b.name === 'stop'));
    assert.ok(methods.length >= 17);
    for (const m of methods) {
      assert.ok(m.examples.length > 0, `${m.name} has an example`);
      for (const example of m.examples) {
        const answer = await call(m.name, Object.fromEntries(example.params.map((p) => [p.name, p.value])));
        assert.equal(answer.error, undefined, `${m.name} (${example.name}): ${JSON.stringify(answer.error)}`);
        assert.deepEqual(validate(answer.result, m.result.schema, RPC_DOC.components.schemas), [], `${m.name}'s result: ${JSON.stringify(answer.result).slice(0, 300)}`);
        if (m.name === 'rpc.discover') assert.deepEqual(answer.result, JSON.parse(JSON.stringify(RPC_DOC)));
        if (m.name === 'help') assert.deepEqual((answer.result as { methods: { name: string }[] }).methods.map((x) => x.name), RPC_DOC.methods.map((x) => x.name));
        if (m.name === 'getRawTransaction') assert.equal(answer.result, EXAMPLE.tx0);
      }
    }
    await t.node.stop(); // the one `stop` asked for
  });

});
