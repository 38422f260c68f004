/**
 * A rejection nobody handles ends a node's process (Node's default), but under mocha it is only
 * passed on to whoever listens, and nobody did: a test whose code left one behind passed. Loaded
 * for every test (.mocharc.json), this fails the test it happened in.
 */
const unhandled: unknown[] = [];
process.on('unhandledRejection', (reason) => {
  unhandled.push(reason);
});

function failOnUnhandled(): void {
  if (unhandled.length === 0) return;
  const reasons = unhandled.splice(0).map((r) => (r instanceof Error ? (r.stack ?? r.message) : String(r)));
  throw new Error(`a promise was rejected and nothing handled it:\n${reasons.join('\n')}`);
}

/** After each test, and once after the last (for a rejection that came late). */
export const mochaHooks = { afterEach: failOnUnhandled, afterAll: failOnUnhandled };
