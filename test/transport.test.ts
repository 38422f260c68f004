/**
 * The asking side of "busy" (node/transport.ts): a peer that answered busy is not asked on that
 * protocol before its retry-after is over, measured on the monotonic clock, so that the wall clock
 * set back (NTP, an operator fixing the date) does not keep it unasked for as long as the step.
 */
import assert from 'node:assert/strict';
import { BusyMemory, busyError, TransportError, waitingOutBusy } from '../node/transport.ts';

describe('busy answers remembered by the asker', () => {
  it('a peer is asked again once its retry-after is over, whatever the wall clock did meanwhile', async () => {
    let elapsedMs = 0;
    let stepMs = 0; // how far the wall clock was set
    const env = { now: () => 1_800_000_000_000 + elapsedMs + stepMs, monotonic: () => elapsedMs };
    const busy = new BusyMemory(env);
    let answers = 0;
    const ask = () => busy.ask('peer', 'blocks', async () => {
      if (answers++ === 0) throw busyError('peer', 'blocks', 2_000);
      return 'served';
    });
    await assert.rejects(ask(), (err: TransportError) => err.code === 'TRANSPORT_BUSY' && err.retryAfterMs === 2_000);
    elapsedMs += 1_000;
    await assert.rejects(ask(), (err: TransportError) => err.code === 'TRANSPORT_BUSY' && err.retryAfterMs === 1_000, 'not asked before its retry-after');
    assert.equal(answers, 1);
    stepMs -= 3_600_000; // the wall clock set back an hour
    elapsedMs += 1_000;
    assert.equal(await ask(), 'served', 'asked once the 2 s have passed');
  });
});

describe('waitingOutBusy', () => {
  it('asks nothing more once a stop cut its wait short', async () => {
    let stopped = false;
    let attempts = 0;
    const attempt = async () => {
      attempts++;
      throw busyError('peer', 'headers', 60_000);
    };
    const wait = async () => void (stopped = true); // the stop comes while the retry-after is waited out
    await assert.rejects(waitingOutBusy(wait, attempt, () => stopped), (err: TransportError) => err.code === 'TRANSPORT_BUSY');
    assert.equal(attempts, 1);
  });
});
