import assert from 'node:assert/strict';
import { toHex } from '../../ledger/bytes.ts';
import { MemoryDisk } from '../../ledger/kv-memory.ts';
import { layout } from '../../ledger/layout.ts';
import { ChainDB } from '../../ledger/chaindb.ts';
import { Chain } from '../../consensus/chain.ts';
import type { Transaction } from '../../ledger/transaction.ts';
import type { Status } from '../../node/wire.ts';
import { Mempool } from '../../ledger/mempool.ts';
import { realEnv, type Env } from '../../node/env.ts';
import type { NodeView } from '../../node/view.ts';
import { kvOver } from './kv.ts';
import { afterTurns, testKey, testParams } from './fixtures.ts';
import { asParent, mineChain, mineChild } from './mining.ts';

/**
 * A chain of 10 blocks (mined by testKey(1)) whose reorganisation to a heavier branch forking at 8
 * (three blocks mined by testKey(2)) is held where it reads the branch's first block: mid-way, the
 * main chain ends at the fork point. `release` lets it go on; `reorganised` is its outcome.
 * `txs`: the transactions that block 9 of the main chain and of the branch hold. `before` is given
 * the chain at its tip, block 10, before the reorganisation begins.
 */
export async function heldReorganisation(txs: { readonly main?: readonly Transaction[]; readonly branch?: readonly Transaction[] } = {}, before?: (chain: Chain) => void) {
  const params = testParams();
  const now = params.timestamp + 1_000_000;
  const inner = new MemoryDisk().open();
  let heldKey: string | undefined;
  let release: (() => void) | undefined;
  const kv = kvOver(inner, {
    async get(key) {
      if (toHex(key) === heldKey) {
        heldKey = undefined;
        await new Promise<void>((resolve) => (release = resolve));
      }
      return inner.get(key);
    },
  });
  const db = await ChainDB.open(kv, params);
  const chain = await Chain.open(db, { clock: () => now });
  const genesis = db.genesis;
  const main = mineChain(params, asParent(genesis), 8, { miner: testKey(1).address });
  main.push(mineChild(params, asParent(main[7]!), txs.main ?? [], { miner: testKey(1).address }));
  main.push(...mineChain(params, asParent(main[8]!), 1, { miner: testKey(1).address }));
  const branch = [mineChild(params, asParent(main[7]!), txs.branch ?? [], { miner: testKey(2).address })]; // heights 9 to 11: more work
  branch.push(...mineChain(params, asParent(branch[0]!), 2, { miner: testKey(2).address }));
  for (const b of main) assert.equal(await chain.processBlock(b), 'connected');
  for (const b of branch.slice(0, 2)) assert.equal(await chain.processBlock(b), 'side-branch');
  const status: Status = { genesis: genesis.header.hash, height: chain.tip.height, tipHash: chain.tip.hash, totalWork: chain.tip.totalWork, prunedHeight: 0 };
  before?.(chain);
  heldKey = toHex(layout.block(branch[0]!.header.hash));
  const reorganised = chain.processBlock(branch[2]!);
  for (let turn = 0; release === undefined; turn++) {
    assert.ok(turn < 1000, 'the reorganisation reached the held read');
    await afterTurns(1);
  }
  assert.equal(chain.tip.height, 8, 'mid-way: the main chain ends at the fork point');
  return { params, now, db, chain, main, branch, status, reorganised, release: release! };
}

/** Waits until `asked()` says the request was made. */
export async function untilAsked(asked: () => boolean): Promise<void> {
  for (let turn = 0; !asked(); turn++) {
    assert.ok(turn < 1000, 'the request was made');
    await afterTurns(1);
  }
}

/**
 * What status and the other RPC and REST reads see of a node on `r`'s chain: no peers, no miner,
 * its mempool (a new one unless given), real time unless `env` is given; submissions go to the pool.
 */
export function viewOf(r: Awaited<ReturnType<typeof heldReorganisation>>, o: { mempool?: Mempool; env?: Pick<Env, 'setTimeout' | 'clearTimeout'> } = {}): NodeView {
  const mempool = o.mempool ?? new Mempool(r.db, r.params);
  return {
    params: r.params,
    chain: r.chain,
    db: r.db,
    mempool,
    addressIndex: undefined,
    env: o.env ?? realEnv,
    transport: { peers: () => [], connectionInfo: () => undefined, listenAddresses: () => [], peerId: 'self' },
    sync: { syncing: false, targetHeight: 0, statuses: new Map(), peersAhead: 0, peersApart: 0, snapshotProgress: undefined },
    peers: { lastBan: undefined, bannedCount: 0 },
    mining: false,
    miner: undefined,
    historyCheck: undefined,
    clock: () => r.now,
    submitTransaction: async (tx: Transaction) => void (await mempool.add(tx, r.now)),
    submitTransactions: async (txs: readonly Transaction[]) => (await mempool.addMany(txs, r.now)).map((outcome) => (outcome instanceof Error ? outcome : undefined)),
  } as unknown as NodeView;
}
