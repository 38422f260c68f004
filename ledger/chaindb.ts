import { Reader, bytesEqual, plainBytes, toHex } from './bytes.ts';
import { StoreError } from './errors.ts';
import { layout } from './layout.ts';
import { TipAccounts } from './tip-accounts.ts';
import { CommitQueue, type FlushScheduler } from './commit-queue.ts';
import type { BatchOp, KeyRange, KvStore } from './kv.ts';
import { LevelKv } from './kv-level.ts';
import { decodeBlock, type Block } from './block.ts';
import { genesisHashHex, type ChainParams } from './genesis.ts';
import { checkStoreLayout, layoutMark, storedGenesis, writeGenesis } from './genesis-store.ts';
import { decodeAccount, decodeUndo, encodeAccount, encodeUndo, type Account, type AccountSource, type BlockEffects, type UndoRecord } from './state.ts';
import { StateKeys, type TreeNodeReader, type TreeUpdate } from './smt.ts';
import { TopNodes, TreeStore, type TreeReads } from './tree-store.ts';
import { ChainHistory } from './history.ts';
import { PinnedState } from './pinned-state.ts';
import { SnapshotJoinStore } from './snapshot-join.ts';
import { SnapshotStore } from './snapshot-store.ts';
import { eachTxLocation, type BlockIndexer, type ChainDBOptions, type ChainTip, type TxLocation } from './chaindb-types.ts';

/**
 * The only code that touches the database (bcoin's ChainDB), and it only saves and loads: it
 * judges nothing. Consensus decides what to connect and hands over what connecting it does
 * (`queueConnect`), and this class writes that as ONE unit of the commit queue — block, undo
 * data, accounts, indexes, the tip pointer — so a kill at any instant leaves a store that
 * reopens at the last committed block with matching state. The tip in memory is consensus's
 * (`Chain`); the tip pointer here is only the record on disk.
 *
 * Writes are committed behind the caller by a CommitQueue (group commit): `queue*` returns once
 * the unit is queued, `flushed()` once it is in the store. Reads see the state the queue leaves:
 * accounts from the queue where it holds them, everything else after waiting for it to drain.
 */
export class ChainDB implements AccountSource, TreeNodeReader {
  readonly params: ChainParams;
  readonly genesis: Block;
  private readonly kv: KvStore;
  /** Accounts at the tip: the queue's, a cache of the committed, the store's. */
  private readonly tipAccounts: TipAccounts;
  /** Tree keys of the addresses blocks touched lately (consensus/connect.ts). */
  readonly stateKeys = new StateKeys(16_384);
  /** The state tree's nodes: its top in memory, the rest in the store (ledger/tree-store.ts). */
  private tree: TreeStore;
  private readonly writes: CommitQueue;
  private readonly indexers: readonly BlockIndexer[];
  private disconnects = 0;
  private readonly cachedTreeNodes: number | undefined;
  /** What the tree's top was last rebuilt from: a clean close's checkpoint, or the stored nodes. */
  private rebuiltFrom: 'checkpoint' | 'scan';
  /** Whether this open finished a snapshot's install that a kill had cut short (for the node's log). */
  readonly resumedInstall: boolean;
  /** Tree nodes this store has read below the top since it opened (the simulator counts them). */
  readonly treeReads: TreeReads = { nodes: 0, prefetched: 0 };
  /** Reads by height deep in the chain, a sync's scratch, pruning. */
  readonly history: ChainHistory;
  /** Copies of the state at snapshot heights, served to joining nodes. */
  readonly snapshots: SnapshotStore;
  /** A snapshot sync of this store's own: what it fetched, and its install. */
  readonly join: SnapshotJoinStore;

  private constructor(kv: KvStore, params: ChainParams, genesis: Block, options: ChainDBOptions, { top, from }: { top: TopNodes; from: 'checkpoint' | 'scan' }, resumedInstall: boolean) {
    this.kv = kv;
    this.resumedInstall = resumedInstall;
    this.indexers = options.indexers ?? [];
    this.cachedTreeNodes = options.cachedTreeNodes;
    this.params = params;
    this.genesis = genesis;
    this.tree = this.treeOver(top);
    this.rebuiltFrom = from;
    this.writes = new CommitQueue(
      (log) => (kv.writeLog ? kv.writeLog(log) : kv.write(log.ops())),
      (committed) => {
        for (const a of committed) this.tipAccounts.committed(a.key, a.account ?? undefined);
      },
      options.scheduleFlush,
      options.onWriteFailed,
    );
    this.tipAccounts = new TipAccounts(kv, this.writes);
    this.history = new ChainHistory(kv, () => this.writes.flushed());
    this.snapshots = new SnapshotStore(kv);
    this.join = new SnapshotJoinStore(kv, this.indexers);
  }

  /**
   * Re-reads what is kept in memory of the stored state, after a snapshot sync replaced it
   * underneath (the queue is empty: the join ran between imports).
   */
  async reload(): Promise<void> {
    await this.writes.flushed();
    this.tipAccounts.clear();
    const { top, from } = await TreeStore.loadTop(this.kv);
    this.tree = this.treeOver(top);
    this.rebuiltFrom = from;
    await this.loadChecked();
  }

  /** What the tree's top was rebuilt from when the store opened (or last reloaded). */
  get topFrom(): 'checkpoint' | 'scan' {
    return this.rebuiltFrom;
  }

  /** The store's tree over `top`, behind the commit queue, counting its reads in `treeReads` across reloads. */
  private treeOver(top: TopNodes): TreeStore {
    return new TreeStore(this.kv, top, (id) => this.writes.node(id), this.cachedTreeNodes, this.treeReads);
  }

  /** Loads the history's marks and checks the stored tree against the tip's state root. */
  private async loadChecked(): Promise<void> {
    await this.history.load();
    const tip = await this.storedTip();
    const tipBlock = await this.getBlock(tip.hash);
    if (!tipBlock || !bytesEqual(await this.stateRoot(), tipBlock.header.stateRoot)) {
      throw new StoreError('STORE_CORRUPT', `the stored state tree's root is not the state root of the tip ${toHex(tip.hash)}`);
    }
  }

  /** Resolves once every write so far is committed to the store. */
  flushed(): Promise<void> {
    return this.writes.flushed();
  }

  /**
   * A write outside the commit queue failed where it leaves the store unlike what memory holds (a
   * snapshot's install, part-way): the queue refuses from now on and whoever runs the chain is
   * told (`onWriteFailed`); only a reopen, which finishes such an install, puts it right.
   */
  writeFailed(err: unknown): StoreError {
    return this.writes.fail(err instanceof Error ? err : new Error(String(err)));
  }

  /** Waits while the commit queue is long: what keeps memory bounded under a fast import. */
  backpressure(): Promise<void> {
    return this.writes.backpressure();
  }

  /**
   * Opens the store (a LevelDB directory, or a KvStore the caller made) for the network `params`
   * defines, writing block 0 and the allocations into an empty one.
   */
  static async open(store: string | KvStore, params: ChainParams, options: ChainDBOptions = {}): Promise<ChainDB> {
    const kv = typeof store === 'string' ? await LevelKv.open(store) : store;
    try {
      // One read: the simulator's store schedules each, so a second would move every seed's trace.
      const [stored, layoutVersion] = await kv.getMany([layout.genesis, layout.layoutVersion]);
      // A new store is marked by the batch that writes its genesis.
      const marked = checkStoreLayout(layoutVersion) || stored === undefined;
      let genesis: Block | undefined;
      if (stored === undefined) {
        genesis = await writeGenesis(kv, params);
      } else {
        genesis = await storedGenesis(kv, params, stored);
        if (genesis === undefined) {
          const name = new TextDecoder().decode((await kv.get(layout.network)) ?? new Uint8Array());
          throw new StoreError(
            'STORE_GENESIS_MISMATCH',
            `this store holds the network "${name}" (genesis ${toHex(stored)}), not "${params.name}" (genesis ${genesisHashHex(params)})`,
          );
        }
      }
      // A snapshot sync's install that a kill interrupted is finished before the state is read.
      const resumed = await new SnapshotJoinStore(kv, options.indexers ?? []).resumeInstall();
      await new SnapshotStore(kv).clearIncomplete();
      const db = new ChainDB(kv, params, genesis, options, await TreeStore.loadTop(kv), resumed);
      await db.loadChecked();
      if (!marked) await kv.write([layoutMark()]);
      return db;
    } catch (err) {
      await kv.close();
      throw err;
    }
  }

  /** The tip pointer as committed, checked against the height index. */
  async storedTip(): Promise<ChainTip> {
    await this.writes.flushed();
    const hash = await this.kv.get(layout.tip);
    const bytes = hash && (await this.kv.get(layout.block(hash)));
    if (!hash || !bytes) throw new StoreError('STORE_CORRUPT', 'the tip pointer names no stored block');
    const { height } = decodeBlock(bytes).header;
    const indexed = await this.kv.get(layout.height(height));
    if (!indexed || !bytesEqual(indexed, hash)) {
      throw new StoreError('STORE_CORRUPT', `the height index at ${height} does not name the tip`);
    }
    return { hash: plainBytes(hash), height };
  }

  /**
   * Closes the store once every write is committed, leaving the tree's top for the next open to
   * read instead of rebuilding it (`M "top"`). Not when a write failed: the top may then be ahead
   * of the store (the next open would set such a checkpoint aside, as it does a stale one).
   */
  async close(): Promise<void> {
    const committed = await this.writes.flushed().then(
      () => true,
      () => false,
    );
    if (committed) await this.kv.write([{ type: 'put', key: layout.topCheckpoint, value: await this.tree.topCheckpoint() }]).catch(() => {});
    await this.kv.close();
  }

  getAccount(address: Uint8Array): Promise<Account | undefined> {
    return this.tipAccounts.get(address);
  }

  getAccounts(addresses: readonly Uint8Array[], keys?: readonly string[]): Promise<(Account | undefined)[]> {
    return this.tipAccounts.getMany(addresses, keys);
  }

  /** State tree nodes at the tip, by position (ledger/smt.ts): the top from memory, the rest as queued or stored. */
  readNodes(ids: readonly string[]): Promise<(Uint8Array | undefined)[]> {
    return this.tree.readNodes(ids);
  }

  /**
   * The state tree and the undo records as they are now, however many blocks connect after: call
   * between imports (the queue is flushed first, so the store's snapshot and the tree's top are the
   * same tip's), read at leisure, and close it.
   */
  async pinState(): Promise<PinnedState> {
    await this.writes.flushed();
    return new PinnedState(this.kv.snapshot(), this.tree.pinTop());
  }

  /** Starts reading these keys' stored tree paths into memory (TreeStore.prefetch); never fails. */
  prefetchState(keys: Iterable<Uint8Array>): void {
    void this.tree.prefetch(keys);
  }

  readAhead(depth: number): number {
    return this.tree.readAhead(depth);
  }

  readNow(id: string): Uint8Array | undefined | false {
    return this.tree.readNow(id);
  }

  /** The root of the state tree as the queue will leave it: the tip's state root. */
  stateRoot(): Promise<Uint8Array> {
    return this.tree.root();
  }

  /** Every state tree node the store holds (not the top, which lives in memory), by position id, in store order. */
  async *stateNodes(): AsyncGenerator<{ id: string; node: Uint8Array }> {
    await this.writes.flushed();
    yield* this.tree.stored();
  }

  async hasBlock(hash: Uint8Array): Promise<boolean> {
    await this.writes.flushed();
    return (await this.kv.get(layout.block(hash))) !== undefined;
  }

  /** Stored blocks' encodings as stored, undecoded (what a peer asking for them is sent), in one read. */
  async getBlocksBytes(hashes: readonly Uint8Array[]): Promise<(Uint8Array | undefined)[]> {
    await this.writes.flushed();
    return this.kv.getMany(hashes.map((h) => layout.block(h)));
  }

  async getBlock(hash: Uint8Array): Promise<Block | undefined> {
    await this.writes.flushed();
    const bytes = await this.kv.get(layout.block(hash));
    return bytes && decodeBlock(bytes);
  }

  /** The main chain's block hash at `height`, as committed. */
  async getHashAtHeight(height: number): Promise<Uint8Array | undefined> {
    if (!Number.isSafeInteger(height) || height < 0 || height > 0xffffffff) return undefined;
    await this.writes.flushed();
    const hash = await this.kv.get(layout.height(height));
    return hash && plainBytes(hash);
  }

  async getBlockAtHeight(height: number): Promise<Block | undefined> {
    const hash = await this.getHashAtHeight(height);
    return hash && this.getBlock(hash);
  }

  async getTxLocation(txid: Uint8Array): Promise<TxLocation | undefined> {
    await this.writes.flushed();
    const bytes = await this.kv.get(layout.tx(txid));
    if (!bytes) return undefined;
    const r = new Reader(bytes);
    return { blockHash: r.bytes(32), index: r.u32() };
  }

  /** A main-chain block's undo data, as committed. */
  async getUndo(hash: Uint8Array): Promise<UndoRecord[] | undefined> {
    await this.writes.flushed();
    const bytes = await this.kv.get(layout.undo(hash));
    return bytes && decodeUndo(bytes);
  }

  /** Every account at the tip, in address order. */
  async *accounts(): AsyncGenerator<{ address: Uint8Array; account: Account }> {
    await this.writes.flushed();
    for await (const [key, value] of this.kv.iterate(layout.range('A'))) {
      yield { address: plainBytes(key.subarray(1)), account: decodeAccount(value) };
    }
  }

  /**
   * Every account at the tip as committed now, read from one snapshot of the store however long
   * the reading goes on: the caller holds imports still until this resolves, then lets them run,
   * and closes it however its reading ends (while open, it keeps every version written since).
   */
  async pinnedAccounts(): Promise<AsyncIterable<{ address: Uint8Array; account: Account }> & { close(): Promise<void> }> {
    await this.writes.flushed();
    const it = this.kv.iterate(layout.range('A'))[Symbol.asyncIterator]();
    const first = await it.next(); // the store's iterator, and its snapshot, are made here
    const close = async () => void (await it.return?.());
    return {
      close,
      async *[Symbol.asyncIterator]() {
        for (let r = first; !r.done; r = await it.next()) yield { address: plainBytes(r.value[0].subarray(1)), account: decodeAccount(r.value[1]) };
      },
    };
  }

  /** Stores a block that is not (yet) on the main chain, with consensus's index record for it in the same batch. */
  async putBlock(block: Block, indexRecord?: Uint8Array): Promise<void> {
    const { header } = block;
    const ops: BatchOp[] = [{ type: 'put', key: layout.block(header.hash), value: block.bytes }];
    if (indexRecord) ops.push(ChainDB.indexRecordOp(header.height, header.hash, indexRecord));
    // Through the queue, so it lands after (and is never overwritten by) what was queued before.
    this.writes.enqueue(ops);
    await this.writes.flushed();
  }

  /** The write of one block index record, for batches that carry it along with other changes. */
  static indexRecordOp(height: number, hash: Uint8Array, record: Uint8Array): BatchOp {
    return { type: 'put', key: layout.index(height, hash), value: record };
  }

  async putIndexRecord(height: number, hash: Uint8Array, record: Uint8Array): Promise<void> {
    this.writes.enqueue([ChainDB.indexRecordOp(height, hash, record)]);
    await this.writes.flushed();
  }

  /** A record of an index kept beside the chain (layout.ts names its keys), as committed. */
  async getRecord(key: Uint8Array): Promise<Uint8Array | undefined> {
    await this.writes.flushed();
    const value = await this.kv.get(key);
    return value && plainBytes(value);
  }

  /** An index's records in `range`, as committed, in key order (or reversed). */
  async *records(range: KeyRange): AsyncGenerator<[Uint8Array, Uint8Array]> {
    await this.writes.flushed();
    for await (const [key, value] of this.kv.iterate(range)) yield [plainBytes(key), plainBytes(value)];
  }

  /** Queues an index's own writes (a backfill step), in order with the blocks' units. */
  queueRecords(ops: readonly BatchOp[]): void {
    this.writes.enqueue(ops);
  }

  /**
   * Queues the connection of `block` on top of the stored tip as ONE unit: the block (unless
   * `blockStored`), its height and transaction indexes, its undo data, every account it changed,
   * the state tree nodes `tree` changes, `extraOps` (consensus's index record) and the tip
   * pointer. Consensus has already judged it.
   */
  queueConnect(block: Block, effects: BlockEffects, tree: TreeUpdate, extraOps: readonly BatchOp[] = [], blockStored = false): void {
    const { header } = block;
    const hash = header.hash;
    const unit = this.writes.unit();
    if (!blockStored) unit.put(layout.block(hash), block.bytes);
    unit.put(layout.height(header.height), hash);
    unit.put(layout.undo(hash), encodeUndo(effects.undo));
    eachTxLocation(block, (key, value) => unit.put(key, value));
    for (const op of extraOps) unit.op(op);
    for (const indexer of this.indexers) indexer.connect(block, (key, value) => unit.put(key, value));
    this.tree.apply(tree, unit);
    unit.latest('tip', TIP_SLOT, layout.tip, hash);
    for (const a of effects.accounts) unit.account(a.key, a.account, layout.account(a.address), encodeAccount(a.account));
    unit.end();
  }

  /**
   * Blocks disconnected since the store opened (queued). A reader that finds it unchanged after
   * reads it began before saw a main chain that only grew between them: each read a prefix of
   * the one after it.
   */
  get disconnectsQueued(): number {
    return this.disconnects;
  }

  /** Queues the disconnection of the stored tip `block` with its `undo` data, and the tree back as it was, as ONE unit. */
  queueDisconnect(block: Block, undo: readonly UndoRecord[], tree: TreeUpdate, extraOps: readonly BatchOp[] = []): void {
    this.disconnects++;
    const { header } = block;
    const unit = this.writes.unit();
    for (const tx of block.txs) unit.del(layout.tx(tx.id));
    unit.del(layout.undo(header.hash));
    unit.del(layout.height(header.height));
    for (const op of extraOps) unit.op(op);
    for (const indexer of this.indexers) indexer.disconnect(block, (key, value) => unit.put(key, value));
    this.tree.apply(tree, unit);
    unit.latest('tip', TIP_SLOT, layout.tip, header.prevHash);
    for (const u of undo) unit.account(toHex(u.address), u.previous ?? null, layout.account(u.address), u.previous && encodeAccount(u.previous));
    unit.end();
  }
}

/** The tip pointer's LatestOp slot, the one of its kind (a tree position's is its id). */
const TIP_SLOT = 'tip';

export type { BatchOp };
