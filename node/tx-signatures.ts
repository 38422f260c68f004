import { bytesEqual } from '../ledger/bytes.ts';
import { TxRuleError } from '../ledger/errors.ts';
import { addressOf } from '../ledger/keys.ts';
import { SignatureCache } from '../ledger/signature-cache.ts';
import type { SignatureChecker } from '../ledger/state.ts';
import { UNSIGNED_TX_BYTES, type Transaction } from '../ledger/transaction.ts';
/** Who checks signatures in bulk: the node's worker pool, or (in the simulator) the calling thread. */
export interface SignatureVerifier {
  verify(items: readonly { signature: Uint8Array; message: Uint8Array; publicKey: Uint8Array }[]): Promise<boolean[]>;
}

/**
 * Transaction signatures for block import and mempool admission: checked once (a cache of ids
 * already verified, filled at admission, skips them at import), on every core (the pool), with
 * the same verdicts as `checkTxSignature` in ledger/transaction.ts.
 */
export class TxSignatureVerifier implements SignatureChecker {
  private readonly pool: SignatureVerifier;
  readonly cache: SignatureCache;

  constructor(pool: SignatureVerifier, cache = new SignatureCache()) {
    this.pool = pool;
    this.cache = cache;
  }

  /**
   * Verifies what is not cached; returns the first failure, if any. Caches successes. A key that
   * is not the sender's is that failure, or with `skipMismatches` is left out (and left uncached).
   */
  private async firstFailure(
    txs: readonly Transaction[],
    skipMismatches = false,
  ): Promise<{ index: number; code: 'TX_SENDER_MISMATCH' | 'TX_BAD_SIGNATURE' } | undefined> {
    const todo: number[] = [];
    for (let i = 0; i < txs.length; i++) {
      const tx = txs[i]!;
      if (this.cache.has(tx.idHex)) continue;
      if (!bytesEqual(addressOf(tx.publicKey), tx.from)) {
        if (skipMismatches) continue;
        return { index: i, code: 'TX_SENDER_MISMATCH' };
      }
      todo.push(i);
    }
    if (todo.length === 0) return undefined; // every one cached: an admission after a preverify
    const verdicts = await this.pool.verify(
      todo.map((i) => ({ signature: txs[i]!.signature, message: txs[i]!.bytes.subarray(0, UNSIGNED_TX_BYTES), publicKey: txs[i]!.publicKey })),
    );
    let failed: number | undefined;
    verdicts.forEach((ok, k) => {
      if (ok) this.cache.add(txs[todo[k]!]!.idHex);
      else failed ??= todo[k]!;
    });
    return failed === undefined ? undefined : { index: failed, code: 'TX_BAD_SIGNATURE' };
  }

  async checkBlockSignatures(txs: readonly Transaction[]): Promise<void> {
    const failure = await this.firstFailure(txs);
    if (failure) throw failureError(failure.code, failure.index);
  }

  /** One transaction, for mempool admission: nothing to wait for when it was verified before. */
  checkTx(tx: Transaction): Promise<void> | undefined {
    if (this.cache.has(tx.idHex)) return undefined;
    return this.firstFailure([tx]).then((failure) => {
      if (failure) throw failureError(failure.code);
    });
  }

  /**
   * Transactions now in the chain: their ids leave the cache, which then holds about what the
   * mempool does rather than every transaction of the last 200,000 (~20 MB of a busy node).
   */
  confirmed(txs: readonly Transaction[]): void {
    for (const tx of txs) this.cache.delete(tx.idHex);
  }

  /** Verifies a batch ahead of admitting it one by one (RPC batches, pushes): fills the cache. */
  async preverify(txs: readonly Transaction[]): Promise<void> {
    await this.firstFailure(txs, true);
  }
}

function failureError(code: 'TX_SENDER_MISMATCH' | 'TX_BAD_SIGNATURE', index?: number): TxRuleError {
  return code === 'TX_SENDER_MISMATCH'
    ? new TxRuleError(code, 'public key does not belong to the sender', 100, index)
    : new TxRuleError(code, 'signature does not verify', 100, index);
}
