/**
 * Reads of the main chain that see no reorganisation part-way (Chain.readSettled). Mid-way through
 * one the main chain ends at the fork point, or part-way up the new branch, below the tip before
 * and after: what peers are told of our chain then falls short of what our status claimed.
 */
export class SettledReads {
  /** Reorganisations begun: a read during which one began is made again. */
  private begun = 0;
  /** While one is under way: resolves when the import that made it ends. */
  private unsettled: { done: Promise<void>; settle: () => void } | undefined;

  /** A reorganisation is about to disconnect blocks (import lock). */
  begin(): void {
    this.begun++;
    if (this.unsettled) return;
    let settle!: () => void;
    const done = new Promise<void>((resolve) => (settle = resolve));
    this.unsettled = { done, settle };
  }

  /** The import that began it ended, however it ended: the main chain is a tip's again. */
  settle(): void {
    this.unsettled?.settle();
    this.unsettled = undefined;
  }

  /** A reorganisation (or a snapshot's install) is under way: the main chain ends part-way. */
  get underWay(): boolean {
    return this.unsettled !== undefined;
  }

  /** Resolves once no reorganisation is under way: at once when none is. */
  async untilSettled(): Promise<void> {
    while (this.unsettled) await this.unsettled.done;
  }

  /**
   * Runs `read`, after any reorganisation under way, again if one began meanwhile (whether it
   * answered or threw: a block by height that one disconnected under the read is "not found", an
   * answer of neither chain), and after `attempts` such reads as `fallback` (between imports): a
   * chain that reorganises under every read is not waited on for ever.
   */
  async read<T>(read: () => Promise<T>, fallback: (read: () => Promise<T>) => Promise<T>, attempts = 3): Promise<T> {
    for (let attempt = 0; attempt < attempts; attempt++) {
      await this.untilSettled();
      const begun = this.begun;
      const undisturbed = () => this.begun === begun && !this.unsettled;
      try {
        const out = await read();
        if (undisturbed()) return out;
      } catch (err) {
        if (undisturbed()) throw err;
      }
    }
    return fallback(read);
  }
}
