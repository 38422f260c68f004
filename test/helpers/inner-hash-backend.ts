import { useInnerHashBackend } from '../../ledger/inner-hashes.ts';

/** The state tree's two ways of hashing inner nodes (ledger/inner-hashes.ts): tests run each. */
export const INNER_HASH_BACKENDS = ['native', 'js'] as const;
export type InnerHashBackend = (typeof INNER_HASH_BACKENDS)[number];

export const backendLabel = (backend: InnerHashBackend): string => (backend === 'js' ? 'JavaScript' : 'native');

/**
 * Hashes inner nodes with `backend` from here on (the caller puts the native one back after the
 * test), or skips the test, saying why, on a platform @chainsafe/hashtree has no binary for.
 */
export function useBackendOrSkip(ctx: Mocha.Context, backend: InnerHashBackend): void {
  if (useInnerHashBackend(backend) === backend) return;
  console.log(`      SKIPPED: no native SHA-256 for ${process.platform}-${process.arch} (@chainsafe/hashtree has no binary here); the JavaScript one is tested`);
  ctx.skip();
}
