/**
 * Work a stop lets end rather than cut: what is under way when it comes is tracked until it ends
 * (`drained`), and what such work waits for from a peer is not waited for past the stop
 * (`untilStop`: a transport need not fail its requests when it stops; libp2p's do, the
 * simulator's never answer). The work itself checks `stopped` after each wait, and does nothing
 * more that the stop has already waited for (an import, an admission).
 */
export class StopGate {
  private closed = false;
  private readonly underWay = new Set<Promise<unknown>>();
  private readonly signal: Promise<undefined>;
  private fire!: () => void;

  constructor() {
    this.signal = new Promise((resolve) => (this.fire = () => resolve(undefined)));
  }

  get stopped(): boolean {
    return this.closed;
  }

  stop(): void {
    this.closed = true;
    this.fire();
  }

  /** `work`, tracked until it settles. */
  track<T>(work: Promise<T>): Promise<T> {
    this.underWay.add(work);
    void work.finally(() => this.underWay.delete(work)).catch(() => {});
    return work;
  }

  /** A peer's answer, or undefined once stopped. */
  untilStop<T>(answer: Promise<T>): Promise<T | undefined> {
    return Promise.race([answer, this.signal]);
  }

  /** Resolves once every piece of work tracked has settled (none is tracked after the stop). */
  async drained(): Promise<void> {
    while (this.underWay.size > 0) await Promise.allSettled([...this.underWay]);
  }
}
