/**
 * Runs async work one piece at a time, in the order it was handed in: the one mutex Chain and
 * Mempool use. `held` is true while a piece runs, so methods that must only run inside one can
 * say so (`assertHeld`) instead of trusting their callers.
 */
export class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();
  private running = 0;

  get held(): boolean {
    return this.running > 0;
  }

  run<T>(work: () => Promise<T>): Promise<T> {
    const step = async () => {
      this.running++;
      try {
        return await work();
      } finally {
        this.running--;
      }
    };
    const result = this.tail.then(step, step);
    this.tail = result.catch(() => {});
    return result;
  }

  /** Resolves once everything handed in so far has run. */
  async idle(): Promise<void> {
    await this.tail;
  }

  /** Throws unless called from inside `run`: for methods documented as needing the queue. */
  assertHeld(method: string): void {
    if (this.running === 0) throw new Error(`${method} must run inside the queue`);
  }
}
