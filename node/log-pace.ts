/**
 * A progress line in the log at most once an interval (SYNC_LOG_INTERVAL_MS), on the node's
 * monotonic clock (the simulator's, under it): a line per batch would be one every few
 * milliseconds, and none left a service's log silent for as long as a sync took. A sync's header
 * and body lines and a snapshot join's each keep one.
 */
import { SYNC_LOG_INTERVAL_MS } from './sync-types.ts';

export class LogPace {
  private readonly now: () => number;
  /** When the last line was said (monotonic ms). */
  private saidAt: number;

  /** `saidAt`: as if a line was said then; by default none was, and the first is due at once. */
  constructor(now: () => number, saidAt = -Infinity) {
    this.now = now;
    this.saidAt = saidAt;
  }

  /** Whether a progress line is due, the last SYNC_LOG_INTERVAL_MS old or more; if so, the next counts from now. */
  due(): boolean {
    const now = this.now();
    if (now - this.saidAt < SYNC_LOG_INTERVAL_MS) return false;
    this.saidAt = now;
    return true;
  }

  /** A line was said now by other means (a phase's first): the next progress line is due an interval later. */
  said(): void {
    this.saidAt = this.now();
  }
}
