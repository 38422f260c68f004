/**
 * What a client reads of the chain over RPC and REST while the node reorganises (node/rpc-methods.ts,
 * node/http/rest.ts): the state before the reorganisation or after it, never the fork point's.
 */
import assert from 'node:assert/strict';
import { toHex } from '../ledger/bytes.ts';
import { encodeAddress } from '../ledger/keys.ts';
import { Mempool } from '../ledger/mempool.ts';
import type { Transaction } from '../ledger/transaction.ts';
import { rpcHandlers } from '../node/rpc-methods.ts';
import { answerRest } from '../node/http/rest.ts';
import type { EventFeed } from '../node/http/events.ts';
import type { NodeView } from '../node/view.ts';
import { realEnv } from '../node/env.ts';
import { InlineVerifier } from '../node/inline-verifier.ts';
import { openLedger } from '../node/open-ledger.ts';
import type { NodePartsOf } from '../node/node-types.ts';
import type { SignatureVerifier } from '../node/tx-signatures.ts';
import { MemoryDisk } from '../ledger/kv-memory.ts';
import { afterTurns, testKey, testParams, transfer } from './helpers/fixtures.ts';
import { asParent, mineChain, mineChild } from './helpers/mining.ts';
import { heldReorganisation, untilAsked, viewOf } from './helpers/reorg.ts';

describe('account reads mid-way through a reorganisation', function () {
  this.timeout(60_000);
  // From a review: getAccount and the REST address page read the state as it stood, and mid-way
  // through a reorganisation that is the fork point's, a state neither the chain before nor the
  // one after has: a wallet saw the new branch's miner without its rewards, and a nonce that
  // may already be spent.

  async function reorganisingNode() {
    const r = await heldReorganisation();
    const view = { params: r.params, chain: r.chain, db: r.db, mempool: new Mempool(r.db, r.params), addressIndex: undefined, env: realEnv } as unknown as NodeView;
    const miner = testKey(2).address;
    const atForkPoint = (await r.db.getAccount(miner))!.balance;
    return { ...r, view, miner, after: (atForkPoint + r.params.reward * 3n).toString() };
  }

  it('getAccount answers the state after it, not the fork point\'s', async () => {
    const r = await reorganisingNode();
    const answer = rpcHandlers.getAccount(r.view, { address: encodeAddress(r.miner) });
    await afterTurns(5);
    r.release();
    assert.equal(await r.reorganised, 'connected');
    assert.equal((await answer).balance, r.after, 'with the branch\'s three rewards');
    await r.db.close();
  });

  it('the REST address page and the tip answer the state after it', async () => {
    const r = await reorganisingNode();
    const get = (path: string) => answerRest(r.view, {} as EventFeed, 'GET', path, new URLSearchParams(), undefined);
    const page = get(`/address/${encodeAddress(r.miner)}`);
    const tip = get('/blocks/tip/height');
    await afterTurns(5);
    r.release();
    assert.equal(await r.reorganised, 'connected');
    assert.equal(((await page) as { json: { balance: string } }).json.balance, r.after, 'with the branch\'s three rewards');
    assert.equal(((await tip) as { text: string }).text, '11', 'the new tip, not the fork point');
    await r.db.close();
  });
});

describe('chain reads over RPC mid-way through a reorganisation', function () {
  this.timeout(60_000);
  // Mid-way through a reorganisation the main chain ends at the fork point: status said the chain
  // was 8 blocks high (10 before, 11 after), a block by height above it was not found, the last
  // blocks and the headers ended there (a proof file without its block's header), a transaction
  // both chains confirm was not found at all, and no tip was the active one.

  const sender = testKey(0);
  const tx = transfer(sender, testKey(3).address, 5n, 0n);

  /** What `ask` answers of a node held mid-way, made to wait until the reorganisation ends. */
  async function askedMidWay<T>(ask: (view: NodeView) => Promise<T>) {
    const r = await heldReorganisation({ main: [tx], branch: [tx] });
    const answer = ask(viewOf(r)).then(
      (value) => ({ value }),
      (error: unknown) => ({ error }),
    );
    await afterTurns(5);
    r.release();
    assert.equal(await r.reorganised, 'connected');
    const out = await answer;
    await r.db.close();
    if ('error' in out) assert.fail(`answered ${String(out.error)}`);
    return { ...r, answer: out.value };
  }
  const hex = (bytes: Uint8Array) => toHex(bytes);

  it('status answers the tip after it, not the fork point', async () => {
    const { answer, branch } = await askedMidWay((view) => rpcHandlers.status(view, {}));
    assert.equal(answer.height, 11);
    assert.equal(answer.reorganising, false);
    assert.equal(answer.head, hex(branch[2]!.header.hash));
  });

  it('getBlock and getRawBlock by height answer the block after it, not "no such block"', async () => {
    const { answer, branch } = await askedMidWay((view) => Promise.all([rpcHandlers.getBlock(view, { height: 10 }), rpcHandlers.getRawBlock(view, { height: 9 })]));
    assert.equal(answer[0].hash, hex(branch[1]!.header.hash));
    assert.equal(answer[0].mainChain, true);
    assert.equal(answer[1], hex(branch[0]!.bytes));
  });

  it('getBlocks lists the last blocks from the tip after it', async () => {
    const { answer, branch } = await askedMidWay((view) => rpcHandlers.getBlocks(view, { count: 3 }));
    assert.deepEqual(answer.map((b) => b.hash), [branch[2]!, branch[1]!, branch[0]!].map((b) => hex(b.header.hash)));
  });

  it('getHeaders answers every header up to the tip after it', async () => {
    const { answer, branch } = await askedMidWay((view) => rpcHandlers.getHeaders(view, { from: 0, count: 20 }));
    assert.equal(answer.headers.length, 12);
    assert.equal(answer.headers[11], hex(branch[2]!.header.bytes));
  });

  it('getTransaction and getRawTransaction answer a transaction both chains confirm as confirmed, not unknown', async () => {
    const { answer, branch } = await askedMidWay((view) => Promise.all([rpcHandlers.getTransaction(view, { id: tx.idHex }), rpcHandlers.getRawTransaction(view, { id: tx.idHex })]));
    assert.equal(answer[0].status, 'confirmed');
    assert.equal(answer[0].blockHash, hex(branch[0]!.header.hash));
    assert.equal(answer[1], hex(tx.bytes));
  });

  it('getTips names the tip after it as the active one', async () => {
    const { answer, branch } = await askedMidWay((view) => rpcHandlers.getTips(view, {}));
    assert.deepEqual(answer.filter((t) => t.status === 'active').map((t) => t.hash), [hex(branch[2]!.header.hash)]);
  });

  it('none of these reads pauses imports itself: each answers while another holds them paused', async () => {
    // readSettled's last try (a chain that reorganised under every try) runs between imports, on
    // a lock that is not reentrant: a read that paused imports itself would wait on itself for
    // ever, and every import behind it. getProof, getTxProof and auditState pause them, unsettled.
    const r = await heldReorganisation({ main: [tx], branch: [tx] });
    r.release();
    await r.reorganised;
    const view = viewOf(r);
    let resume!: () => void;
    const paused = r.chain.withImportsPaused(() => new Promise<void>((resolve) => (resume = resolve)));
    const get = (path: string) => answerRest(view, {} as EventFeed, 'GET', path, new URLSearchParams(), undefined);
    let answered = 0;
    const reads = [
      rpcHandlers.status(view, {}),
      rpcHandlers.getAccount(view, { address: encodeAddress(sender.address) }),
      rpcHandlers.getTransaction(view, { id: tx.idHex }),
      rpcHandlers.getRawTransaction(view, { id: tx.idHex }),
      rpcHandlers.getBlock(view, { height: 10 }),
      rpcHandlers.getRawBlock(view, { height: 10 }),
      rpcHandlers.getBlocks(view, {}),
      rpcHandlers.getHeaders(view, { from: 0, count: 20 }),
      rpcHandlers.getTips(view, {}),
      get('/blocks'),
      get(`/tx/${tx.idHex}`),
      get(`/address/${encodeAddress(sender.address)}`),
    ].map((read) => read.then(() => answered++));
    for (let turn = 0; answered < reads.length; turn++) {
      assert.ok(turn < 1000, `${reads.length - answered} of the reads waited for imports`);
      await afterTurns(1);
    }
    resume();
    await paused;
    await r.db.close();
  });
});

describe('transactions a reorganisation took back, read after it', function () {
  this.timeout(60_000);
  // The transactions of the blocks a reorganisation disconnected go back to the mempool after it,
  // one at a time (node.ts, Mempool.update), each through its signature check: one asked for
  // meanwhile was neither in a block nor pending, and RPC and REST answered "no transaction",
  // as if it had been lost.

  /**
   * A reorganisation that took away block 9 holding `tx`, ended, with the mempool taking `tx` back
   * held at its signature check until `checked()`.
   */
  async function takingBack(tx: Transaction) {
    const r = await heldReorganisation({ main: [tx] });
    let checked!: () => void;
    const checking = new Promise<void>((resolve) => (checked = resolve));
    let asked = false;
    const mempool = new Mempool(r.db, r.params, {}, () => ((asked = true), checking));
    r.chain.on('tip', (e) => void mempool.update(e.connected, e.disconnected, r.now));
    r.release();
    assert.equal(await r.reorganised, 'connected');
    await untilAsked(() => asked);
    const view = { params: r.params, chain: r.chain, db: r.db, mempool, addressIndex: undefined } as unknown as NodeView;
    return { r, view, checked };
  }

  it('getTransaction and GET /tx answer it pending, not unknown', async () => {
    const tx = transfer(testKey(0), testKey(3).address, 5n, 0n);
    const { r, view, checked } = await takingBack(tx);
    const rpc = rpcHandlers.getTransaction(view, { id: tx.idHex }).then((t) => t.status, (err: Error) => err.message);
    const rest = answerRest(view, {} as EventFeed, 'GET', `/tx/${tx.idHex}/status`, new URLSearchParams(), undefined).then((a) => a, (err: Error) => err.message);
    await afterTurns(5);
    checked();
    assert.equal(await rpc, 'pending');
    assert.deepEqual(await rest, { json: { confirmed: false, block_height: null, block_hash: null, block_time: null } });
    await r.db.close();
  });

  it('getAccount counts them in nextNonce: a wallet is not handed the nonce its own earlier transaction holds', async () => {
    // From a review: until the mempool had taken back the disconnected block's transaction, nextNonce
    // was the state's nonce at the new tip, which that transaction holds: the wallet's next one
    // replaced its own earlier one, or was refused against it.
    const sender = testKey(0);
    const tx = transfer(sender, testKey(3).address, 5n, 0n);
    const { r, view, checked } = await takingBack(tx);
    const answer = rpcHandlers.getAccount(view, { address: encodeAddress(sender.address) });
    await afterTurns(5);
    checked();
    assert.deepEqual({ ...(await answer), address: undefined }, { address: undefined, balance: '1000000', nonce: '0', nextNonce: '1' });
    await r.db.close();
  });

  it("have their signatures checked together on the pool, as a block's are, not one at a time", async () => {
    // Their verdicts left the signature cache when their blocks connected (node.ts), and each
    // went to the pool alone as it was taken back: a deep reorganisation's thousands were as many
    // round trips, which nextNonce, and so every wallet's next send, waited for.
    const params = testParams();
    const now = params.timestamp + 1_000_000;
    const inline = new InlineVerifier();
    const batches: number[] = [];
    const verifier: SignatureVerifier = { verify: (items) => (batches.push(items.length), inline.verify(items)) };
    const parts = { openStore: async () => new MemoryDisk().open(), params, verifier } as unknown as NodePartsOf<never>;
    const { db, chain, mempool, signatures } = await openLedger(parts, { env: realEnv, clock: () => now, log: () => {}, fail: () => {}, opened: () => {}, goOn: () => {} });
    chain.on('tip', (e) => {
      for (const block of e.connected) signatures.confirmed(block.txs);
      void mempool.update(e.connected, e.disconnected, now);
    });
    const sender = testKey(0);
    const txs = [0n, 1n, 2n, 3n, 4n].map((nonce) => transfer(sender, testKey(3).address, 5n, nonce));
    const main = mineChild(params, asParent(db.genesis), txs, { miner: testKey(1).address });
    const branch = mineChain(params, asParent(db.genesis), 2, { miner: testKey(2).address }); // more work
    assert.equal(await chain.processBlock(main), 'connected');
    assert.equal(await chain.processBlock(branch[0]!), 'side-branch');
    batches.length = 0;
    assert.equal(await chain.processBlock(branch[1]!), 'connected');
    assert.equal(await mempool.nextNonce(sender.address), 5n, 'all five taken back');
    assert.deepEqual(batches, [5]);
    await db.close();
  });

  it('getAccount does not wait on the mempool when no reorganisation is being followed', async () => {
    // The wait is for a reorganisation's take-back only: an admission whose signature check is
    // slow (a busy pool) holds no account read.
    const r = await heldReorganisation();
    r.release();
    assert.equal(await r.reorganised, 'connected');
    let asked = false;
    const mempool = new Mempool(r.db, r.params, {}, () => ((asked = true), new Promise<void>(() => {})));
    const admitting = mempool.add(transfer(testKey(0), testKey(3).address, 5n, 0n), r.now);
    await untilAsked(() => asked);
    const view = { params: r.params, chain: r.chain, db: r.db, mempool, addressIndex: undefined } as unknown as NodeView;
    assert.equal((await rpcHandlers.getAccount(view, { address: encodeAddress(testKey(0).address) })).nextNonce, '0');
    void admitting;
    await r.db.close();
  });
});

describe('transactions submitted mid-way through a reorganisation', function () {
  this.timeout(60_000);
  // Admission judges a transaction against the state, which mid-way is the fork point's: a spend
  // of funds that both chains give (block 9 of each pays them) was refused "insufficient funds,
  // have 0", over RPC and REST alike, though it was valid before the reorganisation and after it.

  it('sendRawTransaction, sendRawTransactions and POST /tx judge it against the state after it', async () => {
    const paid = testKey(5);
    const income = transfer(testKey(0), paid.address, 9n, 0n);
    const r = await heldReorganisation({ main: [income], branch: [income] });
    const mempool = new Mempool(r.db, r.params);
    const view = {
      params: r.params,
      chain: r.chain,
      db: r.db,
      mempool,
      submitTransaction: async (tx: Transaction) => void (await mempool.add(tx, r.now)),
      submitTransactions: async (txs: readonly Transaction[]) => (await mempool.addMany(txs, r.now)).map((o) => (o instanceof Error ? o : undefined)),
      env: realEnv,
    } as unknown as NodeView;
    const spends = [0n, 1n, 2n].map((nonce) => transfer(paid, testKey(6).address, 2n, nonce));
    const outcomes = [
      rpcHandlers.sendRawTransaction(view, { tx: toHex(spends[0]!.bytes) }).then((a) => a.id),
      rpcHandlers.sendRawTransactions(view, { txs: [toHex(spends[1]!.bytes)] }).then((a) => a.accepted[0] ?? JSON.stringify(a.rejected)),
      answerRest(view, {} as EventFeed, 'POST', '/tx', new URLSearchParams(), toHex(spends[2]!.bytes)).then((a) => (a as { text: string }).text),
    ].map((p) => p.catch((err: Error) => err.message));
    await afterTurns(5);
    r.release();
    assert.equal(await r.reorganised, 'connected');
    assert.deepEqual(await Promise.all(outcomes), spends.map((tx) => tx.idHex));
    await r.db.close();
  });
});
