/**
 * A rejection nobody handles ends a node's process (Node's default), but under mocha it is only
 * passed on to whoever listens, and nobody did: a test whose code left one behind passed. Loaded
 * for every test (.mocharc.json), this fails the test it happened in, and the run goes on (a
 * failing root hook would end it, and the failures of every later test would go unseen).
 *
 * The suite runs in parallel (.mocharc.json): each worker process runs whole files in turn, and
 * root hooks run once per file. A rejection that comes while no file runs (after a file's last
 * test) is written where the main process reads it at its global teardown, which then fails the
 * run: a worker that crashed on it would go unseen, as mocha stops its pool without looking. Run
 * without workers, one later than the teardown ends the process as Node would (mocha would
 * otherwise exit with 0); in a worker, one that late is lost.
 */
import { appendFileSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const LATE_FILE = 'CAIRN_TEST_LATE_REJECTIONS';
const unhandled: unknown[] = [];
let fileRunning = false;

const describeReason = (r: unknown): string => (r instanceof Error ? (r.stack ?? r.message) : String(r));

/**
 * Thrown on, a rejection becomes an uncaught exception: between files the capture set by
 * `afterAll` writes it down for the teardown, and after the teardown it ends the process.
 */
function onRejection(reason: unknown): void {
  if (!fileRunning) throw reason;
  unhandled.push(reason);
}
process.on('unhandledRejection', onRejection);

function recordLate(err: unknown): void {
  appendFileSync(process.env[LATE_FILE]!, `${describeReason(err)}\n`);
}

function takeUnhandled(): Error | undefined {
  if (unhandled.length === 0) return undefined;
  const reasons = unhandled.splice(0).map(describeReason);
  return new Error(`a promise was rejected and nothing handled it:\n${reasons.join('\n')}`);
}

export const mochaHooks = {
  beforeAll(): void {
    fileRunning = true;
    if (process.hasUncaughtExceptionCaptureCallback()) process.setUncaughtExceptionCaptureCallback(null);
    // A worker removes every listener after each file (mocha's lib/nodejs/worker.cjs).
    if (!process.listeners('unhandledRejection').includes(onRejection)) process.on('unhandledRejection', onRejection);
  },
  /** Fails the test that just ran (a hook's error is its test's failure), not the hook. */
  afterEach(this: Mocha.Context): void {
    const err = takeUnhandled();
    if (err) (this.test as Mocha.Hook).error(err);
  },
  /** After a file's last test (the whole run's, without workers), for a rejection that came after it. */
  afterAll(): void {
    fileRunning = false;
    if (process.env[LATE_FILE] !== undefined && !process.hasUncaughtExceptionCaptureCallback()) process.setUncaughtExceptionCaptureCallback(recordLate);
    const err = takeUnhandled();
    if (err) throw err;
  },
};

/** In the main process, before any worker starts: workers inherit the environment. */
export function mochaGlobalSetup(): void {
  process.env[LATE_FILE] = join(tmpdir(), `cairn-mocha-late-rejections-${process.pid}`);
  rmSync(process.env[LATE_FILE], { force: true });
}

export function mochaGlobalTeardown(): void {
  if (process.hasUncaughtExceptionCaptureCallback()) process.setUncaughtExceptionCaptureCallback(null);
  const late = process.env[LATE_FILE]!;
  let reasons = '';
  try {
    reasons = readFileSync(late, 'utf8');
  } catch {}
  rmSync(late, { force: true });
  if (reasons !== '') throw new Error(`a promise was rejected after its file's last test, and nothing handled it:\n${reasons}`);
}
