import { sha256Parts } from './hash.ts';

const LEAF = Uint8Array.of(0);
const NODE = Uint8Array.of(1);

/**
 * The Merkle tree hash of RFC 6962 over 32-byte ids. Leaves and inner nodes are hashed with
 * different prefixes and an odd node is never paired with itself, so no two lists of ids share
 * a root: the duplicated-last-leaf ambiguity behind Bitcoin's CVE-2012-2459 cannot arise.
 */
export function merkleRoot(ids: readonly Uint8Array[]): Uint8Array {
  if (ids.length === 0) throw new RangeError('a Merkle tree needs at least one leaf');
  return treeHash(ids, 0, ids.length);
}

function treeHash(ids: readonly Uint8Array[], start: number, end: number): Uint8Array {
  const n = end - start;
  if (n === 1) return sha256Parts(LEAF, ids[start]!);
  let k = 1;
  while (k * 2 < n) k *= 2; // largest power of two below n
  return sha256Parts(NODE, treeHash(ids, start, start + k), treeHash(ids, start + k, end));
}
