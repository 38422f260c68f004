import assert from 'node:assert/strict';
import { SignatureCache } from '../ledger/signature-cache.ts';
import { decodeTransaction, signTransaction, type Transaction } from '../ledger/transaction.ts';
import { TxSignatureVerifier } from '../node/tx-signatures.ts';
import { VerifyPool, type VerifyItem } from '../node/verify-pool.ts';
import { testKey } from './helpers/fixtures.ts';

/** A pool that runs no threads and counts the signatures it is asked to check. */
class CountingPool extends VerifyPool {
  checked = 0;
  constructor() {
    super(0);
  }
  override async verify(items: readonly VerifyItem[]): Promise<boolean[]> {
    this.checked += items.length;
    return super.verify(items);
  }
}

function transfers(count: number, from = 0): Transaction[] {
  return Array.from({ length: count }, (_, i) =>
    signTransaction({ chainId: 7, to: testKey(9).address, amount: 1n, fee: 1n, nonce: BigInt(from + i) }, testKey(1).privateKey),
  );
}

describe('TxSignatureVerifier: the signature cache', function () {
  it('checks a transaction admitted to the mempool once: not again when its block is imported', async function () {
    const pool = new CountingPool();
    const verifier = new TxSignatureVerifier(pool);
    const txs = transfers(12);
    for (const tx of txs.slice(0, 10)) await verifier.checkTx(tx); // admission, one at a time
    assert.equal(pool.checked, 10);
    await verifier.checkBlockSignatures(txs); // the block: two it has not seen
    assert.equal(pool.checked, 12);
    await verifier.checkBlockSignatures(txs);
    assert.equal(pool.checked, 12, 'nothing checked twice');
  });

  it('does not cache a failure: a forged transaction is refused every time it comes', async function () {
    const pool = new CountingPool();
    const verifier = new TxSignatureVerifier(pool);
    const [tx] = transfers(1);
    const forged = new Uint8Array(tx!.bytes);
    forged[45]! ^= 1; // the amount: the signature no longer covers the fields
    const bad = decodeTransaction(forged);
    for (let i = 0; i < 2; i++) {
      await assert.rejects(verifier.checkBlockSignatures([bad]), { code: 'TX_BAD_SIGNATURE' });
    }
    assert.equal(pool.checked, 2);
  });

  it('drops the ids of confirmed transactions, so it holds about what the mempool holds', async function () {
    const verifier = new TxSignatureVerifier(new CountingPool());
    const txs = transfers(5);
    await verifier.preverify(txs);
    assert.equal(verifier.cache.size, 5);
    verifier.confirmed(txs.slice(0, 3));
    assert.equal(verifier.cache.size, 2);
    assert.ok(!verifier.cache.has(txs[0]!.idHex) && verifier.cache.has(txs[4]!.idHex));
  });

  it('is bounded: past its capacity the oldest ids go first', function () {
    const cache = new SignatureCache(3);
    for (const id of ['a', 'b', 'c', 'd']) cache.add(id);
    assert.equal(cache.size, 3);
    assert.ok(!cache.has('a'));
    assert.ok(cache.has('b') && cache.has('d'));
  });

  it('reports the first failure in block order, as one check at a time would: a bad signature before a key that is not the sender\'s', async function () {
    // From a review: a key mismatch anywhere was reported before any signature was checked, so a
    // block's error named a later transaction than the inline checker's (ledger/transaction.ts).
    const [ok, signed, other] = transfers(3);
    const forged = new Uint8Array(signed!.bytes);
    forged[45]! ^= 1;
    const badSignature = decodeTransaction(forged);
    const swapped = new Uint8Array(other!.bytes);
    swapped.set(testKey(2).publicKey, swapped.length - 64 - 33); // another key: not the sender's
    const mismatch = decodeTransaction(swapped);
    const verifier = new TxSignatureVerifier(new CountingPool());
    await assert.rejects(verifier.checkBlockSignatures([ok!, badSignature, mismatch]), { code: 'TX_BAD_SIGNATURE', txIndex: 1 });
    await assert.rejects(verifier.checkBlockSignatures([ok!, mismatch, badSignature]), { code: 'TX_SENDER_MISMATCH', txIndex: 1 });
  });

  it("asks the pool to put a block's signatures first, unless told its blocks are a background check's", async function () {
    // From a review: the history check's blocks went first too, and a long check held the
    // transactions of peers (and, behind it in the same queue, the tip's blocks) for seconds.
    const asked: (boolean | undefined)[] = [];
    const pool = { verify: async (items: readonly VerifyItem[], o?: { urgent?: boolean }) => (asked.push(o?.urgent), items.map(() => true)) };
    const [a, b, c] = transfers(3);
    await new TxSignatureVerifier(pool).checkBlockSignatures([a!]);
    await new TxSignatureVerifier(pool, undefined, { blocksUrgent: false }).checkBlockSignatures([b!]);
    await new TxSignatureVerifier(pool).preverify([c!]);
    assert.deepEqual(asked, [true, false, undefined]);
  });
});
