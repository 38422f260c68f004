/**
 * Issue 15 through real processes and real libp2p: a mining `cairn node` A with a chain of full-ish
 * blocks, an honest `cairn node` syncing from it, and beside it a free rider written from
 * docs/PROTOCOL.md alone (test/helpers/spec-peer.ts) that says it has A's chain and downloads it
 * from genesis again and again, waiting out every busy answer as the spec asks. A must answer it
 * "busy, retry later" (not a reset), show it throttled (getPeers, what `cairn peers` prints), serve it no more than its
 * trickle, and cut it off; the honest node must sync, unpunished and unthrottled.
 */
import assert from 'node:assert/strict';
import { multiaddr } from '@multiformats/multiaddr';
import { toHex } from '../../ledger/bytes.ts';
import { encodeAddress } from '../../ledger/keys.ts';
import { signTransaction } from '../../ledger/transaction.ts';
import { libsecp256k1Signer } from '../../ledger/signature-backends.js';
import { DEFAULT_SERVING_LIMITS } from '../../node/serving-limits.ts';
import { testKey } from '../helpers/fixtures.ts';
import { answer, ask, busyRetryAfter, getBlocksBytes, getHeadersBytes, headerHashes, specHost, statusBytes, type SpecHost } from '../helpers/spec-peer.ts';
import { clusters, report, secs, waitFor, type Cluster, type NodeProc } from '../helpers/cluster.ts';
import type { PeerResult } from '../../node/rpc-types.ts';
import { RPC_DOC } from '../../node/rpc-doc.ts';
import { validate } from '../../node/json-schema.ts';

const SENDERS = Array.from({ length: 80 }, (_, i) => testKey(800 + i));
const TXS_PER_SENDER = 50;
const native = libsecp256k1Signer();

/**
 * 4,000 transfers (660 KB) in A's chain: more than the trickle's burst, so that a peer
 * re-downloading the chain is slowed to the trickle before it is cut off (with coinbase-only
 * blocks of 180 bytes it would be cut off first).
 */
async function fill(c: Cluster, a: NodeProc): Promise<void> {
  const txs = SENDERS.flatMap((k) =>
    Array.from({ length: TXS_PER_SENDER }, (_, n) =>
      toHex(signTransaction({ chainId: c.params.chainId, to: testKey(900).address, amount: 1n, fee: 1n, nonce: BigInt(n) }, k.privateKey, native ? { publicKey: k.publicKey, sign: native.sign } : undefined).bytes),
    ),
  );
  // The mempool takes 64 pending nonces per sender: all 50 of each at once, 2,000 a call.
  for (let i = 0; i < txs.length; i += 2000) {
    const r = await a.call('sendRawTransactions', { txs: txs.slice(i, i + 2000) });
    assert.equal(r.rejected.length, 0, JSON.stringify(r.rejected.slice(0, 3)));
  }
}

/** The free rider's doings, as it saw them. */
interface Ride {
  startedAt: number;
  passes: number;
  busy: number;
  /** Block bytes it received, every one of a block it said it had. */
  bytes: number;
  blocks: number;
  cutOffAt: number | undefined;
  lastRetryAfter: number;
  /**
   * Resolves once the test has seen A show it throttled. After its first busy answer the rider
   * waits for that too (at most 8 s: A shows a peer throttled for 10 s after a busy answer), as it
   * may wait longer than it was told: otherwise, on a loaded machine, A could cut it off between
   * two of the test's polls and the throttled state would never be seen.
   */
  shown: Promise<void>;
}

describe('e2e: a free rider beside an honest syncing node', function () {
  this.timeout(180_000);
  const cluster = clusters();
  let rider: SpecHost | undefined;
  afterEach(async () => {
    await rider?.stop();
    rider = undefined;
  });

  it('is answered busy, shown throttled, held to its trickle and cut off; the honest node syncs unpunished', async () => {
    const c = cluster({ name: 'free-rider', alloc: SENDERS.map((k) => ({ address: k.address, balance: 1_000_000n })) });
    const a = await c.startNode('a', { coinbase: encodeAddress(testKey(810).address) });
    await fill(c, a);
    const { value: height } = await waitFor('A at height 400 with every transfer mined', 60_000, async () => {
      const s = await a.status();
      return s.height >= 400 && s.mempool === 0 ? s.height : undefined;
    }, 200);

    // The honest node alone first: what its sync takes here, for the report.
    const alone = c.node('alone');
    let t = Date.now();
    await alone.start({ bootstrap: [a.addr] });
    await waitFor('the lone honest node to reach A\'s height', 60_000, async () => (await alone.status()).height >= height, 50);
    const aloneMs = Date.now() - t;
    await alone.stop();

    // The free rider: it says it has A's chain (A's status as its own) and asks for it all the same.
    // A peer of the network speaks gossipsub too (one that does not is dropped after 10 s).
    rider = await specHost({ gossip: true });
    for (const topic of ['blocks/1', 'cblocks/1', 'txs/2']) rider.services.pubsub!.subscribe(`/cairn/${c.ns}/${topic}`);
    const st = await a.status();
    const genesis = Buffer.from(st.genesis, 'hex');
    const ns = c.ns;
    await answer(rider, `/cairn/${ns}/status/2`, () => statusBytes(genesis, st.height, Buffer.from(st.head, 'hex'), BigInt(st.totalWork)));
    await rider.dial(multiaddr(a.addr));
    let markShown!: () => void;
    const shown = new Promise<void>((resolve) => (markShown = resolve));
    const ride: Ride = { startedAt: Date.now(), passes: 0, busy: 0, bytes: 0, blocks: 0, cutOffAt: undefined, lastRetryAfter: 0, shown };
    const riding = freeRide(rider, a.addr, ns, genesis, ride);

    // Meanwhile an honest node syncs from A.
    const honest = c.node('honest');
    t = Date.now();
    await honest.start({ bootstrap: [a.addr] });
    // What A says of the free rider meanwhile (getPeers, what `cairn peers` prints), until the end.
    const throttledSeen: PeerResult[] = [];
    let watching = true;
    const watch = (async () => {
      while (watching) {
        const peer = (await a.call('getPeers', {})).find((p) => p.id === rider!.peerId.toString());
        if (peer?.throttled) {
          throttledSeen.push(peer);
          markShown();
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    await waitFor('the honest node to reach A\'s height', 60_000, async () => (await honest.status()).height >= height, 100);
    const besideMs = Date.now() - t;
    const atA = (await a.call('getPeers', {})).find((p) => p.id === honest.peerId)!;
    assert.equal(atA.banScore, 0, 'the honest node is not penalised');
    assert.equal(atA.direction, 'inbound');

    const riderId = rider.peerId.toString();
    const { value: ban } = await waitFor('A to cut the free rider off', 90_000, () => a.logLines(/"msg":"banned peer/).find((l) => l.includes(riderId)), 100);
    ride.cutOffAt = (JSON.parse(ban) as { time: number }).time;
    await riding;
    watching = false;
    await watch;
    assert.match(ban, /re-downloads blocks it has/);
    // The penalty that ended in the ban is in the log too, with its score and the peer's total.
    const penalties = a.logLines(/"msg":"penalised peer"/).map((l) => JSON.parse(l) as { peer: string; score: number; total: number; reason: string });
    assert.ok(
      penalties.some((p) => p.peer === riderId && p.score === 100 && p.total >= 100 && /re-downloads blocks it has/.test(p.reason)),
      `the ban's penalty is logged: ${JSON.stringify(penalties)}`,
    );
    assert.ok(ride.busy > 0, `the free rider was answered busy (${JSON.stringify(ride)})`);
    // Every block it asked for it had said it had: all it got is the trickle's burst, the trickle,
    // and one block of debt (an answer is sent once the trickle holds it less a block; a block is at most maxBlockBytes).
    const seconds = (ride.cutOffAt! - ride.startedAt) / 1000;
    const allowed = DEFAULT_SERVING_LIMITS.redundantBurstBytes + DEFAULT_SERVING_LIMITS.redundantBytesPerSec * seconds + c.params.maxBlockBytes;
    assert.ok(ride.bytes <= allowed, `${ride.bytes} bytes in ${seconds.toFixed(1)} s, allowed ${Math.round(allowed)}`);
    assert.ok(throttledSeen.length > 0, 'A showed the free rider throttled');
    assert.equal(throttledSeen[0]!.direction, 'inbound');
    assert.ok(throttledSeen.at(-1)!.bytesOut > 0);
    // What the OpenRPC document says getPeers answers, checked on peers that have its every field set.
    const peersDoc = RPC_DOC.methods.find((m) => m.name === 'getPeers')!;
    assert.deepEqual(validate([atA, throttledSeen.at(-1)], peersDoc.result.schema, RPC_DOC.components.schemas), []);
    report(`A at height ${height}: the honest node synced in ${secs(aloneMs)} alone, ${secs(besideMs)} beside the free rider (not asserted: wall time on a shared machine)`);
    report(`the free rider: ${ride.blocks} blocks (${ride.passes} whole passes), ${Math.round(ride.bytes / 1024)} KiB in ${seconds.toFixed(1)} s (allowed ${Math.round(allowed / 1024)} KiB), ${ride.busy} busy answers (last: retry after ${ride.lastRetryAfter} ms), then cut off`);
    report(`getPeers on A, the free rider: ${JSON.stringify(throttledSeen.at(-1))}`);
  });
});

/** Downloads the chain from genesis, 64 blocks a request (fewer once told busy), again and again, until told A has cut it off. */
async function freeRide(host: SpecHost, addr: string, ns: string, genesis: Uint8Array, ride: Ride): Promise<void> {
  const started = Date.now();
  while (ride.cutOffAt === undefined && Date.now() - started < 150_000) {
    try {
      const [headers] = await ask(host, addr, `/cairn/${ns}/headers/1`, getHeadersBytes([genesis], 2000));
      if (busyRetryAfter(headers!) !== undefined) {
        await pause(ride, busyRetryAfter(headers!)!);
        continue;
      }
      const hashes = headerHashes(headers!);
      // Fewer after each busy answer: re-downloads of more than A's trickle holds are never served.
      let take = 64;
      for (let i = 0; i < hashes.length; ) {
        const frames = await ask(host, addr, `/cairn/${ns}/blocks/1`, getBlocksBytes(hashes.slice(i, i + take)), { many: true });
        const wait = frames.length === 1 ? busyRetryAfter(frames[0]!) : undefined;
        if (wait !== undefined) {
          take = Math.max(1, take >> 1);
          await pause(ride, wait);
          continue;
        }
        ride.bytes += frames.reduce((s, f) => s + f.length, 0);
        ride.blocks += frames.length;
        i += frames.length;
      }
      ride.passes++;
    } catch {
      // Refused or reset: A has hung up. It tries again, as such a peer would.
      await new Promise((r) => setTimeout(r, 250));
      await host.dial(multiaddr(addr), { signal: AbortSignal.timeout(3000) }).catch(() => undefined);
    }
  }
}

async function pause(ride: Ride, ms: number): Promise<void> {
  ride.busy++;
  ride.lastRetryAfter = ms;
  await new Promise((r) => setTimeout(r, ms));
  if (ride.busy === 1) await Promise.race([ride.shown, new Promise((r) => setTimeout(r, 8000))]);
}
