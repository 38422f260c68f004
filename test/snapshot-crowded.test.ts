/**
 * Crowded positions of a snapshot (ledger/snapshot-store.ts, node/snapshots.ts,
 * node/snapshot-sync.ts): anyone can pay addresses whose state keys share a prefix (about
 * 4,097 · 2^depth hashes for a position at `depth` holding more than a chunk), so `split` may not
 * stop at a fixed depth. Here the chunk is 4 accounts, and six addresses ground once (their keys
 * share 18 bits, 5ac3 and bits 01: past the 16 levels a snapshot keeps whole) crowd a position.
 */
import assert from 'node:assert/strict';
import { fromHex } from '../ledger/bytes.ts';
import { MemoryDisk } from '../ledger/kv-memory.ts';
import type { KvStore } from '../ledger/kv.ts';
import { kvOver } from './helpers/kv.ts';
import { SortedTreeBuilder, type SortedLeaf } from '../ledger/smt-build.ts';
import { compareKeys, positionId, stateKey } from '../ledger/smt.ts';
import { childPositions, positionDepth, positionsAt, verifyChunk, type ChunkEntry } from '../ledger/smt-range.ts';
import { SnapshotStore } from '../ledger/snapshot-store.ts';
import type { BlockHeader } from '../ledger/block.ts';
import type { PeerManager } from '../node/peers.ts';
import { networkNames } from '../node/protocols.ts';
import { MAX_POSITIONS_IN_LINE, SnapshotJoin } from '../node/snapshot-sync.ts';
import { serveSnapshots } from '../node/snapshots.ts';
import { decodeGetSnapshotChunk, encodeSnapshotChunk } from '../node/snapshot-wire.ts';
import type { Responder } from '../node/transport.ts';

const CHUNK = 4;
const HEIGHT = 20;
const HASH = new Uint8Array(32).fill(9);
const GROUND = [
  '63726f776465642100000000000000000001d412',
  '63726f776465642100000000000000000001e1f1',
  '63726f77646564210000000000000000000e46fe',
  '63726f776465642100000000000000000019dbf7',
  '63726f77646564210000000000000000001c35db',
  '63726f77646564210000000000000000001f3522',
].map((hex) => fromHex(hex));

function accounts(): ChunkEntry[] {
  const out: ChunkEntry[] = GROUND.map((address, i) => ({ address, account: { balance: BigInt(i + 1), nonce: 0n } }));
  for (let i = 0; i < 40; i++) out.push({ address: new Uint8Array(20).fill(i + 1), account: { balance: 7n, nonce: BigInt(i) } });
  return out;
}

function rootOf(entries: readonly ChunkEntry[]): Uint8Array {
  const leaves = entries.map((e) => ({ key: stateKey(e.address), account: e.account })).sort((a, b) => compareKeys(a.key, b.key));
  const builder = new SortedTreeBuilder();
  let group: SortedLeaf[] = [];
  for (const leaf of leaves) {
    if (group.length > 0 && group[0]!.key[0] !== leaf.key[0]) {
      builder.addGroup(group[0]!.key[0]!, group);
      group = [];
    }
    group.push(leaf);
  }
  if (group.length > 0) builder.addGroup(group[0]!.key[0]!, group);
  return builder.finish();
}

async function crowdedSnapshot(kv: KvStore = new MemoryDisk().open()): Promise<{ store: SnapshotStore; root: Uint8Array }> {
  const all = accounts();
  const root = rootOf(all);
  const store = new SnapshotStore(kv, CHUNK);
  await store.make(HEIGHT, HASH, root, (async function* () { yield* all; })(), async () => {});
  return { store, root };
}

describe('a snapshot position crowded below the 16 levels kept whole', () => {
  it('is split until its chunks fit, and every chunk proves against the state root', async () => {
    const { store, root } = await crowdedSnapshot();
    const todo = positionsAt(4);
    const splits: number[] = [];
    let served = 0;
    while (todo.length > 0) {
      const position = todo.shift()!;
      const chunk = await store.chunk(HEIGHT, position);
      if (chunk === 'split') {
        splits.push(positionDepth(position));
        todo.push(...childPositions(position));
        continue;
      }
      served += verifyChunk(root, position, chunk.entries, chunk.proof).length;
    }
    assert.equal(served, 46, 'every account, once');
    assert.equal(Math.max(...splits), 19, 'split to depth 19, past the 16 levels');
    for (let depth = 16; depth <= 19; depth++) assert.equal(splits.filter((d) => d === depth).length, 1, `one crowded position at depth ${depth}`);
  });

  it('answers split from the mark, reading no account (a read of a chunk and one more was paid as 2 bytes)', async () => {
    const inner = new MemoryDisk().open();
    let read = 0;
    const kv = kvOver(inner, {
      iterate: (range, limit) => {
        const it = inner.iterate(range, limit);
        return (async function* () {
          for await (const entry of it) {
            read++;
            yield entry;
          }
        })();
      },
    });
    const { store } = await crowdedSnapshot(kv);
    read = 0;
    for (const depth of [0, 4, 16, 19]) assert.equal(await store.chunk(HEIGHT, positionId(stateKey(GROUND[0]!), depth)), 'split');
    assert.equal(read, 0);
    const chunk = await store.chunk(HEIGHT, positionId(stateKey(GROUND[0]!), 20));
    assert.ok(chunk !== 'split' && chunk.entries.length === 4);
    assert.equal(read, 4, 'a chunk reads what it sends');
  });

  it('proves a deep position no split leads to (from its parent accounts, at most a chunk)', async () => {
    const { store, root } = await crowdedSnapshot();
    for (const address of [GROUND[5]!, new Uint8Array(20).fill(3)]) {
      for (const depth of [20, 30, 255]) {
        const position = positionId(stateKey(address), depth);
        const chunk = await store.chunk(HEIGHT, position);
        assert.notEqual(chunk, 'split');
        if (chunk === 'split') return;
        assert.equal(verifyChunk(root, position, chunk.entries, chunk.proof).length, 1);
      }
    }
  });

  it('a joining node takes the split positions past depth 16 from an honest server and bans nobody', async () => {
    const { store, root } = await crowdedSnapshot();
    const { join, penalties, verified } = await joinFrom(store, root, {});
    assert.equal(await join.fetch(['honest']), true, 'every key covered');
    assert.deepEqual(penalties, []);
    assert.equal(verified.length, 46);
  });

  it('bans a peer whose split the halves show to hold no more than a chunk', async () => {
    // From a review: `split` for every position down to depth 15 had the joiner ask 2^16 chunks
    // of honest servers, unpunished. Here the liar splits everything above depth 10.
    const { store, root } = await crowdedSnapshot();
    const { join, penalties, verified } = await joinFrom(store, root, {
      liar: (position) => (positionDepth(position) < 10 ? encodeSnapshotChunk({ kind: 'split' }) : undefined),
    });
    assert.equal(await join.fetch(['liar', 'honest']), true, 'every key covered');
    assert.equal(verified.length, 46);
    assert.equal(penalties.length, 1, penalties.join('; '));
    assert.match(penalties[0]!, /^liar 100 snapshot sync: answered split for a position that holds \d+ accounts/);
  });

  it('ends the round when a lone provider splits every position (split has no depth floor to stop it)', async () => {
    const { store, root } = await crowdedSnapshot();
    let asked = 0;
    const { join, penalties, verified } = await joinFrom(store, root, {
      liar: () => {
        asked++;
        return encodeSnapshotChunk({ kind: 'split' });
      },
    });
    assert.equal(await join.fetch(['liar']), false, 'not covered: the round ends');
    assert.ok(asked < MAX_POSITIONS_IN_LINE, `${asked} asked`);
    assert.deepEqual([penalties, verified.length], [[], 0], 'nothing settled any of its claims');
  });
});

type FakePeer = (position: string) => Uint8Array | undefined;

/** A SnapshotJoin whose providers are `store` served honestly, but for the answers `peers` give instead. */
async function joinFrom(store: SnapshotStore, root: Uint8Array, peers: Record<string, FakePeer>) {
  let respond: Responder | undefined;
  await serveSnapshots({ db: { snapshots: store } } as never, (async (_name: string, _protocol: string, r: Responder) => void (respond = r)) as never, networkNames(HASH), () => {});
  const verified: ChunkEntry[] = [];
  const penalties: string[] = [];
  const joiner = { db: { join: { chunksDone: async () => new Set<string>(), putChunk: async (_id: string, leaves: readonly ChunkEntry[]) => void verified.push(...leaves) } } };
  const join = new SnapshotJoin({
    request: async (peer, _protocol, body) => peers[peer]?.(decodeGetSnapshotChunk(body).position) ?? ((await respond!(body, peer)) as Uint8Array),
    requestMany: async () => [],
    names: networkNames(HASH),
    chain: joiner as never,
    peers: { isBanned: () => false, penalize: (peer: string, score: number, why: string) => void penalties.push(`${peer} ${score} ${why}`) } as unknown as PeerManager,
    clock: () => 0,
    env: { monotonic: () => 0 },
    interval: HEIGHT,
    candidates: () => [],
    onHeaders: () => {},
    log: () => {},
    chunkAccounts: CHUNK,
  });
  const header = { height: HEIGHT, hash: HASH, stateRoot: root } as BlockHeader;
  const fetchState = (join as unknown as { fetchState(pivot: number, header: BlockHeader, providers: readonly string[]): Promise<boolean> }).fetchState.bind(join);
  return { join: { fetch: (providers: readonly string[]) => fetchState(HEIGHT, header, providers) }, penalties, verified };
}
