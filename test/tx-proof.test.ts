import assert from 'node:assert/strict';
import { toHex } from '../ledger/bytes.ts';
import { DecodeError, ProofError } from '../ledger/errors.ts';
import { merkleAuditPath, merkleLeaf, merkleRoot, merkleRootFromPath } from '../ledger/merkle.ts';
import { decodeTxProof, encodeTxProof, proveTransaction, verifyTxProof } from '../ledger/tx-proof.ts';
import { FUNDED_KEYS, childBlock, seededRandom, testKey, transfer } from './helpers/fixtures.ts';

describe('transaction proofs (RFC 6962 audit paths)', () => {
  it('every leaf of every tree size up to 40 has a path to the root, and only to it', () => {
    const rng = seededRandom(3);
    for (let n = 1; n <= 40; n++) {
      const ids = Array.from({ length: n }, () => rng.bytes(32));
      const leaves = ids.map(merkleLeaf);
      const root = toHex(merkleRoot(ids));
      for (let i = 0; i < n; i++) {
        const path = merkleAuditPath(leaves, i);
        assert.ok(path.length <= Math.ceil(Math.log2(n)));
        assert.equal(toHex(merkleRootFromPath(leaves[i]!, path)), root, `leaf ${i} of ${n}`);
        if (n > 1) {
          assert.notEqual(toHex(merkleRootFromPath(leaves[(i + 1) % n]!, path)), root, 'another leaf');
          for (let s = 0; s < path.length; s++) {
            const turned = path.map((step, k) => (k === s ? { ...step, left: !step.left } : step));
            assert.notEqual(toHex(merkleRootFromPath(leaves[i]!, turned)), root, 'a step on the other side');
          }
        }
      }
    }
  });

  it("proves a block's transactions against its header, and refuses any byte changed", () => {
    const [a, b] = FUNDED_KEYS;
    const txs = [0n, 1n, 2n, 3n, 4n].map((n) => transfer(a!, b!.address, 10n + n, n));
    const block = childBlock({ hash: new Uint8Array(32), height: 7 }, txs, { miner: testKey(5).address });
    for (let p = 0; p < txs.length; p++) {
      const bytes = encodeTxProof(proveTransaction(block, p));
      const proven = verifyTxProof(block.header, bytes);
      assert.equal(toHex(proven.tx.id), toHex(txs[p]!.id));
      assert.deepEqual(encodeTxProof(decodeTxProof(bytes)), bytes);
      for (let i = 0; i < bytes.length; i++) {
        const bad = bytes.slice();
        bad[i]! ^= 0x01;
        assert.throws(() => verifyTxProof(block.header, bad), (e: unknown) => e instanceof DecodeError || e instanceof ProofError, `byte ${i}`);
      }
    }
  });
});
