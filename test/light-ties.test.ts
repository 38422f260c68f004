/**
 * A light client between two chains of as much work (node/light/client.ts): the first seen is
 * kept, as a full node keeps it, but only while some peer proves accounts against it; a
 * withholder's branch (its headers shown, its proofs and bodies not) must not hold the client
 * until the honest chain outgrows it.
 */
import assert from 'node:assert/strict';
import { toHex } from '../ledger/bytes.ts';
import { LightClient } from '../node/light/client.ts';
import { TransportError } from '../node/transport.ts';
import { tempDir } from './helpers/fixtures.ts';
import { FakeNet, FakeTransport, carol, env, extend, fullNode, params, sharing } from './helpers/light-net.ts';

describe('light client: chains of as much work', function () {
  this.timeout(30_000);
  let dir: ReturnType<typeof tempDir>;
  let light: LightClient | undefined;
  let transport: FakeTransport;
  let net: FakeNet;

  beforeEach(() => {
    dir = tempDir('cairn-light-ties-');
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
    for (let i = 0; i < 100 && !client.statuses.has(peer) && !client.peers.isBanned(peer); i++) await new Promise((r) => setImmediate(r));
    await client.requestSync();
  }

  /** Two branches of 3 blocks on 4 shared ones, mined alike (the same targets): as much work, other tips. */
  async function tiedBranches() {
    const { a, b } = await sharing(4, true);
    await extend(a, 3, 51);
    await extend(b, 3, 52);
    assert.equal(a.tip.totalWork, b.tip.totalWork);
    assert.notEqual(a.tip.hashHex, b.tip.hashHex);
    return { honest: a, withheld: b };
  }

  it("takes the other chain of as much work when nobody proves against the first seen: a withholder's branch does not hold it", async () => {
    const { honest, withheld } = await tiedBranches();
    const timedOut = async (): Promise<Uint8Array> => {
      throw new TransportError('TRANSPORT_TIMEOUT', 'the deadline passed'); // as the transport says it, 10 s later
    };
    await fullNode(net, 'withholder', withheld, { proofs: timedOut });
    await fullNode(net, 'honest', honest);
    const client = await startLight();
    const ties: boolean[] = [];
    client.on('tip', (_height, tie) => ties.push(tie));
    await meet(client, 'withholder');
    await meet(client, 'honest');
    assert.equal(toHex(client.headers.tip.header.hash), withheld.tip.hashHex, 'first seen wins the tie');
    const proven = await client.getAccount(carol.address);
    assert.equal(proven.peer, 'honest');
    assert.equal(toHex(proven.blockHash), honest.tip.hashHex);
    assert.deepEqual(proven.account, { balance: 507n, nonce: 0n });
    assert.deepEqual([...client.bans], [], 'a timeout, and a chain of as much work, are no fault');
    assert.deepEqual(ties.slice(-2), [false, true], 'the move to the honest tip is told as a tie, the one before it as more work');
  });

  it('keeps the first seen while a peer proves against it', async () => {
    const { honest, withheld } = await tiedBranches();
    await fullNode(net, 'first', withheld);
    await fullNode(net, 'second', honest);
    const client = await startLight();
    const ties: boolean[] = [];
    client.on('tip', (_height, tie) => ties.push(tie));
    await meet(client, 'first');
    await meet(client, 'second');
    const proven = await client.getAccount(carol.address);
    assert.equal(toHex(proven.blockHash), withheld.tip.hashHex);
    assert.equal(toHex(client.headers.tip.header.hash), withheld.tip.hashHex);
    assert.equal(client.statuses.has('second'), true, 'and the other peer is still known');
    assert.ok(ties.length > 0 && !ties.includes(true), 'no tie taken');
  });
});
