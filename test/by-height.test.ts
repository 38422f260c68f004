import assert from 'node:assert/strict';
import { ChainByHeight } from '../consensus/by-height.ts';
import type { BlockIndexEntry } from '../consensus/block-index.ts';
import type { ChainDB } from '../ledger/chaindb.ts';

/**
 * A main chain whose block at height h has hash and header bytes [h >> 8, h & 255], its recent
 * heights in a window that moves up with the tip, and a store that mines `moveBy` blocks (moving
 * the window) while it answers each read, as a node mining while it serves does.
 */
function movingChain(bottom: number, tip: number, moveBy: number) {
  const bytes = (h: number) => Uint8Array.of(h >> 8, h & 255);
  const entry = (h: number) => ({ height: h, hash: bytes(h), header: { bytes: bytes(h) } }) as unknown as BlockIndexEntry;
  const window = {
    windowBottom: bottom,
    tip: entry(tip),
    mainAt: (h: number) => (h >= window.windowBottom && h <= window.tip.height ? entry(h) : undefined),
    getEntry: () => undefined,
    isMain: () => true,
  };
  const mine = () => {
    window.windowBottom += moveBy;
    window.tip = entry(window.tip.height + moveBy);
  };
  const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => bytes(from + i));
  const db = {
    genesis: { header: { bytes: bytes(0) } },
    history: {
      mainHeaderBytes: async (from: number, count: number) => {
        await new Promise((resolve) => setImmediate(resolve));
        mine();
        return range(from, from + count);
      },
      mainHashes: async (from: number, to: number) => {
        await new Promise((resolve) => setImmediate(resolve));
        mine();
        return range(from, to);
      },
    },
  } as unknown as ChainDB;
  return { byHeight: new ChainByHeight(window, db), heights: (list: Uint8Array[]) => list.map((b) => (b[0]! << 8) | b[1]!) };
}

const span = (from: number, count: number) => Array.from({ length: count }, (_, i) => from + i);

describe('the main chain by height', () => {
  it('answers a range across the window whole, though the window moved up while the store was read', async () => {
    const { byHeight, heights } = movingChain(1000, 1500, 6);
    // Heights 900-999 from the store; while it answers, 1000-1005 leave the window for the store.
    assert.deepEqual(heights(await byHeight.headerBytes(900, 200)), span(900, 200));
    assert.deepEqual(heights(await byHeight.hashes(900, 200)), span(900, 200));
  });

  it('answers from genesis, up to the tip when it was asked', async () => {
    const { byHeight, heights } = movingChain(1000, 1100, 6);
    assert.deepEqual(heights(await byHeight.headerBytes(0, 2000)), span(0, 1101));
  });
});
