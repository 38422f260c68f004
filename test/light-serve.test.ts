/**
 * What a full node serves light clients (node/light/serve.ts): account proofs, main-thread work that
 * pauses its imports only to pin the state (test/state-proofs.test.ts), so however many askers
 * there are, at most MAX_PROOFS_AT_ONCE are made at once, and they take at most a share of the
 * time; past either, the asker is answered busy.
 */
import assert from 'node:assert/strict';
import type { Chain } from '../consensus/chain.ts';
import { MAX_PROOFS_AT_ONCE, PROOF_TIME_BURST_MS, PROOF_TIME_SHARE, PROOFS_BUSY_RETRY_MS, serveLightClients } from '../node/light/serve.ts';
import { decodeProofs, encodeGetProofs } from '../node/light/wire.ts';
import { isBusy, type Busy, type Responder } from '../node/transport.ts';
import { carol, extend, names, newChain } from './helpers/light-net.ts';

async function proofServer(chain: Chain, clock: { ms: number }): Promise<Responder> {
  let respond: Responder | undefined;
  await serveLightClients(chain, async (name, _protocol, r) => void (name === 'proofs' && (respond = r)), names, { monotonic: () => clock.ms }, () => {});
  return respond!;
}

/**
 * A chain of 20 blocks, its proof server on `clock`, and a request 16 blocks back, whose first
 * answer takes 8 s (a roll-back of 16 full blocks takes seconds: node/light/serve.ts).
 */
async function slowDeepProof(): Promise<{ chain: Chain; clock: { ms: number }; respond: Responder; deep: Uint8Array; answerSlowly: (peer: string) => Promise<Uint8Array | Uint8Array[] | Busy> }> {
  const chain = await newChain();
  await extend(chain, 20, 50, true);
  const clock = { ms: 1_000_000 };
  const respond = await proofServer(chain, clock);
  const deep = encodeGetProofs(chain.mainAt(chain.tip.height - 16)!.hash, [carol.address]);
  const answerSlowly = async (peer: string) => {
    const mainHeader = chain.byHeight.mainHeader.bind(chain.byHeight);
    chain.byHeight.mainHeader = async (hash) => {
      clock.ms += 8_000;
      return mainHeader(hash);
    };
    try {
      return await respond(deep, peer);
    } finally {
      chain.byHeight.mainHeader = mainHeader;
    }
  };
  return { chain, clock, respond, deep, answerSlowly };
}

describe('serving light clients', () => {
  it(`proof requests from many askers at once: ${MAX_PROOFS_AT_ONCE} waits for the import lock, the rest are answered busy`, async () => {
    const chain = await newChain();
    await extend(chain, 20, 50, true);
    const respond = await proofServer(chain, { ms: 0 });
    // An import under way holds the lock while 48 identities each ask for a proof 16 blocks back.
    let importEnds!: () => void;
    const importing = chain.withImportsPaused(() => new Promise<void>((resolve) => (importEnds = resolve)));
    const request = encodeGetProofs(chain.mainAt(chain.tip.height - 16)!.hash, [carol.address]);
    const answers = Array.from({ length: 48 }, (_, i) => respond(request, `sybil-${i}`));
    const settled = await Promise.all(answers.map((a) => Promise.race([a, Promise.resolve('waiting' as const)])));
    const busy = settled.filter((a) => a !== 'waiting' && isBusy(a)) as Busy[];
    assert.equal(busy.length, 48 - MAX_PROOFS_AT_ONCE, 'all but one answered busy at once, without waiting for the lock');
    assert.ok(busy.every((b) => b.retryAfterMs === PROOFS_BUSY_RETRY_MS));
    importEnds();
    await importing;
    const proven = (await Promise.all(answers)).filter((a) => !isBusy(a)) as Uint8Array[];
    assert.equal(proven.length, MAX_PROOFS_AT_ONCE);
    for (const p of proven) assert.equal(decodeProofs(p, 1).kind, 'proofs');
    assert.equal(decodeProofs((await respond(request, 'honest')) as Uint8Array, 1).kind, 'proofs', 'once it is answered, the next is served');
    await chain.db.close();
  });

  it('proofs take a share of the time at most: after one that took 8 s, the next waits until they took a quarter of the time since, beyond a burst of 2 s', async () => {
    const { chain, clock, respond, deep: request, answerSlowly } = await slowDeepProof();
    assert.ok(!isBusy(await answerSlowly('first')));
    const debtMs = 8_000 - PROOF_TIME_BURST_MS - 8_000 * PROOF_TIME_SHARE; // what the 8 s themselves refilled counts
    const refused = (await respond(request, 'second')) as Busy;
    assert.ok(isBusy(refused));
    assert.equal(refused.retryAfterMs, Math.ceil(debtMs / PROOF_TIME_SHARE));
    clock.ms += refused.retryAfterMs - 1;
    assert.ok(isBusy(await respond(request, 'third')), 'not before');
    clock.ms += 2;
    assert.ok(!isBusy(await respond(request, 'third')), 'after it, served');
    await chain.db.close();
  });

  it("after a proof far back used up the share, a proof at the tip is still served: one asker cannot refuse every light client the node's proofs", async () => {
    // From the review of this stop's diff: one proof 16 blocks back every ~25 s (8 s of the lock
    // each) kept every other proof refused, with a retry-after past a light client's patience.
    const { chain, respond, deep, answerSlowly } = await slowDeepProof();
    assert.ok(!isBusy(await answerSlowly('attacker')));
    assert.ok(isBusy(await respond(deep, 'another')), 'another deep proof waits out the share');
    const atTip = await respond(encodeGetProofs(chain.tip.hash, [carol.address]), 'light-client');
    assert.ok(!isBusy(atTip), 'a proof at the tip is served');
    assert.equal(decodeProofs(atTip as Uint8Array, 1).kind, 'proofs');
    await chain.db.close();
  });
});
