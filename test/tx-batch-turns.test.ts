/**
 * Gossiped transaction batches under a hostile peer (node/tx-batch-turns.ts, node/gossip.ts): one
 * validation at a time per address group, a bounded few waiting, the rest ignored unpunished.
 */
import assert from 'node:assert/strict';
import { bytesEqual } from '../ledger/bytes.ts';
import { Mempool } from '../ledger/mempool.ts';
import { MemoryAccounts } from '../ledger/audit.ts';
import type { Account } from '../ledger/state.ts';
import { decodeTransaction, type Transaction } from '../ledger/transaction.ts';
import { Gossip } from '../node/gossip.ts';
import type { GossipOptions } from '../node/gossip-types.ts';
import type { Verdict } from '../node/transport.ts';
import { NetworkStats } from '../node/peer-records.ts';
import { FIRST_PEER_ROUND, TxSignatureVerifier } from '../node/tx-signatures.ts';
import { InlineVerifier } from '../node/inline-verifier.ts';
import { BATCHES_AT_ONCE_PER_GROUP, MAX_WAITING_BATCHES, MAX_WAITING_BATCH_BYTES, MAX_WAITING_BATCH_BYTES_IN_ALL, TxBatchTurns } from '../node/tx-batch-turns.ts';
import { admitTxBatch } from '../node/gossip-txs.ts';
import { MAX_TXS_PER_BATCH, encodeTxBatch } from '../node/wire.ts';
import { realEnv } from '../node/env.ts';
import { FUNDED_KEYS, afterTurns, testKey, transfer } from './helpers/fixtures.ts';
import { TEST_TOPICS, countingSignatures, peerTable, validatorsTransport } from './helpers/gossip-harness.ts';

const unfunded = testKey(44);

/** `count` transactions of `key`, one signed and the rest its copies with other amounts (ids of their own). */
function copies(key: ReturnType<typeof testKey>, count: number, nonce: bigint, from = 0): Transaction[] {
  const signed = transfer(key, testKey(45).address, 1n, nonce);
  return Array.from({ length: count }, (_, i) => {
    const bytes = signed.bytes.slice();
    new DataView(bytes.buffer).setBigUint64(45, BigInt(from + i + 2)); // the amount (1 + 4 + 20 + 20 bytes in)
    return decodeTransaction(bytes);
  });
}

/**
 * Gossip on a state where FUNDED_KEYS[0] has funds, whose reads of `held`'s account wait for
 * `release()`; its transaction validator, and the signatures it has had checked.
 */
function txGossip(held?: Uint8Array) {
  const accounts = new MemoryAccounts();
  accounts.set(FUNDED_KEYS[0]!.address, { balance: 1_000_000_000n, nonce: 0n });
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let heldReads = 0;
  const state = {
    async getAccount(address: Uint8Array): Promise<Account | undefined> {
      if (held && bytesEqual(address, held)) {
        heldReads++;
        await released;
      }
      return accounts.getAccount(address);
    },
  };
  const { signatures, verified } = countingSignatures();
  const mempool = new Mempool(state, { chainId: 7 }, {}, (tx) => signatures.checkTx(tx));
  const { transport, validators } = validatorsTransport();
  const { peers, records, connect } = peerTable();
  const stats = new NetworkStats();
  const names = TEST_TOPICS;
  new Gossip({ transport, env: realEnv, names, chain: { params: { maxBlockBytes: 1 << 20 } }, mempool, peers, records, stats, signatures, clock: () => 1_000, announceTx: () => {} } as unknown as GossipOptions).start();
  return { validate: validators.get('/txs')!, mempool, peers, stats, connect, release, heldReads: () => heldReads, verified };
}

/** Resolves `verdicts` as they settle; `settled()` counts those that have. */
function tally(verdicts: Promise<Verdict>[]) {
  let settled = 0;
  for (const v of verdicts) void v.then(() => settled++);
  return { settled: () => settled, all: () => Promise.all(verdicts) };
}

describe('Gossip: transaction batches under a hostile peer', function () {
  this.timeout(60_000);

  it('a flood of free junk batches is validated a few at a time per address group, the excess ignored unpunished: pending validations stay bounded', async () => {
    // From a review: a batch of 1,000 transactions from empty accounts is ignored with no score and
    // no signature checked, yet costs 30-65 ms of store reads; gossipsub starts a validation per
    // message without waiting for the last, so a peer sending 3-5 MB/s had the pending validations
    // (and the mempool's queue) grow without bound.
    const g = txGossip(unfunded.address);
    g.connect('flooder', '/ip4/203.0.113.5/tcp/4001');
    g.connect('flooder-too', '/ip4/203.0.113.77/tcp/4001'); // another identity of the same /24
    g.connect('honest', '/ip4/198.51.100.7/tcp/4001');
    const sent = 60;
    const junk = Array.from({ length: sent }, (_, i) => encodeTxBatch(copies(unfunded, MAX_TXS_PER_BATCH, 0n, i * MAX_TXS_PER_BATCH)));
    const flood = tally(junk.map((batch, i) => g.validate(i % 2 ? 'flooder' : 'flooder-too', batch)));
    for (let turn = 0; g.heldReads() === 0; turn++) {
      assert.ok(turn < 1000, 'the first batch reads its senders');
      await afterTurns(1);
    }
    await afterTurns(10);
    const waiting = Math.min(MAX_WAITING_BATCHES, Math.floor(MAX_WAITING_BATCH_BYTES / junk[0]!.byteLength));
    const atOnce = BATCHES_AT_ONCE_PER_GROUP;
    assert.equal(g.heldReads(), atOnce * MAX_TXS_PER_BATCH, 'a few batches admitted at a time: the others read nothing');
    assert.equal(flood.settled(), sent - atOnce - waiting, 'all but those validating and those waiting ignored at once');
    assert.equal(g.stats.ignoredTxBatches, sent - atOnce - waiting, 'counted for the metrics');

    // Another group is not held behind the flood.
    const honest = transfer(FUNDED_KEYS[0]!, testKey(46).address, 1n, 0n);
    assert.equal(await g.validate('honest', encodeTxBatch([honest])), 'accept');

    g.release();
    assert.ok((await flood.all()).every((v) => v === 'ignore'));
    // Each transaction's sender read ahead of the signature checks, then each sender once at admission.
    assert.equal(g.heldReads(), (atOnce + waiting) * (MAX_TXS_PER_BATCH + 1), 'those that waited were admitted in turn');
    assert.equal(g.verified(), 1, 'no junk signature checked');
    assert.equal(g.peers.score('flooder') + g.peers.score('flooder-too'), 0, 'no offence: an honest relay may send a burst');
    assert.equal(g.mempool.size, 1);
  });

  it('forged batches sent together cost the first few\'s signature checks, not each one\'s', async () => {
    // From a review: 40 forged batches in one message frame (6.6 MB, under the 8 MiB frame limit)
    // were validated at once, 256 signatures each, 10,280 before the ban landed.
    const g = txGossip();
    g.connect('forger', '/ip4/203.0.113.9/tcp/4001');
    g.connect('forger-too', '/ip4/203.0.113.9/tcp/4002'); // another identity of the same IP, banned with it
    const forgeries = Array.from({ length: 40 }, (_, i) => encodeTxBatch(copies(FUNDED_KEYS[0]!, MAX_TXS_PER_BATCH, BigInt(i))));
    const verdicts = await Promise.all(forgeries.map((batch, i) => g.validate(i % 2 ? 'forger-too' : 'forger', batch)));
    const atOnce = BATCHES_AT_ONCE_PER_GROUP;
    assert.ok(g.verified() <= atOnce * (FIRST_PEER_ROUND + 1), `${g.verified()} signatures checked`);
    assert.equal(verdicts[0], 'reject');
    assert.ok(verdicts.slice(atOnce).every((v) => v === 'ignore'), 'those behind the first few find their sender banned');
    assert.equal(g.peers.isBanned('forger'), true);
    assert.equal(verdicts.filter((v) => v === 'ignore').length, g.stats.ignoredTxBatches + verdicts.slice(0, atOnce).filter((v) => v === 'ignore').length);
    assert.ok(g.stats.ignoredTxBatches >= forgeries.length - atOnce);
    assert.equal(g.mempool.size, 0);
  });

  it('a batch that only waits for blocks still arriving parks, and its group\'s next batches are validated meanwhile', async () => {
    // Held, its turn kept every later batch of the group waiting (a compact block whose forwarder
    // stalls takes many seconds), until the room overflowed and honest batches were ignored.
    const g = txGossip();
    const parts = { mempool: g.mempool, signatures: new TxSignatureVerifier(new InlineVerifier()), clock: () => 1_000, chain: { reorganisationUnderWay: false, untilSettled: async () => {} } };
    let arrive!: () => void;
    const arriving = new Promise<void>((resolve) => (arrive = resolve));
    let parked = 0;
    // A sender without funds yet: refused for now, and tried again once the blocks arriving are in.
    const waiting = admitTxBatch(parts, encodeTxBatch([transfer(unfunded, testKey(45).address, 1n, 0n)]), () => arriving, () => parked++);
    await afterTurns(20);
    assert.equal(parked, 1, 'the batch said it only waits');
    arrive();
    assert.equal((await waiting).admitted.length, 0);

    const turns = new TxBatchTurns(() => 'one group');
    let release!: (v: Verdict) => void;
    const first = turns.run('a', 1000, (park) => (park(), new Promise<Verdict>((resolve) => (release = resolve))), () => true);
    let secondRan = false;
    const second = turns.run('b', 1000, async () => ((secondRan = true), 'accept'), () => true);
    await afterTurns(5);
    assert.equal(secondRan, true, 'the next batch of the group was validated while the first waited');
    assert.equal(await second, 'accept');
    release('ignore');
    assert.equal(await first, 'ignore');
  });

  it('a relay\'s batches are validated a few at once: one at a time halved a devnet\'s confirmed rate', async () => {
    const turns = new TxBatchTurns(() => 'one relay');
    const releases: Array<(v: Verdict) => void> = [];
    const pending = () => new Promise<Verdict>((resolve) => releases.push(resolve));
    const verdicts = Array.from({ length: BATCHES_AT_ONCE_PER_GROUP + 1 }, () => turns.run('relay', 1000, pending, () => true));
    await afterTurns(5);
    assert.ok(BATCHES_AT_ONCE_PER_GROUP > 1);
    assert.equal(releases.length, BATCHES_AT_ONCE_PER_GROUP, 'that many validating, the next waiting');
    releases[0]!('accept');
    await afterTurns(5);
    assert.equal(releases.length, BATCHES_AT_ONCE_PER_GROUP + 1);
    for (const release of releases) release('accept');
    assert.ok((await Promise.all(verdicts)).every((v) => v === 'accept'));
  });

  it('parked batches are bounded: past the node\'s room a batch keeps its turn', async () => {
    const turns = new TxBatchTurns(() => 'one group');
    const releases: Array<(v: Verdict) => void> = [];
    const hold = (park: () => void) => (park(), new Promise<Verdict>((resolve) => releases.push(resolve)));
    const big = MAX_WAITING_BATCH_BYTES_IN_ALL / 2;
    const parked = [turns.run('a', big, hold, () => true), turns.run('a', big, hold, () => true)];
    await afterTurns(5);
    assert.equal(releases.length, 2, 'both parked within the room');
    let holding = 0;
    const holders = Array.from({ length: BATCHES_AT_ONCE_PER_GROUP }, () => turns.run('a', 1, (park) => (holding++, hold(park)), () => true));
    await afterTurns(5);
    assert.equal(holding, BATCHES_AT_ONCE_PER_GROUP, 'the group\'s turns, parked ones handed on');
    let nextRan = false;
    const next = turns.run('a', 1, async () => ((nextRan = true), 'accept'), () => true);
    await afterTurns(5);
    assert.equal(nextRan, false, 'those could not park past the room, and kept their turns');
    releases[2]!('ignore');
    assert.equal(await next, 'accept');
    for (const release of releases) release('ignore');
    await Promise.all([...parked, ...holders]);
  });

  it('a batch is validated with its sender\'s group as it was when the batch came, though the sender has gone since', async () => {
    // The retry list's share per group (gossip-txs.ts AfterReorganisation) took the group after
    // validation: a sender that hung up had lost its subnet, and each address of one /24 had a share.
    let connected = true;
    const turns = new TxBatchTurns(() => (connected ? '203.0.113.0/24' : '203.0.113.5'));
    let release!: (v: Verdict) => void;
    const first = turns.run('a', 10, () => new Promise<Verdict>((resolve) => (release = resolve)), () => true);
    let seen: string | undefined;
    const second = turns.run('b', 10, async (_park, group) => ((seen = group), 'ignore'), () => true);
    connected = false;
    release('ignore');
    await Promise.all([first, second]);
    assert.equal(seen, '203.0.113.0/24');
  });
});
