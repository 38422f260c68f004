/**
 * The mempool's pending set on its own: which entries wait for a missing nonce, kept from each
 * sender's run through inserts and removals, against a walk from scratch.
 */
import assert from 'node:assert/strict';
import { PendingSet, firstMissing, type MempoolEntry } from '../ledger/pending-set.ts';
import { TX_BYTES } from '../ledger/transaction.ts';
import { toHex } from '../ledger/bytes.ts';
import { placeholderTransfer, seededRandom, testKey, testParams } from './helpers/fixtures.ts';

const PARAMS = testParams();
const SENDERS = [30, 31, 32].map(testKey);
const SINK = testKey(50).address;

describe('PendingSet', () => {
  it('classifies what waits for a missing nonce as a walk from scratch would, through any inserts, removals and state nonces', () => {
    // Any order of inserts and removals (a removal inside a run, of its first or last nonce, of a
    // gapped one) and any state nonce, higher or lower than the last: more than the mempool asks.
    for (let seed = 1; seed <= 30; seed++) {
      const random = seededRandom(seed);
      const set = new PendingSet();
      const stateNonces = SENDERS.map(() => 0n);
      let made = 0;
      for (let step = 0; step < 300; step++) {
        const i = random.int(SENDERS.length);
        const sender = SENDERS[i]!;
        const key = toHex(sender.address);
        const pending = set.bySender.get(key);
        const op = random.int(3);
        if (op === 0) {
          const nonce = BigInt(random.int(14));
          if (pending?.has(nonce)) continue;
          const tx = placeholderTransfer(PARAMS, sender, SINK, nonce, BigInt(++made));
          set.insert({ tx, idHex: tx.idHex, addedAt: 0 });
        } else if (op === 1 && pending) {
          const entries = [...pending.values()];
          set.remove(entries[random.int(entries.length)]!);
        } else {
          stateNonces[i] = BigInt(random.int(8));
        }
        set.classify(key, stateNonces[i]!);
        let gapped = 0;
        for (const [s, k] of SENDERS.entries()) {
          const byNonce = new Map<bigint, MempoolEntry>();
          for (const e of set.byId.values()) if (e.tx.fromKey === toHex(k.address)) byNonce.set(e.tx.nonce, e);
          const executableBelow = firstMissing(byNonce, stateNonces[s]!);
          for (const nonce of byNonce.keys()) if (nonce > executableBelow) gapped += TX_BYTES;
        }
        assert.equal(set.gappedBytes, gapped, `seed ${seed}, step ${step}`);
      }
    }
  });
});
