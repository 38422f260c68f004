/**
 * Issue 13, the network half: `cairn node` processes that were never told of each other. Two on
 * one machine with mDNS on and no --bootstrap must find each other and converge; a third, told
 * only of a second, must learn the first through the DHT and connect to it. mDNS needs multicast
 * that loops back on this machine: where it does not (a container with only a loopback interface
 * and no multicast route, say), the mDNS test says why and is skipped, and test/discovery.test.ts
 * still drives the same road from an injected announcement.
 */
import assert from 'node:assert/strict';
import { encodeAddress } from '../../ledger/keys.ts';
import { testKey } from '../helpers/fixtures.ts';
import { multicastUnavailable } from '../helpers/multicast.ts';
import { clusters, commonHead, report, secs, waitFor, type NodeProc } from '../helpers/cluster.ts';

/** The peers a node lists, by id. */
async function peerIds(n: NodeProc): Promise<string[]> {
  return (await n.call('getPeers', {})).map((p) => p.id);
}

describe('e2e: finding peers nobody named', function () {
  this.timeout(120_000);
  const cluster = clusters();

  it('mDNS: two nodes with no --bootstrap find each other and converge', async function () {
    const why = await multicastUnavailable();
    if (why) {
      report(`SKIPPED, mDNS cannot work here: ${why}`);
      this.skip();
    }
    const c = cluster({ name: 'mdns' });
    const a = await c.startNode('a', { mdns: true, coinbase: encodeAddress(testKey(700).address) });
    const b = await c.startNode('b', { mdns: true });
    const started = Date.now();
    const { ms } = await waitFor('A and B to list each other as peers', 30_000, async () => (await peerIds(a)).includes(b.peerId) && (await peerIds(b)).includes(a.peerId));
    const { value: head } = await waitFor('B on A\'s head, above 5', 30_000, async () => {
      const h = await commonHead([a, b]);
      return h && h.height > 5 ? h : undefined;
    });
    // What the user reads: who was discovered, by which road, and that blocks arrive.
    const connected = b.logLines(/"msg":"peer connected"/).find((l) => l.includes(a.peerId));
    assert.ok(connected, `B logged no "peer connected" for A:\n${b.logTail(20)}`);
    assert.equal(b.logLines(/"msg":"no peers/).length, 0);
    report(`found each other ${secs(ms)} after B started; both at height ${head.height} ${secs(Date.now() - started)} after`);
  });

  it('DHT: C, told only of B, learns A through the DHT and connects to it', async () => {
    const c = cluster({ name: 'dht' });
    const a = await c.startNode('a', { coinbase: encodeAddress(testKey(701).address) });
    const b = await c.startNode('b', { bootstrap: [a.addr] });
    await waitFor('B to connect to A', 20_000, async () => (await peerIds(b)).includes(a.peerId));
    const cNode = await c.startNode('c', { bootstrap: [b.addr] });
    const { ms } = await waitFor('C to connect to A', 30_000, async () => (await peerIds(cNode)).includes(a.peerId));
    await waitFor('A, B and C on one head above 3', 30_000, async () => ((await commonHead([a, b, cNode]))?.height ?? 0) > 3);
    report(`C connected to A ${secs(ms)} after it started, knowing only B`);
  });
});
