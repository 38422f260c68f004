import type { SyncProgress } from '../node/sync-types.ts';

/**
 * A one-line sync progress bar for a terminal: blocks, rate and time left, redrawn in place at
 * most ten times a second, cleared when sync is done.
 */
export class ProgressBar {
  private readonly out: NodeJS.WriteStream;
  private startedAt = 0;
  private startHeight = 0;
  private lastDraw = 0;
  private shown = false;

  constructor(out: NodeJS.WriteStream = process.stderr) {
    this.out = out;
  }

  update(p: SyncProgress): void {
    const now = Date.now();
    if (!this.shown) {
      this.startedAt = now;
      this.startHeight = p.height;
      this.shown = true;
    }
    if (now - this.lastDraw < 100 && p.height < p.target) return;
    this.lastDraw = now;
    const total = Math.max(p.target, 1);
    const fraction = Math.min(1, p.height / total);
    const width = 30;
    const filled = Math.round(fraction * width);
    const rate = (p.height - this.startHeight) / Math.max(0.001, (now - this.startedAt) / 1000);
    const eta = rate > 0 ? Math.ceil((p.target - p.height) / rate) : undefined;
    const bar = '█'.repeat(filled) + '░'.repeat(width - filled);
    this.out.write(`\rsyncing ${bar} ${p.height}/${p.target} blocks  ${rate.toFixed(0)} blk/s  ETA ${eta === undefined ? '?' : eta + 's'}   `);
    if (p.height >= p.target) this.done();
  }

  /**
   * Clears the bar's line for a line of other output (a log record, on the same terminal), which
   * was written after the bar, on its line; the next update draws the bar again below it.
   */
  interrupt(): void {
    if (!this.shown) return;
    this.out.write('\r\x1b[2K');
    this.lastDraw = 0;
  }

  done(): void {
    if (!this.shown) return;
    this.out.write('\r\x1b[2K');
    this.shown = false;
  }
}
