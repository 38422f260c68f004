import { hash } from 'node:crypto';


/**
 * The Merkle tree hash of RFC 6962 over 32-byte ids. Leaves and inner nodes are hashed with
 * different prefixes and an odd node is never paired with itself, so no two lists of ids share
 * a root: the duplicated-last-leaf ambiguity behind Bitcoin's CVE-2012-2459 cannot arise.
 */
export function merkleRoot(ids: readonly Uint8Array[]): Uint8Array {
  if (ids.length === 0) throw new RangeError('a Merkle tree needs at least one leaf');
  // Bottom-up, an unpaired last node moving up unhashed: the same tree as RFC 6962's recursive
  // split at the largest power of two below n, without recursion or a hash object per node.
  const scratch = new Uint8Array(65);
  let level: Uint8Array[] = ids.map((id) => {
    scratch[0] = 0;
    scratch.set(id, 1);
    return hash('sha256', scratch.subarray(0, 33), 'buffer');
  });
  scratch[0] = 1;
  while (level.length > 1) {
    const next: Uint8Array[] = [];
    for (let i = 0; i + 1 < level.length; i += 2) {
      scratch.set(level[i]!, 1);
      scratch.set(level[i + 1]!, 33);
      next.push(hash('sha256', scratch, 'buffer'));
    }
    if (level.length % 2 === 1) next.push(level[level.length - 1]!);
    level = next;
  }
  return new Uint8Array(level[0]!);
}
