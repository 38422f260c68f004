/**
 * The REST API about blocks at the bottom of the block index's window and below it, which the
 * node answers from the store by height: the same answers as for a block in memory.
 */
import assert from 'node:assert/strict';
import { toHex } from '../ledger/bytes.ts';
import { ChainDB } from '../ledger/chaindb.ts';
import { MemoryDisk } from '../ledger/kv-memory.ts';
import type { BlockHeader } from '../ledger/block.ts';
import { Chain } from '../consensus/chain.ts';
import { answerRest } from '../node/http/rest.ts';
import type { EventFeed } from '../node/http/events.ts';
import type { NodeView } from '../node/view.ts';
import { testParams } from './helpers/fixtures.ts';
import { asParent, mineChild } from './helpers/mining.ts';

const params = testParams();

describe('REST below the block index window', function () {
  this.timeout(60_000);

  it('gives every block the median time past the timestamp rule takes: of it and the 10 before (fewer near genesis), however deep', async () => {
    const db = await ChainDB.open(new MemoryDisk().open(), params);
    // A window of 4: all but the last 14 blocks are read from the store by height.
    const chain = await Chain.open(db, { clock: () => params.timestamp + 10_000_000, window: 4 });
    // Uneven, sometimes backwards steps, so that a median of fewer than 11 differs from the rule's.
    const spacing = [9, 14, 22, 5, -2, 17, 1, 30, -4, 11, 2];
    const headers: BlockHeader[] = [db.genesis.header];
    let parent = asParent(db.genesis);
    for (let h = 1; h <= 60; h++) {
      const b = mineChild(params, parent, [], { spacing: spacing[h % spacing.length]! });
      assert.equal(await chain.processBlock(b), 'connected');
      headers.push(b.header);
      parent = asParent(b);
    }
    assert.ok(chain.windowBottom > 10, `the window starts at ${chain.windowBottom}`);
    // PROTOCOL.md, "Timestamps": the one at index ⌊n/2⌋ of the n timestamps sorted ascending.
    const expected = (h: number) => {
      const times = headers.slice(Math.max(0, h - 10), h + 1).map((x) => x.timestamp).sort((a, b) => a - b);
      return times[Math.floor(times.length / 2)];
    };
    const view = { params, chain, db } as unknown as NodeView;
    const json = async (path: string) => ((await answerRest(view, undefined as unknown as EventFeed, 'GET', path, new URLSearchParams(), undefined)) as { json: unknown }).json;

    const byHash: [number, number | null][] = [];
    for (const header of headers) byHash.push([header.height, ((await json(`/block/${toHex(header.hash)}`)) as { mediantime: number | null }).mediantime]);
    assert.deepEqual(byHash, headers.map((x) => [x.height, expected(x.height)]));
    const byPage: [number, number | null][] = [];
    for (let top = 60; top >= 0; top -= 10) byPage.push(...((await json(`/blocks/${top}`)) as { height: number; mediantime: number | null }[]).map((b): [number, number | null] => [b.height, b.mediantime]));
    assert.deepEqual(byPage, headers.map((x) => [x.height, expected(x.height)]).reverse());
    await db.close();
  });
});
