/**
 * What the mempool refuses, in words a submitter can act on: its policy and errors, a
 * transaction's refusals on sight, by nonce and as an underpriced replacement, whom a full pool
 * evicts to make its room, and the whole judgment of an admission from them. None of it changes
 * the pool; ledger/mempool.ts acts on them.
 */
import { CairnError } from './errors.ts';
import { MAX_AMOUNT } from './amount.ts';
import { TX_BYTES, type Transaction } from './transaction.ts';
import { checkTxAgainstState, type Account, type StateRules } from './state.ts';
import type { MempoolEntry, PendingSet } from './pending-set.ts';

export type MempoolRejectionCode =
  | 'MEMPOOL_DUPLICATE'
  | 'MEMPOOL_FEE_TOO_LOW'
  | 'MEMPOOL_NONCE_TOO_LOW'
  | 'MEMPOOL_NONCE_GAP'
  | 'MEMPOOL_REPLACEMENT_UNDERPRICED'
  | 'MEMPOOL_INSUFFICIENT_BALANCE'
  | 'MEMPOOL_FULL'
  | 'MEMPOOL_EXPIRED';

/** A refusal found, made into its error only when it is thrown. */
export type Refusal = () => MempoolRejection;

/** Why the mempool will not take a transaction, in words the submitter can act on. */
export class MempoolRejection extends CairnError {
  constructor(code: MempoolRejectionCode, message: string) {
    super(code, message, 0);
  }
}

export class MempoolFullError extends MempoolRejection {
  /**
   * Refused as waiting for an earlier nonce not in the pool, which makes no room: once a block (or
   * a reorganisation's end) brings that nonce, it may enter as any other, as a nonce gap may.
   */
  readonly waitsForEarlierNonce: boolean;

  constructor(message: string, waitsForEarlierNonce = false) {
    super('MEMPOOL_FULL', message);
    this.waitsForEarlierNonce = waitsForEarlierNonce;
  }
}

export interface MempoolPolicy {
  /** Total bytes of transactions held; the lowest fees are evicted beyond it. */
  readonly maxBytes: number;
  /** Seconds a transaction may wait before it is dropped. */
  readonly maxAge: number;
  readonly minFee: bigint;
  /** How far beyond the sender's next nonce a transaction may wait for the ones before it. */
  readonly maxNonceGap: number;
  /**
   * Bytes of transactions that wait for an earlier nonce not in the pool (gapped): they cannot be
   * mined until it comes, pay nothing meanwhile, and never make room by evicting anything. By
   * default an eighth of maxBytes: without a share of their own, a few thousand funded senders
   * each sending nonces 1 to 64 but never 0 filled the pool for free and pushed out every
   * transaction a block could take.
   */
  readonly maxGappedBytes: number;
  /** A replacement (same sender and nonce) must pay this many percent more fee, and at least 1 more. */
  readonly replaceBumpPercent: bigint;
}

export const DEFAULT_MEMPOOL_POLICY: MempoolPolicy = {
  maxBytes: 32 * 1024 * 1024,
  maxAge: 3 * 3600,
  minFee: 1n,
  maxNonceGap: 64,
  maxGappedBytes: 4 * 1024 * 1024,
  replaceBumpPercent: 10n,
};

const NO_VICTIMS: readonly MempoolEntry[] = [];

// The refusals below come as functions that make the error: worthVerifying asks them of every
// transaction a peer relays, most of them already pending, and an Error's stack costs microseconds.

/** Admission's refusals on sight of `tx` alone: already pending, or below the minimum fee. */
export function refusedOnSight(pending: PendingSet, policy: MempoolPolicy, tx: Transaction): Refusal | undefined {
  if (pending.byId.has(tx.idHex)) return () => new MempoolRejection('MEMPOOL_DUPLICATE', `transaction ${tx.idHex} is already pending`);
  if (tx.fee < policy.minFee) return () => new MempoolRejection('MEMPOOL_FEE_TOO_LOW', `fee ${tx.fee} is below the minimum ${policy.minFee}`);
  return undefined;
}

/** Admission's refusals by the sender's nonce: used, or too far ahead (unless `readmit`). */
export function refusedByNonce(policy: MempoolPolicy, tx: Transaction, account: Account, readmit: boolean): Refusal | undefined {
  if (tx.nonce < account.nonce) return () => new MempoolRejection('MEMPOOL_NONCE_TOO_LOW', `nonce ${tx.nonce} is already used; the next is ${account.nonce}`);
  if (!readmit && tx.nonce > account.nonce + BigInt(policy.maxNonceGap)) {
    return () => new MempoolRejection('MEMPOOL_NONCE_GAP', `nonce ${tx.nonce} is more than ${policy.maxNonceGap} ahead of the next, ${account.nonce}`);
  }
  return undefined;
}

/** The refusal of `tx` replacing a pending transaction of its nonce without the fee bump, if it does. */
export function underpricedReplacement(pending: PendingSet, policy: MempoolPolicy, tx: Transaction): Refusal | undefined {
  const replaced = pending.bySender.get(tx.fromKey)?.get(tx.nonce);
  if (!replaced) return undefined;
  const bump = (replaced.tx.fee * policy.replaceBumpPercent) / 100n;
  const required = replaced.tx.fee + (bump > 1n ? bump : 1n);
  if (tx.fee >= required) return undefined;
  return () => new MempoolRejection('MEMPOOL_REPLACEMENT_UNDERPRICED', `replacing nonce ${tx.nonce} needs a fee of at least ${required}, got ${tx.fee}`);
}

/**
 * The cheapest transactions that nothing else depends on (senders' tails, of `tx`'s own sender
 * only those above its nonce; equal fees: the sender that entered the pool first), whose room
 * `tx` needs; refuses `tx` if it is the cheapest, or if it waits for a missing nonce (`gapped`: it
 * may not push out what a block could take). Its own sender's later nonces compete as any
 * sender's: leaving them out kept a sender's fee-2 transaction behind a missing nonce while its
 * fee-10 gap filler pushed out another sender's fee 9, or was refused as the cheapest. Changes
 * nothing: the caller evicts once the signature has passed.
 */
export function chooseVictims(pending: PendingSet, policy: MempoolPolicy, tx: Transaction, gapped: boolean, displaced: readonly MempoolEntry[] = NO_VICTIMS): readonly MempoolEntry[] {
  let freed = displaced.length * TX_BYTES; // going anyway (`unfundedAfter`)
  if (pending.bytes - freed + TX_BYTES <= policy.maxBytes) return NO_VICTIMS;
  if (gapped) throw new MempoolFullError(`mempool is full (${policy.maxBytes} bytes), and a transaction waiting for an earlier nonce makes no room`, true);
  const victims: MempoolEntry[] = [];
  const cheapest = pending.tails.cheapestFirst(tx.fromKey, tx.nonce);
  while (pending.bytes - freed + TX_BYTES > policy.maxBytes) {
    const victim = cheapest.next().value;
    if (victim && displaced.includes(victim)) continue;
    if (!victim || victim.tx.fee >= tx.fee) {
      throw new MempoolFullError(`mempool is full (${policy.maxBytes} bytes) and fee ${tx.fee} does not beat the cheapest pending`);
    }
    victims.push(victim);
    freed += victim.tx.bytes.length;
  }
  return victims;
}

/**
 * What to evict so that the entries behind a missing nonce keep to their share of the pool, when
 * something other than an admission put them over it (a reorganisation's hole, a state that went
 * back): the cheapest first (every transaction is TX_BYTES, so its fee is its rate; equal fees: the
 * later nonce, then the id), each with every later nonce of its sender, which would otherwise wait
 * behind one that is not coming. Each sender's in descending nonces. Changes nothing.
 */
export function gappedVictims(pending: PendingSet, policy: MempoolPolicy): MempoolEntry[] {
  let over = pending.gappedBytes - policy.maxGappedBytes;
  if (over <= 0) return [];
  const cheapest = [...pending.gappedEntries].sort(
    (a, b) => (a.tx.fee !== b.tx.fee ? (a.tx.fee < b.tx.fee ? -1 : 1) : a.tx.nonce !== b.tx.nonce ? (a.tx.nonce > b.tx.nonce ? -1 : 1) : a.idHex < b.idHex ? -1 : 1),
  );
  // Per sender, its entries by nonce and how many of the lowest are left: taking an entry takes those
  // above it once, not a walk of the sender each (a reorganisation's thousands of one sender).
  const senders = new Map<string, { byNonce: MempoolEntry[]; left: number }>();
  const victims: MempoolEntry[] = [];
  for (const entry of cheapest) {
    if (over <= 0) break;
    let sender = senders.get(entry.tx.fromKey);
    if (!sender) {
      const byNonce = [...pending.bySender.get(entry.tx.fromKey)!.values()].sort((a, b) => (a.tx.nonce < b.tx.nonce ? -1 : 1));
      senders.set(entry.tx.fromKey, (sender = { byNonce, left: byNonce.length }));
    }
    while (sender.left > 0 && sender.byNonce[sender.left - 1]!.tx.nonce >= entry.tx.nonce) {
      const victim = sender.byNonce[--sender.left]!; // above a gapped entry: gapped too
      victims.push(victim);
      over -= victim.tx.bytes.length;
    }
  }
  return victims;
}

/** What admitting a transaction does to the pool: the entry of its nonce it replaces, or the entries evicted for its room. */
export interface Admission {
  readonly replaced: MempoolEntry | undefined;
  readonly victims: readonly MempoolEntry[];
  /** Its sender's later nonces that the balance no longer covers with it in (a taken-back transaction's: `unfundedAfter`). */
  readonly displaced: readonly MempoolEntry[];
}

const costOf = (entries: readonly MempoolEntry[]) => entries.reduce((sum, e) => sum + e.tx.amount + e.tx.fee, 0n);

/**
 * For a transaction of a disconnected block, `tx`: its sender's pending nonces above it that the
 * balance no longer covers once `tx` and the nonces below it are in, in nonce order (from the
 * first that does not fit, every later one), as a block would take them. Changes nothing.
 */
function unfundedAfter(pending: PendingSet, tx: Transaction, account: Account): MempoolEntry[] {
  const mine = [...(pending.bySender.get(tx.fromKey)?.values() ?? [])].filter((e) => e.tx.nonce >= account.nonce && e.tx.nonce !== tx.nonce);
  let sum = tx.amount + tx.fee + costOf(mine.filter((e) => e.tx.nonce < tx.nonce));
  const later = mine.filter((e) => e.tx.nonce > tx.nonce).sort((a, b) => (a.tx.nonce < b.tx.nonce ? -1 : 1));
  let fits = 0;
  while (fits < later.length && sum + later[fits]!.tx.amount + later[fits]!.tx.fee <= account.balance) sum += later[fits]!.tx.amount + later[fits++]!.tx.fee;
  return later.slice(fits);
}

/**
 * Judges `tx` against the pool and its sender's `account` (as the state has it), all but its
 * signature: throws the first refusal, else says what admitting it does. `readmit`: a transaction
 * of a disconnected block, which the nonce gap limit does not hold back. Changes nothing.
 */
export function judgeAdmission(pending: PendingSet, policy: MempoolPolicy, rules: StateRules, tx: Transaction, account: Account, readmit: boolean): Admission {
  const onSight = refusedOnSight(pending, policy, tx);
  if (onSight) throw onSight();
  const byNonce = refusedByNonce(policy, tx, account, readmit);
  if (byNonce) throw byNonce();
  // The rules a block would apply, as if the earlier pending nonces were already in.
  checkTxAgainstState(tx, { balance: MAX_AMOUNT, nonce: tx.nonce }, rules);
  const senderKey = tx.fromKey;
  const replaced = pending.bySender.get(senderKey)?.get(tx.nonce);
  const underpriced = underpricedReplacement(pending, policy, tx);
  if (underpriced) throw underpriced();
  let committed = pending.committedBy(senderKey) + tx.amount + tx.fee;
  if (replaced) committed -= replaced.tx.amount + replaced.tx.fee;
  // Nonces below the state's are a block's whose update is still queued (a node's admissions come
  // between a block's state and the pool's turn to follow it): the balance has paid for them once,
  // and counting them again refused a busy sender's next transaction for funds it had.
  if (committed > account.balance) committed -= pending.committedBelow(senderKey, account.nonce);
  // A reorganisation that took the block of a sender's earlier nonces away also took what the block
  // paid it (a coinbase, a transfer in): the nonces it sent after, against that balance, go rather
  // than the earlier ones, which then came back refused, and left the later ones waiting for them.
  const displaced = readmit && committed > account.balance ? unfundedAfter(pending, tx, account) : NO_VICTIMS;
  committed -= costOf(displaced);
  if (committed > account.balance) {
    const earlier = committed - tx.amount - tx.fee;
    const parts = `${tx.amount} + fee ${tx.fee}${earlier > 0n ? `, plus ${earlier} pending from this sender` : ''}`;
    throw new MempoolRejection('MEMPOOL_INSUFFICIENT_BALANCE', `insufficient funds: need ${committed} (${parts}), have ${account.balance} (base units)`);
  }
  // A replacement takes the place of the one it replaces; anyone else makes room only once
  // the (expensive, last) signature check has passed, so a forgery evicts nothing.
  const executableEnd = pending.executableEnd(senderKey, account.nonce);
  const gapped = !replaced && executableEnd < tx.nonce;
  if (gapped && pending.gappedBytes + TX_BYTES > policy.maxGappedBytes) {
    throw new MempoolFullError(`the pool holds its share of transactions waiting for an earlier nonce (${policy.maxGappedBytes} bytes): send nonce ${executableEnd} first`, true);
  }
  return { replaced, displaced, victims: replaced ? NO_VICTIMS : chooseVictims(pending, policy, tx, gapped, displaced) };
}
