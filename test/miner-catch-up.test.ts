/**
 * A mining node mines only on a chain it has caught up with (node/miner.ts, `miningHold`): a fresh
 * `--mine --snapshot-sync` node joins by snapshot before it mines, and then mines on the tip it
 * joined; a lone one waits for a peer to join from and says so.
 */
import assert from 'node:assert/strict';
import { bytesEqual } from '../ledger/bytes.ts';
import { testKey } from './helpers/fixtures.ts';
import { mineOn, networkParams, startNode, stopAll, waitFor, type TestNode } from './helpers/network.ts';

const INTERVAL = 20;
const DEPTH = 16;

describe('a mining node catching up', function () {
  this.timeout(120_000);
  const nodes: TestNode[] = [];
  afterEach(async () => {
    await stopAll(nodes.splice(0));
  });

  it('--mine --snapshot-sync on a fresh datadir joins by snapshot first, then mines on the tip it joined', async () => {
    const params = networkParams();
    const shape = { reorgDepth: DEPTH, snapshotInterval: INTERVAL, window: 8 };
    const server = await startNode(params, [], shape);
    nodes.push(server);
    await mineOn(server, 3 * INTERVAL);
    // The server keeps the snapshot a joiner picks (the pivot, 40) once its keeper has made it.
    const coinbase = testKey(70).address;
    const joiner = await startNode(params, [server.addr], { ...shape, snapshotSync: true, mine: { coinbase, threads: 1 } });
    nodes.push(joiner);
    // The server mines nothing more: a block above its tip is the joiner's.
    await waitFor(() => joiner.node.chain.tip.height > 3 * INTERVAL, 60_000, 'the joiner to mine on the tip it joined');
    assert.ok(joiner.node.db.history.stateBase > 0, `joined by snapshot (its state began at ${joiner.node.db.history.stateBase}), not from genesis after a block 1 of its own`);
    const top = await joiner.node.db.getBlock(joiner.node.chain.tip.hash);
    assert.ok(top && bytesEqual(top.coinbase.to, coinbase));
    assert.equal(joiner.node.miner?.held, undefined);
  });

  it('a lone --mine --snapshot-sync node at genesis waits for a peer and says why; a peer at genesis too lets it mine block 1', async () => {
    const params = networkParams();
    const lone = await startNode(params, [], { snapshotSync: true, mine: { coinbase: testKey(71).address, threads: 1 } });
    nodes.push(lone);
    await waitFor(() => lone.node.miner?.held !== undefined, 10_000, 'the miner to say it waits');
    // Held before its first template: nothing was mined.
    assert.equal(lone.node.chain.tip.height, 0);
    assert.match(lone.node.miner!.held!, /waiting for a peer to join by snapshot/);
    // A second node of this new network, at genesis too: nothing to join, so the first mines.
    nodes.push(await startNode(params, [lone.addr]));
    await waitFor(() => lone.node.chain.tip.height > 0, 30_000, 'block 1');
    assert.equal(lone.node.miner?.held, undefined);
    assert.equal(lone.node.db.history.stateBase, 0);
  });

  it('a fresh mining node mines nothing while it downloads a peer\'s longer chain, then mines on its tip', async () => {
    const params = networkParams();
    const server = await startNode(params);
    nodes.push(server);
    await mineOn(server, 400);
    const coinbase = testKey(72).address;
    const fresh = await startNode(params, [server.addr], { mine: { coinbase, threads: 1 } });
    nodes.push(fresh);
    // Each block the fresh node's miner submits, and whether it was catching up with the server's chain then.
    const made: boolean[] = [];
    const submit = fresh.node.importAndAnnounce.bind(fresh.node);
    fresh.node.importAndAnnounce = (block) => {
      made.push(fresh.node.sync.syncing && fresh.node.sync.peersAhead > 0);
      return submit(block);
    };
    await waitFor(() => fresh.node.chain.tip.height > 400 && fresh.node.chain.getEntry(server.node.chain.tip.hash) !== undefined, 60_000, 'the fresh node to mine on the server\'s tip');
    assert.equal(made.filter((during) => during).length, 0, `${made.length} blocks mined, none while catching up`);
  });
});
