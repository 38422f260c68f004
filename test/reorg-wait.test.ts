/**
 * How long a client is left without an answer while the node reorganises (node/reorg-wait.ts): a
 * read or a submission waits REORG_WAIT_MS for the reorganisation's end, then is answered "ask
 * again" (JSON-RPC -32005, REST 503 with Retry-After), and the CLI's client asks again itself.
 * The wait's timer is the test's (an Env whose timers run when the test says): an order of events.
 */
import assert from 'node:assert/strict';
import { toHex } from '../ledger/bytes.ts';
import { encodeAddress } from '../ledger/keys.ts';
import { Mempool } from '../ledger/mempool.ts';
import { rpcHandlers } from '../node/rpc-methods.ts';
import { RpcServer } from '../node/rpc.ts';
import { RPC_ERRORS } from '../node/rpc-types.ts';
import { answerRest, RestError } from '../node/http/rest.ts';
import { HttpServer } from '../node/http/server.ts';
import type { EventFeed } from '../node/http/events.ts';
import type { Env, Timer } from '../node/env.ts';
import { REORG_RETRY_SECONDS, REORG_WAIT_MS, ReorganisingError } from '../node/reorg-wait.ts';
import { RpcClient } from '../cli/rpc-client.ts';
import { syncText } from '../cli/cmd-inspect.ts';
import { afterTurns, tempDir, testKey, transfer } from './helpers/fixtures.ts';
import { get } from './helpers/http.ts';
import { waitFor } from './helpers/network.ts';
import { heldReorganisation, untilAsked, viewOf } from './helpers/reorg.ts';

/** Timers that run only when `expire()` says REORG_WAIT_MS has passed. */
function heldTimers() {
  const due = new Map<number, () => void>();
  let next = 0;
  const env: Pick<Env, 'setTimeout' | 'clearTimeout'> = {
    setTimeout: (run, ms) => {
      assert.equal(ms, REORG_WAIT_MS);
      due.set(++next, run);
      return next;
    },
    clearTimeout: (timer: Timer | undefined) => void due.delete(timer as number),
  };
  return {
    env,
    /** How many waits have begun. */
    get armed() {
      return next;
    },
    expire: () => {
      const runs = [...due.values()];
      due.clear();
      for (const run of runs) run();
    },
  };
}

/** A node held mid-way through a reorganisation (test/helpers/reorg.ts), with the test's timers. */
async function reorganisingNode(txs: Parameters<typeof heldReorganisation>[0] = {}) {
  const r = await heldReorganisation(txs);
  const timers = heldTimers();
  const mempool = new Mempool(r.db, r.params);
  const view = viewOf(r, { mempool, env: timers.env });
  const done = async () => {
    r.release();
    assert.equal(await r.reorganised, 'connected');
    await r.db.close();
  };
  return { ...r, view, timers, mempool, done };
}

/** What each of `asked` came to, once all have: an error's text, or "answered". */
async function outcomes(asked: readonly Promise<unknown>[]): Promise<string[]> {
  const out: (string | undefined)[] = asked.map(() => undefined);
  asked.forEach((p, i) => void p.then(() => (out[i] = 'answered'), (err: Error) => (out[i] = err instanceof RestError ? `${err.status} ${err.code} ${err.retryAfterSeconds}` : `${err.name} ${(err as ReorganisingError).code}`)));
  for (let turn = 0; out.includes(undefined); turn++) {
    assert.ok(turn < 1000, `${out.filter((o) => o === undefined).length} of them still wait, the reorganisation being held`);
    await afterTurns(1);
  }
  return out as string[];
}

describe('a client mid-way through a reorganisation that outlasts the wait', function () {
  this.timeout(60_000);
  // From a review: every read and submission waited for the reorganisation's end, however long:
  // one thousands of blocks deep held the CLI toward its 60 s timeout, and a REST client hung.

  const sender = testKey(0);
  const tx = transfer(sender, testKey(3).address, 5n, 0n);

  it('RPC reads are answered REORGANISING once the wait ran out, before the reorganisation ends', async () => {
    const n = await reorganisingNode({ main: [tx], branch: [tx] });
    try {
      const reads = [
        rpcHandlers.getAccount(n.view, { address: encodeAddress(sender.address) }),
        rpcHandlers.getTransaction(n.view, { id: tx.idHex }),
        rpcHandlers.getRawTransaction(n.view, { id: tx.idHex }),
        rpcHandlers.getBlock(n.view, { height: 10 }),
        rpcHandlers.getRawBlock(n.view, { height: 10 }),
        rpcHandlers.getBlocks(n.view, {}),
        rpcHandlers.getTips(n.view, {}),
        rpcHandlers.getHeaders(n.view, { from: 0, count: 20 }),
        // These pause imports, which the reorganisation holds paused while it lasts.
        rpcHandlers.getProof(n.view, { address: encodeAddress(sender.address) }),
        rpcHandlers.getTxProof(n.view, { id: tx.idHex }),
      ];
      await untilAsked(() => n.timers.armed === reads.length);
      n.timers.expire();
      assert.deepEqual(await outcomes(reads), reads.map(() => 'ReorganisingError REORGANISING'));
    } finally {
      await n.done();
    }
  });

  it('status answers part-way, saying so: an operator learns the node lives', async () => {
    const n = await reorganisingNode();
    try {
      const status = rpcHandlers.status(n.view, {});
      await untilAsked(() => n.timers.armed === 1);
      n.timers.expire();
      const answer = await status;
      assert.equal(answer.reorganising, true);
      assert.equal(answer.height, 8, 'the fork point, where the chain stands');
      assert.match(syncText(answer), /^reorganising: at 8 part-way/);
    } finally {
      await n.done();
    }
  });

  it('REST reads and POST /tx are answered 503 with when to ask again; the transaction is not taken', async () => {
    const paid = testKey(5);
    const income = transfer(sender, paid.address, 9n, 0n);
    const spend = transfer(paid, testKey(6).address, 2n, 0n);
    const n = await reorganisingNode({ main: [income], branch: [income] });
    try {
      const rest = (method: string, path: string, body?: string) => answerRest(n.view, {} as EventFeed, method, path, new URLSearchParams(), body);
      const asked = [
        rest('GET', '/blocks/tip/height'),
        rest('GET', `/tx/${income.idHex}`),
        rest('GET', `/address/${encodeAddress(paid.address)}`),
        rest('POST', '/tx', toHex(spend.bytes)),
        rpcHandlers.sendRawTransaction(n.view, { tx: toHex(spend.bytes) }),
        rpcHandlers.sendRawTransactions(n.view, { txs: [toHex(spend.bytes)] }),
      ];
      await untilAsked(() => n.timers.armed === asked.length);
      n.timers.expire();
      const rejected = `503 REORGANISING ${REORG_RETRY_SECONDS}`;
      assert.deepEqual(await outcomes(asked), [rejected, rejected, rejected, rejected, 'ReorganisingError REORGANISING', 'ReorganisingError REORGANISING']);
      assert.equal(n.mempool.size, 0, 'nothing submitted');
    } finally {
      await n.done();
    }
  });

  it('over HTTP: REST says 503 with Retry-After, JSON-RPC -32005 with data.retryAfterSeconds', async () => {
    const n = await reorganisingNode();
    const dir = tempDir('cairn-reorg-wait-');
    const http = new HttpServer(n.view, { port: 0 });
    const rpc = new RpcServer(n.view, { datadir: dir.path, port: 0, token: 't' });
    try {
      const [httpUrl, rpcUrl] = [await http.start(), await rpc.start()];
      const tip = get(`${httpUrl}/blocks/tip/hash`);
      const account = fetch(rpcUrl, { method: 'POST', headers: { authorization: 'Bearer t' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'getAccount', params: { address: encodeAddress(sender.address) } }) });
      await waitFor(() => n.timers.armed === 2, 20_000, 'both requests waiting');
      n.timers.expire();
      const answer = await tip;
      assert.equal(answer.status, 503);
      assert.equal(answer.headers.get('retry-after'), String(REORG_RETRY_SECONDS));
      assert.equal(answer.json<{ error: { code: string } }>().error.code, 'REORGANISING');
      const { error } = (await (await account).json()) as { error: { code: number; data: unknown } };
      assert.deepEqual({ code: error.code, data: error.data }, { code: RPC_ERRORS.REORGANISING, data: { retryAfterSeconds: REORG_RETRY_SECONDS, height: 8 } });
    } finally {
      await http.stop();
      await rpc.stop();
      await n.done();
      dir.remove();
    }
  });

  it("the CLI's client asks again, telling the user it waits, and gets the answer after it", async () => {
    const n = await reorganisingNode();
    const dir = tempDir('cairn-reorg-wait-');
    const rpc = new RpcServer(n.view, { datadir: dir.path, port: 0, token: 't' });
    try {
      const notices: string[] = [];
      const client = new RpcClient(await rpc.start(), 't', { notice: (text) => notices.push(text) });
      const miner = testKey(2).address;
      const atForkPoint = (await n.db.getAccount(miner))!.balance;
      const account = client.call('getAccount', { address: encodeAddress(miner) });
      await waitFor(() => n.timers.armed === 1, 20_000, 'the call waiting');
      n.timers.expire();
      await waitFor(() => n.timers.armed === 2, 20_000, 'the call asked again');
      assert.deepEqual(notices, ['waiting for the node to finish reorganising its chain (part-way, at height 8): getAccount asks again until it has']);
      n.release();
      assert.equal(await n.reorganised, 'connected');
      assert.equal((await account).balance, String(atForkPoint + n.params.reward * 3n), "with the branch's three rewards");
    } finally {
      await rpc.stop();
      await n.done();
      dir.remove();
    }
  });
});
