/**
 * Fair serving over real libp2p, against a peer built from docs/PROTOCOL.md alone
 * (test/helpers/spec-peer.ts): the spec's own limits are answered (64 locator hashes), a spent
 * budget is answered with the busy frame and not a reset, waiting it out costs nothing, an
 * oversized gossip message is dropped before decoding and its sender banned, and an address gets
 * no more inbound slots than its share.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { multiaddr } from '@multiformats/multiaddr';
import { createNode } from '../node/launch.ts';
import { Metrics } from '../node/metrics.ts';
import { mineOn, networkParams, startNode, stopAll, waitFor, type TestNode } from './helpers/network.ts';
import { answer, ask, busyRetryAfter, getHeadersBytes, headerHashes, specHost, statusBytes, type SpecHost } from './helpers/spec-peer.ts';
import { runCli } from './helpers/cli.ts';

const params = networkParams({ name: 'cairn-fair-serving-test' });
const sha256 = (data: Uint8Array) => new Uint8Array(createHash('sha256').update(data).digest());

describe('fair serving over libp2p, against a peer built from the spec', function () {
  this.timeout(60_000);
  let nodes: TestNode[] = [];
  let hosts: SpecHost[] = [];
  afterEach(async () => {
    await Promise.allSettled(hosts.map((h) => h.stop()));
    await stopAll(nodes);
    nodes = [];
    hosts = [];
  });

  /** A spec peer that passes the handshake (its status: genesis, height 0), connected to `node`. */
  async function peerOf(node: TestNode, o: { gossip?: boolean } = {}): Promise<SpecHost> {
    const h = await specHost(o);
    hosts.push(h);
    const genesis = node.node.db.genesis.header.hash;
    await answer(h, node.node.names.status, () => statusBytes(genesis, 0, genesis, 1n));
    await h.dial(multiaddr(node.addr));
    await waitFor(() => node.node.sync.statuses.has(h.peerId.toString()), 10_000, 'the node to finish its handshake with the spec peer');
    return h;
  }

  it('getHeaders with 64 locator hashes, as the spec allows, is answered and costs nothing', async () => {
    const a = await startNode(params);
    nodes.push(a);
    await mineOn(a, 30);
    const h = await peerOf(a);
    // 63 hashes A does not know, then its genesis: the answer starts after genesis.
    const locator = [...Array.from({ length: 63 }, (_, i) => sha256(Uint8Array.of(i))), a.node.db.genesis.header.hash];
    const request = getHeadersBytes(locator, 2000);
    assert.equal(request.length, 2054);
    const [headers] = await ask(h, a.addr, a.node.names.headers, request);
    assert.equal(headers![0], 1);
    assert.equal(headers![1], 30, 'all 30 headers after genesis');
    assert.deepEqual(headerHashes(headers!).at(-1), a.node.chain.tip.hash);
    assert.equal(a.node.peers.score(h.peerId.toString()), 0);
  });

  it('a light client\'s requests (header range, proofs) are served within the same per-peer budgets as the others', async () => {
    const a = await startNode(params);
    nodes.push(a);
    await mineOn(a, 5);
    const h = await peerOf(a);
    // As the spec encodes them: getHeaderRange 01 ‖ from u32 ‖ count u16; getProofs 01 ‖ block hash ‖ count ‖ addresses.
    const [range] = await ask(h, a.addr, a.node.names.headerRange, Uint8Array.of(1, 0, 0, 0, 1, 0, 10));
    assert.equal(range![1], 5, 'headers 1 to 5');
    const [proofs] = await ask(h, a.addr, a.node.names.proofs, Uint8Array.from([1, ...a.node.chain.tip.hash, 1, ...new Uint8Array(20)]));
    assert.deepEqual([...proofs!.subarray(0, 3)], [1, 0, 1], 'answer 00: one proof');
    const stats = a.node.guard.stats;
    assert.deepEqual([stats.servedRequests.headerRange, stats.servedRequests.proofs], [1, 1]);
    assert.deepEqual([stats.servedBytes.headerRange, stats.servedBytes.proofs], [range!.length, proofs!.length]);
    assert.equal(a.node.guard.records.get(h.peerId.toString())!.bytesOut >= range!.length + proofs!.length, true);
    const text = await new Metrics(a.node).render();
    assert.match(text, /^cairn_served_requests_total\{protocol="proofs"\} 1$/m);
  });

  it('a flood of status requests is answered busy (FF and the time to wait), not reset; cairn peers shows it THROTTLED; waiting it out costs nothing', async () => {
    const a = await startNode(params, [], { rpc: { port: 0 } });
    nodes.push(a);
    const h = await peerOf(a);
    // Asked until four are answered busy: the budget (a burst of 16, one more a second) refills
    // while the requests take their time, more of it on a loaded machine, so no fixed count works.
    const answers: Uint8Array[] = [];
    const busy: Uint8Array[] = [];
    while (busy.length < 4 && answers.length < 100) {
      const [frame] = await ask(h, a.addr, a.node.names.status, new Uint8Array(0));
      answers.push(frame!);
      if (busyRetryAfter(frame!) !== undefined) busy.push(frame!);
    }
    assert.equal(busy.length, 4, `${busy.length} of ${answers.length} busy`);
    assert.ok(answers.slice(0, 10).every((f) => f.length === 105), 'the burst is answered in full');
    const wait = busyRetryAfter(busy[0]!)!;
    assert.ok(wait > 0 && wait <= 1000, `retry after ${wait} ms`);
    const id = h.peerId.toString();
    assert.equal(a.node.guard.serving.throttled(id), true);
    assert.ok(a.node.guard.stats.throttled.status >= busy.length);
    // What a user reads: who dialled, height, score, bytes each way, THROTTLED (answered busy in the last 10 s).
    const shown = await runCli(['peers', '--datadir', a.config.datadir]);
    const line = shown.stdout.split('\n').find((l) => l.startsWith(id));
    assert.match(line ?? shown.stdout + shown.stderr, new RegExp(`^${id} {2}inbound {2}height 0 {2}score 0 {2}in [\\d.]+ [KM]?B {2}out [\\d.]+ KB {2}THROTTLED {2}/ip4/127\\.0\\.0\\.1/tcp/\\d+/p2p/${id}$`));
    console.log(`      cairn peers: ${line}`);
    await new Promise((r) => setTimeout(r, busyRetryAfter(busy.at(-1)!)! + 50));
    const [after] = await ask(h, a.addr, a.node.names.status, new Uint8Array(0));
    assert.equal(after!.length, 105, 'answered again after the wait');
    assert.equal(a.node.peers.score(id), 0, 'busy answers cost nothing to a peer that waits');
  });

  it('a gossip message over maxBlockBytes + 64 KiB is dropped before it is decoded, and its sender banned', async () => {
    const a = await startNode(params);
    nodes.push(a);
    const h = await peerOf(a, { gossip: true });
    const topic = a.node.names.txTopic;
    h.services.pubsub!.subscribe(topic);
    await waitFor(() => h.services.pubsub!.getSubscribers(topic).some((p) => p.toString() === a.node.transport.peerId), 10_000, 'the spec peer to see A on the topic');
    const reasons: string[] = [];
    a.node.peers.on('penalty', (_peer, score, reason) => reasons.push(`${score} ${reason}`));
    // A transaction batch's start (01, one transaction) padded past the cap: decoded, it would be
    // "trailing bytes"; read as an oversized message, it never is.
    const cap = params.maxBlockBytes + 64 * 1024;
    const message = new Uint8Array(cap + 1);
    message.set([1, 1]);
    await h.services.pubsub!.publish(topic, message);
    await waitFor(() => a.node.peers.isBanned(h.peerId.toString()), 15_000, 'A to ban the sender');
    assert.deepEqual(reasons, [`100 oversized gossip: ${cap + 1} bytes, above the cap of ${cap}`]);
    assert.equal(a.node.guard.stats.oversizedGossip, 1);
  });

  it('a ban outlives a restart (bans.json in the datadir): the banned peer is refused by the node started again', async () => {
    const a = await startNode(params);
    nodes.push(a);
    const h = await peerOf(a);
    const id = h.peerId.toString();
    a.node.peers.ban(id, 'test: a ban to keep');
    await a.node.stop();
    const again = createNode(a.config);
    nodes[nodes.indexOf(a)] = { ...a, node: again };
    await again.start();
    assert.equal(again.peers.isBanned(id), true);
    const redial = await h.dial(multiaddr(again.listenAddresses()[0]!), { signal: AbortSignal.timeout(5000) }).then((c) => c, () => undefined);
    await waitFor(() => !again.transport.peers().includes(id) && (redial === undefined || redial.status !== 'open'), 10_000, 'the redial to be refused');
    assert.deepEqual(again.peers.records().map((r) => [r.kind, r.id, r.reason]), [['peer', id, 'test: a ban to keep']], 'loopback: the IP is not banned');
  });

  it('the network\'s counters reach the metrics: bytes served and busy answers by protocol, bans by reason', async () => {
    const a = await startNode(params);
    nodes.push(a);
    const h = await peerOf(a);
    for (let i = 0; i < 20; i++) await ask(h, a.addr, a.node.names.status, new Uint8Array(0));
    a.node.peers.ban(h.peerId.toString(), 're-downloads blocks it has: test');
    const text = await new Metrics(a.node).render();
    assert.match(text, /^cairn_served_bytes_total\{protocol="status"\} \d+$/m);
    assert.match(text, /^cairn_throttled_requests_total\{protocol="status"\} [1-9]\d*$/m);
    assert.match(text, /^cairn_bans_total\{reason="redownload"\} 1$/m);
    assert.match(text, /^cairn_peer_evictions_total 0$/m);
    assert.equal(text.match(/^# TYPE cairn_served_bytes_total counter$/gm)?.length, 1, 'one TYPE line per metric');
  });

  it('inbound slots per IP over libp2p: past the limit, dials from the address are refused before the handshake', async () => {
    const a = await startNode(params, [], { connectionLimits: { limitLoopback: true, maxInboundPerIp: 3 } });
    nodes.push(a);
    const results: boolean[] = [];
    for (let i = 0; i < 8; i++) {
      const h = await specHost();
      hosts.push(h);
      const genesis = a.node.db.genesis.header.hash;
      await answer(h, a.node.names.status, () => statusBytes(genesis, 0, genesis, 1n));
      results.push(await h.dial(multiaddr(a.addr), { signal: AbortSignal.timeout(5000) }).then((c) => c.status === 'open', () => false));
    }
    await waitFor(() => a.node.transport.peers().length <= 3, 5_000, 'at most 3 peers from 127.0.0.1');
    assert.deepEqual(results, [true, true, true, false, false, false, false, false]);
    assert.equal(a.node.transport.peers().length, 3);
    assert.ok(a.node.guard.stats.refusedInbound >= 5);
  });
});
