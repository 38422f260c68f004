import { StoreError } from './errors.ts';
import { OpLog } from './op-log.ts';
import type { Account } from './state.ts';

import { valueOf, type BatchOp } from './kv.ts';
export type { BatchOp };

/** An account write riding in a batch, keyed as ChainDB's account cache is. */
export interface AccountWrite {
  readonly key: string;
  readonly account: Account | null;
  /**
   * The store operation that writes it, if the batch is to carry one: like a LatestOp, only the
   * account's last in a flush is written, in the place of its first. The queue's own map of
   * uncommitted accounts keeps that place, so an account costs one map lookup, not two.
   */
  readonly op?: BatchOp;
}

/** A state tree node written (or, `null`, removed) at a position, keyed by its position id. */
export interface NodeWrite {
  readonly id: string;
  readonly node: Uint8Array | null;
}

/**
 * An operation on a key that holds only its latest value (a tree position, the tip; an account's
 * rides with its AccountWrite):
 * in one flush, a later operation for the same `slot` takes the earlier one's place. A flush is one
 * atomic batch, so only the last value of each such key in it is ever seen; a generated chain's
 * batch of thousands of blocks otherwise wrote the tip, the miner's account and its leaf once per block.
 */
export interface LatestOp {
  readonly kind: LatestKind;
  readonly slot: string;
  readonly op: BatchOp;
}

/**
 * What a LatestOp's slot names: a tree position (its id) or the tip. Each kind has its own slots,
 * so no slot is a prefix glued to a key: that concatenation, and hashing the new string, was most
 * of the cost of queueing a block.
 */
export type LatestKind = 'node' | 'tip';

/** The largest log kept for the next flush once its own has committed. */
const SPARE_LOG_MAX_BYTES = 8 * 1024 * 1024;

/** Queued operations beyond which a writer waits for the flush in flight (backpressure). */
const MAX_QUEUED_OPS = 50_000;

/**
 * Queued bytes beyond which a writer waits too. Below SPARE_LOG_MAX_BYTES with room for a large
 * block's unit, so that a log filled up to backpressure is kept for reuse: bound by operations
 * alone, an import of small blocks that never yields (a generated chain, the scaling bench) filled
 * each log past the cap, into a 16 MB buffer, and every flush made a new one, grown from 64 KB by
 * eight doublings (10-15% of that import's profile in some windows).
 */
const MAX_QUEUED_BYTES = 6 * 1024 * 1024;

/**
 * Group commit for ChainDB. Writes are queued in order and committed by one flush at a time, each
 * flush a single atomic LevelDB batch of everything queued while the one before was in flight.
 * A writer does not wait for its commit: while block N is written, block N+1 is validated. (The
 * sync profile spent ~40% of its wall time awaiting one batch per block through a libuv thread
 * that the verifier threads kept waiting for a core.)
 *
 * Crash safety is unchanged: every batch holds whole blocks with their tip pointer, so a kill
 * leaves the store at the last committed block, as before; what is lost is at most the blocks
 * queued behind it, which the node fetches again. Accounts written but not yet committed are
 * answered from here, so readers see the state the queue will leave. A failed flush poisons the
 * queue: memory is then ahead of the store, and every later write and read that must see the
 * store refuses with the error rather than build on what was never written.
 */
/** The one thing the queue needs of LevelDB: write these operations as one atomic batch. */
export type WriteBatch = (log: OpLog) => Promise<void>;

/**
 * When a flush that a write made necessary starts: at once (the default), or later in the same
 * thread, e.g. `setImmediate` from node/, so that building the batch — a few milliseconds for a
 * large block — comes after the block's connection is announced, not before.
 */
export type FlushScheduler = (start: () => void) => void;
const immediately: FlushScheduler = (start) => start();

export class CommitQueue {
  private readonly write: WriteBatch;
  private readonly onCommitted: (accounts: readonly AccountWrite[]) => void;
  private queued = new OpLog();
  /** The log of the last flush that committed, emptied, for the next: its buffer is not made again. */
  private spare: OpLog | undefined;
  /** The keys of the accounts the next flush carries, once each: its commit reads their values from `uncommitted`. */
  private queuedAccounts: string[] = [];
  private queuedNodes: NodeWrite[] = [];
  /** Where in `queued` each LatestOp slot of the next flush sits. */
  private latestSlots = newLatestSlots();
  /**
   * The newest uncommitted value of each account, with the flush that will carry it and where in
   * that flush's `queued` its operation sits (-1: none yet).
   */
  private readonly uncommitted = new Map<string, { account: Account | null; flush: number; at: number }>();
  /** The same for state tree nodes: the next block's tree update reads what this one wrote. */
  private readonly uncommittedNodes = new Map<string, { node: Uint8Array | null; flush: number }>();
  private inFlight: Promise<void> | undefined;
  /** Flushes started, and flushes committed: flush n carries what was queued while n − 1 ran. */
  private flushes = 0;
  private committedFlushes = 0;
  private failure: StoreError | undefined;
  /** Changes whenever what a store read could return changes: see ChainDB's account cache. */
  generation = 0;

  private readonly schedule: FlushScheduler;
  private scheduled = false;
  private readonly onFailed: (err: StoreError) => void;

  constructor(
    write: WriteBatch,
    /** Told the accounts a flush committed (their caches may keep them); its nodes the tree's cache has since they were queued. */
    onCommitted: (accounts: readonly AccountWrite[]) => void,
    schedule: FlushScheduler = immediately,
    /**
     * Told once, when a flush fails: no writer may be waiting to hear it (a block's unit is queued
     * and its import done before its flush starts), and nothing the queue takes after is written.
     */
    onFailed: (err: StoreError) => void = () => {},
  ) {
    this.write = write;
    this.onCommitted = onCommitted;
    this.schedule = schedule;
    this.onFailed = onFailed;
  }

  /**
   * Queues `ops` and `latest` after everything queued before; `accounts` and `nodes` are the
   * account values and tree nodes they write.
   */
  enqueue(ops: readonly BatchOp[], accounts: readonly AccountWrite[] = [], nodes: readonly NodeWrite[] = [], latest: readonly LatestOp[] = []): void {
    const unit = this.unit();
    for (const op of ops) unit.op(op);
    for (const { kind, slot, op } of latest) unit.latest(kind, slot, op.key, valueOf(op));
    for (const a of accounts) unit.account(a.key, a.account, a.op?.key, a.op && valueOf(a.op));
    for (const n of nodes) unit.node(n.id, n.node);
    unit.end();
  }

  /**
   * A unit queued as it is made, each write copied into the log at once (see `enqueue` for what each
   * kind is): a block's writes as objects all alive until the last was made were what a scavenge
   * inside the block's connect found, and copied. The unit must be made and ended in one synchronous
   * step, which is what keeps a flush from taking half of it.
   */
  unit(): QueueUnit {
    this.check();
    return new QueueUnit(this, this.flushes + 1);
  }

  /** @internal QueueUnit's writes. */
  addOp(key: Uint8Array, value: Uint8Array | undefined): void {
    this.queued.add(key, value);
  }

  /** @internal */
  addLatest(kind: LatestKind, slot: string, key: Uint8Array, value: Uint8Array | undefined): void {
    const slots = this.latestSlots[kind];
    const at = slots.get(slot);
    if (at === undefined) slots.set(slot, this.queued.add(key, value));
    else this.queued.set(at, key, value);
  }

  /** @internal */
  addAccount(key: string, account: Account | null, flush: number, storeKey: Uint8Array | undefined, value: Uint8Array | undefined): void {
    let entry = this.uncommitted.get(key);
    if (entry === undefined || entry.flush !== flush) {
      entry = { account, flush, at: -1 };
      this.uncommitted.set(key, entry);
      this.queuedAccounts.push(key); // once a flush: its commit reads the entry's last value
    } else {
      entry.account = account;
    }
    if (storeKey === undefined) return;
    if (entry.at < 0) entry.at = this.queued.add(storeKey, value);
    else this.queued.set(entry.at, storeKey, value);
  }

  /** @internal */
  addNode(id: string, node: Uint8Array | null, flush: number): void {
    this.queuedNodes.push({ id, node });
    this.uncommittedNodes.set(id, { node, flush });
  }

  /** @internal The unit is whole: readers may see it, and a flush may take it. */
  endUnit(): void {
    this.generation++;
    if (!this.scheduled && !this.inFlight) {
      this.scheduled = true;
      this.schedule(() => {
        this.scheduled = false;
        this.start();
      });
    }
  }

  /** An account's queued value: `null` for deleted, `undefined` if no queued write touches it. */
  account(key: string): Account | null | undefined {
    return this.uncommitted.get(key)?.account;
  }

  /** A tree position's queued node: `null` for removed, `undefined` if no queued write touches it. */
  node(id: string): Uint8Array | null | undefined {
    return this.uncommittedNodes.get(id)?.node;
  }

  /**
   * Resolves when everything queued so far is committed (not what is queued after: under a
   * steady import that would be never); rejects if a flush failed.
   */
  async flushed(): Promise<void> {
    const target = this.queued.length > 0 ? this.flushes + 1 : this.flushes;
    while (!this.failure && this.committedFlushes < target) {
      this.start();
      await this.inFlight;
    }
    this.check();
  }

  /** Waits for the flush in flight if the queue is long: what keeps memory bounded. */
  async backpressure(): Promise<void> {
    if (this.queued.length >= MAX_QUEUED_OPS || this.queued.size >= MAX_QUEUED_BYTES) {
      this.start(); // a flush only scheduled so far
      await this.inFlight;
    }
    this.check();
  }

  /**
   * The store refused a write, this queue's or another's (a snapshot's install): from now on the
   * queue refuses every write and every wait for one, and `onFailed` is told, once. Returns the
   * error it refuses with.
   */
  fail(err: Error): StoreError {
    if (!this.failure) {
      this.failure = new StoreError('STORE_WRITE_FAILED', `a write to the store failed; the node must restart: ${err.message}`);
      this.onFailed(this.failure);
    }
    return this.failure;
  }

  private check(): void {
    if (this.failure) throw this.failure;
  }

  private start(): void {
    if (this.inFlight || this.queued.length === 0 || this.failure) return;
    const log = this.queued;
    const accounts = this.queuedAccounts;
    const nodes = this.queuedNodes;
    const flush = ++this.flushes;
    this.queued = this.spare ?? new OpLog();
    this.spare = undefined;
    this.queuedAccounts = [];
    this.queuedNodes = [];
    this.latestSlots = newLatestSlots();
    this.inFlight = this.write(log)
      .then(
        () => {
          const committed: AccountWrite[] = [];
          for (const key of accounts) {
            const entry = this.uncommitted.get(key);
            if (entry?.flush !== flush) continue; // a later batch writes it again
            this.uncommitted.delete(key);
            committed.push({ key, account: entry.account });
          }
          for (const n of nodes) if (this.uncommittedNodes.get(n.id)?.flush === flush) this.uncommittedNodes.delete(n.id);
          this.generation++;
          this.committedFlushes = flush;
          // The store has the batch, so the log's views are done with; one grown past the cap (by a
          // unit larger than MAX_QUEUED_BYTES allows for: a very large block) is not kept.
          if (log.capacity <= SPARE_LOG_MAX_BYTES) {
            log.clear();
            this.spare = log;
          }
          this.onCommitted(committed);
        },
        (err: Error) => void this.fail(err),
      )
      .finally(() => {
        this.inFlight = undefined;
        this.start();
      });
  }
}

function newLatestSlots(): Record<LatestKind, Map<string, number>> {
  return { node: new Map(), tip: new Map() };
}

/** One unit being queued (CommitQueue.unit): its writes, in order, then `end`. */
export class QueueUnit {
  private readonly queue: CommitQueue;
  private readonly flush: number;

  constructor(queue: CommitQueue, flush: number) {
    this.queue = queue;
    this.flush = flush;
  }

  /** A put of `value` at `key`, or the key's deletion (`value` undefined). */
  put(key: Uint8Array, value: Uint8Array | undefined): void {
    this.queue.addOp(key, value);
  }

  del(key: Uint8Array): void {
    this.queue.addOp(key, undefined);
  }

  op(op: BatchOp): void {
    this.queue.addOp(op.key, valueOf(op));
  }

  /** A write of a key that holds only its latest value (LatestOp): in its slot's place in the flush. */
  latest(kind: LatestKind, slot: string, key: Uint8Array, value: Uint8Array | undefined): void {
    this.queue.addLatest(kind, slot, key, value);
  }

  /** An account's new value (`null`: deleted), with the store write that carries it if the unit has one. */
  account(key: string, account: Account | null, storeKey?: Uint8Array, value?: Uint8Array): void {
    this.queue.addAccount(key, account, this.flush, storeKey, value);
  }

  /** A state tree node written below the top, which the queue answers reads of until it is committed. */
  node(id: string, node: Uint8Array | null): void {
    this.queue.addNode(id, node, this.flush);
  }

  end(): void {
    this.queue.endUnit();
  }
}
