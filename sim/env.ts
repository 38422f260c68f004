import type { Env, Timer } from '../node/env.ts';
import type { Random } from './random.ts';
import type { ScheduledEvent, Scheduler } from './scheduler.ts';

/**
 * One simulated node's Env: its timers are the scheduler's events, its clock the simulated
 * time plus this node's skew, its randomness a stream of the run's seed. `kill()` is a crash:
 * every timer the node set is dropped.
 */
export class SimEnv implements Env {
  private readonly scheduler: Scheduler;
  private readonly rng: Random;
  /** Milliseconds this node's clock is ahead (or behind) of the network's. */
  skewMs: number;
  private readonly live = new Set<ScheduledEvent>();
  private dead = false;

  constructor(scheduler: Scheduler, rng: Random, skewMs = 0) {
    this.scheduler = scheduler;
    this.rng = rng;
    this.skewMs = skewMs;
  }

  now(): number {
    return this.scheduler.now + this.skewMs;
  }

  /** Simulated time without the skew, which a run may change as a clock is stepped. */
  monotonic(): number {
    return this.scheduler.now;
  }

  setTimeout(run: () => void, ms: number): Timer {
    if (this.dead) return undefined;
    const event = this.scheduler.after(ms, () => {
      this.live.delete(event);
      run();
    });
    this.live.add(event);
    return event;
  }

  clearTimeout(timer: Timer | undefined): void {
    const event = timer as ScheduledEvent | undefined;
    if (!event) return;
    this.scheduler.cancel(event);
    this.live.delete(event);
  }

  setInterval(run: () => void, ms: number): Timer {
    const handle: { current: ScheduledEvent | undefined } = { current: undefined };
    const tick = () => {
      handle.current = this.setTimeout(tick, ms) as ScheduledEvent | undefined;
      run();
    };
    handle.current = this.setTimeout(tick, ms) as ScheduledEvent | undefined;
    return handle;
  }

  clearInterval(timer: Timer | undefined): void {
    const handle = timer as { current: ScheduledEvent | undefined } | undefined;
    if (handle) this.clearTimeout(handle.current);
  }

  defer(run: () => void): void {
    this.setTimeout(run, 0);
  }

  random(): number {
    return this.rng.next();
  }

  randomBytes(length: number): Uint8Array {
    return this.rng.bytes(length);
  }

  /** A crash: nothing this node scheduled will run. */
  kill(): void {
    this.dead = true;
    for (const event of this.live) this.scheduler.cancel(event);
    this.live.clear();
  }
}
