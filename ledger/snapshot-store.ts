import { Reader, Writer, bytesEqual, plainBytes, toHex } from './bytes.ts';
import { StoreError } from './errors.ts';
import { layout } from './layout.ts';
import type { BatchOp, KvStore } from './kv.ts';
import { decodeAccount, encodeAccount, type Account } from './state.ts';
import { stateKey, type TreeNodeReader } from './smt.ts';
import { SortedTreeBuilder, type SortedLeaf } from './smt-build.ts';
import { CHUNK_ENTRY_BYTES, MAX_CHUNK_DEPTH, positionDepth, positionKey, type ChunkEntry } from './smt-range.ts';

/** A complete snapshot: the state after the main-chain block `hash` at `height`, whose header commits to `stateRoot`. */
export interface SnapshotInfo {
  readonly height: number;
  readonly hash: Uint8Array;
  readonly stateRoot: Uint8Array;
  /** Accounts in it. */
  readonly accounts: number;
}

const WRITE_BATCH = 10_000;

/**
 * The copies of the state a serving node keeps at snapshot heights (docs/PROTOCOL.md, "Snapshot
 * sync"), apart from the live state, so chunks of the state at a height can be served while the
 * tip moves on. A copy holds every account keyed by its state key (`Q height E key`, so a chunk is
 * one range scan) and the tree's nodes down to MAX_CHUNK_DEPTH (`Q height N position`, enough for
 * every chunk's proof); its record (`q height`) is written last, once the copy's root was checked
 * against the block's state root, so a copy cut short by a kill is never served and is cleared on
 * the next open. Building one is O(accounts) and runs in the background, in batches.
 */
export class SnapshotStore {
  private readonly kv: KvStore;
  /** Per height, how often its copy began to be dropped or was completed (see `version`). */
  private readonly versions = new Map<number, number>();

  constructor(kv: KvStore) {
    this.kv = kv;
  }

  /**
   * Changes before a copy at `height` is dropped and before a copy there is completed: a reader
   * that saw the same version before and after its reads (and a record throughout) read one
   * copy, not parts of two. A copy remade while a chunk was served (a reorganisation across its
   * height) otherwise passed a check of the record alone, and the chunk, entries of one copy under
   * a proof from the other, failed its proof: the joiner banned an honest server for it.
   */
  version(height: number): number {
    return this.versions.get(height) ?? 0;
  }

  private bump(height: number): void {
    this.versions.set(height, this.version(height) + 1);
  }

  /** Complete snapshots, lowest first. */
  async list(): Promise<SnapshotInfo[]> {
    const out: SnapshotInfo[] = [];
    for await (const [key, value] of this.kv.iterate(layout.range('q'))) out.push(decodeInfo(heightOf(key, 1), value));
    return out;
  }

  async get(height: number): Promise<SnapshotInfo | undefined> {
    const value = await this.kv.get(layout.snapshotInfo(height));
    return value && decodeInfo(height, value);
  }

  /** Clears what a copy cut short left (no record): the heights under Q without one in q. */
  async clearIncomplete(): Promise<number[]> {
    const cleared: number[] = [];
    let from: Uint8Array = layout.range('Q').gte;
    for (;;) {
      let next: Uint8Array | undefined;
      for await (const key of this.kv.keys({ gte: from, lt: layout.range('Q').lt })) {
        next = key;
        break;
      }
      if (!next) return cleared;
      const height = heightOf(next, 1);
      if (!(await this.get(height))) {
        await this.kv.clear(layout.snapshotData(height));
        cleared.push(height);
      }
      if (height === 0xffffffff) return cleared;
      from = layout.snapshotData(height + 1).gte;
    }
  }

  /** Deletes a snapshot: its record first, so it is no longer served, then its data. */
  async drop(height: number): Promise<void> {
    this.bump(height);
    await this.kv.write([{ type: 'del', key: layout.snapshotInfo(height) }]);
    await this.kv.clear(layout.snapshotData(height));
  }

  /**
   * Makes the snapshot of `accounts` (every account of the state after block `hash`, any order),
   * which must hash to `stateRoot`: accounts by state key in batches (the store sorts them), then
   * one pass in key order building the tree, storing its nodes down to MAX_CHUNK_DEPTH, and the
   * record last. `pause` runs between batches (the caller yields to its imports there). An
   * earlier copy at this height is dropped first, its record before its data.
   */
  async make(height: number, hash: Uint8Array, stateRoot: Uint8Array, accounts: AsyncIterable<ChunkEntry>, pause: () => Promise<void>): Promise<SnapshotInfo> {
    // A copy made again at this height (a reorganisation changed its block) is no longer served
    // while its data is half rewritten: joiners would find chunks that fail their proofs, and ban
    // an honest server for them.
    await this.drop(height);
    let ops: BatchOp[] = [];
    let count = 0;
    const flush = async () => {
      if (ops.length === 0) return;
      await this.kv.write(ops);
      ops = [];
      await pause();
    };
    for await (const { address, account } of accounts) {
      ops.push({ type: 'put', key: layout.snapshotEntry(height, stateKey(address)), value: encodeEntry({ address, account }) });
      count++;
      if (ops.length >= WRITE_BATCH) await flush();
    }
    await flush();
    const builder = new SortedTreeBuilder((id, node) => {
      if (positionDepth(id) <= MAX_CHUNK_DEPTH) ops.push({ type: 'put', key: layout.snapshotNode(height, id), value: node });
    });
    let group: SortedLeaf[] = [];
    const close = async () => {
      if (group.length > 0) builder.addGroup(group[0]!.key[0]!, group);
      group = [];
      if (ops.length >= WRITE_BATCH) await flush();
    };
    for await (const [key, value] of this.kv.iterate(layout.snapshotEntries(height))) {
      const leaf = { key: plainBytes(key.subarray(6)), account: decodeEntry(value).account };
      if (group.length > 0 && group[0]!.key[0] !== leaf.key[0]) await close();
      group.push(leaf);
    }
    await close();
    const root = builder.finish();
    await flush();
    if (!bytesEqual(root, stateRoot)) {
      await this.kv.clear(layout.snapshotData(height));
      throw new StoreError('STORE_CORRUPT', `the accounts copied at height ${height} hash to ${toHex(root)}, not the block's state root ${toHex(stateRoot)}`);
    }
    const info = { height, hash: plainBytes(hash), stateRoot: plainBytes(stateRoot), accounts: count };
    this.bump(height);
    await this.kv.write([{ type: 'put', key: layout.snapshotInfo(height), value: encodeInfo(info) }]);
    return info;
  }

  /** The snapshot's tree nodes down to MAX_CHUNK_DEPTH: what a chunk's proof is read from. */
  nodes(height: number): TreeNodeReader {
    return {
      readNodes: (ids) => {
        if (ids.some((id) => positionDepth(id) > MAX_CHUNK_DEPTH)) throw new RangeError('a snapshot keeps its tree only down to the chunk depth');
        return this.kv.getMany(ids.map((id) => layout.snapshotNode(height, id)));
      },
    };
  }

  /** The accounts under position `id`, in key order; 'too-many' past `max`. */
  async entries(height: number, id: string, max: number): Promise<ChunkEntry[] | 'too-many'> {
    const out: ChunkEntry[] = [];
    for await (const [, value] of this.kv.iterate(layout.snapshotRange(height, positionKey(id), positionDepth(id)), max + 1)) out.push(decodeEntry(value));
    return out.length > max ? 'too-many' : out;
  }

  /** Every account of a snapshot in key order, a batch at a time (for `cairn snapshot export`). */
  async *allEntries(height: number): AsyncGenerator<ChunkEntry & { key: Uint8Array }> {
    for await (const [key, value] of this.kv.iterate(layout.snapshotEntries(height))) yield { key: plainBytes(key.subarray(6)), ...decodeEntry(value) };
  }
}

export function encodeEntry(e: ChunkEntry): Uint8Array {
  return new Writer(CHUNK_ENTRY_BYTES).bytes(e.address, 20).bytes(encodeAccount(e.account)).finish();
}

export function decodeEntry(bytes: Uint8Array): { address: Uint8Array; account: Account } {
  const r = new Reader(bytes);
  const address = plainBytes(r.bytes(20, 'snapshot address'));
  const account = decodeAccount(r.bytes(16, 'snapshot account'));
  r.end('snapshot entry');
  return { address, account };
}

function encodeInfo(info: SnapshotInfo): Uint8Array {
  return new Writer(32 + 32 + 8).bytes(info.hash, 32).bytes(info.stateRoot, 32).u64(BigInt(info.accounts)).finish();
}

function decodeInfo(height: number, bytes: Uint8Array): SnapshotInfo {
  const r = new Reader(bytes);
  const info = { height, hash: plainBytes(r.bytes(32)), stateRoot: plainBytes(r.bytes(32)), accounts: Number(r.u64()) };
  r.end('snapshot record');
  return info;
}

function heightOf(key: Uint8Array, at: number): number {
  return ((key[at]! << 24) | (key[at + 1]! << 16) | (key[at + 2]! << 8) | key[at + 3]!) >>> 0;
}

