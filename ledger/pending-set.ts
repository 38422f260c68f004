import type { Transaction } from './transaction.ts';
import { SenderTails } from './sender-tails.ts';

export interface MempoolEntry {
  readonly tx: Transaction;
  readonly idHex: string;
  readonly addedAt: number;
}

/** A compact block's short id of a transaction: the first 8 bytes of its id (PROTOCOL.md, Compact blocks). */
export const SHORT_ID_BYTES = 8;

/** The short id of an id in hex, as `byShortId` keys it. */
export function shortIdOfHex(idHex: string): string {
  return idHex.slice(0, SHORT_ID_BYTES * 2);
}

/**
 * The mempool's entries, and the indexes kept in step with them by `insert` and `remove` alone:
 * by id, and by short id; by sender and nonce, with each sender's committed amount and its
 * evictable tail; by address on either side (what an explorer asks of each address); those
 * waiting for a missing nonce; the sum of their fees, and the fees sorted (once per change). What
 * may enter is the mempool's business, not this one's.
 */
export class PendingSet {
  readonly byId = new Map<string, MempoolEntry>();
  /**
   * By short id, so that a compact block is rebuilt with a lookup per transaction of its own: a
   * walk over the pool, 200,000 transactions when full, took ~50 ms before each hop could forward.
   * Two pending ids that share their first 8 bytes (ground on purpose) keep the later one here: the
   * other is fetched from the block's forwarder, as a transaction the pool lacks.
   */
  readonly byShortId = new Map<string, MempoolEntry>();
  readonly bySender = new Map<string, Map<bigint, MempoolEntry>>();
  /**
   * Each sender's pending amount plus fee: summing a sender's entries at every admission made a
   * sender's burst quadratic.
   */
  private readonly committed = new Map<string, bigint>();
  /** Each sender's evictable transaction by fee. */
  readonly tails = new SenderTails<MempoolEntry>();
  private readonly byAddress = new Map<string, Set<MempoolEntry>>();
  /** Entries behind a missing nonce (MempoolPolicy.maxGappedBytes). */
  private readonly gapped = new Set<MempoolEntry>();
  /**
   * Per sender, what its last `classify` found, kept true by `insert` and `remove` where that is
   * cheap: nonces [from, end) are all pending and `end` is not, so its gapped entries are exactly
   * those above `end`, for any state nonce in [from, end]. Walking the sender's nonces at every
   * admission made a run quadratic: a reorganisation taking back 4,000 of one sender took ~0.9 s.
   * A removal inside the run drops it, and the next `classify` walks the sender again.
   */
  private readonly runs = new Map<string, { from: bigint; end: bigint }>();
  private totalBytes = 0;
  private totalFees = 0n;
  private gappedTotal = 0;
  private changeCount = 0;
  private sortedFees: { at: number; fees: readonly bigint[] } = { at: 0, fees: [] };

  get bytes(): number {
    return this.totalBytes;
  }

  get gappedBytes(): number {
    return this.gappedTotal;
  }

  /** The entries behind a missing nonce, as the last `classify` of each sender found them. */
  get gappedEntries(): ReadonlySet<MempoolEntry> {
    return this.gapped;
  }

  /** The fees of every entry, summed. */
  get fees(): bigint {
    return this.totalFees;
  }

  /**
   * The fees of every entry, highest first: sorted once per change, not per asker (a full pool's
   * 200,000 fees take ~90 ms, and REST clients and fee estimates ask many times a second).
   */
  feesHighestFirst(): readonly bigint[] {
    if (this.sortedFees.at !== this.changeCount) {
      const fees = [...this.byId.values()].map((e) => e.tx.fee).sort((a, b) => (a > b ? -1 : a < b ? 1 : 0));
      this.sortedFees = { at: this.changeCount, fees };
    }
    return this.sortedFees.fees;
  }

  /** What `senderKey` has pending, amounts plus fees. */
  committedBy(senderKey: string): bigint {
    return this.committed.get(senderKey) ?? 0n;
  }

  /** What `senderKey` has pending below `nonce`, amounts plus fees (a walk of its entries). */
  committedBelow(senderKey: string, nonce: bigint): bigint {
    let below = 0n;
    for (const e of this.bySender.get(senderKey)?.values() ?? []) if (e.tx.nonce < nonce) below += e.tx.amount + e.tx.fee;
    return below;
  }

  /** The entries sent from or to the address `key` (hex). */
  involving(key: string): ReadonlySet<MempoolEntry> {
    return this.byAddress.get(key) ?? NONE;
  }

  insert(entry: MempoolEntry): void {
    const { tx } = entry;
    let pending = this.bySender.get(tx.fromKey);
    if (!pending) this.bySender.set(tx.fromKey, (pending = new Map()));
    pending.set(tx.nonce, entry);
    this.extendRun(entry, pending);
    this.committed.set(tx.fromKey, this.committedBy(tx.fromKey) + tx.amount + tx.fee);
    this.tails.added(entry, pending);
    this.byId.set(entry.idHex, entry);
    this.byShortId.set(shortIdOfHex(entry.idHex), entry);
    for (const key of [tx.fromKey, tx.toKey]) {
      let set = this.byAddress.get(key);
      if (!set) this.byAddress.set(key, (set = new Set()));
      set.add(entry);
    }
    this.totalBytes += tx.bytes.length;
    this.totalFees += tx.fee;
    this.changeCount++;
  }

  remove(entry: MempoolEntry): void {
    if (!this.byId.delete(entry.idHex)) return;
    const shortId = shortIdOfHex(entry.idHex);
    if (this.byShortId.get(shortId) === entry) this.byShortId.delete(shortId);
    const { tx } = entry;
    this.totalBytes -= tx.bytes.length;
    this.totalFees -= tx.fee;
    const pending = this.bySender.get(tx.fromKey);
    pending?.delete(tx.nonce);
    if (pending?.size === 0) {
      this.bySender.delete(tx.fromKey);
      this.committed.delete(tx.fromKey);
      this.runs.delete(tx.fromKey);
    } else {
      this.committed.set(tx.fromKey, this.committedBy(tx.fromKey) - tx.amount - tx.fee);
      this.shrinkRun(tx.fromKey, tx.nonce);
    }
    this.tails.removed(entry);
    for (const key of [tx.fromKey, tx.toKey]) {
      const set = this.byAddress.get(key);
      if (set?.delete(entry) && set.size === 0) this.byAddress.delete(key);
    }
    if (this.gapped.delete(entry)) this.gappedTotal -= tx.bytes.length;
    this.changeCount++;
  }

  /** Each sender's entry at its state's nonce, if it has one: what a block could take first. */
  *executableHeads(): Generator<MempoolEntry> {
    for (const pending of this.bySender.values()) {
      for (const e of pending.values()) {
        if (this.gapped.has(e) || pending.has(e.tx.nonce - 1n)) continue;
        yield e; // what a block could take of a sender is one run, from its state's nonce up
        break;
      }
    }
  }

  /** `head` and its sender's entries after it that wait for no missing nonce, in nonce order. */
  runFrom(head: MempoolEntry): MempoolEntry[] {
    const pending = this.bySender.get(head.tx.fromKey);
    const run: MempoolEntry[] = [];
    for (let e: MempoolEntry | undefined = head; e && !this.gapped.has(e); e = pending?.get(e.tx.nonce + 1n)) run.push(e);
    return run;
  }

  /**
   * Removes what `account` (the sender's, as the state now has it) no longer allows: entries below
   * its nonce (confirmed, or displaced by another transaction with that nonce), and from the first
   * entry its balance no longer covers, every later one; then classifies what is left.
   */
  keepWithin(senderKey: string, account: { readonly nonce: bigint; readonly balance: bigint }): void {
    const pending = this.bySender.get(senderKey);
    if (!pending) return;
    // A block that took the sender's first nonces, the common case, leaves nothing pending below
    // its nonce or beyond its balance, and the walk in nonce order would remove nothing: with a
    // busy pool's senders, 40 nonces each, it was ~15 ms of a 2,000-transaction block's update.
    if (this.committedBy(senderKey) <= account.balance && !hasNonceBelow(pending, account.nonce)) {
      this.classify(senderKey, account.nonce);
      return;
    }
    let committed = 0n;
    for (const e of [...pending.values()].sort((a, b) => (a.tx.nonce < b.tx.nonce ? -1 : 1))) {
      if (e.tx.nonce < account.nonce) {
        this.remove(e);
        continue;
      }
      committed += e.tx.amount + e.tx.fee;
      if (committed > account.balance) this.remove(e); // and every later one: committed only grows
    }
    this.classify(senderKey, account.nonce);
  }

  /**
   * Marks which of a sender's entries wait for a missing nonce, given its state nonce. A sender's
   * nonces change only by insert and remove, and its state nonce by blocks: the mempool calls this
   * after either; removals take a sender's latest nonces first, which leaves no new gap.
   */
  classify(senderKey: string, stateNonce: bigint): void {
    const pending = this.bySender.get(senderKey);
    if (!pending) return;
    const run = this.runs.get(senderKey);
    if (run && run.from <= stateNonce && stateNonce <= run.end) return;
    const executableBelow = firstMissing(pending, stateNonce);
    this.runs.set(senderKey, { from: stateNonce, end: executableBelow });
    for (const entry of pending.values()) this.mark(entry, entry.tx.nonce > executableBelow);
  }

  /**
   * The first nonce from `stateNonce` on that `senderKey` has not pending (what `firstMissing`
   * says), from its run when that holds for `stateNonce`.
   */
  executableEnd(senderKey: string, stateNonce: bigint): bigint {
    const run = this.runs.get(senderKey);
    if (run && run.from <= stateNonce && stateNonce <= run.end) return run.end;
    return firstMissing(this.bySender.get(senderKey), stateNonce);
  }

  private mark(entry: MempoolEntry, gapped: boolean): void {
    if (gapped === this.gapped.has(entry)) return;
    if (gapped) {
      this.gapped.add(entry);
      this.gappedTotal += entry.tx.bytes.length;
    } else {
      this.gapped.delete(entry);
      this.gappedTotal -= entry.tx.bytes.length;
    }
  }

  /** `entry` just set in its sender's `pending`: classified against the sender's run, which it may lengthen. */
  private extendRun(entry: MempoolEntry, pending: ReadonlyMap<bigint, MempoolEntry>): void {
    const run = this.runs.get(entry.tx.fromKey);
    if (!run) return; // a new sender, or one whose run a removal broke: `classify` walks it
    const nonce = entry.tx.nonce;
    if (nonce > run.end) {
      this.mark(entry, true);
    } else if (nonce === run.end) {
      // The missing nonce came: the entries after it, up to the next gap, wait no longer.
      let next = nonce + 1n;
      for (let e = pending.get(next); e; e = pending.get(++next)) this.mark(e, false);
      run.end = next;
    } else if (nonce === run.from - 1n) {
      run.from = nonce;
    }
  }

  /** `nonce` just left `senderKey`'s pending (which still holds others). */
  private shrinkRun(senderKey: string, nonce: bigint): void {
    const run = this.runs.get(senderKey);
    if (!run || nonce < run.from || nonce > run.end) return;
    // The last of the run (an evicted tail): the gapped entries above are still the same.
    if (nonce === run.end - 1n) run.end = nonce;
    // The first (what a block took): the rest still runs to `end`, for a state nonce past it.
    else if (nonce === run.from) run.from = nonce + 1n;
    else this.runs.delete(senderKey);
  }
}

const NONE: ReadonlySet<MempoolEntry> = new Set();

/** The first nonce from `from` on that is not in `pending`. */
export function firstMissing(pending: ReadonlyMap<bigint, MempoolEntry> | undefined, from: bigint): bigint {
  let nonce = from;
  while (pending?.has(nonce)) nonce++;
  return nonce;
}

function hasNonceBelow(pending: ReadonlyMap<bigint, MempoolEntry>, nonce: bigint): boolean {
  for (const n of pending.keys()) if (n < nonce) return true;
  return false;
}
