/**
 * Transactions that reach a node by gossip or a peer's push while it reorganises (node/gossip-txs.ts,
 * node/tx-relay.ts): judged against the state after the reorganisation, not lost to the fork point's.
 */
import assert from 'node:assert/strict';
import { bytesEqual } from '../ledger/bytes.ts';
import { Mempool } from '../ledger/mempool.ts';
import type { MempoolPolicy } from '../ledger/mempool-rules.ts';
import { TX_BYTES, type Transaction } from '../ledger/transaction.ts';
import type { AccountSource } from '../ledger/state.ts';
import { MAX_TXS_AFTER_REORGANISATION, MAX_TXS_AFTER_REORGANISATION_PER_GROUP } from '../node/gossip-txs.ts';
import { Gossip } from '../node/gossip.ts';
import type { GossipOptions } from '../node/gossip-types.ts';
import { TxSignatureVerifier } from '../node/tx-signatures.ts';
import { InlineVerifier } from '../node/inline-verifier.ts';
import { encodeTxBatch } from '../node/wire.ts';
import { TxRelay } from '../node/tx-relay.ts';
import { PeerManager } from '../node/peers.ts';
import { realEnv } from '../node/env.ts';
import { afterTurns, testKey, transfer } from './helpers/fixtures.ts';
import { heldReorganisation, untilAsked } from './helpers/reorg.ts';
import { TEST_TOPICS, peerTable, validatorsTransport } from './helpers/gossip-harness.ts';

describe('transactions gossiped or pushed mid-way through a reorganisation', function () {
  this.timeout(60_000);
  // From a review: a gossiped batch was judged against the state mid-way, the fork point's, so a
  // spend of funds that both chains give was refused "insufficient funds" and, gossip delivering a
  // message once, lost to this node and to every peer behind it.

  const paid = testKey(5);
  const income = transfer(testKey(0), paid.address, 9n, 0n);
  const spend = transfer(paid, testKey(6).address, 2n, 0n);

  /** A node's gossip on a chain held mid-way, its mempool following the tips; `state` reads the store unless given. */
  async function midWay(state?: (r: Awaited<ReturnType<typeof heldReorganisation>>) => AccountSource, options: { blocks?: readonly Transaction[]; policy?: Partial<MempoolPolicy>; spend?: Transaction } = {}) {
    const r = await heldReorganisation({ main: options.blocks ?? [income], branch: options.blocks ?? [income] });
    const signatures = new TxSignatureVerifier(new InlineVerifier());
    const mempool = new Mempool(state?.(r) ?? r.db, r.params, options.policy ?? {}, (tx) => signatures.checkTx(tx));
    r.chain.on('tip', (e) => void mempool.update(e.connected, e.disconnected, r.now));
    const { transport, validators } = validatorsTransport();
    const { peers, records, connect } = peerTable();
    const relayed: string[] = [];
    const names = TEST_TOPICS;
    const gossip = new Gossip({ transport, env: realEnv, names, chain: r.chain, mempool, peers, records, signatures, clock: () => r.now, announceTx: (tx: Transaction) => void relayed.push(tx.idHex) } as unknown as GossipOptions);
    gossip.start();
    const gossiped = (peer: string, txs: readonly Transaction[]) => validators.get('/txs')!(peer, encodeTxBatch(txs));
    /** Once this node relays `spend` (it entered, after the reorganisation). */
    const relayedAfter = async () => {
      for (let turn = 0; !relayed.includes((options.spend ?? spend).idHex); turn++) {
        assert.ok(turn < 1000, 'the spend was judged again after the reorganisation, and relayed');
        await afterTurns(1);
      }
    };
    return { r, mempool, signatures, peers, connect, gossip, gossiped, relayedAfter };
  }

  it('a batch refused mid-way is judged again after it and relayed, the validation not held meanwhile', async () => {
    const { r, mempool, peers, gossiped, relayedAfter } = await midWay();
    assert.equal(await gossiped('peer', [spend]), 'ignore');
    assert.equal(r.chain.reorganisationUnderWay, true, 'answered mid-way: gossipsub counts a message it asked for and validated 3 s later as a broken promise');
    r.release();
    assert.equal(await r.reorganised, 'connected');
    await relayedAfter();
    assert.ok(mempool.has(spend.id));
    assert.equal(peers.score('peer'), 0, 'no offence');
    await r.db.close();
  });

  it('a batch judged mid-way whose refusal comes after the reorganisation ended is judged again', async () => {
    // The admission read the fork point's account, and the reorganisation ended before it refused:
    // none is under way any more, but the pool is still following it.
    let held: { release: () => void } | undefined;
    let reads = 0;
    const { r, mempool, gossiped, relayedAfter } = await midWay((r) => ({
      async getAccount(address) {
        const account = await r.db.getAccount(address);
        if (bytesEqual(address, paid.address) && ++reads === 2) await new Promise<void>((resolve) => (held = { release: resolve }));
        return account;
      },
    }));
    const verdict = gossiped('peer', [spend]);
    await untilAsked(() => held !== undefined);
    r.release();
    assert.equal(await r.reorganised, 'connected');
    held!.release();
    assert.equal(await verdict, 'ignore');
    await relayedAfter();
    assert.ok(mempool.has(spend.id));
    await r.db.close();
  });

  it('a transaction a full pool refused mid-way as waiting for an earlier nonce (the fork point\'s) is judged again after it', async () => {
    // From the project's list: a full pool refuses a transaction that waits for an earlier nonce
    // MEMPOOL_FULL (it may not push out what a block could take), a refusal no block was thought
    // to lift: mid-way, its earlier nonce, confirmed by both chains, was not in the fork point's
    // state, and once the reorganisation ended the transaction, then a block's next, was lost.
    const sender = testKey(3);
    const first = transfer(sender, testKey(6).address, 2n, 0n);
    const next = transfer(sender, testKey(6).address, 2n, 1n, 5n);
    const filler = Array.from({ length: 4 }, (_, i) => transfer(testKey(2), testKey(6).address, 1n, BigInt(i)));
    const { r, mempool, gossiped, relayedAfter } = await midWay(undefined, { blocks: [first], policy: { maxBytes: filler.length * TX_BYTES }, spend: next });
    for (const tx of filler) await mempool.add(tx, r.now);
    assert.equal(await gossiped('peer', [next]), 'ignore');
    assert.equal(mempool.has(next.id), false, 'refused mid-way: the pool is full, and the fork point\'s nonce is 0');
    r.release();
    assert.equal(await r.reorganised, 'connected');
    await relayedAfter();
    assert.ok(mempool.has(next.id), 'its fee beats the cheapest, now that a block could take it');
    assert.equal(mempool.size, filler.length);
    await r.db.close();
  });

  it('a peer\'s push served mid-way is judged again after it: what a reorganisation took back, pushed by a peer in the same one', async () => {
    const { r, mempool, signatures, gossip, relayedAfter } = await midWay();
    let respond!: (req: Uint8Array, peer: string) => Promise<unknown>;
    const relay = new TxRelay({
      env: { monotonic: () => 0, setTimeout: () => 0, clearTimeout: () => {} },
      mempool,
      chain: r.chain,
      gossip,
      signatures,
      peers: new PeerManager(() => 0),
      clock: () => r.now,
      names: { txPush: '/push' },
      serve: async (_name: string, _protocol: string, responder: typeof respond) => void (respond = responder),
    } as unknown as TxRelay['o']);
    await relay.start();
    await respond(encodeTxBatch([spend]), 'peer');
    assert.equal(mempool.has(spend.id), false, 'refused mid-way, and answered: the pusher waits for nothing');
    r.release();
    assert.equal(await r.reorganised, 'connected');
    await relayedAfter();
    assert.ok(mempool.has(spend.id));
    await r.db.close();
  });

  it(`at most ${MAX_TXS_AFTER_REORGANISATION} transactions wait for its end, ${MAX_TXS_AFTER_REORGANISATION_PER_GROUP} of them from one address group: one peer's junk does not crowd out the rest`, async () => {
    // From a review: the cap was shared by every peer, and free junk (unfunded senders, refused
    // mid-way as after) from one peer filled it during any reorganisation; honest transactions
    // refused mid-way after it were dropped.
    const { r, mempool, gossip, connect, relayedAfter } = await midWay();
    let ended!: () => void;
    const later = new Promise<void>((resolve) => (ended = resolve));
    const junk = (n: number) => Array<Transaction>(n).fill(transfer(testKey(7), testKey(6).address, 2n, 0n));
    connect('flooder', '/ip4/203.0.113.5/tcp/4001');
    connect('flooder-too', '/ip4/203.0.113.6/tcp/4001'); // another identity of the same /24
    gossip.afterReorganisation.add('flooder', junk(MAX_TXS_AFTER_REORGANISATION), later);
    gossip.afterReorganisation.add('flooder', junk(MAX_TXS_AFTER_REORGANISATION_PER_GROUP), later);
    const ofTheFlooders = transfer(testKey(3), testKey(6).address, 1n, 0n);
    gossip.afterReorganisation.add('flooder-too', [ofTheFlooders], later);
    gossip.afterReorganisation.add('peer', [spend], r.chain.untilSettled());
    // Groups together still fill the list.
    let room = MAX_TXS_AFTER_REORGANISATION - MAX_TXS_AFTER_REORGANISATION_PER_GROUP - 1;
    for (let g = 0; room > 0; g++, room -= MAX_TXS_AFTER_REORGANISATION_PER_GROUP) {
      gossip.afterReorganisation.add(`group ${g}`, junk(Math.min(room, MAX_TXS_AFTER_REORGANISATION_PER_GROUP)), later);
    }
    const pastTheCap = transfer(testKey(1), testKey(6).address, 1n, 0n);
    gossip.afterReorganisation.add('latecomer', [pastTheCap], later);
    r.release();
    assert.equal(await r.reorganised, 'connected');
    await relayedAfter();
    ended();
    await gossip.drained();
    assert.ok(mempool.has(spend.id), 'room for it beside the flood');
    assert.equal(mempool.has(ofTheFlooders.id), false, "the flooders' group had its share");
    assert.equal(mempool.has(pastTheCap.id), false, 'the list was full');
    await r.db.close();
  });
});
