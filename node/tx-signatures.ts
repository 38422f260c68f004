import { bytesEqual } from '../ledger/bytes.ts';
import { TxRuleError } from '../ledger/errors.ts';
import { addressOf } from '../ledger/keys.ts';
import { SignatureCache } from '../ledger/signature-cache.ts';
import type { SignatureChecker } from '../ledger/state.ts';
import { UNSIGNED_TX_BYTES, type Transaction } from '../ledger/transaction.ts';
/**
 * The first round of a peer's batch (preverifyFromPeer), and how much each round after it grows:
 * a gossip batch of a busy network's 10 ms is one round, a full one (1,000) two. Rounds of 64
 * doubling made that five, each waiting on the pool behind the miner's slices, and the devnet's
 * miner admitted relayed transactions more slowly (2,981 against 3,362 tx/s confirmed, medians of
 * three alternating runs; not separable from the noise, but the mechanism is plain).
 */
export const FIRST_PEER_ROUND = 256;
const PEER_ROUND_GROWTH = 4;

/** Who checks signatures in bulk: the node's worker pool, or (in the simulator) the calling thread. */
export interface SignatureVerifier {
  /** `urgent`: a block's, which its import waits for; checked before what is not. */
  verify(items: readonly { signature: Uint8Array; message: Uint8Array; publicKey: Uint8Array }[], o?: { urgent?: boolean }): Promise<boolean[]>;
}

/**
 * Transaction signatures for block import and mempool admission: checked once (a cache of ids
 * already verified, filled at admission, skips them at import), on every core (the pool), with
 * the same verdicts as `checkTxSignature` in ledger/transaction.ts.
 */
export class TxSignatureVerifier implements SignatureChecker {
  private readonly pool: SignatureVerifier;
  readonly cache: SignatureCache;

  /**
   * Whether its blocks' signatures go before transaction batches (VerifyPool's urgent queue): a
   * node's own chain's do; a background check of old history's must not hold up the tip's.
   */
  private readonly blocksUrgent: boolean;

  constructor(pool: SignatureVerifier, cache = new SignatureCache(), o: { blocksUrgent?: boolean } = {}) {
    this.pool = pool;
    this.cache = cache;
    this.blocksUrgent = o.blocksUrgent ?? true;
  }

  /**
   * Verifies what is not cached; returns the first failure in order, if any, as checking one at a
   * time would (a bad signature before a key that is not the sender's is the bad signature).
   * Caches successes. A key that is not the sender's is a failure, or with `skipMismatches` is
   * left out (and left uncached).
   */
  private async firstFailure(
    txs: readonly Transaction[],
    o: { skipMismatches?: boolean; urgent?: boolean } = {},
  ): Promise<{ index: number; code: 'TX_SENDER_MISMATCH' | 'TX_BAD_SIGNATURE' } | undefined> {
    const todo: number[] = [];
    // Each id once: a peer's batch of one valid transaction a thousand times over was a thousand
    // verifications for its one signing, at every node its gossip reached.
    const queued = new Set<string>();
    let mismatch: number | undefined;
    for (let i = 0; i < txs.length; i++) {
      const tx = txs[i]!;
      if (queued.has(tx.idHex) || this.cache.has(tx.idHex)) continue;
      if (!bytesEqual(addressOf(tx.publicKey), tx.from)) {
        if (o.skipMismatches) continue;
        mismatch = i; // the signatures before it may fail first
        break;
      }
      todo.push(i);
      queued.add(tx.idHex);
    }
    let failed: number | undefined;
    if (todo.length > 0) {
      const verdicts = await this.pool.verify(
        todo.map((i) => ({ signature: txs[i]!.signature, message: txs[i]!.bytes.subarray(0, UNSIGNED_TX_BYTES), publicKey: txs[i]!.publicKey })),
        { urgent: o.urgent },
      );
      verdicts.forEach((ok, k) => {
        if (ok) this.cache.add(txs[todo[k]!]!.idHex);
        else failed ??= todo[k]!;
      });
    }
    if (failed !== undefined) return { index: failed, code: 'TX_BAD_SIGNATURE' };
    return mismatch === undefined ? undefined : { index: mismatch, code: 'TX_SENDER_MISMATCH' };
  }

  async checkBlockSignatures(txs: readonly Transaction[]): Promise<void> {
    const failure = await this.firstFailure(txs, { urgent: this.blocksUrgent });
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

  /**
   * A peer's batch (a gossip message, a push) ahead of its admission: in rounds that grow from
   * FIRST_PEER_ROUND, until one holds a failure. A forged signature costs nothing to make, and a
   * batch checked whole is a thousand verifications before its sender's ban lands (for each of its
   * messages in flight meanwhile); in rounds, a forged batch costs at most the first round, or
   * four times the valid signatures before its first forgery, each of which its sender had to make.
   */
  async preverifyFromPeer(txs: readonly Transaction[]): Promise<void> {
    for (let start = 0, size = FIRST_PEER_ROUND; start < txs.length; start += size, size *= PEER_ROUND_GROWTH) {
      if (await this.firstFailure(txs.slice(start, start + size), { skipMismatches: true })) return;
    }
  }

  /**
   * Verifies a batch ahead of admitting or importing it (RPC batches, pushes; `urgent`: blocks'
   * transactions, which a sync imports next): fills the cache.
   */
  async preverify(txs: readonly Transaction[], o: { urgent?: boolean } = {}): Promise<void> {
    await this.firstFailure(txs, { skipMismatches: true, urgent: o.urgent });
  }
}

function failureError(code: 'TX_SENDER_MISMATCH' | 'TX_BAD_SIGNATURE', index?: number): TxRuleError {
  return code === 'TX_SENDER_MISMATCH'
    ? new TxRuleError(code, 'public key does not belong to the sender', 100, index)
    : new TxRuleError(code, 'signature does not verify', 100, index);
}
