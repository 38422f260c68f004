import { setFlagsFromString } from 'node:v8';

/**
 * How far V8 lets the heap grow past what survived its last full collection, by what the node is
 * doing. Following the tip, V8's own factor applies, which the heap ceiling `cairn node` runs with
 * (cli/runtime.ts) keeps near 1.5: the heap stays close to what is live. Catching up, a node
 * allocates blocks faster than it can afford a full collection every few of them (measured: a
 * 10,000-block sync at 10,600 tx/s with the factor at 1.5, 12,000-12,400 with it free), so while
 * it downloads a long chain the heap may grow to three times what is live.
 *
 * The setting is V8's, for the whole process: one node per process, as `cairn node` runs.
 * (`--heap-growing-percent` is read at every collection; 0 leaves the factor to V8.)
 */
export type HeapGrowth = 'follow' | 'catch-up';

/** Below this many blocks to download, a sync is following the tip, not catching up. */
export const CATCH_UP_BLOCKS = 256;

export function setHeapGrowth(mode: HeapGrowth): void {
  setFlagsFromString(mode === 'catch-up' ? '--heap-growing-percent=200' : '--heap-growing-percent=0');
}
