/**
 * A light client's restarts: the chain it reopens at is the one it had, whole, however it changed
 * before (node/light/headers.ts).
 */
import assert from 'node:assert/strict';
import { toHex } from '../ledger/bytes.ts';
import { LightClient } from '../node/light/client.ts';
import { RECENT_HEADERS } from '../node/light/headers.ts';
import { tempDir } from './helpers/fixtures.ts';
import { waitFor } from './helpers/network.ts';
import { FakeNet, FakeTransport, env, extend, fullNode, newChain, params } from './helpers/light-net.ts';

describe('light client restarts', function () {
  this.timeout(60_000);
  let dir: ReturnType<typeof tempDir>;
  const clients: LightClient[] = [];
  let transport: FakeTransport;
  let net: FakeNet;

  beforeEach(() => {
    dir = tempDir('cairn-light-restart-');
    net = new FakeNet();
  });
  afterEach(async () => {
    for (const c of clients.splice(0).reverse()) await c.stop();
    dir.remove();
  });

  async function startLight(clientEnv = env): Promise<LightClient> {
    const light = new LightClient({ params, env: clientEnv, datadir: dir.path, bootstrap: [], statusIntervalMs: 3_600_000, createTransport: async (gate) => (transport = new FakeTransport(net, gate)) });
    clients.push(light);
    await light.start();
    return light;
  }

  async function meet(client: LightClient, peer: string): Promise<void> {
    transport.connect(peer);
    await waitFor(() => client.statuses.has(peer), 10_000, `${peer}'s status`);
    await client.requestSync();
  }

  it('a reorganisation to a shorter chain that forks below most of the headers kept is saved, and reopens', async () => {
    // The headers kept whole after it are those from the fork's ancestors kept before it up to the
    // new tip: fewer than the window, with the heights below them gone from it. Saving took the
    // window as whole and read a header at each of those heights: a TypeError at the stop.
    const cheap = await newChain();
    const cheapBlocks = await extend(cheap, RECENT_HEADERS + 60, 60);
    const heavier = await newChain();
    for (const block of cheapBlocks.slice(0, 1100)) await heavier.processBlock(block);
    await extend(heavier, 400, 61, false, 1); // ahead of schedule: harder targets
    assert.ok(heavier.tip.totalWork > cheap.tip.totalWork && heavier.tip.height < cheap.tip.height);
    await fullNode(net, 'cheap', cheap);
    await fullNode(net, 'heavier', heavier);
    const client = await startLight();
    const failures: string[] = [];
    client.on('log', (level, message) => level === 'warn' && failures.push(message));
    await meet(client, 'cheap');
    assert.equal(client.headers.height, cheap.tip.height);
    await meet(client, 'heavier');
    assert.deepEqual(failures, []);
    assert.equal(toHex(client.headers.tip.header.hash), heavier.tip.hashHex);
    await client.stop();
    clients.pop();
    const again = await startLight();
    assert.equal(toHex(again.headers.tip.header.hash), heavier.tip.hashHex);
  });
});
