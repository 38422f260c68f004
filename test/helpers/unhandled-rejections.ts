/**
 * A rejection nobody handles ends a node's process (Node's default), but under mocha it is only
 * passed on to whoever listens, and nobody did: a test whose code left one behind passed. Loaded
 * for every test (.mocharc.json), this fails the test it happened in, and the run goes on (a
 * failing root hook would end it, and the failures of every later test would go unseen). After
 * the last test, when nothing is left to fail, it ends the process as Node would: mocha would
 * otherwise exit with 0.
 */
const unhandled: unknown[] = [];
let lastTestDone = false;
process.on('unhandledRejection', (reason) => {
  if (lastTestDone) throw reason;
  unhandled.push(reason);
});

function takeUnhandled(): Error | undefined {
  if (unhandled.length === 0) return undefined;
  const reasons = unhandled.splice(0).map((r) => (r instanceof Error ? (r.stack ?? r.message) : String(r)));
  return new Error(`a promise was rejected and nothing handled it:\n${reasons.join('\n')}`);
}

export const mochaHooks = {
  /** Fails the test that just ran (a hook's error is its test's failure), not the hook. */
  afterEach(this: Mocha.Context): void {
    const err = takeUnhandled();
    if (err) (this.test as Mocha.Hook).error(err);
  },
  /** Once after the last test, for a rejection that came after it. */
  afterAll(): void {
    lastTestDone = true;
    const err = takeUnhandled();
    if (err) throw err;
  },
};
