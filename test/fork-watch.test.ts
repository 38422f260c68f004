/**
 * ForkWatch (node/fork-watch.ts): a download ended early for a heavier chain elsewhere at most once
 * in ten minutes, measured on the monotonic clock, so that the wall clock set back does not switch
 * the check off for as long as the step.
 */
import assert from 'node:assert/strict';
import type { Env } from '../node/env.ts';
import { ForkWatch } from '../node/fork-watch.ts';
import { networkNames } from '../node/protocols.ts';
import type { Transport } from '../node/transport.ts';
import { encodeHeaders } from '../node/wire.ts';
import { childBlock } from './helpers/fixtures.ts';

describe('ForkWatch: a heavier chain elsewhere', () => {
  it('ends a download again ten minutes after the last time, whatever the wall clock did meanwhile', async () => {
    const genesis = { hash: new Uint8Array(32), height: 0 };
    const ours = childBlock(genesis, [], { nonce: 1n }).header;
    const theirs = childBlock(genesis, [], { nonce: 2n }).header;
    let elapsedMs = 0;
    let stepMs = 0;
    const env = { now: () => 1_800_000_000_000 + elapsedMs + stepMs, monotonic: () => elapsedMs } as Env;
    const transport = { request: async () => encodeHeaders([theirs]) } as unknown as Transport;
    const watch = new ForkWatch({ env, chain: undefined as never, transport, names: networkNames(genesis.hash), ask: (_peer, _protocol, request) => request() });
    const others = [{ peer: 'heavier' }];
    assert.equal(await watch.endsForHeavierChain(others, ours), true);
    elapsedMs += 60_000;
    assert.equal(await watch.endsForHeavierChain(others, ours), false, 'not again within ten minutes');
    stepMs -= 3_600_000;
    elapsedMs += 10 * 60_000;
    assert.equal(await watch.endsForHeavierChain(others, ours), true, 'eleven minutes on, with the wall clock set back an hour');
  });
});
