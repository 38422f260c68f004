/**
 * What a joining node (node/snapshot-sync.ts) does with each way a provider can answer a
 * getSnapshotChunk falsely: every one fails the chunk's range proof or its checks, the liar is
 * banned, the chunk is taken from the honest peer, and the join ends at the state the chain
 * commits to. The honest peers are never blamed, whatever the liar did.
 */
import assert from 'node:assert/strict';
import { stateDigest } from '../ledger/audit.ts';
import { stateKey } from '../ledger/smt.ts';
import { childPositions, keyUnder, parentPosition, positionDepth, type ChunkEntry } from '../ledger/smt-range.ts';
import { decodeGetSnapshotChunk, decodeSnapshotChunk, encodeGetSnapshotChunk, encodeSnapshotChunk, type SnapshotChunkAnswer } from '../node/snapshot-wire.ts';
import { makeSnapshot } from '../node/snapshots.ts';
import { testKey } from './helpers/fixtures.ts';
import { INTERVAL, joinWorld, wrapSnapshots, type Responder } from './helpers/snapshot-world.ts';

type Chunk = Extract<SnapshotChunkAnswer, { kind: 'chunk' }>;

/** An account whose key lies outside position `id`. */
function outside(id: string): ChunkEntry {
  for (let n = 100; ; n++) {
    const { address } = testKey(n);
    if (!keyUnder(stateKey(address), id)) return { address, account: { balance: 1n, nonce: 0n } };
  }
}

/**
 * Each lie: what the liar answers instead of the honest chunk `honest` at `position` (undefined:
 * the honest answer, where the lie needs what this chunk lacks); `ask` asks its honest self, of
 * the snapshot asked for or of the one `above` it by that many blocks.
 */
const LIES: Record<string, (honest: Chunk, position: string, ask: (position: string, above?: number) => Promise<SnapshotChunkAnswer>) => Promise<SnapshotChunkAnswer | undefined>> = {
  'accounts out of key order': async (c) => (c.entries.length < 2 ? undefined : { ...c, entries: [c.entries[1]!, c.entries[0]!, ...c.entries.slice(2)] }),
  'an account twice': async (c) => (c.entries.length < 1 ? undefined : { ...c, entries: [c.entries[0]!, ...c.entries] }),
  'an account left out': async (c) => (c.entries.length < 2 ? undefined : { ...c, entries: c.entries.slice(1) }),
  'an account outside the range': async (c, position) => ({ ...c, entries: [...c.entries, outside(position)] }),
  'the range said to be empty': async (c) => (c.entries.length < 1 ? undefined : { kind: 'chunk', entries: [], proof: { siblings: c.proof.siblings, end: { kind: 'empty' } } }),
  "the parent's chunk (a range over this one)": async (_c, position, ask) => ask(parentPosition(position)),
  "a half's chunk (part of the range)": async (_c, position, ask) => ask(childPositions(position)[0]),
  'the chunk of the snapshot one interval below (another pivot)': async (_c, position, ask) => {
    const other = await ask(position, -INTERVAL);
    return other.kind === 'chunk' ? other : undefined;
  },
};

describe('a provider that answers a snapshot chunk falsely', function () {
  this.timeout(120_000);

  for (const [lie, tell] of Object.entries(LIES)) {
    it(`${lie}: banned, and the join ends at the chain's state from the honest peer`, async () => {
      // One world for every lie (the forger's of snapshot-sync.test.ts, where n3 is asked chunks): they differ from the first lie on.
      const world = joinWorld('snapshot-forger', { hostile: true });
      let told = 0;
      let made: Promise<unknown> | undefined;
      let calls = 0;
      wrapSnapshots(world, 'n3', (honest: Responder) => async (req, peer) => {
        calls++;
        const answer = decodeSnapshotChunk(await honest(req, peer));
        if (answer.kind !== 'chunk') return encodeSnapshotChunk(answer);
        const asked = decodeGetSnapshotChunk(req);
        const ask = async (position: string, above = 0) => {
          const chain = world.nodes[3]!.node!.chain;
          // A copy of the state at that height too (the keeper keeps only the pivot's here).
          if (above !== 0) await (made ??= makeSnapshot(chain, asked.height + above, async () => {}));
          const hash = above === 0 ? asked.hash : await chain.byHeight.hashAt(asked.height + above);
          return hash ? decodeSnapshotChunk(await honest(encodeGetSnapshotChunk({ height: asked.height + above, hash, position }), peer)) : ({ kind: 'none' } as const);
        };
        const lied = positionDepth(asked.position) > 0 ? await tell(answer, asked.position, ask) : undefined;
        if (lied === undefined) return encodeSnapshotChunk(answer);
        told++;
        return encodeSnapshotChunk(lied);
      });
      await world.run();
      const [n0, n1, n2] = world.nodes.map((n) => n.node!);
      assert.ok(told > 0, `n3 lied (${calls} asked)`);
      assert.ok(n2!.db.history.stateBase > 0, 'n2 joined by snapshot');
      assert.deepEqual([n2!.peers.isBanned('n3'), n2!.peers.isBanned('n0'), n2!.peers.isBanned('n1')], [true, false, false], 'n3 banned, the honest peers not');
      assert.equal(n2!.chain.tip.hashHex, n0!.chain.tip.hashHex, 'and caught up');
      const drive = async <T>(work: Promise<T>): Promise<T> => (await world.scheduler.drive(work, 60_000))!.value;
      assert.equal(await drive(stateDigest(n2!.db)), await drive(stateDigest(n1!.db)), 'same state');
      for (const sim of world.nodes) sim.crash();
    });
  }
});
