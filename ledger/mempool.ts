import { EventEmitter } from 'node:events';
import { toHex } from './bytes.ts';
import { SerialQueue } from './serial.ts';
import { CairnError } from './errors.ts';
import { MAX_AMOUNT } from './amount.ts';
import type { Block } from './block.ts';
import { checkTxSignature, TX_BYTES, type Transaction } from './transaction.ts';
import { EMPTY_ACCOUNT, checkTxAgainstState, type AccountSource, type StateRules } from './state.ts';
import { SenderTails } from './sender-tails.ts';

export type MempoolRejectionCode =
  | 'MEMPOOL_DUPLICATE'
  | 'MEMPOOL_FEE_TOO_LOW'
  | 'MEMPOOL_NONCE_TOO_LOW'
  | 'MEMPOOL_NONCE_GAP'
  | 'MEMPOOL_REPLACEMENT_UNDERPRICED'
  | 'MEMPOOL_INSUFFICIENT_BALANCE'
  | 'MEMPOOL_FULL';

/** Why the mempool will not take a transaction, in words the submitter can act on. */
export class MempoolRejection extends CairnError {
  constructor(code: MempoolRejectionCode, message: string) {
    super(code, message, 0);
  }
}

export class MempoolFullError extends MempoolRejection {
  constructor(message: string) {
    super('MEMPOOL_FULL', message);
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
  /** A replacement (same sender and nonce) must pay this many percent more fee, and at least 1 more. */
  readonly replaceBumpPercent: bigint;
}

export const DEFAULT_MEMPOOL_POLICY: MempoolPolicy = {
  maxBytes: 32 * 1024 * 1024,
  maxAge: 3 * 3600,
  minFee: 1n,
  maxNonceGap: 64,
  replaceBumpPercent: 10n,
};

export interface MempoolEntry {
  readonly tx: Transaction;
  readonly idHex: string;
  readonly addedAt: number;
}

const NO_VICTIMS: readonly MempoolEntry[] = [];

/**
 * Transactions waiting for a block, judged against the state at the chain tip. Per sender they
 * are kept by nonce; blocks take them by fee, never out of nonce order. Mutations are serialised
 * so two submissions from one sender cannot both see the same nonce.
 */
export class Mempool extends EventEmitter<{ added: [entry: MempoolEntry] }> {
  private readonly state: AccountSource;
  private readonly rules: StateRules;
  readonly policy: MempoolPolicy;
  private readonly checkSignature: (tx: Transaction) => void | Promise<void>;
  private readonly byId = new Map<string, MempoolEntry>();
  private readonly bySender = new Map<string, Map<bigint, MempoolEntry>>();
  /**
   * Each sender's pending amount plus fee, kept in step with `bySender` by insert and remove:
   * summing a sender's entries at every admission made a sender's burst quadratic.
   */
  private readonly committedBySender = new Map<string, bigint>();
  /** Each sender's evictable transaction by fee, kept in step with `bySender` by insert and remove. */
  private readonly tails = new SenderTails<MempoolEntry>();
  private totalBytes = 0;
  private readonly queue = new SerialQueue();

  constructor(
    state: AccountSource,
    rules: StateRules,
    policy: Partial<MempoolPolicy> = {},
    checkSignature: (tx: Transaction) => void | Promise<void> = (tx) => checkTxSignature(tx),
  ) {
    super();
    this.state = state;
    this.rules = rules;
    this.policy = { ...DEFAULT_MEMPOOL_POLICY, ...policy };
    this.checkSignature = checkSignature;
  }

  get size(): number {
    return this.byId.size;
  }

  get bytes(): number {
    return this.totalBytes;
  }

  has(id: Uint8Array): boolean {
    return this.byId.has(toHex(id));
  }

  get(id: Uint8Array): MempoolEntry | undefined {
    return this.byId.get(toHex(id));
  }

  entries(): IterableIterator<MempoolEntry> {
    return this.byId.values();
  }

  /** The nonce a new transaction from `address` should carry: after the state's and the pool's. */
  async nextNonce(address: Uint8Array): Promise<bigint> {
    let nonce = ((await this.state.getAccount(address)) ?? EMPTY_ACCOUNT).nonce;
    const pending = this.bySender.get(toHex(address));
    while (pending?.has(nonce)) nonce++;
    return nonce;
  }

  /** Admits `tx` or throws a MempoolRejection / TxRuleError saying why. `now` is in seconds. */
  add(tx: Transaction, now: number): Promise<MempoolEntry> {
    return this.queue.run(() => this.admit(tx, now));
  }

  /**
   * Admits `txs` in order, as as many `add` calls would, in one turn of the queue: for each, its
   * entry or the error that refused it. A batch (an RPC call, a peer's push) of thousands pays for
   * the queue's turn once rather than per transaction. With `stopAt`, the first refusal it picks
   * ends the batch: the outcomes then end with that refusal, and the rest are not tried.
   */
  addMany(txs: readonly Transaction[], now: number, stopAt?: (refusal: Error) => boolean): Promise<(MempoolEntry | Error)[]> {
    return this.queue.run(async () => {
      const outcomes: (MempoolEntry | Error)[] = [];
      for (const tx of txs) {
        try {
          outcomes.push(await this.admit(tx, now));
        } catch (err) {
          const refusal = err instanceof Error ? err : new Error(String(err));
          outcomes.push(refusal);
          if (stopAt?.(refusal)) break;
        }
      }
      return outcomes;
    });
  }

  private async admit(tx: Transaction, now: number): Promise<MempoolEntry> {
    const idHex = tx.idHex;
    if (this.byId.has(idHex)) throw new MempoolRejection('MEMPOOL_DUPLICATE', `transaction ${idHex} is already pending`);
    if (tx.fee < this.policy.minFee) {
      throw new MempoolRejection('MEMPOOL_FEE_TOO_LOW', `fee ${tx.fee} is below the minimum ${this.policy.minFee}`);
    }
    const account = (await this.state.getAccount(tx.from)) ?? EMPTY_ACCOUNT;
    if (tx.nonce < account.nonce) {
      throw new MempoolRejection('MEMPOOL_NONCE_TOO_LOW', `nonce ${tx.nonce} is already used; the next is ${account.nonce}`);
    }
    if (tx.nonce > account.nonce + BigInt(this.policy.maxNonceGap)) {
      throw new MempoolRejection('MEMPOOL_NONCE_GAP', `nonce ${tx.nonce} is more than ${this.policy.maxNonceGap} ahead of the next, ${account.nonce}`);
    }
    // The rules a block would apply, as if the earlier pending nonces were already in.
    checkTxAgainstState(tx, { balance: MAX_AMOUNT, nonce: tx.nonce }, this.rules);
    const senderKey = tx.fromKey;
    const pending = this.bySender.get(senderKey);
    const replaced = pending?.get(tx.nonce);
    if (replaced) {
      const bump = (replaced.tx.fee * this.policy.replaceBumpPercent) / 100n;
      const required = replaced.tx.fee + (bump > 1n ? bump : 1n);
      if (tx.fee < required) {
        throw new MempoolRejection('MEMPOOL_REPLACEMENT_UNDERPRICED', `replacing nonce ${tx.nonce} needs a fee of at least ${required}, got ${tx.fee}`);
      }
    }
    let committed = (this.committedBySender.get(senderKey) ?? 0n) + tx.amount + tx.fee;
    if (replaced) committed -= replaced.tx.amount + replaced.tx.fee;
    if (committed > account.balance) {
      const earlier = committed - tx.amount - tx.fee;
      const parts = `${tx.amount} + fee ${tx.fee}${earlier > 0n ? `, plus ${earlier} pending from this sender` : ''}`;
      throw new MempoolRejection('MEMPOOL_INSUFFICIENT_BALANCE', `insufficient funds: need ${committed} (${parts}), have ${account.balance} (base units)`);
    }
    // A replacement takes the place of the one it replaces; anyone else makes room only once
    // the (expensive, last) signature check has passed, so a forgery evicts nothing.
    const victims = replaced ? NO_VICTIMS : this.chooseVictims(tx);
    const checking = this.checkSignature(tx); // a signature already verified answers at once
    if (checking) await checking;
    for (const v of victims) this.remove(v);
    if (replaced) this.remove(replaced);
    const entry: MempoolEntry = { tx, idHex, addedAt: now };
    this.insert(entry);
    // For live feeds (node/http/events.ts): a transaction that entered, also one a reorg put back.
    this.emit('added', entry);
    return entry;
  }

  /**
   * The cheapest transactions that nothing else depends on (other senders' tails; equal fees: the
   * sender that entered the pool first), whose room `tx` needs; refuses `tx` if it is the
   * cheapest. Changes nothing: the caller evicts once the signature has passed.
   */
  private chooseVictims(tx: Transaction): readonly MempoolEntry[] {
    if (this.totalBytes + TX_BYTES <= this.policy.maxBytes) return NO_VICTIMS;
    const victims: MempoolEntry[] = [];
    let freed = 0;
    const cheapest = this.tails.cheapestFirst(tx.fromKey);
    while (this.totalBytes - freed + TX_BYTES > this.policy.maxBytes) {
      const victim = cheapest.next().value;
      if (!victim || victim.tx.fee >= tx.fee) {
        throw new MempoolFullError(`mempool is full (${this.policy.maxBytes} bytes) and fee ${tx.fee} does not beat the cheapest pending`);
      }
      victims.push(victim);
      freed += victim.tx.bytes.length;
    }
    return victims;
  }

  private insert(entry: MempoolEntry): void {
    const key = entry.tx.fromKey;
    let pending = this.bySender.get(key);
    if (!pending) this.bySender.set(key, (pending = new Map()));
    pending.set(entry.tx.nonce, entry);
    this.committedBySender.set(key, (this.committedBySender.get(key) ?? 0n) + entry.tx.amount + entry.tx.fee);
    this.tails.added(entry, pending);
    this.byId.set(entry.idHex, entry);
    this.totalBytes += entry.tx.bytes.length;
  }

  private remove(entry: MempoolEntry): void {
    if (!this.byId.delete(entry.idHex)) return;
    this.totalBytes -= entry.tx.bytes.length;
    const key = entry.tx.fromKey;
    const pending = this.bySender.get(key);
    pending?.delete(entry.tx.nonce);
    if (pending?.size === 0) {
      this.bySender.delete(key);
      this.committedBySender.delete(key);
    } else {
      this.committedBySender.set(key, this.committedBySender.get(key)! - entry.tx.amount - entry.tx.fee);
    }
    this.tails.removed(entry);
  }

  /** Drops what has waited longer than the policy allows. */
  expire(now: number): Promise<number> {
    return this.queue.run(async () => {
      let dropped = 0;
      for (const e of [...this.byId.values()]) {
        if (now - e.addedAt > this.policy.maxAge) {
          this.remove(e);
          dropped++;
        }
      }
      return dropped;
    });
  }

  /**
   * Follows a change of tip: drops what the new blocks confirmed, revalidates every sender whose
   * account they touched, and offers the transactions of disconnected blocks again.
   */
  update(connected: readonly Block[], disconnected: readonly Block[], now: number): Promise<void> {
    return this.queue.run(async () => {
      for (const block of connected) {
        for (const tx of block.txs) {
          const entry = this.byId.get(tx.idHex);
          if (entry) this.remove(entry);
        }
      }
      // Only senders with something still pending need a look: usually a few of the block's accounts.
      const touched = new Map<string, Uint8Array>();
      const touch = (key: string, address: Uint8Array) => {
        if (this.bySender.has(key)) touched.set(key, address);
      };
      for (const blocks of [connected, disconnected]) {
        for (const block of blocks) {
          touch(toHex(block.coinbase.to), block.coinbase.to);
          for (const tx of block.txs) {
            touch(tx.fromKey, tx.from);
            touch(tx.toKey, tx.to);
          }
        }
      }
      for (const [key, address] of touched) if (this.bySender.has(key)) await this.revalidateSender(address);
      if (disconnected.length === 0) return;
      const confirmed = new Set<string>();
      for (const block of connected) for (const tx of block.txs) confirmed.add(tx.idHex);
      for (const block of disconnected) {
        for (const tx of block.txs) {
          if (confirmed.has(tx.idHex)) continue;
          await this.admit(tx, now).catch(() => {}); // no longer valid: gone, as it would be from a block
        }
      }
    });
  }

  private async revalidateSender(address: Uint8Array): Promise<void> {
    const pending = this.bySender.get(toHex(address));
    if (!pending) return;
    const account = (await this.state.getAccount(address)) ?? EMPTY_ACCOUNT;
    let committed = 0n;
    for (const e of [...pending.values()].sort((a, b) => (a.tx.nonce < b.tx.nonce ? -1 : 1))) {
      if (e.tx.nonce < account.nonce) {
        this.remove(e); // confirmed, or displaced by another tx with its nonce
        continue;
      }
      committed += e.tx.amount + e.tx.fee;
      if (committed > account.balance) this.remove(e);
    }
  }

  /**
   * Transactions for a block template: only those executable in order from each sender's state
   * nonce, the highest fee first across senders, never a later nonce before an earlier one.
   */
  async selectForBlock(maxTxs: number, maxBytes: number): Promise<Transaction[]> {
    const queues: MempoolEntry[][] = [];
    for (const pending of this.bySender.values()) {
      const first = pending.values().next().value!;
      let nonce = ((await this.state.getAccount(first.tx.from)) ?? EMPTY_ACCOUNT).nonce;
      const run: MempoolEntry[] = [];
      for (let e = pending.get(nonce); e; e = pending.get(++nonce)) run.push(e);
      if (run.length > 0) queues.push(run);
    }
    const heads = new MaxFeeHeap(queues);
    const out: Transaction[] = [];
    let bytes = 0;
    while (out.length < maxTxs) {
      const next = heads.pop();
      if (!next) break;
      if (bytes + next.tx.bytes.length > maxBytes) break; // fixed-size txs: nothing smaller will fit
      out.push(next.tx);
      bytes += next.tx.bytes.length;
    }
    return out;
  }
}

/** A binary heap over per-sender queues, ordered by the fee of each queue's head. */
class MaxFeeHeap {
  private readonly heap: { queue: MempoolEntry[]; pos: number }[];

  constructor(queues: MempoolEntry[][]) {
    this.heap = [];
    for (const queue of queues) this.push({ queue, pos: 0 });
  }

  private fee(i: number): bigint {
    const item = this.heap[i]!;
    return item.queue[item.pos]!.tx.fee;
  }

  private push(item: { queue: MempoolEntry[]; pos: number }): void {
    this.heap.push(item);
    let i = this.heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (this.fee(parent) >= this.fee(i)) break;
      [this.heap[parent], this.heap[i]] = [this.heap[i]!, this.heap[parent]!];
      i = parent;
    }
  }

  pop(): MempoolEntry | undefined {
    const top = this.heap[0];
    if (!top) return undefined;
    const entry = top.queue[top.pos]!;
    top.pos++;
    if (top.pos >= top.queue.length) {
      const last = this.heap.pop()!;
      if (this.heap.length === 0) return entry;
      this.heap[0] = last;
    }
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let largest = i;
      if (l < this.heap.length && this.fee(l) > this.fee(largest)) largest = l;
      if (r < this.heap.length && this.fee(r) > this.fee(largest)) largest = r;
      if (largest === i) break;
      [this.heap[largest], this.heap[i]] = [this.heap[i]!, this.heap[largest]!];
      i = largest;
    }
    return entry;
  }
}
