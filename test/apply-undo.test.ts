/**
 * Undo is exact: connect many random blocks, disconnect them all, and every intermediate state
 * and the genesis state come back byte for byte; connecting the same blocks again reproduces the
 * same states. An in-memory model of the balances checks that connecting computed the right ones.
 */
import { TipHarness } from './helpers/tip.ts';
import assert from 'node:assert/strict';
import { ChainDB } from '../ledger/chaindb.ts';
import { auditChainDB, stateDigest } from '../ledger/audit.ts';
import { toHex } from '../ledger/bytes.ts';
import { encodeAccount, type Account } from '../ledger/state.ts';
import type { Block } from '../ledger/block.ts';
import type { Transaction } from '../ledger/transaction.ts';
import { FUNDED_KEYS, childBlock, seededRandom, useTempStore, testKey, testParams, transfer, type TestKey } from './helpers/fixtures.ts';

const BLOCKS = 60;
const MAX_TXS_PER_BLOCK = 6;
const REWARD = 50n;

async function snapshot(db: ChainDB): Promise<string[]> {
  const out: string[] = [];
  for await (const { address, account } of db.accounts()) out.push(`${toHex(address)}=${toHex(encodeAccount(account))}`);
  return out;
}

/** Builds random valid blocks against a model of the state, so every one of them must connect. */
function randomChain(seed: number, genesis: { hash: Uint8Array; height: number }) {
  const rng = seededRandom(seed);
  const model = new Map<string, Account>();
  for (const k of FUNDED_KEYS) model.set(toHex(k.address), { balance: 1_000_000n, nonce: 0n });
  const keys: TestKey[] = [...FUNDED_KEYS];
  let nextKey = 100;
  const get = (a: Uint8Array) => model.get(toHex(a)) ?? { balance: 0n, nonce: 0n };
  const randomBig = (maxInclusive: bigint) => (maxInclusive <= 0n ? 0n : BigInt(rng.int(Number(maxInclusive) + 1)));

  function recipient(sender: TestKey): Uint8Array {
    const roll = rng.int(10);
    if (roll < 4) return keys[rng.int(keys.length)]!.address; // someone known, possibly the sender
    if (roll < 7) {
      const k = testKey(nextKey++); // a new key that can spend later, even in this same block
      keys.push(k);
      return k.address;
    }
    if (roll < 8) return sender.address;
    return rng.bytes(20); // an address nobody holds the key of
  }

  function nextBlock(parent: { hash: Uint8Array; height: number }): Block {
    const txs: Transaction[] = [];
    const n = rng.int(MAX_TXS_PER_BLOCK + 1);
    for (let i = 0; i < n; i++) {
      const funded = keys.filter((k) => get(k.address).balance > 0n);
      if (funded.length === 0) break;
      const sender = funded[rng.int(funded.length)]!;
      const from = get(sender.address);
      const fee = randomBig(from.balance < 5n ? from.balance : 5n);
      const spendable = from.balance - fee;
      const roll = rng.int(4);
      const amount = roll === 0 ? spendable : roll === 1 ? 0n : randomBig(spendable / BigInt(1 + rng.int(4)));
      const to = recipient(sender);
      txs.push(transfer(sender, to, amount, from.nonce, fee));
      model.set(toHex(sender.address), { balance: from.balance - amount - fee, nonce: from.nonce + 1n });
      const credited = get(to);
      model.set(toHex(to), { balance: credited.balance + amount, nonce: credited.nonce });
    }
    const minerRoll = rng.int(3);
    const miner = minerRoll === 0 ? keys[rng.int(keys.length)]!.address : minerRoll === 1 ? rng.bytes(20) : testKey(99).address;
    const fees = txs.reduce((s, tx) => s + tx.fee, 0n);
    const paid = get(miner);
    model.set(toHex(miner), { balance: paid.balance + REWARD + fees, nonce: paid.nonce });
    return childBlock(parent, txs, { miner, timestamp: 1_700_000_000 + (parent.height + 1) * 10 + rng.int(5) });
  }

  const blocks: Block[] = [];
  let parent = genesis;
  for (let i = 0; i < BLOCKS; i++) {
    const block = nextBlock(parent);
    blocks.push(block);
    parent = { hash: block.header.hash, height: block.header.height };
  }
  return { blocks, model };
}

describe('apply and undo', () => {
  const store = useTempStore();
  let db: ChainDB | undefined;

  it(`connects ${BLOCKS} random blocks, disconnects them all back to byte-identical genesis state, and reconnects them`, async () => {
    db = await store.open(testParams());
    const h = await TipHarness.open(db);
    const { blocks, model } = randomChain(20240601, h.tip);
    const txCount = blocks.reduce((s, b) => s + b.txs.length, 0);
    assert.ok(txCount >= 100 && txCount <= 400, `${txCount} txs: enough to mean something, few enough to verify quickly`);

    const digests: string[] = [await stateDigest(db)];
    const states: string[][] = [await snapshot(db)];
    const genesisAudit = await auditChainDB(db);
    assert.equal(genesisAudit.digest, digests[0]);
    assert.deepEqual(states[0], FUNDED_KEYS.map((k) => `${toHex(k.address)}=${toHex(encodeAccount({ balance: 1_000_000n, nonce: 0n }))}`).sort());

    for (const block of blocks) {
      await h.connectBlock(block);
      const height = block.header.height;
      assert.equal(h.tip.height, height);
      digests[height] = await stateDigest(db);
      states[height] = await snapshot(db);
      assert.notEqual(digests[height], digests[height - 1], 'every block pays a reward, so the state changes');
      if (height % 10 === 0) assert.equal((await auditChainDB(db)).digest, digests[height]);
    }

    // The store agrees with the independent model of what these blocks do.
    const modelView = [...model.entries()].map(([address, account]) => `${address}=${toHex(encodeAccount(account))}`).sort();
    assert.deepEqual(states[BLOCKS], modelView);
    const top = await auditChainDB(db);
    assert.equal(top.supply, 4_000_000n + REWARD * BigInt(BLOCKS));
    for (const block of blocks) {
      for (const [index, tx] of block.txs.entries()) {
        const location = await db.getTxLocation(tx.id);
        assert.deepEqual(location && { blockHash: toHex(location.blockHash), index: location.index }, { blockHash: toHex(block.header.hash), index });
      }
    }

    for (let height = BLOCKS; height > 0; height--) {
      const removed = await h.disconnectTip();
      assert.equal(toHex(removed.bytes), toHex(blocks[height - 1]!.bytes));
      assert.equal(h.tip.height, height - 1);
      assert.equal(await stateDigest(db), digests[height - 1], `digest at height ${height - 1}`);
      assert.deepEqual(await snapshot(db), states[height - 1], `accounts at height ${height - 1}`);
      assert.equal(await db.getHashAtHeight(height), undefined);
      for (const tx of removed.txs) assert.equal(await db.getTxLocation(tx.id), undefined);
      if (height % 10 === 1) assert.equal((await auditChainDB(db)).digest, digests[height - 1]);
    }
    assert.deepEqual(h.tip, { hash: db.genesis.header.hash, height: 0 });
    assert.deepEqual(await snapshot(db), states[0]);
    assert.deepEqual(await auditChainDB(db), genesisAudit);

    // The same blocks connect again, through the same states (signatures checked a second time).
    for (const block of blocks) {
      await h.connectBlock(block);
      assert.equal(await stateDigest(db), digests[block.header.height], `digest at height ${block.header.height} on reconnect`);
    }
    assert.deepEqual(await snapshot(db), states[BLOCKS]);
    assert.deepEqual(await auditChainDB(db), top);

    // And the reconnected chain survives a reopen.
    db = await store.open(testParams());
    assert.equal((await db.storedTip()).height, BLOCKS);
    assert.equal(await stateDigest(db), digests[BLOCKS]);
    console.log(`      apply/undo: ${BLOCKS} blocks, ${txCount} txs, ${states[BLOCKS]!.length} accounts at the top`);
  });
});
