/**
 * Where a snapshot join (node/snapshot-sync.ts) stands while it runs, for `status`
 * (StatusResult.snapshotSync) and the log. Without it a join read as something else: its headers
 * as a sync stuck at genesis ("at 0 of 640000"), its install, which holds imports as a
 * reorganisation does, as a reorganisation; and a long chain's headers or a large state take
 * minutes in which the log said nothing.
 */
import type { Env } from './env.ts';
import { LogPace } from './log-pace.ts';

/**
 * `headers`: the best peer's headers checked, `done` of the `total` it claimed; `chunks`: the
 * state at `pivot` fetched, `done` chunks verified (earlier runs' too) of `total` known so far (a
 * chunk too big to send comes back as two halves: the total grows); `installing`: the state
 * written in place of genesis's, `done` of `total` steps (INSTALL_STEPS).
 */
export interface SnapshotProgress {
  readonly phase: 'headers' | 'chunks' | 'installing';
  /** The snapshot block whose state is taken; 0 while the headers that choose it are checked. */
  readonly pivot: number;
  readonly done: number;
  readonly total: number;
}

/**
 * The install's steps, by what ledger/snapshot-join.ts reports as each begins: the accounts and
 * the state tree written, the headers below the pivot indexed, the chain read again at the pivot.
 */
export const INSTALL_STEPS: readonly string[] = ['state', 'headers', 'done'];

type Log = (level: 'info' | 'warn' | 'debug', message: string, fields?: Record<string, unknown>) => void;

/** What the periodic line of each phase says. */
const PROGRESS_LINES: Record<SnapshotProgress['phase'], (p: SnapshotProgress) => [string, Record<string, unknown>]> = {
  headers: (p) => ['snapshot sync: headers checked', { height: p.done, target: p.total }],
  chunks: (p) => ['snapshot sync: state chunks checked', { pivot: p.pivot, checked: p.done, toGo: p.total - p.done }],
  installing: (p) => ['snapshot sync: installing the state', { pivot: p.pivot, step: p.done + 1, steps: p.total }],
};

/**
 * A join's phase and progress: a log line as each phase begins, and one every SYNC_LOG_INTERVAL_MS
 * within it. One lasts the join's rounds (the Sync's): a round that ends "try later" (no snapshot
 * served yet, the headers short of their claim) is followed by another at the next status, and
 * each said its phases again, a wall of the same lines while a node waited for a snapshot.
 */
export class JoinProgress {
  private readonly pace: LogPace;
  private readonly log: Log;
  private current: SnapshotProgress | undefined;
  /** What an earlier round said once (a phase at its pivot, a warning): said again at debug only. */
  private readonly said = new Set<string>();

  constructor(env: Pick<Env, 'monotonic'>, log: Log) {
    this.pace = new LogPace(() => env.monotonic(), 0);
    this.log = log;
  }

  /** Where the join stands; undefined before its first phase. */
  get now(): SnapshotProgress | undefined {
    return this.current;
  }

  /** A phase begins, where `at` says: `message` and `fields` say so in the log. */
  begin(at: SnapshotProgress, message: string, fields: Record<string, unknown>): void {
    this.current = at;
    this.pace.said();
    this.once('info', `${at.phase}@${at.pivot}`, message, fields);
  }

  /** A warning that a round ends, whose next round may end the same way: said once, then at debug. */
  warnOnce(message: string, fields?: Record<string, unknown>): void {
    this.once('warn', message, message, fields);
  }

  /** The round is over (the state in place, or to try later): no phase under way to tell. */
  end(): void {
    this.current = undefined;
  }

  private once(level: 'info' | 'warn', key: string, message: string, fields?: Record<string, unknown>): void {
    const again = this.said.has(key);
    this.said.add(key);
    this.log(again ? 'debug' : level, message, fields);
  }

  /** Progress within the phase under way; logged when the last line is SYNC_LOG_INTERVAL_MS old. */
  advance(done: number, total: number): void {
    if (!this.current) return;
    this.current = { ...this.current, done, total };
    if (!this.pace.due()) return;
    const [message, fields] = PROGRESS_LINES[this.current.phase](this.current);
    this.log('info', message, fields);
  }
}
