/**
 * node/metrics.ts through prom-client on a running node: every cairn_* name of before is still
 * there; process and event-loop metrics come with it; the histograms (block import, propagation,
 * RPC latency, verify-pool queue wait) fill as the node works; `promtool check metrics` passes on
 * the scrape; and every metric the Grafana dashboard in contrib/ queries exists.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { request } from 'node:http';
import { readFileSync } from 'node:fs';
import { signTransaction } from '../ledger/transaction.ts';
import { createNode, type NodeConfig } from '../node/launch.ts';
import { MAX_METRICS_CONNECTIONS, Metrics } from '../node/metrics.ts';
import { answered, checkConnectionCap, stallReader } from './helpers/http.ts';
import type { CairnNode } from '../node/node.ts';
import { RPC_ENDPOINT_FILE, type RpcEndpointFile } from '../node/rpc-types.ts';
import { ensureDebianBinary } from './helpers/debian.ts';
import { rememberState, stateOfStore } from './helpers/states.ts';
import { mineOn, networkParams, startNode, stopAll, verifyPoolOf, waitFor, type TestNode } from './helpers/network.ts';
import { chainPeerTransport } from './helpers/chain-peer.ts';
import { asParent, mineChain, mineChild } from './helpers/mining.ts';
import { FUNDED_KEYS, tempDir, testKey, testParams } from './helpers/fixtures.ts';
import { heldReorganisation } from './helpers/reorg.ts';
import type { NodeView } from '../node/view.ts';
import { toHex } from '../ledger/bytes.ts';
import { MemoryDisk } from '../ledger/kv-memory.ts';
import { ChainDB } from '../ledger/chaindb.ts';
import { Chain } from '../consensus/chain.ts';
import { blockWork } from '../consensus/pow.ts';
import { Sync } from '../node/sync.ts';
import { SYNC_LOG_INTERVAL_MS } from '../node/sync-types.ts';
import { PeerManager } from '../node/peers.ts';
import { networkNames } from '../node/protocols.ts';
import { realEnv } from '../node/env.ts';
import type { Serve } from '../node/serving.ts';
import { MAX_HEADERS_PER_RESPONSE, type Status } from '../node/wire.ts';

const KEPT = [
  'cairn_chain_height', 'process_resident_memory_bytes', 'nodejs_heap_used_bytes', 'cairn_peers', 'cairn_peers_banned', 'cairn_mempool_transactions',
  'cairn_mempool_bytes', 'cairn_orphan_blocks', 'cairn_sync_target_height', 'cairn_syncing', 'cairn_sync_progress_ratio', 'cairn_blocks_imported_total',
  'cairn_reorgs_total', 'cairn_invalid_blocks_total', 'cairn_invalid_messages_total', 'cairn_peer_bans_total',
];

describe('metrics (prom-client)', function () {
  this.timeout(120_000);
  const dir = tempDir('cairn-metrics-');
  let node: CairnNode;
  let url = '';
  let text = '';
  const logged: { level: string; message: string; fields?: Record<string, unknown> }[] = [];
  let second: Parameters<typeof mineChild>[1]; // block 2, whose state the helpers know

  before(async function () {
    this.timeout(660_000); // on a machine without promtool, apt-get installs it first
    ensureDebianBinary('promtool', 'prometheus');
    const config: NodeConfig = { datadir: dir.path, params: networkParams(), listen: ['/ip4/127.0.0.1/tcp/0'], mdns: false, verifyThreads: 1, rpc: { port: 0 }, metrics: { port: 0 } };
    node = createNode(config);
    node.on('log', (level, message, fields) => {
      logged.push({ level, message, fields });
      if (message === 'metrics') url = String(fields?.url);
    });
    await node.start();
    await mineOn({ node, config, addr: '', remove: () => {} }, 2);
    // One block as if from a peer: not mined here, and stamped two seconds ago.
    const tip = node.chain.tip;
    second = tip;
    rememberState(tip.hash, await stateOfStore(node.db));
    await node.chain.processBlock(mineChild(node.params, tip, [], { timestamp: Math.max(tip.header.timestamp + 1, Math.floor(Date.now() / 1000) - 2) }));
    const endpoint = JSON.parse(readFileSync(`${dir.path}/${RPC_ENDPOINT_FILE}`, 'utf8')) as RpcEndpointFile;
    await fetch(endpoint.url, { method: 'POST', headers: { authorization: `Bearer ${endpoint.token}` }, body: '{"jsonrpc":"2.0","id":1,"method":"status"}' });
    const refused = await fetch(endpoint.url, { method: 'POST', headers: { authorization: `Bearer ${endpoint.token}` }, body: `{"jsonrpc":"2.0","id":2,"method":"getBlock","params":{"hash":"${'0'.repeat(64)}"}}` });
    assert.match(await refused.text(), /"error"/);
    const txs = Array.from({ length: 16 }, (_, i) => signTransaction({ chainId: 7, to: FUNDED_KEYS[1]!.address, amount: 1n, fee: 1n, nonce: BigInt(i) }, FUNDED_KEYS[0]!.privateKey));
    await verifyPoolOf(node).verify(txs.map((tx) => ({ signature: tx.signature, message: tx.sighash, publicKey: tx.publicKey })));
    await waitFor(() => url !== '', 10_000, 'the metrics url');
    text = await (await fetch(`${url}?from=prometheus`)).text(); // a scrape's \`params\` add a query
  });
  after(async () => {
    await node?.stop();
    dir.remove();
  });

  const valueIn = (page: string, series: string) => Number(new RegExp(`^${series.replace(/[{}"]/g, '\\$&')} (\\S+)$`, 'm').exec(page)?.[1] ?? NaN);
  const value = (series: string) => valueIn(text, series);

  it('keeps every cairn_* name it had, and adds process and event-loop metrics', () => {
    for (const name of KEPT) assert.match(text, new RegExp(`^# TYPE ${name} `, 'm'), name);
    assert.equal(value('cairn_chain_height'), 3);
    assert.equal(value('cairn_blocks_imported_total'), 3);
    assert.equal(value('cairn_state_tree_nodes_read_total{read="needed"}'), node.db.treeReads.nodes);
    assert.equal(value('cairn_state_tree_nodes_read_total{read="ahead"}'), node.db.treeReads.prefetched);
    for (const name of ['nodejs_eventloop_lag_seconds', 'nodejs_eventloop_lag_p99_seconds', 'process_cpu_seconds_total', 'nodejs_gc_duration_seconds']) assert.match(text, new RegExp(`^# TYPE ${name} `, 'm'), name);
  });

  it('histograms of block import, RPC latency by method and verify-pool queue wait fill as the node works', () => {
    assert.equal(value('cairn_block_import_seconds_count'), 3);
    assert.equal(value('cairn_block_propagation_seconds_count'), 1, 'only the received block, not the two mined here');
    assert.ok(value('cairn_block_propagation_seconds_sum') >= 1, 'its timestamp was seconds ago');
    assert.equal(value('cairn_rpc_request_seconds_count{method="status"}'), 1);
    assert.equal(value('cairn_rpc_request_seconds_count{method="getBlock"}'), 1, 'a refused call is timed too');
    assert.ok(value('cairn_verify_queue_wait_seconds_count') >= 1, 'a batch went to the thread');
    assert.match(text, /^# TYPE cairn_block_propagation_seconds histogram$/m);
  });

  it('times the store\'s batch writes, the blocks\' units among them (cairn_store_write_seconds)', () => {
    // From the project's list: a disk slowing the node down showed nowhere but in the block import.
    assert.match(text, /^# TYPE cairn_store_write_seconds histogram$/m);
    assert.ok(value('cairn_store_write_seconds_count') >= 1, 'three blocks connected: one flush at least');
    assert.ok(value('cairn_store_write_seconds_sum') > 0);
  });

  it('what an operator alerts on: peers by direction, the best peer, the tip\'s age, the gapped mempool, pruning, a waiting miner, mempool drops', () => {
    for (const series of ['cairn_peers_by_direction{direction="inbound"}', 'cairn_peers_by_direction{direction="outbound"}', 'cairn_best_peer_height', 'cairn_peers_apart', 'cairn_mempool_gapped_bytes', 'cairn_pruned_height', 'cairn_mining_waiting', 'cairn_mempool_dropped_total{reason="evicted"}', 'cairn_mempool_dropped_total{reason="expired"}']) {
      assert.equal(value(series), 0, series);
    }
    assert.equal(value('cairn_chain_tip_timestamp_seconds'), node.chain.tip.header.timestamp);
    assert.equal(value('cairn_reorg_depth_blocks_count'), 0);
  });

  it('shows gossip\'s compact-block counters, each a counter of its own', async () => {
    // From the project's list: they were kept (Gossip.compactStats) and shown nowhere.
    const series = {
      rebuilt: 'cairn_compact_blocks_rebuilt_total',
      fetched: 'cairn_compact_blocks_fetched_total',
      fromOthers: 'cairn_compact_blocks_from_others_total',
      hedged: 'cairn_compact_blocks_hedged_total',
      failed: 'cairn_compact_blocks_failed_total',
      unknownParent: 'cairn_compact_blocks_unknown_parent_total',
      awaitedParent: 'cairn_compact_blocks_awaited_parent_total',
      repeated: 'cairn_compact_blocks_repeated_total',
    } as const;
    const stats = node.gossip.compactStats;
    const before = { ...stats };
    const fields = Object.keys(series) as (keyof typeof series)[];
    assert.deepEqual(fields.toSorted(), Object.keys(stats).toSorted(), 'every counter gossip keeps');
    try {
      fields.forEach((field, i) => (stats[field] = 100 + i));
      const page = await (await fetch(url)).text();
      fields.forEach((field, i) => {
        assert.match(page, new RegExp(`^# TYPE ${series[field]} counter$`, 'm'), series[field]);
        assert.equal(valueIn(page, series[field]), 100 + i, series[field]);
      });
    } finally {
      Object.assign(stats, before);
    }
  });

  it('a reorganisation counts once, with its depth', async () => {
    const fresh = new Metrics(node);
    const stamp = node.chain.tip.header.timestamp;
    const fromTip = node.chain.tip.hashHex;
    const b3 = mineChild(node.params, second, [], { timestamp: stamp, miner: testKey(5).address });
    const b4 = mineChild(node.params, asParent(b3), [], { timestamp: stamp + 1, miner: testKey(5).address });
    assert.equal(await node.chain.processBlock(b3), 'side-branch');
    assert.equal(await node.chain.processBlock(b4), 'connected');
    const page = await fresh.render();
    const of = (series: string) => Number(new RegExp(`^${series.replace(/[{}"+]/g, '\\$&')} (\\S+)$`, 'm').exec(page)?.[1] ?? NaN);
    assert.equal(of('cairn_reorgs_total'), 1);
    assert.equal(of('cairn_reorg_depth_blocks_count'), 1);
    assert.equal(of('cairn_reorg_depth_blocks_sum'), 1, 'one block disconnected');
    assert.equal(of('cairn_reorg_depth_blocks_bucket{le="1"}'), 1);
    const said = logged.filter((l) => l.message === 'reorganised');
    assert.equal(said.length, 1, 'said once');
    assert.deepEqual(
      { ...said[0]!.fields, level: said[0]!.level },
      { level: 'info', fork: 2, forkHash: toHex(second.hash), disconnected: 1, connected: 2, from: fromTip, to: toHex(b4.header.hash), height: 4 },
    );
  });

  it('closed, it takes back every listener it added to the node: the chain, gossip, peers and the node have none left from it', async () => {
    // From the carried list: the chain's 'tip' listener (and the others) stayed after close(),
    // fed a registry nobody scraped, and kept it reachable from the chain for as long as it ran.
    const listeners = () => ({
      chain: (['connect', 'tip', 'invalid', 'imported'] as const).map((event) => node.chain.listenerCount(event)),
      gossip: node.gossip.listenerCount('invalid'),
      peers: node.peers.listenerCount('ban'),
      node: node.listenerCount('block'),
    });
    const before = listeners();
    const fresh = new Metrics(node, { now: () => Date.now() });
    assert.deepEqual(listeners(), { chain: before.chain.map((n) => n + 1), gossip: before.gossip + 1, peers: before.peers + 1, node: before.node + 1 });
    await fresh.close(); // one that never listened on a port too
    assert.deepEqual(listeners(), before);
  });

  it('a ban is one warning, its peer and reason in fields a JSON log is searched by', () => {
    const peer = '12D3KooWGq2cz1Hf4G2bMXRDeEcvyrPkXV5ysPpQtFMmvFjfpw6Q';
    node.peers.ban(peer, 'sync: its chain holds an invalid block');
    const said = logged.filter((l) => l.message === 'banned peer');
    assert.equal(said.length, 1);
    assert.equal(said[0]!.level, 'warn');
    assert.deepEqual(said[0]!.fields, { peer, reason: 'sync: its chain holds an invalid block' });
  });

  it('promtool check metrics passes on the scrape', () => {
    const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    assert.equal(r.status, 0, `promtool: ${r.stdout}${r.stderr}`);
  });

  it('a scrape addressed to a name other than this machine (DNS rebinding) is refused', async () => {
    const status = (host: string) => new Promise<number>((resolve, reject) => {
      const req = request(url, { headers: { host } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      req.end();
    });
    const port = new URL(url).port;
    assert.equal(await status(`evil.example:${port}`), 403);
    assert.equal(await status(`localhost:${port}`), 200);
    assert.equal(await status(`127.0.0.1:${port}`), 200);
  });

  it(`holds at most ${MAX_METRICS_CONNECTIONS} connections: nobody who reaches the port takes every file descriptor the node has`, async () => {
    const fresh = new Metrics(node); // its own port: the scrapes above may still hold a connection to the node's
    try {
      await checkConnectionCap(`http://127.0.0.1:${await fresh.listen(0)}`, MAX_METRICS_CONNECTIONS, '/metrics');
    } finally {
      await fresh.close();
    }
  });

  it('cuts a connection whose client reads none of its answers, as the REST and RPC servers do: its slot comes back', async () => {
    // From the project's list: a scraper that sent requests and never read held its answers and one
    // of the port's connection slots for ever (node/http/write-timeout.ts says why): a few such took them all.
    const fresh = new Metrics(node);
    try {
      const url = `http://127.0.0.1:${await fresh.listen(0, '127.0.0.1', { writeTimeoutMs: 300, maxConnections: 1 })}/metrics`;
      // Pipelined, more answers than the kernel's buffers take for a client that reads nothing.
      const stalled = stallReader(url, 'GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n', 1_000);
      try {
        await waitFor(() => answered(url), 30_000, 'a scrape, once the slot of the client that reads nothing is back');
      } finally {
        stalled.socket.destroy();
      }
    } finally {
      await fresh.close();
    }
  });

  it('every metric the Grafana dashboard queries exists', () => {
    const dashboard = readFileSync(new URL('../contrib/grafana-dashboard.json', import.meta.url), 'utf8');
    const exprs = [...dashboard.matchAll(/"expr":\s*"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]!);
    assert.ok(exprs.length >= 8, `${exprs.length} panels' queries`);
    const names = new Set(exprs.flatMap((e) => [...e.matchAll(/\b((?:cairn|nodejs|process)_[a-z0-9_]+)/g)].map((m) => m[1]!.replace(/_(bucket|sum|count)$/, ''))));
    for (const name of names) assert.match(text, new RegExp(`^# TYPE ${name} `, 'm'), `the dashboard queries ${name}`);
  });
});

describe('metrics: gauges that stay true', function () {
  this.timeout(60_000);

  it('cairn_sync_target_height: a chain whose blocks broke a rule is no target once the sync ends', async () => {
    // The target was the height of the last headers a sync fetched, kept for ever: a peer's chain
    // that turned out invalid (or whose peer left mid-download) left the node "behind" a chain
    // nobody offered any more: cairn_sync_progress_ratio stayed below 1, and an alert on it fired
    // until the next restart.
    const params = testParams();
    const now = params.timestamp + 1_000_000;
    const db = await ChainDB.open(new MemoryDisk().open(), params);
    const chain = await Chain.open(db, { clock: () => now });
    const good = mineChain(params, asParent(db.genesis), 3, { miner: testKey(1).address });
    const bad = mineChain(params, asParent(good.at(-1)!), 5, { stateRoot: new Uint8Array(32).fill(7) });
    const blocks = [...good, ...bad];
    const names = networkNames(db.genesis.header.hash);
    const status: Status = { genesis: db.genesis.header.hash, height: blocks.length, tipHash: blocks.at(-1)!.header.hash, totalWork: blocks.reduce((sum, b) => sum + blockWork(b.header.target), chain.tip.totalWork), prunedHeight: 0 };
    const peers = new PeerManager(() => now);
    const sync = new Sync({ transport: chainPeerTransport('liar', names, status, blocks), env: realEnv, names, chain, peers, clock: () => now, serve: (async () => {}) as unknown as Serve });
    sync.statuses.set('liar', { peer: 'liar', status });
    await sync.requestSync();
    await sync.idle();
    assert.equal(chain.tip.height, 3, 'the good blocks, then the first bad one refused');
    assert.ok(peers.score('liar') > 0 || peers.isBanned('liar'), 'the peer that claimed the chain was blamed');
    assert.equal(sync.syncing, false);
    assert.equal(sync.targetHeight, 3, 'no peer offers more than our tip now');
    await db.close();
  });
});

describe('metrics mid-way through a reorganisation', function () {
  this.timeout(60_000);

  it('a scrape reports the tip before it, not the fork point, and does not wait for it: the height never falls', async () => {
    // From a review: mid-way the main chain ends at the fork point, so a scrape showed the height
    // falling from 10 to 8 before it rose to 11 (an alert on a falling height fired), and the tip's
    // age jumping back to the fork point's.
    let metrics: Metrics | undefined;
    const r = await heldReorganisation({}, (chain) => {
      // The sync's own target is the tip when it fetches nothing (node/sync.ts).
      const sync = { syncing: false, get targetHeight() { return chain.tip.height; }, statuses: new Map(), peersApart: 0 };
      metrics = new Metrics({ chain, sync, gossip: { on() {} }, peers: { on() {} } } as unknown as NodeView);
    });
    const scrape = async () => {
      const names = ['cairn_chain_height', 'cairn_chain_tip_timestamp_seconds', 'cairn_sync_target_height', 'cairn_sync_progress_ratio'];
      const pages = await Promise.all(names.map((name) => metrics!.registry.getSingleMetricAsString(name)));
      return names.map((name, i) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(pages[i]!)?.[1] ?? NaN));
    };
    try {
      assert.equal(r.chain.reorganisationUnderWay, true);
      assert.deepEqual(await scrape(), [10, r.main[9]!.header.timestamp, 10, 1], 'the tip before it, block 10');
    } finally {
      r.release();
    }
    assert.equal(await r.reorganised, 'connected');
    assert.deepEqual(await scrape(), [11, r.branch[2]!.header.timestamp, 11, 1], 'the tip after it');
    await r.db.close();
  });
});

describe('metrics: two nodes', function () {
  this.timeout(60_000);
  const nodes: TestNode[] = [];
  after(() => stopAll(nodes));

  it('peers by direction: the node dialled counts an inbound peer, the one that dialled an outbound one; each sees the other\'s height', async () => {
    const params = networkParams();
    const a = await startNode(params);
    nodes.push(a);
    await mineOn(a, 3);
    const b = await startNode(params, [a.addr]);
    nodes.push(b);
    // A hears B's status at connection (height 0), and again on its status round (every second here).
    await waitFor(() => b.node.chain.tip.height === 3 && [...a.node.sync.statuses.values()][0]?.status.height === 3, 30_000, 'B to sync from A, and A to hear its new status');
    const page = async (t: TestNode) => {
      const text = await new Metrics(t.node).render();
      return (series: string) => Number(new RegExp(`^${series.replace(/[{}"]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
    };
    const [atA, atB] = [await page(a), await page(b)];
    assert.deepEqual([atA('cairn_peers_by_direction{direction="inbound"}'), atA('cairn_peers_by_direction{direction="outbound"}')], [1, 0]);
    assert.deepEqual([atB('cairn_peers_by_direction{direction="inbound"}'), atB('cairn_peers_by_direction{direction="outbound"}')], [0, 1]);
    assert.equal(atB('cairn_best_peer_height'), 3);
    assert.equal(atA('cairn_best_peer_height'), 3);
  });
});

describe('logs an operator greps for', function () {
  this.timeout(60_000);

  it(`a sync says where it is, once in ${SYNC_LOG_INTERVAL_MS / 1000} s, not once a batch: a service's log was silent from the start to the end of a catch-up`, async () => {
    const params = testParams();
    const now = params.timestamp + 1_000_000;
    const db = await ChainDB.open(new MemoryDisk().open(), params);
    const chain = await Chain.open(db, { clock: () => now });
    const blocks = mineChain(params, asParent(db.genesis), 100, { miner: testKey(1).address }); // four batches
    const names = networkNames(db.genesis.header.hash);
    const status: Status = { genesis: db.genesis.header.hash, height: blocks.length, tipHash: blocks.at(-1)!.header.hash, totalWork: blocks.reduce((sum, b) => sum + blockWork(b.header.target), chain.tip.totalWork), prunedHeight: 0 };
    const logged: { level: string; message: string; fields?: Record<string, unknown> }[] = [];
    let clock = 0; // the monotonic clock stands still: every batch comes within the interval
    const env = { ...realEnv, monotonic: () => clock };
    const sync = new Sync({ transport: chainPeerTransport('honest', names, status, blocks), env, names, chain, peers: new PeerManager(() => now), clock: () => now, serve: (async () => {}) as unknown as Serve, log: (level, message, fields) => void logged.push({ level, message, fields }) });
    let batches = 0;
    sync.on('progress', () => {
      if (++batches === 3) clock += SYNC_LOG_INTERVAL_MS; // the third batch comes an interval later
    });
    sync.statuses.set('honest', { peer: 'honest', status });
    await sync.requestSync();
    await sync.idle();
    assert.equal(chain.tip.height, 100);
    assert.equal(batches, 4);
    const said = logged.filter((l) => l.message === 'syncing');
    assert.deepEqual(said.map((l) => [l.level, l.fields]), [['info', { height: 32, target: 100, peer: 'honest' }], ['info', { height: 96, target: 100, peer: 'honest' }]]);
    await db.close();
  });

  it(`a sync says whose headers it checks, and how far, once in ${SYNC_LOG_INTERVAL_MS / 1000} s: a new node's log said nothing from its peers' connections to its first blocks`, async () => {
    const params = testParams();
    const now = params.timestamp + 100_000_000;
    const db = await ChainDB.open(new MemoryDisk().open(), params);
    const chain = await Chain.open(db, { clock: () => now });
    const blocks = mineChain(params, asParent(db.genesis), 2 * MAX_HEADERS_PER_RESPONSE + 100, { miner: testKey(1).address }); // three ranges of headers
    const names = networkNames(db.genesis.header.hash);
    const status: Status = { genesis: db.genesis.header.hash, height: blocks.length, tipHash: blocks.at(-1)!.header.hash, totalWork: blocks.reduce((sum, b) => sum + blockWork(b.header.target), chain.tip.totalWork), prunedHeight: 0 };
    const logged: { message: string; fields?: Record<string, unknown> }[] = [];
    let clock = 0;
    const env = { ...realEnv, monotonic: () => clock };
    const sync = new Sync({ transport: chainPeerTransport('honest', names, status, blocks), env, names, chain, peers: new PeerManager(() => now), clock: () => now, serve: (async () => {}) as unknown as Serve, log: (level, message, fields) => void (level === 'info' && message.startsWith('sync:') && logged.push({ message, fields })) });
    let ranges = 0;
    sync.on('headers', () => {
      if (++ranges === 2) clock += SYNC_LOG_INTERVAL_MS; // the second range comes an interval after the start
    });
    sync.statuses.set('honest', { peer: 'honest', status });
    await sync.requestSync();
    assert.equal(chain.tip.height, blocks.length);
    assert.equal(ranges, 3);
    assert.deepEqual(logged, [
      { message: 'sync: checking the headers of a peer ahead', fields: { peer: 'honest', target: blocks.length, height: 0 } },
      { message: 'sync: headers checked', fields: { height: 2 * MAX_HEADERS_PER_RESPONSE, target: blocks.length, peer: 'honest' } },
    ]);
    await db.close();
  });
});
