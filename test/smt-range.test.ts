import assert from 'node:assert/strict';
import { Reader, bytesEqual } from '../ledger/bytes.ts';
import { DecodeError, ProofError } from '../ledger/errors.ts';
import type { Account } from '../ledger/state.ts';
import { compareKeys, stateKey, type TreeNodeReader } from '../ledger/smt.ts';
import { MemoryStateTree } from '../ledger/smt-memory.ts';
import { SortedTreeBuilder, type SortedLeaf } from '../ledger/smt-build.ts';
import {
  childPositions,
  encodeChunkProof,
  keyUnder,
  positionsAt,
  proveChunk,
  readChunkProof,
  verifyChunk,
  type ChunkEntry,
  type ChunkProof,
} from '../ledger/smt-range.ts';
import { seededRandom } from './helpers/fixtures.ts';

interface World {
  tree: MemoryStateTree;
  reader: TreeNodeReader;
  /** Every account, in key order. */
  sorted: (ChunkEntry & { key: Uint8Array })[];
}

function world(count: number, seed: number): World {
  const random = seededRandom(seed);
  const sorted: (ChunkEntry & { key: Uint8Array })[] = [];
  for (let i = 0; i < count; i++) {
    const address = random.bytes(20);
    sorted.push({ address, key: stateKey(address), account: { balance: BigInt(1 + random.int(1_000_000)), nonce: BigInt(random.int(5)) } });
  }
  sorted.sort((a, b) => compareKeys(a.key, b.key));
  const tree = MemoryStateTree.EMPTY.with(sorted.map((e) => ({ key: e.key, account: e.account })));
  return { tree, sorted, reader: { readNodes: async (ids) => ids.map((id) => tree.nodeAt(id)) } };
}

const under = (w: World, id: string) => w.sorted.filter((e) => keyUnder(e.key, id)).map(({ address, account }) => ({ address, account }));

async function chunk(w: World, id: string): Promise<{ entries: ChunkEntry[]; proof: ChunkProof }> {
  return { entries: under(w, id), proof: await proveChunk(w.reader, id) };
}

describe('state tree range proofs (snapshot chunks)', () => {
  it('builds from sorted leaves the same tree, node for node, as the update does', () => {
    for (const count of [0, 1, 2, 3, 50, 700]) {
      const w = world(count, 7 + count);
      const nodes = new Map<string, Uint8Array>();
      const builder = new SortedTreeBuilder((id, node) => {
        assert.ok(!nodes.has(id), 'a position emitted twice');
        nodes.set(id, node);
      });
      for (let b = 0; b < 256; b++) {
        const group = w.sorted.filter((e) => e.key[0] === b).map((e): SortedLeaf => ({ key: e.key, account: e.account }));
        if (group.length > 0) builder.addGroup(b, group);
      }
      assert.ok(bytesEqual(builder.finish(), w.tree.root), `root of ${count}`);
      for (const [id, node] of nodes) assert.ok(bytesEqual(node, w.tree.nodeAt(id)!), `node at ${id}`);
      assert.equal(nodes.size, w.tree.storedNodeCount(0), `every node of ${count}`);
    }
  });

  it('every chunk of a tree verifies, at every depth, and together they hold every account once', async () => {
    for (const count of [0, 1, 2, 40, 600]) {
      const w = world(count, count);
      for (const depth of [0, 1, 3, 6, 9]) {
        let seen = 0;
        for (const id of positionsAt(depth)) {
          const { entries, proof } = await chunk(w, id);
          const decoded = readChunkProof(new Reader(encodeChunkProof(proof)));
          seen += verifyChunk(w.tree.root, id, entries, decoded).length;
        }
        assert.equal(seen, count, `${count} accounts in chunks of depth ${depth}`);
      }
    }
  });

  it('refuses a chunk with an account dropped, added, altered, reordered, or from another root', async () => {
    const w = world(300, 42);
    const other = world(300, 43);
    const id = positionsAt(3)[5]!;
    const { entries, proof } = await chunk(w, id);
    assert.ok(entries.length >= 3);
    verifyChunk(w.tree.root, id, entries, proof);
    const bad: [string, ChunkEntry[], ChunkProof, Uint8Array?][] = [
      ['dropped', entries.slice(1), proof],
      ['dropped (last)', entries.slice(0, -1), proof],
      ['added', [...entries, under(other, id)[0]!].sort((a, b) => compareKeys(stateKey(a.address), stateKey(b.address))), proof],
      ['altered balance', entries.map((e, i) => (i === 1 ? { ...e, account: { ...e.account, balance: e.account.balance + 1n } } : e)), proof],
      ['altered nonce', entries.map((e, i) => (i === 2 ? { ...e, account: { ...e.account, nonce: e.account.nonce + 1n } } : e)), proof],
      ['reordered', [entries[1]!, entries[0]!, ...entries.slice(2)], proof],
      ['duplicated', [entries[0]!, ...entries], proof],
      ['an account from another range', [...entries, under(w, positionsAt(3)[6]!)[0]!], proof],
      ['another root', entries, proof, other.tree.root],
      ['empty, with the proof of a full range', [], proof],
    ];
    for (const [what, e, p, root] of bad) {
      assert.throws(() => verifyChunk(root ?? w.tree.root, id, e, p), ProofError, what);
    }
    // A sibling changed, or one taken away.
    const tampered: ChunkProof = { ...proof, siblings: proof.siblings.map((s, i) => (i === 0 ? s.map((b) => b ^ 1) : s)) };
    assert.throws(() => verifyChunk(w.tree.root, id, entries, tampered), ProofError);
    assert.throws(() => verifyChunk(w.tree.root, id, entries, { ...proof, siblings: proof.siblings.slice(1) }), ProofError);
    // The proof of one range for another range's accounts.
    const [left, right] = childPositions(id);
    const halves = [await chunk(w, left), await chunk(w, right)];
    verifyChunk(w.tree.root, left, halves[0]!.entries, halves[0]!.proof);
    assert.throws(() => verifyChunk(w.tree.root, right, halves[0]!.entries, halves[0]!.proof), ProofError);
    assert.throws(() => verifyChunk(w.tree.root, id, halves[0]!.entries, halves[0]!.proof), ProofError);
  });

  it('an empty range proves empty; hiding a lone leaf behind "empty" or "outside" fails', async () => {
    const w = world(5, 9);
    let hidden = 0;
    for (const id of positionsAt(6)) {
      const { entries, proof } = await chunk(w, id);
      verifyChunk(w.tree.root, id, entries, proof);
      if (entries.length === 1) {
        hidden++;
        assert.throws(() => verifyChunk(w.tree.root, id, [], proof), ProofError);
        assert.throws(() => verifyChunk(w.tree.root, id, [], { siblings: proof.siblings, end: { kind: 'empty' } }), ProofError);
        const leaf = w.sorted.find((e) => keyUnder(e.key, id))!;
        assert.throws(() => verifyChunk(w.tree.root, id, [], { siblings: proof.siblings, end: { kind: 'other', key: leaf.key, account: leaf.account } }), ProofError);
      }
    }
    assert.equal(hidden, 5);
  });

  it('refuses a proof with bits past its depth or an empty sibling written out', () => {
    const bytes = encodeChunkProof({ siblings: [new Uint8Array(32).fill(1)], end: { kind: 'node' } });
    const bad = bytes.slice();
    bad[1]! |= 0x01;
    assert.throws(() => readChunkProof(new Reader(bad)), DecodeError);
    const zero = Uint8Array.of(1, 0x80, ...new Uint8Array(32), 0);
    assert.throws(() => readChunkProof(new Reader(zero)), DecodeError);
    const balance: Account = { balance: 1n, nonce: 0n };
    assert.ok(readChunkProof(new Reader(encodeChunkProof({ siblings: [], end: { kind: 'other', key: new Uint8Array(32), account: balance } }))));
  });
});
