import { ClockCache } from './clock-cache.ts';
import { sha256 } from './hash.ts';
import { sha256Js64Into, sha256JsInto } from './sha256.ts';
import { ACCOUNT_BYTES, encodeAccount, type Account, type BlockEffects, type UndoRecord } from './state.ts';

/**
 * The state tree: a sparse Merkle tree over every account, keyed by `H(address)` (docs/PROTOCOL.md,
 * "The state tree"). A subtree with no account hashes to 32 zero bytes, a subtree with one account
 * is that account's leaf wherever it sits (single-leaf subtrees collapse, as in the Jellyfish Merkle
 * tree), and any other subtree is an inner node over its two halves: a path is about log2(accounts)
 * long however the keys fall.
 *
 * A node is stored as its kind's prefix and what its hash covers:
 *   leaf   00 ‖ key (32) ‖ account (16)        49 bytes, hashed whole
 *   inner  01 ‖ left hash (32) ‖ right hash (32)  65 bytes, hashed without its prefix
 * A leaf's hash covers 49 bytes and an inner node's 64, so the lengths keep the kinds apart; and
 * 64 bytes are one SHA-256 block, which a native hash takes a whole tree level at a time
 * (ledger/inner-hashes.ts).
 *
 * Nodes are stored by position: depth and the key's first `depth` bits (`positionId`). A position
 * is computable from a key alone, so every node a key's path may hold can be asked for at once,
 * and the store holds exactly the current tree: an update overwrites the positions it changes and
 * deletes the ones it empties. This file is the tree's format; its update is smt-update.ts, its
 * proofs smt-proof.ts.
 */
export const STATE_KEY_BYTES = 32;
export const EMPTY_HASH: Uint8Array = new Uint8Array(32);
export const LEAF_PREFIX = 0x00;
export const INNER_PREFIX = 0x01;
export const LEAF_NODE_BYTES = 1 + STATE_KEY_BYTES + ACCOUNT_BYTES;
export const INNER_NODE_BYTES = 1 + 32 + 32;

/** Where an account sits in the tree: `H(address)`, read as 256 bits, most significant first. */
export function stateKey(address: Uint8Array): Uint8Array {
  return sha256(address);
}

/**
 * Tree keys of recently touched addresses, by address hex: a key is a SHA-256 of its own, and the
 * same accounts come back block after block (a chain's active senders, a miner's coinbase). A
 * bounded memo whose used entries get a second chance (ClockCache), so that one-off recipients
 * pass through while senders stay; the keys it hands out are shared and never written.
 */
export class StateKeys {
  private readonly keys: ClockCache<Uint8Array>;

  constructor(size: number) {
    this.keys = new ClockCache(size);
  }

  of(address: Uint8Array, hex: string): Uint8Array {
    let key = this.keys.get(hex);
    if (key === undefined) {
      key = stateKey(address);
      this.keys.set(hex, key);
    }
    return key;
  }
}

export function bitAt(key: Uint8Array, i: number): number {
  return (key[i >>> 3]! >>> (7 - (i & 7))) & 1;
}

/**
 * Nodes are carved from shared slabs: a typed array over 64 bytes gets a backing store of its own
 * outside V8's heap, and an update makes hundreds of 65-byte nodes, whose allocation and collection
 * cost more than hashing them. A slab lives while any node cut from it does; nodes are held only
 * until the commit queue writes them (the in-memory top keeps copies, ledger/tree-store.ts).
 */
const SLAB_BYTES = 64 * 1024;
let slab = new Uint8Array(SLAB_BYTES);
let slabUsed = 0;

/** A zeroed node-sized array from the current slab. */
export function newNode(size: number): Uint8Array {
  if (slabUsed + size > SLAB_BYTES) {
    slab = new Uint8Array(SLAB_BYTES);
    slabUsed = 0;
  }
  return slab.subarray(slabUsed, (slabUsed += size));
}

export function leafNode(key: Uint8Array, account: Account): Uint8Array {
  const node = newNode(LEAF_NODE_BYTES);
  node[0] = LEAF_PREFIX;
  node.set(key, 1);
  node.set(encodeAccount(account), 1 + STATE_KEY_BYTES);
  return node;
}

export function innerNode(left: Uint8Array, right: Uint8Array): Uint8Array {
  const node = newNode(INNER_NODE_BYTES);
  node[0] = INNER_PREFIX;
  node.set(left, 1);
  node.set(right, 33);
  return node;
}

/** A node's hash: SHA-256 of a leaf's 49 bytes, or of an inner node's 64 after its prefix. */
export function nodeHash(node: Uint8Array): Uint8Array {
  return node[0] === INNER_PREFIX ? sha256(node.subarray(1)) : sha256(node);
}

/** A node's hash written to `out` at `offset`, in JavaScript (a node is at most 65 bytes). */
export function nodeHashInto(node: Uint8Array, out: Uint8Array, offset: number): void {
  if (node[0] === INNER_PREFIX) sha256Js64Into(node, 1, out, offset);
  else sha256JsInto(node, out, offset);
}

export function isInner(node: Uint8Array): boolean {
  return node[0] === INNER_PREFIX;
}

/** An inner node's child hash on side `bit` (0 left, 1 right). */
export function childHash(node: Uint8Array, bit: number): Uint8Array {
  return bit === 0 ? node.subarray(1, 33) : node.subarray(33, 65);
}

export function leafKey(node: Uint8Array): Uint8Array {
  return node.subarray(1, 1 + STATE_KEY_BYTES);
}

export function leafAccountBytes(node: Uint8Array): Uint8Array {
  return node.subarray(1 + STATE_KEY_BYTES);
}

/** Whether the 32 bytes at `offset` are all zero: the empty subtree's hash. */
export function zeroAt(bytes: Uint8Array, offset: number): boolean {
  for (let i = offset; i < offset + 32; i++) if (bytes[i] !== 0) return false;
  return true;
}

/** Byte order of two keys (32 bytes each). */
export function compareKeys(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < STATE_KEY_BYTES; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
}

/** Items sorted by their tree keys, a new array. Keys are hashes: their first four bytes nearly always decide the order. */
export function sortByKey<T extends { readonly key: Uint8Array }>(items: readonly T[]): T[] {
  const head = (k: Uint8Array) => ((k[0]! << 24) | (k[1]! << 16) | (k[2]! << 8) | k[3]!) >>> 0;
  return items
    .map((item) => ({ head: head(item.key), item }))
    .sort((a, b) => a.head - b.head || compareKeys(a.item.key, b.item.key))
    .map((i) => i.item);
}

/**
 * The id of the position at `depth` on `key`'s path: a string of char codes, the depth and then
 * the key's first `depth` bits in whole bytes, the bits past `depth` cleared. Store keys are
 * `S ‖ those bytes` (ledger/layout.ts).
 */
export function positionId(key: Uint8Array, depth: number): string {
  const whole = depth >>> 3;
  const rest = depth & 7;
  // One call for the depths a tree of up to billions of accounts reaches: an update makes one id
  // per changed account per level, and concatenating them a character at a time showed up.
  if (whole < 4) {
    const last = rest === 0 ? -1 : key[whole]! & (0xff << (8 - rest)) & 0xff;
    const k = key;
    if (whole === 0) return last < 0 ? String.fromCharCode(depth) : String.fromCharCode(depth, last);
    if (whole === 1) return last < 0 ? String.fromCharCode(depth, k[0]!) : String.fromCharCode(depth, k[0]!, last);
    if (whole === 2) return last < 0 ? String.fromCharCode(depth, k[0]!, k[1]!) : String.fromCharCode(depth, k[0]!, k[1]!, last);
    return last < 0 ? String.fromCharCode(depth, k[0]!, k[1]!, k[2]!) : String.fromCharCode(depth, k[0]!, k[1]!, k[2]!, last);
  }
  let id = String.fromCharCode(depth);
  for (let i = 0; i < whole; i++) id += String.fromCharCode(key[i]!);
  return rest === 0 ? id : id + String.fromCharCode(key[whole]! & (0xff << (8 - rest)) & 0xff);
}

/** The bytes of a position id, as the store keys it (after its prefix byte). */
export function positionBytes(id: string): Uint8Array {
  const out = new Uint8Array(id.length);
  for (let i = 0; i < id.length; i++) out[i] = id.charCodeAt(i);
  return out;
}

export function positionIdOfBytes(bytes: Uint8Array): string {
  return String.fromCharCode.apply(null, bytes as unknown as number[]);
}

/** Where the tree's nodes are read from: the store (with what is queued for it), or an overlay on it. */
export interface TreeNodeReader {
  /** The node at each position, `undefined` where there is none. */
  readNodes(ids: readonly string[]): Promise<(Uint8Array | undefined)[]>;
  /**
   * How many levels below a node at `depth` to ask for along with it, on each changed key's path
   * (a position is known from the key alone): one round trip to a store then brings most paths to
   * their end, at the price of asking for some positions past it. 0 or absent: a level at a time.
   */
  readAhead?(depth: number): number;
  /**
   * The node at `id` where the reader holds it in memory (`undefined`: the position is empty), or
   * `false`: ask readNodes. An update reads every level of a block's paths, and most of them are
   * in memory: answered here, they cost no round trip, no await and no bookkeeping of ids. A node
   * returned may be the reader's own bytes: read it before the tree next changes, never write it.
   */
  readNow?(id: string): Uint8Array | undefined | false;
}

/** One account's new value; `undefined` removes it (only disconnecting a block that created it does). */
export interface StateChange {
  readonly key: Uint8Array;
  readonly account: Account | undefined;
}

/** What connecting a block does to the tree: every account it touched, at its new value (`knownKeys`: tree keys already hashed, by address hex). */
export function changesOfEffects(effects: BlockEffects, knownKeys?: ReadonlyMap<string, Uint8Array>): StateChange[] {
  return effects.accounts.map((a) => ({ key: knownKeys?.get(a.key) ?? stateKey(a.address), account: a.account }));
}

/** What disconnecting it does: every account back to its value before, or gone if it was new. */
export function changesOfUndo(undo: readonly UndoRecord[]): StateChange[] {
  return undo.map((u) => ({ key: stateKey(u.address), account: u.previous }));
}

/** A position's new node, or `null`: the position is empty now. */
export interface TreeWrite {
  readonly id: string;
  readonly node: Uint8Array | null;
}

export interface TreeUpdate {
  /** The root hash after the changes. */
  readonly root: Uint8Array;
  /** Exactly the positions whose node changed, appeared or went away. */
  readonly writes: readonly TreeWrite[];
  /**
   * The same writes one by one, without an object each where the update keeps them as arrays (a
   * block's update makes thousands): what a consumer that only walks them should call (`eachWrite`).
   */
  readonly forEachWrite?: (visit: (id: string, node: Uint8Array | null) => void) => void;
  /**
   * Lets the next update reuse this one's new inner nodes (ledger/inner-node-pool.ts): call it
   * once every node kept from `writes` has been copied, and read none of them after. Absent, or
   * never called, the nodes stay this update's.
   */
  readonly release?: () => void;
}

/** Each of an update's writes, through `forEachWrite` where it has one. */
export function eachWrite(update: TreeUpdate, visit: (id: string, node: Uint8Array | null) => void): void {
  if (update.forEachWrite) update.forEachWrite(visit);
  else for (const w of update.writes) visit(w.id, w.node);
}
