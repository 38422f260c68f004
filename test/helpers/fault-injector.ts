/**
 * Loaded into a `cairn` process by tests (NODE_OPTIONS=--import=this file): on SIGUSR2 it throws
 * where nothing catches, as a bug in a timer's, an event handler's or a library's callback would.
 * CAIRN_TEST_FAULT says how: `exception` (a throw in a timer callback) or `rejection` (a promise
 * rejected with nothing handling it).
 */
const fault = process.env['CAIRN_TEST_FAULT'];
if (fault === 'exception' || fault === 'rejection') {
  process.on('SIGUSR2', () => {
    if (fault === 'exception') {
      setImmediate(() => {
        throw new TypeError("injected fault: Cannot read properties of undefined (reading 'height')");
      });
    } else {
      void Promise.reject(new Error('injected fault: a rejection nobody handles'));
    }
  });
}
