import { randomBytes } from 'node:crypto';

/** A timer handle: opaque, only ever given back to the Env that made it. */
export type Timer = unknown;

/**
 * Time, timers and randomness: everything in node/ that would otherwise reach for Date.now,
 * setTimeout or Math.random takes them from here. `realEnv` is the machine's; the simulator
 * (sim/) gives each node one of its own, driven by simulated time and a seed, so a whole network
 * runs deterministically in one process. test/house.test.ts refuses the direct calls elsewhere.
 */
export interface Env {
  /**
   * Milliseconds since the Unix epoch: dates, what is kept across restarts, consensus's clock. It
   * can jump, either way, by any amount: NTP steps it, a VM resumes, an operator fixes the date.
   */
  now(): number;
  /**
   * Milliseconds from an arbitrary start, never set back nor forward: every duration (rate limits,
   * backoffs, retry-afters, stall clocks) is measured on it, which `now` would stretch by the size
   * of a jump back (a node refusing to serve or to dial for an hour) or cut to nothing.
   */
  monotonic(): number;
  setTimeout(run: () => void, ms: number): Timer;
  clearTimeout(timer: Timer | undefined): void;
  setInterval(run: () => void, ms: number): Timer;
  clearInterval(timer: Timer | undefined): void;
  /** Runs `run` after the current turn of the event loop (setImmediate). */
  defer(run: () => void): void;
  /** A number in [0, 1). */
  random(): number;
  randomBytes(length: number): Uint8Array;
}

export const realEnv: Env = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
  setTimeout: (run, ms) => setTimeout(run, ms),
  clearTimeout: (timer) => clearTimeout(timer as NodeJS.Timeout | undefined),
  setInterval: (run, ms) => setInterval(run, ms),
  clearInterval: (timer) => clearInterval(timer as NodeJS.Timeout | undefined),
  defer: (run) => void setImmediate(run),
  random: () => Math.random(),
  randomBytes: (length) => new Uint8Array(randomBytes(length)),
};

/** Seconds since the epoch, as consensus's Clock wants them. */
export function secondsOf(env: Env): () => number {
  return () => Math.floor(env.now() / 1000);
}

/** A promise that resolves in the event loop's next turn, after the I/O and timers already due. */
export function nextTurn(env: Env): Promise<void> {
  return new Promise((resolve) => env.defer(resolve));
}

/** A promise that resolves after `ms` of the env's time. */
export function sleep(env: Env, ms: number): Promise<void> {
  return new Promise((resolve) => env.setTimeout(resolve, ms));
}

/**
 * Sleeps that a stop cuts short: each resolves after its `ms` of the env's time, or at once when
 * `interrupt` is called, as does every one asked for after it. For waits a peer sets (a busy
 * answer's retry-after, up to a minute) that a node's stop must not sit out.
 */
export class InterruptibleSleeps {
  private readonly env: Env;
  private readonly sleeping = new Set<() => void>();
  private interrupted = false;

  constructor(env: Env) {
    this.env = env;
  }

  sleep(ms: number): Promise<void> {
    if (this.interrupted) return Promise.resolve();
    return new Promise((resolve) => {
      const wake = () => {
        this.env.clearTimeout(timer);
        this.sleeping.delete(wake);
        resolve();
      };
      const timer = this.env.setTimeout(wake, ms);
      this.sleeping.add(wake);
    });
  }

  interrupt(): void {
    this.interrupted = true;
    for (const wake of [...this.sleeping]) wake();
  }
}
