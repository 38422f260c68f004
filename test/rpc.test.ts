/**
 * The JSON-RPC server's own defences (node/rpc.ts), apart from any method table: what a process
 * or a web page on this machine without the token can make it do.
 */
import assert from 'node:assert/strict';
import { JsonRpcServer, MAX_RPC_CONNECTIONS } from '../node/rpc.ts';
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
});
