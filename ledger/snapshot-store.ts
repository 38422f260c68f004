import { Reader, Writer, bytesEqual, plainBytes, toHex } from './bytes.ts';
import { StoreError } from './errors.ts';
import { layout } from './layout.ts';
import type { BatchOp, KvStore } from './kv.ts';
import { decodeAccount, encodeAccount, type Account } from './state.ts';
import { positionId, stateKey, type TreeNodeReader } from './smt.ts';
import { SortedTreeBuilder, buildSubtree, type SortedLeaf } from './smt-build.ts';
import {
  CHUNK_ENTRY_BYTES,
  MAX_CHUNK_ACCOUNTS,
  SNAPSHOT_TREE_DEPTH,
  keyUnder,
  parentPosition,
  positionDepth,
  positionKey,
  proveChunk,
  sharedBits,
  type ChunkEntry,
  type ChunkProof,
} from './smt-range.ts';

/** A complete snapshot: the state after the main-chain block `hash` at `height`, whose header commits to `stateRoot`. */
export interface SnapshotInfo {
  readonly height: number;
  readonly hash: Uint8Array;
  readonly stateRoot: Uint8Array;
  /** Accounts in it. */
  readonly accounts: number;
  /**
   * Whether the copy marks its crowded positions and keeps the tree below them (a copy an older
   * version made does not: it cannot prove a chunk below depth 16, and is made again).
   */
  readonly marksCrowded: boolean;
}

/** A chunk as the store serves it: the accounts under a position and their range proof, or `split` for a crowded one. */
export type StoredChunk = 'split' | { readonly entries: ChunkEntry[]; readonly proof: ChunkProof };

const WRITE_BATCH = 10_000;

/**
 * The copies of the state a serving node keeps at snapshot heights (docs/PROTOCOL.md, "Snapshot
 * sync"), apart from the live state, so chunks of the state at a height can be served while the
 * tip moves on. A copy holds every account keyed by its state key (`Q height E key`, so a chunk is
 * one range scan), its crowded positions (`Q height C position`: more than MAX_CHUNK_ACCOUNTS
 * accounts under it, answered `split` with nothing read), and the tree's nodes (`Q height N
 * position`) down to SNAPSHOT_TREE_DEPTH and, below it, under crowded positions: every node a
 * chunk's proof needs for a position a split led to; its record (`q height`) is written last, once the copy's root was checked
 * against the block's state root, so a copy cut short by a kill is never served and is cleared on
 * the next open. Building one is O(accounts) and runs in the background, in batches.
 */
export class SnapshotStore {
  private readonly kv: KvStore;
  /** The most accounts a chunk holds: MAX_CHUNK_ACCOUNTS, but for tests of crowded positions (which cost 2^depth hashes an account to make). */
  private readonly chunkAccounts: number;
  /** Per height, how often its copy began to be dropped or was completed (see `version`). */
  private readonly versions = new Map<number, number>();

  constructor(kv: KvStore, chunkAccounts = MAX_CHUNK_ACCOUNTS) {
    this.kv = kv;
    this.chunkAccounts = chunkAccounts;
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
    const crowded = new CrowdedPositions(this.chunkAccounts, (id) => ops.push({ type: 'put', key: layout.snapshotCrowded(height, id), value: new Uint8Array(0) }));
    const builder = new SortedTreeBuilder((id, node) => {
      if (positionDepth(id) <= SNAPSHOT_TREE_DEPTH || crowded.has(parentPosition(id))) ops.push({ type: 'put', key: layout.snapshotNode(height, id), value: node });
    });
    let group: SortedLeaf[] = [];
    // A group's crowded positions are all known by its close: each is found at its last key.
    const close = async () => {
      if (group.length > 0) builder.addGroup(group[0]!.key[0]!, group);
      group = [];
      if (ops.length >= WRITE_BATCH) await flush();
    };
    for await (const [key, value] of this.kv.iterate(layout.snapshotEntries(height))) {
      const leaf = { key: plainBytes(key.subarray(6)), account: decodeEntry(value).account };
      if (group.length > 0 && group[0]!.key[0] !== leaf.key[0]) await close();
      crowded.add(leaf.key);
      group.push(leaf);
    }
    await close();
    const root = builder.finish();
    await flush();
    if (!bytesEqual(root, stateRoot)) {
      await this.kv.clear(layout.snapshotData(height));
      throw new StoreError('STORE_CORRUPT', `the accounts copied at height ${height} hash to ${toHex(root)}, not the block's state root ${toHex(stateRoot)}`);
    }
    const info = { height, hash: plainBytes(hash), stateRoot: plainBytes(stateRoot), accounts: count, marksCrowded: true };
    this.bump(height);
    await this.kv.write([{ type: 'put', key: layout.snapshotInfo(height), value: encodeInfo(info) }]);
    return info;
  }

  /**
   * The chunk at position `id` of the copy at `height`: `split` for a crowded position (one read),
   * else its accounts (at most MAX_CHUNK_ACCOUNTS, all sent) and their range proof.
   */
  async chunk(height: number, id: string): Promise<StoredChunk> {
    if (await this.crowded(height, id)) return 'split';
    const leaves = await this.leaves(height, id, this.chunkAccounts);
    if (leaves === 'too-many') return 'split'; // only in a copy without its marks, which is never served
    return { entries: leaves.map(({ address, account }) => ({ address, account })), proof: await proveChunk(this.nodes(height), id) };
  }

  private async crowded(height: number, id: string): Promise<boolean> {
    return (await this.kv.get(layout.snapshotCrowded(height, id))) !== undefined;
  }

  /**
   * The copy's tree for a chunk's proof, read along one path. Below SNAPSHOT_TREE_DEPTH a node is
   * kept only where its parent is crowded; under a parent that is not (a position nobody honest
   * asks for: no split leads there), the parent's accounts, at most MAX_CHUNK_ACCOUNTS, are read
   * and its subtree built here.
   */
  private nodes(height: number): TreeNodeReader {
    let built: { id: string; nodes: Map<string, Uint8Array> } | undefined;
    const read = async (id: string): Promise<Uint8Array | undefined> => {
      if (built && keyUnder(positionKey(id), built.id)) return built.nodes.get(id);
      const [node] = await this.kv.getMany([layout.snapshotNode(height, id)]);
      if (node || positionDepth(id) <= SNAPSHOT_TREE_DEPTH) return node;
      const parent = parentPosition(id);
      if (await this.crowded(height, parent)) return undefined;
      const leaves = await this.leaves(height, parent, this.chunkAccounts);
      if (leaves === 'too-many') throw new StoreError('STORE_CORRUPT', `snapshot ${height}: a position at depth ${positionDepth(parent)} holds more than ${this.chunkAccounts} accounts, unmarked`);
      built = { id: parent, nodes: new Map() };
      const nodes = built.nodes;
      buildSubtree(leaves, positionDepth(parent), (at, n) => nodes.set(at, n));
      return nodes.get(id);
    };
    return {
      readNodes: async (ids) => {
        const out: (Uint8Array | undefined)[] = [];
        for (const id of ids) out.push(await read(id));
        return out;
      },
    };
  }

  /** The accounts under position `id`, in key order, with their keys; 'too-many' past `max`. */
  private async leaves(height: number, id: string, max: number): Promise<(SortedLeaf & ChunkEntry)[] | 'too-many'> {
    const out: (SortedLeaf & ChunkEntry)[] = [];
    for await (const [key, value] of this.kv.iterate(layout.snapshotRange(height, positionKey(id), positionDepth(id)), max + 1)) out.push({ key: plainBytes(key.subarray(6)), ...decodeEntry(value) });
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

/** The record's last byte: the copy marks its crowded positions (absent in a copy an older version made). */
const MARKS_CROWDED = 1;

function encodeInfo(info: SnapshotInfo): Uint8Array {
  return new Writer(32 + 32 + 8 + 1).bytes(info.hash, 32).bytes(info.stateRoot, 32).u64(BigInt(info.accounts)).u8(MARKS_CROWDED).finish();
}

function decodeInfo(height: number, bytes: Uint8Array): SnapshotInfo {
  const r = new Reader(bytes);
  const info = { height, hash: plainBytes(r.bytes(32)), stateRoot: plainBytes(r.bytes(32)), accounts: Number(r.u64()) };
  const marksCrowded = r.remaining > 0 && r.u8('snapshot record format') === MARKS_CROWDED;
  r.end('snapshot record');
  return { ...info, marksCrowded };
}

/**
 * The crowded positions of a copy (more than a chunk's accounts under each), found in one pass
 * over its keys in order: a position is crowded exactly when some chunk's accounts + 1
 * consecutive keys share its prefix, so the first and last of each such window say how deep the
 * positions above them are crowded. Each is told to `mark` once (the positions above the last
 * window's were marked with it), and remembered for the builder's choice of nodes to keep.
 */
class CrowdedPositions {
  private readonly window: Uint8Array[] = [];
  private seen = 0;
  private last: { key: Uint8Array; depth: number } | undefined;
  private readonly positions = new Set<string>();
  private readonly size: number;
  private readonly mark: (id: string) => void;

  constructor(chunkAccounts: number, mark: (id: string) => void) {
    this.size = chunkAccounts + 1;
    this.mark = mark;
  }

  /** The next key, in increasing order. */
  add(key: Uint8Array): void {
    const size = this.size;
    this.window[this.seen % size] = key;
    this.seen++;
    if (this.seen < size) return;
    const depth = sharedBits(this.window[this.seen % size]!, key); // the window's first key and its last
    const from = this.last ? Math.min(sharedBits(this.last.key, key), this.last.depth) + 1 : 0;
    for (let d = from; d <= depth; d++) {
      const id = positionId(key, d);
      this.positions.add(id);
      this.mark(id);
    }
    this.last = { key, depth };
  }

  has(id: string): boolean {
    return this.positions.has(id);
  }
}

function heightOf(key: Uint8Array, at: number): number {
  return ((key[at]! << 24) | (key[at + 1]! << 16) | (key[at + 2]! << 8) | key[at + 3]!) >>> 0;
}

