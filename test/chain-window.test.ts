/**
 * The block index's window: entries in memory only for the recent blocks and the branches off
 * them, the rest read back from the store by height; reorganisations up to the reorg depth and
 * none deeper, at the window's edge, across restarts.
 */
import assert from 'node:assert/strict';
import { ChainDB } from '../ledger/chaindb.ts';
import { auditChainDB } from '../ledger/audit.ts';
import { toHex } from '../ledger/bytes.ts';
import { CairnError } from '../ledger/errors.ts';
import { MemoryDisk } from '../ledger/kv-memory.ts';
import type { Block } from '../ledger/block.ts';
import { Chain } from '../consensus/chain.ts';
import { BlockIndexEntry } from '../consensus/block-index.ts';
import { testKey, testParams } from './helpers/fixtures.ts';
import { asParent, mineChain, mineChild } from './helpers/mining.ts';

const params = testParams();
const DEPTH = 40;
/** Blocks kept in memory when nothing needs more: fewer than the reorg depth, so deep forks load from the store. */
const WINDOW = 4;
/** At most: the window, the 10 blocks of median time past below it, and its trimming slack (16). */
const MAX_WINDOW = WINDOW + 10 + 16 + 1;

describe('Chain: the block index window', () => {
  let disk: MemoryDisk;
  let db: ChainDB;
  let chain: Chain;
  const now = params.timestamp + 10_000_000;

  async function open(): Promise<void> {
    db = await ChainDB.open(disk.open(), params);
    chain = await Chain.open(db, { clock: () => now, reorgDepth: DEPTH, window: WINDOW });
  }
  async function reopen(): Promise<void> {
    await db.close();
    await open();
  }
  async function feed(blocks: readonly Block[]): Promise<string[]> {
    const out: string[] = [];
    for (const b of blocks) out.push(await chain.processBlock(b));
    return out;
  }
  const entries = () => [...(chain as unknown as { index: { values(): Iterable<unknown> } }).index.values()].length;

  beforeEach(async () => {
    disk = new MemoryDisk();
    await open();
  });
  afterEach(async () => {
    await db.close();
  });

  it('holds a window of entries, whatever the length of the chain, and reopens reading only it', async () => {
    const blocks = mineChain(params, asParent(db.genesis), 120, { miner: testKey(50).address });
    await feed(blocks);
    assert.equal(chain.tip.height, 120);
    assert.ok(entries() <= MAX_WINDOW, `${entries()} entries in memory for 121 blocks`);
    let lowest = chain.tip;
    while (lowest.parent) lowest = lowest.parent;
    assert.ok(lowest.height <= 120 - WINDOW - 10 && lowest.height > 120 - MAX_WINDOW, `the lowest entry in memory is at ${lowest.height}`);
    assert.equal(chain.mainAt(lowest.height - 1), undefined, 'nothing below the window');

    await reopen();
    assert.equal(toHex(chain.tip.hash), toHex(blocks.at(-1)!.header.hash));
    assert.ok(entries() <= MAX_WINDOW, `${entries()} entries after reopening`);
    // It follows the tip as before, and the store is what a replay of the chain gives.
    const more = mineChain(params, asParent(blocks.at(-1)!), 30, { miner: testKey(51).address });
    assert.deepEqual(new Set(await feed(more)), new Set(['connected']));
    assert.ok(entries() <= MAX_WINDOW);
    await auditChainDB(db);
  });

  it('answers for blocks below the window from the store: duplicates, headers by height, locators', async () => {
    const blocks = mineChain(params, asParent(db.genesis), 80, { miner: testKey(52).address });
    await feed(blocks.slice(0, 10));
    // A sibling of block 5, stored as a side branch: deep below the window later, where headers are
    // served from a scan of the index records, it must not be taken for the main chain's.
    const sibling = mineChild(params, asParent(blocks[3]!), [], { miner: testKey(59).address });
    assert.equal(await chain.processBlock(sibling), 'side-branch');
    await feed(blocks.slice(10));
    assert.equal(chain.getEntry(blocks[3]!.header.hash), undefined, 'block 4 is below the window');
    assert.equal(await chain.processBlock(blocks[3]!), 'duplicate', 'an old main-chain block is known, not an orphan');
    assert.equal(await chain.byHeight.isMain(blocks[3]!.header.hash, 4), true);

    const range = await chain.byHeight.headers(1, 80);
    assert.deepEqual(range.map((h) => toHex(h.hash)), blocks.map((b) => toHex(b.header.hash)), 'the window and the store agree, in order');
    assert.deepEqual((await chain.byHeight.headers(75, 10)).map((h) => h.height), [75, 76, 77, 78, 79, 80], 'stops at the tip');

    const locator = await chain.byHeight.locator();
    assert.equal(toHex(locator.at(-1)!), toHex(db.genesis.header.hash));
    assert.ok(locator.some((h) => toHex(h) === toHex(blocks[40]!.header.hash)), 'a sparse hash from below the window (height 41)');
    // A peer far behind asks with a locator whose tip is below our window.
    const behind = await chain.byHeight.headersAfter([blocks[9]!.header.hash], 3);
    assert.deepEqual(behind.map((h) => h.height), [11, 12, 13]);
  });

  it('reorganises to a branch forking at the window edge (the reorg depth), and refuses one a block deeper', async () => {
    const main = mineChain(params, asParent(db.genesis), 60, { miner: testKey(53).address });
    await feed(main);
    const floor = chain.forkFloor;
    assert.equal(floor, 60 - DEPTH);
    // One block deeper than we follow: refused, nobody's fault, nothing kept.
    assert.equal(chain.mainAt(floor), undefined, 'the fork floor is below the window: a fork there loads it from the store');
    const deep = mineChain(params, asParent(main[floor - 2]!), DEPTH + 3, { miner: testKey(54).address });
    await assert.rejects(chain.processBlock(deep[0]!), (err: unknown) => err instanceof CairnError && err.code === 'BLOCK_FORK_TOO_DEEP' && err.banScore === 0);
    assert.equal(chain.getEntry(deep[0]!.header.hash), undefined);
    // Forking exactly at the floor: a reorganisation of DEPTH blocks, after a restart too.
    const edge = mineChain(params, asParent(main[floor - 1]!), DEPTH + 1, { miner: testKey(55).address });
    assert.deepEqual(await feed(edge.slice(0, DEPTH)), Array(DEPTH).fill('side-branch'));
    await reopen();
    const reorgs: number[] = [];
    chain.on('tip', (e) => reorgs.push(e.disconnected.length));
    assert.equal(await chain.processBlock(edge.at(-1)!), 'connected');
    assert.deepEqual(reorgs, [DEPTH]);
    assert.equal(toHex(chain.tip.hash), toHex(edge.at(-1)!.header.hash));
    await auditChainDB(db);
  });

  it('judges the reorg depth on a parent in memory as on one below the window: a fork at the floor is followed, one a block deeper refused', async () => {
    // A window deeper than the reorg depth: the parents either side of the floor are in memory,
    // so the refusal is the rule on a known parent, not the one for a parent not found.
    chain = await Chain.open(db, { clock: () => now, reorgDepth: 5, window: 30 });
    const main = mineChain(params, asParent(db.genesis), 20, { miner: testKey(60).address });
    await feed(main);
    assert.equal(chain.forkFloor, 15);
    assert.ok(chain.mainAt(14) && chain.mainAt(15), 'both parents are in memory');
    const deeper = mineChild(params, asParent(main[13]!), [], { miner: testKey(61).address });
    await assert.rejects(chain.processBlock(deeper), (err: unknown) => err instanceof CairnError && err.code === 'BLOCK_FORK_TOO_DEEP' && err.banScore === 0);
    assert.equal(chain.getEntry(deeper.header.hash), undefined);
    assert.equal(await chain.processBlock(mineChild(params, asParent(main[14]!), [], { miner: testKey(61).address })), 'side-branch');
  });

  it('walks a side branch down to its fork point once a block, not once for each of its entries', async () => {
    // From the long-chain review: each side entry was walked down to the main chain alone, the
    // square of the branch's length at every block (3,000 entries: 39 ms a main-chain block).
    chain = await Chain.open(db, { clock: () => now, reorgDepth: 1_000, window: WINDOW });
    const BRANCH = 300;
    const main = mineChain(params, asParent(db.genesis), BRANCH + 20, { miner: testKey(50).address });
    await feed(main);
    const branch = mineChain(params, asParent(main[9]!), BRANCH, { miner: testKey(51).address });
    assert.ok((await feed(branch)).every((o) => o === 'side-branch'));
    const parent = Object.getOwnPropertyDescriptor(BlockIndexEntry.prototype, 'parent')!;
    let steps = 0;
    Object.defineProperty(BlockIndexEntry.prototype, 'parent', { ...parent, get() { steps++; return parent.get!.call(this); } });
    try {
      assert.deepEqual(await feed(mineChain(params, asParent(main.at(-1)!), 1, { miner: testKey(50).address })), ['connected']);
    } finally {
      Object.defineProperty(BlockIndexEntry.prototype, 'parent', parent);
    }
    assert.ok(steps < 3 * BRANCH, `${steps} steps down parent links to import one block beside a branch of ${BRANCH}`);
  });

  it('reaches back down into the store when a reorganisation lowers the tip', async () => {
    // A harder genesis target, so that blocks far behind schedule carry far less work.
    const hard = testParams({ target: 1n << 249n });
    await db.close();
    disk = new MemoryDisk();
    db = await ChainDB.open(disk.open(), hard);
    chain = await Chain.open(db, { clock: () => now, reorgDepth: DEPTH, window: WINDOW });
    // 42 + 8 blocks: the window was trimmed at the tip's last block (to 32, in steps of 16).
    const early = mineChain(hard, asParent(db.genesis), 42, { miner: testKey(56).address });
    // The last blocks of the main chain came far behind schedule: easy targets, little work each.
    const late = mineChain(hard, asParent(early.at(-1)!), 8, { miner: testKey(56).address, spacing: 3_000 });
    await feed([...early, ...late]);
    assert.equal(chain.tip.height, 50);
    assert.equal(chain.mainAt(31), undefined, 'the window starts at 32 (50 - 4 - 10, in steps of 16)');
    // A branch from block 42 on schedule: each of its blocks carries more work than all eight.
    const branch = [mineChild(hard, asParent(early.at(-1)!), [], { miner: testKey(57).address })];
    branch.push(mineChild(hard, asParent(branch[0]!), [], { miner: testKey(57).address }));
    await feed(branch);
    assert.equal(chain.tip.height, 44, 'the heavier, shorter branch won');
    assert.ok(chain.mainAt(44 - WINDOW - 10), 'the window reached back down for the new tip (30)');
    // A fork at the new floor is followed.
    const fork = mineChain(hard, asParent(early[44 - DEPTH - 1]!), DEPTH + 1, { miner: testKey(58).address });
    const outcomes = await feed(fork);
    assert.equal(outcomes.at(-1), 'connected', outcomes.join());
    await auditChainDB(db);
  });
});
