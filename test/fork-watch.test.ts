/**
 * ForkWatch (node/fork-watch.ts): a download ended early for a heavier chain elsewhere at most once
 * in ten minutes, measured on the monotonic clock, so that the wall clock set back does not switch
 * the check off for as long as the step; a chain ahead of our clock told to the operator.
 */
import assert from 'node:assert/strict';
import type { Env } from '../node/env.ts';
import { ForkWatch } from '../node/fork-watch.ts';
import { networkNames } from '../node/protocols.ts';
import type { Transport } from '../node/transport.ts';
import { encodeHeaders } from '../node/wire.ts';
import type { Chain } from '../consensus/chain.ts';
import { maxFutureDrift } from '../consensus/header-rules.ts';
import { childBlock, testParams } from './helpers/fixtures.ts';

describe('ForkWatch: a heavier chain elsewhere', () => {
  it('ends a download again ten minutes after the last time, whatever the wall clock did meanwhile', async () => {
    const genesis = { hash: new Uint8Array(32), height: 0 };
    const ours = childBlock(genesis, [], { nonce: 1n }).header;
    const theirs = childBlock(genesis, [], { nonce: 2n }).header;
    let elapsedMs = 0;
    let stepMs = 0;
    const env = { now: () => 1_800_000_000_000 + elapsedMs + stepMs, monotonic: () => elapsedMs } as Env;
    const transport = { request: async () => encodeHeaders([theirs]) } as unknown as Transport;
    const watch = new ForkWatch({ env, chain: undefined as never, transport, names: networkNames(genesis.hash), clock: () => Math.floor(env.now() / 1000), ask: (_peer, _protocol, request) => request() });
    const others = [{ peer: 'heavier' }];
    assert.equal(await watch.endsForHeavierChain(others, ours), true);
    elapsedMs += 60_000;
    assert.equal(await watch.endsForHeavierChain(others, ours), false, 'not again within ten minutes');
    stepMs -= 3_600_000;
    elapsedMs += 10 * 60_000;
    assert.equal(await watch.endsForHeavierChain(others, ours), true, 'eleven minutes on, with the wall clock set back an hour');
  });

  it('tells of a chain ahead of our clock, at most once in ten minutes', () => {
    const params = testParams();
    let elapsedMs = 0;
    const env = { now: () => params.timestamp * 1000 + elapsedMs, monotonic: () => elapsedMs } as Env;
    const warnings: string[] = [];
    const chain = { params } as Chain;
    const watch = new ForkWatch({ env, chain, transport: {} as Transport, names: networkNames(new Uint8Array(32)), clock: () => Math.floor(env.now() / 1000), ask: (_peer, _protocol, request) => request(), log: (level, message) => void (level === 'warn' && warnings.push(message)) });
    const header = childBlock({ hash: new Uint8Array(32), height: 99 }, [], { timestamp: params.timestamp + 3_600 }).header;
    watch.noteAheadOfClock('p1', header);
    elapsedMs += 60_000;
    watch.noteAheadOfClock('p2', header);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, new RegExp(`peer p1's block 100 is 3600 s ahead of this node's clock, more than the ${maxFutureDrift(params.blockTime)} s allowed: .* is this machine's clock right\\?$`));
    elapsedMs += 10 * 60_000;
    watch.noteAheadOfClock('p2', header);
    assert.equal(warnings.length, 2, 'again ten minutes on');
  });
});
