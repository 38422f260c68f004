/**
 * A snapshot sync's join round goes on from the headers an earlier round staged (node/staged-headers.ts):
 * it fetches only what the new peer's chain does not share with them, every header it fetches
 * checked as before (links, proof of work, ASERT targets, timestamps, the checkpoint), and the
 * peer's claim held against the work of the whole chain. A round used to clear them and fetch
 * every header from genesis again (a million headers are 152 MB), however the last round ended.
 */
import assert from 'node:assert/strict';
import { bytesEqual } from '../ledger/bytes.ts';
import type { Block, BlockHeader } from '../ledger/block.ts';
import { ChainDB } from '../ledger/chaindb.ts';
import { MemoryDisk } from '../ledger/kv-memory.ts';
import { Chain } from '../consensus/chain.ts';
import { ConsensusError } from '../consensus/errors.ts';
import { nextTarget } from '../consensus/difficulty.ts';
import { blockWork } from '../consensus/pow.ts';
import type { Checkpoint } from '../consensus/header-rules.ts';
import { SnapshotJoin, type JoinOutcome } from '../node/snapshot-sync.ts';
import { pivotHeight } from '../node/snapshots.ts';
import type { PeerManager } from '../node/peers.ts';
import { networkNames } from '../node/protocols.ts';
import { decodeGetHeaderRange, encodeHeaders, type Status } from '../node/wire.ts';
import { testKey, testParams } from './helpers/fixtures.ts';
import { asParent, mineChain, mineChild } from './helpers/mining.ts';

const params = testParams();
const now = params.timestamp + 100_000_000;
const INTERVAL = 20;
const DEPTH = 20;

describe('snapshot sync: a join round goes on from the headers staged before', function () {
  this.timeout(120_000);
  let a: Block[];
  let db: ChainDB;

  before(async () => {
    const scratch = await ChainDB.open(new MemoryDisk().open(), params);
    a = mineChain(params, asParent(scratch.genesis), 4_600, { miner: testKey(2).address });
    await scratch.close();
  });
  beforeEach(async () => {
    db = await ChainDB.open(new MemoryDisk().open(), params);
  });
  afterEach(() => db.close());

  /** One join round with `peer` serving `headers` (heights 1 on) and claiming their work; no peer serves the pivot's body, so a round that takes a pivot ends 'later'. */
  async function round(chain: Chain, headers: readonly BlockHeader[]): Promise<{ outcome: JoinOutcome | Error; served: number }> {
    let served = 0;
    const claimed: Status = { genesis: db.genesis.header.hash, height: headers.length, tipHash: headers.at(-1)!.hash, totalWork: workOf(headers), prunedHeight: 0 };
    const join = new SnapshotJoin({
      request: async (_peer, _protocol, body) => {
        const { from, count } = decodeGetHeaderRange(body);
        const answer = headers.slice(from - 1, from - 1 + count);
        served += answer.length;
        return encodeHeaders(answer);
      },
      requestMany: async () => [],
      names: networkNames(db.genesis.header.hash),
      chain,
      peers: { isBanned: () => false, penalize: () => {} } as unknown as PeerManager,
      clock: () => now,
      env: { monotonic: () => 0 },
      interval: INTERVAL,
      candidates: () => [],
      onHeaders: () => {},
      log: () => {},
    });
    const outcome = await join.run({ peer: 'peer', status: claimed }).catch((err: Error) => err);
    return { outcome, served };
  }

  function workOf(headers: readonly BlockHeader[]): bigint {
    return headers.reduce((sum, h) => sum + blockWork(h.target), blockWork(db.genesis.header.target));
  }

  /** The staged headers, all of them: one chain from block 1 (each linked to the one before). */
  async function stagedChain(): Promise<Uint8Array[]> {
    const staged = await db.join.stagedRange(1, 1_000_000);
    staged.forEach((s, i) => assert.equal(s.height, i + 1, 'staged headers of consecutive heights'));
    return staged.map((s) => s.hash);
  }

  const open = (checkpoint?: Checkpoint) => Chain.open(db, { clock: () => now, reorgDepth: DEPTH, window: 4, checkpoint });

  it('a second round fetches only the headers past those staged, and takes its pivot on them', async () => {
    const chain = await open();
    const first = await round(chain, a.slice(0, 4_500).map((b) => b.header));
    assert.equal(first.outcome, 'later');
    assert.ok(first.served >= 4_500, `the first round fetched every header (${first.served})`);
    assert.equal((await stagedChain()).length, 4_480, 'staged up to the highest pivot possible');

    const second = await round(chain, a.map((b) => b.header));
    assert.equal(second.outcome, 'later', 'the claim held against the whole chain: a pivot taken');
    assert.ok(second.served <= 120 + 16, `the second round fetched ${second.served} headers, not 4,600 (the 120 past those staged, and 16 below them to find the fork)`);
    assert.equal((await db.join.state())?.height, 4_580);
    const staged = await stagedChain();
    assert.equal(staged.length, 4_580);
    assert.ok(staged.every((hash, i) => bytesEqual(hash, a[i]!.header.hash)), 'the staged headers are the chain');
  });

  it("a peer whose chain forks below the staged headers: theirs above the fork replace them", async () => {
    const chain = await open();
    assert.equal((await round(chain, a.slice(0, 4_500).map((b) => b.header))).outcome, 'later');
    const b = [...a.slice(0, 3_000), ...mineChain(params, asParent(a[2_999]!), 1_700, { miner: testKey(3).address })].map((x) => x.header);
    const second = await round(chain, b);
    assert.equal(second.outcome, 'later');
    const state = await db.join.state();
    assert.equal(state?.height, 4_680);
    assert.ok(bytesEqual(state.hash, b[4_679]!.hash), 'the pivot is on its chain');
    const staged = await stagedChain();
    assert.equal(staged.length, 4_680);
    assert.ok(staged.every((hash, i) => bytesEqual(hash, b[i]!.hash)), "the staged headers are its chain, the other's above the fork gone");
  });

  it('a peer forking far below the staged headers: the fork found by halving the gap, not by walking up from genesis', async () => {
    const chain = await open();
    const long = mineChain(params, asParent(a.at(-1)!), 17_400, { miner: testKey(2).address });
    const first = [...a, ...long].map((x) => x.header); // 22,000
    assert.equal((await round(chain, first)).outcome, 'later');
    const b = [...first.slice(0, 10_000), ...mineChain(params, asParent([...a, ...long][9_999]!), 12_100, { miner: testKey(3).address }).map((x) => x.header)];
    const second = await round(chain, b);
    assert.equal(second.outcome, 'later');
    assert.ok(second.served <= 12_100 + 2_000 + 20, `${second.served} headers fetched: those past the fork, a range below it, a few single ones`);
    const staged = await stagedChain();
    assert.equal(staged.length, pivotHeight(b.length, INTERVAL, DEPTH));
    assert.ok(staged.every((hash, i) => bytesEqual(hash, b[i]!.hash)), 'the staged headers are its chain');
  });

  it('checks the headers after the staged ones as from genesis: the ASERT target, the median time past', async () => {
    const chain = await open();
    assert.equal((await round(chain, a.slice(0, 4_500).map((b) => b.header))).outcome, 'later');
    const parent = a[4_479]!;
    const expected = nextTarget(params, parent.header, a[0]!.header.timestamp);
    const wrongTarget = mineChild(params, asParent(parent), [], { miner: testKey(4).address, target: expected / 2n });
    const late = await round(chain, [...a.slice(0, 4_480).map((x) => x.header), wrongTarget.header]);
    assert.ok(late.outcome instanceof ConsensusError && /target/i.test(late.outcome.code), `a wrong target refused: ${String(late.outcome)}`);
    // Not after the median of the last 11 staged timestamps (heights 4,470 to 4,480: 4,475's).
    const early = mineChild(params, asParent(parent), [], { miner: testKey(4).address, timestamp: a[4_474]!.header.timestamp });
    const median = await round(chain, [...a.slice(0, 4_480).map((x) => x.header), early.header]);
    assert.ok(median.outcome instanceof ConsensusError && /time/i.test(median.outcome.code), `a timestamp at the median refused: ${String(median.outcome)}`);
    assert.ok(median.served < 100, 'both from the staged headers on');
  });

  it('headers staged before a checkpoint was given that contradict it are checked again, and the peer refused', async () => {
    await open().then((chain) => round(chain, a.slice(0, 4_500).map((b) => b.header)));
    const b = [...a.slice(0, 3_000), ...mineChain(params, asParent(a[2_999]!), 1_000, { miner: testKey(3).address })].map((x) => x.header);
    const chain = await open({ height: 3_500, hash: b[3_499]!.hash }); // the node started again with --checkpoint
    const again = await round(chain, a.slice(0, 4_500).map((x) => x.header));
    assert.ok(again.outcome instanceof ConsensusError && /checkpoint/i.test(again.outcome.message), `its header at the checkpoint's height refused: ${String(again.outcome)}`);
    assert.equal((await stagedChain()).length, 3_499, "the staged headers from the checkpoint's height on dropped");
  });
});
