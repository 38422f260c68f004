import type { SyncProgress } from '../node/sync-types.ts';
import { duration } from './output.ts';

/** What the bar draws on: a terminal's stream, or a test's stand-in. */
export type BarOutput = Pick<NodeJS.WriteStream, 'write'>;

/**
 * A one-line sync progress bar for a terminal: blocks, rate and time left, redrawn in place at
 * most ten times a second, cleared when sync is done.
 */
export class ProgressBar {
  private readonly out: BarOutput;
  private readonly now: () => number;
  private startedAt = 0;
  private startHeight = 0;
  private lastDraw = -Infinity;
  private shown = false;
  /** Set by stop(): the node is stopping, and a bar drawn after its "stopping" line read as a sync going on. */
  private stopped = false;

  constructor(out: BarOutput = process.stderr, now: () => number = Date.now) {
    this.out = out;
    this.now = now;
  }

  update(p: SyncProgress): void {
    if (this.stopped) return;
    // Caught up: cleared rather than drawn, as the last frame's rate and time left would be wiped
    // as soon as written.
    if (p.height >= p.target) return this.done();
    const now = this.now();
    if (!this.shown) {
      this.startedAt = now;
      this.startHeight = p.height;
      this.shown = true;
    }
    if (now - this.lastDraw < 100) return;
    this.lastDraw = now;
    const total = Math.max(p.target, 1);
    const width = 30;
    const filled = Math.round(Math.min(1, p.height / total) * width);
    const bar = '█'.repeat(filled) + '░'.repeat(width - filled);
    this.out.write(`\r\x1b[2Ksyncing ${bar} ${p.height}/${p.target} blocks${this.rateText(p, now)}`);
  }

  /**
   * The rate and time left, once blocks have come in since the bar began: before that there is
   * no rate to tell, and "0 blk/s  ETA ?" said the sync had stalled when it had not yet begun.
   */
  private rateText(p: SyncProgress, now: number): string {
    const gained = p.height - this.startHeight;
    const seconds = (now - this.startedAt) / 1000;
    if (gained <= 0 || seconds <= 0) return '';
    const rate = gained / seconds;
    // In the units `cairn status` tells ages in: "ETA 3600s" made the reader do the sum.
    return `  ${rate < 10 ? rate.toFixed(1) : rate.toFixed(0)} blk/s  ETA ${duration(Math.ceil((p.target - p.height) / rate))}`;
  }

  /**
   * Clears the bar's line for a line of other output (a log record, on the same terminal), which
   * was written after the bar, on its line; the next update draws the bar again below it.
   */
  interrupt(): void {
    if (!this.shown) return;
    this.out.write('\r\x1b[2K');
    this.lastDraw = -Infinity;
  }

  done(): void {
    if (!this.shown) return;
    this.out.write('\r\x1b[2K');
    this.shown = false;
  }

  /** Clears the bar for good: the node is stopping, and what it logs from then on is the stop. */
  stop(): void {
    this.done();
    this.stopped = true;
  }
}
