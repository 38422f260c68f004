import { EventEmitter } from 'node:events';
import { toHex } from './bytes.ts';
import { SerialQueue } from './serial.ts';
import type { Block } from './block.ts';
import { checkTxSignature, type Transaction } from './transaction.ts';
import { EMPTY_ACCOUNT, readAccounts, readAccountsByKey, type Account, type AccountSource, type StateRules } from './state.ts';
import { PendingSet, type MempoolEntry } from './pending-set.ts';
import { selectForBlock } from './block-template.ts';
import { DEFAULT_MEMPOOL_POLICY, MempoolRejection, gappedVictims, judgeAdmission, refusedByNonce, refusedOnSight, underpricedReplacement, type Admission, type MempoolPolicy } from './mempool-rules.ts';

export type { MempoolEntry } from './pending-set.ts';
export { SHORT_ID_BYTES } from './pending-set.ts';

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
  /**
   * Checks a batch's signatures at once (a node's pool, on every core), so that `checkSignature`
   * then answers each at once: what a reorganisation takes back, whose verdicts left the cache
   * when their blocks connected. Without it, each is checked alone as it is taken back.
   */
  private readonly preverify: ((txs: readonly Transaction[]) => Promise<void>) | undefined;
  private readonly pending = new PendingSet();
  private readonly byId = this.pending.byId;
  private readonly bySender = this.pending.bySender;
  private readonly queue = new SerialQueue();
  /** The last reorganisation's update, until it ends (followingReorganisation). */
  private reorganisation: Promise<void> | undefined;

  constructor(
    state: AccountSource,
    rules: StateRules,
    policy: Partial<MempoolPolicy> = {},
    checkSignature: (tx: Transaction) => void | Promise<void> = (tx) => checkTxSignature(tx),
    preverify?: (txs: readonly Transaction[]) => Promise<void>,
  ) {
    super();
    this.state = state;
    this.rules = rules;
    const maxBytes = policy.maxBytes ?? DEFAULT_MEMPOOL_POLICY.maxBytes;
    this.policy = { ...DEFAULT_MEMPOOL_POLICY, maxGappedBytes: Math.floor(maxBytes / 8), ...policy };
    this.checkSignature = checkSignature;
    this.preverify = preverify;
  }

  /**
   * Transactions dropped unmined since start: to make room for better-paying ones (the pool full),
   * or those waiting for a missing nonce beyond their share, or after waiting longer than the
   * policy allows. Only ever counts up (metrics).
   */
  readonly dropped = { evicted: 0, expired: 0 };

  get size(): number {
    return this.byId.size;
  }

  get bytes(): number {
    return this.pending.bytes;
  }

  /** Bytes of transactions waiting for an earlier nonce that is not in the pool. */
  get gappedBytes(): number {
    return this.pending.gappedBytes;
  }

  /** The fees of every pending transaction, summed. */
  get fees(): bigint {
    return this.pending.fees;
  }

  /** The pending fees, highest first (computed once per change of the pool). */
  feesHighestFirst(): readonly bigint[] {
    return this.pending.feesHighestFirst();
  }

  /** The pending transactions sent from or to `address`. */
  involving(address: Uint8Array): ReadonlySet<MempoolEntry> {
    return this.pending.involving(toHex(address));
  }

  /** The pending transactions sent from `address`, in no particular order. */
  sentFrom(address: Uint8Array): MempoolEntry[] {
    return [...(this.bySender.get(toHex(address))?.values() ?? [])];
  }

  /** Each sender's next transaction, at its state's nonce, that a block could take now (one pending). */
  executableHeads(): Generator<MempoolEntry> {
    return this.pending.executableHeads();
  }

  /** `head` and the transactions of its sender a block could take after it, in nonce order. */
  runFrom(head: MempoolEntry): MempoolEntry[] {
    return this.pending.runFrom(head);
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

  /** The pending transaction whose id starts with `shortId` (hex of SHORT_ID_BYTES, a compact block's short id), if any. */
  byShortId(shortId: string): Transaction | undefined {
    return this.pending.byShortId.get(shortId)?.tx;
  }

  /**
   * While the pool follows a reorganisation (its update queued or under way), what resolves once it
   * has; else undefined. Until then the state is the new tip's but the pool is not: the
   * transactions of the blocks it took away are still being taken back, their signatures checked
   * again (together, with `preverify`) and each admitted in turn.
   */
  get followingReorganisation(): Promise<void> | undefined {
    return this.reorganisation;
  }

  /**
   * The nonce a new transaction from `address` should carry: after the state's and the pool's, and
   * after those a reorganisation is taking back. Just after one, the state's nonce may be held by
   * the sender's own transaction of a block it took away: a wallet handed it would replace that.
   */
  async nextNonce(address: Uint8Array): Promise<bigint> {
    if (this.reorganisation) await this.reorganisation;
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
      // The senders' accounts in one read, not an await and a read each (an RPC batch of 2,000 was
      // 2,000): as in `updateNow`, a block connected meanwhile is the next update's, queued behind
      // this turn, which looks again at its senders. A failed read leaves each to its own.
      const accounts = await this.accountsOf(txs).catch(() => undefined);
      const outcomes: (MempoolEntry | Error)[] = [];
      for (const tx of txs) {
        try {
          // A signature verified before (the batch's, checked ahead of it) is admitted without a turn.
          const admitted = accounts ? this.admitAgainst(tx, now, false, accounts.get(tx.fromKey)!) : this.admit(tx, now);
          outcomes.push(admitted instanceof Promise ? await admitted : admitted);
        } catch (err) {
          const refusal = err instanceof Error ? err : new Error(String(err));
          outcomes.push(refusal);
          if (stopAt?.(refusal)) break;
        }
      }
      return outcomes;
    });
  }

  /**
   * Those of `txs` that admission's cheap checks would not refuse at once: not pending already,
   * paying the minimum fee (and a replacement's bump), a nonce in the window, an amount and fee
   * the sender's balance covers alone. What is worth a signature check ahead of admission (a
   * peer's push, a gossiped batch): a valid signature on a confirmed transaction, or from an
   * account with nothing, costs its sender nothing to send again and us a verification each.
   * Changes nothing; admission checks it all again.
   */
  async worthVerifying(txs: readonly Transaction[]): Promise<Transaction[]> {
    const fresh = txs.filter((tx) => !refusedOnSight(this.pending, this.policy, tx));
    const accounts = await readAccounts(this.state, fresh.map((tx) => tx.from), fresh.map((tx) => tx.fromKey));
    const worth: Transaction[] = [];
    for (let i = 0; i < fresh.length; i++) {
      const tx = fresh[i]!;
      const account = accounts[i] ?? EMPTY_ACCOUNT;
      if (refusedByNonce(this.policy, tx, account, false) || tx.amount + tx.fee > account.balance || underpricedReplacement(this.pending, this.policy, tx)) continue;
      worth.push(tx);
    }
    return worth;
  }

  /**
   * Admits transactions kept from an earlier run, each with the time it first arrived (seconds):
   * what waited past the policy's age is dropped, so a node restarted every hour does not keep a
   * transaction for ever. For each, its entry or why it was refused.
   */
  restore(kept: readonly { tx: Transaction; addedAt: number }[], now: number): Promise<(MempoolEntry | Error)[]> {
    return this.queue.run(async () => {
      const outcomes: (MempoolEntry | Error)[] = [];
      for (const { tx, addedAt } of kept) {
        if (now - addedAt > this.policy.maxAge) {
          outcomes.push(new MempoolRejection('MEMPOOL_EXPIRED', `transaction ${tx.idHex} waited more than ${this.policy.maxAge} s`));
          continue;
        }
        outcomes.push(await this.admit(tx, Math.min(addedAt, now)).catch((err: unknown) => (err instanceof Error ? err : new Error(String(err)))));
      }
      return outcomes;
    });
  }

  /**
   * `readmit`: a transaction of a disconnected block, which the nonce gap limit does not hold back.
   * `known`: the sender's account as the state has it, read ahead with others.
   */
  private async admit(tx: Transaction, now: number, readmit = false, known?: Account): Promise<MempoolEntry> {
    const onSight = refusedOnSight(this.pending, this.policy, tx); // before the read: a duplicate costs none
    if (onSight) throw onSight();
    return this.admitAgainst(tx, now, readmit, known ?? (await this.state.getAccount(tx.from)) ?? EMPTY_ACCOUNT);
  }

  /** `admit` with the sender's account read: throws a refusal at once, and waits only for a signature not verified before. */
  private admitAgainst(tx: Transaction, now: number, readmit: boolean, account: Account): MempoolEntry | Promise<MempoolEntry> {
    const admission = judgeAdmission(this.pending, this.policy, this.rules, tx, account, readmit);
    const checking = this.checkSignature(tx); // a signature already verified answers at once
    if (checking) return checking.then(() => this.enter(tx, now, account.nonce, admission));
    return this.enter(tx, now, account.nonce, admission);
  }

  /** `tx`, judged and its signature checked, in the pool: what it displaces, its victims and what it replaces out. */
  private enter(tx: Transaction, now: number, stateNonce: bigint, { displaced, victims, replaced }: Admission): MempoolEntry {
    const senderKey = tx.fromKey;
    for (const d of displaced) this.pending.remove(d);
    for (const v of victims) this.pending.remove(v);
    this.dropped.evicted += victims.length;
    if (replaced) this.pending.remove(replaced);
    const entry: MempoolEntry = { tx, idHex: tx.idHex, addedAt: now };
    this.pending.insert(entry);
    this.pending.classify(senderKey, stateNonce);
    // For live feeds (node/http/events.ts): a transaction that entered, also one a reorg put back.
    this.emit('added', entry);
    return entry;
  }

  /**
   * Drops what has waited longer than the policy allows, and with each its sender's later nonces:
   * they could no longer be mined, and would hold their room (and the sender's balance) until
   * they aged out in turn.
   */
  expire(now: number): Promise<number> {
    return this.queue.run(async () => {
      let dropped = 0;
      for (const e of [...this.byId.values()]) {
        if (now - e.addedAt <= this.policy.maxAge || !this.byId.has(e.idHex)) continue;
        const pending = this.bySender.get(e.tx.fromKey)!;
        for (const later of [...pending.values()].filter((p) => p.tx.nonce >= e.tx.nonce)) {
          this.pending.remove(later);
          dropped++;
        }
      }
      this.dropped.expired += dropped;
      return dropped;
    });
  }

  /** Resolves once the work queued so far (admissions, updates, expiry) is done: a store may then close. */
  settled(): Promise<void> {
    return this.queue.run(async () => {});
  }

  /**
   * Follows a change of tip: drops what the new blocks confirmed, revalidates every sender whose
   * account they touched, and offers the transactions of disconnected blocks again.
   */
  update(connected: readonly Block[], disconnected: readonly Block[], now: number): Promise<void> {
    const updating = this.updateNow(connected, disconnected, now);
    if (disconnected.length > 0) {
      // The queue runs in order: the last reorganisation's update ending means every earlier one's has.
      const followed: Promise<void> = updating.then(
        () => this.followed(followed),
        () => this.followed(followed),
      );
      this.reorganisation = followed;
    }
    return updating;
  }

  private followed(reorganisation: Promise<void>): void {
    if (this.reorganisation === reorganisation) this.reorganisation = undefined;
  }

  private updateNow(connected: readonly Block[], disconnected: readonly Block[], now: number): Promise<void> {
    return this.queue.run(async () => {
      for (const block of connected) {
        for (const tx of block.txs) {
          const entry = this.byId.get(tx.idHex);
          if (entry) this.pending.remove(entry);
        }
      }
      // Only senders with something still pending need a look (a busy devnet's block: hundreds to thousands).
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
      await this.revalidateSenders(touched);
      if (disconnected.length > 0) await this.takeBack(connected, disconnected, now);
      this.keepGappedShare();
    });
  }

  /** Offers again what `disconnected` held and `connected` did not. */
  private async takeBack(connected: readonly Block[], disconnected: readonly Block[], now: number): Promise<void> {
    const confirmed = new Set<string>();
    for (const block of connected) for (const tx of block.txs) confirmed.add(tx.idHex);
    const takenBack = disconnected.flatMap((block) => block.txs).filter((tx) => !confirmed.has(tx.idHex));
    // One at a time, a deep reorganisation's thousands each waited on a round trip to the pool,
    // and nextNonce (every wallet's next send) on all of them. A failure here leaves each to
    // its own check at admission.
    await this.preverify?.(takenBack.filter((tx) => !this.byId.has(tx.idHex))).catch(() => {});
    // The senders' accounts in one read, not one each: 4,000 taken back were 4,000 store reads,
    // each waiting on a turn of a busy node's event loop, and nextNonce on all of them. A block
    // connected meanwhile is the next update's, which looks again at every sender it touched.
    // A failed read leaves each to its own.
    const accounts = await this.accountsOf(takenBack).catch(() => undefined);
    // No longer valid: gone, as it would be from a block. A sender's run in the blocks may be
    // longer than the gap a new transaction may open: it is taken back all the same.
    for (const tx of takenBack) await this.admit(tx, now, true, accounts?.get(tx.fromKey)).catch(() => {});
  }

  /**
   * Evicts what waits for a missing nonce beyond the policy's share (`gappedVictims`): admission
   * holds new entries to it, but a state that went back turns admitted ones gapped unchecked, as
   * does a hole where a reorganisation's taken-back transaction was refused (below the minimum
   * fee, out of room, or beyond a balance the new branch lowered). A miner whose block is taken
   * away (a fee below our minimum in it is enough) could otherwise leave the whole pool to what no
   * block can take. Called once the pool has followed the state; until then (its update queued)
   * the share may be over.
   */
  private keepGappedShare(): void {
    const victims = gappedVictims(this.pending, this.policy);
    for (const v of victims) this.pending.remove(v);
    this.dropped.evicted += victims.length;
  }

  /** The accounts of the senders of `txs` (none: EMPTY_ACCOUNT), by sender key, in one round trip to the store where it has one. */
  private accountsOf(txs: readonly Transaction[]): Promise<Map<string, Account>> {
    const senders = new Map<string, Uint8Array>();
    for (const tx of txs) senders.set(tx.fromKey, tx.from);
    return readAccountsByKey(this.state, senders);
  }

  /**
   * Judges `senders` (address by hex key) again, in their order, against the tip's accounts read in
   * one round trip in this turn of the queue. An await and a read each cost a devnet block's update
   * (100-4,000 senders with more pending) 40 ms, 14 µs a sender; this 13 ms (medians).
   */
  private async revalidateSenders(senders: ReadonlyMap<string, Uint8Array>): Promise<void> {
    if (senders.size === 0) return;
    const accounts = await readAccountsByKey(this.state, senders).catch(() => undefined);
    for (const [key, address] of senders) {
      const account = accounts ? accounts.get(key)! : ((await this.state.getAccount(address)) ?? EMPTY_ACCOUNT); // a failed read: each on its own
      this.pending.keepWithin(key, account);
    }
  }

  /**
   * Follows a tip that changed with no blocks to follow (a snapshot's state adopted): every sender
   * is judged again against the new state, as `update` judges those a block touched. What was
   * admitted against the old state would otherwise stay, with nonces and balances it no longer has,
   * until it aged out.
   */
  recheckAll(): Promise<void> {
    return this.queue.run(async () => {
      const senders = new Map<string, Uint8Array>();
      for (const [key, pending] of this.bySender) senders.set(key, pending.values().next().value!.tx.from);
      await this.revalidateSenders(senders);
      this.keepGappedShare();
    });
  }

  /** Transactions for a block template (block-template.ts). */
  selectForBlock(maxTxs: number, maxBytes: number): Promise<Transaction[]> {
    return selectForBlock(this.bySender.values(), this.state, maxTxs, maxBytes);
  }
}
