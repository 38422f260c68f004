import { Level } from 'level';
import { Reader, Writer, bytesEqual, plainBytes, toHex } from './bytes.ts';
import { BlockRuleError, StoreError } from './errors.ts';
import { layout } from './layout.ts';
import { CommitQueue, type AccountWrite, type BatchOp, type FlushScheduler } from './commit-queue.ts';
import { checkBlockBody, decodeBlock, type Block } from './block.ts';
import { genesisBlock, type ChainParams } from './genesis.ts';
import {
  applyBlock,
  decodeAccount,
  decodeUndo,
  encodeAccount,
  encodeUndo,
  type Account,
  type AccountSource,
  type BlockEffects,
  type SignatureChecker,
} from './state.ts';

type Db = Level<Uint8Array, Uint8Array>;

export interface ChainTip {
  readonly hash: Uint8Array;
  readonly height: number;
}

export interface TxLocation {
  readonly blockHash: Uint8Array;
  readonly index: number;
}

/**
 * The only code that touches the database (bcoin's ChainDB). It keeps the main chain and the
 * state at its tip, and moves the tip one block at a time, each move one atomic batch: a kill at
 * any instant leaves a store that reopens at the last committed block with matching state.
 *
 * Concurrency: connect and disconnect are serialised internally. Their batches are committed
 * behind them by a CommitQueue (group commit): `connectBlock` resolves once its batch is queued,
 * `flushed()` once it is in LevelDB. Reads see the state the queue leaves: accounts from the
 * queue where it holds them, everything else after waiting for the queue to drain.
 */
export class ChainDB implements AccountSource {
  readonly params: ChainParams;
  readonly genesis: Block;
  private readonly db: Db;
  private currentTip: ChainTip;
  private queue: Promise<unknown> = Promise.resolve();
  /**
   * Accounts at the tip, in front of LevelDB (null: known not to exist). Filled only with what a
   * batch has committed (and reads that no write straddled), so it never disagrees with the store.
   */
  private readonly accountCache = new Map<string, { account: Account | null; used: boolean }>();
  /**
   * ~200 bytes of heap an entry (hex key, two bigints, the map's slot): 32,768 is ~6 MB. It was
   * 500,000 and then 100,000, which a devnet paying ~1,500 new addresses a second filled within a
   * minute, for ~20 MB of a node that must stay under 300 MB. Eviction gives used entries a
   * second chance, so the accounts that matter (senders) stay while one-off recipients pass
   * through; an account not cached costs one LevelDB read, in the batch of its block's reads.
   */
  private readonly accountCacheSize = 32_768;
  private readonly writes: CommitQueue;

  private constructor(db: Db, params: ChainParams, genesis: Block, tip: ChainTip, schedule: FlushScheduler | undefined) {
    this.db = db;
    this.params = params;
    this.genesis = genesis;
    this.currentTip = tip;
    this.writes = new CommitQueue(
      (ops) => ChainDB.writeBatch(db, ops),
      (committed) => {
        for (const a of committed) this.cacheAccount(a.key, a.account ?? undefined);
      },
      schedule,
    );
  }

  /**
   * One atomic batch, built as a chained batch: abstract-level's array form copies and checks
   * every operation object first, 15-30 ms of main thread for a 2,000-transaction block's 6,000
   * operations against 4-7 ms chained.
   */
  private static writeBatch(db: Db, ops: readonly BatchOp[]): Promise<void> {
    const batch = db.batch();
    for (const op of ops) {
      if (op.type === 'put') batch.put(op.key, op.value);
      else batch.del(op.key);
    }
    return batch.write();
  }

  /** Resolves once every write so far is committed to LevelDB. */
  flushed(): Promise<void> {
    return this.writes.flushed();
  }

  /**
   * Opens (creating if empty) the store at `location` for the network `params` defines.
   * `scheduleFlush`: when the commit queue starts writing what a connect queued (see FlushScheduler).
   */
  static async open(location: string, params: ChainParams, options: { scheduleFlush?: FlushScheduler } = {}): Promise<ChainDB> {
    const db: Db = new Level<Uint8Array, Uint8Array>(location, { keyEncoding: 'view', valueEncoding: 'view' });
    try {
      await db.open();
    } catch (err) {
      const locked = (err as { cause?: { code?: string } }).cause?.code === 'LEVEL_LOCKED'; // another process has it open
      throw new StoreError(locked ? 'STORE_LOCKED' : 'STORE_CORRUPT', `cannot open the database at ${location}: ${(err as Error).message}`);
    }
    try {
      const genesis = genesisBlock(params);
      const stored = await db.get(layout.genesis);
      if (stored === undefined) {
        await ChainDB.writeGenesis(db, params, genesis);
      } else if (!bytesEqual(stored, genesis.header.hash)) {
        const name = new TextDecoder().decode((await db.get(layout.network)) ?? new Uint8Array());
        throw new StoreError(
          'STORE_GENESIS_MISMATCH',
          `${location} holds the network "${name}" (genesis ${toHex(stored)}), not "${params.name}" (genesis ${toHex(genesis.header.hash)})`,
        );
      }
      const tip = await ChainDB.readTip(db);
      return new ChainDB(db, params, genesis, tip, options.scheduleFlush);
    } catch (err) {
      await db.close();
      throw err;
    }
  }

  private static async writeGenesis(db: Db, params: ChainParams, genesis: Block): Promise<void> {
    const hash = genesis.header.hash;
    const ops: BatchOp[] = [
      { type: 'put', key: layout.network, value: new TextEncoder().encode(params.name) },
      { type: 'put', key: layout.block(hash), value: genesis.bytes },
      { type: 'put', key: layout.height(0), value: hash },
      { type: 'put', key: layout.tip, value: hash },
      ...params.alloc.map((a): BatchOp => ({
        type: 'put',
        key: layout.account(a.address),
        value: encodeAccount({ balance: a.balance, nonce: 0n }),
      })),
      // Written last in the same batch: its presence means the rest is there.
      { type: 'put', key: layout.genesis, value: hash },
    ];
    await db.batch(ops);
  }

  private static async readTip(db: Db): Promise<ChainTip> {
    const hash = await db.get(layout.tip);
    const bytes = hash && (await db.get(layout.block(hash)));
    if (!hash || !bytes) throw new StoreError('STORE_CORRUPT', 'the tip pointer names no stored block');
    const { height } = decodeBlock(bytes).header;
    const indexed = await db.get(layout.height(height));
    if (!indexed || !bytesEqual(indexed, hash)) {
      throw new StoreError('STORE_CORRUPT', `the height index at ${height} does not name the tip`);
    }
    return { hash: plainBytes(hash), height };
  }

  get tip(): ChainTip {
    return this.currentTip;
  }

  async close(): Promise<void> {
    await this.queue.catch(() => {});
    await this.writes.flushed().catch(() => {});
    await this.db.close();
  }

  /** What is known without a store read: `null` for no account, `undefined` for not known. */
  private knownAccount(key: string): Account | null | undefined {
    const queued = this.writes.account(key);
    if (queued !== undefined) return queued;
    const cached = this.accountCache.get(key);
    if (!cached) return undefined;
    cached.used = true;
    return cached.account;
  }

  async getAccount(address: Uint8Array): Promise<Account | undefined> {
    const key = toHex(address);
    const known = this.knownAccount(key);
    if (known !== undefined) return known ?? undefined;
    const generation = this.writes.generation;
    const bytes = await this.db.get(layout.account(address));
    const account = bytes && decodeAccount(bytes);
    // A write queued or committed meanwhile may have changed it: answer, but do not cache.
    if (generation === this.writes.generation) this.cacheAccount(key, account);
    return account;
  }

  async getAccounts(addresses: readonly Uint8Array[], keys: readonly string[] = addresses.map(toHex)): Promise<(Account | undefined)[]> {
    const out: (Account | undefined)[] = new Array(addresses.length);
    const missing: number[] = [];
    for (let i = 0; i < addresses.length; i++) {
      const known = this.knownAccount(keys[i]!);
      if (known === undefined) missing.push(i);
      else out[i] = known ?? undefined;
    }
    if (missing.length === 0) return out;
    const generation = this.writes.generation;
    const values = await this.db.getMany(missing.map((i) => layout.account(addresses[i]!)));
    const cache = generation === this.writes.generation;
    missing.forEach((i, k) => {
      const bytes = values[k];
      out[i] = bytes && decodeAccount(bytes);
      if (cache) this.cacheAccount(keys[i]!, out[i]);
    });
    return out;
  }

  /**
   * CLOCK (second chance) eviction: entries keep their insertion place, a read or write marks one
   * used, and the oldest is evicted unless marked, in which case it is unmarked and moves to the
   * back. Close to LRU, without moving an entry on every hit (deleting and re-inserting on each
   * update made V8 rebuild the half-million-entry table over and over).
   */
  private cacheAccount(key: string, account: Account | undefined): void {
    const entry = this.accountCache.get(key);
    if (entry) {
      entry.account = account ?? null;
      entry.used = true;
      return;
    }
    this.accountCache.set(key, { account: account ?? null, used: false });
    while (this.accountCache.size > this.accountCacheSize) {
      const [oldest, value] = this.accountCache.entries().next().value!;
      this.accountCache.delete(oldest);
      if (!value.used) break;
      value.used = false;
      this.accountCache.set(oldest, value);
    }
  }

  async hasBlock(hash: Uint8Array): Promise<boolean> {
    await this.writes.flushed();
    return (await this.db.get(layout.block(hash))) !== undefined;
  }

  /** Stored blocks' encodings as stored, undecoded (what a peer asking for them is sent), in one read. */
  async getBlocksBytes(hashes: readonly Uint8Array[]): Promise<(Uint8Array | undefined)[]> {
    await this.writes.flushed();
    return this.db.getMany(hashes.map((h) => layout.block(h)));
  }

  async getBlock(hash: Uint8Array): Promise<Block | undefined> {
    await this.writes.flushed();
    const bytes = await this.db.get(layout.block(hash));
    return bytes && decodeBlock(bytes);
  }

  async getHashAtHeight(height: number): Promise<Uint8Array | undefined> {
    if (!Number.isInteger(height) || height < 0 || height > this.currentTip.height) return undefined;
    await this.writes.flushed();
    const hash = await this.db.get(layout.height(height));
    return hash && plainBytes(hash);
  }

  async getBlockAtHeight(height: number): Promise<Block | undefined> {
    const hash = await this.getHashAtHeight(height);
    return hash && this.getBlock(hash);
  }

  async getTxLocation(txid: Uint8Array): Promise<TxLocation | undefined> {
    await this.writes.flushed();
    const bytes = await this.db.get(layout.tx(txid));
    if (!bytes) return undefined;
    const r = new Reader(bytes);
    return { blockHash: r.bytes(32), index: r.u32() };
  }

  /** Every account at the tip, in address order. */
  async *accounts(): AsyncGenerator<{ address: Uint8Array; account: Account }> {
    await this.writes.flushed();
    for await (const [key, value] of this.db.iterator(layout.range('A'))) {
      yield { address: plainBytes(key.subarray(1)), account: decodeAccount(value) };
    }
  }

  /**
   * Stores a block that is not (yet) on the main chain (a side branch, or one awaiting its turn),
   * with consensus's index record for it in the same batch.
   */
  async putBlock(block: Block, indexRecord?: Uint8Array): Promise<void> {
    const ops: BatchOp[] = [{ type: 'put', key: layout.block(block.header.hash), value: block.bytes }];
    if (indexRecord) ops.push(ChainDB.indexRecordOp(block.header.hash, indexRecord));
    // Through the queue, so it lands after (and is never overwritten by) what was queued before.
    this.writes.enqueue(ops);
    await this.writes.flushed();
  }

  /** The write of one block index record, for batches that carry it along with other changes. */
  static indexRecordOp(hash: Uint8Array, record: Uint8Array): BatchOp {
    return { type: 'put', key: layout.index(hash), value: record };
  }

  async putIndexRecord(hash: Uint8Array, record: Uint8Array): Promise<void> {
    this.writes.enqueue([ChainDB.indexRecordOp(hash, record)]);
    await this.writes.flushed();
  }

  async *indexRecords(): AsyncGenerator<{ hash: Uint8Array; record: Uint8Array }> {
    await this.writes.flushed();
    for await (const [key, value] of this.db.iterator(layout.range('I'))) yield { hash: plainBytes(key.subarray(1)), record: value };
  }

  private exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = this.queue.then(work, work);
    this.queue = run.catch(() => {});
    return run;
  }

  /**
   * Validates `block` as the child of the tip (linkage, body, every transaction against state)
   * and, only if all of it holds, queues block, undo data, state, indexes and tip as one unit of
   * the commit queue (committed whole, in one batch). Throws a typed rule error and writes nothing
   * otherwise. `extraOps` lets consensus put its index record for the block into the same unit.
   */
  connectBlock(block: Block, signatures?: SignatureChecker, extraOps: readonly BatchOp[] = []): Promise<BlockEffects> {
    return this.exclusive(async () => {
      await this.writes.backpressure();
      const tip = this.currentTip;
      const { header } = block;
      if (!bytesEqual(header.prevHash, tip.hash)) {
        throw new BlockRuleError('BLOCK_BAD_PARENT', `parent ${toHex(header.prevHash)} is not the tip ${toHex(tip.hash)}`, 0);
      }
      if (header.height !== tip.height + 1) {
        throw new BlockRuleError('BLOCK_BAD_HEIGHT', `height ${header.height}, expected ${tip.height + 1}`);
      }
      checkBlockBody(block, this.params);
      const effects = await applyBlock(this, block, this.params, signatures);
      const hash = header.hash;
      const ops: BatchOp[] = [
        { type: 'put', key: layout.block(hash), value: block.bytes },
        { type: 'put', key: layout.height(header.height), value: hash },
        { type: 'put', key: layout.undo(hash), value: encodeUndo(effects.undo) },
      ];
      for (const a of effects.accounts) ops.push({ type: 'put', key: layout.account(a.address), value: encodeAccount(a.account) });
      for (let i = 0; i < block.txs.length; i++) ops.push({ type: 'put', key: layout.tx(block.txs[i]!.id), value: encodeTxLocation(hash, i) });
      for (const op of extraOps) ops.push(op);
      ops.push({ type: 'put', key: layout.tip, value: hash });
      this.writes.enqueue(ops, effects.accounts);
      this.currentTip = { hash, height: header.height };
      return effects;
    });
  }

  /** Moves the tip back to its parent with the tip's undo data, in one batch. Returns the block removed. */
  disconnectTip(extraOps: readonly BatchOp[] = []): Promise<Block> {
    return this.exclusive(async () => {
      const tip = this.currentTip;
      if (tip.height === 0) throw new StoreError('STORE_CORRUPT', 'cannot disconnect the genesis block');
      await this.writes.flushed(); // reorganisations are rare: read the tip's undo data from the store
      const block = await this.getBlock(tip.hash);
      const undoBytes = await this.db.get(layout.undo(tip.hash));
      if (!block || !undoBytes) throw new StoreError('STORE_CORRUPT', `tip ${toHex(tip.hash)} has no block or undo data`);
      const undo = decodeUndo(undoBytes);
      const ops: BatchOp[] = [
        ...undo.map((u): BatchOp =>
          u.previous
            ? { type: 'put', key: layout.account(u.address), value: encodeAccount(u.previous) }
            : { type: 'del', key: layout.account(u.address) },
        ),
        ...block.txs.map((tx): BatchOp => ({ type: 'del', key: layout.tx(tx.id) })),
        { type: 'del', key: layout.undo(tip.hash) },
        { type: 'del', key: layout.height(tip.height) },
        ...extraOps,
        { type: 'put', key: layout.tip, value: block.header.prevHash },
      ];
      this.writes.enqueue(ops, undo.map((u): AccountWrite => ({ key: toHex(u.address), account: u.previous ?? null })));
      this.currentTip = { hash: block.header.prevHash, height: tip.height - 1 };
      return block;
    });
  }
}

function encodeTxLocation(blockHash: Uint8Array, index: number): Uint8Array {
  return new Writer(36).bytes(blockHash).u32(index).finish();
}

export type { BatchOp };
