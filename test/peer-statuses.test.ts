/**
 * A peer's status, asked once at a time (node/peer-statuses.ts): handshakes asked for while one is
 * in flight share it, but one asked for because the peer just sent an orphan block needs an
 * answer made after the block. Found by simulator seed 80021 (ten nodes and more): a connection's
 * first status crossed the peer's next block, told of a chain of no more work than ours, and the
 * orphan's handshake shared it, so nothing was synced until the next poll, 5.6 s later.
 */
import assert from 'node:assert/strict';
import { realEnv } from '../node/env.ts';
import { PeerStatuses } from '../node/peer-statuses.ts';
import { networkNames } from '../node/protocols.ts';
import { BusyMemory } from '../node/transport.ts';
import { encodeStatus, type Status } from '../node/wire.ts';

const genesis = new Uint8Array(32).fill(7);
const names = networkNames(genesis);
const statusAt = (height: number): Status => ({ genesis, height, tipHash: new Uint8Array(32).fill(height), totalWork: BigInt(height), prunedHeight: 0 });

/** PeerStatuses over a transport whose status answers the test releases one at a time. */
function world() {
  const pending: { resolve: (bytes: Uint8Array) => void }[] = [];
  const heard: number[] = [];
  const transport = {
    request: (_peer: string, _protocol: string) => new Promise<Uint8Array>((resolve) => pending.push({ resolve })),
  };
  const statuses = new PeerStatuses({
    transport: transport as never,
    env: realEnv,
    names,
    chain: { db: { genesis: { header: { hash: genesis } } } } as never,
    peers: { penalize: () => assert.fail('nobody is at fault') } as never,
    busy: new BusyMemory(realEnv),
    onForeign: () => assert.fail('the same network'),
    onStatus: (_peer, status) => heard.push(status.height),
  });
  /** Answers the oldest request still open with a status at `height`. */
  const answer = async (height: number) => {
    for (let i = 0; i < 50 && pending.length === 0; i++) await new Promise((r) => setImmediate(r));
    pending.shift()!.resolve(encodeStatus(statusAt(height)));
  };
  return { statuses, pending, heard, answer };
}

describe('peer statuses (node/peer-statuses.ts)', () => {
  it('handshakes asked for while a status request is in flight share it: one request', async () => {
    const { statuses, pending, answer } = world();
    const first = statuses.handshake('p');
    const second = statuses.handshake('p');
    await answer(5);
    assert.equal((await first)?.height, 5);
    assert.equal((await second)?.height, 5);
    assert.equal(pending.length, 0, 'no second request');
  });

  it("an orphan's handshake asked for while one is in flight gets the answer of a request sent after it", async () => {
    const { statuses, heard, answer } = world();
    const connection = statuses.handshake('p'); // the connection's first status, in flight
    const orphan = statuses.handshake('p', true); // the peer's next block came meanwhile
    const burst = statuses.handshake('p', true); // and the one after it: the same follow-up
    await answer(5); // made before the peer had its new block
    assert.equal((await connection)?.height, 5);
    await answer(6); // the follow-up, made after
    assert.equal((await orphan)?.height, 6);
    assert.equal((await burst)?.height, 6);
    assert.deepEqual(heard, [5, 6]);
  });

  it('a fresh handshake with nothing in flight asks once, as any other', async () => {
    const { statuses, pending, answer } = world();
    const orphan = statuses.handshake('p', true);
    await answer(9);
    assert.equal((await orphan)?.height, 9);
    assert.equal(pending.length, 0);
  });
});
