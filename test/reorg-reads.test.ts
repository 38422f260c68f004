/**
 * What a client reads of the chain over RPC and REST while the node reorganises (node/rpc-methods.ts,
 * node/http/rest.ts): the state before the reorganisation or after it, never the fork point's.
 */
import assert from 'node:assert/strict';
import { encodeAddress } from '../ledger/keys.ts';
import { Mempool } from '../ledger/mempool.ts';
import { rpcHandlers } from '../node/rpc-methods.ts';
import { answerRest } from '../node/http/rest.ts';
import type { EventFeed } from '../node/http/events.ts';
import type { NodeView } from '../node/view.ts';
import { afterTurns, testKey } from './helpers/fixtures.ts';
import { heldReorganisation } from './helpers/reorg.ts';

describe('account reads mid-way through a reorganisation', function () {
  this.timeout(60_000);
  // From a review: getAccount and the REST address page read the state as it stood, and mid-way
  // through a reorganisation that is the fork point's, a state neither the chain before nor the
  // one after has: a wallet saw the new branch's miner without its rewards, and a nonce that
  // may already be spent.

  async function reorganisingNode() {
    const r = await heldReorganisation();
    const view = { params: r.params, chain: r.chain, db: r.db, mempool: new Mempool(r.db, r.params), addressIndex: undefined } as unknown as NodeView;
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
