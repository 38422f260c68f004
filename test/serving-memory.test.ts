/**
 * What answers the node holds in memory for its askers (node/serving.ts, node/chain-server.ts):
 * a blocks answer is cut to the asker's byte budget however many of its requests arrive at once,
 * a request counts in flight until its answer is sent, and the node as a whole holds at most
 * `maxHeldAnswerBytes` of answers, reads of blocks at their largest included.
 */
import assert from 'node:assert/strict';
import type { Env } from '../node/env.ts';
import { PeerManager } from '../node/peers.ts';
import { NetworkStats, PeerRecords } from '../node/peer-records.ts';
import { HELD_RETRY_MS, Serving } from '../node/serving.ts';
import { DEFAULT_SERVING_LIMITS, type ServingLimits } from '../node/serving-limits.ts';
import { serveChain } from '../node/chain-server.ts';
import { isBusy, type Busy, type Responder } from '../node/transport.ts';
import { networkNames } from '../node/protocols.ts';
import type { Chain } from '../consensus/chain.ts';
import { encodeGetBlocks } from '../node/wire.ts';

const MIB = 1 << 20;

function setup(limits: Partial<ServingLimits> = {}) {
  let ms = 1_000_000;
  const clock = {
    get ms() {
      return ms;
    },
    advance: (by: number) => (ms += by),
  };
  const peers = new PeerManager(() => Math.floor(ms / 1000));
  const records = new PeerRecords();
  const serving = new Serving({ env: { monotonic: () => ms, now: () => ms } as Env, peers, records, stats: new NetworkStats(), limits });
  for (let i = 1; i <= 60; i++) records.connected(`p${i}`, { direction: 'inbound', remoteAddr: `/ip4/10.0.${i}.1/tcp/1/p2p/p${i}` }, ms);
  return { clock, serving };
}

/** The blocks responder's part in this (node/chain-server.ts): 64 blocks of 1 MiB read, then cut where the budgets say. */
function blocksOf(serving: Serving): Responder {
  return serving.guard('blocks', async (_request, peer) => {
    await new Promise((resolve) => setImmediate(resolve)); // the store's read
    const frames = Array.from({ length: 64 }, () => new Uint8Array(MIB));
    const admitted = serving.serveBlocks(peer, frames.map((f, i) => ({ bytes: f.byteLength, height: 100 + i, theirs: false })), 1_000);
    return typeof admitted === 'number' ? frames.slice(0, admitted) : admitted;
  });
}

/** The same with chain-server's room asked first (node/chain-server.ts): 64 blocks of at most 1 MiB. */
function blocksWithRoom(serving: Serving): Responder {
  return serving.guard('blocks', async (request, peer, sent) => {
    const release = serving.roomForBlocks(peer, 64, MIB);
    if (!release) return { busy: true, retryAfterMs: HELD_RETRY_MS };
    try {
      await new Promise((resolve) => setImmediate(resolve));
      const frames = Array.from({ length: 64 }, () => new Uint8Array(MIB));
      const admitted = serving.serveBlocks(peer, frames.map((f, i) => ({ bytes: f.byteLength, height: 100 + i, theirs: false })), 1_000);
      return typeof admitted === 'number' ? frames.slice(0, admitted) : admitted;
    } finally {
      release();
    }
  });
}

const bytesOf = (answers: readonly (Uint8Array | Uint8Array[] | Busy)[]) => answers.reduce((sum, a) => sum + (Array.isArray(a) ? a.reduce((s, f) => s + f.byteLength, 0) : 0), 0);

/** A transport's `sent`: settled by the test, as a peer reading its answers would. */
function unsent(): { sent: Promise<void>; send: () => void } {
  let send!: () => void;
  const sent = new Promise<void>((resolve) => (send = resolve));
  return { sent, send };
}

describe('answers held in memory', () => {
  it('four blocks requests at once from one peer, each for 64 blocks of 1 MiB: one answer is made, the others are busy, not 256 MiB', async () => {
    const { serving } = setup();
    const respond = blocksOf(serving);
    const answers = await Promise.all([1, 2, 3, 4].map(() => respond(new Uint8Array(0), 'p1')));
    const bytes = bytesOf(answers);
    assert.equal(bytes, 64 * MIB, `${bytes / MIB} MiB made for one peer at once`);
    assert.equal(answers.filter((a) => isBusy(a)).length, 3, 'those past its budget are answered busy, not cut short');
  });

  it('a request counts in flight until its answer is sent: a peer that stops reading gets nothing more made for it', async () => {
    const { clock, serving } = setup();
    const respond = blocksOf(serving);
    const { inFlight } = DEFAULT_SERVING_LIMITS.requests.blocks;
    const never = unsent();
    for (let i = 0; i < inFlight; i++) {
      assert.ok(!isBusy(await respond(new Uint8Array(0), 'p1', never.sent)), `request ${i}`);
      clock.advance(10_000); // its byte budget refilled
    }
    assert.ok(isBusy(await respond(new Uint8Array(0), 'p1', never.sent)), 'its answers still unsent');
    assert.ok(serving.heldAnswerBytes >= inFlight * MIB, 'and held');
    never.send();
    await never.sent;
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(serving.heldAnswerBytes, 0, 'sent: held no longer');
    clock.advance(10_000);
    assert.ok(!isBusy(await respond(new Uint8Array(0), 'p1')), 'served again once they were sent');
  });

  it('the node holds at most maxHeldAnswerBytes of answers, all askers together; past it a request is answered busy, at no cost to the asker', async () => {
    const { serving } = setup({ maxHeldAnswerBytes: 64 * MIB });
    const respond = blocksOf(serving);
    const never = unsent();
    let peer = 1;
    for (; serving.heldAnswerBytes < 64 * MIB && peer <= 10; peer++) assert.ok(!isBusy(await respond(new Uint8Array(0), `p${peer}`, never.sent)));
    assert.ok(serving.heldAnswerBytes >= 64 * MIB, 'answers not yet sent are held: a burst for each of a few peers');
    const refused = (await respond(new Uint8Array(0), `p${peer}`)) as Busy;
    assert.ok(isBusy(refused), 'a peer with its whole budget is answered busy while the node holds its limit');
    assert.equal(refused.retryAfterMs, HELD_RETRY_MS);
    never.send();
    await new Promise((resolve) => setImmediate(resolve));
    assert.ok(!isBusy(await respond(new Uint8Array(0), `p${peer}`)), 'and served once they were sent');
  });

  it('blocks are read only with room for them at their largest, node-wide: past it the request is busy and nothing is read', async () => {
    const { serving } = setup({ maxHeldAnswerBytes: 65 * MIB });
    let responder: Responder | undefined;
    let reads = 0;
    const chain = {
      params: { maxBlockBytes: MIB },
      db: {
        async getBlocksBytes(hashes: readonly Uint8Array[]) {
          reads++;
          return hashes.map(() => new Uint8Array(100));
        },
      },
      getEntry: () => undefined,
      tip: { height: 10 },
    } as unknown as Chain;
    await serveChain({
      serve: async (name, _protocol, respond) => void (name === 'blocks' && (responder = serving.guard('blocks', respond))),
      names: networkNames(new Uint8Array(32)),
      chain,
      peers: new PeerManager(() => 0),
      status: () => ({}) as never,
      announced: () => undefined,
      admitBlocks: (peer, blocks, height) => serving.serveBlocks(peer, blocks, height),
      roomForBlocks: (peer, count, eachBytes) => serving.roomForBlocks(peer, count, eachBytes),
    });
    const request = encodeGetBlocks(Array.from({ length: 64 }, (_, i) => new Uint8Array(32).fill(i)));
    const never = unsent();
    const first = responder!(request, 'p1', never.sent);
    const second = (await responder!(request, 'p2')) as Busy;
    assert.ok(isBusy(second), 'no room for a second read while the first, of 64 MiB at most, is under way');
    assert.equal(second.retryAfterMs, HELD_RETRY_MS);
    const answer = await first;
    assert.ok(Array.isArray(answer) && answer.length === 64);
    assert.equal(reads, 1);
    assert.equal(serving.heldAnswerBytes, 64 * 100, 'the read\'s room given back: what is held is the answer, unsent');
    assert.ok(Array.isArray(await responder!(request, 'p2')), 'once read, the next is');
    assert.equal(reads, 2);
  });
  it('one address group that never reads holds at most a quarter of the bound: every other asker is still served, status and blocks', async () => {
    // From the review of this stop's diff: one identity sent four getBlocks of a 1 MiB block, one
    // a second, and read nothing; it held all 256 MiB until the answer deadline, and every request
    // of every other peer, status included, was answered busy.
    const { clock, serving } = setup();
    const respond = blocksWithRoom(serving);
    const never = unsent();
    let made = 0;
    for (let i = 0; i < 4; i++) {
      if (!isBusy(await respond(new Uint8Array(0), 'p1', never.sent))) made++;
      clock.advance(1_000); // its group's byte debt refilled
    }
    assert.equal(made, 1, 'a second 64 MiB for the same group waits until the first is written out');
    assert.ok(serving.heldAnswerBytes <= DEFAULT_SERVING_LIMITS.maxHeldAnswerBytes / 4);
    assert.ok(Array.isArray(await respond(new Uint8Array(0), 'p2')), "another group's blocks are served");
  });

  it('past the bound only blocks requests are refused: a status or headers answer is small, and refusing it stalls every sync', async () => {
    const { serving } = setup({ maxHeldAnswerBytes: 64 * MIB });
    const respond = blocksOf(serving);
    const never = unsent();
    for (let peer = 1; serving.heldAnswerBytes < 64 * MIB && peer <= 10; peer++) await respond(new Uint8Array(0), `p${peer}`, never.sent);
    assert.ok(serving.heldAnswerBytes >= 64 * MIB);
    const status = serving.guard('status', async () => new Uint8Array(80));
    const headers = serving.guard('headers', async () => new Uint8Array(1_000));
    assert.ok(!isBusy(await status(new Uint8Array(0), 'p20')), 'status answered');
    assert.ok(!isBusy(await headers(new Uint8Array(0), 'p21')), 'headers answered');
    assert.ok(isBusy(await respond(new Uint8Array(0), 'p22')), 'blocks still wait');
  });
});
