import { toHex } from '../ledger/bytes.ts';
import type { Chain } from '../consensus/chain.ts';
import type { Env } from './env.ts';

/**
 * How long a gossiped block held as an orphan may hold its message's validation, waiting for the
 * branch sync fetches for it (ms): a status, the headers and the bodies, a few round trips.
 */
export const ORPHAN_FORWARD_WAIT_MS = 5_000;
/** Orphans awaited at once; beyond it one is not forwarded, as before. Each is a block with its proof of work. */
export const MAX_ORPHANS_AWAITED = 16;

/**
 * Gossiped blocks held as orphans, whose messages are forwarded if sync connects them in time.
 * Sync announces the tip it took (node/block-events.ts), but gossipsub publishes no message it has
 * seen: a copy of the block that came from another peer while sync fetched it, ignored as an
 * orphan, silenced that announcement, and peers reached only through this node heard of the block
 * at their next status poll (simulator seed 133 after 9b5d3d7: 5 s for its last node).
 */
export class OrphansAwaited {
  private readonly chain: Pick<Chain, 'getEntry' | 'isMain' | 'on' | 'off'>;
  private readonly env: Pick<Env, 'setTimeout' | 'clearTimeout'>;
  /** By the block's hash in hex: its hash and how its wait ends. */
  private readonly ends = new Map<string, { readonly hash: Uint8Array; readonly end: (connected: boolean) => void }>();
  private stopped = false;

  constructor(chain: OrphansAwaited['chain'], env: OrphansAwaited['env']) {
    this.chain = chain;
    this.env = env;
  }

  /**
   * Whether block `hash` is on our main chain within ORPHAN_FORWARD_WAIT_MS. False at once for a
   * block awaited already (one message of it is forwarded), past MAX_ORPHANS_AWAITED, or stopped.
   */
  onMainChain(hash: Uint8Array): Promise<boolean> {
    const key = toHex(hash);
    if (this.stopped || this.ends.has(key) || this.ends.size >= MAX_ORPHANS_AWAITED) return Promise.resolve(false);
    return new Promise<boolean>((resolve) => {
      const timer = this.env.setTimeout(() => end(false), ORPHAN_FORWARD_WAIT_MS);
      const end = (connected: boolean): void => {
        this.env.clearTimeout(timer);
        this.ends.delete(key);
        if (this.ends.size === 0) this.chain.off('tip', this.onTip);
        resolve(connected && !this.stopped);
      };
      // One listener for all of them: sixteen of the chain's own would trip Node's leak warning.
      if (this.ends.size === 0) this.chain.on('tip', this.onTip);
      this.ends.set(key, { hash, end });
    });
  }

  private readonly onTip = (): void => {
    for (const { hash, end } of [...this.ends.values()]) {
      const entry = this.chain.getEntry(hash);
      if (entry && this.chain.isMain(entry)) end(true);
    }
  };

  /** Every wait ends unforwarded: a stopping node forwards nothing more. */
  stop(): void {
    this.stopped = true;
    for (const { end } of [...this.ends.values()]) end(false);
  }
}
