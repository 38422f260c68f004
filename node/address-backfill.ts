// The address index's backfill (ledger/address-index.ts): a datadir that had no index gets one in
// the background, beside the node as the pruner and the history check are, so that turning the
// index on never holds up the start or the imports.

import { percentDone, type AddressIndex } from '../ledger/address-index.ts';
import type { Chain } from '../consensus/chain.ts';
import { nextTurn, type Env } from './env.ts';
import type { Pruner } from './pruner.ts';
import type { LogLevel } from './node-types.ts';

/** What the backfill needs of the node (node/node.ts). */
export interface AddressBackfillParts {
  readonly chain: Chain;
  readonly env: Env;
  /** Told after every step: pruning waits behind the backfill, which reads bodies. */
  readonly pruner: Pruner | undefined;
  /** Whether the node is stopping: the backfill ends, and the next start carries on. */
  readonly stopped: () => boolean;
  readonly log: (level: LogLevel, message: string, fields?: Record<string, unknown>) => void;
}

/**
 * Indexes the blocks that were there before the address index, a step at a time between
 * imports, saying how far it got every tenth of the way.
 */
export async function backfillAddressIndex(index: AddressIndex, o: AddressBackfillParts): Promise<void> {
  let told = 0;
  o.log('info', 'building the address index', statusFields(index));
  try {
    while (!o.stopped()) {
      const done = await o.chain.withImportsPaused(() => index.backfillStep());
      o.pruner?.schedule(); // it waits behind the backfill
      if (done) {
        o.log('info', 'address index ready', statusFields(index));
        return;
      }
      const { progress } = index.status();
      if (progress - told >= 0.1) {
        told = progress;
        o.log('info', 'building the address index', statusFields(index));
      }
      await nextTurn(o.env);
    }
  } catch (err) {
    // Nobody awaits the backfill before the node stops: a failure (a store that failed a write)
    // is told here, not left to end the process. Its progress is kept; the next start goes on.
    o.log('warn', `the address index's backfill stopped at height ${index.status().next}: ${(err as Error).message}; the next start carries on`);
  }
}

/**
 * The index's status for a log line, its progress in whole percent as the status, the explorer and
 * the REST API show it: the bare ratio read progress=0.10026666666666667.
 */
function statusFields(index: AddressIndex): Record<string, unknown> {
  const status = index.status();
  return { ...status, progress: percentDone(status.progress) };
}
