/**
 * Per-peer budgets on the request protocols (node/serving.ts): what an honest peer does is never
 * answered busy; a flood is, with the time to wait; waiting costs nothing and coming back early
 * does, beyond what was already on its way; the upload is shared equally among the peers asking;
 * a peer re-downloading what it has gets a trickle, then is cut off.
 */
import assert from 'node:assert/strict';
import type { Env } from '../node/env.ts';
import { PeerManager } from '../node/peers.ts';
import { NetworkStats, PeerRecords } from '../node/peer-records.ts';
import { Serving, THROTTLED_SHOWN_MS } from '../node/serving.ts';
import { DEFAULT_SERVING_LIMITS, type ServingLimits } from '../node/serving-limits.ts';
import { isBusy, type Busy, type Responder } from '../node/transport.ts';

/** `ms` is time as it passes; the wall clock is `stepMs` off it, as NTP or an operator set it. */
class Clock {
  ms = 1_800_000_000_000;
  stepMs = 0;
  env(): Env {
    return { now: () => this.ms + this.stepMs, monotonic: () => this.ms } as Env;
  }
}

function setup(limits: Partial<ServingLimits> = {}) {
  const clock = new Clock();
  const peers = new PeerManager(() => Math.floor(clock.ms / 1000));
  const records = new PeerRecords();
  const stats = new NetworkStats();
  const serving = new Serving({ env: clock.env(), peers, records, stats, limits });
  const penalties: string[] = [];
  peers.on('penalty', (peer, score, reason) => penalties.push(`${peer} ${score} ${reason}`));
  for (const peer of ['a', 'b', 'c']) records.connected(peer, { direction: 'inbound', remoteAddr: `/ip4/10.0.0.${peer.charCodeAt(0) - 96}/tcp/1/p2p/${peer}` }, clock.ms);
  return { clock, peers, records, stats, serving, penalties };
}

const answer = (bytes: number): Responder => {
  const frame = new Uint8Array(bytes);
  return async () => frame;
};

describe('serving budgets', () => {
  it('a syncing peer alone is never answered busy: 2,000 header requests and 20,000 blocks of 25 KB, at the pace of a fast download', async () => {
    const { clock, serving, penalties, stats } = setup();
    const headers = serving.guard('headers', answer(240_000));
    const blocks = serving.guard('blocks', answer(32 * 25_000));
    for (let i = 0; i < 100; i++) {
      assert.ok(!isBusy(await headers(new Uint8Array(0), 'a')));
      clock.ms += 60;
    }
    for (let i = 0; i < 625; i++) {
      assert.ok(!isBusy(await blocks(new Uint8Array(0), 'a')), `batch ${i}`);
      clock.ms += 20; // 32 blocks every 20 ms: 1,600 blocks, 40 MB a second
    }
    assert.deepEqual(penalties, []);
    assert.equal(stats.throttled.blocks + stats.throttled.headers, 0);
    assert.equal(stats.servedBytes.blocks, 625 * 32 * 25_000);
  });

  it('a light client\'s requests have budgets too: catching up by header range at full pace is never busy; proofs one at a time, and busy past their burst', async () => {
    const { clock, serving, penalties, stats } = setup();
    const range = serving.guard('headerRange', answer(16 + 2000 * 152));
    for (let i = 0; i < 500; i++) {
      assert.ok(!isBusy(await range(new Uint8Array(0), 'a')), `range ${i}`);
      clock.ms += 60; // a million headers in 30 s
    }
    let release!: () => void;
    const slow: Responder = () => new Promise((resolve) => (release = () => resolve(new Uint8Array(100))));
    const proofs = serving.guard('proofs', slow);
    const first = proofs(new Uint8Array(0), 'b');
    assert.ok(isBusy(await proofs(new Uint8Array(0), 'b')), 'a second proof request while one is in flight');
    release();
    assert.ok(!isBusy(await first));
    clock.ms += 1000;
    const quick = serving.guard('proofs', answer(100));
    const { burst } = DEFAULT_SERVING_LIMITS.requests.proofs;
    for (let i = 0; i < burst; i++) assert.ok(!isBusy(await quick(new Uint8Array(0), 'c')), `proof ${i}`);
    const busy = (await quick(new Uint8Array(0), 'c')) as Busy;
    assert.ok(isBusy(busy));
    assert.equal(busy.retryAfterMs, Math.ceil(1000 / DEFAULT_SERVING_LIMITS.requests.proofs.perSecond));
    assert.deepEqual(penalties, []);
    assert.equal(stats.throttled.headerRange, 0);
    assert.equal(stats.servedRequests.headerRange, 500);
  });

  it('a status flood is answered busy after its burst, with the time until the next token; waiting costs nothing', async () => {
    const { clock, serving, penalties, records } = setup();
    const status = serving.guard('status', answer(101));
    for (let i = 0; i < DEFAULT_SERVING_LIMITS.requests.status.burst; i++) assert.ok(!isBusy(await status(new Uint8Array(0), 'a')));
    const busy = (await status(new Uint8Array(0), 'a')) as Busy;
    assert.ok(isBusy(busy));
    assert.equal(busy.retryAfterMs, 1000, 'one status a second');
    assert.equal(serving.throttled('a'), true);
    assert.equal(records.get('a')!.lastThrottledAt, clock.ms);
    clock.ms += busy.retryAfterMs;
    assert.ok(!isBusy(await status(new Uint8Array(0), 'a')), 'answered once it waited');
    assert.deepEqual(penalties, []);
    assert.ok(!isBusy(await status(new Uint8Array(0), 'b')), 'another peer has its own budget');
    clock.ms += THROTTLED_SHOWN_MS;
    assert.equal(serving.throttled('a'), false, 'shown as throttled for 10 s after its last busy answer');
  });

  it('a wall clock set back an hour neither stops the serving nor makes waiting peers early', async () => {
    const { clock, serving, penalties, peers } = setup();
    const peer = 'a';
    const status = serving.guard('status', answer(101));
    const headers = serving.guard('headers', answer(240_000));
    for (let i = 0; i < DEFAULT_SERVING_LIMITS.requests.status.burst; i++) await status(new Uint8Array(0), peer);
    const busy = (await status(new Uint8Array(0), peer)) as Busy;
    assert.ok(isBusy(busy));
    clock.stepMs -= 3_600_000;
    clock.ms += busy.retryAfterMs;
    assert.ok(!isBusy(await status(new Uint8Array(0), peer)), 'answered once it waited its retry-after');
    for (let i = 0; i < 100; i++) {
      assert.ok(!isBusy(await headers(new Uint8Array(0), peer)), `headers ${i}: the buckets still refill`);
      clock.ms += 60;
    }
    assert.deepEqual(penalties, []);
    assert.equal(peers.isBanned(peer), false);
  });

  it('requests that come back before their retry-after: those that may have been on their way are free, each one after costs 10', async () => {
    const { serving, penalties, peers } = setup();
    const status = serving.guard('status', answer(101));
    for (let i = 0; i < 16; i++) await status(new Uint8Array(0), 'a');
    assert.ok(isBusy(await status(new Uint8Array(0), 'a')));
    const forgiven = DEFAULT_SERVING_LIMITS.requests.status.inFlight + 2;
    for (let i = 0; i < forgiven; i++) assert.ok(isBusy(await status(new Uint8Array(0), 'a')));
    assert.deepEqual(penalties, []);
    for (let i = 0; i < 10; i++) await status(new Uint8Array(0), 'a');
    assert.equal(penalties.length, 10);
    assert.match(penalties[0]!, /^a 10 status requests before their retry-after$/);
    assert.equal(peers.isBanned('a'), true, 'a flood that ignores busy ends in a ban');
  });

  it('more requests in flight than the protocol allows: busy, not a reset', async () => {
    const { serving } = setup();
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const slow = serving.guard('status', async () => {
      await held;
      return new Uint8Array(101);
    });
    const first = [slow(new Uint8Array(0), 'a'), slow(new Uint8Array(0), 'a')];
    const third = await slow(new Uint8Array(0), 'a');
    assert.ok(isBusy(third));
    release();
    for (const r of await Promise.all(first)) assert.ok(!isBusy(r));
  });

  it('the upload is shared equally among the peers served in the last 2 s', async () => {
    // 10 MB/s in all, bursts of 1 MB: one peer alone takes 10 MB/s; beside another, 5 MB/s each.
    const { clock, serving } = setup({ uploadBytesPerSec: 10_000_000, burstBytes: 1_000_000 });
    const blocks = serving.guard('blocks', answer(500_000));
    const take = async (peers: string[], ms: number) => {
      const got: Record<string, number> = {};
      for (let t = 0; t < ms; t += 10) {
        for (const p of peers) if (!isBusy(await blocks(new Uint8Array(0), p))) got[p] = (got[p] ?? 0) + 500_000;
        clock.ms += 10;
      }
      return got;
    };
    const alone = await take(['a'], 4000);
    assert.ok(alone['a']! >= 38_000_000 && alone['a']! <= 42_000_000, `alone: ${alone['a']} bytes in 4 s`);
    clock.ms += 5000;
    const both = await take(['b', 'c'], 4000);
    for (const p of ['b', 'c']) assert.ok(both[p]! >= 18_000_000 && both[p]! <= 22_000_000, `${p} beside another: ${both[p]} bytes in 4 s`);
  });

  it('a peer re-downloading blocks its own tip has is answered whole while the trickle holds them, busy until then, never short; then it is cut off', async () => {
    // Answers used to stop where the trickle ran dry: a syncing node could not tell such an answer
    // from withholding, and an excuse for it (asked again past the allowance) was there to buy.
    const { clock, serving, peers } = setup();
    const limits = DEFAULT_SERVING_LIMITS;
    const blocks = serving.guard('blocks', answer(0)); // creates the budget
    await blocks(new Uint8Array(0), 'a');
    const batch = (from: number, count: number) => Array.from({ length: count }, (_, i) => ({ bytes: 25_000, height: from + i, theirs: true }));
    // A 300-block chain: cut off past 300 + 256 re-downloaded blocks.
    assert.equal(serving.serveBlocks('a', batch(1, 10), 300), 10, 'within the burst: whole');
    const dry = serving.serveBlocks('a', batch(11, 10), 300) as Busy;
    assert.ok(isBusy(dry), 'the trickle holds one block: busy, not one block of ten');
    assert.equal(dry.retryAfterMs, Math.ceil(((9 * 25_000 - (limits.redundantBurstBytes - 250_000)) * 1000) / limits.redundantBytesPerSec), 'until it holds nine');
    clock.ms += 60_000;
    const big = serving.serveBlocks('a', batch(1, 64), 300) as Busy;
    assert.ok(isBusy(big), 'more than the burst never fits, the trickle full or not');
    assert.equal(big.retryAfterMs, (limits.redundantBurstBytes * 1000) / limits.redundantBytesPerSec, 'told the time it takes to fill');
    assert.equal(serving.serveBlocks('a', batch(1, 1), 300), 1, 'one block always fits');
    let served = 11;
    for (let s = 0; s < 200 && !peers.isBanned('a'); s++) {
      clock.ms += 1000;
      const n = serving.serveBlocks('a', batch(1 + ((10 * s) % 290), 10), 300);
      assert.ok(typeof n !== 'number' || n === 10, `whole or busy: ${JSON.stringify(n)}`);
      if (typeof n === 'number') served += n;
    }
    assert.ok(peers.isBanned('a'), 'cut off');
    assert.ok(served > 556 && served <= 556 + 10, `${served} blocks re-downloaded`);
  });

  it('blocks served twice on one connection: a few batches are forgiven (lost answers asked again), then they are re-downloads', async () => {
    const { serving, clock } = setup();
    await serving.guard('blocks', answer(0))(new Uint8Array(0), 'a');
    const batch = (from: number, count = 32) => Array.from({ length: count }, (_, i) => ({ bytes: 25_000, height: from + i, theirs: false }));
    // A 1,600-block chain: the allowance is 256 blocks (an eighth of the chain would be 200).
    // A batch a second: the byte budget, which each blocks answer is charged as it is made, never runs dry.
    for (let b = 0; b < 50; b++, clock.ms += 1000) assert.equal(serving.serveBlocks('a', batch(b * 32), 1_600), 32, 'each block once: all served');
    for (let b = 0; b < 8; b++, clock.ms += 1000) assert.equal(serving.serveBlocks('a', batch(b * 32), 1_600), 32, 'asked again: forgiven up to 256 blocks');
    assert.equal(typeof serving.serveBlocks('a', batch(0), 1_600), 'object', '32 of them again are more than the trickle holds: busy');
    assert.equal(serving.serveBlocks('a', batch(0, 1), 1_600), 1, 'one at a time, as the asker then asks them (node/asked-heights.ts)');
    serving.disconnected('a');
    assert.equal(serving.serveBlocks('a', batch(0), 1_600), 32, 'a new connection starts a new record');
  });

  it('a blocks answer that ends after its asker left marks nothing: the budgets of peers gone keep no record of heights', async () => {
    const { serving, peers, records } = setup();
    // What the budgets of each peer keep of the heights served to it on its connection.
    const kept = () => [...(serving as unknown as { budgets: Map<string, { served: Uint8Array }> }).budgets.values()].reduce((sum, b) => sum + b.served.byteLength, 0);
    for (let i = 0; i < 50; i++) {
      const peer = `gone-${i}`;
      records.connected(peer, { direction: 'inbound', remoteAddr: `/ip4/203.0.113.${i}/tcp/1/p2p/${peer}` }, 0);
      let read!: () => void;
      const reading = new Promise<void>((resolve) => (read = resolve));
      // The blocks responder: the store is read, then the budgets asked (node/chain-server.ts).
      const blocks = serving.guard('blocks', async (_req, asker) => {
        await reading;
        serving.serveBlocks(asker, [{ bytes: 25_000, height: 8_000_000, theirs: false }], 8_000_000);
        return new Uint8Array(25_000);
      });
      const answered = blocks(new Uint8Array(0), peer);
      records.disconnected(peer); // it hangs up while its blocks are read
      peers.disconnected(peer);
      serving.disconnected(peer);
      read();
      await answered;
    }
    assert.equal(kept(), 0);
  });

  it('identities cost nothing: one from the subnet of one that spent its budget, connected with it or after it left, starts from that spent budget; one from another subnet, and loopback, from a full one', async () => {
    const { clock, serving, peers, records } = setup({ uploadBytesPerSec: 1_000_000, burstBytes: 4_000_000 });
    const connect = (peer: string, ip: string) => {
      const remoteAddr = `/ip4/${ip}/tcp/1/p2p/${peer}`;
      records.connected(peer, { direction: 'inbound', remoteAddr }, clock.ms);
      peers.connectedFrom(peer, remoteAddr);
    };
    const leave = (peer: string) => {
      records.disconnected(peer);
      peers.disconnected(peer);
      serving.disconnected(peer);
    };
    const blocks = serving.guard('blocks', answer(1_000_000));
    const taken = async (peer: string) => {
      let n = 0;
      while (n < 100 && !isBusy(await blocks(new Uint8Array(0), peer))) n++;
      return n;
    };
    connect('s1', '203.0.113.7');
    connect('s2', '203.0.113.8');
    assert.equal(await taken('s1'), 5, 'the burst (4 MB), and one answer of debt');
    assert.equal(await taken('s2'), 0, 'connected at the same time from its /24: the same budget, spent');
    leave('s1');
    leave('s2');
    connect('s3', '203.0.113.7');
    assert.ok(isBusy(await blocks(new Uint8Array(0), 's3')), 'a new identity from that IP: no fresh burst');
    connect('h', '198.51.100.9');
    assert.equal(await taken('h'), 5, 'another IP: its own burst');
    connect('l1', '127.0.0.1');
    assert.equal(await taken('l1'), 5);
    leave('l1');
    connect('l2', '127.0.0.1');
    assert.equal(await taken('l2'), 5, 'loopback is not limited (a local operator\'s tools)');
    clock.ms += 20_000;
    assert.ok(!isBusy(await blocks(new Uint8Array(0), 's3')), 'the spent budget refills at its rate');
  });
});

describe('serving budgets remembered', () => {
  it('past 4,096 budgets remembered, those of peers gone are dropped, never a connected peer\'s: it does not start again on a fresh burst', async () => {
    // From a review: the oldest budgets were dropped whoever they were, so a connected peer whose
    // budget was spent started again on a fresh one once 4,096 identities had asked.
    const { clock, serving, records } = setup();
    const status = serving.guard('status', answer(100));
    const { burst } = DEFAULT_SERVING_LIMITS.requests.status;
    for (let i = 0; i < burst; i++) assert.ok(!isBusy(await status(new Uint8Array(0), 'a')));
    assert.ok(isBusy(await status(new Uint8Array(0), 'a')), 'its burst spent');
    for (let i = 0; i < 4_200; i++) {
      const peer = `passer-${i}`;
      records.connected(peer, { direction: 'inbound', remoteAddr: `/ip4/198.18.${i >> 8}.${i & 255}/tcp/1/p2p/${peer}` }, clock.ms);
      await status(new Uint8Array(0), peer);
      records.disconnected(peer);
      serving.disconnected(peer);
    }
    clock.ms += 1_000; // past its retry-after: one request's worth refilled
    assert.ok(!isBusy(await status(new Uint8Array(0), 'a')));
    assert.ok(isBusy(await status(new Uint8Array(0), 'a')), 'still on its spent budget, not a fresh burst');
  });
});

describe('serving budgets shared by address group', () => {
  function grouped(limits: Partial<ServingLimits> = {}) {
    const t = setup(limits);
    const connect = (peer: string, remoteAddr: string) => {
      t.records.connected(peer, { direction: 'inbound', remoteAddr: `${remoteAddr}/tcp/1/p2p/${peer}` }, t.clock.ms);
      t.peers.connectedFrom(peer, `${remoteAddr}/tcp/1/p2p/${peer}`);
    };
    const leave = (peer: string) => {
      t.records.disconnected(peer);
      t.peers.disconnected(peer);
      t.serving.disconnected(peer);
    };
    return { ...t, connect, leave };
  }

  it('eight identities of one /24 share one share of the upload and one burst; a lone honest peer elsewhere is served as if they were one', async () => {
    // From a review: the upload was divided by active identities and every budget was per
    // identity, so a /24 with 8 connections had 8 shares, 8 bursts and 8 times every request budget.
    const { clock, serving, connect } = grouped({ uploadBytesPerSec: 8_000_000, burstBytes: 1_000_000 });
    const blocks = serving.guard('blocks', answer(100_000));
    const sybils = Array.from({ length: 8 }, (_, i) => `sybil-${i}`);
    sybils.forEach((peer, i) => connect(peer, `/ip4/203.0.113.${10 + i}`));
    connect('honest', '/ip4/198.51.100.9');
    const taken = new Map<string, number>();
    for (let tick = 0; tick < 100; tick++, clock.ms += 100) {
      for (const peer of ['honest', ...sybils]) {
        for (let n = 0; n < 20 && !isBusy(await blocks(new Uint8Array(0), peer)); n++) taken.set(peer, (taken.get(peer) ?? 0) + 100_000);
      }
    }
    const sybilBytes = sybils.reduce((sum, p) => sum + (taken.get(p) ?? 0), 0);
    const honest = taken.get('honest') ?? 0;
    // Two groups active: 4 MB/s each over 10 s, and a burst each.
    assert.ok(honest >= 39_000_000, `the honest peer took ${honest} bytes`);
    assert.ok(sybilBytes <= 40_000_000 + 1_000_000 + 8 * 100_000, `the /24 together took ${sybilBytes} bytes`);
  });

  it('a lone honest peer in each of two groups: each its own budget, as before', async () => {
    const { serving, connect } = grouped({ burstBytes: 4_000_000, uploadBytesPerSec: 1_000_000 });
    const blocks = serving.guard('blocks', answer(1_000_000));
    connect('x', '/ip4/192.0.2.1');
    connect('y', '/ip4/198.51.100.1');
    for (const peer of ['x', 'y']) {
      let n = 0;
      while (n < 100 && !isBusy(await blocks(new Uint8Array(0), peer))) n++;
      assert.equal(n, 5, `${peer}: its burst (4 MB), and one answer of debt`);
    }
  });

  it('IPv6: identities from fresh /64s of one /48, connected at once or one after another, share one budget', async () => {
    const { serving, connect, leave } = grouped({ burstBytes: 4_000_000, uploadBytesPerSec: 1_000_000 });
    const status = serving.guard('status', answer(100));
    const { burst } = DEFAULT_SERVING_LIMITS.requests.status;
    let served = 0;
    for (let i = 0; i < 64; i++) {
      const peer = `v6-${i}`;
      connect(peer, `/ip6/2001:db8:1:${i.toString(16)}::1`);
      while (!isBusy(await status(new Uint8Array(0), peer))) served++;
      leave(peer);
    }
    assert.equal(served, burst, 'one burst for the /48, not one for each /64');
    connect('other', '/ip6/2001:db8:2::1');
    assert.ok(!isBusy(await status(new Uint8Array(0), 'other')), 'another /48: its own');
  });
});
