/** Accounts whose tree paths leave the top (sim/deep-accounts.ts), and random addresses to find them among. */
import { toHex } from '../../ledger/bytes.ts';
import { seededRandom } from './fixtures.ts';

export { deepPairs, sharedBits } from '../../sim/deep-accounts.ts';

/** `count` random addresses (hex) from `seed`. */
export function randomAddresses(seed: number, count: number): string[] {
  const rng = seededRandom(seed);
  return Array.from({ length: count }, () => toHex(rng.bytes(20)));
}
