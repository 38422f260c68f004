import { TipHarness } from './helpers/tip.ts';
import assert from 'node:assert/strict';
import { ChainDB } from '../ledger/chaindb.ts';
import { MemoryDisk } from '../ledger/kv-memory.ts';
import { auditChainDB, stateDigest } from '../ledger/audit.ts';
import { toHex } from '../ledger/bytes.ts';
import { BlockRuleError, CairnError } from '../ledger/errors.ts';
import { makeBlock, type Block } from '../ledger/block.ts';
import { Chain, maxFutureDrift } from '../consensus/chain.ts';
import { HAVE_DATA } from '../consensus/block-index.ts';
import { ConsensusError } from '../consensus/errors.ts';
import { nextTarget } from '../consensus/difficulty.ts';
import { FUNDED_KEYS, tempDir, testKey, testParams, transfer } from './helpers/fixtures.ts';
import { asParent, mineChain, mineChild } from './helpers/mining.ts';

const params = testParams();
const [alice, bob] = FUNDED_KEYS as [(typeof FUNDED_KEYS)[0], (typeof FUNDED_KEYS)[0]];

function rejectsWith(code: string) {
  return (err: unknown) => {
    assert.ok(err instanceof CairnError, `expected a CairnError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return true;
  };
}

describe('Chain: fork choice, reorgs and header rules', () => {
  let dir: ReturnType<typeof tempDir>;
  let db: ChainDB;
  let chain: Chain;
  let now: number;
  const genesis = () => ({ hash: db.genesis.header.hash, height: 0, header: db.genesis.header });

  beforeEach(async () => {
    dir = tempDir();
    now = params.timestamp + 1_000_000;
    db = await ChainDB.open(dir.path, params);
    chain = await Chain.open(db, { clock: () => now });
  });
  afterEach(async () => {
    await db.close();
    dir.remove();
  });

  async function feed(blocks: readonly Block[]): Promise<string[]> {
    const outcomes: string[] = [];
    for (const b of blocks) outcomes.push(await chain.processBlock(b));
    return outcomes;
  }
  const tipHex = () => toHex(chain.tip.hash);
  const hex = (b: Block) => toHex(b.header.hash);

  it('follows the branch with more work, and keeps the first seen on equal work', async () => {
    const a = mineChain(params, genesis(), 2, { miner: testKey(10).address });
    const b = mineChain(params, genesis(), 3, { miner: testKey(11).address });
    assert.deepEqual(await feed(a), ['connected', 'connected']);
    assert.deepEqual(await feed(b.slice(0, 2)), ['side-branch', 'side-branch']); // equal work: A stays
    assert.equal(tipHex(), hex(a[1]!));
    assert.deepEqual(await feed([b[2]!]), ['connected']);
    assert.equal(tipHex(), hex(b[2]!));
    assert.equal((await db.getAccount(testKey(10).address)), undefined, "A's rewards are gone after the reorg");
    assert.equal((await db.getAccount(testKey(11).address))?.balance, 3n * params.reward);
    assert.equal((await feed([b[2]!]))[0], 'duplicate');
    await auditChainDB(db);
  });

  it('on opening below two branches of equal work (a reorganisation cut short), moves to the first seen', async () => {
    const first = mineChain(params, genesis(), 3, { miner: testKey(12).address });
    const second = mineChain(params, genesis(), 3, { miner: testKey(13).address });
    assert.deepEqual(await feed([...first, ...second]), ['connected', 'connected', 'connected', 'side-branch', 'side-branch', 'side-branch']);
    // The store's tip back at genesis, as a kill between a reorganisation's disconnects and its connects leaves it.
    const h = await TipHarness.open(db);
    for (let i = 0; i < 3; i++) await h.disconnectTip();
    await db.close();
    db = await ChainDB.open(dir.path, params);
    chain = await Chain.open(db, { clock: () => now });
    assert.equal(tipHex(), hex(first[2]!));
  });

  it('reorgs across blocks that spend coinbase rewards, and back', async () => {
    const miner = testKey(20);
    const a1 = mineChild(params, genesis(), [], { miner: miner.address });
    const spend = transfer(miner, bob.address, params.reward - 5n, 0n, 5n);
    const a2 = mineChild(params, asParent(a1), [spend], { miner: miner.address });
    await feed([a1, a2]);
    assert.deepEqual(await db.getAccount(miner.address), { balance: params.reward + 5n, nonce: 1n });
    const before = await stateDigest(db);

    const b = mineChain(params, genesis(), 3, { miner: testKey(21).address });
    const seen: { disconnected: number; connected: number }[] = [];
    chain.on('tip', (e) => seen.push({ disconnected: e.disconnected.length, connected: e.connected.length }));
    await feed(b);
    assert.equal(tipHex(), hex(b[2]!));
    assert.equal(await db.getAccount(miner.address), undefined, 'the spent reward never existed on this branch');
    assert.equal(await db.getTxLocation(spend.id), undefined);
    assert.deepEqual(seen.at(-1), { disconnected: 2, connected: 3 });
    await auditChainDB(db);

    // A grows past B again: the reward and its spend come back exactly.
    const a3 = mineChild(params, asParent(a2), [], { miner: miner.address });
    const a4 = mineChild(params, asParent(a3), [], { miner: miner.address });
    await feed([a3, a4]);
    assert.equal(tipHex(), hex(a4));
    assert.deepEqual(await db.getAccount(miner.address), { balance: 3n * params.reward + 5n, nonce: 1n });
    assert.ok((await db.getTxLocation(spend.id)) !== undefined);
    const h = await TipHarness.open(db);
    await h.disconnectTip();
    await h.disconnectTip();
    assert.equal(await stateDigest(db), before);
  });

  it('a more-work branch whose third block is invalid: back on the old chain, the bad block remembered', async () => {
    const a = mineChain(params, genesis(), 3, { miner: testKey(30).address });
    await feed(a);
    const digest = await stateDigest(db);
    const b1 = mineChild(params, genesis(), [], { miner: testKey(31).address });
    const b2 = mineChild(params, asParent(b1));
    // Valid body (Merkle root, coinbase) but the spend exceeds the balance: only state can tell.
    const overspend = transfer(alice, bob.address, 2_000_000n, 0n);
    const b3 = mineChild(params, asParent(b2), [overspend]);
    const b4 = mineChild(params, asParent(b3));
    const b5 = mineChild(params, asParent(b4));
    const invalid: string[] = [];
    chain.on('invalid', (entry, err) => invalid.push(`${entry.height}:${err.code}`));

    assert.deepEqual(await feed([b1, b2, b3]), ['side-branch', 'side-branch', 'side-branch']);
    // b4 makes the branch heavier; the reorg it triggers fails at b3, and b4's sender hears of it.
    await assert.rejects(chain.processBlock(b4), rejectsWith('BLOCK_PARENT_INVALID'));
    assert.deepEqual(invalid, ['3:TX_INSUFFICIENT_BALANCE']);
    assert.equal(tipHex(), hex(a[2]!), 'back on the old chain, which has more work than b1-b2');
    assert.equal(await stateDigest(db), digest);
    await auditChainDB(db);

    await assert.rejects(chain.processBlock(b5), rejectsWith('BLOCK_PARENT_INVALID'));
    await assert.rejects(chain.processBlock(b3), rejectsWith('BLOCK_KNOWN_INVALID'));
    assert.equal(chain.getEntry(b2.header.hash)?.isValid, true, 'the valid prefix stays valid');

    // Remembered across a restart.
    await db.close();
    db = await ChainDB.open(dir.path, params);
    chain = await Chain.open(db, { clock: () => now });
    assert.equal(tipHex(), hex(a[2]!));
    await assert.rejects(chain.processBlock(b4), rejectsWith('BLOCK_KNOWN_INVALID'));
  });

  it('a more-work branch that fails at its last block, leaving a prefix of equal work: back on the first seen (simulation seed 244)', async () => {
    const a = mineChain(params, genesis(), 2, { miner: testKey(33).address });
    await feed(a);
    const digest = await stateDigest(db);
    const b = mineChain(params, genesis(), 2, { miner: testKey(34).address });
    const b3 = mineChild(params, asParent(b[1]!), [transfer(alice, bob.address, 2_000_000n, 0n)]);
    assert.deepEqual(await feed(b), ['side-branch', 'side-branch']); // equal work: A stays
    const tips: string[] = [];
    chain.on('tip', (e) => tips.push(`${hex(e.disconnected.at(-1)!)}>${hex(e.connected.at(-1)!)}`));
    await assert.rejects(chain.processBlock(b3), rejectsWith('TX_INSUFFICIENT_BALANCE'));
    // b1-b2 ties with A, which was here first: the node does not stay on the branch that failed.
    assert.equal(tipHex(), hex(a[1]!));
    assert.deepEqual(tips, [`${hex(a[1]!)}>${hex(b[1]!)}`, `${hex(b[1]!)}>${hex(a[1]!)}`]);
    assert.equal(await stateDigest(db), digest);
    await auditChainDB(db);
  });

  it('a child of the tip is stored by its own connect; one that fails there leaves only its invalid mark', async () => {
    const good = mineChild(params, genesis(), [transfer(alice, bob.address, 5n, 0n)], { miner: testKey(32).address });
    assert.equal(await chain.processBlock(good), 'connected');
    assert.ok(await db.getBlock(good.header.hash), 'the block is in the store');
    const bad = mineChild(params, asParent(good), [transfer(alice, bob.address, 2_000_000n, 1n)]);
    await assert.rejects(chain.processBlock(bad), rejectsWith('TX_INSUFFICIENT_BALANCE'));
    assert.equal(await db.getBlock(bad.header.hash), undefined, 'an invalid child of the tip is never written');
    await auditChainDB(db);

    // Both index records survive a restart: the good block at the tip, the bad one refused at once.
    await db.close();
    db = await ChainDB.open(dir.path, params);
    chain = await Chain.open(db, { clock: () => now });
    assert.equal(tipHex(), hex(good));
    assert.equal(chain.getEntry(bad.header.hash)!.status & HAVE_DATA, 0, 'its record does not claim the block is stored');
    await assert.rejects(chain.processBlock(bad), rejectsWith('BLOCK_KNOWN_INVALID'));
  });

  it('stays on a valid prefix of the new branch when that prefix alone has more work', async () => {
    const a1 = mineChild(params, genesis(), [], { miner: testKey(40).address });
    await feed([a1]);
    const b = mineChain(params, genesis(), 2);
    const bad = mineChild(params, asParent(b[1]!), [transfer(alice, bob.address, 1n, 7n)]); // nonce gap
    await feed(b);
    assert.equal(tipHex(), hex(b[1]!));
    await assert.rejects(chain.processBlock(bad), rejectsWith('TX_BAD_NONCE'));
    assert.equal(tipHex(), hex(b[1]!));
    assert.equal(chain.getEntry(bad.header.hash)?.isValid, false);
  });

  it('does not remember a body that does not match its header (CVE-2012-2459), nor a time too far ahead', async () => {
    const tx = transfer(alice, bob.address, 10n, 0n);
    const good = mineChild(params, genesis(), [tx]);
    const tampered = makeBlock(good.header, good.coinbase, [transfer(alice, bob.address, 11n, 0n)]);
    await assert.rejects(chain.processBlock(tampered), rejectsWith('BLOCK_BAD_MERKLE_ROOT'));
    assert.equal(await chain.processBlock(good), 'connected', 'the real block with that header is still accepted');

    const future = mineChild(params, asParent(good), [], { timestamp: now + maxFutureDrift(params.blockTime) + 1 });
    await assert.rejects(chain.processBlock(future), rejectsWith('HEADER_TIME_TOO_NEW'));
    now += 1;
    assert.equal(await chain.processBlock(future), 'connected', 'accepted once our clock catches up: exactly at the limit');
  });

  it('lets a timestamp be 12 block times ahead of the clock, at least a minute and at most two hours (PROTOCOL.md)', () => {
    assert.deepEqual([1, 5, 10, 599, 600, 601, 3600].map(maxFutureDrift), [60, 60, 120, 7188, 7200, 7200, 7200]);
  });

  it("judges a header against its parent as import does, without importing it (a compact block's relay)", async () => {
    const g = genesis();
    const b1 = mineChild(params, g, [], { miner: testKey(40).address });
    const s1 = mineChild(params, g, [], { miner: testKey(41).address });
    assert.equal(chain.judgeHeader(b1.header), 'tip', 'a child of the tip');
    assert.equal(chain.getEntry(b1.header.hash), undefined, 'nothing imported');
    assert.equal(await chain.processBlock(b1), 'connected');
    assert.equal(chain.judgeHeader(mineChild(params, asParent(b1)).header), 'tip');
    assert.equal(chain.judgeHeader(mineChild(params, asParent(s1)).header), 'unknown', 'its parent not here');
    assert.equal(await chain.processBlock(s1), 'side-branch');
    assert.equal(chain.judgeHeader(mineChild(params, asParent(s1)).header), 'known', 'a valid parent off the tip');
    assert.throws(() => chain.judgeHeader(mineChild(params, asParent(b1), [], { target: params.target >> 1n }).header), rejectsWith('HEADER_BAD_TARGET'));
    assert.throws(() => chain.judgeHeader(mineChild(params, asParent(b1), [], { spacing: -params.blockTime }).header), rejectsWith('HEADER_TIME_TOO_OLD'));
    // A parent found invalid: its children are refused before anything is fetched for them.
    const bad = mineChild(params, asParent(b1), [transfer(alice, bob.address, 2_000_000n, 0n)]);
    await assert.rejects(chain.processBlock(bad), rejectsWith('TX_INSUFFICIENT_BALANCE'));
    assert.throws(() => chain.judgeHeader(mineChild(params, asParent(bad), [], { stateRoot: new Uint8Array(32) }).header), rejectsWith('BLOCK_PARENT_INVALID'));
    assert.equal(chain.tip.height, 1);
  });

  it('rejects each header and body rule with its own error', async () => {
    const g = genesis();
    const cases: [string, Block][] = [
      ['HEADER_BAD_POW', mineChild(params, g, [], { badPow: true })],
      ['HEADER_BAD_TARGET', mineChild(params, g, [], { target: params.target >> 1n })],
      ['HEADER_TIME_TOO_OLD', mineChild(params, g, [], { spacing: 0 })],
      ['BLOCK_BAD_COINBASE', mineChild(params, g, [], { coinbaseAmount: params.reward + 1n })],
      ['BLOCK_BAD_COINBASE', mineChild(params, g, [], { coinbaseAmount: params.reward - 1n })],
    ];
    for (const [code, block] of cases) {
      await assert.rejects(chain.processBlock(block), rejectsWith(code), code);
      assert.equal(chain.tip.height, 0);
      assert.equal(chain.getEntry(block.header.hash), undefined, 'cheap-to-forge failures leave no trace');
      assert.equal(await db.hasBlock(block.header.hash), false);
    }
    assert.ok(new ConsensusError('HEADER_BAD_POW', 'x') instanceof CairnError);
    assert.ok(new BlockRuleError('BLOCK_BAD_COINBASE', 'x') instanceof CairnError);
  });

  it("refuses a target one above or one below ASERT's, off schedule where it is not the genesis target", async () => {
    const b1 = mineChild(params, genesis());
    const b2 = mineChild(params, asParent(b1), [], { spacing: 37 });
    assert.deepEqual(await feed([b1, b2]), ['connected', 'connected']);
    const expected = nextTarget(params, b2.header, b1.header.timestamp);
    assert.notEqual(expected, params.target);
    for (const target of [expected + 1n, expected - 1n]) {
      await assert.rejects(chain.processBlock(mineChild(params, asParent(b2), [], { target })), rejectsWith('HEADER_BAD_TARGET'));
    }
    assert.equal(await chain.processBlock(mineChild(params, asParent(b2), [], { target: expected })), 'connected');
  });

  it('refuses a child of a block found invalid, and remembers it invalid', async () => {
    const b1 = mineChild(params, genesis());
    assert.equal(await chain.processBlock(b1), 'connected');
    const bad = mineChild(params, asParent(b1), [transfer(alice, bob.address, 2_000_000n, 0n)]);
    await assert.rejects(chain.processBlock(bad), rejectsWith('TX_INSUFFICIENT_BALANCE'));
    const child = mineChild(params, asParent(bad));
    await assert.rejects(chain.processBlock(child), rejectsWith('BLOCK_PARENT_INVALID'));
    assert.equal(chain.getEntry(child.header.hash)?.isValid, false, 'real work at the real target: remembered');
    await assert.rejects(chain.processBlock(child), rejectsWith('BLOCK_KNOWN_INVALID'));
    assert.equal(chain.tip.height, 1);
    assert.equal(await db.hasBlock(child.header.hash), false);
    await auditChainDB(db);
  });

  it('connects orphans that arrive in reverse order once their parent comes', async () => {
    const blocks = mineChain(params, genesis(), 12);
    const reversed = [...blocks].reverse();
    const outcomes = await feed(reversed);
    assert.deepEqual(outcomes.slice(0, 11), Array(11).fill('orphan'));
    assert.equal(outcomes[11], 'connected');
    assert.equal(chain.tip.height, 12);
    assert.equal(chain.orphans.size, 0);
    await auditChainDB(db);
  });

  it('bounds the orphan pool by count and age', async () => {
    await db.close();
    db = await ChainDB.open(dir.path, params);
    chain = await Chain.open(db, { clock: () => now, orphanLimits: { maxCount: 3, maxBytes: 1 << 20, maxAge: 60 } });
    const blocks = mineChain(params, genesis(), 6);
    await feed(blocks.slice(1, 6).reverse()); // 5 orphans into room for 3
    assert.equal(chain.orphans.size, 3);
    now += 61;
    chain.orphans.expire(now);
    assert.equal(chain.orphans.size, 0);
  });

  it('bounds the orphan pool by bytes, the oldest going first', async () => {
    const blocks = mineChain(params, genesis(), 4);
    const size = blocks[1]!.bytes.length;
    await db.close();
    db = await ChainDB.open(dir.path, params);
    chain = await Chain.open(db, { clock: () => now, orphanLimits: { maxCount: 100, maxBytes: 2 * size, maxAge: 600 } });
    await feed(blocks.slice(1).reverse()); // 3 orphans into room for 2
    assert.equal(chain.orphans.size, 2);
    assert.equal(chain.orphans.bytes, 2 * size);
    assert.equal(chain.orphans.has(blocks[3]!.header.hash), false, 'the first to come went first');
  });
});

describe('the ASERT anchor after a reorganisation that replaces block 1', () => {
  it('a node that stays up judges targets below its window as one that restarted does', async () => {
    // From a review, reproduced: the index kept block 1's timestamp once and never again, so after
    // a reorganisation to a chain with another block 1, entries loaded later from the store (a fork
    // below the window) had the old chain's anchor: a valid block was refused HEADER_BAD_TARGET
    // (its forwarder banned) by a node that stayed up, and accepted by one that restarted.
    const params = testParams();
    const now = params.timestamp + 10_000_000;
    const db = await ChainDB.open(new MemoryDisk().open(), params);
    try {
      const chain = await Chain.open(db, { clock: () => now, reorgDepth: 40, window: 4 });
      const genesis = asParent(db.genesis);
      for (const b of mineChain(params, genesis, 35, { miner: testKey(50).address })) await chain.processBlock(b);
      const b1 = mineChild(params, genesis, [], { miner: testKey(51).address, timestamp: params.timestamp + 6_010 });
      const other = [b1, ...mineChain(params, asParent(b1), 79, { miner: testKey(51).address })];
      for (const b of other) await chain.processBlock(b);
      assert.equal(toHex(chain.tip.hash), toHex(other.at(-1)!.header.hash), 'the chain with the later block 1 won');
      // A fork on its block 50, below the window: its parent comes back from the store.
      const fork = mineChild(params, { ...asParent(other[49]!), anchorTimestamp: b1.header.timestamp }, [], { miner: testKey(52).address, spacing: 3 });
      assert.equal(await chain.processBlock(fork), 'side-branch');
    } finally {
      await db.close();
    }
  });
});
