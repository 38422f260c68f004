import { Reader, Writer, bytesEqual, plainBytes, toHex } from './bytes.ts';
import { HEADER_BYTES, decodeBlock, decodeHeader } from './block.ts';
import { eachTxLocation, type BlockIndexer } from './chaindb-types.ts';
import { StoreError } from './errors.ts';
import { layout } from './layout.ts';
import { batchOp, type BatchOp, type KvStore } from './kv.ts';
import { encodeAccount } from './state.ts';
import { positionIdOfBytes } from './smt.ts';
import { SortedTreeBuilder, type SortedLeaf } from './smt-build.ts';
import type { ChunkEntry } from './smt-range.ts';
import { decodeEntry, encodeEntry } from './snapshot-store.ts';
import { storesNode } from './tree-store.ts';

/** A snapshot sync in progress: the pivot block, and whether its state is being fetched or installed. */
export interface JoinState {
  readonly height: number;
  readonly hash: Uint8Array;
  readonly phase: 'fetching' | 'installing';
  /** While installing: the pivot's block index record, as the store will keep it (with HAVE_DATA). */
  readonly pivotRecord?: Uint8Array;
}

/** A header checked by the join's header sync, with the index record the store keeps of it. */
export interface StagedHeader {
  readonly height: number;
  readonly hash: Uint8Array;
  readonly record: Uint8Array;
}

const BATCH = 10_000;

/**
 * The store side of a snapshot sync (docs/PROTOCOL.md, "Snapshot sync"): what a joining node has
 * checked so far, kept apart from its state (`W`, under the `M "join"` mark) so that a kill at any
 * point leaves the node it was — at genesis, with the chunks it verified — and a restart goes on
 * from there; then the install, which replaces the state with the snapshot's in crash-safe steps:
 * marked `installing` first, every step a rewrite of the same keys, the tip pointer moved in the
 * last batch. ChainDB.open finishes an install a kill interrupted before it reads the state.
 */
export class SnapshotJoinStore {
  private readonly kv: KvStore;
  /** The store's indexes kept beside the chain (ChainDB's): the pivot block is indexed by the install. */
  private readonly indexers: readonly BlockIndexer[];

  constructor(kv: KvStore, indexers: readonly BlockIndexer[] = []) {
    this.kv = kv;
    this.indexers = indexers;
  }

  async state(): Promise<JoinState | undefined> {
    const bytes = await this.kv.get(layout.join);
    if (!bytes) return undefined;
    const r = new Reader(bytes);
    const height = r.u32('join height');
    const hash = plainBytes(r.bytes(32, 'join hash'));
    const phase = r.u8('join phase') === 1 ? 'installing' : 'fetching';
    const pivotRecord = phase === 'installing' ? r.bytes(r.remaining, 'join pivot record') : undefined;
    return { height, hash, phase, pivotRecord };
  }

  /**
   * Starts (or goes on with) a join at the pivot `height`/`hash`; the state a join at another
   * pivot fetched is dropped, and its pivot block (the headers just staged stay: they are this
   * join's).
   */
  async begin(height: number, hash: Uint8Array): Promise<void> {
    const current = await this.state();
    if (current && current.height === height && bytesEqual(current.hash, hash)) return;
    // The old pivot's body goes too: below the new pivot it would be a body below the pruning mark.
    await this.kv.write([{ type: 'del', key: layout.join }, ...(current ? [{ type: 'del' as const, key: layout.block(current.hash) }] : [])]);
    await this.kv.clear(layout.joinEntries);
    await this.kv.clear(layout.joinChunks);
    await this.kv.write([{ type: 'put', key: layout.join, value: encodeState(height, hash, 0) }]);
  }

  /** Forgets a join (or an import) and all it staged, and the pivot block it stored: the store is as before it. */
  async discard(pivotBlock?: Uint8Array): Promise<void> {
    const ops: BatchOp[] = [{ type: 'del', key: layout.join }];
    if (pivotBlock) ops.push({ type: 'del', key: layout.block(pivotBlock) });
    await this.kv.write(ops);
    await this.kv.clear(layout.range('W'));
  }

  /**
   * Forgets the headers staged from `height` up, so that a join round's headers from there replace
   * them and the staged headers stay one chain from block 1 (its batches never overlap).
   */
  async dropHeadersFrom(height: number): Promise<void> {
    for await (const [key, value] of this.kv.iterate({ ...layout.joinHeaders(0, height), reverse: true }, 1)) {
      const entries = stagedEntries(key, value);
      const kept = entries.filter((e) => e.height < height).length;
      const size = (value[0]! << 8) | value[1]!;
      if (kept < entries.length) await this.kv.write([{ type: 'put', key: plainBytes(key), value: value.slice(0, 2 + kept * (32 + size)) }]);
    }
    await this.kv.clear(layout.joinHeaders(height, 2 ** 32));
  }

  /**
   * A batch of checked headers of consecutive heights, as one record (a sync's batch is 2,000):
   * `W H first height` → record length u16 ‖ (hash ‖ index record) each. Cheap to write and to
   * clear, however long the chain.
   */
  async stageHeaders(headers: readonly StagedHeader[]): Promise<void> {
    if (headers.length === 0) return;
    const size = headers[0]!.record.length;
    const w = new Writer(2 + headers.length * (32 + size)).u8(size >>> 8).u8(size & 0xff);
    headers.forEach((h, i) => {
      if (h.height !== headers[0]!.height + i || h.record.length !== size) throw new RangeError('staged headers must be consecutive, their records of one size');
      w.bytes(h.hash, 32).bytes(h.record);
    });
    await this.kv.write([{ type: 'put', key: layout.joinHeader(headers[0]!.height), value: w.finish() }]);
  }

  /** The height of the last header staged (0: none). */
  async stagedTop(): Promise<number> {
    for await (const [key, value] of this.kv.iterate({ ...layout.joinHeaders(0, 2 ** 32), reverse: true }, 1)) return stagedEntries(key, value).at(-1)?.height ?? 0;
    return 0;
  }

  /** The staged headers of heights `from` to `from + count - 1`, as far as they are staged, in order. */
  async stagedRange(from: number, count: number): Promise<StagedHeader[]> {
    const out: StagedHeader[] = [];
    if (count <= 0) return out;
    for await (const [key, value] of this.kv.iterate({ ...layout.joinHeaders(0, from + 1), reverse: true }, 1)) {
      out.push(...stagedEntries(key, value).filter((e) => e.height >= from && e.height < from + count));
    }
    for await (const [key, value] of this.kv.iterate(layout.joinHeaders(from + 1, from + count))) {
      out.push(...stagedEntries(key, value).filter((e) => e.height < from + count));
    }
    return out.map((e) => ({ height: e.height, hash: plainBytes(e.hash), record: plainBytes(e.record) }));
  }

  /** A staged header's record (the pivot's, for its state root). */
  async stagedRecord(height: number): Promise<{ hash: Uint8Array; record: Uint8Array } | undefined> {
    for await (const [key, value] of this.kv.iterate({ ...layout.joinHeaders(0, height + 1), reverse: true }, 1)) {
      const entry = stagedEntries(key, value).find((e) => e.height === height);
      return entry && { hash: plainBytes(entry.hash), record: plainBytes(entry.record) };
    }
    return undefined;
  }

  /** The chunk positions verified so far. */
  async chunksDone(): Promise<Set<string>> {
    const done = new Set<string>();
    for await (const key of this.kv.keys(layout.joinChunks)) done.add(positionIdOfBytes(key.subarray(2)));
    return done;
  }

  /** A verified chunk: its accounts and its mark, in one batch. */
  async putChunk(id: string, leaves: readonly (ChunkEntry & { key: Uint8Array })[]): Promise<void> {
    const ops: BatchOp[] = leaves.map((l) => ({ type: 'put', key: layout.joinEntry(l.key), value: encodeEntry(l) }));
    ops.push({ type: 'put', key: layout.joinChunk(id), value: new Uint8Array(0) });
    await this.kv.write(ops);
  }

  /**
   * Replaces the state with the fetched snapshot and makes the pivot the tip. `pivotRecord`: the
   * pivot's index record with HAVE_DATA (its body must be stored already). Crash-safe: marked
   * first; a kill anywhere leaves the mark, and `resumeInstall` (ChainDB.open) runs it again.
   */
  async install(pivotRecord: Uint8Array, onProgress?: (step: string) => void): Promise<void> {
    const state = await this.state();
    if (!state) throw new StoreError('STORE_CORRUPT', 'no snapshot sync to install');
    await this.kv.write([{ type: 'put', key: layout.join, value: encodeState(state.height, state.hash, 1, pivotRecord) }]);
    await this.runInstall({ ...state, phase: 'installing', pivotRecord }, onProgress);
  }

  /**
   * Finishes an install a kill interrupted, if there is one; clears what a finished one left
   * otherwise, and a join still fetching on a store whose tip left genesis: the node went on
   * without it (started again without --snapshot-sync, it synced from genesis), a join needs the
   * tip at genesis, and what it staged (up to the whole state) would stay on disk for good. Its
   * pivot's body stays: it may be on the chain the node took since.
   */
  async resumeInstall(): Promise<boolean> {
    const state = await this.state();
    if (!state) await this.kv.clear(layout.range('W'));
    if (state?.phase === 'fetching' && !(await this.atGenesis())) await this.discard();
    if (state?.phase !== 'installing') return false;
    await this.runInstall(state);
    return true;
  }

  private async atGenesis(): Promise<boolean> {
    const [tip, genesis] = await this.kv.getMany([layout.tip, layout.genesis]);
    return tip !== undefined && genesis !== undefined && bytesEqual(tip, genesis);
  }

  private async runInstall(state: JoinState, onProgress?: (step: string) => void): Promise<void> {
    const { height, hash } = state;
    const pivotRecord = state.pivotRecord!;
    const header = decodeHeader(pivotRecord.subarray(0, HEADER_BYTES));
    if (header.height !== height || !bytesEqual(header.hash, hash)) throw new StoreError('STORE_CORRUPT', 'the snapshot sync mark names another block than its pivot record');
    const pivotBody = await this.kv.get(layout.block(hash));
    if (!pivotBody) throw new StoreError('STORE_CORRUPT', `the pivot block ${toHex(hash)} of the snapshot sync is not stored`);
    // 1. The old state goes (a fresh node's: genesis allocations).
    await this.kv.clear(layout.range('A'));
    await this.kv.clear(layout.range('S'));
    onProgress?.('state');
    // 2. Accounts by address and the tree by position, from the accounts in key order.
    let ops: BatchOp[] = [];
    const flush = async () => {
      if (ops.length > 0) await this.kv.write(ops);
      ops = [];
    };
    const builder = new SortedTreeBuilder((id, node) => {
      // Above the stored depth only leaves are kept (ledger/tree-store.ts): the rest is rebuilt on open.
      if (storesNode(id, node)) ops.push({ type: 'put', key: layout.stateNode(id), value: node });
    });
    let group: SortedLeaf[] = [];
    for await (const [key, value] of this.kv.iterate(layout.joinEntries)) {
      const { address, account } = decodeEntry(value);
      const leaf = { key: plainBytes(key.subarray(2)), account };
      if (group.length > 0 && group[0]!.key[0] !== leaf.key[0]) {
        builder.addGroup(group[0]!.key[0]!, group);
        group = [];
        if (ops.length >= BATCH) await flush();
      }
      group.push(leaf);
      ops.push({ type: 'put', key: layout.account(address), value: encodeAccount(account) });
    }
    if (group.length > 0) builder.addGroup(group[0]!.key[0]!, group);
    const root = builder.finish();
    await flush();
    if (!bytesEqual(root, header.stateRoot)) throw new StoreError('STORE_CORRUPT', `the snapshot's accounts hash to ${toHex(root)}, not the pivot's state root ${toHex(header.stateRoot)}`);
    onProgress?.('headers');
    // 3. The headers up to the pivot, as index records and the height index of the main chain.
    let next = 1;
    for await (const [key, value] of this.kv.iterate(layout.joinHeaders(1, height + 1))) {
      for (const e of stagedEntries(key, value)) {
        if (e.height !== next) throw new StoreError('STORE_CORRUPT', `the snapshot sync's staged headers skip from ${next} to ${e.height}`);
        if (e.height < height) ops.push({ type: 'put', key: layout.index(e.height, e.hash), value: e.record }, { type: 'put', key: layout.height(e.height), value: e.hash });
        if (++next > height) break;
      }
      if (ops.length >= BATCH) await flush();
      if (next > height) break;
    }
    if (next <= height) throw new StoreError('STORE_CORRUPT', `the snapshot sync's staged headers end at ${next - 1}, below the pivot ${height}`);
    ops.push({ type: 'put', key: layout.index(height, hash), value: pivotRecord }, { type: 'put', key: layout.height(height), value: hash });
    await flush();
    // 4. The tip moves to the pivot; history below it is absent, as on a pruned node. The pivot's
    // body is kept, as a block above a pruning mark is: its transactions are found by id and its
    // lines are in the address index, as a node that executed it has them.
    ops.push(
      { type: 'put', key: layout.pruned, value: new Writer(4).u32(height - 1).finish() },
      { type: 'put', key: layout.stateBase, value: new Writer(4).u32(height).finish() },
      { type: 'put', key: layout.tip, value: hash },
      { type: 'del', key: layout.join },
    );
    const pivot = decodeBlock(pivotBody);
    eachTxLocation(pivot, (key, value) => ops.push({ type: 'put', key, value }));
    for (const indexer of this.indexers) indexer.connect(pivot, (key, value) => ops.push(batchOp(key, value)));
    // Installed by a store opened without the address index (`cairn snapshot import`), an index
    // it had (a node ran at genesis) would be complete but for the pivot: its next open rebuilds
    // it instead, from the pivot, with nothing above it yet.
    if (this.indexers.length === 0) ops.push({ type: 'del', key: layout.addressIndexState });
    await flush();
    await this.kv.clear(layout.range('W'));
    onProgress?.('done');
  }
}

/** The headers of one staged batch, as views into its value. */
function stagedEntries(key: Uint8Array, value: Uint8Array): { height: number; hash: Uint8Array; record: Uint8Array }[] {
  const first = ((key[2]! << 24) | (key[3]! << 16) | (key[4]! << 8) | key[5]!) >>> 0;
  const size = (value[0]! << 8) | value[1]!;
  const out: { height: number; hash: Uint8Array; record: Uint8Array }[] = [];
  for (let at = 2, i = 0; at + 32 + size <= value.length; at += 32 + size, i++) {
    out.push({ height: first + i, hash: value.subarray(at, at + 32), record: value.subarray(at + 32, at + 32 + size) });
  }
  return out;
}

function encodeState(height: number, hash: Uint8Array, phase: number, pivotRecord?: Uint8Array): Uint8Array {
  const w = new Writer(4 + 32 + 1 + (pivotRecord?.length ?? 0)).u32(height).bytes(hash, 32).u8(phase);
  if (pivotRecord) w.bytes(pivotRecord);
  return w.finish();
}
