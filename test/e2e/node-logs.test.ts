/**
 * Issue 13, point 2: what a newcomer's `cairn node` says about its peers, read from the logs of
 * real processes. A peer connecting and leaving, with direction and address; a mined block and a
 * received one told apart; a bootstrap address checked before the node starts (malformed: a
 * usage error naming it) or when it is dialled (unreachable: a warning); and, alone past the grace
 * period, what to check.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { encodeAddress } from '../../ledger/keys.ts';
import { testKey } from '../helpers/fixtures.ts';
import { cairn, clusters, report, waitFor, type NodeProc } from '../helpers/cluster.ts';

/** The JSON log lines of `n` whose message matches, parsed. */
function logged(n: NodeProc, message: RegExp): Record<string, unknown>[] {
  return n.logLines(/^\{/).map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => message.test(String(l['msg'])));
}

/** A port nothing listens on: taken from the OS, then released. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('e2e: what a node says about its peers', function () {
  this.timeout(90_000);
  const cluster = clusters();

  it('logs each peer connecting and leaving, with direction and address; tells a mined block from a received one', async () => {
    const c = cluster({ name: 'peer-logs' });
    const a = await c.startNode('a', { coinbase: encodeAddress(testKey(710).address) });
    const b = await c.startNode('b', { bootstrap: [a.addr] });
    const { value: atA } = await waitFor('A to log B connecting', 20_000, () => logged(a, /^peer connected$/).find((l) => l['peer'] === b.peerId));
    // Each node's log reaches the test through its own pipe: A's line says nothing of B's yet.
    const { value: atB } = await waitFor('B to log A connecting', 20_000, () => logged(b, /^peer connected$/).find((l) => l['peer'] === a.peerId));
    assert.equal(atA['direction'], 'inbound');
    assert.match(String(atA['address']), /^\/ip4\/127\.0\.0\.1\/tcp\/\d+/);
    assert.equal(atB['direction'], 'outbound');
    assert.equal(atB['address'], a.addr, 'B names the address it dialled');
    // Blocks mined once B is connected reach it by gossip, one at a time: logged at info.
    const { value: received } = await waitFor('B to log a received block', 30_000, () => logged(b, /^received block$/).at(-1));
    const { value: mined } = await waitFor('A to have logged that block as mined', 10_000, () => logged(a, /^mined block$/).find((l) => l['hash'] === received['hash']));
    assert.equal(mined['height'], received['height']);
    assert.equal(logged(b, /^mined block$/).length, 0, 'B mines nothing');
    assert.equal(logged(a, /^received block$/).length, 0, 'A receives nothing');
    await b.stop();
    const { value: left } = await waitFor('A to log B leaving', 20_000, () => logged(a, /^peer disconnected$/).find((l) => l['peer'] === b.peerId));
    assert.equal(left['direction'], 'inbound');
    assert.equal(left['address'], atA['address']);
    assert.equal(left['peers'], 0);
    report(`A: ${JSON.stringify({ msg: atA['msg'], direction: atA['direction'], address: atA['address'] })}, then ${JSON.stringify({ msg: left['msg'], direction: left['direction'], address: left['address'] })}`);
    report(`block ${String(received['height'])}: "mined block" on A, "received block" on B`);
  });

  it('refuses a malformed --bootstrap before it starts, naming it; nothing is created', async () => {
    const c = cluster({ name: 'bad-bootstrap' });
    const datadir = join(c.root.path, 'never');
    // The usual slip: an address without its peer id (test/discovery.test.ts has the other kinds).
    for (const bad of ['/ip4/127.0.0.1/tcp/7370']) {
      const r = await cairn(['node', '--datadir', datadir, '--genesis', c.genesisFile, '--no-mdns', '--p2p-port', '0', '--rpc-port', '0', '--bootstrap', bad]);
      assert.equal(r.code, 2, r.stderr);
      const line = r.stderr.trim().split('\n').at(-1)!;
      assert.ok(line.startsWith(`cairn: --bootstrap "${bad}" is not a peer address: `), line);
      assert.match(line, /expected \/ip4\/HOST\/tcp\/PORT\/p2p\/PEER_ID/);
      report(line);
    }
    assert.equal(existsSync(datadir), false);
  });

  it('warns of an unreachable bootstrap peer at once, and, alone past the grace period, says what to check', async () => {
    const c = cluster({ name: 'lonely' });
    const id = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString();
    const nowhere = `/ip4/127.0.0.1/tcp/${await closedPort()}/p2p/${id}`;
    const env = { CAIRN_NO_PEERS_WARNING_SECONDS: '2' };
    const [told, alone] = await Promise.all([c.startNode('told', { bootstrap: [nowhere], env }), c.startNode('alone', { env })]);
    const { value: unreachable } = await waitFor('a warning that the bootstrap peer cannot be reached', 15_000, () => logged(told, /^cannot reach bootstrap peer/).at(0));
    assert.equal(unreachable['level'], 40, 'a warning');
    assert.match(String(unreachable['msg']), new RegExp(`^cannot reach bootstrap peer ${id}: .*\\(retrying with backoff\\)$`));
    assert.deepEqual(unreachable['addrs'], [nowhere]);
    const { value: lonely } = await waitFor('the no-peers warning of the told node', 15_000, () => logged(told, /^no peers: /).at(0));
    assert.equal(lonely['msg'], 'no peers: none of the 1 known peers answers; check that they run and that --bootstrap names them right');
    const { value: unaware } = await waitFor('the no-peers warning of the node told of nobody', 15_000, () => logged(alone, /^no peers: /).at(0));
    assert.equal(unaware['msg'], 'no peers: give one with --bootstrap MULTIADDR (mDNS finds peers only on the local network)');
    assert.equal(logged(told, /^cannot reach bootstrap peer/).length, 1, 'said once, not at every retry');
    report(`${String(unreachable['msg'])}\n      ${String(lonely['msg'])}\n      ${String(unaware['msg'])}`);
  });
});
