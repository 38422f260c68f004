/**
 * A light client's moves to a branch with more work (node/light/header-fetch.ts followBranch): it
 * follows any that forks within the headers it keeps whole, and leaves those that fork deeper.
 */
import assert from 'node:assert/strict';
import { toHex } from '../ledger/bytes.ts';
import { LightClient } from '../node/light/client.ts';
import { RECENT_HEADERS } from '../node/light/headers.ts';
import { tempDir } from './helpers/fixtures.ts';
import { waitFor } from './helpers/network.ts';
import { FakeNet, FakeTransport, carol, env, extend, fullNode, newChain, params } from './helpers/light-net.ts';

describe('light client: branches', function () {
  this.timeout(60_000);
  let dir: ReturnType<typeof tempDir>;
  let light: LightClient | undefined;
  let transport: FakeTransport;
  let net: FakeNet;

  beforeEach(() => {
    dir = tempDir('cairn-light-branches-');
    net = new FakeNet();
  });
  afterEach(async () => {
    await light?.stop();
    light = undefined;
    dir.remove();
  });

  async function startLight(): Promise<LightClient> {
    light = new LightClient({ params, env, datadir: dir.path, bootstrap: [], statusIntervalMs: 3_600_000, createTransport: async (gate) => (transport = new FakeTransport(net, gate)) });
    await light.start();
    return light;
  }

  async function meet(client: LightClient, peer: string): Promise<void> {
    transport.connect(peer);
    await waitFor(() => client.statuses.has(peer) || client.peers.isBanned(peer), 10_000, `${peer}'s status`);
    await client.requestSync();
  }

  it('follows a heavier branch that forks deep within the headers kept whole, below the last locator hash it could follow from', async () => {
    // The locator's hashes double in distance from the tip: 2,108 headers long, it named heights
    // 1,077 and then 53, below the 61 kept whole. The peer answered from 53, and a branch forking
    // at 100 was "too far back to follow", though its fork was kept whole.
    const cheap = await newChain();
    const cheapBlocks = await extend(cheap, RECENT_HEADERS + 60, 60);
    const heavier = await newChain();
    for (const block of cheapBlocks.slice(0, 100)) await heavier.processBlock(block);
    await extend(heavier, 1, 61, true);
    await extend(heavier, 400, 61, false, 1); // ahead of schedule: harder targets
    assert.ok(heavier.tip.totalWork > cheap.tip.totalWork);
    await fullNode(net, 'cheap', cheap);
    await fullNode(net, 'heavier', heavier);
    const client = await startLight();
    const warnings: string[] = [];
    client.on('log', (level, message) => level === 'warn' && warnings.push(message));
    await meet(client, 'cheap');
    await meet(client, 'heavier');
    assert.deepEqual(warnings, []);
    assert.equal(toHex(client.headers.tip.header.hash), heavier.tip.hashHex);
    assert.deepEqual((await client.getAccount(carol.address)).account, { balance: 507n, nonce: 0n });
  });
});
