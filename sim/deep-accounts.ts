/**
 * Accounts whose paths in the state tree go below the levels kept in memory (ledger/tree-store.ts):
 * addresses whose tree keys share their first STORED_TREE_DEPTH bits or more. A tree of a few
 * accounts reaches that depth only through such pairs, which a birthday search over a few
 * thousand addresses finds. The simulator's users include some (sim/wallets.ts), so that its
 * nodes read stored tree nodes, and prefetch them while syncing, through every seed's faults.
 */
import { stateKey } from '../ledger/smt.ts';
import { STORED_TREE_DEPTH } from '../ledger/tree-store.ts';

/** The number of leading bits two keys share. */
export function sharedBits(a: Uint8Array, b: Uint8Array): number {
  let i = 0;
  while (i < 8 * a.length && ((a[i >>> 3]! ^ b[i >>> 3]!) & (0x80 >>> (i & 7))) === 0) i++;
  return i;
}

/**
 * Among `candidates` addresses (hex), the pairs whose keys share between STORED_TREE_DEPTH and
 * STORED_TREE_DEPTH + `deeper` leading bits, and no more than STORED_TREE_DEPTH - 1 with any other
 * candidate: each pair's two leaves sit alone below the top, within `deeper` + 1 levels of it.
 */
export function deepPairs(candidates: readonly string[], deeper = 2): [string, string][] {
  const byKey = candidates.map((a) => ({ a, key: stateKey(Buffer.from(a, 'hex')) })).sort((x, y) => Buffer.compare(x.key, y.key));
  const pairs: [string, string][] = [];
  for (let i = 1; i < byKey.length; i++) {
    const shared = sharedBits(byKey[i - 1]!.key, byKey[i]!.key);
    const before = i > 1 ? sharedBits(byKey[i - 2]!.key, byKey[i - 1]!.key) : 0;
    const after = i + 1 < byKey.length ? sharedBits(byKey[i]!.key, byKey[i + 1]!.key) : 0;
    if (shared >= STORED_TREE_DEPTH && shared <= STORED_TREE_DEPTH + deeper && before < STORED_TREE_DEPTH && after < STORED_TREE_DEPTH) {
      pairs.push([byKey[i - 1]!.a, byKey[i]!.a]);
    }
  }
  return pairs;
}

/**
 * The simulator's keys `deep N` (sim/wallets.ts) that come in such pairs, found by `deepPairs` over
 * N < 6,000: their keys share 20, 20, 19 and 18 leading bits. test/sim.test.ts holds them to it.
 */
export const DEEP_KEY_PAIRS: readonly (readonly [number, number])[] = [
  [121, 201],
  [1554, 511],
  [2555, 2503],
  [3552, 3561],
];
