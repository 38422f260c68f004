/**
 * A naive mempool: the rules ledger/mempool-rules.ts states, written the slow, obvious way (a list
 * of entries, every sum and order recomputed from it at each question), for a property test to hold
 * the real pool to. It reads the same state the real pool does; the test changes that state and
 * tells both of every block.
 */
import { toHex } from '../../ledger/bytes.ts';
import { MAX_AMOUNT } from '../../ledger/amount.ts';
import type { MemoryAccounts } from '../../ledger/audit.ts';
import type { Block } from '../../ledger/block.ts';
import type { MempoolPolicy } from '../../ledger/mempool-rules.ts';
import type { Account } from '../../ledger/state.ts';
import { TX_BYTES, type Transaction } from '../../ledger/transaction.ts';

export interface ReferenceEntry {
  readonly tx: Transaction;
  readonly addedAt: number;
}

/** What an admission came to: 'admitted', or the code of its refusal. */
export type Verdict = 'admitted' | string;

const byNonce = (a: ReferenceEntry, b: ReferenceEntry) => (a.tx.nonce < b.tx.nonce ? -1 : a.tx.nonce > b.tx.nonce ? 1 : 0);

export class ReferencePool {
  readonly policy: MempoolPolicy;
  readonly state: MemoryAccounts;
  entries: ReferenceEntry[] = [];
  /** Senders in the order they came to have something pending (a sender left with nothing goes). */
  senders: string[] = [];
  evicted = 0;
  expired = 0;
  /** Later nonces a taken-back transaction displaced (no counter of the pool's: what the workloads reached). */
  displaced = 0;

  /** Whether a transaction's signature fails: checked last, so that a forgery evicts nothing. */
  readonly forged: (tx: Transaction) => boolean;

  constructor(policy: MempoolPolicy, state: MemoryAccounts, forged: (tx: Transaction) => boolean = () => false) {
    this.policy = policy;
    this.state = state;
    this.forged = forged;
  }

  account(key: string): Account {
    return this.state.map.get(key) ?? { balance: 0n, nonce: 0n };
  }

  of(key: string): ReferenceEntry[] {
    return this.entries.filter((e) => e.tx.fromKey === key).sort(byNonce);
  }

  /** The first nonce from the sender's state nonce that it has not pending. */
  nextNonce(key: string): bigint {
    const nonces = new Set(this.of(key).map((e) => e.tx.nonce));
    let n = this.account(key).nonce;
    while (nonces.has(n)) n++;
    return n;
  }

  /** Each sender's entries a block could take now, in nonce order. */
  runs(): ReferenceEntry[][] {
    return this.senders.map((key) => {
      const run: ReferenceEntry[] = [];
      let n = this.account(key).nonce;
      for (const e of this.of(key)) if (e.tx.nonce === n) run.push(e), n++;
      return run;
    }).filter((run) => run.length > 0);
  }

  gapped(): ReferenceEntry[] {
    return this.entries.filter((e) => e.tx.nonce > this.nextNonce(e.tx.fromKey));
  }

  private insert(entry: ReferenceEntry): void {
    if (!this.entries.some((e) => e.tx.fromKey === entry.tx.fromKey)) this.senders.push(entry.tx.fromKey);
    this.entries.push(entry);
  }

  private remove(entry: ReferenceEntry): void {
    this.entries = this.entries.filter((e) => e !== entry);
    if (!this.entries.some((e) => e.tx.fromKey === entry.tx.fromKey)) this.senders = this.senders.filter((s) => s !== entry.tx.fromKey);
  }

  /** Admission by the stated rules, in their order; `readmit`: a disconnected block's, past the nonce gap limit. */
  admit(tx: Transaction, now: number, readmit = false): Verdict {
    const p = this.policy;
    if (this.entries.some((e) => e.tx.idHex === tx.idHex)) return 'MEMPOOL_DUPLICATE';
    if (tx.fee < p.minFee) return 'MEMPOOL_FEE_TOO_LOW';
    const account = this.account(tx.fromKey);
    if (tx.nonce < account.nonce) return 'MEMPOOL_NONCE_TOO_LOW';
    if (!readmit && tx.nonce > account.nonce + BigInt(p.maxNonceGap)) return 'MEMPOOL_NONCE_GAP';
    if (tx.amount + tx.fee > MAX_AMOUNT) return 'TX_AMOUNT_OVER_LIMIT';
    const mine = this.of(tx.fromKey);
    const replaced = mine.find((e) => e.tx.nonce === tx.nonce);
    if (replaced) {
      const bump = (replaced.tx.fee * p.replaceBumpPercent) / 100n;
      if (tx.fee < replaced.tx.fee + (bump > 1n ? bump : 1n)) return 'MEMPOOL_REPLACEMENT_UNDERPRICED';
    }
    // Nonces below the state's are mined (their block's update in the pool to come): the balance paid them.
    const counted = mine.filter((e) => e !== replaced && e.tx.nonce >= account.nonce);
    const cost = (es: readonly ReferenceEntry[]) => es.reduce((sum, e) => sum + e.tx.amount + e.tx.fee, 0n);
    // A taken-back transaction comes before its sender's later nonces: those the balance no longer covers go.
    const displaced: ReferenceEntry[] = [];
    if (readmit && cost(counted) + tx.amount + tx.fee > account.balance) {
      let sum = cost(counted.filter((e) => e.tx.nonce < tx.nonce)) + tx.amount + tx.fee;
      for (const e of counted.filter((e) => e.tx.nonce > tx.nonce)) {
        if (displaced.length === 0 && sum + e.tx.amount + e.tx.fee <= account.balance) sum += e.tx.amount + e.tx.fee;
        else displaced.push(e);
      }
    }
    if (cost(counted) - cost(displaced) + tx.amount + tx.fee > account.balance) return 'MEMPOOL_INSUFFICIENT_BALANCE';
    const gapped = !replaced && tx.nonce > this.nextNonce(tx.fromKey);
    if (gapped && this.gapped().length * TX_BYTES + TX_BYTES > p.maxGappedBytes) return 'MEMPOOL_FULL';
    const victims: ReferenceEntry[] = [];
    const room = () => (this.entries.length - displaced.length - victims.length + 1) * TX_BYTES <= p.maxBytes;
    if (!replaced && !room()) {
      if (gapped) return 'MEMPOOL_FULL';
      // Each sender's highest nonce, the cheapest first (equal fees: the sender that came first):
      // of the newcomer's own, only those above it (it needs those below).
      const left = new Map(this.senders.map((s) => [s, this.of(s).filter((e) => (s !== tx.fromKey || e.tx.nonce > tx.nonce) && !displaced.includes(e))]));
      while (!room()) {
        let cheapest: ReferenceEntry | undefined;
        for (const s of this.senders) {
          const tail = left.get(s)?.at(-1);
          if (tail && (!cheapest || tail.tx.fee < cheapest.tx.fee)) cheapest = tail;
        }
        if (!cheapest || cheapest.tx.fee >= tx.fee) return 'MEMPOOL_FULL';
        left.get(cheapest.tx.fromKey)!.pop();
        victims.push(cheapest);
      }
    }
    if (this.forged(tx)) return 'TX_BAD_SIGNATURE';
    for (const d of displaced) this.remove(d);
    this.displaced += displaced.length;
    for (const v of victims) this.remove(v);
    this.evicted += victims.length;
    if (replaced) this.remove(replaced);
    this.insert({ tx, addedAt: now });
    return 'admitted';
  }

  /** Drops what the sender's account no longer allows: nonces below its own, and from the first its balance does not cover, the rest. */
  private keepWithin(key: string): void {
    const account = this.account(key);
    let committed = 0n;
    for (const e of this.of(key)) {
      if (e.tx.nonce < account.nonce) {
        this.remove(e);
        continue;
      }
      committed += e.tx.amount + e.tx.fee;
      if (committed > account.balance) this.remove(e);
    }
  }

  /** Evicts what waits for a missing nonce beyond its share: the cheapest (then the later nonce, then the id) with its sender's later nonces. */
  private keepGappedShare(): void {
    for (;;) {
      const gapped = this.gapped();
      if (gapped.length * TX_BYTES <= this.policy.maxGappedBytes) return;
      const [cheapest] = gapped.sort((a, b) => (a.tx.fee !== b.tx.fee ? (a.tx.fee < b.tx.fee ? -1 : 1) : a.tx.nonce !== b.tx.nonce ? (a.tx.nonce > b.tx.nonce ? -1 : 1) : a.tx.idHex < b.tx.idHex ? -1 : 1));
      for (const e of this.of(cheapest!.tx.fromKey).filter((e) => e.tx.nonce >= cheapest!.tx.nonce)) {
        this.remove(e);
        this.evicted++;
      }
    }
  }

  /** The pool following a change of tip (the state already the new tip's). */
  update(connected: readonly Block[], disconnected: readonly Block[], now: number): void {
    const mined = new Set(connected.flatMap((b) => b.txs.map((tx) => tx.idHex)));
    for (const e of [...this.entries]) if (mined.has(e.tx.idHex)) this.remove(e);
    const touched = new Set<string>();
    for (const b of [...connected, ...disconnected]) {
      touched.add(toHex(b.coinbase.to));
      for (const tx of b.txs) touched.add(tx.fromKey).add(tx.toKey);
    }
    for (const key of touched) this.keepWithin(key);
    if (disconnected.length > 0) {
      for (const tx of disconnected.flatMap((b) => b.txs)) if (!mined.has(tx.idHex)) this.admit(tx, now, true);
    }
    this.keepGappedShare();
  }

  /** Every sender judged again (a snapshot's state adopted). */
  recheckAll(): void {
    for (const key of [...this.senders]) this.keepWithin(key);
    this.keepGappedShare();
  }

  /** Drops what waited past the policy's age, each with its sender's later nonces. */
  expire(now: number): number {
    const old = this.entries.filter((e) => now - e.addedAt > this.policy.maxAge);
    let dropped = 0;
    for (const e of old) {
      for (const later of this.entries.filter((l) => l.tx.fromKey === e.tx.fromKey && l.tx.nonce >= e.tx.nonce)) {
        this.remove(later);
        dropped++;
      }
    }
    this.expired += dropped;
    return dropped;
  }

  restore(kept: readonly ReferenceEntry[], now: number): Verdict[] {
    return kept.map(({ tx, addedAt }) => (now - addedAt > this.policy.maxAge ? 'MEMPOOL_EXPIRED' : this.admit(tx, Math.min(addedAt, now))));
  }
}
