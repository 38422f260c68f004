/**
 * The JSON-RPC server's own defences (node/rpc.ts), apart from any method table: what a process
 * or a web page on this machine without the token can make it do.
 */
import assert from 'node:assert/strict';
import { JsonRpcServer, MAX_RPC_CONNECTIONS } from '../node/rpc.ts';
import { RPC_ERRORS } from '../node/rpc-types.ts';
import { tempDir } from './helpers/fixtures.ts';
import { checkConnectionCap } from './helpers/http.ts';

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
});
