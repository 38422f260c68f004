import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { InnerHashQueue, checkedHashMany, innerHashBackend, useInnerHashBackend, type HashMany } from '../ledger/inner-hashes.ts';
import { INNER_NODE_BYTES, INNER_PREFIX, nodeHash } from '../ledger/smt.ts';
import { seededRandom } from './helpers/fixtures.ts';
import { INNER_HASH_BACKENDS, backendLabel, useBackendOrSkip } from './helpers/inner-hash-backend.ts';

const sha256 = (bytes: Uint8Array): Buffer => createHash('sha256').update(bytes).digest();

function randomInner(rng: ReturnType<typeof seededRandom>): Uint8Array {
  const node = new Uint8Array(INNER_NODE_BYTES);
  node[0] = INNER_PREFIX;
  node.set(rng.bytes(64), 1);
  return node;
}

describe('inner node hashes, a tree level at a time (ledger/inner-hashes.ts)', () => {
  afterEach(() => useInnerHashBackend('native'));

  it('an inner node hashes its 64 bytes after the prefix; a leaf its 49', () => {
    const rng = seededRandom(7);
    const inner = randomInner(rng);
    assert.deepEqual(Buffer.from(nodeHash(inner)), sha256(inner.subarray(1)));
    const leaf = new Uint8Array(49);
    leaf.set(rng.bytes(48), 1);
    assert.deepEqual(Buffer.from(nodeHash(leaf)), sha256(leaf));
  });

  for (const backend of INNER_HASH_BACKENDS) {
    it(`hashes every node of a level into its place, levels of 1 to 700 nodes (${backendLabel(backend)} SHA-256)`, function () {
      useBackendOrSkip(this, backend);
      const rng = seededRandom(11);
      const queue = new InnerHashQueue();
      for (const n of [1, 2, 3, 255, 256, 257, 700, 5]) {
        const nodes = Array.from({ length: n }, () => randomInner(rng));
        // Each hash into its own array at its own offset, some sharing one array.
        const outs = Array.from({ length: n }, (_, i) => (i % 3 === 0 ? new Uint8Array(80) : undefined));
        const shared = new Uint8Array(32 * n + 7);
        const places = nodes.map((_, i) => (outs[i] ? { out: outs[i]!, at: 1 + (i % 40) } : { out: shared, at: 7 + 32 * i }));
        nodes.forEach((node, i) => queue.add(9, node, places[i]!.out, places[i]!.at));
        assert.equal(queue.size, n);
        queue.run();
        assert.equal(queue.size, 0);
        nodes.forEach((node, i) => {
          const { out, at } = places[i]!;
          assert.deepEqual(Buffer.from(out.subarray(at, at + 32)), sha256(node.subarray(1)), `level of ${n}, node ${i}`);
        });
        // The nodes themselves are read, never written.
        nodes.forEach((node) => assert.equal(node[0], INNER_PREFIX));
      }
    });

    it(`takes the deepest level first, so a parent hashes its children's new hashes (${backendLabel(backend)} SHA-256)`, function () {
      useBackendOrSkip(this, backend);
      // A path of nodes from depth 0 to 20, each with its child's hash as its left half, queued
      // root first (the order phase 2 of an update meets them in is bottom-up; this is the worst).
      const rng = seededRandom(13);
      const path = Array.from({ length: 21 }, () => randomInner(rng));
      const root = new Uint8Array(32);
      const queue = new InnerHashQueue();
      path.forEach((node, depth) => queue.add(depth, node, depth === 0 ? root : path[depth - 1]!, depth === 0 ? 0 : 1));
      queue.run();
      let expected = sha256(path[20]!.subarray(1));
      for (let depth = 19; depth >= 0; depth--) {
        const node = Buffer.from(path[depth]!);
        expected.copy(node, 1);
        expected = sha256(node.subarray(1));
      }
      assert.deepEqual(Buffer.from(root), expected);
    });
  }

  it('clear() drops what is queued: an update that failed part way leaves nothing for the next', () => {
    const rng = seededRandom(17);
    const queue = new InnerHashQueue();
    const out = new Uint8Array(32);
    queue.add(3, randomInner(rng), out, 0);
    queue.add(5, randomInner(rng), out, 0);
    queue.clear();
    assert.equal(queue.size, 0);
    queue.run();
    assert.deepEqual(out, new Uint8Array(32));
  });

  it('uses a native SHA-256 only if it hashes as SHA-256 does', () => {
    const right: HashMany = (input, output) => {
      for (let i = 0; i < input.length / 64; i++) output.set(sha256(input.subarray(64 * i, 64 * i + 64)), 32 * i);
    };
    const wrongOnce: HashMany = (input, output) => {
      right(input, output);
      output[40]! ^= 1; // the second message's hash, one bit off
    };
    const throws: HashMany = () => {
      throw new Error('no such instruction');
    };
    // A binding that reads the input's buffer from its start, not from the view's offset.
    const ignoresOffset: HashMany = (input, output) => right(new Uint8Array(input.buffer, 0, input.length), output);
    assert.equal(checkedHashMany(right), right);
    assert.equal(checkedHashMany(wrongOnce), undefined);
    assert.equal(checkedHashMany(ignoresOffset), undefined);
    assert.equal(checkedHashMany(throws), undefined);
    // On this platform the native hash loaded and passed the same check (else the node hashes in JavaScript).
    if (process.platform === 'linux' && process.arch === 'x64') assert.equal(innerHashBackend(), 'native');
  });
});
