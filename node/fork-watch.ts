import { bytesEqual } from '../ledger/bytes.ts';
import { HEADER_BYTES, type BlockHeader } from '../ledger/block.ts';
import type { Chain } from '../consensus/chain.ts';
import { checkpointText, maxFutureDrift } from '../consensus/header-rules.ts';
import type { ChainApart } from './header-sync.ts';
import type { Env } from './env.ts';
import type { NetworkNames } from './protocols.ts';
import type { Transport } from './transport.ts';
import { decodeHeaders, encodeGetHeaderRange, type Status } from './wire.ts';

/**
 * A download ended early for a heavier chain elsewhere at most once in this long: the peer that
 * said so may have lied, and each such end costs a round's headers again.
 */
const HEAVIER_ELSEWHERE_INTERVAL_MS = 10 * 60_000;
/** Peers asked at once whether they are on another chain: the highest claims. */
const HEAVIER_ELSEWHERE_ASKED = 8;
const ASK_TIMEOUT_MS = 5_000;
/** A clock behind the network's blocks is told at most once in this long. */
const CLOCK_WARNING_INTERVAL_MS = 10 * 60_000;

export interface ForkWatchOptions {
  readonly env: Env;
  readonly chain: Chain;
  readonly transport: Transport;
  readonly names: NetworkNames;
  /** Ours, in seconds since the epoch. */
  readonly clock: () => number;
  /** Sync's asking, which keeps a busy peer's retry-after. */
  readonly ask: <T>(peer: string, protocol: string, request: () => Promise<T>) => Promise<T>;
  readonly log?: (level: 'info' | 'warn' | 'debug', message: string, fields?: Record<string, unknown>) => void;
}

/**
 * Sync's watch on chains it will not or may not follow, once the reorg depth is in play: peers
 * whose heavier chains fork below our floor (followed by neither side, and the operator told
 * once; docs/PROTOCOL.md, fork choice), and, before a download takes a chain past the depth above
 * its fork, whether a peer that came in meanwhile claims more work on another chain. A node new
 * to the network that met a long chain of an attacker's first would otherwise be held on it.
 */
export class ForkWatch {
  private readonly o: ForkWatchOptions;
  /** Peers found apart, with our floor then. */
  private readonly apart = new Map<string, number>();
  /** When a download last ended early for a heavier chain elsewhere (the env's monotonic ms). */
  private endedAt = -Infinity;
  /** When a clock behind the network's blocks was last told (the env's monotonic ms). */
  private clockWarnedAt = -Infinity;

  constructor(o: ForkWatchOptions) {
    this.o = o;
  }

  /** Of `statuses`, the peers found apart that still claim more work than ours. */
  apartCount(statuses: ReadonlyMap<string, { status: Status }>): number {
    const ours = this.o.chain.tip.totalWork;
    let n = 0;
    for (const peer of this.apart.keys()) if ((statuses.get(peer)?.status.totalWork ?? 0n) > ours) n++;
    return n;
  }

  /** The peer's chain forks below our floor: told once a connection (until it is found otherwise or leaves). */
  noteApart(peer: string, claimed: Status, found: ChainApart): void {
    if (this.apart.has(peer)) return;
    const floor = found.apartBelow;
    this.apart.set(peer, floor);
    const { chain } = this.o;
    const fields = { peer, floor, claimedWork: claimed.totalWork.toString(), height: claimed.height };
    if (found.throughCheckpoint && chain.checkpoint) {
      this.o.log?.(
        'warn',
        `peer ${peer}'s chain passes through the checkpoint ${checkpointText(chain.checkpoint)} this node holds, and forks from this node's chain below height ${floor}, ` +
          `more than the ${chain.reorgDepth} blocks it reorganises: this node's chain can never reach it (it took another chain first). ` +
          `Start it again with an empty datadir and the same --checkpoint`,
        fields,
      );
      return;
    }
    this.o.log?.(
      'warn',
      `peer ${peer} claims more work than ours (${claimed.totalWork} against ${chain.tip.totalWork}) on a chain that forks below height ${floor}, ` +
        `more than the ${chain.reorgDepth} blocks this node reorganises: it will not follow that chain, nor check the claim (that would mean ` +
        `following it; any peer can make it). If this node is new and you trust that peer, this node may have taken an attacker's chain first: ` +
        `start it again with an empty datadir and --checkpoint HEIGHT:HASH, a recent block from a node you trust`,
      fields,
    );
  }

  /**
   * A peer's chain goes on past what our clock allows: taken up to there, the rest as our clock
   * reaches it. Nothing else would tell that the node lags the network by as much as its clock is
   * behind, beyond the drift allowed.
   */
  noteAheadOfClock(peer: string, header: BlockHeader): void {
    const { env, chain, clock } = this.o;
    if (env.monotonic() - this.clockWarnedAt < CLOCK_WARNING_INTERVAL_MS) return;
    this.clockWarnedAt = env.monotonic();
    const ahead = header.timestamp - clock();
    this.o.log?.(
      'warn',
      `peer ${peer}'s block ${header.height} is ${ahead} s ahead of this node's clock, more than the ${maxFutureDrift(chain.params.blockTime)} s allowed: ` +
        `its chain is taken up to there, the rest as the clock reaches it; is this machine's clock right?`,
      { peer, height: header.height, aheadSeconds: ahead },
    );
  }

  forget(peer: string): void {
    this.apart.delete(peer);
  }

  /**
   * Asked before a download imports `blocks`, the first batch past the reorg depth above `fork`:
   * whether it ends here because one of `others` (peers not tried this round claiming more than
   * `work`) is on a chain without these blocks. Each is asked its header at the batch's first
   * height, a few at once and once each (a busy answer or a timeout says nothing): another
   * header, or none, means another chain. At most once in HEAVIER_ELSEWHERE_INTERVAL_MS.
   */
  async endsForHeavierChain(others: readonly { peer: string }[], ours: BlockHeader): Promise<boolean> {
    const { env, names, transport } = this.o;
    if (env.monotonic() - this.endedAt < HEAVIER_ELSEWHERE_INTERVAL_MS) return false;
    const body = encodeGetHeaderRange(ours.height, 1);
    const answers = await Promise.all(
      others.slice(0, HEAVIER_ELSEWHERE_ASKED).map(async ({ peer }) => {
        try {
          const bytes = await this.o.ask(peer, names.headerRange, () => transport.request(peer, names.headerRange, body, { timeoutMs: ASK_TIMEOUT_MS, maxBytes: 16 + HEADER_BYTES }));
          const [header] = decodeHeaders(bytes);
          return !header || !bytesEqual(header.hash, ours.hash);
        } catch {
          return false; // it did not say: its turn will tell, after this chain
        }
      }),
    );
    if (!answers.some((elsewhere) => elsewhere)) return false;
    this.endedAt = env.monotonic();
    return true;
  }
}
