/**
 * Simulated time for a whole network in one process. Events run in time order (ties in the
 * order they were scheduled); after each, every promise continuation it set off runs before the
 * next event, so async code sees simulated time stand still while it works, as it would on a
 * fast machine. Nothing real may be awaited under it (no sockets, files, threads or real
 * timers): then a seed and the code decide the whole run.
 */
export interface ScheduledEvent {
  readonly at: number;
  readonly seq: number;
  run: (() => void) | undefined;
}

export class Scheduler {
  /** Simulated milliseconds since the epoch. */
  now: number;
  private seq = 0;
  private heap: ScheduledEvent[] = [];
  /** Events run so far. */
  events = 0;
  /** Real work simulated time waits for (hold). */
  private readonly held = new Set<Promise<void>>();

  constructor(startMs: number) {
    this.now = startMs;
  }

  at(time: number, run: () => void): ScheduledEvent {
    // NaN orders before nothing and after nothing: such an event at the heap's top would end the
    // run there, quietly, as if time were up.
    if (!Number.isFinite(time)) throw new Error(`an event scheduled at ${time}`);
    const event: ScheduledEvent = { at: Math.max(time, this.now), seq: this.seq++, run };
    this.push(event);
    return event;
  }

  after(ms: number, run: () => void): ScheduledEvent {
    return this.at(this.now + Math.max(0, ms), run);
  }

  cancel(event: ScheduledEvent | undefined): void {
    if (event) event.run = undefined;
  }

  get pending(): number {
    return this.heap.length;
  }

  /** Runs events until simulated time reaches `until` (or nothing is left), draining promise work after each. */
  async runUntil(until: number, stop?: () => boolean): Promise<void> {
    while (this.heap.length > 0 && this.heap[0]!.at <= until) {
      await this.step();
      if (stop?.()) return;
    }
    if (this.now < until) this.now = until;
  }

  /**
   * Runs events until `work` settles, for at most `limitMs` of simulated time. Code under the
   * simulator waits on simulated disks and networks, so awaiting it directly, with nobody
   * running events, would wait forever. Returns undefined if it did not settle in time: a stall.
   */
  async drive<T>(work: Promise<T>, limitMs: number): Promise<{ value: T } | undefined> {
    let outcome: { value: T } | { error: unknown } | undefined;
    work.then(
      (value) => (outcome = { value }),
      (error: unknown) => (outcome = { error }),
    );
    await settle();
    const deadline = this.now + limitMs;
    while (!outcome && this.heap.length > 0 && this.heap[0]!.at <= deadline) await this.step();
    if (!outcome) return undefined;
    if ('error' in outcome) throw outcome.error;
    return outcome;
  }

  /**
   * Simulated time stands still until `work` settles: for the real things code under the
   * simulator may await, a file written as a light client stops (its next life reads it) and
   * removed as that life starts, which would otherwise land at a simulated time of the
   * machine's choosing. `work` must need no event to settle, only promise work and the real file
   * work (a watchdog of real time says so, and fails the run).
   */
  hold(work: Promise<unknown>): void {
    const done: Promise<void> = work.then(
      () => void this.held.delete(done),
      () => void this.held.delete(done),
    );
    this.held.add(done);
  }

  private async step(): Promise<void> {
    const event = this.pop()!;
    if (!event.run) return;
    this.now = event.at;
    const run = event.run;
    event.run = undefined;
    this.events++;
    run();
    await settle();
    while (this.held.size > 0) {
      await heldUntilSettled(Promise.all(this.held));
      await settle();
    }
  }

  private push(e: ScheduledEvent): void {
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(h[i]!, h[parent]!)) break;
      [h[i], h[parent]] = [h[parent]!, h[i]!];
      i = parent;
    }
  }

  private pop(): ScheduledEvent | undefined {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && before(h[l]!, h[m]!)) m = l;
        if (r < h.length && before(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }
}

/** How long (real time) held work may take: a stop waiting on a simulated event would otherwise hang the run without a word. */
const HOLD_LIMIT_MS = 30_000;

async function heldUntilSettled(work: Promise<unknown>): Promise<void> {
  let watchdog: NodeJS.Timeout | undefined;
  const stuck = new Promise<never>((_, reject) => {
    watchdog = setTimeout(() => reject(new Error(`work the scheduler holds for (Scheduler.hold) has not settled in ${HOLD_LIMIT_MS / 1000} s: it waits on simulated time, which stands still`)), HOLD_LIMIT_MS);
  });
  try {
    await Promise.race([work, stuck]);
  } finally {
    clearTimeout(watchdog);
  }
}

function before(a: ScheduledEvent, b: ScheduledEvent): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

/**
 * Lets every queued promise continuation run: a macrotask turn comes only after the microtask
 * queue is empty, and under the simulator nothing else can be queued for that turn.
 */
function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
