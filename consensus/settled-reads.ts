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

  /**
   * Resolves once no reorganisation is under way: at once when none is. `patience` is asked for a
   * signal the first time this has to wait: once that aborts while one still is under way, this
   * rejects with its reason (a client is not left waiting for one thousands of blocks deep).
   */
  async untilSettled(patience?: Patience): Promise<void> {
    while (this.unsettled) {
      const signal = patience?.();
      if (signal?.aborted) throw signal.reason;
      await (signal ? untilEither(this.unsettled.done, signal) : this.unsettled.done);
    }
  }

  /**
   * Runs `read`, after any reorganisation under way, again if one began meanwhile (whether it
   * answered or threw: a block by height that one disconnected under the read is "not found", an
   * answer of neither chain), and after `attempts` such reads as `fallback` (between imports): a
   * chain that reorganises under every read is not waited on for ever. Its waits for a
   * reorganisation end as `patience` says (untilSettled), the fallback's wait for the lock too.
   */
  async read<T>(read: () => Promise<T>, fallback: (read: () => Promise<T>) => Promise<T>, patience?: Patience, attempts = 3): Promise<T> {
    for (let attempt = 0; attempt < attempts; attempt++) {
      await this.untilSettled(patience);
      const begun = this.begun;
      const undisturbed = () => this.begun === begun && !this.unsettled;
      try {
        const out = await read();
        if (undisturbed()) return out;
      } catch (err) {
        if (undisturbed()) throw err;
      }
    }
    await this.untilSettled(patience);
    if (!patience) return fallback(read);
    // The fallback waits for the import lock: a reorganisation that takes it first holds it for
    // as long as it lasts, so that wait ends as patience says too.
    const signal = patience();
    const paused = fallback(read);
    paused.catch(() => {}); // given up on below, it still runs once the lock is free: no one reads its end
    return untilOrAborted(paused, signal);
  }
}

/** `work`, or a rejection with `signal`'s reason if it aborts first (at once if it has). */
function untilOrAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const abort = () => reject(signal.reason as Error);
    signal.addEventListener('abort', abort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', abort));
  });
}

/**
 * How long a wait for a reorganisation may last: the signal it ends with, asked for only when a
 * wait begins (the same one each time, so that its bound counts from the first), given by who
 * keeps time (consensus has no clock of its own).
 */
export type Patience = () => AbortSignal;

/** Resolves when `done` does or `signal` aborts, whichever is first, and leaves no listener on `signal`. */
function untilEither(done: Promise<void>, signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    const end = () => {
      signal.removeEventListener('abort', end);
      resolve();
    };
    signal.addEventListener('abort', end);
    void done.then(end);
  });
}
