import { Reader, bytesEqual } from './bytes.ts';
import { DecodeError, ProofError } from './errors.ts';
import { ACCOUNT_BYTES, decodeAccount, encodeAccount, type Account } from './state.ts';
import {
  EMPTY_HASH,
  STATE_KEY_BYTES,
  bitAt,
  childHash,
  compareKeys,
  isInner,
  leafAccountBytes,
  leafKey,
  positionId,
  stateKey,
  type TreeNodeReader,
} from './smt.ts';
import { buildSubtree, leafSubtree, type SortedLeaf } from './smt-build.ts';
import { climbSiblings, readSiblings, writeSiblings } from './smt-proof.ts';

/**
 * Range proofs of the state tree (docs/PROTOCOL.md, "Snapshot chunks"): a chunk is every account
 * whose key lies under one position of the tree — the keys from `prefix‖00…0` to `prefix‖11…1`, a
 * contiguous range in key order — with the proof that these are exactly the tree's leaves there.
 * The proof is the path from the root to the position, as an account proof's: the siblings beside
 * it (empty ones as bits of a bitmap), and how it ends. It ends at the position itself (an inner
 * node, whose subtree the verifier rebuilds from the chunk's accounts), higher up in an empty
 * subtree or a lone leaf (the chunk holds that leaf, or nothing when the leaf lies outside the
 * range), exactly as the tree collapses. Hash the chunk's subtree, climb the siblings, meet the
 * state root: an account dropped, added, altered or moved changes what is climbed.
 */
export interface ChunkEntry {
  readonly address: Uint8Array;
  readonly account: Account;
}

export type ChunkEnd =
  /** The path reached the position, or a lone leaf above it that the chunk holds. */
  | { readonly kind: 'node' }
  | { readonly kind: 'empty' }
  /** A lone leaf above the position whose key lies outside the range: the range is empty. */
  | { readonly kind: 'other'; readonly key: Uint8Array; readonly account: Account };

export interface ChunkProof {
  /** Sibling i is beside the path at depth i + 1. */
  readonly siblings: readonly Uint8Array[];
  readonly end: ChunkEnd;
}

/** The most accounts one chunk holds: a position holding more is answered `split`, and asked for as its two halves. */
export const MAX_CHUNK_ACCOUNTS = 4096;
/**
 * Deepest chunk position, the most a position's u8 depth says. A lower floor for `split` would be
 * one that MAX_CHUNK_ACCOUNTS + 1 addresses can be ground to share (about 4,097 · 2^depth hashes,
 * then a payment each: at 16, minutes on one core), and such a position could be served by
 * nobody; at 255 a position holds at most two keys.
 */
export const MAX_CHUNK_DEPTH = 255;
/** A snapshot keeps its tree's every node down to this depth (65,536 positions), and below it only where a chunk may be asked for. */
export const SNAPSHOT_TREE_DEPTH = 16;
export const CHUNK_ENTRY_BYTES = 20 + ACCOUNT_BYTES;

const END_NODE = 0;
const END_EMPTY = 1;
const END_OTHER = 2;

/** A chunk position's bytes: depth (u8) ‖ the prefix's bits, whole bytes, the rest zero. */
export function encodeChunkPosition(id: string): Uint8Array {
  const out = new Uint8Array(id.length);
  for (let i = 0; i < id.length; i++) out[i] = id.charCodeAt(i);
  return out;
}

export function readChunkPosition(r: Reader): string {
  const depth = r.u8('chunk depth'); // at most 255 = MAX_CHUNK_DEPTH
  const bits = r.bytes((depth + 7) >>> 3, 'chunk prefix');
  const key = new Uint8Array(32);
  key.set(bits);
  const id = positionId(key, depth);
  if (id.length !== 1 + bits.length || [...bits].some((b, i) => b !== id.charCodeAt(1 + i))) {
    throw new DecodeError('DECODE_NON_CANONICAL', 'chunk prefix has bits set past its depth');
  }
  return id;
}

/** The first key of a position's range (its prefix, then zeros), and its depth. */
export function positionKey(id: string): Uint8Array {
  const key = new Uint8Array(32);
  for (let i = 1; i < id.length; i++) key[i - 1] = id.charCodeAt(i);
  return key;
}

export function positionDepth(id: string): number {
  return id.charCodeAt(0);
}

/** The position one level above `id` (which is not the root). */
export function parentPosition(id: string): string {
  return positionId(positionKey(id), positionDepth(id) - 1);
}

/** How many leading bits two keys share (256 when equal). */
export function sharedBits(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < a.length; i++) {
    const x = a[i]! ^ b[i]!;
    if (x !== 0) return i * 8 + Math.clz32(x) - 24;
  }
  return a.length * 8;
}

/** Whether `key` lies under position `id`. */
export function keyUnder(key: Uint8Array, id: string): boolean {
  return positionId(key, positionDepth(id)) === id;
}

/** The two halves of a position, for a chunk too big to send whole. */
export function childPositions(id: string): [string, string] {
  const depth = positionDepth(id);
  if (depth >= MAX_CHUNK_DEPTH) throw new RangeError(`a position at depth ${depth} has no halves to ask for`);
  const key = positionKey(id);
  const right = key.slice();
  right[depth >>> 3]! |= 0x80 >>> (depth & 7);
  return [positionId(key, depth + 1), positionId(right, depth + 1)];
}

/** Every position at `depth`, in key order. */
export function positionsAt(depth: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < 2 ** depth; i++) {
    const key = new Uint8Array(32);
    const shifted = i * 2 ** (32 - depth);
    key[0] = shifted >>> 24;
    key[1] = (shifted >>> 16) & 0xff;
    key[2] = (shifted >>> 8) & 0xff;
    key[3] = shifted & 0xff;
    out.push(positionId(key, depth));
  }
  return out;
}

/** The proof for the chunk at position `id` of the tree `reader` holds: its path, a level per read. */
export async function proveChunk(reader: TreeNodeReader, id: string): Promise<ChunkProof> {
  const depth = positionDepth(id);
  const key = positionKey(id);
  const siblings: Uint8Array[] = [];
  for (let d = 0; ; d++) {
    const [node] = await reader.readNodes([positionId(key, d)]);
    if (node === undefined) return { siblings, end: { kind: 'empty' } };
    if (!isInner(node)) {
      const other = leafKey(node);
      if (keyUnder(other, id)) return { siblings, end: { kind: 'node' } };
      return { siblings, end: { kind: 'other', key: new Uint8Array(other), account: decodeAccount(leafAccountBytes(node)) } };
    }
    if (d === depth) return { siblings, end: { kind: 'node' } };
    siblings.push(new Uint8Array(childHash(node, 1 - bitAt(key, d))));
  }
}

export function encodeChunkProof(proof: ChunkProof): Uint8Array {
  const w = writeSiblings(proof.siblings, MAX_CHUNK_DEPTH, 'chunk proof');
  const end = proof.end;
  if (end.kind === 'node') w.u8(END_NODE);
  else if (end.kind === 'empty') w.u8(END_EMPTY);
  else w.u8(END_OTHER).bytes(end.key, STATE_KEY_BYTES).bytes(encodeAccount(end.account));
  return w.finish();
}

export function readChunkProof(r: Reader): ChunkProof {
  const siblings = readSiblings(r, MAX_CHUNK_DEPTH, 'chunk proof');
  const kind = r.u8('chunk proof end');
  let end: ChunkEnd;
  if (kind === END_NODE) end = { kind: 'node' };
  else if (kind === END_EMPTY) end = { kind: 'empty' };
  else if (kind === END_OTHER) end = { kind: 'other', key: r.bytes(STATE_KEY_BYTES, 'chunk proof key'), account: decodeAccount(r.bytes(ACCOUNT_BYTES, 'chunk proof account')) };
  else throw new DecodeError('DECODE_NON_CANONICAL', `chunk proof end kind ${kind}`);
  return { siblings, end };
}

/**
 * Checks that `entries` are exactly the accounts under position `id` of the tree whose root is
 * `stateRoot`, in key order, and returns them as leaves (key, address, account). Throws
 * ProofError when they are not: whoever served them lied.
 */
export function verifyChunk(stateRoot: Uint8Array, id: string, entries: readonly ChunkEntry[], proof: ChunkProof): (SortedLeaf & ChunkEntry)[] {
  const depth = positionDepth(id);
  const key = positionKey(id);
  const leaves = entries.map((e) => ({ key: stateKey(e.address), address: e.address, account: e.account }));
  leaves.forEach((leaf, i) => {
    if (!keyUnder(leaf.key, id)) throw new ProofError(`account ${i} of the chunk lies outside its range`);
    if (i > 0 && compareKeys(leaves[i - 1]!.key, leaf.key) >= 0) throw new ProofError(`account ${i} of the chunk is out of key order`);
  });
  const j = proof.siblings.length;
  if (j > depth) throw new ProofError(`a chunk proof of ${j} siblings for a position at depth ${depth}`);
  const end = proof.end;
  let h: Uint8Array;
  if (end.kind === 'empty') {
    if (leaves.length > 0) throw new ProofError('the proof says the range is empty, the chunk holds accounts');
    h = EMPTY_HASH;
  } else if (end.kind === 'other') {
    if (leaves.length > 0) throw new ProofError('the proof says the range is empty, the chunk holds accounts');
    if (keyUnder(end.key, id)) throw new ProofError('the proof ends in a leaf inside the range, said to be outside it');
    if (positionId(end.key, j) !== positionId(key, j)) throw new ProofError("the proof's leaf is not on the range's path");
    h = leafSubtree(end.key, end.account).hash;
  } else if (leaves.length === 0) {
    throw new ProofError('the proof ends at the range, the chunk holds nothing');
  } else if (leaves.length === 1) {
    h = leafSubtree(leaves[0]!.key, leaves[0]!.account).hash;
  } else {
    if (j !== depth) throw new ProofError(`a chunk of ${leaves.length} accounts whose path ends at depth ${j}, above its position`);
    h = buildSubtree(leaves, depth).hash;
  }
  if (!bytesEqual(climbSiblings(h, key, proof.siblings), stateRoot)) throw new ProofError('the chunk and its proof do not lead to the state root of the snapshot block');
  return leaves;
}
